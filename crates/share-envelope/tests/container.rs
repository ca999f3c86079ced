//! Custodian containers through the library alone (the CLI interop is in
//! `age_cli.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a failed unwrap is a failed test.

use age::secrecy::SecretString;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::{
    Armor, Binding, ContainerError, ContainerIdentity, ContainerRecipients, CurveShare,
    EncodedEnvelope, EnvelopeParams, Error, MAX_CONTAINER_LEN, MAX_CONTAINER_STANZAS,
    MAX_SCRYPT_WORK_FACTOR, PayloadKind, TrustedSigners, archive_hash, encode_container_contents,
    open_container, open_x25519_container, seal_container,
};
use shardkeep_sss_core::{Curve, Ed25519, Secret, Threshold, split};
use shardkeep_types::{
    FramingError, InMemoryKek, InMemorySigner, KekId, KeyId, KeyVersion, NodeId, NodeVersion,
    SignerId, Timestamp,
};

mod common;
use common::{assert_not_opened_by, open_x25519, scrypt_work_factor};

const ARCHIVE: &[u8] = b"archive";

/// A plain and a sealed ed25519 envelope, and the trust set.
fn envelopes() -> (EncodedEnvelope, EncodedEnvelope, TrustedSigners) {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let secret = Secret::<Ed25519>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(2, 3).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let params = EnvelopeParams {
        node_version: NodeVersion {
            key_id: KeyId::new("k").unwrap(),
            node_id: NodeId::new("n").unwrap(),
            version: KeyVersion::new(0),
        },
        created_at: Timestamp::EPOCH,
        binding: Binding::new(
            Ed25519::ID,
            commitments.to_bytes()[..32].to_vec(),
            vec![7],
            commitments.to_bytes()[..32].to_vec(),
            archive_hash(ARCHIVE),
        )
        .unwrap(),
    };
    let signer = InMemorySigner::generate(SignerId::new("s").unwrap(), &mut rng);
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&signer).unwrap();
    let slot = params.node_version.slot(shares[0].index());
    let kek = InMemoryKek::for_slot(KekId::new("kek").unwrap(), slot, &mut rng);
    let plain = params.plain(&commitments, &shares[1], &signer).unwrap();
    let sealed = params
        .seal(&commitments, &shares[0], &signer, &kek, &mut rng)
        .unwrap();
    (plain, sealed, trusted)
}

#[test]
fn x25519_containers_open_for_any_listed_recipient_only() {
    let (plain, _, trusted) = envelopes();
    let (a, b, stranger) = (
        age::x25519::Identity::generate(),
        age::x25519::Identity::generate(),
        age::x25519::Identity::generate(),
    );
    let recipients = ContainerRecipients::x25519(vec![a.to_public(), b.to_public()]).unwrap();
    let container = seal_container(&plain, ARCHIVE, &recipients, Armor::Binary).unwrap();
    for identity in [&a, &b] {
        let opened = open_x25519(&container, identity, &trusted).unwrap();
        assert_eq!(opened.envelope().payload_kind(), PayloadKind::Plain);
        assert_eq!(opened.archive(), ARCHIVE);
    }
    assert_not_opened_by(&container, &stranger, &trusted);
    // A signer the custodian does not trust.
    assert!(matches!(
        open_x25519(&container, &a, &TrustedSigners::new()),
        Err(Error::UntrustedSigner(_))
    ));
}

#[test]
fn tampered_oversized_and_garbage_containers_are_refused() {
    let (plain, _, trusted) = envelopes();
    let identity = age::x25519::Identity::generate();
    let recipients = ContainerRecipients::x25519(vec![identity.to_public()]).unwrap();
    let open = |bytes: &[u8]| open_x25519(bytes, &identity, &trusted);
    for armor in [Armor::Binary, Armor::Ascii] {
        let container = seal_container(&plain, ARCHIVE, &recipients, armor).unwrap();
        // Flip one payload byte (well past the header).
        let mut tampered = container.clone();
        let at = tampered.len() - 40;
        tampered[at] ^= if armor == Armor::Ascii { 0x01 } else { 0x80 };
        assert!(matches!(open(&tampered), Err(Error::Container(_))));
        // (Armor may omit its final newline, so cut two bytes, not one.)
        for len in [0, 10, container.len() / 2, container.len() - 2] {
            assert!(open(&container[..len]).is_err(), "{armor:?} cut at {len}");
        }
    }
    assert!(matches!(
        open(&vec![b'a'; MAX_CONTAINER_LEN + 1]),
        Err(Error::Framing(FramingError::TooLarge { .. }))
    ));
    assert_eq!(
        open(b"not an age file").unwrap_err(),
        Error::Container(ContainerError::Malformed)
    );
}

#[test]
fn passphrase_containers_and_their_limits() {
    let (plain, sealed, trusted) = envelopes();
    let passphrase = SecretString::from("a long custodian passphrase".to_owned());
    for log_n in [14, MAX_SCRYPT_WORK_FACTOR + 1] {
        assert_eq!(
            ContainerRecipients::passphrase_with_work_factor(passphrase.clone(), log_n)
                .unwrap_err(),
            Error::Container(ContainerError::WorkFactor(log_n))
        );
    }
    let recipients =
        ContainerRecipients::passphrase_with_work_factor(passphrase.clone(), 15).unwrap();
    assert!(!format!("{recipients:?}").contains("custodian passphrase"));
    let container = seal_container(&plain, ARCHIVE, &recipients, Armor::Ascii).unwrap();
    let opened = open_container(
        &container,
        ContainerIdentity::Passphrase(&passphrase),
        &trusted,
    )
    .unwrap();
    assert_eq!(opened.archive(), ARCHIVE);
    // An X25519 identity does not open a passphrase container.
    let identity = age::x25519::Identity::generate();
    assert_not_opened_by(&container, &identity, &trusted);
    // Server envelopes never go into containers.
    assert!(matches!(
        seal_container(&sealed, ARCHIVE, &recipients, Armor::Binary),
        Err(Error::WrongPayloadKind { .. })
    ));
    assert!(matches!(
        seal_container(&plain, b"", &recipients, Armor::Binary),
        Err(Error::Framing(FramingError::LengthOutOfRange { .. }))
    ));
    assert!(matches!(
        ContainerRecipients::x25519(Vec::new()),
        Err(Error::Container(ContainerError::RecipientCount {
            got: 0,
            ..
        }))
    ));
}

/// An age file around `envelope`'s container contents, made with the age
/// library directly (not through this crate's limits).
fn age_encrypt(envelope: &EncodedEnvelope, recipients: &[&dyn age::Recipient]) -> Vec<u8> {
    let contents = encode_container_contents(envelope, ARCHIVE).unwrap();
    let encryptor = age::Encryptor::with_recipients(recipients.iter().copied()).unwrap();
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    std::io::Write::write_all(&mut writer, &contents).unwrap();
    writer.finish().unwrap();
    out
}

/// Finding: passphrase containers were accepted up to 2^22 (4 GiB of
/// memory and ~20 s per open, even with a wrong passphrase). The cap is
/// 2^18, for making and for opening.
#[test]
fn scrypt_work_factor_is_capped_at_2_18() {
    assert_eq!(MAX_SCRYPT_WORK_FACTOR, 18);
    let (plain, _, trusted) = envelopes();
    let passphrase = SecretString::from("a long custodian passphrase".to_owned());
    assert_eq!(
        ContainerRecipients::passphrase_with_work_factor(passphrase.clone(), 19).unwrap_err(),
        Error::Container(ContainerError::WorkFactor(19))
    );
    // Round trips at the cap, explicit and by default.
    for recipients in [
        ContainerRecipients::passphrase_with_work_factor(passphrase.clone(), 18).unwrap(),
        ContainerRecipients::passphrase(passphrase.clone()),
    ] {
        let container = seal_container(&plain, ARCHIVE, &recipients, Armor::Binary).unwrap();
        assert_eq!(scrypt_work_factor(&container), 18);
        let opened = open_container(
            &container,
            ContainerIdentity::Passphrase(&passphrase),
            &trusted,
        )
        .unwrap();
        assert_eq!(opened.archive(), ARCHIVE);
    }
}

/// A container made elsewhere at 2^19 is refused before any key derivation,
/// with the right passphrase or a wrong one.
#[test]
fn opening_refuses_scrypt_work_above_the_cap() {
    let (plain, _, trusted) = envelopes();
    let passphrase = SecretString::from("a long custodian passphrase".to_owned());
    let mut recipient = age::scrypt::Recipient::new(passphrase.clone());
    recipient.set_work_factor(19);
    let container = age_encrypt(&plain, &[&recipient]);
    assert_eq!(scrypt_work_factor(&container), 19);
    let wrong = SecretString::from("a wrong guess".to_owned());
    for attempt in [&passphrase, &wrong] {
        let outcome = open_container(&container, ContainerIdentity::Passphrase(attempt), &trusted);
        assert_eq!(
            outcome.map(|opened| opened.archive().len()),
            Err(Error::Container(ContainerError::ExcessiveWork))
        );
    }
}

/// Finding: the 8 MiB cap allowed tens of thousands of X25519 stanzas, each
/// a Diffie-Hellman per identity. More than the cap is refused before any
/// is tried, even when one of them is the caller's.
#[test]
fn containers_with_too_many_stanzas_are_refused() {
    let (plain, _, trusted) = envelopes();
    let ours = age::x25519::Identity::generate();
    let mut recipients: Vec<age::x25519::Recipient> = (0..MAX_CONTAINER_STANZAS)
        .map(|_| age::x25519::Identity::generate().to_public())
        .collect();
    recipients.push(ours.to_public());
    let dyn_recipients: Vec<&dyn age::Recipient> = recipients
        .iter()
        .map(|r| r as &dyn age::Recipient)
        .collect();
    let container = age_encrypt(&plain, &dyn_recipients);
    match open_x25519(&container, &ours, &trusted) {
        Err(Error::Container(ContainerError::TooManyStanzas { got, max })) => {
            assert!(got > MAX_CONTAINER_STANZAS, "{got}");
            assert_eq!(max, MAX_CONTAINER_STANZAS);
        }
        other => panic!(
            "a container with {} stanzas: {:?}",
            recipients.len() + 1,
            other.map(|opened| opened.archive().len())
        ),
    }
    // Sixteen recipients (the most this crate writes) open.
    let sixteen =
        ContainerRecipients::x25519(recipients[MAX_CONTAINER_STANZAS + 1 - 16..].to_vec()).unwrap();
    for armor in [Armor::Binary, Armor::Ascii] {
        let container = seal_container(&plain, ARCHIVE, &sixteen, armor).unwrap();
        open_x25519(&container, &ours, &trusted).unwrap();
    }
}

/// Server-side paths open X25519 containers only: a passphrase container is
/// refused outright, before any key derivation.
#[test]
fn x25519_only_opening_refuses_passphrase_containers() {
    let (plain, _, trusted) = envelopes();
    let identity = age::x25519::Identity::generate();
    let passphrase = SecretString::from("a long custodian passphrase".to_owned());
    let recipients = ContainerRecipients::passphrase_with_work_factor(passphrase, 15).unwrap();
    for armor in [Armor::Binary, Armor::Ascii] {
        let container = seal_container(&plain, ARCHIVE, &recipients, armor).unwrap();
        assert_eq!(
            open_x25519_container(&container, std::slice::from_ref(&identity), &trusted)
                .map(|opened| opened.archive().len()),
            Err(Error::Container(ContainerError::PassphraseNotAccepted))
        );
    }
    let recipients = ContainerRecipients::x25519(vec![identity.to_public()]).unwrap();
    let container = seal_container(&plain, ARCHIVE, &recipients, Armor::Ascii).unwrap();
    let opened =
        open_x25519_container(&container, std::slice::from_ref(&identity), &trusted).unwrap();
    assert_eq!(opened.archive(), ARCHIVE);
}

/// An opened container holds the share and the archive: `Debug` shows
/// neither (nor does the share's own `Debug`).
#[test]
fn opened_containers_print_no_share_and_no_archive() {
    let (plain, _, trusted) = envelopes();
    let identity = age::x25519::Identity::generate();
    let recipients = ContainerRecipients::x25519(vec![identity.to_public()]).unwrap();
    let container = seal_container(&plain, ARCHIVE, &recipients, Armor::Binary).unwrap();
    let opened = open_x25519(&container, &identity, &trusted).unwrap();
    let printed = format!("{opened:?}");
    let (envelope, _) = opened.into_parts();
    let share = envelope.into_plain_share().unwrap();
    let printed_share = format!("{share:?}");
    let value = match &share {
        CurveShare::Ed25519(s) => s.value_be_bytes().to_vec(),
        CurveShare::Secp256k1(s) => s.value_be_bytes().to_vec(),
    };
    let as_list = format!("{:?}", &value[..4]);
    let as_list = as_list.trim_end_matches(']');
    let archive_list = format!("{:?}", &ARCHIVE[..4]);
    let archive_list = archive_list.trim_end_matches(']');
    for text in [&printed, &printed_share] {
        assert!(!text.contains(&hex::encode(&value)), "{text}");
        assert!(!text.contains(as_list), "{text}");
        assert!(!text.contains(archive_list), "{text}");
        assert!(!text.contains("archive\""), "{text}");
    }
    assert!(printed.contains("archive_len: 7"), "{printed}");
    assert!(printed_share.contains("<redacted>"), "{printed_share}");
}
