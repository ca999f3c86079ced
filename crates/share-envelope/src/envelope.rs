//! Envelope v2: the signed, versioned wrapper of one share (format in the
//! crate README, byte by byte). Version 1 (the signer id outside the signed
//! bytes) is refused as [`FramingError::UnsupportedVersion`].
//!
//! Encoding goes through [`HeaderFields`] (raw wire values) so that the
//! format is written in exactly one place; decoding goes through
//! [`RawEnvelope`] (structure only, nothing trusted) and then the checks of
//! [`VerifiedEnvelope::decode_verify`], in this order: structure and caps,
//! checksum, signer trust and signature, then the share rules (threshold,
//! index, commitments, split id, binding, `C_0`, and for a plain payload the
//! Feldman check). Authentication comes before any curve arithmetic.

use core::fmt;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use shardkeep_sss_core::{
    Commitments, Curve, CurveId, Ed25519, SPLIT_ID_TAG, Secp256k1, Share, ShareIndex, SplitId,
    Threshold,
};
use shardkeep_types::{
    DataKey, EnvelopeId, FramingError, KekId, KeyEncryptionKey, KeyId, KeyVersion, MAX_NAME_LEN,
    MAX_WRAPPED_KEY_LEN, NodeId, NodeVersion, ShareSlot, Signer, SignerId, Timestamp, WrappedKey,
};
use shardkeep_wire::{Reader, check_total_len, put_prefixed_u8, put_prefixed_u16};
use zeroize::Zeroizing;

use crate::aead::{self, NONCE_LEN, TAG_LEN};
use crate::binding::{Binding, MAX_PARTY_ID_LEN};
use crate::error::{BindingField, Error};
use crate::trust::{TrustedSigners, sign_tagged, verify_tagged};

/// First bytes of every envelope.
pub const ENVELOPE_MAGIC: &[u8; 8] = b"shkp-env";
/// The envelope format version this build writes and reads. Version 2
/// signs the signer id (version 1 left it outside the signed bytes, so an
/// envelope verified under any id its key was trusted under).
pub const ENVELOPE_VERSION: u8 = 2;
/// Longest accepted envelope, in bytes (checked before parsing). The
/// largest well-formed v2 envelope (t = 255 on secp256k1, every name 64
/// bytes, a 512-byte wrapped key) is 9 567 bytes.
pub const MAX_ENVELOPE_LEN: usize = 16 * 1024;
/// Domain tag prefixed to the signed bytes for the ed25519 signature.
pub const ENVELOPE_SIGNATURE_TAG: &[u8] = b"shardkeep/envelope/v1";
/// Domain tag of the envelope checksum.
pub const ENVELOPE_CHECKSUM_TAG: &[u8] = b"shardkeep/envelope-checksum/v1";
/// Domain tag of the [`EnvelopeId`].
pub const ENVELOPE_ID_TAG: &[u8] = b"shardkeep/envelope-id/v1";

const SHARE_VALUE_LEN: usize = 32;
const PLAIN_PAYLOAD_LEN: usize = SHARE_VALUE_LEN;
const SEALED_PAYLOAD_LEN: usize = NONCE_LEN + SHARE_VALUE_LEN + TAG_LEN;
const HASH_LEN: usize = 32;
const SIGNATURE_LEN: usize = 64;

/// What an envelope's payload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// The share value in the clear: only ever inside a custodian container.
    Plain,
    /// The share value sealed under a data key wrapped by a KEK: server
    /// storage.
    Sealed,
}

impl PayloadKind {
    /// The wire byte: 1 plain, 2 sealed.
    #[must_use]
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Plain => 1,
            Self::Sealed => 2,
        }
    }

    /// Parses the wire byte.
    ///
    /// # Errors
    /// [`Error::UnknownPayloadKind`].
    pub const fn from_u8(byte: u8) -> Result<Self, Error> {
        match byte {
            1 => Ok(Self::Plain),
            2 => Ok(Self::Sealed),
            other => Err(Error::UnknownPayloadKind(other)),
        }
    }

    const fn payload_len(self) -> usize {
        match self {
            Self::Plain => PLAIN_PAYLOAD_LEN,
            Self::Sealed => SEALED_PAYLOAD_LEN,
        }
    }
}

/// Feldman commitments on the envelope's curve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurveCommitments {
    /// secp256k1 (tss-lib ECDSA).
    Secp256k1(Commitments<Secp256k1>),
    /// ed25519 (tss-lib EdDSA).
    Ed25519(Commitments<Ed25519>),
}

impl CurveCommitments {
    /// The curve.
    #[must_use]
    pub fn curve(&self) -> CurveId {
        match self {
            Self::Secp256k1(_) => CurveId::Secp256k1,
            Self::Ed25519(_) => CurveId::Ed25519,
        }
    }
}

/// A share on the envelope's curve. Secret: wiped on drop, value redacted in
/// `Debug` (curve, index and split id only), no `Clone`.
pub enum CurveShare {
    /// secp256k1 (tss-lib ECDSA).
    Secp256k1(Share<Secp256k1>),
    /// ed25519 (tss-lib EdDSA).
    Ed25519(Share<Ed25519>),
}

impl CurveShare {
    /// The curve.
    #[must_use]
    pub fn curve(&self) -> CurveId {
        match self {
            Self::Secp256k1(_) => CurveId::Secp256k1,
            Self::Ed25519(_) => CurveId::Ed25519,
        }
    }

    /// The share's index.
    #[must_use]
    pub fn index(&self) -> ShareIndex {
        match self {
            Self::Secp256k1(s) => s.index(),
            Self::Ed25519(s) => s.index(),
        }
    }
}

impl fmt::Debug for CurveShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let split_id = match self {
            Self::Secp256k1(s) => s.split_id(),
            Self::Ed25519(s) => s.split_id(),
        };
        f.debug_struct("CurveShare")
            .field("curve", &self.curve())
            .field("index", &self.index())
            .field("split_id", &split_id)
            .field("value", &"<redacted>")
            .finish()
    }
}

macro_rules! curve_conversions {
    ($curve:ident) => {
        impl From<Commitments<$curve>> for CurveCommitments {
            fn from(c: Commitments<$curve>) -> Self {
                Self::$curve(c)
            }
        }

        impl From<Share<$curve>> for CurveShare {
            fn from(s: Share<$curve>) -> Self {
                Self::$curve(s)
            }
        }

        impl TryFrom<CurveShare> for Share<$curve> {
            type Error = Error;

            fn try_from(share: CurveShare) -> Result<Self, Error> {
                match share {
                    CurveShare::$curve(s) => Ok(s),
                    other => Err(Error::WrongCurve {
                        expected: CurveId::$curve,
                        got: other.curve(),
                    }),
                }
            }
        }

        impl<'a> TryFrom<&'a CurveCommitments> for &'a Commitments<$curve> {
            type Error = Error;

            fn try_from(commitments: &'a CurveCommitments) -> Result<Self, Error> {
                match commitments {
                    CurveCommitments::$curve(c) => Ok(c),
                    other => Err(Error::WrongCurve {
                        expected: CurveId::$curve,
                        got: other.curve(),
                    }),
                }
            }
        }
    };
}

curve_conversions!(Secp256k1);
curve_conversions!(Ed25519);

/// The public inputs of an envelope besides the split itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeParams {
    /// The group key, the node whose share was split, and the rotation
    /// epoch.
    pub node_version: NodeVersion,
    /// When the envelope was made. The envelope records whole UTC seconds:
    /// the milliseconds are dropped when it is encoded.
    pub created_at: Timestamp,
    /// What the share is bound to (group key, party id, `BigXj[self]`,
    /// archive hash).
    pub binding: Binding,
}

impl EnvelopeParams {
    /// Builds a server envelope: the share sealed with AES-256-GCM-SIV under
    /// a fresh data key (AAD = the signed header), the data key wrapped by
    /// `kek`, the header and sealed payload signed by `signer`. `rng` draws
    /// the data key and the nonce.
    ///
    /// Refuses to sign anything [`VerifiedEnvelope::decode_verify`] and
    /// [`VerifiedEnvelope::open`] would refuse, and refuses a `kek` that is
    /// not dedicated to the envelope's share slot
    /// ([`KeyEncryptionKey::slot`]): a KEK of another slot, or one bound to
    /// no slot. Each server share lives under its own slot's KEK, so that
    /// destroying that KEK crypto-shreds exactly that share.
    ///
    /// # Errors
    /// [`Error::KekNotForSlot`] for a KEK not dedicated to the slot,
    /// [`Error::WrongCurve`] when the binding is on another curve,
    /// [`Error::Share`] when the share fails against the commitments,
    /// [`Error::PublicShareMismatch`] when `C_0` is not the bound public
    /// share, [`Error::Custody`] from the KEK or the signer.
    pub fn seal<C: Curve, R: CryptoRng + ?Sized>(
        &self,
        commitments: &Commitments<C>,
        share: &Share<C>,
        signer: &dyn Signer,
        kek: &dyn KeyEncryptionKey,
        rng: &mut R,
    ) -> Result<EncodedEnvelope, Error> {
        check_kek_slot(kek, &self.node_version.slot(share.index()))?;
        let mut bytes = self.header_bytes(commitments, share, PayloadKind::Sealed)?;
        let data_key = DataKey::generate(rng);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let ciphertext = aead::seal(&data_key, &nonce, &bytes, share.value_be_bytes().as_slice())?;
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        let wrapped = kek.wrap(&data_key)?;
        finish(
            bytes,
            PayloadKind::Sealed,
            signer,
            Some((kek.kek_id(), &wrapped)),
        )
    }

    /// Builds a custodian envelope: the share value in the clear, signed.
    /// Only ever hand it out inside a custodian container
    /// ([`seal_container`](crate::seal_container)).
    ///
    /// # Errors
    /// As [`EnvelopeParams::seal`], without the KEK.
    pub fn plain<C: Curve>(
        &self,
        commitments: &Commitments<C>,
        share: &Share<C>,
        signer: &dyn Signer,
    ) -> Result<EncodedEnvelope, Error> {
        let mut bytes = self.header_bytes(commitments, share, PayloadKind::Plain)?;
        bytes.extend_from_slice(share.value_be_bytes().as_slice());
        finish(bytes, PayloadKind::Plain, signer, None)
    }

    /// Checks the inputs and writes the signed header.
    fn header_bytes<C: Curve>(
        &self,
        commitments: &Commitments<C>,
        share: &Share<C>,
        kind: PayloadKind,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        if self.binding.curve() != C::ID {
            return Err(Error::WrongCurve {
                expected: self.binding.curve(),
                got: C::ID,
            });
        }
        commitments.verify(share)?;
        let commitment_bytes = commitments.to_bytes();
        if commitment_bytes.get(..C::POINT_LEN) != Some(self.binding.public_share()) {
            return Err(Error::PublicShareMismatch);
        }
        let threshold = commitments.threshold();
        let fields = HeaderFields {
            format_version: ENVELOPE_VERSION,
            key_id: self.node_version.key_id.as_str().as_bytes(),
            node_id: self.node_version.node_id.as_str().as_bytes(),
            curve: C::ID.to_u8(),
            key_version: self.node_version.version.get(),
            index: share.index().get(),
            t: threshold.t(),
            n: threshold.n(),
            split_id: *share.split_id().as_bytes(),
            created_at: self.created_at.as_unix_seconds(),
            commitment_count: threshold.t(),
            commitments: &commitment_bytes,
            group_public_key: self.binding.group_public_key(),
            party_id: self.binding.party_id(),
            public_share: self.binding.public_share(),
            archive_hash: *self.binding.archive_hash(),
            payload_kind: kind.to_u8(),
        };
        // Allocated once at the cap: a plain envelope's bytes hold the share
        // value, and a reallocation would leave an unwiped copy behind.
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_ENVELOPE_LEN));
        fields.encode(&mut bytes)?;
        Ok(bytes)
    }
}

/// An encoded envelope, as written to storage (sealed) or into a custodian
/// container (plain).
///
/// A plain envelope's bytes contain the share value: they live in a buffer
/// wiped on drop, and `Debug` never prints them.
pub struct EncodedEnvelope {
    bytes: Zeroizing<Vec<u8>>,
    id: EnvelopeId,
    kind: PayloadKind,
}

impl EncodedEnvelope {
    /// The envelope id (for receipts and audit).
    #[must_use]
    pub fn id(&self) -> EnvelopeId {
        self.id
    }

    /// Plain or sealed.
    #[must_use]
    pub fn kind(&self) -> PayloadKind {
        self.kind
    }

    /// The encoded bytes. For a plain envelope these are secret.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded bytes, in a buffer wiped on drop.
    #[must_use]
    pub fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        self.bytes
    }
}

impl fmt::Debug for EncodedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedEnvelope")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// The raw wire values of a header, written by [`HeaderFields::encode`]: the
/// one place the header layout is spelled out for writing. Golden-vector
/// tests build defective headers through it.
pub(crate) struct HeaderFields<'a> {
    pub(crate) format_version: u8,
    pub(crate) key_id: &'a [u8],
    pub(crate) node_id: &'a [u8],
    pub(crate) curve: u8,
    pub(crate) key_version: u32,
    pub(crate) index: u8,
    pub(crate) t: u8,
    pub(crate) n: u8,
    pub(crate) split_id: [u8; 32],
    pub(crate) created_at: u64,
    pub(crate) commitment_count: u8,
    pub(crate) commitments: &'a [u8],
    pub(crate) group_public_key: &'a [u8],
    pub(crate) party_id: &'a [u8],
    pub(crate) public_share: &'a [u8],
    pub(crate) archive_hash: [u8; 32],
    pub(crate) payload_kind: u8,
}

impl HeaderFields<'_> {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(ENVELOPE_MAGIC);
        out.push(self.format_version);
        // Raw values, not yet checked against their caps (the golden fail
        // vectors write over-cap fields): only the prefix width limits them.
        put_prefixed_u8(out, "key_id", self.key_id, usize::MAX)?;
        put_prefixed_u8(out, "node_id", self.node_id, usize::MAX)?;
        out.push(self.curve);
        out.extend_from_slice(&self.key_version.to_be_bytes());
        out.extend_from_slice(&[self.index, self.t, self.n]);
        out.extend_from_slice(&self.split_id);
        out.extend_from_slice(&self.created_at.to_be_bytes());
        out.push(self.commitment_count);
        out.extend_from_slice(self.commitments);
        out.extend_from_slice(self.group_public_key);
        put_prefixed_u8(out, "party_id", self.party_id, usize::MAX)?;
        out.extend_from_slice(self.public_share);
        out.extend_from_slice(&self.archive_hash);
        out.push(self.payload_kind);
        Ok(())
    }
}

/// `SHA-256(tag || bytes)`.
pub(crate) fn tagged_hash(tag: &[u8], bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tag);
    hasher.update(bytes);
    hasher.finalize().into()
}

/// Appends the signer id to the header and payload (completing the signed
/// bytes), then the checksum, the signature and (sealed) the key-wrap
/// trailer.
pub(crate) fn finish(
    mut bytes: Zeroizing<Vec<u8>>,
    kind: PayloadKind,
    signer: &dyn Signer,
    wrap: Option<(&KekId, &WrappedKey)>,
) -> Result<EncodedEnvelope, Error> {
    put_prefixed_u8(
        &mut bytes,
        "signer_id",
        signer.signer_id().as_str().as_bytes(),
        MAX_NAME_LEN,
    )?;
    let checksum = tagged_hash(ENVELOPE_CHECKSUM_TAG, &bytes);
    let id = EnvelopeId::from_bytes(tagged_hash(ENVELOPE_ID_TAG, &bytes));
    let signature = sign_tagged(signer, ENVELOPE_SIGNATURE_TAG, &bytes)?;
    bytes.extend_from_slice(&checksum);
    bytes.extend_from_slice(&signature);
    if let Some((kek_id, wrapped)) = wrap {
        put_wrap_trailer(&mut bytes, kek_id, wrapped)?;
    }
    check_total_len("envelope", bytes.len(), MAX_ENVELOPE_LEN)?;
    Ok(EncodedEnvelope { bytes, id, kind })
}

fn put_wrap_trailer(out: &mut Vec<u8>, kek_id: &KekId, wrapped: &WrappedKey) -> Result<(), Error> {
    put_prefixed_u8(out, "kek_id", kek_id.as_str().as_bytes(), MAX_NAME_LEN)?;
    put_prefixed_u16(out, "wrapped_key", wrapped.as_bytes(), MAX_WRAPPED_KEY_LEN)?;
    Ok(())
}

/// Length of a compressed point on `curve`.
const fn point_len(curve: CurveId) -> usize {
    match curve {
        CurveId::Secp256k1 => Secp256k1::POINT_LEN,
        CurveId::Ed25519 => Ed25519::POINT_LEN,
    }
}

/// An envelope split into its fields, with the structure checked (magic,
/// version, caps, names, known curve and payload kind, no trailing bytes)
/// and nothing else: not yet authenticated, no point decoded.
pub(crate) struct RawEnvelope<'a> {
    /// Magic through payload kind: the AEAD's associated data.
    pub(crate) header: &'a [u8],
    /// Header, payload and signer id: what the checksum, id and signature
    /// cover.
    pub(crate) signed: &'a [u8],
    pub(crate) node_version: NodeVersion,
    pub(crate) curve: CurveId,
    pub(crate) index: u8,
    pub(crate) t: u8,
    pub(crate) n: u8,
    pub(crate) split_id: [u8; 32],
    pub(crate) created_at: Timestamp,
    pub(crate) commitment_count: u8,
    pub(crate) commitments: &'a [u8],
    pub(crate) group_public_key: &'a [u8],
    pub(crate) party_id: &'a [u8],
    pub(crate) public_share: &'a [u8],
    pub(crate) archive_hash: [u8; 32],
    pub(crate) kind: PayloadKind,
    pub(crate) payload: &'a [u8],
    pub(crate) checksum: &'a [u8; HASH_LEN],
    pub(crate) signer_id: SignerId,
    pub(crate) signature: &'a [u8; SIGNATURE_LEN],
    pub(crate) wrap: Option<(KekId, WrappedKey)>,
}

impl<'a> RawEnvelope<'a> {
    /// Structural parse.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        check_total_len("envelope", bytes.len(), MAX_ENVELOPE_LEN)?;
        let mut r = Reader::new(bytes);
        r.magic_and_version("envelope", ENVELOPE_MAGIC, ENVELOPE_VERSION)?;
        let key_id = KeyId::from_bytes(r.prefixed_u8("key_id", 1, MAX_NAME_LEN)?)?;
        let node_id = NodeId::from_bytes(r.prefixed_u8("node_id", 1, MAX_NAME_LEN)?)?;
        let curve_byte = r.u8("curve")?;
        let curve = CurveId::from_u8(curve_byte).map_err(|_| Error::UnknownCurve(curve_byte))?;
        let key_version = KeyVersion::new(r.u32("key_version")?);
        let index = r.u8("index")?;
        let t = r.u8("t")?;
        let n = r.u8("n")?;
        let split_id = *r.array("split_id")?;
        let created_at = Timestamp::from_unix_seconds(r.u64("created_at")?)?;
        let commitment_count = r.u8("commitment_count")?;
        let point_len = point_len(curve);
        // At most 255 points of 33 bytes: bounded by the u8 count.
        let commitments = r.take(usize::from(commitment_count) * point_len, "commitments")?;
        let group_public_key = r.take(point_len, "group_public_key")?;
        let party_id = r.prefixed_u8("party_id", 1, MAX_PARTY_ID_LEN)?;
        let public_share = r.take(point_len, "public_share")?;
        let archive_hash = *r.array("archive_hash")?;
        let kind = PayloadKind::from_u8(r.u8("payload_kind")?)?;
        let header_len = r.offset();
        let payload = r.take(kind.payload_len(), "payload")?;
        let signer_id = SignerId::from_bytes(r.prefixed_u8("signer_id", 1, MAX_NAME_LEN)?)?;
        let signed_len = r.offset();
        let checksum = r.array("checksum")?;
        let signature = r.array("signature")?;
        let wrap = match kind {
            PayloadKind::Plain => None,
            PayloadKind::Sealed => {
                let kek_id = KekId::from_bytes(r.prefixed_u8("kek_id", 1, MAX_NAME_LEN)?)?;
                let wrapped = r.prefixed_u16("wrapped_key", 1, MAX_WRAPPED_KEY_LEN)?;
                Some((kek_id, WrappedKey::new(wrapped.to_vec())?))
            }
        };
        r.finish("envelope")?;
        Ok(Self {
            header: &bytes[..header_len],
            signed: &bytes[..signed_len],
            node_version: NodeVersion {
                key_id,
                node_id,
                version: key_version,
            },
            curve,
            index,
            t,
            n,
            split_id,
            created_at,
            commitment_count,
            commitments,
            group_public_key,
            party_id,
            public_share,
            archive_hash,
            kind,
            payload,
            checksum,
            signer_id,
            signature,
            wrap,
        })
    }

    /// The header's wire values, for re-encoding (fuzzing round trip).
    #[cfg(any(all(test, feature = "containers"), fuzzing))]
    pub(crate) fn header_fields(&self) -> HeaderFields<'_> {
        HeaderFields {
            format_version: ENVELOPE_VERSION,
            key_id: self.node_version.key_id.as_str().as_bytes(),
            node_id: self.node_version.node_id.as_str().as_bytes(),
            curve: self.curve.to_u8(),
            key_version: self.node_version.version.get(),
            index: self.index,
            t: self.t,
            n: self.n,
            split_id: self.split_id,
            created_at: self.created_at.as_unix_seconds(),
            commitment_count: self.commitment_count,
            commitments: self.commitments,
            group_public_key: self.group_public_key,
            party_id: self.party_id,
            public_share: self.public_share,
            archive_hash: self.archive_hash,
            payload_kind: self.kind.to_u8(),
        }
    }

    /// Re-encodes every field (fuzzing: the result must equal the input).
    #[cfg(any(all(test, feature = "containers"), fuzzing))]
    pub(crate) fn reencode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(MAX_ENVELOPE_LEN);
        self.header_fields().encode(&mut out)?;
        out.extend_from_slice(self.payload);
        put_prefixed_u8(
            &mut out,
            "signer_id",
            self.signer_id.as_str().as_bytes(),
            MAX_NAME_LEN,
        )?;
        out.extend_from_slice(self.checksum);
        out.extend_from_slice(self.signature);
        if let Some((kek_id, wrapped)) = &self.wrap {
            put_wrap_trailer(&mut out, kek_id, wrapped)?;
        }
        Ok(out)
    }

    /// The id over the signed bytes.
    pub(crate) fn id(&self) -> EnvelopeId {
        EnvelopeId::from_bytes(tagged_hash(ENVELOPE_ID_TAG, self.signed))
    }

    /// Corruption check. The checksum is public, so a plain comparison.
    pub(crate) fn check_checksum(&self) -> Result<(), Error> {
        if tagged_hash(ENVELOPE_CHECKSUM_TAG, self.signed) == *self.checksum {
            Ok(())
        } else {
            Err(Error::ChecksumMismatch)
        }
    }

    /// Signer trust and the strict ed25519 signature.
    pub(crate) fn check_signature(&self, trusted: &TrustedSigners) -> Result<(), Error> {
        let key = trusted
            .get(&self.signer_id)
            .ok_or_else(|| Error::UntrustedSigner(self.signer_id.clone()))?;
        verify_tagged(key, ENVELOPE_SIGNATURE_TAG, self.signed, self.signature)
    }

    /// The share rules, on the envelope's curve.
    pub(crate) fn validate(&self) -> Result<(EnvelopeHeader, Option<CurveShare>), Error> {
        match self.curve {
            CurveId::Secp256k1 => self.validate_on::<Secp256k1>(),
            CurveId::Ed25519 => self.validate_on::<Ed25519>(),
        }
    }

    fn validate_on<C: Curve>(&self) -> Result<(EnvelopeHeader, Option<CurveShare>), Error>
    where
        CurveCommitments: From<Commitments<C>>,
        CurveShare: From<Share<C>>,
    {
        let threshold = Threshold::new(usize::from(self.t), usize::from(self.n))?;
        let index = threshold.share_index(self.index)?;
        if self.commitment_count != threshold.t() {
            return Err(shardkeep_sss_core::Error::CommitmentCount {
                expected: usize::from(threshold.t()),
                got: usize::from(self.commitment_count),
            }
            .into());
        }
        let commitments = Commitments::<C>::from_bytes(threshold, self.commitments)?;
        if split_id_of_raw(C::ID, threshold, self.commitments) != self.split_id {
            return Err(shardkeep_sss_core::Error::SplitIdMismatch { index }.into());
        }
        // `C_0` was decoded as a canonical, valid point above, so byte
        // equality is point equality, and an equal public share needs no
        // second decoding. Public values: a plain comparison.
        if self.commitments.get(..C::POINT_LEN) != Some(self.public_share) {
            return Err(Error::PublicShareMismatch);
        }
        let binding = Binding::with_checked_public_share(
            C::ID,
            self.group_public_key.to_vec(),
            self.party_id.to_vec(),
            self.public_share.to_vec(),
            self.archive_hash,
        )?;
        let split_id = SplitId::from_bytes(self.split_id);
        let share = match self.kind {
            PayloadKind::Plain => {
                let value: &[u8; SHARE_VALUE_LEN] =
                    self.payload
                        .try_into()
                        .map_err(|_| FramingError::LengthOutOfRange {
                            field: "payload",
                            len: self.payload.len(),
                            min: SHARE_VALUE_LEN,
                            max: SHARE_VALUE_LEN,
                        })?;
                let share = Share::<C>::from_parts(threshold, index, split_id, value)?;
                commitments.verify(&share)?;
                Some(CurveShare::from(share))
            }
            PayloadKind::Sealed => None,
        };
        let header = EnvelopeHeader {
            node_version: self.node_version.clone(),
            threshold,
            index,
            split_id,
            created_at: self.created_at,
            commitments: commitments.into(),
            binding,
            payload_kind: self.kind,
        };
        Ok((header, share))
    }
}

/// The split id computed from the commitments' wire bytes. They were decoded
/// as canonical encodings, so this equals `Commitments::split_id` without
/// re-encoding every point.
fn split_id_of_raw(curve: CurveId, threshold: Threshold, commitments: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(SPLIT_ID_TAG);
    hasher.update([curve.to_u8(), threshold.t(), threshold.n()]);
    hasher.update(commitments);
    hasher.finalize().into()
}

/// The signed header of a verified envelope. Public values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeHeader {
    node_version: NodeVersion,
    threshold: Threshold,
    index: ShareIndex,
    split_id: SplitId,
    created_at: Timestamp,
    commitments: CurveCommitments,
    binding: Binding,
    payload_kind: PayloadKind,
}

impl EnvelopeHeader {
    /// The group key, the node whose share was split, and the rotation
    /// epoch.
    #[must_use]
    pub fn node_version(&self) -> &NodeVersion {
        &self.node_version
    }

    /// The curve.
    #[must_use]
    pub fn curve(&self) -> CurveId {
        self.commitments.curve()
    }

    /// `(t, n)` of the split.
    #[must_use]
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// The share's index.
    #[must_use]
    pub fn index(&self) -> ShareIndex {
        self.index
    }

    /// The split id (checked against the commitments).
    #[must_use]
    pub fn split_id(&self) -> SplitId {
        self.split_id
    }

    /// When the envelope was made.
    #[must_use]
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The split's Feldman commitments.
    #[must_use]
    pub fn commitments(&self) -> &CurveCommitments {
        &self.commitments
    }

    /// What the share is bound to.
    #[must_use]
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// Plain or sealed.
    #[must_use]
    pub fn payload_kind(&self) -> PayloadKind {
        self.payload_kind
    }

    /// The share slot `(key_id, node_id, version, index)`.
    #[must_use]
    pub fn slot(&self) -> ShareSlot {
        self.node_version.slot(self.index)
    }
}

/// An envelope whose structure, checksum, signature (by a trusted signer)
/// and share rules were checked by [`VerifiedEnvelope::decode_verify`].
pub struct VerifiedEnvelope {
    id: EnvelopeId,
    header: EnvelopeHeader,
    signer_id: SignerId,
    signature: [u8; SIGNATURE_LEN],
    body: Body,
}

enum Body {
    /// The share, already Feldman-checked.
    Plain(CurveShare),
    Sealed(SealedBody),
}

struct SealedBody {
    /// Signed bytes (header, payload, signer id), checksum, signature: kept
    /// verbatim so a re-wrap only replaces the trailer.
    authenticated: Vec<u8>,
    header_len: usize,
    payload_end: usize,
    kek_id: KekId,
    wrapped_key: WrappedKey,
}

impl VerifiedEnvelope {
    /// Decodes and verifies an envelope; needs no secret.
    ///
    /// Checks, in order: length cap, magic, version, every length prefix
    /// against its cap, names, curve byte, `created_at` (seconds) within
    /// `i64::MAX` milliseconds, payload-kind byte, no truncated or trailing bytes; the
    /// checksum; the signer is in `trusted` and the
    /// ed25519 signature verifies strictly; `2 <= t <= n`, index in `1..=n`,
    /// `t` commitments, all points canonical and valid, the split id matches
    /// the commitments, the binding is valid, `C_0` equals the bound public
    /// share; for a plain payload, the share value is canonical, non-zero
    /// and passes its Feldman check.
    ///
    /// # Errors
    /// A distinct [`Error`] per rule: [`Error::Framing`] (cap, magic,
    /// version, length prefixes, truncated or trailing bytes),
    /// [`Error::Types`] (names, `created_at`), [`Error::UnknownCurve`],
    /// [`Error::UnknownPayloadKind`],
    /// [`Error::ChecksumMismatch`],
    /// [`Error::UntrustedSigner`], [`Error::BadSignature`],
    /// [`Error::NonCanonicalPartyId`], [`Error::PublicShareMismatch`], and
    /// [`Error::Share`] for threshold, index, commitment count, point,
    /// scalar, split-id and Feldman failures.
    pub fn decode_verify(bytes: &[u8], trusted: &TrustedSigners) -> Result<Self, Error> {
        let raw = RawEnvelope::parse(bytes)?;
        raw.check_checksum()?;
        raw.check_signature(trusted)?;
        let (header, share) = raw.validate()?;
        let body = match (share, raw.wrap) {
            (Some(share), None) => Body::Plain(share),
            (None, Some((kek_id, wrapped_key))) => Body::Sealed(SealedBody {
                authenticated: bytes[..bytes.len() - wrap_trailer_len(&kek_id, &wrapped_key)]
                    .to_vec(),
                header_len: raw.header.len(),
                payload_end: raw.header.len() + raw.payload.len(),
                kek_id,
                wrapped_key,
            }),
            // The parser reads a wrap trailer exactly for sealed payloads,
            // and `validate` returns a share exactly for plain ones.
            _ => return Err(Error::NonCanonical { field: "payload" }),
        };
        Ok(Self {
            id: EnvelopeId::from_bytes(tagged_hash(ENVELOPE_ID_TAG, raw.signed)),
            header,
            signer_id: raw.signer_id,
            signature: *raw.signature,
            body,
        })
    }

    /// [`VerifiedEnvelope::decode_verify`], then
    /// [`VerifiedEnvelope::check_bound_to`]: the envelope must be about
    /// exactly this share slot and this binding.
    ///
    /// # Errors
    /// Every error of `decode_verify`, then [`Error::BindingMismatch`]
    /// naming the first field that differs.
    pub fn decode_verify_bound(
        bytes: &[u8],
        trusted: &TrustedSigners,
        slot: &ShareSlot,
        binding: &Binding,
    ) -> Result<Self, Error> {
        let envelope = Self::decode_verify(bytes, trusted)?;
        envelope.check_bound_to(slot, binding)?;
        Ok(envelope)
    }

    /// Checks that this envelope is about `slot` (key id, node id, version,
    /// share index) and `binding` (curve, group public key, party id,
    /// public share, archive hash), which the caller knows from elsewhere
    /// (its custody map, the key version it recorded at generate time).
    /// A correct signature alone only says a trusted signer made the
    /// envelope, not that it is the one the caller asked for.
    ///
    /// # Errors
    /// [`Error::BindingMismatch`] naming the first field that differs, in
    /// the order above.
    pub fn check_bound_to(&self, slot: &ShareSlot, binding: &Binding) -> Result<(), Error> {
        let node = &self.header.node_version;
        let signed = &self.header.binding;
        // Public values: plain comparisons. Points are compared in their
        // canonical encoding (validated on both sides), so byte equality is
        // point equality.
        let fields = [
            (node.key_id == slot.key_id, BindingField::KeyId),
            (node.node_id == slot.node_id, BindingField::NodeId),
            (node.version == slot.version, BindingField::Version),
            (self.header.index == slot.index, BindingField::Index),
            (signed.curve() == binding.curve(), BindingField::Curve),
            (
                signed.group_public_key() == binding.group_public_key(),
                BindingField::GroupPublicKey,
            ),
            (
                signed.party_id() == binding.party_id(),
                BindingField::PartyId,
            ),
            (
                signed.public_share() == binding.public_share(),
                BindingField::PublicShare,
            ),
            (
                signed.archive_hash() == binding.archive_hash(),
                BindingField::ArchiveHash,
            ),
        ];
        match fields.into_iter().find(|(equal, _)| !equal) {
            Some((_, field)) => Err(Error::BindingMismatch(field)),
            None => Ok(()),
        }
    }

    /// The envelope id.
    #[must_use]
    pub fn id(&self) -> EnvelopeId {
        self.id
    }

    /// The verified header.
    #[must_use]
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// Who signed it (a member of the trusted set).
    #[must_use]
    pub fn signer_id(&self) -> &SignerId {
        &self.signer_id
    }

    /// The verified ed25519 signature, e.g. for the audit record of the
    /// step that made or moved this envelope.
    #[must_use]
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Plain or sealed.
    #[must_use]
    pub fn payload_kind(&self) -> PayloadKind {
        self.header.payload_kind
    }

    /// The KEK that wraps the data key (sealed envelopes only). Not signed:
    /// a wrong value only makes [`VerifiedEnvelope::open`] fail.
    #[must_use]
    pub fn kek_id(&self) -> Option<&KekId> {
        match &self.body {
            Body::Sealed(sealed) => Some(&sealed.kek_id),
            Body::Plain(_) => None,
        }
    }

    /// The wrapped data key (sealed envelopes only).
    #[must_use]
    pub fn wrapped_key(&self) -> Option<&WrappedKey> {
        match &self.body {
            Body::Sealed(sealed) => Some(&sealed.wrapped_key),
            Body::Plain(_) => None,
        }
    }

    /// Unseals a server envelope's share: unwraps the data key with `kek`,
    /// decrypts with the signed header as associated data, and checks the
    /// share against the commitments (Feldman).
    ///
    /// # Errors
    /// [`Error::WrongPayloadKind`] for a plain envelope,
    /// [`Error::KekMismatch`] when `kek` is not the envelope's KEK,
    /// [`Error::Custody`] when unwrapping fails, [`Error::DecryptionFailed`]
    /// when the payload does not decrypt (wrong key, or the envelope was
    /// moved or altered), [`Error::Share`] when the value is not canonical,
    /// zero, or fails its Feldman check.
    pub fn open(&self, kek: &dyn KeyEncryptionKey) -> Result<CurveShare, Error> {
        self.open_with_key(kek).map(|(share, _)| share)
    }

    /// The share of a plain (custodian) envelope, already Feldman-checked by
    /// [`VerifiedEnvelope::decode_verify`].
    ///
    /// # Errors
    /// [`Error::WrongPayloadKind`] for a sealed envelope.
    pub fn into_plain_share(self) -> Result<CurveShare, Error> {
        match self.body {
            Body::Plain(share) => Ok(share),
            Body::Sealed(_) => Err(Error::WrongPayloadKind {
                expected: PayloadKind::Plain,
                got: PayloadKind::Sealed,
            }),
        }
    }

    /// Re-wraps a server envelope's data key from KEK `from` to KEK `to`.
    /// The signed bytes, checksum and signature are kept verbatim, so the
    /// envelope id and signature stay valid. The share is unsealed and
    /// Feldman-checked first, so a key that does not open the envelope is
    /// never re-wrapped.
    ///
    /// `to` must be dedicated to this envelope's share slot
    /// ([`KeyEncryptionKey::slot`]): a share re-wrapped under another
    /// slot's KEK (or a KEK of no slot) would outlive the crypto-shredding
    /// of its own slot. `from` may be any KEK that opens the envelope.
    ///
    /// # Errors
    /// [`Error::KekNotForSlot`] when `to` is not dedicated to the slot
    /// (checked first), as [`VerifiedEnvelope::open`] with `from`, and
    /// [`Error::Custody`] when `to` fails to wrap.
    pub fn rewrap(
        &self,
        from: &dyn KeyEncryptionKey,
        to: &dyn KeyEncryptionKey,
    ) -> Result<EncodedEnvelope, Error> {
        self.sealed()?;
        check_kek_slot(to, &self.header.slot())?;
        let (share, data_key) = self.open_with_key(from)?;
        drop(share);
        let sealed = self.sealed()?;
        let wrapped = to.wrap(&data_key)?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_ENVELOPE_LEN));
        bytes.extend_from_slice(&sealed.authenticated);
        put_wrap_trailer(&mut bytes, to.kek_id(), &wrapped)?;
        check_total_len("envelope", bytes.len(), MAX_ENVELOPE_LEN)?;
        Ok(EncodedEnvelope {
            bytes,
            id: self.id,
            kind: PayloadKind::Sealed,
        })
    }

    fn sealed(&self) -> Result<&SealedBody, Error> {
        match &self.body {
            Body::Sealed(sealed) => Ok(sealed),
            Body::Plain(_) => Err(Error::WrongPayloadKind {
                expected: PayloadKind::Sealed,
                got: PayloadKind::Plain,
            }),
        }
    }

    fn open_with_key(&self, kek: &dyn KeyEncryptionKey) -> Result<(CurveShare, DataKey), Error> {
        let sealed = self.sealed()?;
        if kek.kek_id() != &sealed.kek_id {
            return Err(Error::KekMismatch {
                expected: sealed.kek_id.clone(),
                got: kek.kek_id().clone(),
            });
        }
        let data_key = kek.unwrap(&sealed.wrapped_key)?;
        let share = sealed.unseal(&data_key, &self.header)?;
        Ok((share, data_key))
    }
}

impl SealedBody {
    fn unseal(&self, data_key: &DataKey, header: &EnvelopeHeader) -> Result<CurveShare, Error> {
        let aad = &self.authenticated[..self.header_len];
        let payload = &self.authenticated[self.header_len..self.payload_end];
        let (nonce, ciphertext) = payload.split_at(NONCE_LEN);
        let nonce: &[u8; NONCE_LEN] =
            nonce
                .try_into()
                .map_err(|_| FramingError::LengthOutOfRange {
                    field: "payload",
                    len: payload.len(),
                    min: SEALED_PAYLOAD_LEN,
                    max: SEALED_PAYLOAD_LEN,
                })?;
        let value = aead::open(data_key, nonce, aad, ciphertext)?;
        let value: &[u8; SHARE_VALUE_LEN] = value
            .as_slice()
            .try_into()
            .map_err(|_| Error::DecryptionFailed)?;
        match &header.commitments {
            CurveCommitments::Secp256k1(c) => checked_share(c, header, value).map(CurveShare::from),
            CurveCommitments::Ed25519(c) => checked_share(c, header, value).map(CurveShare::from),
        }
    }
}

/// Refuses a KEK that is not dedicated to `slot`. Slots and KEK ids are
/// public: a plain comparison.
fn check_kek_slot(kek: &dyn KeyEncryptionKey, slot: &ShareSlot) -> Result<(), Error> {
    if kek.slot() == Some(slot) {
        Ok(())
    } else {
        Err(Error::KekNotForSlot {
            kek: kek.kek_id().clone(),
            slot: slot.clone(),
        })
    }
}

/// Assembles the unsealed share and Feldman-checks it.
fn checked_share<C: Curve>(
    commitments: &Commitments<C>,
    header: &EnvelopeHeader,
    value: &[u8; SHARE_VALUE_LEN],
) -> Result<Share<C>, Error> {
    let share = Share::<C>::from_parts(header.threshold, header.index, header.split_id, value)?;
    commitments.verify(&share)?;
    Ok(share)
}

fn wrap_trailer_len(kek_id: &KekId, wrapped: &WrappedKey) -> usize {
    1 + kek_id.as_str().len() + 2 + wrapped.as_bytes().len()
}

impl fmt::Debug for VerifiedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedEnvelope")
            .field("id", &self.id)
            .field("header", &self.header)
            .field("signer_id", &self.signer_id)
            .field("kek_id", &self.kek_id())
            .finish_non_exhaustive()
    }
}
