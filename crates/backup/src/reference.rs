//! What a key version was split into, as stored at generate time, and the
//! checks every later use runs on it.
//!
//! Generate stores, with the key version, the split's Feldman commitments
//! and a **signed split binding**: the version, curve, `t`, `n`, server
//! share count, split id, policy hash, and the node's binding (group public
//! key, tss-lib party id, public share, archive hash), signed by the
//! service's envelope signer. Every later check (a receipt, an inventory
//! proof, a submitted share) uses this reference, never the commitments a
//! share brings with it; [`VerifiedSplit::verify`] first checks the
//! signature, that the row's columns say what was signed, and that the
//! stored commitments hash to the signed split id, so an altered row is
//! refused rather than trusted.
//!
//! Custodian containers are named by a domain-tagged hash of their bytes as
//! delivered ([`container_hash`]).

use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};
use shardkeep_envelope::{Binding, CurveCommitments, TrustedSigners, VerifiedEnvelope};
use shardkeep_sss_core::{Commitments, Curve, CurveId, Ed25519, Secp256k1};
use shardkeep_storage::{MAX_BINDING_LEN, SplitReference};
use shardkeep_types::{
    FramingError, MAX_NAME_LEN, NodeVersion, ShareIndex, ShareSlot, Signer, SignerId, Threshold,
};
use shardkeep_wire::{Reader, check_total_len, put_prefixed_u8};

use crate::error::Error;

/// The split binding's magic.
pub const SPLIT_BINDING_MAGIC: &[u8; 8] = b"shkp-sbd";
/// The split binding's format version.
pub const SPLIT_BINDING_VERSION: u8 = 1;
/// Domain tag of the split binding's signature.
pub const SPLIT_BINDING_TAG: &[u8] = b"shardkeep/split-binding/v1";
/// Domain tag of [`container_hash`].
pub const CONTAINER_HASH_TAG: &[u8] = b"shardkeep/container-hash/v1";
/// Longest point or party id in a split binding, in bytes.
const MAX_FIELD_LEN: usize = 64;

/// `SHA-256("shardkeep/container-hash/v1" || container)`: names a custodian
/// container as delivered (binary or armored bytes, exactly).
#[must_use]
pub fn container_hash(container: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(CONTAINER_HASH_TAG)
        .chain_update(container)
        .finalize()
        .into()
}

/// The fields of a split binding, as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitBinding {
    pub(crate) version: NodeVersion,
    pub(crate) threshold: Threshold,
    pub(crate) server_shares: u8,
    pub(crate) split_id: [u8; 32],
    pub(crate) policy_hash: [u8; 32],
    pub(crate) binding: Binding,
}

impl SplitBinding {
    /// Encodes and signs the binding: magic, version, the node version, the
    /// curve, `t`, `n`, server shares, split id, policy hash, group public
    /// key, party id and public share (each with a one-byte length), archive
    /// hash, signer id; then the Ed25519 signature over
    /// [`SPLIT_BINDING_TAG`] and every byte before it.
    pub(crate) fn sign(&self, signer: &dyn Signer) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(MAX_BINDING_LEN);
        out.extend_from_slice(SPLIT_BINDING_MAGIC);
        out.push(SPLIT_BINDING_VERSION);
        self.version.encode(&mut out);
        out.push(self.binding.curve().to_u8());
        out.push(self.threshold.t());
        out.push(self.threshold.n());
        out.push(self.server_shares);
        out.extend_from_slice(&self.split_id);
        out.extend_from_slice(&self.policy_hash);
        put_prefixed_u8(
            &mut out,
            "group public key",
            self.binding.group_public_key(),
            MAX_FIELD_LEN,
        )?;
        put_prefixed_u8(&mut out, "party id", self.binding.party_id(), MAX_FIELD_LEN)?;
        put_prefixed_u8(
            &mut out,
            "public share",
            self.binding.public_share(),
            MAX_FIELD_LEN,
        )?;
        out.extend_from_slice(self.binding.archive_hash());
        signer.signer_id().encode_prefixed(&mut out);
        let signature = signer
            .sign(&tagged(&out))
            .map_err(shardkeep_envelope::Error::from)?;
        out.extend_from_slice(&signature.to_bytes());
        check_total_len("split binding", out.len(), MAX_BINDING_LEN)?;
        Ok(out)
    }

    /// Parses a split binding and verifies its signature against
    /// `trusted`.
    fn decode_verify(bytes: &[u8], trusted: &TrustedSigners) -> Result<Self, Invalid> {
        check_total_len("split binding", bytes.len(), MAX_BINDING_LEN)?;
        let mut r = Reader::new(bytes);
        r.magic_and_version("split binding", SPLIT_BINDING_MAGIC, SPLIT_BINDING_VERSION)?;
        let version = NodeVersion::decode(&mut r).map_err(|_| Invalid("node version"))?;
        let curve = CurveId::from_u8(r.u8("curve")?).map_err(|_| Invalid("curve"))?;
        let t = r.u8("t")?;
        let n = r.u8("n")?;
        let threshold =
            Threshold::new(usize::from(t), usize::from(n)).map_err(|_| Invalid("threshold"))?;
        let server_shares = r.u8("server shares")?;
        let split_id = *r.array::<32>("split id")?;
        let policy_hash = *r.array::<32>("policy hash")?;
        let group_public_key = r
            .prefixed_u8("group public key", 1, MAX_FIELD_LEN)?
            .to_vec();
        let party_id = r.prefixed_u8("party id", 1, MAX_FIELD_LEN)?.to_vec();
        let public_share = r.prefixed_u8("public share", 1, MAX_FIELD_LEN)?.to_vec();
        let archive_hash = *r.array::<32>("archive hash")?;
        let signer = SignerId::from_bytes(r.prefixed_u8("signer id", 1, MAX_NAME_LEN)?)
            .map_err(|_| Invalid("signer id"))?;
        let signed_len = r.offset();
        let signature = Signature::from_bytes(r.array::<64>("signature")?);
        r.finish("split binding")?;
        let key = trusted.get(&signer).ok_or(Invalid("untrusted signer"))?;
        key.verify_strict(&tagged(&bytes[..signed_len]), &signature)
            .map_err(|_| Invalid("signature"))?;
        // Authenticated: now check the values.
        let binding = Binding::new(
            curve,
            group_public_key,
            party_id,
            public_share,
            archive_hash,
        )
        .map_err(|_| Invalid("binding"))?;
        Ok(Self {
            version,
            threshold,
            server_shares,
            split_id,
            policy_hash,
            binding,
        })
    }
}

/// `tag || signed bytes`, the signature's message.
fn tagged(signed: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SPLIT_BINDING_TAG.len() + signed.len());
    message.extend_from_slice(SPLIT_BINDING_TAG);
    message.extend_from_slice(signed);
    message
}

/// Why a stored reference is refused (mapped to
/// [`Error::SplitReferenceInvalid`] with the version).
#[derive(Debug)]
struct Invalid(&'static str);

impl From<FramingError> for Invalid {
    fn from(_: FramingError) -> Self {
        Self("framing of the signed binding")
    }
}

/// A key version's stored split reference, checked: the signature of its
/// binding verified, its columns equal to what was signed, its commitments
/// hashing to the signed split id with `C_0` the node's public share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSplit {
    version: NodeVersion,
    threshold: Threshold,
    server_shares: u8,
    split_id: [u8; 32],
    policy_hash: [u8; 32],
    commitments: CurveCommitments,
    binding: Binding,
}

impl VerifiedSplit {
    /// Checks `reference`, stored for `version`, against the envelope
    /// signers this service trusts.
    ///
    /// # Errors
    /// [`Error::SplitReferenceInvalid`] naming what failed.
    pub fn verify(
        version: &NodeVersion,
        reference: &SplitReference,
        trusted: &TrustedSigners,
    ) -> Result<Self, Error> {
        Self::check(version, reference, trusted).map_err(|Invalid(why)| {
            Error::SplitReferenceInvalid {
                version: version.clone(),
                why,
            }
        })
    }

    fn check(
        version: &NodeVersion,
        reference: &SplitReference,
        trusted: &TrustedSigners,
    ) -> Result<Self, Invalid> {
        let signed = SplitBinding::decode_verify(&reference.binding, trusted)?;
        // Public values: plain comparisons.
        let columns = [
            (signed.version == *version, "key version"),
            (signed.binding.curve().to_u8() == reference.curve, "curve"),
            (signed.split_id == reference.split_id, "split id"),
            (signed.policy_hash == reference.policy_hash, "policy hash"),
            (
                signed.server_shares == reference.server_shares,
                "server shares",
            ),
        ];
        if let Some((_, why)) = columns.into_iter().find(|(equal, _)| !equal) {
            return Err(Invalid(why));
        }
        let commitments = match signed.binding.curve() {
            CurveId::Secp256k1 => {
                CurveCommitments::from(commitments::<Secp256k1>(&signed, &reference.commitments)?)
            }
            CurveId::Ed25519 => {
                CurveCommitments::from(commitments::<Ed25519>(&signed, &reference.commitments)?)
            }
        };
        Ok(Self {
            version: signed.version,
            threshold: signed.threshold,
            server_shares: signed.server_shares,
            split_id: signed.split_id,
            policy_hash: signed.policy_hash,
            commitments,
            binding: signed.binding,
        })
    }

    /// The key version.
    #[must_use]
    pub fn version(&self) -> &NodeVersion {
        &self.version
    }

    /// t of n.
    #[must_use]
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// How many shares the server holds (indices `1..=server_shares`).
    #[must_use]
    pub fn server_shares(&self) -> u8 {
        self.server_shares
    }

    /// Whether `index` is one of the server's.
    #[must_use]
    pub fn is_server_index(&self, index: ShareIndex) -> bool {
        index.get() <= self.server_shares
    }

    /// The split id.
    #[must_use]
    pub fn split_id(&self) -> &[u8; 32] {
        &self.split_id
    }

    /// The hash of the policy the version was made under.
    #[must_use]
    pub fn policy_hash(&self) -> &[u8; 32] {
        &self.policy_hash
    }

    /// The stored Feldman commitments: what every share of this version is
    /// checked against.
    #[must_use]
    pub fn commitments(&self) -> &CurveCommitments {
        &self.commitments
    }

    /// The node's binding (group key, party id, public share, archive
    /// hash).
    #[must_use]
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// Checks that a verified envelope is this split's envelope for
    /// `index`: its slot and binding are the stored ones, and its split id
    /// (a hash of its commitments) is the stored split id, so its
    /// commitments are the stored commitments. An envelope of another split
    /// of the same share, even one the service signed, is refused.
    ///
    /// # Errors
    /// [`Error::EnvelopeNotOfSplit`].
    pub fn check_envelope(
        &self,
        envelope: &VerifiedEnvelope,
        index: ShareIndex,
    ) -> Result<(), Error> {
        let slot = self.version.slot(index);
        let not_of_split = |why| Error::EnvelopeNotOfSplit {
            slot: slot.clone(),
            why,
        };
        envelope
            .check_bound_to(&slot, &self.binding)
            .map_err(|_| not_of_split("slot or binding"))?;
        let header = envelope.header();
        if header.threshold() != self.threshold {
            return Err(not_of_split("threshold"));
        }
        // Public values: a plain comparison.
        if header.split_id().as_bytes() != &self.split_id
            || header.commitments() != &self.commitments
        {
            return Err(not_of_split("split id and commitments"));
        }
        Ok(())
    }

    /// The slot of `index` in this version.
    #[must_use]
    pub fn slot(&self, index: ShareIndex) -> ShareSlot {
        self.version.slot(index)
    }
}

/// The stored commitments on curve `C`: `t` canonical points hashing to the
/// signed split id, `C_0` the node's public share.
fn commitments<C: Curve>(signed: &SplitBinding, bytes: &[u8]) -> Result<Commitments<C>, Invalid> {
    let commitments = Commitments::<C>::from_bytes(signed.threshold, bytes)
        .map_err(|_| Invalid("commitments"))?;
    // Public values: plain comparisons.
    if commitments.split_id().as_bytes() != &signed.split_id {
        return Err(Invalid("commitments do not hash to the split id"));
    }
    if commitments.as_bytes().get(..C::POINT_LEN) != Some(signed.binding.public_share()) {
        return Err(Invalid("commitment C0 is not the public share"));
    }
    Ok(commitments)
}
