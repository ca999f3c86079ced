//! Custodian containers through the library alone (the CLI interop is in
//! `age_cli.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a failed unwrap is a failed test.

use age::secrecy::SecretString;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::{
    Armor, Binding, ContainerError, ContainerIdentity, ContainerRecipients, EncodedEnvelope,
    EnvelopeParams, Error, InMemoryKek, InMemorySigner, KekId, KeyId, KeyVersion,
    MAX_CONTAINER_LEN, NodeId, NodeVersion, PayloadKind, SignerId, Timestamp, TrustedSigners,
    archive_hash, open_container, seal_container,
};
use shardkeep_sss_core::{Curve, Ed25519, Secret, Threshold, split};

mod common;
use common::{assert_not_opened_by, open_x25519};

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
        Err(Error::TooLarge { .. })
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
    for log_n in [14, 23] {
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
        Err(Error::FieldLength { .. })
    ));
    assert!(matches!(
        ContainerRecipients::x25519(Vec::new()),
        Err(Error::Container(ContainerError::RecipientCount {
            got: 0,
            ..
        }))
    ));
}
