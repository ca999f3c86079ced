//! Crash safety of a recovery: a recovery killed with SIGKILL at each step
//! of its end (before the keystore's temporary file, half-way through it,
//! before the rename, after it, before and after the session's close)
//! leaves the node's old keystore or the new one, never a torn file; a new
//! session can start afterwards (at once, or once the stuck one lapsed);
//! and no file the killed process left (the database with its WAL and
//! shared memory, the key store, the keystore directory, drill sandboxes
//! and SQLite's temporary files) holds the bytes of a share, of `Xi` or of
//! the session's one-time age key. A drill killed while it writes its
//! sandbox leaves the node's keystore alone, and its sandbox holds at most
//! ciphertext under a KEK that died with it, until the stuck session's
//! close removes it.
//!
//! The recovering process is this test binary itself, re-invoked to run
//! the ignored `child_recovers_until_paused` with the `pause-points`
//! feature's environment variable naming the step to stop at. It tells the
//! parent the secrets to search for on its standard output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(all(unix, feature = "pause-points"))]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::approvals::{Fixture, approver_key};
use common::recovery::{Recovery, codec, container_contents};
use common::{Protocol, actor, save_data, service_signer, start_time, text};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_backup::{
    BackupService, Error, FixedClock, RecoveryParams, Role, ServiceConfig, ServiceParts,
    sign_approval,
};
use shardkeep_envelope::{CurveShare, OpenedContainer};
use shardkeep_keydata::{KeystoreCodec as _, keystore_path, load_keystore};
use shardkeep_kms::LocalKeyStore;
use shardkeep_sss_core::{Ed25519, Secp256k1};
use shardkeep_storage::{KeyVersionStore, SqliteStorage, Storage, Transaction};
use shardkeep_types::{KeyId, KeyVersion, Label, NodeId, NodeVersion};
use subtle::ConstantTimeEq;

const DIR_VAR: &str = "SHARDKEEP_BACKUP_CRASH_DIR";
const PROTOCOL_VAR: &str = "SHARDKEEP_BACKUP_CRASH_PROTOCOL";
const PAUSE_AT_VAR: &str = "SHARDKEEP_PAUSE_AT";
const DRILL_VAR: &str = "SHARDKEEP_BACKUP_CRASH_DRILL";

/// The steps a recovery is killed at, and whether the new keystore is in
/// place and the session closed by then.
const STEPS: [(&str, bool, bool); 6] = [
    ("keystore-create-temp", false, false),
    ("keystore-write-data", false, false),
    ("keystore-commit", false, false),
    ("keystore-sync-dir", true, false),
    ("recovery-session-close", true, false),
    ("recovery-session-closed", true, true),
];

fn protocol_from_env() -> Protocol {
    match std::env::var(PROTOCOL_VAR).unwrap().as_str() {
        "ecdsa" => Protocol::Ecdsa,
        "eddsa" => Protocol::Eddsa,
        other => panic!("{other}"),
    }
}

/// The steps a drill (which writes to a sandbox of its own) is killed at.
const DRILL_STEPS: [&str; 3] = [
    "keystore-create-temp",
    "keystore-commit",
    "keystore-sync-dir",
];

/// The child: a backup of node-0 in a directory of its own under
/// `DIR_VAR`, the node's old keystore (party 1's save data, what a broken
/// node held) in place, then a recovery (or, with `DRILL_VAR` set, a
/// drill) from the three custodians, which stops for good at the step the
/// environment names.
#[tokio::test]
#[ignore = "the child of the tests below; does nothing on its own"]
async fn child_recovers_until_paused() {
    let Some(root) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let protocol = protocol_from_env();
    let dir = tempfile::Builder::new()
        .prefix("run")
        .tempdir_in(root)
        .unwrap();
    let storage = SqliteStorage::open(dir.path().join("backup.sqlite"))
        .await
        .unwrap();
    let r = Recovery::new(Fixture::new(storage, dir).await, protocol).await;
    // Written by hand: `write_keystore` would stop at the first step.
    let old = codec()
        .encode(&r.generated.version, &save_data(protocol, 1).to_json())
        .unwrap();
    std::fs::write(
        keystore_path(&r.f.h.dir.path().join("keystore"), &r.generated.version),
        old,
    )
    .unwrap();
    // The session's key is announced by the service (pause-points).
    let descriptor = if std::env::var_os(DRILL_VAR).is_some() {
        let hash = r.drill_approved(false).await;
        let h = &r.f.h;
        h.service
            .start_drill(&h.operator, &hash, r.drill_params())
            .await
            .unwrap()
    } else {
        r.start().await.unwrap()
    };
    for (i, container) in r.generated.containers.iter().enumerate() {
        let contents = container_contents(&r, &container.container, i);
        let opened =
            OpenedContainer::decode_verify(&contents, r.f.h.service.trusted_signers()).unwrap();
        let share = opened.into_parts().0.into_plain_share().unwrap();
        let value = match &share {
            CurveShare::Secp256k1(share) => share.value_be_bytes(),
            CurveShare::Ed25519(share) => share.value_be_bytes(),
        };
        println!("shardkeep-share {}", hex::encode(*value));
    }
    let submissions: Vec<Vec<u8>> = (0..3)
        .map(|i| r.submission(i, descriptor.as_bytes()).unwrap())
        .collect();
    r.submit(&descriptor, &submissions, &codec()).await.unwrap();
    // Not paused: the step named is not one the recovery passes.
    println!("shardkeep-finished");
    std::mem::forget(r);
}

/// What the child told: the session's id and age key, the shares' values.
struct Told {
    session: String,
    session_key: String,
    shares: Vec<Vec<u8>>,
}

/// Runs the child until it stops at `step`, then kills it; returns its
/// directory and what it told.
fn run_child(root: &Path, protocol: Protocol, step: &str, drill: bool) -> (PathBuf, Told) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if drill {
        command.env(DRILL_VAR, "1");
    }
    let mut child = command
        .args([
            "--exact",
            "child_recovers_until_paused",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, root)
        .env(PROTOCOL_VAR, protocol.dir())
        .env(PAUSE_AT_VAR, step)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut told = Told {
        session: String::new(),
        session_key: String::new(),
        shares: Vec::new(),
    };
    let mut paused = false;
    let paused_line = format!("shardkeep-paused {step}");
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The test harness may print its own words before ours on a line.
        let told_after = |marker: &str| line.find(marker).map(|at| &line[at + marker.len()..]);
        if let Some(rest) = told_after("shardkeep-session-key ") {
            let (session, key) = rest.split_once(' ').unwrap();
            told.session = session.to_owned();
            told.session_key = key.to_owned();
        } else if let Some(share) = told_after("shardkeep-share ") {
            told.shares.push(hex::decode(share).unwrap());
        } else if line.ends_with(&paused_line) {
            paused = true;
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(paused, "{step}: the child never stopped there");
    assert!(told.session_key.starts_with("AGE-SECRET-KEY-1"), "{step}");
    assert_eq!(told.shares.len(), 3, "{step}");
    let mut runs = std::fs::read_dir(root).unwrap();
    let dir = runs.next().unwrap().unwrap().path();
    assert!(runs.next().is_none());
    (dir, told)
}

fn version() -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("wallet").unwrap(),
        node_id: NodeId::new("node-0").unwrap(),
        version: KeyVersion::new(1),
    }
}

/// The keystore holds the old or the new save data, as expected at `step`;
/// a leftover temporary file is the interrupted write's, never in place.
fn check_keystore(dir: &Path, protocol: Protocol, step: &str, new_expected: bool) {
    let path = keystore_path(&dir.join("keystore"), &version());
    let loaded = load_keystore(&path, &version(), &codec())
        .unwrap_or_else(|error| panic!("{step}: torn keystore: {error}"));
    let new = bool::from(loaded.ct_eq(&save_data(protocol, 0)));
    let old = bool::from(loaded.ct_eq(&save_data(protocol, 1)));
    assert!(new || old, "{step}: the keystore holds neither");
    assert_eq!(new, new_expected, "{step}: new keystore in place: {new}");
    let others: Vec<String> = std::fs::read_dir(dir.join("keystore"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| Path::new(name) != path.file_name().unwrap())
        .collect();
    assert!(
        others.iter().all(|name| name.ends_with(".tmp")) && others.len() <= 1,
        "{step}: {others:?}"
    );
}

/// The 32 bytes of an age secret key (bech32, checksum not checked: the
/// test only needs the bytes to search for).
fn age_key_bytes(key: &str) -> Vec<u8> {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = key.to_ascii_lowercase();
    let data = lower.rsplit_once('1').unwrap().1;
    let values: Vec<u32> = data
        .bytes()
        .map(|c| u32::try_from(CHARSET.iter().position(|&x| x == c).unwrap()).unwrap())
        .collect();
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for value in &values[..values.len() - 6] {
        acc = ((acc << 5) | value) & 0xfff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap());
        }
    }
    assert_eq!(out.len(), 32);
    out
}

/// Every regular file under `path` (or `path` itself).
fn files_under(path: &Path, out: &mut Vec<PathBuf>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        // Another process's drill sandbox may go away meanwhile.
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            files_under(&entry.path(), out);
        }
    } else if meta.is_file() {
        out.push(path.to_path_buf());
    }
}

/// The files the killed process could have left secrets in: its whole
/// directory (database with WAL and shared memory, key store, keystore
/// directory) and, in the system's temporary directory, drill sandboxes
/// and SQLite's temporary files.
fn left_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    for entry in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("shardkeep-drill-") || name.starts_with("etilqs_") {
            files_under(&entry.path(), &mut files);
        }
    }
    files
}

/// No file left holds any of the secrets, in any byte order.
fn scan(dir: &Path, protocol: Protocol, step: &str, told: &Told) {
    let data = save_data(protocol, 0);
    let xi = match protocol {
        Protocol::Ecdsa => data.secret_share::<Secp256k1>().unwrap().to_be_bytes(),
        Protocol::Eddsa => data.secret_share::<Ed25519>().unwrap().to_be_bytes(),
    };
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("Xi".to_owned(), xi.to_vec()),
        (
            "the session key".to_owned(),
            age_key_bytes(&told.session_key),
        ),
        (
            "the session key's text".to_owned(),
            told.session_key.as_bytes().to_vec(),
        ),
        (
            "an age secret key's text".to_owned(),
            b"AGE-SECRET-KEY-".to_vec(),
        ),
    ];
    for (i, share) in told.shares.iter().enumerate() {
        needles.push((format!("share {i}"), share.clone()));
    }
    let reversed: Vec<(String, Vec<u8>)> = needles
        .iter()
        .filter(|(name, _)| !name.contains("text"))
        .map(|(name, bytes)| {
            (
                format!("{name} (little-endian)"),
                bytes.iter().rev().copied().collect(),
            )
        })
        .collect();
    needles.extend(reversed);
    let files = left_files(dir);
    assert!(
        files.iter().any(|file| file.ends_with("backup.sqlite-wal")),
        "{step}: {files:?}"
    );
    for file in &files {
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            // Only another process's files (in the system's temporary
            // directory) may go away meanwhile.
            Err(error)
                if error.kind() == std::io::ErrorKind::NotFound && !file.starts_with(dir) =>
            {
                continue;
            }
            Err(error) => panic!("{}: {error}", file.display()),
        };
        for (name, needle) in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|window| window == needle),
                "{step}: {} holds {name}",
                file.display()
            );
        }
    }
}

/// A service over the killed process's database, as the restarted
/// replica: a new recovery of the node starts (after the stuck session
/// lapsed, when it was still open).
fn start_again(dir: &Path, step: &str, closed: bool) {
    let runtime = shardkeep_test_support::runtime::current_thread();
    runtime.block_on(async {
        let storage = SqliteStorage::open(dir.join("backup.sqlite"))
            .await
            .unwrap();
        let clock = Arc::new(FixedClock::new(start_time()));
        let service = BackupService::new(ServiceParts::new(
            storage,
            ServiceConfig::new(Label::new("test").unwrap(), Label::new("r1").unwrap()),
            Arc::new(LocalKeyStore::open(dir.join("kms")).unwrap()),
            Arc::new(service_signer()),
            clock.clone(),
            Box::new(ChaCha20Rng::from_seed([44; 32])),
        ))
        .unwrap();
        let mut tx = service.storage().begin_read_only().await.unwrap();
        let split_id = tx.split_reference(&version()).await.unwrap().split_id;
        tx.rollback().await.unwrap();
        let params = RecoveryParams {
            version: version(),
            target: text(&dir.join("keystore").display().to_string()),
            allow_server_shares: false,
            ticket: text("INC-43"),
            risk_note_hash: [0x78; 32],
        };
        let request = service
            .request_approval(&actor("ops-1"), params.approval_params(split_id))
            .await
            .unwrap();
        let bytes = request.encode().unwrap();
        for (name, role) in [("biz-1", Role::BusinessOwner), ("sec-2", Role::Security)] {
            let approval = sign_approval(&bytes, &actor(name), role, &approver_key(name)).unwrap();
            service
                .submit_approval(&actor(name), &approval.encode())
                .await
                .unwrap();
        }
        let hash = request.hash().unwrap();
        if !closed {
            let refused = service
                .start_recovery(&actor("ops-1"), &hash, params.clone())
                .await;
            assert!(
                matches!(refused, Err(Error::RecoverySessionActive(_))),
                "{step}: {refused:?}"
            );
            clock.advance(Duration::from_secs(15 * 60));
        }
        service
            .start_recovery(&actor("ops-1"), &hash, params)
            .await
            .unwrap_or_else(|error| panic!("{step}: no new session: {error}"));
    });
}

#[test]
fn a_killed_recovery_leaves_a_whole_keystore_and_no_secret() {
    for protocol in Protocol::ALL {
        for (step, new_in_place, closed) in STEPS {
            let root = tempfile::tempdir().unwrap();
            let (dir, told) = run_child(root.path(), protocol, step, false);
            check_keystore(&dir, protocol, step, new_in_place);
            scan(&dir, protocol, step, &told);
            start_again(&dir, step, closed);
        }
    }
}

/// The drill sandboxes of `session` in the system's temporary directory.
fn sandboxes_of(session: &str) -> Vec<PathBuf> {
    let prefix = format!("shardkeep-drill-{session}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect()
}

/// A drill killed while it writes its sandbox's keystore leaves the node's
/// keystore as it was and no secret anywhere: the sandbox it could not
/// delete holds at most ciphertext under a one-time KEK that died with the
/// process. A new session starts once the stuck one lapsed, and closing
/// the stuck one removes the sandbox.
#[test]
fn a_killed_drill_leaves_the_node_alone_and_no_secret() {
    for protocol in Protocol::ALL {
        for step in DRILL_STEPS {
            let root = tempfile::tempdir().unwrap();
            let (dir, told) = run_child(root.path(), protocol, step, true);
            check_keystore(&dir, protocol, step, false);
            let sandboxes = sandboxes_of(&told.session);
            assert_eq!(sandboxes.len(), 1, "{step}: {sandboxes:?}");
            let mut files = Vec::new();
            files_under(&sandboxes[0], &mut files);
            let expected = usize::from(step != "keystore-create-temp");
            assert_eq!(files.len(), expected, "{step}: {files:?}");
            scan(&dir, protocol, step, &told);
            start_again(&dir, step, false);
            assert_eq!(sandboxes_of(&told.session), Vec::<PathBuf>::new(), "{step}");
        }
    }
}
