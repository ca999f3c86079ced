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
use shardkeep_kms::{
    DestroyOutcome, Error, KekPin, KeyFileError, KeyFileSigner, KeyKind, LocalKeyStore,
    ShredMethod, SlotKekProvider,
};
use shardkeep_types::{
    CustodyError, DataKey, FramingError, KekId, KeyEncryptionKey, ShareSlot, Signer, SignerId,
    WrappedKey,
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

/// Where the documented layout puts the record a pin names.
fn slot_record(store: &LocalKeyStore, pin: &KekPin) -> std::path::PathBuf {
    store.dir().join("slots").join(record_name(pin))
}

fn record_name(pin: &KekPin) -> String {
    format!("{}.{}.kek", pin.kek_id, hex::encode(pin.fingerprint))
}

/// A pin for `slot` that no KEK has.
fn made_up_pin(slot: &ShareSlot, byte: u8) -> KekPin {
    KekPin {
        kek_id: LocalKeyStore::slot_kek_id(slot),
        fingerprint: [byte; 32],
    }
}

#[test]
fn creates_private_files_and_directories() {
    let (_dir, store) = store();
    let s = slot("key-1", "node-1", 1, 1);
    let kek = store.create_slot_kek(&s).unwrap();
    assert_eq!(mode(store.dir()), 0o700);
    assert_eq!(mode(&store.dir().join("slots")), 0o700);
    assert_eq!(mode(&store.dir().join("master.key")), 0o600);
    assert_eq!(mode(&slot_record(&store, kek.pin())), 0o600);
    // No temporary file is left behind.
    let names: Vec<_> = fs::read_dir(store.dir().join("slots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [record_name(kek.pin())]);
}

#[test]
fn a_slot_kek_survives_reopening_and_new_handles() {
    let (_dir, store) = store();
    let s = slot("key-1", "node-1", 1, 1);
    let kek = store.create_slot_kek(&s).unwrap();
    assert_eq!(kek.kek_id(), &LocalKeyStore::slot_kek_id(&s));
    assert_eq!(kek.pin().kek_id, LocalKeyStore::slot_kek_id(&s));
    assert!(kek.kek_id().as_str().starts_with("file-slot-"));
    assert_eq!(KeyEncryptionKey::slot(&kek), Some(&s));
    let key = data_key(1);
    let wrapped = kek.wrap(&key).unwrap();
    assert_eq!(wrapped.as_bytes().len(), 61);

    let again = store.open_slot_kek(&s, kek.pin()).unwrap();
    assert!(same_key(&again.unwrap(&wrapped).unwrap(), &key));
    assert_eq!(again.pin(), kek.pin());

    let reopened = LocalKeyStore::open(store.dir()).unwrap();
    assert_eq!(reopened.master_id().as_str(), "master-1");
    let opened = reopened.open_slot_kek(&s, kek.pin()).unwrap();
    assert!(same_key(&opened.unwrap(&wrapped).unwrap(), &key));

    // Creating again makes another KEK with another pin; each pin opens
    // its own KEK only.
    let second = store.create_slot_kek(&s).unwrap();
    assert_ne!(second.pin(), kek.pin());
    assert_eq!(
        second.unwrap(&wrapped).unwrap_err(),
        CustodyError::UnwrapFailed
    );
    let opened = store.open_slot_kek(&s, kek.pin()).unwrap();
    assert!(same_key(&opened.unwrap(&wrapped).unwrap(), &key));
}

#[test]
fn wrapping_twice_gives_different_ciphertexts_of_the_same_key() {
    let (_dir, store) = store();
    let kek = store.create_slot_kek(&slot("k", "n", 0, 1)).unwrap();
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
    let doomed_kek = store.create_slot_kek(&doomed).unwrap();
    let kept_kek = store.create_slot_kek(&kept).unwrap();
    let doomed_pin = doomed_kek.pin().clone();

    // Seal a "share" the way the envelope does: AES-256-GCM-SIV under a
    // fresh data key, the data key wrapped under the slot's KEK.
    let share = b"a backup share of Xi";
    let doomed_share = seal(&doomed_kek, share, 3);
    let kept_share = seal(&kept_kek, share, 3);
    assert_eq!(open(&doomed_kek, &doomed_share).unwrap(), share);

    let record = slot_record(&store, &doomed_pin);
    assert!(record.exists());
    let report = store.destroy_slot_kek(&doomed, &doomed_pin).unwrap();
    assert_eq!(report.outcome, DestroyOutcome::Destroyed);
    assert_eq!(report.method, ShredMethod::FileDelete);
    assert_eq!(report.look_alikes, 0);
    assert!(!record.exists());

    // The old handle, a fresh open, and wrapping anew all fail.
    let gone = CustodyError::KeyNotFound(LocalKeyStore::slot_kek_id(&doomed).to_string());
    assert_eq!(open(&doomed_kek, &doomed_share).unwrap_err(), gone);
    assert_eq!(doomed_kek.wrap(&data_key(4)).unwrap_err(), gone);
    assert!(matches!(
        store.open_slot_kek(&doomed, &doomed_pin),
        Err(Error::SlotKekNotFound { ref slot, .. }) if *slot == doomed
    ));
    // Re-creating the slot gives a new KEK that does not open the old share.
    let recreated = store.create_slot_kek(&doomed).unwrap();
    assert_eq!(
        open(&recreated, &doomed_share).unwrap_err(),
        CustodyError::UnwrapFailed
    );
    // The old handle is pinned to the destroyed KEK: it never uses the new one.
    assert_eq!(open(&doomed_kek, &doomed_share).unwrap_err(), gone);
    // The neighbouring slot is untouched.
    assert_eq!(open(&kept_kek, &kept_share).unwrap(), share);
    // A retried hard delete succeeds, and leaves the new KEK alone (it is
    // reported, as a KEK of the slot that is not the pinned one).
    let retried = store.destroy_slot_kek(&doomed, &doomed_pin).unwrap();
    assert_eq!(retried.outcome, DestroyOutcome::AlreadyAbsent);
    assert_eq!(retried.look_alikes, 1);
    assert!(same_key(
        &store
            .open_slot_kek(&doomed, recreated.pin())
            .unwrap()
            .unwrap(&recreated.wrap(&data_key(9)).unwrap())
            .unwrap(),
        &data_key(9)
    ));
}

#[test]
fn destroy_removes_exposed_records_and_links_but_not_directories() {
    let (_dir, store) = store();
    // A record someone made world-readable is refused for use but still
    // destroyed: exposure is a reason to shred, not to keep.
    let exposed = slot("k", "n", 0, 1);
    let pin = store.create_slot_kek(&exposed).unwrap().pin().clone();
    chmod(&slot_record(&store, &pin), 0o644);
    assert_eq!(
        store.destroy_slot_kek(&exposed, &pin).unwrap().outcome,
        DestroyOutcome::Destroyed
    );
    assert!(!slot_record(&store, &pin).exists());
    // A symlink in a record's place is unlinked, its target left alone.
    let linked = made_up_pin(&slot("k", "n", 0, 2), 7);
    let target = store.dir().join("elsewhere");
    fs::write(&target, b"not a key").unwrap();
    symlink(&target, slot_record(&store, &linked)).unwrap();
    store
        .destroy_slot_kek(&slot("k", "n", 0, 2), &linked)
        .unwrap();
    assert!(fs::symlink_metadata(slot_record(&store, &linked)).is_err());
    assert_eq!(fs::read(&target).unwrap(), b"not a key");
    // A directory in a record's place is an error, and stays.
    let odd = made_up_pin(&slot("k", "n", 0, 3), 8);
    fs::create_dir(slot_record(&store, &odd)).unwrap();
    assert!(matches!(
        store.destroy_slot_kek(&slot("k", "n", 0, 3), &odd),
        Err(Error::NotRegularFile { .. })
    ));
}

#[test]
fn destroy_also_removes_temporary_copies_of_the_record() {
    let (_dir, store) = store();
    let s = slot("k", "n", 0, 1);
    let pin = store.create_slot_kek(&s).unwrap().pin().clone();
    let record = slot_record(&store, &pin);
    // What a crash between link and unlink leaves behind.
    let leftover = store.dir().join("slots").join(format!(
        ".tmp-{}.0123456789abcdef",
        record.file_name().unwrap().to_str().unwrap()
    ));
    fs::copy(&record, &leftover).unwrap();
    chmod(&leftover, 0o600);
    store.destroy_slot_kek(&s, &pin).unwrap();
    assert!(!leftover.exists());
    assert_eq!(fs::read_dir(store.dir().join("slots")).unwrap().count(), 0);
}

#[test]
fn a_key_wrapped_for_one_slot_does_not_open_under_another() {
    let (_dir, store) = store();
    let a = store
        .create_slot_kek(&slot("key-1", "node-1", 1, 1))
        .unwrap();
    let b = store
        .create_slot_kek(&slot("key-1", "node-1", 1, 2))
        .unwrap();
    let wrapped = a.wrap(&data_key(5)).unwrap();
    assert_eq!(b.unwrap(&wrapped).unwrap_err(), CustodyError::UnwrapFailed);

    // Nor under the same slot in another store (another master key).
    let (_dir2, other) = store_with_master("master-1");
    let c = other
        .create_slot_kek(&slot("key-1", "node-1", 1, 1))
        .unwrap();
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
    let kek = store.create_slot_kek(&slot("k", "n", 0, 1)).unwrap();
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
    let kek = store.create_slot_kek(&s).unwrap();
    let record = slot_record(&store, kek.pin());
    chmod(&record, 0o644);
    assert!(matches!(
        store.open_slot_kek(&s, kek.pin()),
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
    store.create_slot_kek(&slot("k", "n", 0, 1)).unwrap();
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
    let pin_a = store.create_slot_kek(&a).unwrap().pin().clone();
    // A's record filed under a name of B's.
    let pin_b = KekPin {
        kek_id: LocalKeyStore::slot_kek_id(&b),
        fingerprint: pin_a.fingerprint,
    };
    fs::copy(slot_record(&store, &pin_a), slot_record(&store, &pin_b)).unwrap();
    chmod(&slot_record(&store, &pin_b), 0o600);
    assert!(matches!(
        store.open_slot_kek(&b, &pin_b),
        Err(Error::SlotMismatch { .. })
    ));
    fs::remove_file(slot_record(&store, &pin_b)).unwrap();

    // Another record of A's own slot put in place of the pinned one (a
    // re-created KEK, or an old record restored from a backup).
    let record = slot_record(&store, &pin_a);
    let saved = fs::read(&record).unwrap();
    let other_of_a = store.create_slot_kek(&a).unwrap().pin().clone();
    fs::copy(slot_record(&store, &other_of_a), &record).unwrap();
    assert!(matches!(
        store.open_slot_kek(&a, &pin_a),
        Err(Error::KekPinMismatch { ref slot, .. }) if *slot == a
    ));
    fs::write(&record, &saved).unwrap();
    store.open_slot_kek(&a, &pin_a).unwrap();

    // A damaged record fails its checksum.
    let mut bytes = fs::read(&record).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&record, &bytes).unwrap();
    assert!(matches!(
        store.open_slot_kek(&a, &pin_a),
        Err(Error::KeyFile {
            source: KeyFileError::ChecksumMismatch,
            ..
        })
    ));

    // A record from a store with another master key.
    let (_dir2, other) = store_with_master("master-other");
    let foreign = other.create_slot_kek(&a).unwrap().pin().clone();
    fs::copy(slot_record(&other, &foreign), &record).unwrap();
    assert!(matches!(
        store.open_slot_kek(&a, &pin_a),
        Err(Error::MasterKeyMismatch { ref found, .. }) if found.as_str() == "master-other"
    ));
    // Same master id, different master key: the record does not open.
    let (_dir3, twin) = store_with_master("master-1");
    let twin_pin = twin.create_slot_kek(&a).unwrap().pin().clone();
    fs::copy(slot_record(&twin, &twin_pin), &record).unwrap();
    assert!(matches!(
        store.open_slot_kek(&a, &pin_a),
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
            source: KeyFileError::Framing(FramingError::Truncated { .. }),
            ..
        })
    ));
    fs::write(&master, [&bytes[..], b"x"].concat()).unwrap();
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::KeyFile {
            source: KeyFileError::Framing(FramingError::TrailingBytes { len: 1, .. }),
            ..
        })
    ));
    fs::write(&master, vec![0u8; 4096]).unwrap();
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::KeyFile {
            source: KeyFileError::Framing(FramingError::TooLarge { len: 4096, .. }),
            ..
        })
    ));
}

#[test]
fn concurrent_creators_each_get_a_kek_of_their_own() {
    let (_dir, store) = store();
    let s = slot("race", "n", 0, 9);
    let key = data_key(8);
    let created: Vec<(KekPin, WrappedKey)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = LocalKeyStore::open(store.dir()).unwrap();
                let (s, key) = (&s, &key);
                scope.spawn(move || {
                    let kek = store.create_slot_kek(s).unwrap();
                    (kek.pin().clone(), kek.wrap(key).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (pin, wrapped)) in created.iter().enumerate() {
        let kek = store.open_slot_kek(&s, pin).unwrap();
        assert!(same_key(&kek.unwrap(wrapped).unwrap(), &key));
        for (other, _) in &created[i + 1..] {
            assert_ne!(pin, other);
        }
    }
}

#[test]
fn the_provider_trait_is_object_safe_and_shared_across_threads() {
    let (_dir, store) = store();
    let provider: Arc<dyn SlotKekProvider> = Arc::new(store);
    let s = slot("k", "n", 7, 3);
    let (kek, pin) = provider.create_slot_kek(&s).unwrap();
    assert_eq!(kek.slot(), Some(&s));
    assert_eq!(kek.kek_id(), &pin.kek_id);
    let wrapped = kek.wrap(&data_key(9)).unwrap();
    let other = Arc::clone(&provider);
    let (s2, pin2) = (s.clone(), pin.clone());
    let back =
        std::thread::spawn(move || other.open_slot_kek(&s2, &pin2).unwrap().unwrap(&wrapped))
            .join()
            .unwrap()
            .unwrap();
    assert!(same_key(&back, &data_key(9)));
    assert_eq!(provider.slot_kek_id(&s), LocalKeyStore::slot_kek_id(&s));
    assert_eq!(
        provider.destroy_slot_kek(&s, &pin).unwrap().outcome,
        DestroyOutcome::Destroyed
    );
    let missing = provider.open_slot_kek(&s, &pin).unwrap_err();
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
        store.create_slot_kek(&slot("k", "n", 0, 1)).unwrap()
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
        let kek = store.create_slot_kek(&slot("prop-key", "prop-node", version, index)).unwrap();
        for seed in seeds {
            let key = DataKey::generate(&mut ChaCha20Rng::from_seed(seed));
            let wrapped = kek.wrap(&key).unwrap();
            prop_assert!(same_key(&kek.unwrap(&wrapped).unwrap(), &key));
        }
    }
}

// ---- Directory checks that follow paths (security review, finding 8) ----

#[test]
fn a_directory_swapped_for_a_symlink_after_the_check_is_not_followed() {
    let (dir, store) = store();
    // The store is opened (and its directories checked); then someone with
    // access to the path swaps the slots directory for a symbolic link to a
    // directory of theirs.
    let attacker = dir.path().join("attacker");
    fs::create_dir(&attacker).unwrap();
    chmod(&attacker, 0o700);
    let slots = store.dir().join("slots");
    fs::rename(&slots, store.dir().join("slots.moved")).unwrap();
    symlink(&attacker, &slots).unwrap();
    let s = slot("k", "n", 0, 1);
    let created = store.create_slot_kek(&s);
    assert_eq!(
        fs::read_dir(&attacker).unwrap().count(),
        0,
        "a slot KEK record was written through the swapped-in symlink ({created:?})"
    );
    // Swapping the whole store directory is not followed either.
    let moved = dir.path().join("kms.moved");
    fs::rename(store.dir(), &moved).unwrap();
    symlink(&attacker, store.dir()).unwrap();
    let _ = store.create_slot_kek(&slot("k", "n", 0, 2));
    assert_eq!(fs::read_dir(&attacker).unwrap().count(), 0);
    // A fresh open refuses the link outright.
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::Symlink { .. })
    ));
}

#[test]
fn refuses_a_key_directory_whose_parent_others_can_write() {
    let (dir, store) = store();
    // Whoever can write to a parent can rename the key directory away and
    // put one of their own in its place.
    chmod(dir.path(), 0o777);
    match LocalKeyStore::open(store.dir()) {
        Err(Error::InsecureDirectory { path, mode }) => {
            assert_eq!(path, dir.path());
            assert_eq!(mode, 0o777);
        }
        other => panic!("a world-writable parent was accepted: {other:?}"),
    }
    chmod(dir.path(), 0o770);
    assert!(matches!(
        LocalKeyStore::open(store.dir()),
        Err(Error::InsecureDirectory { .. })
    ));
    // With the sticky bit (like /tmp) others cannot rename our entries.
    chmod(dir.path(), 0o1777);
    LocalKeyStore::open(store.dir()).unwrap();
    chmod(dir.path(), 0o700);
    LocalKeyStore::open(store.dir()).unwrap();
}

#[test]
fn key_file_signer_checks_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    fs::create_dir(&keys).unwrap();
    chmod(&keys, 0o700);
    let path = keys.join("audit.key");
    KeyFileSigner::create(&path, SignerId::new("audit-1").unwrap()).unwrap();
    chmod(&keys, 0o777);
    assert!(matches!(
        KeyFileSigner::open(&path),
        Err(Error::InsecureDirectory { mode: 0o777, .. })
    ));
    assert!(matches!(
        KeyFileSigner::create(keys.join("other.key"), SignerId::new("audit-2").unwrap()),
        Err(Error::InsecureDirectory { .. })
    ));
    chmod(&keys, 0o700);
    chmod(dir.path(), 0o777);
    assert!(matches!(
        KeyFileSigner::open(&path),
        Err(Error::InsecureDirectory { .. })
    ));
}

// ---- Pins (security review, finding 1) ----

#[test]
fn wrong_pins_are_typed_errors_and_destroy_only_the_pinned_kek() {
    let (_dir, store) = store();
    let s = slot("k", "n", 0, 1);
    let kek = store.create_slot_kek(&s).unwrap();
    let wrapped = kek.wrap(&data_key(10)).unwrap();
    // A pin of another slot (another KEK id).
    let foreign = made_up_pin(&slot("k", "n", 0, 2), 1);
    assert!(matches!(
        store.open_slot_kek(&s, &foreign),
        Err(Error::KekPinIdMismatch { ref expected, ref found, .. })
            if *expected == kek.pin().kek_id && *found == foreign.kek_id
    ));
    assert!(matches!(
        store.destroy_slot_kek(&s, &foreign),
        Err(Error::KekPinIdMismatch { .. })
    ));
    // A pin of this slot that no KEK has.
    let wrong = made_up_pin(&s, 2);
    assert!(matches!(
        store.open_slot_kek(&s, &wrong),
        Err(Error::SlotKekNotFound { .. })
    ));
    // Destroying by it destroys nothing; the real KEK is a look-alike to it.
    let report = store.destroy_slot_kek(&s, &wrong).unwrap();
    assert_eq!(report.outcome, DestroyOutcome::AlreadyAbsent);
    assert_eq!(report.look_alikes, 1);
    let opened = store.open_slot_kek(&s, kek.pin()).unwrap();
    assert!(same_key(&opened.unwrap(&wrapped).unwrap(), &data_key(10)));
}
