//! The PKCS#11 provider against a real SoftHSM2 token: each test runs in a
//! child process with a token of its own (see shardkeep-test-support's
//! `softhsm`).
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
use shardkeep_kms::{
    DestroyOutcome, Error, KekPin, Pin, Pkcs11Config, Pkcs11Signer, Pkcs11SlotKek, Pkcs11Token,
    ShredMethod, SlotKekProvider,
};
use shardkeep_types::{CustodyError, DataKey, KeyEncryptionKey, Signer, SignerId, WrappedKey};
use shardkeep_types::{KekId, ShareSlot};
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
fn the_test_token_module_defaults_to_this_crates_debian_path() {
    assert_eq!(
        softhsm::DEBIAN_MODULE,
        shardkeep_kms::DEBIAN_SOFTHSM2_MODULE
    );
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
        let kek = a.create_slot_kek(&slot("k", "n", 0, 1)).unwrap();
        let wrapped = kek.wrap(&data_key(1)).unwrap();
        let back = b.open_slot_kek(&slot("k", "n", 0, 1), kek.pin()).unwrap().unwrap(&wrapped).unwrap();
        assert!(same_key(&back, &data_key(1)));
    }

    fn slot_keks_are_sensitive_non_extractable_wrap_only_token_objects() {
        let token = open_token();
        let s = slot("key-1", "node-1", 3, 2);
        let kek = token.create_slot_kek(&s).unwrap();
        assert_eq!(kek.label(), "shardkeep/slot-kek/v1/key-1/node-1/v3/2");
        assert_eq!(KeyEncryptionKey::slot(&kek), Some(&s));
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
                    AttributeType::Local,
                    AttributeType::Copyable,
                    AttributeType::Destroyable,
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
            Attribute::Local(true),
            Attribute::Copyable(false),
            Attribute::Destroyable(true),
        ];
        assert_eq!(attributes[..expected.len()], expected);
        assert_eq!(attributes[expected.len()], Attribute::Id(slot_object_id(&s)));
        // The pin's fingerprint is the documented one.
        assert_eq!(kek.pin().kek_id, Pkcs11Token::slot_kek_id(&s));
        assert_eq!(kek.pin().fingerprint, documented_fingerprint(&raw, handle, &kek.pin().kek_id, &s));

        // Its value cannot be read, wrapped out, or used to decrypt.
        let value = raw.get_attributes(handle, &[AttributeType::Value]).unwrap();
        assert!(value.is_empty(), "CKA_VALUE of a KEK was readable");
        let other = token.create_slot_kek(&slot("key-1", "node-1", 3, 3)).unwrap();
        let [other_handle] = objects_labelled(&raw, other.label())[..] else {
            panic!("expected exactly one KEK object");
        };
        let wrapped_out = raw.wrap_key(&Mechanism::AesKeyWrap, other_handle, handle);
        assert_eq!(rv(&wrapped_out.unwrap_err()), RvError::KeyUnextractable);
        let wrapped = kek.wrap(&data_key(2)).unwrap();
        let decrypted = raw.decrypt(&Mechanism::AesKeyWrap, handle, wrapped.as_bytes());
        assert_eq!(rv(&decrypted.unwrap_err()), RvError::KeyFunctionNotPermitted);
        // Nor can it encrypt or decrypt blocks, so it cannot serve as a
        // check-value oracle or open anything but wrapped keys.
        let encrypted = raw.encrypt(&Mechanism::AesEcb, handle, &[0; 16]);
        assert_eq!(rv(&encrypted.unwrap_err()), RvError::KeyFunctionNotPermitted);
        let decrypted = raw.decrypt(&Mechanism::AesEcb, handle, &[0; 16]);
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

    fn wrap_unwrap_round_trips_and_the_pin_opens_the_same_kek() {
        let token = open_token();
        let s = slot("key-1", "node-1", 1, 1);
        let kek = token.create_slot_kek(&s).unwrap();
        let key = data_key(3);
        let wrapped = kek.wrap(&key).unwrap();
        assert_eq!(wrapped.as_bytes().len(), 40);
        assert!(same_key(&kek.unwrap(&wrapped).unwrap(), &key));
        // The pin opens it, through this and a second token handle.
        let pin = kek.pin();
        assert!(same_key(&token.open_slot_kek(&s, pin).unwrap().unwrap(&wrapped).unwrap(), &key));
        assert!(same_key(&open_token().open_slot_kek(&s, pin).unwrap().unwrap(&wrapped).unwrap(), &key));
        assert_eq!(objects_labelled(&raw_session(), kek.label()).len(), 1);
        // Unwrapping leaves no session object behind: the KEK is the only
        // object the provider's sessions can see besides the token's own.
        let raw = raw_session();
        let session_objects = raw.find_objects(&[Attribute::Token(false)]).unwrap();
        assert!(session_objects.is_empty(), "{} session objects left", session_objects.len());
        // Opening never creates.
        let elsewhere = slot("key-1", "node-1", 1, 2);
        assert!(matches!(
            token.open_slot_kek(&elsewhere, &made_up_pin(&elsewhere)),
            Err(Error::SlotKekNotFound { .. })
        ));
        // A wrong pin is a typed error: of another slot, or of no key.
        assert!(matches!(
            token.open_slot_kek(&elsewhere, pin),
            Err(Error::KekPinIdMismatch { .. })
        ));
        assert!(matches!(
            token.open_slot_kek(&s, &made_up_pin(&s)),
            Err(Error::KekPinMismatch { .. })
        ));
        assert!(matches!(
            token.destroy_slot_kek(&elsewhere, pin),
            Err(Error::KekPinIdMismatch { .. })
        ));
    }

    fn crypto_shredding_destroys_one_slot_and_leaves_the_others() {
        let token = open_token();
        let doomed = slot("key-1", "node-1", 1, 1);
        let kept = slot("key-1", "node-1", 1, 2);
        let doomed_kek = token.create_slot_kek(&doomed).unwrap();
        let kept_kek = token.create_slot_kek(&kept).unwrap();
        let doomed_pin = doomed_kek.pin().clone();
        let share = b"a backup share of Xi";
        let doomed_share = seal(&doomed_kek, share, 4);
        let kept_share = seal(&kept_kek, share, 5);
        assert_eq!(open(&doomed_kek, &doomed_share).unwrap(), share);

        let report = token.destroy_slot_kek(&doomed, &doomed_pin).unwrap();
        assert_eq!(report.outcome, DestroyOutcome::Destroyed);
        assert_eq!(report.method, ShredMethod::HsmDestroy);
        assert_eq!(report.look_alikes, 0);
        assert!(objects_labelled(&raw_session(), doomed_kek.label()).is_empty());

        let gone = CustodyError::KeyNotFound(Pkcs11Token::slot_kek_id(&doomed).to_string());
        assert_eq!(open(&doomed_kek, &doomed_share).unwrap_err(), gone);
        assert_eq!(doomed_kek.wrap(&data_key(6)).unwrap_err(), gone);
        assert!(matches!(
            token.open_slot_kek(&doomed, &doomed_pin),
            Err(Error::SlotKekNotFound { ref slot, .. }) if *slot == doomed
        ));
        // A new KEK for the slot does not open what the old one wrapped.
        let recreated = token.create_slot_kek(&doomed).unwrap();
        assert_eq!(open(&recreated, &doomed_share).unwrap_err(), CustodyError::UnwrapFailed);
        // The old handle is pinned to the destroyed key: it never uses the new one.
        assert_eq!(open(&doomed_kek, &doomed_share).unwrap_err(), gone);
        assert!(matches!(
            token.open_slot_kek(&doomed, &doomed_pin),
            Err(Error::KekPinMismatch { .. })
        ));
        // The neighbouring slot still opens.
        assert_eq!(open(&kept_kek, &kept_share).unwrap(), share);
        assert_eq!(open(&token.open_slot_kek(&kept, kept_kek.pin()).unwrap(), &kept_share).unwrap(), share);
        // A retried hard delete succeeds and leaves the new KEK alone.
        let retried = token.destroy_slot_kek(&doomed, &doomed_pin).unwrap();
        assert_eq!(retried.outcome, DestroyOutcome::AlreadyAbsent);
        assert_eq!(retried.look_alikes, 1);
        recreated.wrap(&data_key(6)).unwrap();
    }

    fn wrong_keks_and_tampered_wrapped_keys_are_refused() {
        let token = open_token();
        let a = token.create_slot_kek(&slot("k", "n", 0, 1)).unwrap();
        let b = token.create_slot_kek(&slot("k", "n", 0, 2)).unwrap();
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

    fn keys_without_every_required_attribute_are_never_used_even_when_pinned() {
        // Private keys under the slot's CKA_ID that differ from a genuine
        // KEK in one attribute each. Even a pin naming one of them (as if
        // storage had been tampered with) does not open it.
        let token = open_token();
        let raw = raw_session();
        let s = slot("planted", "n", 0, 1);
        let genuine = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Modifiable(false),
            Attribute::Copyable(false),
            Attribute::Destroyable(true),
            Attribute::Label(slot_label(&s).into_bytes()),
            Attribute::Id(slot_object_id(&s)),
        ];
        let generated_with = |change: Attribute| {
            let mut template: Vec<Attribute> = genuine
                .iter()
                .filter(|a| a.attribute_type() != change.attribute_type())
                .cloned()
                .collect();
            template.push(change);
            template.push(Attribute::ValueLen(32.into()));
            raw.generate_key(&Mechanism::AesKeyGen, &template).unwrap()
        };
        let mut imported: Vec<Attribute> = genuine.to_vec();
        imported.push(Attribute::Value(ATTACKER_KEK.to_vec()));
        let planted = [
            ("imported (CKA_LOCAL false)", raw.create_object(&imported).unwrap()),
            ("extractable", generated_with(Attribute::Extractable(true))),
            ("not sensitive", generated_with(Attribute::Sensitive(false))),
            ("modifiable", generated_with(Attribute::Modifiable(true))),
            ("copyable", generated_with(Attribute::Copyable(true))),
            ("not destroyable", generated_with(Attribute::Destroyable(false))),
            ("may encrypt", generated_with(Attribute::Encrypt(true))),
            ("may decrypt", generated_with(Attribute::Decrypt(true))),
        ];
        let kek_id = Pkcs11Token::slot_kek_id(&s);
        for (what, object) in planted {
            let pin = KekPin {
                fingerprint: documented_fingerprint(&raw, object, &kek_id, &s),
                kek_id: kek_id.clone(),
            };
            assert!(
                matches!(token.open_slot_kek(&s, &pin), Err(Error::KekPinMismatch { .. })),
                "a planted key that is {what} was opened"
            );
        }
        // None of them blocks creating and using the slot's own KEK.
        let kek = token.create_slot_kek(&s).unwrap();
        let wrapped = kek.wrap(&data_key(14)).unwrap();
        let opened = token.open_slot_kek(&s, kek.pin()).unwrap();
        assert!(same_key(&opened.unwrap(&wrapped).unwrap(), &data_key(14)));
        let report = token.destroy_slot_kek(&s, kek.pin()).unwrap();
        assert_eq!(report.outcome, DestroyOutcome::Destroyed);
        assert_eq!(report.look_alikes, 8);
    }

    fn logs_in_again_when_the_login_is_lost() {
        let token = open_token();
        let kek = token.create_slot_kek(&slot("k", "n", 0, 1)).unwrap();
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

    fn a_hard_delete_while_logged_out_still_destroys_the_key() {
        // Logged out, a token shows public objects only, so a search for
        // the private KEK finds nothing: that must not pass for "already
        // destroyed" while the key is still there.
        let token = open_token();
        let s = slot("k", "n", 0, 1);
        let kek = token.create_slot_kek(&s).unwrap();
        let wrapped = kek.wrap(&data_key(15)).unwrap();
        raw_session().logout().unwrap();
        let report = token.destroy_slot_kek(&s, kek.pin()).unwrap();
        assert_eq!(report.outcome, DestroyOutcome::Destroyed);
        assert!(objects_labelled(&raw_session(), kek.label()).is_empty());
        assert!(matches!(kek.unwrap(&wrapped), Err(CustodyError::KeyNotFound(_))));
        // Opening while logged out is no "not found" either.
        let other = token.create_slot_kek(&slot("k", "n", 0, 2)).unwrap();
        raw_session().logout().unwrap();
        token.open_slot_kek(&slot("k", "n", 0, 2), other.pin()).unwrap();
    }

    fn shared_across_threads() {
        let token = open_token();
        let keks: Vec<_> = (1..=2).map(|i| Arc::new(token.create_slot_kek(&slot("k", "n", 0, i)).unwrap())).collect();
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

    fn concurrent_creators_each_get_a_kek_of_their_own() {
        let tokens = [open_token(), open_token()];
        let s = slot("race", "n", 0, 1);
        let key = data_key(10);
        let created: Vec<(KekPin, WrappedKey)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (token, s, key) = (&tokens[i % 2], &s, &key);
                    scope.spawn(move || {
                        let kek = token.create_slot_kek(s).unwrap();
                        (kek.pin().clone(), kek.wrap(key).unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let label = "shardkeep/slot-kek/v1/race/n/v0/1";
        assert_eq!(objects_labelled(&raw_session(), label).len(), 8);
        for (i, (pin, wrapped)) in created.iter().enumerate() {
            let kek = tokens[1].open_slot_kek(&s, pin).unwrap();
            assert!(same_key(&kek.unwrap(wrapped).unwrap(), &key));
            for (other, _) in &created[i + 1..] {
                assert_ne!(pin, other);
            }
        }
    }

    fn the_provider_trait_works_over_the_token() {
        let provider: Box<dyn SlotKekProvider> = Box::new(open_token());
        let s = slot("k", "n", 5, 5);
        let (kek, pin) = provider.create_slot_kek(&s).unwrap();
        assert_eq!(kek.slot(), Some(&s));
        let wrapped = kek.wrap(&data_key(11)).unwrap();
        let back = provider.open_slot_kek(&s, &pin).unwrap().unwrap(&wrapped).unwrap();
        assert!(same_key(&back, &data_key(11)));
        assert_eq!(provider.slot_kek_id(&s), Pkcs11Token::slot_kek_id(&s));
        assert_eq!(provider.destroy_slot_kek(&s, &pin).unwrap().outcome, DestroyOutcome::Destroyed);
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
        let reopened = open_token().open_signer(&id, &signer.verifying_key()).unwrap();
        assert_eq!(reopened.verifying_key(), signer.verifying_key());
        let signature = reopened.sign(b"m").unwrap();
        signer.verifying_key().verify_strict(b"m", &signature).unwrap();

        assert!(matches!(token.generate_signer(id.clone()), Err(Error::SignerExists(_))));
        let missing = SignerId::new("nobody").unwrap();
        assert!(matches!(
            token.open_signer(&missing, &signer.verifying_key()),
            Err(Error::SignerNotFound(_))
        ));

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
                let kek = token.create_slot_kek(&slot(&key_id, "node", version, index)).unwrap();
                let key = DataKey::generate(&mut ChaCha20Rng::from_seed(seed));
                let wrapped = kek.wrap(&key).unwrap();
                prop_assert!(same_key(&kek.unwrap(&wrapped).unwrap(), &key));
                Ok(())
            })
            .unwrap();
    }
}

// ---- Attacks by planted token objects (security review, finding 1) ----

/// The AES key value an attacker chose for the KEK it plants.
const ATTACKER_KEK: [u8; 32] = [0xa7; 32];
/// The ed25519 seed of the signing key an attacker plants.
const ATTACKER_SEED: [u8; 32] = [0x5e; 32];

/// A session that never logged in: what anyone who can reach the token
/// (no PIN) gets. Only valid before anything in this process logs in,
/// since PKCS#11 login state belongs to the whole application.
fn unauthenticated_session() -> Session {
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
    assert!(matches!(
        session.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RwPublic
    ));
    session
}

/// The documented `CKA_ID` of a slot's KEK (README, "Slot KEKs").
fn slot_object_id(s: &ShareSlot) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut encoded = Vec::new();
    s.encode(&mut encoded);
    Sha256::new()
        .chain_update(b"shardkeep/slot-kek-id/v1")
        .chain_update(&encoded)
        .finalize()
        .to_vec()
}

/// The documented `CKA_ID` of a signer's key objects (README, "Signers").
fn signer_object_id(id: &SignerId) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut encoded = Vec::new();
    id.encode_prefixed(&mut encoded);
    Sha256::new()
        .chain_update(b"shardkeep/kms-signer-id/v1")
        .chain_update(&encoded)
        .finalize()
        .to_vec()
}

/// The documented fingerprint of a KEK object (README, "Slot KEKs"),
/// computed with a session of our own: the RFC 3394 wrap of the public
/// check key under the KEK, hashed with the KEK id and slot.
fn documented_fingerprint(
    session: &Session,
    kek: ObjectHandle,
    kek_id: &KekId,
    s: &ShareSlot,
) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let check_key = Sha256::digest(b"shardkeep/kek-check-key/v1").to_vec();
    let check = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Extractable(true),
            Attribute::Value(check_key),
        ])
        .unwrap();
    let wrapped = session
        .wrap_key(&Mechanism::AesKeyWrap, kek, check)
        .unwrap();
    session.destroy_object(check).unwrap();
    let mut header = Vec::new();
    kek_id.encode_prefixed(&mut header);
    s.encode(&mut header);
    header.extend_from_slice(&u16::try_from(wrapped.len()).unwrap().to_be_bytes());
    Sha256::new()
        .chain_update(b"shardkeep/kek-fingerprint/v1")
        .chain_update(&header)
        .chain_update(&wrapped)
        .finalize()
        .into()
}

/// A pin for `s` that no key has.
fn made_up_pin(s: &ShareSlot) -> KekPin {
    KekPin {
        kek_id: Pkcs11Token::slot_kek_id(s),
        fingerprint: [0x11; 32],
    }
}

/// The documented `CKA_LABEL` of a slot's KEK.
fn slot_label(s: &ShareSlot) -> String {
    format!(
        "shardkeep/slot-kek/v1/{}/{}/v{}/{}",
        s.key_id.as_str(),
        s.node_id.as_str(),
        s.version.get(),
        s.index.get()
    )
}

/// Plants an AES key of known value that looks like the slot's KEK to
/// anything that goes by label and `CKA_ID`: sensitive, not extractable,
/// wrap/unwrap only, not modifiable.
fn plant_known_kek(
    session: &Session,
    s: &ShareSlot,
    private: bool,
    destroyable: bool,
) -> ObjectHandle {
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Modifiable(false),
            Attribute::Destroyable(destroyable),
            Attribute::Label(slot_label(s).into_bytes()),
            Attribute::Id(slot_object_id(s)),
            Attribute::Value(ATTACKER_KEK.to_vec()),
        ])
        .unwrap()
}

/// What the attacker gets from a wrapped data key with the key value it
/// chose: the data key, if the provider wrapped under the planted key.
fn attacker_unwrap(session: &Session, wrapped: &WrappedKey) -> Option<Vec<u8>> {
    let known = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Unwrap(true),
            Attribute::Value(ATTACKER_KEK.to_vec()),
        ])
        .unwrap();
    let unwrapped = session.unwrap_key(
        &Mechanism::AesKeyWrap,
        known,
        wrapped.as_bytes(),
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ],
    );
    session.destroy_object(known).unwrap();
    let object = unwrapped.ok()?;
    let value = session
        .get_attributes(object, &[AttributeType::Value])
        .unwrap();
    session.destroy_object(object).unwrap();
    match &value[..] {
        [Attribute::Value(bytes)] => Some(bytes.clone()),
        other => panic!("unexpected attributes {other:?}"),
    }
}

softhsm_tests! {
    fn a_public_key_planted_before_login_never_wraps_the_slots_data_keys() {
        // The attacker reaches the token without the PIN and plants a public
        // AES key of its choosing under a future slot's label and CKA_ID.
        let s = slot("wallet-9", "node-a", 1, 1);
        let plant = unauthenticated_session();
        plant_known_kek(&plant, &s, false, true);
        drop(plant);

        let token = open_token();
        let kek = token.create_slot_kek(&s).unwrap();
        let key = data_key(12);
        let wrapped = kek.wrap(&key).unwrap();
        assert!(same_key(&kek.unwrap(&wrapped).unwrap(), &key));
        let stolen = attacker_unwrap(&raw_session(), &wrapped);
        assert!(
            stolen.is_none(),
            "the slot's data key was wrapped under the attacker's planted key"
        );
    }

    fn planted_look_alikes_neither_block_nor_redirect_a_hard_delete() {
        let token = open_token();
        let s = slot("wallet-9", "node-a", 1, 2);
        let kek = token.create_slot_kek(&s).unwrap();
        let share = b"a backup share of Xi";
        let sealed = seal(&kek, share, 13);
        // Look-alikes under the slot's label and CKA_ID: public ones (which
        // need no PIN), one of them not destroyable, and a private one
        // generated inside the token by an insider, with every attribute a
        // genuine KEK has.
        let raw = raw_session();
        let stuck = plant_known_kek(&raw, &s, false, false);
        let loose = plant_known_kek(&raw, &s, false, true);
        let insider = raw
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Wrap(true),
                    Attribute::Unwrap(true),
                    Attribute::Encrypt(false),
                    Attribute::Decrypt(false),
                    Attribute::Modifiable(false),
                    Attribute::Copyable(false),
                    Attribute::Destroyable(true),
                    Attribute::Label(slot_label(&s).into_bytes()),
                    Attribute::Id(slot_object_id(&s)),
                ],
            )
            .unwrap();

        let report = token.destroy_slot_kek(&s, kek.pin()).unwrap();
        assert_eq!(report.outcome, DestroyOutcome::Destroyed);
        assert_eq!(report.look_alikes, 3);
        // The pinned key is gone: the share no longer opens, by any handle.
        let gone = CustodyError::KeyNotFound(Pkcs11Token::slot_kek_id(&s).to_string());
        assert_eq!(open(&kek, &sealed).unwrap_err(), gone);
        // The look-alikes were left alone (they are not the slot's key).
        let left = raw.find_objects(&[Attribute::Id(slot_object_id(&s))]).unwrap();
        assert_eq!(left.len(), 3);
        for planted in [stuck, loose, insider] {
            assert!(left.contains(&planted));
        }
        // A retried hard delete succeeds.
        let retried = token.destroy_slot_kek(&s, kek.pin()).unwrap();
        assert_eq!(retried.outcome, DestroyOutcome::AlreadyAbsent);
        assert_eq!(retried.look_alikes, 3);
    }

    fn a_signer_key_planted_before_login_is_never_used() {
        // Before any signer exists, the attacker imports an ed25519 key pair
        // of its own under the signer's label and CKA_ID.
        let id = SignerId::new("envelope-signer").unwrap();
        let attacker = ed25519_dalek::SigningKey::from_bytes(&ATTACKER_SEED);
        let label = format!("shardkeep/signer/v1/{id}").into_bytes();
        let object_id = signer_object_id(&id);
        let plant = unauthenticated_session();
        let params = vec![0x06, 0x03, 0x2b, 0x65, 0x70];
        let mut point = vec![0x04, 0x20];
        point.extend_from_slice(attacker.verifying_key().as_bytes());
        plant
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::EcParams(params.clone()),
                Attribute::EcPoint(point),
                Attribute::Label(label.clone()),
                Attribute::Id(object_id.clone()),
            ])
            .unwrap();
        plant
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::EcParams(params),
                Attribute::Value(ATTACKER_SEED.to_vec()),
                Attribute::Label(label),
                Attribute::Id(object_id),
            ])
            .unwrap();
        drop(plant);

        let token = open_token();
        // The planted pair neither blocks generation nor is taken for it.
        let signer = token.generate_signer(id.clone()).unwrap();
        assert_ne!(signer.verifying_key(), attacker.verifying_key());
        // An insider with the PIN imports the same key as a private object:
        // still not generated in the token, so still not a signer's key.
        let raw = raw_session();
        let mut point = vec![0x04, 0x20];
        point.extend_from_slice(attacker.verifying_key().as_bytes());
        raw.create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Modifiable(false),
            Attribute::Copyable(false),
            Attribute::Sign(true),
            Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70]),
            Attribute::Value(ATTACKER_SEED.to_vec()),
            Attribute::Label(format!("shardkeep/signer/v1/{id}").into_bytes()),
            Attribute::Id(signer_object_id(&id)),
        ])
        .unwrap();
        // Opened by its pinned public key, the signer is the token's own.
        let opened = token.open_signer(&id, &signer.verifying_key()).unwrap();
        let signature = opened.sign(b"m").unwrap();
        signer.verifying_key().verify_strict(b"m", &signature).unwrap();
        // A pin naming the attacker's key is refused.
        assert!(matches!(
            token.open_signer(&id, &attacker.verifying_key()),
            Err(Error::SignerPinMismatch(ref refused)) if *refused == id
        ));
    }
}
