//! The allocator installed for real: findings for unwiped frees and moved
//! reallocations, none for wiped buffers or while nothing is watched.
#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::hint::black_box;
use std::sync::{Mutex, MutexGuard, PoisonError};

use shardkeep_residue_alloc::{FreedBy, NeedleError, ResidueAlloc, finish, is_watching, watch};

#[global_allocator]
static ALLOCATOR: ResidueAlloc = ResidueAlloc;

/// The watch state is global: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    // A test that failed mid-watch must not leak its needles into the next.
    let _ = finish();
    guard
}

const SECRET: [u8; 32] = *b"k3y-m4t3r14l: 0123456789 ABCDEF!";

#[test]
fn an_unwiped_drop_is_found_and_a_wiped_one_is_not() {
    let _serial = serial();
    let needle = watch(&SECRET).unwrap();
    assert!(is_watching());

    // The secret in the middle of a bigger buffer.
    let mut leaked = vec![0xAAu8; 100];
    leaked[40..72].copy_from_slice(&SECRET);
    drop(black_box(leaked));

    let mut wiped = SECRET.to_vec();
    wiped.fill(0);
    drop(black_box(wiped));

    let report = finish();
    assert!(!is_watching());
    assert_eq!(report.total(), 1, "{report}");
    let finding = report.findings().next().unwrap();
    assert_eq!(finding.needle, needle);
    assert_eq!(finding.offset, 40);
    assert_eq!(finding.block_len, 100);
    assert_eq!(finding.freed_by, FreedBy::Dealloc);
}

#[test]
fn the_old_block_of_a_realloc_is_found() {
    let _serial = serial();
    watch(&SECRET).unwrap();
    let mut growing = Vec::with_capacity(SECRET.len());
    growing.extend_from_slice(&SECRET);
    // Past the capacity: the contents move to a new block.
    growing.extend_from_slice(&[0; 64]);
    let report = finish();
    assert_eq!(report.total(), 1, "{report}");
    let finding = report.findings().next().unwrap();
    assert_eq!(finding.freed_by, FreedBy::Realloc);
    assert_eq!(finding.block_len, SECRET.len());
    // The live copy is not a finding, and is freed after watching stopped.
    drop(black_box(growing));
}

#[test]
fn nothing_is_found_while_nothing_is_watched() {
    let _serial = serial();
    drop(black_box(SECRET.to_vec()));
    let mut growing = SECRET.to_vec();
    growing.extend_from_slice(&[0; 64]);
    // A grown block's new tail is zero-filled.
    assert!(growing[SECRET.len()..].iter().all(|&b| b == 0));
    drop(black_box(growing));
    assert!(finish().is_clean());
}

#[test]
fn every_needle_in_a_block_is_reported_and_finish_forgets_them() {
    let _serial = serial();
    let decimal =
        *b"115792089237316195423570985008687907852837564279074904382605163141518161494337";
    // Built before watching: its growth is not under test here.
    let mut both = SECRET.to_vec();
    both.extend_from_slice(&decimal);
    let first = watch(&SECRET).unwrap();
    let second = watch(&decimal).unwrap();
    drop(black_box(both));
    let report = finish();
    let needles: Vec<usize> = report.findings().map(|f| f.needle).collect();
    assert_eq!(needles, [first, second], "{report}");

    // Forgotten: the same bytes freed now are not a finding.
    drop(black_box(SECRET.to_vec()));
    assert!(finish().is_clean());
}

#[test]
fn weak_needles_are_refused_before_anything_is_watched() {
    let _serial = serial();
    assert_eq!(watch(&SECRET[..8]), Err(NeedleError::TooShort { len: 8 }));
    assert_eq!(
        watch(&[0u8; 32]),
        Err(NeedleError::TooUniform { distinct: 1 })
    );
    assert!(!is_watching());
    let mut filled = 0;
    while watch(&SECRET).is_ok() {
        filled += 1;
    }
    assert_eq!(filled, shardkeep_residue_alloc::MAX_NEEDLES);
    assert_eq!(watch(&SECRET), Err(NeedleError::Full));
    assert!(finish().is_clean());
}
