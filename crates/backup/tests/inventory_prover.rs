//! The custodian's side of an inventory, without a service: a proof made
//! from a real age container verifies for exactly its statement, the hedged
//! nonce differs per challenge, and every refusal of the prover has its own
//! error; the custodian tool's receipt and inventory answer from the same
//! containers. (The service's checks run end to end in `inspect.rs`; the
//! tool's recovery submission in `recovery.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_backup::{
    CustodianCredentials, Error, InventoryChallenge, InventoryProof, container_hash,
    prove_inventory,
};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::deps::age::secrecy::SecretString;
use shardkeep_envelope::{
    Armor, Binding, ContainerError, ContainerRecipients, CustodianSet, EnvelopeParams,
    ReceiptStatus, TrustedSigners, VerifiedReceipt, archive_hash, seal_container,
};
use shardkeep_sss_core::{
    Commitments, Curve, Ed25519, PossessionProof, Secp256k1, Secret, Share, ShareIndex, Threshold,
    split, verify_possession,
};
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, InMemorySigner, KeyId, KeyVersion, NodeId, NodeVersion,
    Signer, SignerId, Timestamp,
};

/// One custodian's container of one split, and what made it.
struct Fixture<C: Curve> {
    commitments: Commitments<C>,
    shares: Vec<Share<C>>,
    version: NodeVersion,
    envelope_signer: InMemorySigner,
    identity: age::x25519::Identity,
    receipt_key: InMemorySigner,
    custodian: CustodianId,
    person: ActorId,
}

const INDEX: u8 = 3;

fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_800_000_000_000).unwrap()
}

impl<C: Curve> Fixture<C> {
    fn new(seed: u8) -> Self {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let secret = Secret::<C>::random(&mut rng);
        let (commitments, shares) = split(&secret, Threshold::new(3, 5).unwrap(), &mut rng)
            .unwrap()
            .into_parts();
        Self {
            commitments,
            shares,
            version: NodeVersion {
                key_id: KeyId::new("key-1").unwrap(),
                node_id: NodeId::new("node-a").unwrap(),
                version: KeyVersion::new(1),
            },
            envelope_signer: InMemorySigner::generate(
                SignerId::new("envelope-signer").unwrap(),
                &mut rng,
            ),
            identity: age::x25519::Identity::generate(),
            receipt_key: InMemorySigner::generate(SignerId::new("alice").unwrap(), &mut rng),
            custodian: CustodianId::new("escrow-co").unwrap(),
            person: ActorId::new("alice@escrow").unwrap(),
        }
    }

    fn trusted(&self) -> TrustedSigners {
        let mut trusted = TrustedSigners::new();
        trusted.add_signer(&self.envelope_signer).unwrap();
        trusted
    }

    /// The container of share `index`, sealed to `recipients`, and its
    /// envelope id.
    fn container_for(&self, index: u8, recipients: &ContainerRecipients) -> (Vec<u8>, EnvelopeId) {
        let archive = b"sealed protocol archive".to_vec();
        let public_share = self.commitments.as_bytes()[..C::POINT_LEN].to_vec();
        let binding = Binding::new(
            C::ID,
            public_share.clone(),
            vec![7],
            public_share,
            archive_hash(&archive),
        )
        .unwrap();
        let params = EnvelopeParams {
            node_version: self.version.clone(),
            created_at: now(),
            binding,
        };
        let share = &self.shares[usize::from(index) - 1];
        let envelope = params
            .plain(&self.commitments, share, &self.envelope_signer)
            .unwrap();
        let id = envelope.id();
        let container = seal_container(&envelope, &archive, recipients, Armor::Ascii).unwrap();
        (container, id)
    }

    fn container(&self, index: u8) -> (Vec<u8>, EnvelopeId) {
        let recipients = ContainerRecipients::x25519(vec![self.identity.to_public()]).unwrap();
        self.container_for(index, &recipients)
    }

    fn challenge(&self, nonce: u8, envelope_id: EnvelopeId) -> InventoryChallenge {
        InventoryChallenge {
            nonce: [nonce; 32],
            slot: self.version.slot(ShareIndex::new(INDEX).unwrap()),
            envelope_id,
            custodian: self.custodian.clone(),
            expires_at: Timestamp::from_unix_millis(now().as_unix_millis() + 900_000).unwrap(),
        }
    }

    fn credentials<'a>(
        &'a self,
        identities: &'a [age::x25519::Identity],
    ) -> CustodianCredentials<'a> {
        CustodianCredentials {
            custodian: &self.custodian,
            person: &self.person,
            identities,
            receipt_signer: &self.receipt_key,
        }
    }

    fn prove(
        &self,
        challenge: &InventoryChallenge,
        container: &[u8],
        rng_seed: u8,
    ) -> Result<InventoryProof, Error> {
        let identities = [self.identity.clone()];
        prove_inventory(
            challenge,
            container,
            &self.credentials(&identities),
            &self.trusted(),
            now(),
            &mut ChaCha20Rng::from_seed([rng_seed; 32]),
        )
    }

    /// Whether `proof`'s possession proof verifies for `index` and the
    /// context of `challenge` and `container_hash`, against the split's
    /// commitments.
    fn verifies(
        &self,
        proof: &InventoryProof,
        index: u8,
        challenge: &InventoryChallenge,
        container_hash: &[u8; 32],
    ) -> bool {
        let possession = PossessionProof::<C>::from_bytes(&proof.possession).unwrap();
        verify_possession(
            &possession,
            &self.commitments,
            ShareIndex::new(index).unwrap(),
            &challenge.possession_context(container_hash),
        )
        .is_ok()
    }
}

fn a_proof_verifies_for_its_statement_only<C: Curve>() {
    let fixture = Fixture::<C>::new(1);
    let (container, envelope_id) = fixture.container(INDEX);
    let challenge = fixture.challenge(1, envelope_id);
    let proof = fixture.prove(&challenge, &container, 9).unwrap();
    let hash = container_hash(&container);
    assert_eq!(proof.container_hash, hash);
    assert_eq!(proof.challenge, challenge);
    assert_eq!(proof.person, fixture.person);
    proof
        .verify_signature(&fixture.receipt_key.verifying_key().to_bytes())
        .unwrap();
    assert!(fixture.verifies(&proof, INDEX, &challenge, &hash));

    // Another nonce, envelope, custodian or container, or another index:
    // never.
    let mut other_nonce = challenge.clone();
    other_nonce.nonce[0] ^= 1;
    let mut other_envelope = challenge.clone();
    other_envelope.envelope_id = EnvelopeId::from_bytes([0xee; 32]);
    let mut other_custodian = challenge.clone();
    other_custodian.custodian = CustodianId::new("other-co").unwrap();
    for (what, other) in [
        ("nonce", &other_nonce),
        ("envelope", &other_envelope),
        ("custodian", &other_custodian),
    ] {
        assert!(
            !fixture.verifies(&proof, INDEX, other, &hash),
            "verified for another {what}"
        );
    }
    let mut other_hash = hash;
    other_hash[0] ^= 1;
    assert!(!fixture.verifies(&proof, INDEX, &challenge, &other_hash));
    for index in (1..=5).filter(|index| *index != INDEX) {
        assert!(!fixture.verifies(&proof, index, &challenge, &hash));
    }
}

fn two_challenges_get_two_nonce_points<C: Curve>() {
    let fixture = Fixture::<C>::new(2);
    let (container, envelope_id) = fixture.container(INDEX);
    // The same random generator state for both: only the statement differs.
    let first = fixture
        .prove(&fixture.challenge(1, envelope_id), &container, 5)
        .unwrap();
    let second = fixture
        .prove(&fixture.challenge(2, envelope_id), &container, 5)
        .unwrap();
    let nonce_point = |proof: &InventoryProof| proof.possession[1..=C::POINT_LEN].to_vec();
    assert_ne!(nonce_point(&first), nonce_point(&second));
    // And one challenge twice with fresh randomness: R differs too.
    let again = fixture
        .prove(&fixture.challenge(1, envelope_id), &container, 6)
        .unwrap();
    assert_ne!(nonce_point(&first), nonce_point(&again));
}

fn the_prover_refuses_what_is_not_its_challenge<C: Curve>() {
    let fixture = Fixture::<C>::new(3);
    let (container, envelope_id) = fixture.container(INDEX);

    let mut for_other = fixture.challenge(1, envelope_id);
    for_other.custodian = CustodianId::new("other-co").unwrap();
    assert!(matches!(
        fixture.prove(&for_other, &container, 1),
        Err(Error::ChallengeForOtherCustodian { .. })
    ));

    let mut expired = fixture.challenge(1, envelope_id);
    expired.expires_at = now();
    assert!(matches!(
        fixture.prove(&expired, &container, 1),
        Err(Error::ChallengeExpired { .. })
    ));

    // The container holds another envelope than the challenge names.
    let (other_container, _) = fixture.container(INDEX + 1);
    assert!(matches!(
        fixture.prove(&fixture.challenge(1, envelope_id), &other_container, 1),
        Err(Error::InventoryEnvelopeMismatch { .. })
    ));

    // The challenge names this envelope, but for another slot.
    let mut other_slot = fixture.challenge(1, envelope_id);
    other_slot.slot = fixture.version.slot(ShareIndex::new(INDEX + 1).unwrap());
    assert!(matches!(
        fixture.prove(&other_slot, &container, 1),
        Err(Error::ChallengeMismatch { field: "slot" })
    ));

    // Sealed to someone else: the custodian's identity does not open it.
    let stranger = age::x25519::Identity::generate();
    let recipients = ContainerRecipients::x25519(vec![stranger.to_public()]).unwrap();
    let (strangers, strangers_id) = fixture.container_for(INDEX, &recipients);
    assert!(matches!(
        fixture.prove(&fixture.challenge(1, strangers_id), &strangers, 1),
        Err(Error::Envelope(shardkeep_envelope::Error::Container(
            ContainerError::NoMatchingIdentity
        )))
    ));

    // A passphrase container is never opened by the prover.
    let passphrase = ContainerRecipients::passphrase_with_work_factor(
        SecretString::from("correct horse battery staple".to_owned()),
        15,
    )
    .unwrap();
    let (locked, locked_id) = fixture.container_for(INDEX, &passphrase);
    assert!(matches!(
        fixture.prove(&fixture.challenge(1, locked_id), &locked, 1),
        Err(Error::Envelope(shardkeep_envelope::Error::Container(
            ContainerError::PassphraseNotAccepted
        )))
    ));

    // An envelope signed under the service's signer id by another key.
    let mut forged = Fixture::<C>::new(3);
    forged.identity = fixture.identity.clone();
    forged.envelope_signer = InMemorySigner::generate(
        SignerId::new("envelope-signer").unwrap(),
        &mut ChaCha20Rng::from_seed([99; 32]),
    );
    let (forged_container, forged_id) = forged.container(INDEX);
    assert!(matches!(
        fixture.prove(&fixture.challenge(1, forged_id), &forged_container, 1),
        Err(Error::Envelope(shardkeep_envelope::Error::BadSignature))
    ));
}

fn the_tool_receipts_the_one_envelope_its_container_holds<C: Curve>() {
    let fixture = Fixture::<C>::new(4);
    let (container, envelope_id) = fixture.container(INDEX);
    let identities = [fixture.identity.clone()];
    let tool = fixture.credentials(&identities);
    let bytes = tool.receipt(&container, &fixture.trusted(), now()).unwrap();
    let mut custodians = CustodianSet::new();
    let index = ShareIndex::new(INDEX).unwrap();
    let key = fixture.receipt_key.verifying_key();
    custodians
        .insert(index, fixture.custodian.clone(), key)
        .unwrap();
    let verified = VerifiedReceipt::decode_verify(&bytes, &custodians).unwrap();
    let receipt = verified.receipt();
    assert_eq!(receipt.envelope_id, envelope_id);
    assert_eq!(receipt.custodian_id, fixture.custodian);
    assert_eq!(receipt.status, ReceiptStatus::Received);
    assert_eq!(receipt.timestamp, now());

    // Pinned to another service key: the envelope does not verify, and
    // nothing is signed.
    let mut other_service = TrustedSigners::new();
    let other_key = InMemorySigner::from_seed(SignerId::new("envelope-signer").unwrap(), &[5; 32]);
    other_service.add_signer(&other_key).unwrap();
    assert!(matches!(
        tool.receipt(&container, &other_service, now()),
        Err(Error::Envelope(shardkeep_envelope::Error::BadSignature))
    ));
    // Another custodian's container: this person's identity does not open it.
    let stranger = age::x25519::Identity::generate();
    let recipients = ContainerRecipients::x25519(vec![stranger.to_public()]).unwrap();
    let (strangers, _) = fixture.container_for(INDEX, &recipients);
    assert!(matches!(
        tool.receipt(&strangers, &fixture.trusted(), now()),
        Err(Error::Envelope(shardkeep_envelope::Error::Container(
            ContainerError::NoMatchingIdentity
        )))
    ));
    // The person's identities may hold the stranger's too: then it opens.
    let both = [fixture.identity.clone(), stranger];
    let receipt = fixture
        .credentials(&both)
        .receipt(&strangers, &fixture.trusted(), now());
    assert!(receipt.is_ok());
}

fn the_tool_answers_the_carried_challenge<C: Curve>() {
    let fixture = Fixture::<C>::new(5);
    let (container, envelope_id) = fixture.container(INDEX);
    let challenge = fixture.challenge(1, envelope_id);
    let identities = [fixture.identity.clone()];
    let tool = fixture.credentials(&identities);
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let (carried, trusted) = (challenge.encode(), fixture.trusted());
    let bytes = tool
        .inventory_proof(&carried, &container, &trusted, now(), &mut rng)
        .unwrap();
    let proof = InventoryProof::decode(&bytes).unwrap();
    proof
        .verify_signature(&fixture.receipt_key.verifying_key().to_bytes())
        .unwrap();
    assert_eq!(proof.challenge, challenge);
    assert!(fixture.verifies(&proof, INDEX, &challenge, &container_hash(&container)));

    // Bytes that are not a challenge, and a challenge for another custodian.
    let mut trailing = carried.clone();
    trailing.push(0);
    assert!(matches!(
        tool.inventory_proof(&trailing, &container, &trusted, now(), &mut rng),
        Err(Error::Framing(_))
    ));
    let mut for_other = challenge;
    for_other.custodian = CustodianId::new("other-co").unwrap();
    assert!(matches!(
        tool.inventory_proof(&for_other.encode(), &container, &trusted, now(), &mut rng),
        Err(Error::ChallengeForOtherCustodian { .. })
    ));
}

#[test]
fn secp256k1_the_tool_receipts_the_one_envelope_its_container_holds() {
    the_tool_receipts_the_one_envelope_its_container_holds::<Secp256k1>();
}

#[test]
fn ed25519_the_tool_receipts_the_one_envelope_its_container_holds() {
    the_tool_receipts_the_one_envelope_its_container_holds::<Ed25519>();
}

#[test]
fn secp256k1_the_tool_answers_the_carried_challenge() {
    the_tool_answers_the_carried_challenge::<Secp256k1>();
}

#[test]
fn ed25519_the_tool_answers_the_carried_challenge() {
    the_tool_answers_the_carried_challenge::<Ed25519>();
}

#[test]
fn secp256k1_a_proof_verifies_for_its_statement_only() {
    a_proof_verifies_for_its_statement_only::<Secp256k1>();
}

#[test]
fn ed25519_a_proof_verifies_for_its_statement_only() {
    a_proof_verifies_for_its_statement_only::<Ed25519>();
}

#[test]
fn secp256k1_two_challenges_get_two_nonce_points() {
    two_challenges_get_two_nonce_points::<Secp256k1>();
}

#[test]
fn ed25519_two_challenges_get_two_nonce_points() {
    two_challenges_get_two_nonce_points::<Ed25519>();
}

#[test]
fn secp256k1_the_prover_refuses_what_is_not_its_challenge() {
    the_prover_refuses_what_is_not_its_challenge::<Secp256k1>();
}

#[test]
fn ed25519_the_prover_refuses_what_is_not_its_challenge() {
    the_prover_refuses_what_is_not_its_challenge::<Ed25519>();
}
