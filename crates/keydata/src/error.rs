//! The one error type of this crate, and its detail enums.
//!
//! No variant carries secret material: numbers are described by the field
//! that holds them (`"BigXj[3].Coords"`), never by their value. Decryption
//! failures ([`Error::ArchiveOpenFailed`], [`Error::KeystoreDecryptFailed`])
//! are deliberately opaque.

use std::path::PathBuf;

use shardkeep_sss_core::CurveId;
use shardkeep_types::{CustodyError, FramingError, KekId};

/// Everything that can go wrong while loading, sealing, regenerating,
/// storing or self-testing a save data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The keystore JSON is not well-formed, or uses JSON that tss-lib never
    /// writes.
    #[error("keystore JSON: {0}")]
    Json(#[from] JsonError),
    /// A field of the save data is missing, unknown or invalid.
    #[error("save data field {field}: {problem}")]
    Field {
        /// Path of the field, e.g. `BigXj[3].Coords`.
        field: String,
        /// What is wrong with it.
        problem: FieldError,
    },
    /// The save data is neither ECDSA (`ECDSAPub`) nor EdDSA (`EDDSAPub`).
    #[error("save data has neither ECDSAPub nor EDDSAPub: not a tss-lib LocalPartySaveData")]
    UnknownProtocol,
    /// Something was expected on one curve and found on another.
    #[error("curve mismatch: expected {expected}, got {got}")]
    CurveMismatch {
        /// The curve required here.
        expected: CurveId,
        /// The curve found.
        got: CurveId,
    },
    /// The save data's `ShareID` is not one of `Ks`: there is no own entry
    /// in the per-party arrays.
    #[error("ShareID is not in Ks")]
    ShareIdNotInKs,

    /// A sealed protocol archive is malformed.
    #[error("protocol archive: {0}")]
    Archive(FormatError),
    /// A sealed protocol archive did not open: wrong secret share, wrong
    /// key/node/version, or altered bytes. Deliberately opaque.
    #[error("protocol archive does not open with this share and these ids")]
    ArchiveOpenFailed,
    /// The archive does not hash to the value the envelope binding signed.
    #[error("protocol archive does not match the signed archive hash")]
    ArchiveHashMismatch,
    /// The recovered secret share does not match the signed public share
    /// (`Xi*G != BigXj[self]`): a share of another node, version or split.
    #[error("recovered share is not this node's share (Xi*G differs from the signed public share)")]
    NotThisNodesShare,
    /// The opened archive disagrees with the signed binding.
    #[error("protocol archive disagrees with the signed binding on the {0}")]
    BindingMismatch(BindingField),
    /// Building the envelope binding failed.
    #[error("binding: {0}")]
    Binding(#[source] shardkeep_envelope::Error),

    /// A `.keydata.enc` file is malformed.
    #[error("keystore file: {0}")]
    Keystore(FormatError),
    /// A `.keydata.enc` file belongs to another key, node or version.
    #[error("keystore file is for another key, node or version")]
    KeystoreIdMismatch,
    /// A `.keydata.enc` file's data key is wrapped by another KEK.
    #[error("keystore data key is wrapped by KEK {found}, not {expected}")]
    KekMismatch {
        /// The KEK this codec holds.
        expected: KekId,
        /// The KEK named in the file.
        found: KekId,
    },
    /// A `.keydata.enc` body did not decrypt. Deliberately opaque.
    #[error("keystore file does not decrypt")]
    KeystoreDecryptFailed,
    /// The key-encryption key provider failed.
    #[error("key custody: {0}")]
    Custody(#[from] CustodyError),
    /// A caller-supplied keystore codec failed.
    #[error("keystore codec: {0}")]
    Codec(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The keystore exists and the write was not allowed to replace it.
    #[error("keystore {} already exists; refusing to replace it", path.display())]
    KeystoreExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"create temporary file"`, `"rename"`...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The threshold given to the self-test does not fit the save data.
    #[error("threshold {threshold} does not fit a group of {parties} parties")]
    ThresholdMismatch {
        /// The threshold given.
        threshold: shardkeep_sss_core::Threshold,
        /// The number of parties in `Ks`.
        parties: usize,
    },
    /// A self-test protocol message is invalid or out of order.
    #[error("self-test protocol: {0}")]
    SelfTestProtocol(&'static str),
    /// A self-test peer could not be reached or refused.
    #[error("self-test peer: {0}")]
    Peer(String),
    /// A self-test message (`shkp-stc`, `shkp-stn`, `shkp-sts`, `shkp-stz`)
    /// that is not well formed.
    #[error("self-test message: {0}")]
    PeerMessage(FormatError),
    /// The transport could not reach a peer's sidecar or bring back its
    /// answer, or the sidecar refused the request.
    #[error("self-test exchange with peer {party} failed: {source}")]
    PeerExchange {
        /// The party asked (`ShareID`, hex).
        party: String,
        /// The transport's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A peer answered for a party other than the one it was asked for.
    #[error("self-test peer asked for party {asked} answered for party {answered}")]
    PeerWrongParty {
        /// The party asked (`ShareID`, hex).
        asked: String,
        /// The party the answer is for (`ShareID`, hex).
        answered: String,
    },
    /// A peer answered with more than one commitment or share for its
    /// party.
    #[error("self-test peer {party} answered {count} times")]
    PeerAnsweredTwice {
        /// The party asked (`ShareID`, hex).
        party: String,
        /// How many answers it sent.
        count: usize,
    },
    /// A peer answered for another session than the one asked.
    #[error("self-test peer {party} answered for another session")]
    PeerWrongSession {
        /// The party asked (`ShareID`, hex).
        party: String,
    },
    /// A peer's answer is well framed but not valid on the key's curve.
    #[error("self-test peer {party}: {problem}")]
    PeerInvalidAnswer {
        /// The party asked (`ShareID`, hex).
        party: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A share-level rule of sss-core failed.
    #[error("share: {0}")]
    Share(#[from] shardkeep_sss_core::Error),
    /// The operating system's random number generator failed.
    #[error("operating system randomness unavailable")]
    RandomnessUnavailable,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Why bytes are not JSON of the shape tss-lib writes. Offsets are byte
/// positions in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The document exceeds the size cap.
    #[error("{len} bytes exceed the {max}-byte limit")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The input ended early.
    #[error("input ends where {expected} was expected")]
    UnexpectedEnd {
        /// What was expected.
        expected: &'static str,
    },
    /// A byte that does not fit the grammar.
    #[error("unexpected byte at offset {offset}; expected {expected}")]
    Unexpected {
        /// Position of the byte.
        offset: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// Bytes after the top-level value.
    #[error("trailing data at offset {offset}")]
    TrailingData {
        /// Where the trailing data starts.
        offset: usize,
    },
    /// Nesting deeper than the cap.
    #[error("nesting too deep at offset {offset}")]
    TooDeep {
        /// Where the cap was crossed.
        offset: usize,
    },
    /// An array or object with more entries than the cap.
    #[error("too many entries at offset {offset}")]
    TooManyElements {
        /// Where the cap was crossed.
        offset: usize,
    },
    /// The same key twice in one object (Go would silently keep the last).
    #[error("duplicate key {key:?} at offset {offset}")]
    DuplicateKey {
        /// Where the repeat starts.
        offset: usize,
        /// The key.
        key: String,
    },
    /// A string escape: tss-lib's keys and curve names never need one.
    #[error("string escape at offset {offset} (not used by tss-lib)")]
    StringEscape {
        /// Position of the backslash.
        offset: usize,
    },
    /// A control or non-ASCII byte inside a string.
    #[error("invalid string byte at offset {offset}")]
    InvalidStringByte {
        /// Position of the byte.
        offset: usize,
    },
    /// A string longer than the cap.
    #[error("string too long at offset {offset}")]
    StringTooLong {
        /// Where the string starts.
        offset: usize,
    },
    /// A negative number (including `-0`): no save-data field is negative.
    #[error("negative number at offset {offset}")]
    NegativeNumber {
        /// Position of the sign.
        offset: usize,
    },
    /// A fraction or exponent: save-data numbers are integers.
    #[error("non-integer number at offset {offset}")]
    NonIntegerNumber {
        /// Where the number starts.
        offset: usize,
    },
    /// A number with a leading zero (not JSON).
    #[error("number with a leading zero at offset {offset}")]
    LeadingZero {
        /// Where the number starts.
        offset: usize,
    },
    /// A number with more digits than any 2048-bit value has.
    #[error("number at offset {offset} has more than {max_digits} digits")]
    NumberTooLong {
        /// Where the number starts.
        offset: usize,
        /// The cap.
        max_digits: usize,
    },
}

/// What is wrong with one field of a save data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// A required field is absent.
    #[error("missing")]
    Missing,
    /// A field tss-lib does not write (Go would ignore it; a typo here could
    /// hide data, so it is refused).
    #[error("unknown field")]
    Unknown,
    /// The field has the wrong JSON type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The JSON type required.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// The number needs more bits than the field allows.
    #[error("number wider than {max_bits} bits")]
    TooWide {
        /// The field's limit.
        max_bits: u32,
    },
    /// An array's length differs from the number of parties in `Ks`.
    #[error("{got} entries, but Ks has {expected}")]
    LengthMismatch {
        /// Number of parties.
        expected: usize,
        /// Entries found.
        got: usize,
    },
    /// `Ks` is empty: a save data needs at least one party.
    #[error("empty")]
    Empty,
    /// `Coords` does not hold exactly two numbers.
    #[error("Coords has {0} entries, expected 2")]
    CoordsLength(usize),
    /// `Curve` names a curve shardkeep does not support (or is empty).
    #[error("unsupported curve name")]
    UnknownCurve,
    /// The point's curve is not the save data's curve (a point without
    /// `Curve` is secp256k1, as in tss-lib).
    #[error("point on {got}, save data is on {expected}")]
    PointCurve {
        /// The save data's curve.
        expected: CurveId,
        /// The point's curve.
        got: CurveId,
    },
    /// The coordinates are not a valid point (off the curve, identity, or
    /// with a torsion component on ed25519).
    #[error("invalid point: {0}")]
    InvalidPoint(shardkeep_sss_core::Error),
    /// A party id is zero modulo the group order, too long, or repeated.
    #[error("invalid party id: {0}")]
    PartyId(shardkeep_sss_core::Error),
    /// `Xi` is zero or not below the group order.
    #[error("secret share out of range: {0}")]
    SecretShare(shardkeep_sss_core::Error),
}

/// Why bytes are not a well-formed sealed archive or keystore file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The bytes are not framed as the format says: wrong magic,
    /// unsupported version, a file over the cap, cut short, a length field
    /// outside its range, or trailing bytes.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A key-derivation function id this build does not know.
    #[error("unsupported KDF id {0}")]
    UnsupportedKdf(u8),
    /// A curve byte that names no curve.
    #[error("unknown curve byte {0}")]
    UnknownCurve(u8),
    /// A name (key, node or KEK id) breaks the naming rule.
    #[error("invalid {0}")]
    InvalidName(&'static str),
}

/// Which signed value an opened archive disagrees with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingField {
    /// The group public key (`ECDSAPub` / `EDDSAPub`).
    GroupKey,
    /// The node's party id (`ShareID`).
    PartyId,
    /// The node's public share (`BigXj[self]`).
    PublicShare,
}

impl core::fmt::Display for BindingField {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::GroupKey => "group public key",
            Self::PartyId => "party id (ShareID)",
            Self::PublicShare => "public share (BigXj[self])",
        })
    }
}
