//! The PKCS#11 provider against a real SoftHSM2 token: each test runs in a
//! child process with a token of its own (see `support/softhsm.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap or panic is a failed test

#[path = "support/softhsm.rs"]
mod softhsm;

mod common;

use std::sync::Arc;

use common::{data_key, open, same_key, seal, slot};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::{CustodyError, DataKey, KeyEncryptionKey, Signer, SignerId, WrappedKey};
use shardkeep_kms::{
    DestroyOutcome, Error, Pin, Pkcs11Config, Pkcs11Signer, Pkcs11SlotKek, Pkcs11Token,
    SlotKekProvider,
};
use softhsm::{TOKEN_LABEL, USER_PIN, config, module, open_token};

/// Declares tests that each run against a fresh SoftHSM2 token.
macro_rules! softhsm_tests {
    ($($(#[$meta:meta])* fn $name:ident() $body:block)*) => {
        $(
            $(#[$meta])*
            #[test]
            fn $name() {
                softhsm::run_test(concat!(module_path!(), "::", stringify!($name)), || $body);
            }
        )*
    };
}

/// A session of our own on the test token, beside the provider's, to look
/// at and tamper with token objects directly.
fn raw_session() -> Session {
    let ctx = Pkcs11::new(module()).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == TOKEN_LABEL)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    match session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
    session
}

fn objects_labelled(session: &Session, label: &str) -> Vec<ObjectHandle> {
    session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .unwrap()
}

fn rv(error: &CkError) -> RvError {
    match error {
        CkError::Pkcs11(rv, _) => *rv,
        other => panic!("not a PKCS#11 return value: {other}"),
    }
}

/// Seals a "share" as the envelope does: AES-256-GCM-SIV under a fresh data
/// key, the data key wrapped under the slot's KEK.
#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Pkcs11Token>();
    check::<Pkcs11SlotKek>();
    check::<Pkcs11Signer>();
}

#[test]
fn a_missing_module_is_a_clear_error() {
    let error = Pkcs11Token::open(Pkcs11Config::new(
        "/nonexistent/libsofthsm2.so",
        TOKEN_LABEL,
        Pin::new("x".into()),
    ))
    .unwrap_err();
    assert!(matches!(error, Error::ModuleLoad { .. }));
    assert!(error.to_string().contains("/nonexistent/libsofthsm2.so"));
}

#[test]
fn the_pin_never_shows_in_debug_output() {
    let config = Pkcs11Config::new(module(), TOKEN_LABEL, Pin::new("s3cret-pin".into()));
    let text = format!("{config:?}");
    assert!(!text.contains("s3cret-pin"));
    assert!(text.contains("<redacted>"));
}

softhsm_tests! {
    fn opens_the_token_and_refuses_wrong_pins_and_labels() {
        let token = open_token();
        assert_eq!(token.label(), TOKEN_LABEL);
        assert!(!format!("{token:?}").contains(USER_PIN));
        drop(token);
        // With no other session open, the wrong PIN reaches C_Login.
        assert!(matches!(
            Pkcs11Token::open(config("not-the-pin")),
            Err(Error::PinIncorrect)
        ));
        let mut wrong_label = config(USER_PIN);
        wrong_label.token_label = "no-such-token".into();
        assert!(matches!(
            Pkcs11Token::open(wrong_label),
            Err(Error::TokenNotFound(label)) if label == "no-such-token"
        ));
        // Two handles on one token share the application's login.
        let (a, b) = (open_token(), open_token());
        let wrapped = a.slot_kek(&slot("k", "n", 0, 1)).unwrap().wrap(&data_key(1)).unwrap();
        let back = b.open_slot_kek(&slot("k", "n", 0, 1)).unwrap().unwrap(&wrapped).unwrap();
        assert!(same_key(&back, &data_key(1)));
    }

    fn slot_keks_are_sensitive_non_extractable_wrap_only_token_objects() {
        let token = open_token();
        let s = slot("key-1", "node-1", 3, 2);
        let kek = token.slot_kek(&s).unwrap();
        assert_eq!(kek.label(), "shardkeep/slot-kek/v1/key-1/node-1/v3/2");
        assert_eq!(kek.kek_id(), &Pkcs11Token::slot_kek_id(&s));
        assert!(kek.kek_id().as_str().starts_with("p11-slot-"));

        let raw = raw_session();
        let [handle] = objects_labelled(&raw, kek.label())[..] else {
            panic!("expected exactly one KEK object");
        };
        let attributes = raw
            .get_attributes(
                handle,
                &[
                    AttributeType::Class,
                    AttributeType::KeyType,
                    AttributeType::ValueLen,
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Sensitive,
                    AttributeType::AlwaysSensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::Wrap,
                    AttributeType::Unwrap,
                    AttributeType::Encrypt,
                    AttributeType::Decrypt,
                    AttributeType::Modifiable,
                    AttributeType::Id,
                ],
            )
            .unwrap();
        let expected = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::AlwaysSensitive(true),
            Attribute::Extractable(false),
            Attribute::NeverExtractable(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Modifiable(false),
        ];
        assert_eq!(attributes[..expected.len()], expected);
        assert!(matches!(&attributes[expected.len()], Attribute::Id(id) if id.len() == 32));

        // Its value cannot be read, wrapped out, or used to decrypt.
        let value = raw.get_attributes(handle, &[AttributeType::Value]).unwrap();
        assert!(value.is_empty(), "CKA_VALUE of a KEK was readable");
        let other = token.slot_kek(&slot("key-1", "node-1", 3, 3)).unwrap();
        let [other_handle] = objects_labelled(&raw, other.label())[..] else {
            panic!("expected exactly one KEK object");
        };
        let wrapped_out = raw.wrap_key(&Mechanism::AesKeyWrap, other_handle, handle);
        assert_eq!(rv(&wrapped_out.unwrap_err()), RvError::KeyUnextractable);
        let wrapped = kek.wrap(&data_key(2)).unwrap();
        let decrypted = raw.decrypt(&Mechanism::AesKeyWrap, handle, wrapped.as_bytes());
        assert_eq!(rv(&decrypted.unwrap_err()), RvError::KeyFunctionNotPermitted);
    }

    fn wraps_with_standard_rfc_3394() {
        // RFC 3394 section 4.6: 256-bit key data under a 256-bit KEK, with
        // the default IV. Proves CKM_AES_KEY_WRAP is plain RFC 3394.
        let _token = open_token();
        let raw = raw_session();
        let kek = raw
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Wrap(true),
                Attribute::Value(hex::decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F").unwrap()),
            ])
            .unwrap();
        let key = raw
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Token(false),
                Attribute::Extractable(true),
                Attribute::Value(hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F").unwrap()),
            ])
            .unwrap();
        let wrapped = raw.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap();
        assert_eq!(
            hex::encode_upper(wrapped),
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
        );
    }

    fn wrap_unwrap_round_trips_and_find_or_create_is_idempotent() {
        let token = open_token();
        let s = slot("key-1", "node-1", 1, 1);
        let kek = token.slot_kek(&s).unwrap();
        let key = data_key(3);
        let wrapped = kek.wrap(&key).unwrap();
        assert_eq!(wrapped.as_bytes().len(), 40);
        assert!(same_key(&kek.unwrap(&wrapped).unwrap(), &key));
        // Find-or-create finds; open finds; a second token handle finds.
        assert!(same_key(&token.slot_kek(&s).unwrap().unwrap(&wrapped).unwrap(), &key));
        assert!(same_key(&token.open_slot_kek(&s).unwrap().unwrap(&wrapped).unwrap(), &key));
        assert!(same_key(&open_token().open_slot_kek(&s).unwrap().unwrap(&wrapped).unwrap(), &key));
        assert_eq!(objects_labelled(&raw_session(), kek.label()).len(), 1);
        // Unwrapping leaves no session object behind: the KEK is the only
        // object the provider's sessions can see besides the token's own.
        let raw = raw_session();
        let session_objects = raw.find_objects(&[Attribute::Token(false)]).unwrap();
        assert!(session_objects.is_empty(), "{} session objects left", session_objects.len());
        // Opening never creates.
        assert!(matches!(
            token.open_slot_kek(&slot("key-1", "node-1", 1, 2)),
            Err(Error::SlotKekNotFound { .. })
        ));
    }

    fn crypto_shredding_destroys_one_slot_and_leaves_the_others() {
        let token = open_token();
        let doomed = slot("key-1", "node-1", 1, 1);
        let kept = slot("key-1", "node-1", 1, 2);
        let doomed_kek = token.slot_kek(&doomed).unwrap();
        let kept_kek = token.slot_kek(&kept).unwrap();
        let share = b"a backup share of Xi";
        let doomed_share = seal(&doomed_kek, share, 4);
        let kept_share = seal(&kept_kek, share, 5);
        assert_eq!(open(&doomed_kek, &doomed_share).unwrap(), share);

        assert_eq!(token.destroy_slot_kek(&doomed).unwrap(), DestroyOutcome::Destroyed);
        assert!(objects_labelled(&raw_session(), doomed_kek.label()).is_empty());

        let gone = CustodyError::KeyNotFound(Pkcs11Token::slot_kek_id(&doomed).to_string());
        assert_eq!(open(&doomed_kek, &doomed_share).unwrap_err(), gone);
        assert_eq!(doomed_kek.wrap(&data_key(6)).unwrap_err(), gone);
        assert!(matches!(
            token.open_slot_kek(&doomed),
            Err(Error::SlotKekNotFound { ref slot, .. }) if *slot == doomed
        ));
        // A new KEK for the slot does not open what the old one wrapped.
        let recreated = token.slot_kek(&doomed).unwrap();
        assert_eq!(open(&recreated, &doomed_share).unwrap_err(), CustodyError::UnwrapFailed);
        // The old handle follows the label to the new key: still no opening.
        assert_eq!(open(&doomed_kek, &doomed_share).unwrap_err(), CustodyError::UnwrapFailed);
        // The neighbouring slot still opens.
        assert_eq!(open(&kept_kek, &kept_share).unwrap(), share);
        assert_eq!(open(&token.open_slot_kek(&kept).unwrap(), &kept_share).unwrap(), share);
        // A retried hard delete succeeds.
        token.destroy_slot_kek(&doomed).unwrap();
        assert_eq!(token.destroy_slot_kek(&doomed).unwrap(), DestroyOutcome::AlreadyAbsent);
    }

    fn wrong_keks_and_tampered_wrapped_keys_are_refused() {
        let token = open_token();
        let a = token.slot_kek(&slot("k", "n", 0, 1)).unwrap();
        let b = token.slot_kek(&slot("k", "n", 0, 2)).unwrap();
        let wrapped = a.wrap(&data_key(7)).unwrap();
        assert_eq!(b.unwrap(&wrapped).unwrap_err(), CustodyError::UnwrapFailed);
        let bytes = wrapped.as_bytes();
        for at in 0..bytes.len() {
            for bit in [0, 3, 7] {
                let mut bad = bytes.to_vec();
                bad[at] ^= 1 << bit;
                assert_eq!(
                    a.unwrap(&WrappedKey::new(bad).unwrap()).unwrap_err(),
                    CustodyError::UnwrapFailed,
                    "byte {at} bit {bit}"
                );
            }
        }
        for len in [1, 8, 32, 39, 41, 48, 61] {
            let mut bad = bytes.to_vec();
            bad.resize(len, 0);
            assert_eq!(
                a.unwrap(&WrappedKey::new(bad).unwrap()).unwrap_err(),
                CustodyError::UnwrapFailed
            );
        }
        // The local provider's wrapped keys are not this provider's.
        assert_eq!(
            a.unwrap(&WrappedKey::new(vec![1; 61]).unwrap()).unwrap_err(),
            CustodyError::UnwrapFailed
        );
    }

    fn refuses_unsafe_and_duplicate_objects_under_a_slot_label() {
        let token = open_token();
        let raw = raw_session();
        let s = slot("planted", "n", 0, 1);
        let label = "shardkeep/slot-kek/v1/planted/n/v0/1".to_owned();
        let plant = |extractable: bool| {
            raw.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(!extractable),
                    Attribute::Extractable(extractable),
                    Attribute::Wrap(true),
                    Attribute::Unwrap(true),
                    Attribute::Label(label.as_bytes().to_vec()),
                ],
            )
            .unwrap()
        };
        let exportable = plant(true);
        assert!(matches!(
            token.open_slot_kek(&s),
            Err(Error::UnsafeKeyObject { reason, .. }) if reason.contains("EXTRACTABLE")
        ));
        assert!(matches!(token.slot_kek(&s), Err(Error::UnsafeKeyObject { .. })));
        raw.destroy_object(exportable).unwrap();
        plant(false);
        plant(false);
        assert!(matches!(
            token.open_slot_kek(&s),
            Err(Error::DuplicateObjects { count: 2, .. })
        ));
        // Hard delete removes every object under the label.
        assert_eq!(token.destroy_slot_kek(&s).unwrap(), DestroyOutcome::Destroyed);
        assert!(objects_labelled(&raw, &label).is_empty());
    }

    fn logs_in_again_when_the_login_is_lost() {
        let token = open_token();
        let kek = token.slot_kek(&slot("k", "n", 0, 1)).unwrap();
        let wrapped = kek.wrap(&data_key(8)).unwrap();
        // C_Logout on any session logs the whole application out.
        raw_session().logout().unwrap();
        assert!(same_key(&kek.unwrap(&wrapped).unwrap(), &data_key(8)));
        raw_session().logout().unwrap();
        let again = kek.wrap(&data_key(9)).unwrap();
        assert!(same_key(&kek.unwrap(&again).unwrap(), &data_key(9)));
        let signer = token.generate_signer(SignerId::new("s").unwrap()).unwrap();
        raw_session().logout().unwrap();
        let signature = signer.sign(b"m").unwrap();
        signer.verifying_key().verify_strict(b"m", &signature).unwrap();
    }

    fn shared_across_threads() {
        let token = open_token();
        let keks: Vec<_> = (1..=2).map(|i| Arc::new(token.slot_kek(&slot("k", "n", 0, i)).unwrap())).collect();
        std::thread::scope(|scope| {
            for t in 0..8u8 {
                let kek = Arc::clone(&keks[usize::from(t % 2)]);
                scope.spawn(move || {
                    for i in 0..20u8 {
                        let key = data_key(t.wrapping_mul(31).wrapping_add(i));
                        let wrapped = kek.wrap(&key).unwrap();
                        assert!(same_key(&kek.unwrap(&wrapped).unwrap(), &key));
                    }
                });
            }
        });
    }

    fn concurrent_creators_in_separate_handles_agree_on_one_kek() {
        // Two token handles do not share the in-process create lock, so
        // this exercises the create-then-check protocol.
        let tokens = [open_token(), open_token()];
        let s = slot("race", "n", 0, 1);
        let key = data_key(10);
        let wrapped: Vec<WrappedKey> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (token, s, key) = (&tokens[i % 2], &s, &key);
                    scope.spawn(move || token.slot_kek(s).unwrap().wrap(key).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let label = "shardkeep/slot-kek/v1/race/n/v0/1";
        assert_eq!(objects_labelled(&raw_session(), label).len(), 1);
        let kek = tokens[0].open_slot_kek(&s).unwrap();
        for w in &wrapped {
            assert!(same_key(&kek.unwrap(w).unwrap(), &key));
        }
    }

    fn the_provider_trait_works_over_the_token() {
        let provider: Box<dyn SlotKekProvider> = Box::new(open_token());
        let s = slot("k", "n", 5, 5);
        let wrapped = provider.slot_kek(&s).unwrap().wrap(&data_key(11)).unwrap();
        let back = provider.open_slot_kek(&s).unwrap().unwrap(&wrapped).unwrap();
        assert!(same_key(&back, &data_key(11)));
        assert_eq!(provider.slot_kek_id(&s), Pkcs11Token::slot_kek_id(&s));
        assert_eq!(provider.destroy_slot_kek(&s).unwrap(), DestroyOutcome::Destroyed);
    }

    fn token_signer_signatures_verify_with_ed25519_dalek() {
        let token = open_token();
        let id = SignerId::new("audit-checkpoint").unwrap();
        let signer = token.generate_signer(id.clone()).unwrap();
        assert_eq!(signer.signer_id(), &id);
        for message in [&b""[..], b"shardkeep/checkpoint/v1 seq=1", &[7u8; 4096][..]] {
            let signature = signer.sign(message).unwrap();
            signer.verifying_key().verify_strict(message, &signature).unwrap();
            assert!(signer.verifying_key().verify_strict(b"other", &signature).is_err());
        }
        let reopened = open_token().open_signer(&id).unwrap();
        assert_eq!(reopened.verifying_key(), signer.verifying_key());
        let signature = reopened.sign(b"m").unwrap();
        signer.verifying_key().verify_strict(b"m", &signature).unwrap();

        assert!(matches!(token.generate_signer(id.clone()), Err(Error::SignerExists(_))));
        let missing = SignerId::new("nobody").unwrap();
        assert!(matches!(token.open_signer(&missing), Err(Error::SignerNotFound(_))));

        // The private key never leaves the token; the public key is the
        // DER OCTET STRING of CKA_EC_POINT.
        let raw = raw_session();
        let private = raw
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(signer.label().as_bytes().to_vec()),
            ])
            .unwrap();
        let flags = raw
            .get_attributes(
                private[0],
                &[
                    AttributeType::KeyType,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Sign,
                    AttributeType::Decrypt,
                    AttributeType::Unwrap,
                    AttributeType::Derive,
                    AttributeType::Value,
                ],
            )
            .unwrap();
        assert_eq!(
            flags,
            [
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
            ]
        );
        let public = raw
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Label(signer.label().as_bytes().to_vec()),
            ])
            .unwrap();
        let point = raw.get_attributes(public[0], &[AttributeType::EcPoint]).unwrap();
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(signer.verifying_key().as_bytes());
        assert_eq!(point, [Attribute::EcPoint(der)]);

        // Destroyed behind the signer's back: a typed error, not a panic.
        for object in objects_labelled(&raw, signer.label()) {
            raw.destroy_object(object).unwrap();
        }
        assert!(matches!(
            signer.sign(b"m").unwrap_err(),
            CustodyError::KeyNotFound(id) if id == "audit-checkpoint"
        ));
    }

    fn wrap_unwrap_round_trips_for_arbitrary_keys_and_slots() {
        let token = open_token();
        let strategy = (any::<[u8; 32]>(), 1u8..=255, any::<u32>(), "[A-Za-z0-9._:-]{1,64}");
        TestRunner::new(Config::with_cases(16))
            .run(&strategy, |(seed, index, version, key_id)| {
                let kek = token.slot_kek(&slot(&key_id, "node", version, index)).unwrap();
                let key = DataKey::generate(&mut ChaCha20Rng::from_seed(seed));
                let wrapped = kek.wrap(&key).unwrap();
                prop_assert!(same_key(&kek.unwrap(&wrapped).unwrap(), &key));
                Ok(())
            })
            .unwrap();
    }
}
