//! Crash consistency of the keystore write: a writer killed with SIGKILL at
//! a random moment, over and over, never leaves a torn `.keydata.enc`.
//!
//! The writer is this test binary itself, re-invoked to run the ignored
//! `child_writes_in_a_loop` with the target directory in an environment
//! variable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Protocol, fixture, keydata_id};
use shardkeep_keydata::{
    KekKeystoreCodec, WriteMode, keystore_path, load_keystore, write_keystore,
};
use shardkeep_types::{InMemoryKek, KekId};
use subtle::ConstantTimeEq;

const DIR_VAR: &str = "SHARDKEEP_KEYDATA_CRASH_DIR";
const ROUNDS: u64 = 24;

fn codec() -> KekKeystoreCodec<InMemoryKek> {
    KekKeystoreCodec::new(InMemoryKek::from_bytes(
        KekId::new("kek-crash").unwrap(),
        &[3; 32],
    ))
}

#[test]
#[ignore = "the child of killed_writers_never_leave_a_torn_file; does nothing on its own"]
fn child_writes_in_a_loop() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let parties = [fixture(Protocol::Ecdsa, 0), fixture(Protocol::Ecdsa, 1)];
    let id = keydata_id("node-0");
    for round in 0usize.. {
        write_keystore(
            Path::new(&dir),
            &id,
            &parties[round % 2],
            &codec(),
            WriteMode::Replace,
        )
        .unwrap();
    }
}

#[test]
fn killed_writers_never_leave_a_torn_file() {
    let dir = tempfile::tempdir().unwrap();
    let id = keydata_id("node-0");
    let parties = [fixture(Protocol::Ecdsa, 0), fixture(Protocol::Ecdsa, 1)];
    let path = keystore_path(dir.path(), &id);
    write_keystore(dir.path(), &id, &parties[0], &codec(), WriteMode::CreateNew).unwrap();

    let mut changes = 0;
    let mut last = std::fs::read(&path).unwrap();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_writes_in_a_loop",
                "--ignored",
                "--test-threads=1",
            ])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it get going, then kill it at a varying point of its loop.
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(40 + (round * 37) % 120));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let loaded = load_keystore(&path, &id, &codec()).unwrap_or_else(|e| {
            panic!(
                "round {round} ({:?} after start): torn keystore: {e}",
                started.elapsed()
            )
        });
        assert!(
            parties.iter().any(|p| bool::from(p.ct_eq(&loaded))),
            "round {round}: the keystore holds neither version"
        );
        let now = std::fs::read(&path).unwrap();
        if now != last {
            changes += 1;
            last = now;
        }
    }
    // A leftover temporary file is a write killed mid-way; each write
    // removes the earlier ones, so only the last killed write's can remain.
    let interrupted = temporary_files(dir.path());
    println!(
        "{changes} of {ROUNDS} rounds changed the keystore; {interrupted} write was killed mid-way"
    );
    assert!(interrupted <= 1, "{interrupted} stale temporary files");
    // The children did write (and were killed mid-loop, not before starting).
    assert!(changes > 0, "no child ever completed a write");
    write_keystore(dir.path(), &id, &parties[1], &codec(), WriteMode::Replace).unwrap();
    assert_eq!(temporary_files(dir.path()), 0);
}

fn temporary_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count()
}
