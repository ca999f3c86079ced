//! The binding: what a share is tied to at generate time, signed into every
//! envelope and checked again on recovery.
//!
//! Recovery trusts nothing from the protocol archive: the recovered secret
//! must match the signed public share, and the archive must hash to the
//! signed value, so a forged (share, archive) pair is refused.

use sha2::{Digest, Sha256};
use shardkeep_sss_core::{CurveId, PartyId};

use crate::error::Error;

/// Domain tag of [`archive_hash`].
pub const ARCHIVE_HASH_TAG: &[u8] = b"shardkeep/archive-hash/v1";

/// Longest accepted party id, in bytes (tss-lib ids are 256-bit numbers).
pub const MAX_PARTY_ID_LEN: usize = 64;

/// The hash of a sealed protocol archive that an envelope's binding signs:
/// `SHA-256("shardkeep/archive-hash/v1" || sealed archive bytes)`.
#[must_use]
pub fn archive_hash(sealed_archive: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(ARCHIVE_HASH_TAG);
    hasher.update(sealed_archive);
    hasher.finalize().into()
}

/// What one node's share is bound to. Public values only.
///
/// Points are kept in their canonical compressed encoding (33 bytes on
/// secp256k1, 32 on ed25519), validated on construction, so two bindings are
/// equal exactly when they bind the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    curve: CurveId,
    group_public_key: Vec<u8>,
    party_id: Vec<u8>,
    public_share: Vec<u8>,
    archive_hash: [u8; 32],
}

impl Binding {
    /// Builds and validates a binding.
    ///
    /// - `group_public_key`: the group key (tss-lib `ECDSAPub` / `EDDSAPub`),
    ///   compressed.
    /// - `party_id`: the node's tss-lib `ShareID`, big-endian without leading
    ///   zeros (non-zero modulo the group order, at most 64 bytes).
    /// - `public_share`: the node's `BigXj[self]` = `Xi*G`, compressed.
    /// - `archive_hash`: [`archive_hash`] of the sealed protocol archive.
    ///
    /// # Errors
    /// [`Error::Share`] with the point or party-id error of sss-core, or
    /// [`Error::NonCanonicalPartyId`] for leading zero bytes.
    pub fn new(
        curve: CurveId,
        group_public_key: Vec<u8>,
        party_id: Vec<u8>,
        public_share: Vec<u8>,
        archive_hash: [u8; 32],
    ) -> Result<Self, Error> {
        check_point(curve, &public_share)?;
        Self::with_checked_public_share(
            curve,
            group_public_key,
            party_id,
            public_share,
            archive_hash,
        )
    }

    /// As [`Binding::new`], for a public share the caller has already
    /// decoded and validated (the envelope decoder: it is byte-equal to the
    /// decoded commitment `C_0`), so the point is not decoded twice.
    pub(crate) fn with_checked_public_share(
        curve: CurveId,
        group_public_key: Vec<u8>,
        party_id: Vec<u8>,
        public_share: Vec<u8>,
        archive_hash: [u8; 32],
    ) -> Result<Self, Error> {
        check_point(curve, &group_public_key)?;
        check_party_id(curve, &party_id)?;
        Ok(Self {
            curve,
            group_public_key,
            party_id,
            public_share,
            archive_hash,
        })
    }

    /// The curve of the key.
    #[must_use]
    pub fn curve(&self) -> CurveId {
        self.curve
    }

    /// The group public key, compressed.
    #[must_use]
    pub fn group_public_key(&self) -> &[u8] {
        &self.group_public_key
    }

    /// The node's tss-lib party id (`ShareID`), big-endian, minimal.
    #[must_use]
    pub fn party_id(&self) -> &[u8] {
        &self.party_id
    }

    /// The node's public share `BigXj[self]`, compressed. Commitment `C_0`
    /// of the split must equal it.
    #[must_use]
    pub fn public_share(&self) -> &[u8] {
        &self.public_share
    }

    /// The signed hash of the sealed protocol archive.
    #[must_use]
    pub fn archive_hash(&self) -> &[u8; 32] {
        &self.archive_hash
    }
}

fn check_point(curve: CurveId, bytes: &[u8]) -> Result<(), Error> {
    use shardkeep_sss_core::{Curve, Ed25519, Secp256k1};
    match curve {
        CurveId::Secp256k1 => Secp256k1::decode_point(bytes).map(drop),
        CurveId::Ed25519 => Ed25519::decode_point(bytes).map(drop),
    }
    .map_err(Error::Share)
}

fn check_party_id(curve: CurveId, bytes: &[u8]) -> Result<(), Error> {
    use shardkeep_sss_core::{Ed25519, Secp256k1};
    if bytes.first() == Some(&0) {
        return Err(Error::NonCanonicalPartyId);
    }
    if bytes.len() > MAX_PARTY_ID_LEN {
        return Err(Error::Share(shardkeep_sss_core::Error::PartyIdTooLong {
            len: bytes.len(),
        }));
    }
    match curve {
        CurveId::Secp256k1 => PartyId::<Secp256k1>::from_be_bytes(bytes).map(drop),
        CurveId::Ed25519 => PartyId::<Ed25519>::from_be_bytes(bytes).map(drop),
    }
    .map_err(Error::Share)
}
