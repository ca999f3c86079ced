//! No secret left on the heap: every heap block freed while a save data is
//! parsed, serialised, sealed into an archive, regenerated, written to and
//! loaded from a keystore, self-tested and dropped is scanned (by shardkeep-residue-alloc, this
//! binary's global allocator) for the save data's secrets: `Xi`, and for
//! ECDSA the Paillier and Ñ secrets, each as big-endian bytes, as
//! little-endian bytes (the in-memory form of crypto-bigint limbs and of an
//! ed25519 scalar on little-endian targets), as decimal digits, and the
//! first quotients of its conversion to decimal (all but its last digits).
//!
//! Its own test binary, since it sets the global allocator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use common::{Protocol, all_parties, fixture_bytes, group_threshold, keydata_id, peers_of};
use shardkeep_keydata::{
    KekKeystoreCodec, LocalPartySaveData, SealedArchive, WriteMode, load_keystore, regenerate,
    write_keystore,
};
use shardkeep_residue_alloc::{ResidueAlloc, finish, watch};
use shardkeep_sss_core::{Curve, Ed25519, Secp256k1};
use shardkeep_types::{InMemoryKek, KekId};

#[global_allocator]
static ALLOCATOR: ResidueAlloc = ResidueAlloc;

/// The watched needles are global: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = finish();
    guard
}

/// The secret members of a tss-lib save data (`P` and `Q` occur twice in
/// ECDSA data: in `PaillierSK` and at the top level).
const SECRET_KEYS: [&str; 7] = ["Xi", "LambdaN", "PhiN", "P", "Q", "Alpha", "Beta"];

/// Byte patterns of the secrets, with a name each. Kept alive for the
/// whole test, so that freeing them is never mistaken for a finding.
struct Needles {
    names: Vec<String>,
    patterns: Vec<Vec<u8>>,
}

impl Needles {
    /// Every secret number of the fixture's JSON text, in three forms.
    fn of(json: &[u8]) -> Self {
        let mut needles = Self {
            names: Vec::new(),
            patterns: Vec::new(),
        };
        for key in SECRET_KEYS {
            for (occurrence, digits) in numbers_after(json, key).into_iter().enumerate() {
                let name = format!("{key}#{occurrence}");
                let be = decimal_to_be(&digits);
                let le: Vec<u8> = be.iter().rev().copied().collect();
                // Most of a secret is as bad as all of it: the quotients of
                // a decimal conversion by 10^9 and 10^18 (its digits but the
                // last 9 or 18), as limbs.
                for chunks in 1..=2 {
                    let quotient = &digits[..digits.len() - 9 * chunks];
                    let le: Vec<u8> = decimal_to_be(quotient).into_iter().rev().collect();
                    needles.push(format!("{name} / 10^{} little-endian", 9 * chunks), le);
                }
                needles.push(format!("{name} decimal"), digits);
                needles.push(format!("{name} big-endian"), be);
                needles.push(format!("{name} little-endian"), le);
            }
        }
        needles
    }

    fn push(&mut self, name: String, pattern: Vec<u8>) {
        self.names.push(name);
        self.patterns.push(pattern);
    }

    /// The big-endian bytes of `Xi`.
    fn xi_be(&self) -> &[u8] {
        let at = self
            .names
            .iter()
            .position(|n| n == "Xi#0 big-endian")
            .unwrap();
        &self.patterns[at]
    }

    /// Runs `operation` with every needle watched; returns a description of
    /// each freed block that still held one.
    fn residue_of(&self, phase: &str, operation: impl FnOnce()) -> Vec<String> {
        for (name, pattern) in self.names.iter().zip(&self.patterns) {
            watch(pattern).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        operation();
        let report = finish();
        let mut found: Vec<String> = report
            .findings()
            .map(|f| {
                format!(
                    "{phase}: a {}-byte block freed ({:?}) still held {} at offset {}",
                    f.block_len, f.freed_by, self.names[f.needle], f.offset
                )
            })
            .collect();
        if report.total() > found.len() {
            found.push(format!("{phase}: {} more", report.total() - found.len()));
        }
        found
    }
}

/// The digits of every `"key": <number>` in `json` (tss-lib writes each
/// number bare; `null` is skipped).
fn numbers_after(json: &[u8], key: &str) -> Vec<Vec<u8>> {
    let pattern = format!("\"{key}\"");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = json[from..]
        .windows(pattern.len())
        .position(|w| w == pattern.as_bytes())
    {
        let mut i = from + at + pattern.len();
        while json[i].is_ascii_whitespace() || json[i] == b':' {
            i += 1;
        }
        let digits: Vec<u8> = json[i..]
            .iter()
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        if !digits.is_empty() {
            out.push(digits);
        }
        from = i;
    }
    out
}

/// Decimal digits to minimal big-endian bytes (a test helper: variable
/// time is fine here).
fn decimal_to_be(digits: &[u8]) -> Vec<u8> {
    let mut be = vec![0u8; 260];
    for &digit in digits {
        let mut carry = u32::from(digit - b'0');
        for byte in be.iter_mut().rev() {
            let value = u32::from(*byte) * 10 + carry;
            *byte = value.to_le_bytes()[0];
            carry = value >> 8;
        }
        assert_eq!(carry, 0);
    }
    let start = be.iter().position(|&b| b != 0).unwrap();
    be.split_off(start)
}

fn codec() -> KekKeystoreCodec<InMemoryKek> {
    KekKeystoreCodec::new(InMemoryKek::from_bytes(
        KekId::new("kek-residue").unwrap(),
        &[5; 32],
    ))
}

/// Runs every operation of the crate that handles the save data's secrets,
/// each in its own watch window, and returns what was left on the heap.
fn residue<C: Curve>(protocol: Protocol) -> Vec<String> {
    let json = fixture_bytes(protocol, 0);
    let needles = Needles::of(&json);
    let expected = if protocol == Protocol::Ecdsa {
        9 * 5
    } else {
        5
    };
    assert_eq!(needles.patterns.len(), expected, "{:?}", needles.names);

    let id = keydata_id("node-0");
    let data = LocalPartySaveData::from_json(&json).unwrap();
    let xi = data.secret_share::<C>().unwrap();
    // The needles are right: the decimal digits give the parsed Xi.
    let be = xi.to_be_bytes();
    let start = be.iter().position(|&b| b != 0).unwrap();
    assert_eq!(&be[start..], needles.xi_be());
    let archive = data.seal_archive(&id).unwrap();
    let binding = data.binding(&archive).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keystore = write_keystore(dir.path(), &id, &data, &codec(), WriteMode::CreateNew).unwrap();

    let mut found = Vec::new();
    found.extend(needles.residue_of("parse and drop", || {
        drop(LocalPartySaveData::from_json(&json).unwrap());
    }));
    found.extend(needles.residue_of("to_json", || {
        drop(data.to_json());
    }));
    found.extend(needles.residue_of("seal_archive", || {
        let sealed: SealedArchive = data.seal_archive(&id).unwrap();
        drop(sealed);
    }));
    found.extend(needles.residue_of("regenerate", || {
        drop(regenerate(&xi, &archive, &binding, &id).unwrap());
    }));
    found.extend(needles.residue_of("write_keystore", || {
        write_keystore(dir.path(), &id, &data, &codec(), WriteMode::Replace).unwrap();
    }));
    found.extend(needles.residue_of("load_keystore", || {
        drop(load_keystore(&keystore, &id, &codec()).unwrap());
    }));
    let parties = all_parties(protocol);
    found.extend(needles.residue_of("self_test", || {
        let report = data
            .self_test(group_threshold(), &mut peers_of(&parties, 0))
            .unwrap();
        assert!(report.passed(), "{report}");
    }));
    drop(parties);
    found.extend(needles.residue_of("drop", || drop(data)));
    assert!(Path::new(&keystore).exists());
    found
}

#[test]
fn no_ecdsa_secret_is_left_on_the_heap() {
    let _serial = serial();
    let found = residue::<Secp256k1>(Protocol::Ecdsa);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn no_eddsa_secret_is_left_on_the_heap() {
    let _serial = serial();
    let found = residue::<Ed25519>(Protocol::Eddsa);
    assert!(found.is_empty(), "{}", found.join("\n"));
}
