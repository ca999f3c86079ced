//! External inventory without reconstruction: the challenge the service
//! issues, the signed proof a custodian answers with, and the custodian's
//! side of it.
//!
//! The service draws a single-use nonce and hands the operator an
//! [`InventoryChallenge`] (`shkp-ich`) to carry to the custodian. The
//! custodian, from its container alone ([`prove_inventory`]), opens the
//! container with its own X25519 identity, checks that the envelope inside
//! is the one the challenge names, proves knowledge of its share `s_i` for
//! `Y_i = s_i*G` (a hedged Schnorr proof, `shardkeep-sss-core`'s
//! `prove_possession`) bound to the nonce, the envelope id, the custodian id
//! and the hash of its container, and signs the whole answer with its
//! registered receipt key: an [`InventoryProof`] (`shkp-inv`). The service
//! checks it against the commitments it stored at generate time.
//!
//! What a proof shows: whoever signed it held `s_i` when the nonce was
//! fixed. It does not show the state of the container or of its storage: a
//! custodian that copied `s_i` elsewhere proves just as well.

use core::fmt;

use ed25519_dalek::{SIGNATURE_LENGTH, Signature, VerifyingKey};
use rand_core::CryptoRng;
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{
    CurveCommitments, CurveShare, Receipt, ReceiptStatus, TrustedSigners, open_x25519_container,
};
use shardkeep_sss_core::{Ed25519, Secp256k1, prove_possession};
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FramingError, MAX_NAME_LEN, ShareSlot, Signer, Timestamp,
};
use shardkeep_wire::{Reader, check_total_len, put_prefixed_u8};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::reference::container_hash;
use crate::session::{prepare_submission, unsealed_submission};

/// First bytes of an inventory challenge.
pub const INVENTORY_CHALLENGE_MAGIC: &[u8; 8] = b"shkp-ich";
/// The inventory challenge format version this build writes and reads.
pub const INVENTORY_CHALLENGE_VERSION: u8 = 1;
/// First bytes of a signed inventory proof.
pub const INVENTORY_PROOF_MAGIC: &[u8; 8] = b"shkp-inv";
/// The inventory proof format version this build writes and reads.
pub const INVENTORY_PROOF_VERSION: u8 = 1;
/// Domain tag prefixed to a proof's signed bytes for the custodian's
/// ed25519 signature.
pub const INVENTORY_SIGNATURE_TAG: &[u8] = b"shardkeep/inventory-signature/v1";

/// Length of a challenge nonce.
pub const INVENTORY_NONCE_LEN: usize = 32;
/// Longest proof of possession carried in an inventory proof: curve byte,
/// a compressed point (33 bytes on secp256k1, 32 on ed25519), `z` (32).
pub const MAX_POSSESSION_PROOF_LEN: usize = 1 + 33 + 32;

/// The longest encoded share slot: two names and their lengths, the
/// version, the index.
const MAX_SLOT_LEN: usize = 1 + MAX_NAME_LEN + 1 + MAX_NAME_LEN + 4 + 1;
/// The longest challenge body (nonce, slot, envelope id, custodian, expiry).
const MAX_CHALLENGE_BODY_LEN: usize =
    INVENTORY_NONCE_LEN + MAX_SLOT_LEN + 32 + 1 + MAX_NAME_LEN + 8;
/// Longest encoded [`InventoryChallenge`], in bytes (checked before
/// parsing).
pub const MAX_INVENTORY_CHALLENGE_LEN: usize = 8 + 1 + MAX_CHALLENGE_BODY_LEN;
/// Longest encoded [`InventoryProof`], in bytes (checked before parsing).
pub const MAX_INVENTORY_PROOF_LEN: usize = 8
    + 1
    + MAX_CHALLENGE_BODY_LEN
    + 1
    + MAX_NAME_LEN
    + 32
    + 1
    + MAX_POSSESSION_PROOF_LEN
    + SIGNATURE_LENGTH;

// Every proof this crate accepts fits the evidence column storage keeps it in.
const _: () = assert!(MAX_INVENTORY_PROOF_LEN <= shardkeep_storage::MAX_INVENTORY_PROOF_LEN);

/// A single-use inventory challenge, as the operator carries it to the
/// custodian: which share to prove, in which envelope, by whom, until
/// when. Public data: it grants nothing, and the service checks every
/// answer against its own record of the challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct InventoryChallenge {
    /// The service's single-use nonce naming the challenge.
    pub nonce: [u8; INVENTORY_NONCE_LEN],
    /// The external share slot to prove.
    pub slot: ShareSlot,
    /// The envelope delivered for that slot.
    pub envelope_id: EnvelopeId,
    /// The custodian entity holding it.
    pub custodian: CustodianId,
    /// When the challenge lapses.
    pub expires_at: Timestamp,
}

impl fmt::Debug for InventoryChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public values, printed in full.
        f.debug_struct("InventoryChallenge")
            .field("nonce", &hex::encode(self.nonce))
            .field("slot", &self.slot)
            .field("envelope_id", &self.envelope_id)
            .field("custodian", &self.custodian)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl InventoryChallenge {
    /// The canonical encoding: magic `shkp-ich`, version, then the body
    /// (see `docs/formats.md`).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_INVENTORY_CHALLENGE_LEN);
        out.extend_from_slice(INVENTORY_CHALLENGE_MAGIC);
        out.push(INVENTORY_CHALLENGE_VERSION);
        self.encode_body(&mut out);
        out
    }

    /// Decodes [`InventoryChallenge::encode`]'s output, refusing anything
    /// else.
    ///
    /// # Errors
    /// [`Error::Framing`] (cap, magic, version, lengths, truncation,
    /// trailing bytes), [`Error::Types`] (a name, the share index, the
    /// expiry).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        check_total_len(
            "inventory challenge",
            bytes.len(),
            MAX_INVENTORY_CHALLENGE_LEN,
        )?;
        let mut reader = Reader::new(bytes);
        reader.magic_and_version(
            "inventory challenge",
            INVENTORY_CHALLENGE_MAGIC,
            INVENTORY_CHALLENGE_VERSION,
        )?;
        let challenge = Self::decode_body(&mut reader)?;
        reader.finish("inventory challenge")?;
        Ok(challenge)
    }

    /// `nonce (32) || slot || envelope id (32) || name(custodian) ||
    /// expires_at (u64 ms)`: fixed-width fields and length-prefixed names,
    /// so the encoding is injective.
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.nonce);
        self.slot.encode(out);
        out.extend_from_slice(self.envelope_id.as_bytes());
        self.custodian.encode_prefixed(out);
        out.extend_from_slice(&self.expires_at.as_unix_millis().to_be_bytes());
    }

    fn decode_body(reader: &mut Reader<'_>) -> Result<Self, Error> {
        let nonce = *reader.array::<INVENTORY_NONCE_LEN>("nonce")?;
        let slot = ShareSlot::decode(reader)?;
        let envelope_id = EnvelopeId::from_bytes(*reader.array::<32>("envelope_id")?);
        let custodian = CustodianId::decode_prefixed(reader)?;
        let expires_at = Timestamp::from_unix_millis(reader.u64("expires_at")?)?;
        Ok(Self {
            nonce,
            slot,
            envelope_id,
            custodian,
            expires_at,
        })
    }

    /// The context a proof of possession for this challenge binds, for
    /// `container_hash`: `nonce (32) || envelope id (32) ||
    /// name(custodian) || container hash (32)`. One variable-length field,
    /// length-prefixed: injective.
    #[must_use]
    pub fn possession_context(&self, container_hash: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 32 + 1 + MAX_NAME_LEN + 32);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(self.envelope_id.as_bytes());
        self.custodian.encode_prefixed(&mut out);
        out.extend_from_slice(container_hash);
        out
    }
}

/// A custodian's signed answer to an [`InventoryChallenge`]: the challenge
/// fields repeated, who answers, the hash of the container they opened, the
/// proof of possession of the share and their signature with their
/// registered receipt key. Public data.
#[derive(Clone, PartialEq, Eq)]
pub struct InventoryProof {
    /// The challenge answered.
    pub challenge: InventoryChallenge,
    /// The person who answers for the custodian entity (the one the share
    /// was sealed to), whose registered receipt key signs.
    pub person: ActorId,
    /// [`container_hash`] of the container the share was read from.
    pub container_hash: [u8; 32],
    /// The proof of possession: `curve (1) || R || z (32)`
    /// (`shardkeep-sss-core`'s `PossessionProof` encoding).
    pub possession: Vec<u8>,
    /// Ed25519 over `"shardkeep/inventory-signature/v1" || every byte
    /// before the signature`.
    pub signature: [u8; SIGNATURE_LENGTH],
}

impl fmt::Debug for InventoryProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public values, printed in full.
        f.debug_struct("InventoryProof")
            .field("challenge", &self.challenge)
            .field("person", &self.person)
            .field("container_hash", &hex::encode(self.container_hash))
            .field("possession", &hex::encode(&self.possession))
            .field("signature", &hex::encode(self.signature))
            .finish()
    }
}

impl InventoryProof {
    /// The bytes the signature covers: magic `shkp-inv`, version, the
    /// challenge body, `name(person) || container hash (32) || u8 len ||
    /// possession proof`.
    ///
    /// # Errors
    /// [`Error::Framing`] when the possession proof is empty or longer than
    /// [`MAX_POSSESSION_PROOF_LEN`].
    pub fn signed_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(MAX_INVENTORY_PROOF_LEN);
        out.extend_from_slice(INVENTORY_PROOF_MAGIC);
        out.push(INVENTORY_PROOF_VERSION);
        self.challenge.encode_body(&mut out);
        self.person.encode_prefixed(&mut out);
        out.extend_from_slice(&self.container_hash);
        if self.possession.is_empty() {
            return Err(FramingError::LengthOutOfRange {
                field: "possession",
                len: 0,
                min: 1,
                max: MAX_POSSESSION_PROOF_LEN,
            }
            .into());
        }
        put_prefixed_u8(
            &mut out,
            "possession",
            &self.possession,
            MAX_POSSESSION_PROOF_LEN,
        )?;
        Ok(out)
    }

    /// The canonical encoding: [`InventoryProof::signed_bytes`] then the
    /// signature.
    ///
    /// # Errors
    /// As [`InventoryProof::signed_bytes`].
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = self.signed_bytes()?;
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    /// Decodes [`InventoryProof::encode`]'s output, refusing anything
    /// else. The signature is not checked here: that needs the signer's
    /// registered key ([`InventoryProof::verify_signature`]).
    ///
    /// # Errors
    /// [`Error::Framing`] (cap, magic, version, lengths, truncation,
    /// trailing bytes), [`Error::Types`] (a name, the share index, the
    /// expiry).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        check_total_len("inventory proof", bytes.len(), MAX_INVENTORY_PROOF_LEN)?;
        let mut reader = Reader::new(bytes);
        reader.magic_and_version(
            "inventory proof",
            INVENTORY_PROOF_MAGIC,
            INVENTORY_PROOF_VERSION,
        )?;
        let challenge = InventoryChallenge::decode_body(&mut reader)?;
        let person = ActorId::decode_prefixed(&mut reader)?;
        let container_hash = *reader.array::<32>("container_hash")?;
        let possession = reader
            .prefixed_u8("possession", 1, MAX_POSSESSION_PROOF_LEN)?
            .to_vec();
        let signature = *reader.array::<SIGNATURE_LENGTH>("signature")?;
        reader.finish("inventory proof")?;
        Ok(Self {
            challenge,
            person,
            container_hash,
            possession,
            signature,
        })
    }

    /// Signs the proof's fields with `signer` (the custodian's receipt key).
    ///
    /// # Errors
    /// As [`InventoryProof::signed_bytes`]; [`Error::Signing`] when the
    /// signer fails.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), Error> {
        let message = tagged(&self.signed_bytes()?);
        self.signature = signer.sign(&message).map_err(Error::Signing)?.to_bytes();
        Ok(())
    }

    /// Checks the signature with `key` (ed25519 `verify_strict`: canonical
    /// `S`, no small-order key or `R`).
    ///
    /// # Errors
    /// [`Error::InventorySignatureInvalid`] naming the person; as
    /// [`InventoryProof::signed_bytes`].
    pub fn verify_signature(&self, key: &[u8; 32]) -> Result<(), Error> {
        let refused = || Error::InventorySignatureInvalid {
            person: self.person.clone(),
        };
        let key = VerifyingKey::from_bytes(key).map_err(|_| refused())?;
        let message = tagged(&self.signed_bytes()?);
        key.verify_strict(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| refused())
    }
}

/// `"shardkeep/inventory-signature/v1" || signed bytes`.
fn tagged(signed: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(INVENTORY_SIGNATURE_TAG.len() + signed.len());
    message.extend_from_slice(INVENTORY_SIGNATURE_TAG);
    message.extend_from_slice(signed);
    message
}

/// Who a custodian is and what it holds, as its tool (a CLI) acts with:
/// its entity, the person acting (the one the container was sealed to),
/// that person's age identities and receipt signer. Its methods make what
/// the custodian sends the service: a receipt, an inventory proof, a
/// recovery submission.
pub struct CustodianCredentials<'a> {
    /// The custodian entity.
    pub custodian: &'a CustodianId,
    /// The person acting for it.
    pub person: &'a ActorId,
    /// The person's age X25519 identities (`AGE-SECRET-KEY-1...`).
    pub identities: &'a [age::x25519::Identity],
    /// The person's registered receipt-signing key.
    pub receipt_signer: &'a dyn Signer,
}

impl fmt::Debug for CustodianCredentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustodianCredentials")
            .field("custodian", self.custodian)
            .field("person", self.person)
            .field("identities", &self.identities.len())
            .field("receipt_signer", &self.receipt_signer)
            .finish()
    }
}

impl CustodianCredentials<'_> {
    /// The receipt for a delivered container, for
    /// [`BackupService::confirm`](crate::BackupService::confirm): opens
    /// `container` with the person's identities, verifies the envelope
    /// inside against `pinned` (the service's envelope key, handed to the
    /// custodian out of band), and signs with the receipt signer that this
    /// custodian received that one envelope at `now`.
    ///
    /// # Errors
    /// [`Error::Envelope`] when the container does not open with these
    /// identities (sealed to another custodian, or a passphrase container),
    /// when its envelope does not verify under `pinned`, or when the
    /// receipt cannot be signed (a weak key, a failing signer).
    pub fn receipt(
        &self,
        container: &[u8],
        pinned: &TrustedSigners,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error> {
        let opened = open_x25519_container(container, self.identities, pinned)?;
        let receipt = Receipt {
            custodian_id: self.custodian.clone(),
            envelope_id: opened.envelope().id(),
            status: ReceiptStatus::Received,
            timestamp: now,
        };
        Ok(receipt.sign(self.receipt_signer)?)
    }

    /// The answer to an inventory challenge as the operator carries it:
    /// decodes `challenge`, runs [`prove_inventory`] on `container` and
    /// encodes the signed proof, for
    /// [`BackupService::confirm_inventory`](crate::BackupService::confirm_inventory).
    ///
    /// # Errors
    /// [`Error::Framing`] or [`Error::Types`] for a challenge that does not
    /// decode; otherwise as [`prove_inventory`].
    pub fn inventory_proof<R: CryptoRng + ?Sized>(
        &self,
        challenge: &[u8],
        container: &[u8],
        pinned: &TrustedSigners,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        let challenge = InventoryChallenge::decode(challenge)?;
        prove_inventory(&challenge, container, self, pinned, now, rng)?.encode()
    }

    /// The submission to a recovery session or drill:
    /// [`prepare_recovery_submission`](crate::prepare_recovery_submission)
    /// with these credentials, the container opening with any of the
    /// person's identities. `descriptor` is the session descriptor as the
    /// operator carries it, `service_key` the service's pinned envelope
    /// key.
    ///
    /// # Errors
    /// As [`prepare_recovery_submission`](crate::prepare_recovery_submission):
    /// [`Error::SessionDescriptorInvalid`] (also for a descriptor signed by
    /// another key than `service_key`), [`Error::SessionDescriptorExpired`],
    /// [`Error::ContainerUnreadable`] (also for another custodian's
    /// container), [`Error::Envelope`], [`Error::SessionDescriptorMismatch`],
    /// [`Error::Signing`].
    pub fn recovery_submission(
        &self,
        descriptor: &[u8],
        service_key: &VerifyingKey,
        now: Timestamp,
        container: &[u8],
    ) -> Result<Vec<u8>, Error> {
        prepare_submission(
            descriptor,
            service_key,
            now,
            container,
            self.identities,
            self.person,
            self.receipt_signer,
        )
    }

    /// Every check and the signature of
    /// [`recovery_submission`](Self::recovery_submission), without the
    /// last step: the submission's plaintext (`shkp-rsb`) and the session
    /// recipient (`age1...`) it must be encrypted to, for a custodian tool
    /// that encrypts with its own age implementation (another language's).
    /// The plaintext holds the container's contents: zeroized on drop,
    /// never to be stored unencrypted.
    ///
    /// # Errors
    /// As [`recovery_submission`](Self::recovery_submission).
    pub fn unsealed_recovery_submission(
        &self,
        descriptor: &[u8],
        service_key: &VerifyingKey,
        now: Timestamp,
        container: &[u8],
    ) -> Result<(String, Zeroizing<Vec<u8>>), Error> {
        let (descriptor, plain) = unsealed_submission(
            descriptor,
            service_key,
            now,
            container,
            self.identities,
            self.person,
            self.receipt_signer,
        )?;
        Ok((descriptor.recipient, plain))
    }
}

/// The custodian's side of an inventory: answers `challenge` from
/// `container` alone, without reconstructing anything.
///
/// Refuses a challenge for another custodian entity or one that has
/// lapsed at `now`; opens the container with the custodian's X25519
/// identities (never a passphrase) and verifies it (the envelope signature
/// against `trusted`, the service's pinned envelope key; the Feldman check
/// of the share); checks that the envelope inside is the one the challenge
/// names, for the slot it names; proves possession of the share bound to
/// the nonce, the envelope id, the custodian id and the container hash;
/// signs the answer with the receipt signer. `rng` hedges the proof's
/// nonce.
///
/// # Errors
/// [`Error::ChallengeForOtherCustodian`], [`Error::ChallengeExpired`],
/// [`Error::Envelope`] when the container does not open or verify,
/// [`Error::InventoryEnvelopeMismatch`] when it holds another envelope,
/// [`Error::ChallengeMismatch`] when that envelope is for another slot,
/// [`Error::Sharing`] when the proof cannot be made, [`Error::Signing`].
pub fn prove_inventory<R: CryptoRng + ?Sized>(
    challenge: &InventoryChallenge,
    container: &[u8],
    credentials: &CustodianCredentials<'_>,
    trusted: &TrustedSigners,
    now: Timestamp,
    rng: &mut R,
) -> Result<InventoryProof, Error> {
    if challenge.custodian != *credentials.custodian {
        return Err(Error::ChallengeForOtherCustodian {
            challenge: challenge.custodian.clone(),
            custodian: credentials.custodian.clone(),
        });
    }
    if now >= challenge.expires_at {
        return Err(Error::ChallengeExpired {
            expired_at: challenge.expires_at,
        });
    }
    let opened = open_x25519_container(container, credentials.identities, trusted)?;
    let (envelope, _archive) = opened.into_parts();
    // Public ids: plain comparisons.
    if envelope.id() != challenge.envelope_id {
        return Err(Error::InventoryEnvelopeMismatch {
            slot: challenge.slot.clone(),
        });
    }
    if envelope.header().slot() != challenge.slot {
        return Err(Error::ChallengeMismatch { field: "slot" });
    }
    let hash = container_hash(container);
    let context = challenge.possession_context(&hash);
    let commitments = envelope.header().commitments().clone();
    let share = envelope.into_plain_share()?;
    let possession = match (&share, &commitments) {
        (CurveShare::Secp256k1(share), CurveCommitments::Secp256k1(commitments)) => {
            prove_possession::<Secp256k1, R>(share, commitments, &context, rng)?.to_bytes()
        }
        (CurveShare::Ed25519(share), CurveCommitments::Ed25519(commitments)) => {
            prove_possession::<Ed25519, R>(share, commitments, &context, rng)?.to_bytes()
        }
        // A verified envelope's share and commitments are on one curve.
        (share, commitments) => {
            return Err(shardkeep_sss_core::Error::CurveMismatch {
                expected: commitments.curve(),
                got: share.curve().to_u8(),
            }
            .into());
        }
    };
    let mut proof = InventoryProof {
        challenge: challenge.clone(),
        person: credentials.person.clone(),
        container_hash: hash,
        possession,
        signature: [0; SIGNATURE_LENGTH],
    };
    proof.sign(credentials.receipt_signer)?;
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;
    use shardkeep_types::{
        InMemorySigner, KeyId, KeyVersion, NodeId, NodeVersion, ShareIndex, SignerId,
    };

    use super::*;

    fn challenge() -> InventoryChallenge {
        InventoryChallenge {
            nonce: [0x11; 32],
            slot: NodeVersion {
                key_id: KeyId::new("key-1").unwrap(),
                node_id: NodeId::new("node-a").unwrap(),
                version: KeyVersion::new(3),
            }
            .slot(ShareIndex::new(4).unwrap()),
            envelope_id: EnvelopeId::from_bytes([0x22; 32]),
            custodian: CustodianId::new("escrow-co").unwrap(),
            expires_at: Timestamp::from_unix_millis(1_800_000_900_000).unwrap(),
        }
    }

    fn signer() -> InMemorySigner {
        InMemorySigner::from_seed(SignerId::new("custodian-key").unwrap(), &[7; 32])
    }

    fn proof() -> InventoryProof {
        let mut proof = InventoryProof {
            challenge: challenge(),
            person: ActorId::new("alice@escrow").unwrap(),
            container_hash: [0x33; 32],
            possession: vec![0x44; 66],
            signature: [0; SIGNATURE_LENGTH],
        };
        proof.sign(&signer()).unwrap();
        proof
    }

    /// The encodings are pinned: a change to either format fails here.
    #[test]
    fn golden_encodings() {
        assert_eq!(
            hex::encode(challenge().encode()),
            concat!(
                "73686b702d69636801",
                "1111111111111111111111111111111111111111111111111111111111111111",
                "056b65792d31",
                "066e6f64652d61",
                "00000003",
                "04",
                "2222222222222222222222222222222222222222222222222222222222222222",
                "09657363726f772d636f",
                "000001a3186a0ba0",
            )
        );
        let encoded = proof().encode().unwrap();
        let signed = proof().signed_bytes().unwrap();
        assert_eq!(&encoded[..signed.len()], signed.as_slice());
        assert_eq!(
            hex::encode(&signed[..9]),
            "73686b702d696e7601",
            "magic and version"
        );
        assert_eq!(
            hex::encode(&signed[9 + 32 + 18 + 32 + 10 + 8..]),
            concat!(
                "0c616c6963654065736372",
                "6f77",
                "3333333333333333333333333333333333333333333333333333333333333333",
                "42",
                "444444444444444444444444444444444444444444444444444444444444444444",
                "444444444444444444444444444444444444444444444444444444444444444444",
            )
        );
        // Ed25519 is deterministic: the signature is pinned too.
        assert_eq!(encoded.len(), signed.len() + SIGNATURE_LENGTH);
        assert_eq!(
            hex::encode(&encoded[signed.len()..]),
            hex::encode(proof().signature)
        );
    }

    #[test]
    fn caps_are_the_documented_ones() {
        assert_eq!(MAX_INVENTORY_CHALLENGE_LEN, 281);
        assert_eq!(MAX_INVENTORY_PROOF_LEN, 509);
    }

    #[test]
    fn decoding_refuses_anything_but_the_canonical_encoding() {
        let bytes = challenge().encode();
        assert_eq!(InventoryChallenge::decode(&bytes).unwrap(), challenge());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            InventoryChallenge::decode(&trailing),
            Err(Error::Framing(FramingError::TrailingBytes { .. }))
        ));
        assert!(matches!(
            InventoryChallenge::decode(&bytes[..bytes.len() - 1]),
            Err(Error::Framing(FramingError::Truncated { .. }))
        ));
        let mut magic = bytes.clone();
        magic[7] = b'x';
        assert!(matches!(
            InventoryChallenge::decode(&magic),
            Err(Error::Framing(FramingError::BadMagic { .. }))
        ));
        let mut version = bytes.clone();
        version[8] = 2;
        assert!(matches!(
            InventoryChallenge::decode(&version),
            Err(Error::Framing(FramingError::UnsupportedVersion {
                version: 2,
                ..
            }))
        ));
        assert!(matches!(
            InventoryChallenge::decode(&vec![0; MAX_INVENTORY_CHALLENGE_LEN + 1]),
            Err(Error::Framing(FramingError::TooLarge { .. }))
        ));
        // A proof is not a challenge, nor the other way round.
        let proof_bytes = proof().encode().unwrap();
        assert!(matches!(
            InventoryChallenge::decode(&proof_bytes),
            Err(Error::Framing(_))
        ));
        assert!(matches!(
            InventoryProof::decode(&bytes),
            Err(Error::Framing(FramingError::BadMagic { .. }))
        ));
        let mut zero_index = bytes.clone();
        // The share index byte follows the nonce and the two names and the version.
        zero_index[9 + 32 + 6 + 7 + 4] = 0;
        assert!(matches!(
            InventoryChallenge::decode(&zero_index),
            Err(Error::Types(shardkeep_types::Error::ZeroShareIndex))
        ));
        assert!(matches!(
            InventoryProof::decode(&vec![0; MAX_INVENTORY_PROOF_LEN + 1]),
            Err(Error::Framing(FramingError::TooLarge { .. }))
        ));
    }

    #[test]
    fn an_empty_possession_proof_is_refused_both_ways() {
        let mut empty = proof();
        empty.possession.clear();
        assert!(matches!(
            empty.encode(),
            Err(Error::Framing(FramingError::LengthOutOfRange { .. }))
        ));
        let mut bytes = proof().encode().unwrap();
        let at = bytes.len() - SIGNATURE_LENGTH - 67;
        assert_eq!(bytes[at], 66);
        bytes[at] = 0;
        assert!(matches!(
            InventoryProof::decode(&bytes),
            Err(Error::Framing(FramingError::LengthOutOfRange { .. }))
        ));
    }

    #[test]
    fn the_signature_covers_every_field() {
        let key = signer().verifying_key().to_bytes();
        proof().verify_signature(&key).unwrap();
        let other = InMemorySigner::from_seed(SignerId::new("other").unwrap(), &[8; 32]);
        assert!(matches!(
            proof().verify_signature(&other.verifying_key().to_bytes()),
            Err(Error::InventorySignatureInvalid { .. })
        ));
        let bytes = proof().encode().unwrap();
        let signed_len = bytes.len() - SIGNATURE_LENGTH;
        for position in 0..signed_len {
            let mut altered = bytes.clone();
            altered[position] ^= 1;
            // Either it no longer decodes, or its signature fails.
            if let Ok(decoded) = InventoryProof::decode(&altered) {
                assert!(
                    matches!(
                        decoded.verify_signature(&key),
                        Err(Error::InventorySignatureInvalid { .. })
                    ),
                    "byte {position}"
                );
            }
        }
    }

    #[test]
    fn the_context_is_injective_in_the_custodian_name() {
        let hash = [0x55; 32];
        let mut short = challenge();
        short.custodian = CustodianId::new("ab").unwrap();
        let mut long = challenge();
        long.custodian = CustodianId::new("abc").unwrap();
        assert_ne!(
            short.possession_context(&hash),
            long.possession_context(&hash)
        );
        assert_eq!(
            challenge().possession_context(&hash).len(),
            32 + 32 + 1 + 9 + 32
        );
    }

    #[test]
    fn container_hashes_are_tagged() {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"container");
        let untagged: [u8; 32] = hasher.finalize().into();
        assert_ne!(container_hash(b"container"), untagged);
        assert_ne!(container_hash(b"container"), container_hash(b"container "));
    }

    proptest! {
        #[test]
        fn proofs_round_trip(
            nonce in any::<[u8; 32]>(),
            key in "[a-z0-9]{1,64}",
            index in 1u8..=255,
            millis in 0u64..=i64::MAX.unsigned_abs(),
            person in "[a-z0-9@.]{1,64}",
            possession in proptest::collection::vec(any::<u8>(), 1..=MAX_POSSESSION_PROOF_LEN),
            seed in any::<[u8; 32]>(),
        ) {
            let mut proof = InventoryProof {
                challenge: InventoryChallenge {
                    nonce,
                    slot: NodeVersion {
                        key_id: KeyId::new(key).unwrap(),
                        node_id: NodeId::new("n").unwrap(),
                        version: KeyVersion::new(1),
                    }
                    .slot(ShareIndex::new(index).unwrap()),
                    envelope_id: EnvelopeId::from_bytes(nonce),
                    custodian: CustodianId::new("c").unwrap(),
                    expires_at: Timestamp::from_unix_millis(millis).unwrap(),
                },
                person: ActorId::new(person).unwrap(),
                container_hash: seed,
                possession,
                signature: [0; SIGNATURE_LENGTH],
            };
            let signer = InMemorySigner::generate(
                SignerId::new("s").unwrap(),
                &mut ChaCha20Rng::from_seed(seed),
            );
            proof.sign(&signer).unwrap();
            let bytes = proof.encode().unwrap();
            prop_assert!(bytes.len() <= MAX_INVENTORY_PROOF_LEN);
            let decoded = InventoryProof::decode(&bytes).unwrap();
            decoded.verify_signature(&signer.verifying_key().to_bytes()).unwrap();
            prop_assert_eq!(&decoded, &proof);
            let challenge = proof.challenge.encode();
            prop_assert!(challenge.len() <= MAX_INVENTORY_CHALLENGE_LEN);
            prop_assert_eq!(InventoryChallenge::decode(&challenge).unwrap(), proof.challenge);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = InventoryProof::decode(&bytes);
            let _ = InventoryChallenge::decode(&bytes);
        }
    }
}
