//! The one error type of this crate.

use shardkeep_sss_core::CurveId;
use shardkeep_types::{
    CustodianId, CustodyError, EnvelopeId, FramingError, KekId, ShareIndex, ShareSlot, SignerId,
    ThresholdError,
};

use crate::envelope::PayloadKind;

/// Everything that can go wrong while building, decoding, verifying, sealing
/// or opening envelopes, containers and receipts.
///
/// Variants never carry secret material (share values, data keys, plaintext,
/// passphrases). Decryption and signature failures are deliberately opaque:
/// [`Error::DecryptionFailed`], [`Error::BadSignature`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not framed as their format says: wrong magic,
    /// unsupported version, over the format's cap, cut short, a length
    /// prefix outside its bounds, or trailing bytes.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A name, timestamp or free text breaks its rule (a name of the wrong
    /// length or alphabet, a time beyond `i64::MAX` milliseconds, a failure
    /// reason with a refused character).
    #[error(transparent)]
    Types(#[from] shardkeep_types::Error),
    /// A party id has leading zero bytes (its encoding must be minimal).
    #[error("party id is not minimally encoded")]
    NonCanonicalPartyId,
    /// A key-custody provider failed.
    #[error("key custody: {0}")]
    Custody(#[from] CustodyError),
    /// A share-level rule failed (threshold, index, commitment count, point,
    /// scalar, split id, Feldman check).
    #[error("share: {0}")]
    Share(#[from] shardkeep_sss_core::Error),

    /// The curve byte names no known curve.
    #[error("unknown curve byte {0}")]
    UnknownCurve(u8),
    /// The payload-kind byte is neither plain (1) nor sealed (2).
    #[error("unknown payload kind {0}")]
    UnknownPayloadKind(u8),
    /// The receipt-status byte is neither received (1) nor failed (2).
    #[error("unknown receipt status {0}")]
    UnknownReceiptStatus(u8),
    /// A field has a value the format allows only one way to write, written
    /// another way (for example a reason on a "received" receipt).
    #[error("{field} is not canonically encoded")]
    NonCanonical {
        /// The field.
        field: &'static str,
    },
    /// The envelope's checksum does not match its signed bytes: the bytes
    /// were corrupted (or edited without re-signing).
    #[error("envelope checksum mismatch")]
    ChecksumMismatch,
    /// The envelope names a signer that is not in the caller's trusted set.
    #[error("signer {0} is not trusted")]
    UntrustedSigner(SignerId),
    /// The ed25519 signature does not verify (strict verification).
    /// Deliberately opaque.
    #[error("signature verification failed")]
    BadSignature,
    /// A verifying key is refused: small order, a torsion component, or a
    /// non-canonical encoding.
    #[error("{what}'s verifying key is weak or non-canonical")]
    WeakKey {
        /// Whose key.
        what: String,
    },
    /// A signer id was added twice to a trusted set.
    #[error("signer {0} is already trusted")]
    DuplicateSigner(SignerId),
    /// A verifying key was added to a trusted set under a second signer id:
    /// one key, one id.
    #[error("signer {0}'s verifying key is already trusted under another id")]
    DuplicateSignerKey(SignerId),
    /// Commitment `C_0` differs from the bound public share `BigXj[self]`.
    #[error("commitment C0 does not match the bound public share")]
    PublicShareMismatch,
    /// Values of two different curves were combined.
    #[error("curve mismatch: expected {expected}, got {got}")]
    WrongCurve {
        /// The curve required.
        expected: CurveId,
        /// The curve found.
        got: CurveId,
    },
    /// The operation needs the other payload kind (for example `open` on a
    /// plain envelope, or a container around a sealed one).
    #[error("envelope payload is {got:?}, this needs {expected:?}")]
    WrongPayloadKind {
        /// The kind required.
        expected: PayloadKind,
        /// The kind found.
        got: PayloadKind,
    },
    /// The data key was wrapped by another KEK than the one supplied.
    #[error("data key is wrapped by KEK {expected}, not {got}")]
    KekMismatch {
        /// The KEK named by the envelope.
        expected: KekId,
        /// The KEK supplied.
        got: KekId,
    },
    /// A KEK that is not dedicated to the envelope's own share slot (another
    /// slot's, or one bound to no slot) was given to seal or re-wrap a
    /// server envelope: the share would not be crypto-shredded with its
    /// slot.
    #[error("KEK {kek} is not dedicated to share slot {slot}")]
    KekNotForSlot {
        /// The KEK supplied.
        kek: KekId,
        /// The envelope's share slot.
        slot: ShareSlot,
    },
    /// A verified envelope is not about what the caller expected: the named
    /// field of its signed slot or binding differs.
    #[error("envelope's {0} differs from the expected one")]
    BindingMismatch(BindingField),
    /// The sealed share does not decrypt: wrong data key, or the envelope
    /// (header or payload) was moved or altered. Deliberately opaque.
    #[error("sealed share decryption failed")]
    DecryptionFailed,
    /// The operating system's random number generator failed.
    #[error("operating system randomness unavailable")]
    RandomnessUnavailable,
    /// A custodian container could not be made or opened.
    #[cfg(feature = "containers")]
    #[error("custodian container: {0}")]
    Container(#[from] ContainerError),
    /// The protocol archive in a container does not hash to the value the
    /// envelope's binding signs.
    #[cfg(feature = "containers")]
    #[error("protocol archive does not match the envelope's signed archive hash")]
    ArchiveMismatch,
    /// A receipt names a custodian that the custodian set does not know.
    #[error("custodian {0} is not in the custodian set")]
    UnknownCustodian(CustodianId),
    /// A share index is mapped twice in a custodian set.
    #[error("share index {0} is already mapped to a custodian")]
    IndexAlreadyMapped(ShareIndex),
    /// A custodian appears twice in a custodian set: custodians must be
    /// distinct.
    #[error("custodian {0} already holds another share index")]
    DuplicateCustodian(CustodianId),
    /// Two custodians of a set share one verifying key: they would not be
    /// distinct.
    #[error("custodian {0} has the same verifying key as another custodian")]
    DuplicateCustodianKey(CustodianId),
    /// The deliveries and the custodian set disagree on the external share
    /// indices.
    #[error("share index {0} is in only one of the deliveries and the custodian set")]
    CustodianSetMismatch(ShareIndex),
    /// The same envelope is listed for two deliveries.
    #[error("envelope {0} is listed for two share indices")]
    DuplicateDelivery(EnvelopeId),
}

/// Threshold rules come from `shardkeep-types`; an envelope reports them as
/// the share-level errors they are ([`Error::Share`]).
impl From<ThresholdError> for Error {
    fn from(error: ThresholdError) -> Self {
        Self::Share(error.into())
    }
}

/// A field of an envelope's signed slot or binding, named by
/// [`Error::BindingMismatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BindingField {
    /// The group key's id.
    KeyId,
    /// The node whose share it is.
    NodeId,
    /// The key version (rotation epoch).
    Version,
    /// The share index.
    Index,
    /// The curve.
    Curve,
    /// The group public key.
    GroupPublicKey,
    /// The node's tss-lib party id.
    PartyId,
    /// The node's public share `BigXj[self]`.
    PublicShare,
    /// The hash of the sealed protocol archive.
    ArchiveHash,
}

impl core::fmt::Display for BindingField {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::KeyId => "key id",
            Self::NodeId => "node id",
            Self::Version => "key version",
            Self::Index => "share index",
            Self::Curve => "curve",
            Self::GroupPublicKey => "group public key",
            Self::PartyId => "party id",
            Self::PublicShare => "public share",
            Self::ArchiveHash => "archive hash",
        })
    }
}

/// Why a custodian container could not be made or opened. Carried inside
/// [`Error::Container`]; never contains key material or passphrases.
#[cfg(feature = "containers")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// No X25519 recipient was given, or more than the cap.
    #[error("a container needs 1..={max} X25519 recipients, got {got}")]
    RecipientCount {
        /// Recipients supplied.
        got: usize,
        /// The cap.
        max: usize,
    },
    /// The requested scrypt work factor is outside the accepted range.
    #[error("scrypt work factor 2^{0} is outside the accepted range")]
    WorkFactor(u8),
    /// age refused to encrypt, or writing the container failed.
    #[error("age encryption failed")]
    Encrypt,
    /// None of the supplied identities (or the passphrase) opens the
    /// container.
    #[error("no supplied identity opens this container")]
    NoMatchingIdentity,
    /// The container's scrypt work factor is above the accepted maximum.
    #[error("container demands excessive scrypt work")]
    ExcessiveWork,
    /// The container's age header has more recipient stanzas than the cap;
    /// refused before any of them is tried.
    #[error("container has {got} recipient stanzas, over the cap of {max}")]
    TooManyStanzas {
        /// Stanzas found.
        got: usize,
        /// The cap.
        max: usize,
    },
    /// A passphrase (scrypt) container was given to an opener that accepts
    /// X25519 containers only.
    #[error("passphrase containers are not accepted here")]
    PassphraseNotAccepted,
    /// The bytes are not a well-formed age file (header, armor).
    #[error("not a well-formed age container")]
    Malformed,
    /// The container's header MAC or payload does not authenticate.
    /// Deliberately opaque.
    #[error("container decryption failed")]
    DecryptionFailed,
}
