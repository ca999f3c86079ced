//! The local key-file provider against a real file system: round trips,
//! crypto-shredding, wrong and tampered keys, permission refusals, races.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::{
    CustodyError, DataKey, KekId, KeyEncryptionKey, ShareSlot, Signer, SignerId, WrappedKey,
};
use shardkeep_kms::{
    DestroyOutcome, Error, KeyFileError, KeyFileSigner, KeyKind, LocalKeyStore, SlotKekProvider,
};
use tempfile::TempDir;

mod common;
use common::{data_key, open, same_key, seal, slot};

fn store() -> (TempDir, LocalKeyStore) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        LocalKeyStore::create(dir.path().join("kms"), KekId::new("master-1").unwrap()).unwrap();
    (dir, store)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn slot_record(store: &LocalKeyStore, slot: &ShareSlot) -> std::path::PathBuf {
    store
        .dir()
        .join("slots")
        .join(format!("{}.kek", LocalKeyStore::slot_kek_id(slot)))
}

#[test]
fn creates_private_files_and_directories() {
    let (_dir, store) = store();
    let s = slot("key-1", "node-1", 1, 1);
    store.slot_kek(&s).unwrap();
    assert_eq!(mode(store.dir()), 0o700);
    assert_eq!(mode(&store.dir().join("slots")), 0o700);
    assert_eq!(mode(&store.dir().join("master.key")), 0o600);
    assert_eq!(mode(&slot_record(&store, &s)), 0o600);
    // No temporary file is left behind.
    let names: Vec<_> = fs::read_dir(store.dir().join("slots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [format!("{}.kek", LocalKeyStore::slot_kek_id(&s))]);
}

#[test]
fn a_slot_kek_survives_reopening_and_new_handles() {
    let (_dir, store) = store();
    let s = slot("key-1", "node-1", 1, 1);
    let kek = store.slot_kek(&s).unwrap();
    assert_eq!(kek.kek_id(), &LocalKeyStore::slot_kek_id(&s));
    assert!(kek.kek_id().as_str().starts_with("file-slot-"));
    let key = data_key(1);
    let wrapped = kek.wrap(&key).unwrap();
    assert_eq!(wrapped.as_bytes().len(), 61);

    let again = store.slot_kek(&s).unwrap();
    assert!(same_key(&again.unwrap(&wrapped).unwrap(), &key));

    let reopened = LocalKeyStore::open(store.dir()).unwrap();
    assert_eq!(reopened.master_id().as_str(), "master-1");
    let opened = reopened.open_slot_kek(&s).unwrap();
    assert!(same_key(&opened.unwrap(&wrapped).unwrap(), &key));
}

#[test]
fn wrapping_twice_gives_different_ciphertexts_of_the_same_key() {
    let (_dir, store) = store();
    let kek = store.slot_kek(&slot("k", "n", 0, 1)).unwrap();
    let key = data_key(2);
    let (a, b) = (kek.wrap(&key).unwrap(), kek.wrap(&key).unwrap());
    assert_ne!(a, b);
    assert!(same_key(&kek.unwrap(&a).unwrap(), &kek.unwrap(&b).unwrap()));
}

#[test]
fn crypto_shredding_a_slot_leaves_the_others_alone() {
    let (_dir, store) = store();
    let doomed = slot("key-1", "node-1", 1, 1);
    let kept = slot("key-1", "node-1", 1, 2);
    let doomed_kek = store.slot_kek(&doomed).unwrap();
    let kept_kek = store.slot_kek(&kept).unwrap();

    // Seal a "share" the way the envelope does: AES-256-GCM-SIV under a
    // fresh data key, the data key wrapped under the slot's KEK.
    let share = b"a backup share of Xi";
    let doomed_share = seal(&doomed_kek, share, 3);
    let kept_share = seal(&kept_kek, share, 3);
    assert_eq!(open(&doomed_kek, &doomed_share).unwrap(), share);

    let record = slot_record(&store, &doomed);
    assert!(record.exists());
    assert_eq!(
        store.destroy_slot_kek(&doomed).unwrap(),
        DestroyOutcome::Destroyed
    );
    assert!(!record.exists());

    // The old handle, a fresh open, and wrapping anew all fail.
    let gone = CustodyError::KeyNotFound(LocalKeyStore::slot_kek_id(&doomed).to_string());
    assert_eq!(open(&doomed_kek, &doomed_share).unwrap_err(), gone);
    assert_eq!(doomed_kek.wrap(&data_key(4)).unwrap_err(), gone);
    assert!(matches!(
        store.open_slot_kek(&doomed),
        Err(Error::SlotKekNotFound { ref slot, .. }) if *slot == doomed
    ));
    // Re-creating the slot gives a new KEK that does not open the old share.
    let recreated = store.slot_kek(&doomed).unwrap();
    assert_eq!(
        open(&recreated, &doomed_share).unwrap_err(),
        CustodyError::UnwrapFailed
    );
    // The old handle names the slot, so it now uses the new key: no opening.
    assert_eq!(
        open(&doomed_kek, &doomed_share).unwrap_err(),
        CustodyError::UnwrapFailed
    );
    // The neighbouring slot is untouched.
    assert_eq!(open(&kept_kek, &kept_share).unwrap(), share);
    // A retried hard delete succeeds.
    store.destroy_slot_kek(&doomed).unwrap();
    assert_eq!(
        store.destroy_slot_kek(&doomed).unwrap(),
        DestroyOutcome::AlreadyAbsent
    );
}

#[test]
fn destroy_removes_exposed_records_and_links_but_not_directories() {
    let (_dir, store) = store();
    // A record someone made world-readable is refused for use but still
    // destroyed: exposure is a reason to shred, not to keep.
    let exposed = slot("k", "n", 0, 1);
    store.slot_kek(&exposed).unwrap();
    chmod(&slot_record(&store, &exposed), 0o644);
    assert_eq!(
        store.destroy_slot_kek(&exposed).unwrap(),
        DestroyOutcome::Destroyed
    );
    assert!(!slot_record(&store, &exposed).exists());
    // A symlink in a record's place is unlinked, its target left alone.
    let linked = slot("k", "n", 0, 2);
    let target = store.dir().join("elsewhere");
    fs::write(&target, b"not a key").unwrap();
    symlink(&target, slot_record(&store, &linked)).unwrap();
    store.destroy_slot_kek(&linked).unwrap();
    assert!(fs::symlink_metadata(slot_record(&store, &linked)).is_err());
    assert_eq!(fs::read(&target).unwrap(), b"not a key");
    // A directory in a record's place is an error, and stays.
    let odd = slot("k", "n", 0, 3);
    fs::create_dir(slot_record(&store, &odd)).unwrap();
    assert!(matches!(
        store.destroy_slot_kek(&odd),
        Err(Error::NotRegularFile { .. })
    ));
}

#[test]
fn destroy_also_removes_temporary_copies_of_the_record() {
    let (_dir, store) = store();
    let s = slot("k", "n", 0, 1);
    store.slot_kek(&s).unwrap();
    let record = slot_record(&store, &s);
    // What a crash between link and unlink leaves behind.
    let leftover = store.dir().join("slots").join(format!(
        ".tmp-{}.0123456789abcdef",
        record.file_name().unwrap().to_str().unwrap()
    ));
    fs::copy(&record, &leftover).unwrap();
    chmod(&leftover, 0o600);
    store.destroy_slot_kek(&s).unwrap();
    assert!(!leftover.exists());
    assert_eq!(fs::read_dir(store.dir().join("slots")).unwrap().count(), 0);
}

#[test]
fn a_key_wrapped_for_one_slot_does_not_open_under_another() {
    let (_dir, store) = store();
    let a = store.slot_kek(&slot("key-1", "node-1", 1, 1)).unwrap();
    let b = store.slot_kek(&slot("key-1", "node-1", 1, 2)).unwrap();
    let wrapped = a.wrap(&data_key(5)).unwrap();
    assert_eq!(b.unwrap(&wrapped).unwrap_err(), CustodyError::UnwrapFailed);

    // Nor under the same slot in another store (another master key).
    let (_dir2, other) = store_with_master("master-1");
    let c = other.slot_kek(&slot("key-1", "node-1", 1, 1)).unwrap();
    assert_eq!(c.unwrap(&wrapped).unwrap_err(), CustodyError::UnwrapFailed);
}

fn store_with_master(id: &str) -> (TempDir, LocalKeyStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalKeyStore::create(dir.path().join("kms"), KekId::new(id).unwrap()).unwrap();
    (dir, store)
}

#[test]
fn every_tampered_wrapped_key_is_refused() {
    let (_dir, store) = store();
    let kek = store.slot_kek(&slot("k", "n", 0, 1)).unwrap();
    let wrapped = kek.wrap(&data_key(6)).unwrap();
    let bytes = wrapped.as_bytes();
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes.to_vec();
            bad[at] ^= 1 << bit;
            assert_eq!(
                kek.unwrap(&WrappedKey::new(bad).unwrap()).unwrap_err(),
                CustodyError::UnwrapFailed,
                "byte {at} bit {bit}"
            );
        }
    }
    for len in [1, 13, 60, 62, 200] {
        let mut bad = bytes.to_vec();
        bad.resize(len, 0);
        assert_eq!(
            kek.unwrap(&WrappedKey::new(bad).unwrap()).unwrap_err(),
            CustodyError::UnwrapFailed
        );
    }
}

#[test]
fn refuses_key_files_open_to_group_or_others() {
    let (_dir, store) = store();
    let master = store.dir().join("master.key");
    for bad in [0o640, 0o604, 0o620, 0o602, 0o660, 0o644, 0o610, 0o601] {
        chmod(&master, bad);
        match LocalKeyStore::open(store.dir()) {
            Err(Error::InsecurePermissions { path, mode }) => {
                assert_eq!(path, master);
                assert_eq!(mode, bad);
            }
            other => panic!("mode {bad:o}: {other:?}"),
        }
    }
    chmod(&master, 0o400);
    LocalKeyStore::open(store.dir()).unwrap();

    // The same for a slot record, checked on every use.
    let s = slot("k", "n", 0, 1);
    let kek = store.slot_kek(&s).unwrap();
    let record = slot_record(&store, &s);
    chmod(&record, 0o644);
    assert!(matches!(
        store.open_slot_kek(&s),
        Err(Error::InsecurePermissions { .. })
    ));
    assert!(matches!(
        kek.wrap(&data_key(7)).unwrap_err(),
        CustodyError::Provider(message) if message.contains("chmod 600")
    ));
}

#[test]
fn refuses_directories_writable_by_group_or_others() {
    let (_dir, store) = store();
    chmod(store.dir(), 0o770);
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::InsecureDirectory { mode: 0o770, .. })
    ));
    chmod(store.dir(), 0o755);
    LocalKeyStore::open(store.dir()).unwrap();
    chmod(&store.dir().join("slots"), 0o777);
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::InsecureDirectory { .. })
    ));
}

#[test]
fn refuses_symlinks_and_special_files() {
    let (_dir, store) = store();
    let master = store.dir().join("master.key");
    let elsewhere = store.dir().join("elsewhere.key");
    fs::rename(&master, &elsewhere).unwrap();
    symlink(&elsewhere, &master).unwrap();
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::Symlink { .. })
    ));
    fs::remove_file(&master).unwrap();
    fs::create_dir(&master).unwrap();
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::NotRegularFile { .. })
    ));
    fs::remove_dir(&master).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&master)
        .status()
        .expect("mkfifo (coreutils) is needed for this test");
    assert!(status.success());
    chmod(&master, 0o600);
    // Opening a FIFO must neither block nor be accepted.
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::NotRegularFile { .. })
    ));
}

#[test]
fn refuses_key_files_owned_by_someone_else() {
    let (_dir, store) = store();
    let master = store.dir().join("master.key");
    if rustix::process::geteuid().is_root() {
        // As root, hand the file to `nobody`.
        std::os::unix::fs::chown(&master, Some(65534), None).unwrap();
        assert!(matches!(
            LocalKeyStore::open(store.dir()),
            Err(Error::WrongOwner {
                owner: 65534,
                expected: 0,
                ..
            })
        ));
    } else {
        // Otherwise point a signer at a private file of root's.
        assert!(matches!(
            KeyFileSigner::open("/etc/shadow"),
            Err(Error::WrongOwner { .. } | Error::Io { .. })
        ));
    }
}

#[test]
fn never_overwrites_or_silently_replaces_a_master_key() {
    let (_dir, store) = store();
    assert!(matches!(
        LocalKeyStore::create(store.dir(), KekId::new("master-2").unwrap()),
        Err(Error::AlreadyExists { .. })
    ));
    // open_or_create opens what is there.
    let same = LocalKeyStore::open_or_create(store.dir(), KekId::new("master-2").unwrap()).unwrap();
    assert_eq!(same.master_id().as_str(), "master-1");
    // With slot records present, a lost master key is an error, not a
    // fresh key that cannot open them.
    store.slot_kek(&slot("k", "n", 0, 1)).unwrap();
    fs::remove_file(store.dir().join("master.key")).unwrap();
    assert!(matches!(
        LocalKeyStore::open_or_create(store.dir(), KekId::new("master-2").unwrap()),
        Err(Error::MasterKeyMissing { .. })
    ));
    // An empty or missing directory is created.
    let dir = tempfile::tempdir().unwrap();
    let fresh =
        LocalKeyStore::open_or_create(dir.path().join("a/b"), KekId::new("m").unwrap()).unwrap();
    assert_eq!(fresh.master_id().as_str(), "m");
}

#[test]
fn detects_moved_corrupt_and_foreign_slot_records() {
    let (_dir, store) = store();
    let a = slot("k", "n", 0, 1);
    let b = slot("k", "n", 0, 2);
    store.slot_kek(&a).unwrap();
    // A's record filed under B's name.
    fs::copy(slot_record(&store, &a), slot_record(&store, &b)).unwrap();
    chmod(&slot_record(&store, &b), 0o600);
    assert!(matches!(
        store.open_slot_kek(&b),
        Err(Error::SlotMismatch { .. })
    ));
    fs::remove_file(slot_record(&store, &b)).unwrap();

    // A damaged record fails its checksum.
    let record = slot_record(&store, &a);
    let mut bytes = fs::read(&record).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&record, &bytes).unwrap();
    assert!(matches!(
        store.open_slot_kek(&a),
        Err(Error::KeyFile {
            source: KeyFileError::ChecksumMismatch,
            ..
        })
    ));

    // A record from a store with another master key.
    let (_dir2, other) = store_with_master("master-other");
    other.slot_kek(&a).unwrap();
    fs::copy(slot_record(&other, &a), &record).unwrap();
    assert!(matches!(
        store.open_slot_kek(&a),
        Err(Error::MasterKeyMismatch { ref found, .. }) if found.as_str() == "master-other"
    ));
    // Same master id, different master key: the record does not open.
    let (_dir3, twin) = store_with_master("master-1");
    twin.slot_kek(&a).unwrap();
    fs::copy(slot_record(&twin, &a), &record).unwrap();
    assert!(matches!(
        store.open_slot_kek(&a),
        Err(Error::SlotRecordUnwrapFailed { .. })
    ));
}

#[test]
fn truncated_and_padded_key_files_are_refused() {
    let (_dir, store) = store();
    let master = store.dir().join("master.key");
    let bytes = fs::read(&master).unwrap();
    fs::write(&master, &bytes[..bytes.len() - 1]).unwrap();
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::KeyFile {
            source: KeyFileError::Truncated,
            ..
        })
    ));
    fs::write(&master, [&bytes[..], b"x"].concat()).unwrap();
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::KeyFile {
            source: KeyFileError::TrailingBytes(1),
            ..
        })
    ));
    fs::write(&master, vec![0u8; 4096]).unwrap();
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::KeyFile {
            source: KeyFileError::TooLarge { len: 4096, .. },
            ..
        })
    ));
}

#[test]
fn concurrent_creators_agree_on_one_kek() {
    let (_dir, store) = store();
    let s = slot("race", "n", 0, 9);
    let key = data_key(8);
    let wrapped: Vec<WrappedKey> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = LocalKeyStore::open(store.dir()).unwrap();
                let (s, key) = (&s, &key);
                scope.spawn(move || store.slot_kek(s).unwrap().wrap(key).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let kek = store.open_slot_kek(&s).unwrap();
    for w in &wrapped {
        assert!(same_key(&kek.unwrap(w).unwrap(), &key));
    }
}

#[test]
fn the_provider_trait_is_object_safe_and_shared_across_threads() {
    let (_dir, store) = store();
    let provider: Arc<dyn SlotKekProvider> = Arc::new(store);
    let s = slot("k", "n", 7, 3);
    let wrapped = provider.slot_kek(&s).unwrap().wrap(&data_key(9)).unwrap();
    let other = Arc::clone(&provider);
    let s2 = s.clone();
    let back = std::thread::spawn(move || other.open_slot_kek(&s2).unwrap().unwrap(&wrapped))
        .join()
        .unwrap()
        .unwrap();
    assert!(same_key(&back, &data_key(9)));
    assert_eq!(provider.slot_kek_id(&s), LocalKeyStore::slot_kek_id(&s));
    assert_eq!(
        provider.destroy_slot_kek(&s).unwrap(),
        DestroyOutcome::Destroyed
    );
    let missing = provider.open_slot_kek(&s).unwrap_err();
    assert_eq!(
        CustodyError::from(missing),
        CustodyError::KeyNotFound(provider.slot_kek_id(&s).to_string())
    );
}

#[test]
fn key_file_signer_signs_verifiably_and_checks_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.key");
    let signer = KeyFileSigner::create(&path, SignerId::new("audit-1").unwrap()).unwrap();
    assert_eq!(mode(&path), 0o600);
    let message = b"shardkeep/checkpoint/v1 ...";
    let signature = signer.sign(message).unwrap();
    signer
        .verifying_key()
        .verify_strict(message, &signature)
        .unwrap();

    let reopened = KeyFileSigner::open(&path).unwrap();
    assert_eq!(reopened.signer_id().as_str(), "audit-1");
    assert_eq!(reopened.verifying_key(), signer.verifying_key());
    assert!(!format!("{reopened:?}").contains(&hex_of_file(&path)));

    assert!(matches!(
        KeyFileSigner::create(&path, SignerId::new("audit-2").unwrap()),
        Err(Error::AlreadyExists { .. })
    ));
    chmod(&path, 0o640);
    assert!(matches!(
        KeyFileSigner::open(&path),
        Err(Error::InsecurePermissions { mode: 0o640, .. })
    ));
    // A master key file is not a signer.
    let (_dir2, store) = store();
    assert!(matches!(
        KeyFileSigner::open(store.dir().join("master.key")),
        Err(Error::KeyFile {
            source: KeyFileError::WrongKind {
                expected: KeyKind::Ed25519Seed,
                found: KeyKind::MasterKek
            },
            ..
        })
    ));
}

fn hex_of_file(path: &Path) -> String {
    hex::encode(fs::read(path).unwrap())
}

#[test]
fn debug_output_shows_no_key_material() {
    let (_dir, store) = store();
    let master = hex_of_file(&store.dir().join("master.key"));
    let secret_part = &master[master.len() - 128..master.len() - 64];
    let text = format!(
        "{store:?} {:?}",
        store.slot_kek(&slot("k", "n", 0, 1)).unwrap()
    );
    assert!(text.contains("master-1"));
    assert!(!text.contains(secret_part));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn wrap_unwrap_round_trips(
        seeds in proptest::collection::vec(any::<[u8; 32]>(), 1..4),
        index in 1u8..=255,
        version in any::<u32>(),
    ) {
        let (_dir, store) = store();
        let kek = store.slot_kek(&slot("prop-key", "prop-node", version, index)).unwrap();
        for seed in seeds {
            let key = DataKey::generate(&mut ChaCha20Rng::from_seed(seed));
            let wrapped = kek.wrap(&key).unwrap();
            prop_assert!(same_key(&kek.unwrap(&wrapped).unwrap(), &key));
        }
    }
}
