//! Audit records and their canonical binary encoding (format version 1).
//!
//! ```text
//! u8      format version (1)
//! u8      event type code
//! u64     timestamp, ms since the Unix epoch (<= i64::MAX)
//! name    operator
//! u8      approver count (<= 16), then that many names, strictly increasing
//! opt     name key_id
//! opt     name node_id
//! opt     u32 key version
//! opt     u8 share index (non-zero)
//! opt     [32] envelope id
//! opt     [64] signature
//! opt     text target entity (<= 256 bytes)
//! opt     u8 t, u8 n (a valid threshold)
//! u8      result: 0 success | 1 failure, then text failure reason (<= 1024)
//! opt     text detail (<= 4096 bytes)
//! ```
//!
//! Integers are big-endian. `name` = u8 length (1..=64) + bytes of the
//! name's alphabet; `text` = u16 length (1..=cap) + UTF-8 free text (see
//! [`FreeText`]); `opt` = a flag byte 0 (absent) or 1 (present, then the
//! value). Every value has exactly one encoding; trailing bytes, unknown
//! versions or codes and non-canonical forms are refused.

use std::collections::BTreeSet;

use shardkeep_types::{ActorId, FreeText, KeyId, KeyVersion, NodeId, Timestamp};
use shardkeep_types::{ShareIndex, Threshold};
use shardkeep_wire::{FramingError, Reader, check_total_len};

use crate::codec::read_flag;
use crate::error::{DecodeError, EncodeError};

/// The record format version this crate writes and reads.
pub const RECORD_FORMAT_VERSION: u8 = 1;
/// Most approvers one record names.
pub const MAX_APPROVERS: usize = 16;
/// Longest target entity, in bytes.
pub const MAX_TARGET_LEN: usize = 256;
/// Longest failure reason, in bytes.
pub const MAX_REASON_LEN: usize = 1024;
/// Longest detail, in bytes.
pub const MAX_DETAIL_LEN: usize = 4096;
/// Longest encoded record (well below storage's 64 KiB cap).
pub const MAX_RECORD_LEN: usize = 8 * 1024;

macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $name:literal;)*) => {
        /// What happened. Codes are part of the format and never reused;
        /// "procedure step N" is step N of the backup procedure,
        /// `docs/procedure.md`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum EventType {
            $($(#[$doc])* $variant,)*
        }

        impl EventType {
            /// Every event type, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The event's code in the binary format.
            #[must_use]
            pub const fn code(self) -> u8 {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            /// The event for a code.
            #[must_use]
            pub const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The event's name, as exported (`access-denied`, ...).
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

event_types! {
    /// Shares were generated from a node's MPC share (procedure step 1).
    Generate = 1, "generate";
    /// An external share was sent to a custodian (procedure step 2).
    Deliver = 2, "deliver";
    /// A custodian confirmed receipt or inventory (procedure steps 2, 3).
    Confirm = 3, "confirm";
    /// Shares or status were inspected (procedure step 3).
    Inspect = 4, "inspect";
    /// A recovery drill ran (procedure step 4).
    Drill = 5, "drill";
    /// A share was recovered (procedure step 6).
    Recover = 6, "recover";
    /// A share slot was soft-deleted (procedure step 7).
    SoftDelete = 7, "soft-delete";
    /// A share slot was hard-deleted (procedure step 7).
    HardDelete = 8, "hard-delete";
    /// A soft delete or a retirement was rolled back (procedure step 7).
    Rollback = 9, "rollback";
    /// An approver approved a request.
    Approve = 10, "approve";
    /// A key version was rotated (procedure step 5).
    Rotate = 11, "rotate";
    /// A request was refused for lack of rights or approvals.
    AccessDenied = 12, "access-denied";
    /// A sealed share was read.
    ShareRead = 13, "share-read";
    /// A sealed share was re-wrapped under a new KEK.
    Rewrap = 14, "rewrap";
    /// The custody map changed.
    CustodyUpdate = 15, "custody-update";
    /// An approval request was issued.
    ApprovalRequest = 16, "approval-request";
    /// A zero-retention confirmation was issued (procedure step 7).
    ZeroRetention = 17, "zero-retention";
    /// A person or a custodian entity was registered.
    Register = 18, "register";
    /// A person or a custodian entity was revoked.
    Revoke = 19, "revoke";
    /// The split policy was set.
    Policy = 20, "policy";
    /// A person's keys were replaced (a new key epoch).
    PersonKeys = 21, "person-keys";
    /// A person's roles were changed.
    Roles = 22, "roles";
    /// A reviewer signed a review of a range of the audit log (procedure
    /// step 8).
    AuditReview = 23, "audit-review";
    /// A reviewed range of the audit log was exported for the archive
    /// (procedure step 8).
    AuditArchive = 24, "audit-archive";
}

/// How the event ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed.
    Failure {
        /// Why (at most [`MAX_REASON_LEN`] bytes of free text).
        reason: FreeText<MAX_REASON_LEN>,
    },
}

/// One audit event with the fields the backup procedure requires
/// (`docs/procedure.md`, step 8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditRecord {
    /// What happened.
    pub event: EventType,
    /// When (the caller's clock).
    pub timestamp: Timestamp,
    /// Who did it.
    pub operator: ActorId,
    /// Who approved it (a set: one encoding per set).
    pub approvers: BTreeSet<ActorId>,
    /// The group key.
    pub key_id: Option<KeyId>,
    /// The node.
    pub node_id: Option<NodeId>,
    /// The key version.
    pub version: Option<KeyVersion>,
    /// The share index.
    pub share_index: Option<ShareIndex>,
    /// The envelope id (the procedure's envelope hash).
    pub envelope_id: Option<[u8; 32]>,
    /// The envelope's or receipt's signature.
    pub signature: Option<[u8; 64]>,
    /// The target entity (custodian, node, file...), at most
    /// [`MAX_TARGET_LEN`] bytes of free text.
    pub target: Option<FreeText<MAX_TARGET_LEN>>,
    /// Threshold and total, for generate and rotate.
    pub threshold: Option<Threshold>,
    /// The result, with the failure reason.
    pub outcome: Outcome,
    /// Anything else for people (sources, counts, ticket), at most
    /// [`MAX_DETAIL_LEN`] bytes of free text.
    pub detail: Option<FreeText<MAX_DETAIL_LEN>>,
}

impl AuditRecord {
    /// A successful event with no optional field set.
    #[must_use]
    pub fn new(event: EventType, timestamp: Timestamp, operator: ActorId) -> Self {
        Self {
            event,
            timestamp,
            operator,
            approvers: BTreeSet::new(),
            key_id: None,
            node_id: None,
            version: None,
            share_index: None,
            envelope_id: None,
            signature: None,
            target: None,
            threshold: None,
            outcome: Outcome::Success,
            detail: None,
        }
    }

    /// The canonical encoding.
    ///
    /// # Errors
    /// [`EncodeError::TooManyApprovers`] (text fields are [`FreeText`]:
    /// checked when they were made).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        if self.approvers.len() > MAX_APPROVERS {
            return Err(EncodeError::TooManyApprovers(self.approvers.len()));
        }
        let mut out = Vec::with_capacity(128);
        out.push(RECORD_FORMAT_VERSION);
        out.push(self.event.code());
        out.extend_from_slice(&self.timestamp.as_unix_millis().to_be_bytes());
        self.operator.encode_prefixed(&mut out);
        // At most MAX_APPROVERS (16), checked above.
        out.push(u8::try_from(self.approvers.len()).unwrap_or(u8::MAX));
        for approver in &self.approvers {
            approver.encode_prefixed(&mut out);
        }
        put_opt(&mut out, self.key_id.as_ref(), |out, id| {
            id.encode_prefixed(out);
        });
        put_opt(&mut out, self.node_id.as_ref(), |out, id| {
            id.encode_prefixed(out);
        });
        put_opt(&mut out, self.version, |out, version| {
            out.extend_from_slice(&version.get().to_be_bytes());
        });
        put_opt(&mut out, self.share_index, |out, index| {
            out.push(index.get());
        });
        put_opt(&mut out, self.envelope_id.as_ref(), |out, id| {
            out.extend_from_slice(id);
        });
        put_opt(&mut out, self.signature.as_ref(), |out, signature| {
            out.extend_from_slice(signature);
        });
        put_opt(&mut out, self.target.as_ref(), |out, target| {
            put_text(out, target.as_str());
        });
        put_opt(&mut out, self.threshold, |out, threshold| {
            out.push(threshold.t());
            out.push(threshold.n());
        });
        match &self.outcome {
            Outcome::Success => out.push(0),
            Outcome::Failure { reason } => {
                out.push(1);
                put_text(&mut out, reason.as_str());
            }
        }
        put_opt(&mut out, self.detail.as_ref(), |out, detail| {
            put_text(out, detail.as_str());
        });
        Ok(out)
    }

    /// Decodes a canonical encoding.
    ///
    /// # Errors
    /// [`DecodeError`] for truncated, trailing, oversized, unknown or
    /// non-canonical input.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_total_len("audit record", bytes.len(), MAX_RECORD_LEN)?;
        let mut reader = Reader::new(bytes);
        // Records have no magic: they live in the audit table, never alone.
        let version = reader.u8("version")?;
        if version != RECORD_FORMAT_VERSION {
            return Err(FramingError::UnsupportedVersion {
                format: "audit record",
                version,
            }
            .into());
        }
        let code = reader.u8("event type")?;
        let event = EventType::from_code(code).ok_or(DecodeError::UnknownEvent(code))?;
        let timestamp = Timestamp::from_unix_millis(reader.u64("timestamp")?)
            .map_err(|_| DecodeError::InvalidTimestamp)?;
        let operator = read_actor(&mut reader, "operator")?;
        let count = usize::from(reader.u8("approver count")?);
        if count > MAX_APPROVERS {
            return Err(DecodeError::TooManyApprovers);
        }
        let mut approvers = BTreeSet::new();
        let mut previous: Option<ActorId> = None;
        for _ in 0..count {
            let approver = read_actor(&mut reader, "approver")?;
            if previous
                .as_ref()
                .is_some_and(|previous| *previous >= approver)
            {
                return Err(DecodeError::UnorderedApprovers);
            }
            previous = Some(approver.clone());
            approvers.insert(approver);
        }
        let key_id = read_opt(&mut reader, |r| {
            KeyId::from_bytes(read_name_bytes(r, "key_id")?)
                .map_err(|_| DecodeError::InvalidName("key_id"))
        })?;
        let node_id = read_opt(&mut reader, |r| {
            NodeId::from_bytes(read_name_bytes(r, "node_id")?)
                .map_err(|_| DecodeError::InvalidName("node_id"))
        })?;
        let version = read_opt(&mut reader, |r| Ok(KeyVersion::new(r.u32("version")?)))?;
        let share_index = read_opt(&mut reader, |r| {
            ShareIndex::new(r.u8("share index")?).ok_or(DecodeError::ZeroShareIndex)
        })?;
        let envelope_id = read_opt(&mut reader, |r| Ok(*r.array::<32>("envelope id")?))?;
        let signature = read_opt(&mut reader, |r| Ok(*r.array::<64>("signature")?))?;
        let target = read_opt(&mut reader, |r| read_text(r, "target"))?;
        let threshold = read_opt(&mut reader, |r| {
            let t = r.u8("t")?;
            let n = r.u8("n")?;
            Threshold::new(usize::from(t), usize::from(n))
                .map_err(|_| DecodeError::InvalidThreshold)
        })?;
        let outcome = if read_flag(&mut reader, "outcome")? {
            Outcome::Failure {
                reason: read_text(&mut reader, "failure reason")?,
            }
        } else {
            Outcome::Success
        };
        let detail = read_opt(&mut reader, |r| read_text(r, "detail"))?;
        reader.finish("record")?;
        Ok(Self {
            event,
            timestamp,
            operator,
            approvers,
            key_id,
            node_id,
            version,
            share_index,
            envelope_id,
            signature,
            target,
            threshold,
            outcome,
            detail,
        })
    }
}

/// Texts are `FreeText` within their caps, all below `u16::MAX`.
pub(crate) fn put_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&u16::try_from(text.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_opt<T>(out: &mut Vec<u8>, value: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            put(out, value);
        }
    }
}

fn read_opt<'a, T>(
    reader: &mut Reader<'a>,
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    if read_flag(reader, "presence")? {
        read(reader).map(Some)
    } else {
        Ok(None)
    }
}

/// A name's bytes: any length the prefix states (the name's type then
/// refuses what breaks its rule).
fn read_name_bytes<'a>(
    reader: &mut Reader<'a>,
    field: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let len = usize::from(reader.u8(field)?);
    Ok(reader.take(len, field)?)
}

pub(crate) fn read_actor(
    reader: &mut Reader<'_>,
    field: &'static str,
) -> Result<ActorId, DecodeError> {
    let bytes = read_name_bytes(reader, field)?;
    let name = core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidName(field))?;
    ActorId::new(name).map_err(|_| DecodeError::InvalidName(field))
}

pub(crate) fn read_text<const MAX: usize>(
    reader: &mut Reader<'_>,
    field: &'static str,
) -> Result<FreeText<MAX>, DecodeError> {
    // The cap is checked before the bytes are taken.
    let bytes = reader
        .prefixed_u16(field, 1, MAX)
        .map_err(|error| match error {
            FramingError::LengthOutOfRange { .. } => DecodeError::InvalidText(field),
            other => other.into(),
        })?;
    FreeText::from_utf8(bytes).map_err(|_| DecodeError::InvalidText(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> AuditRecord {
        let mut record = AuditRecord::new(
            EventType::Recover,
            Timestamp::from_unix_millis(1_762_312_455_926).unwrap(),
            ActorId::new("ops.alice").unwrap(),
        );
        record.approvers = ["sec.bob", "biz.dave"]
            .into_iter()
            .map(|a| ActorId::new(a).unwrap())
            .collect();
        record.key_id = Some(KeyId::new("wallet-1").unwrap());
        record.node_id = Some(NodeId::new("node-a").unwrap());
        record.version = Some(KeyVersion::new(3));
        record.share_index = ShareIndex::new(2);
        record.envelope_id = Some([0xee; 32]);
        record.signature = Some([0x51; 64]);
        record.target = Some(FreeText::new("custodian escrow-co").unwrap());
        record.threshold = Some(Threshold::new(3, 5).unwrap());
        record.outcome = Outcome::Failure {
            reason: FreeText::new("share 4 failed its Feldman check").unwrap(),
        };
        record.detail = Some(FreeText::new("ticket INC-1234; sources 1,3,4").unwrap());
        record
    }

    #[test]
    fn round_trips_every_field() {
        let record = full();
        let bytes = record.encode().unwrap();
        assert_eq!(AuditRecord::decode(&bytes).unwrap(), record);
        let minimal = AuditRecord::new(
            EventType::Inspect,
            Timestamp::EPOCH,
            ActorId::new("a").unwrap(),
        );
        let bytes = minimal.encode().unwrap();
        assert_eq!(bytes.len(), 1 + 1 + 8 + 2 + 1 + 8 + 1 + 1);
        assert_eq!(AuditRecord::decode(&bytes).unwrap(), minimal);
    }

    #[test]
    fn event_codes_are_unique_and_stable() {
        for (position, event) in EventType::ALL.iter().enumerate() {
            assert_eq!(usize::from(event.code()), position + 1);
            assert_eq!(EventType::from_code(event.code()), Some(*event));
        }
        assert_eq!(EventType::from_code(0), None);
        assert_eq!(EventType::AccessDenied.name(), "access-denied");
    }

    #[test]
    fn refuses_bad_text_and_too_many_approvers() {
        // Text fields are `FreeText`: bad text cannot be put into a record.
        assert!(FreeText::<MAX_TARGET_LEN>::new("a\u{1b}[2J").is_err());
        assert!(FreeText::<MAX_REASON_LEN>::new("").is_err());
        assert!(FreeText::<MAX_DETAIL_LEN>::new("x".repeat(MAX_DETAIL_LEN + 1)).is_err());
        let mut record = full();
        record.approvers = (0..=MAX_APPROVERS)
            .map(|i| ActorId::new(format!("a{i}")).unwrap())
            .collect();
        assert_eq!(record.encode(), Err(EncodeError::TooManyApprovers(17)));
    }

    #[test]
    fn refuses_every_truncation_and_trailing_bytes() {
        let bytes = full().encode().unwrap();
        for len in 0..bytes.len() {
            assert!(AuditRecord::decode(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            AuditRecord::decode(&long),
            Err(DecodeError::Framing(FramingError::TrailingBytes {
                what: "record",
                len: 1
            }))
        );
    }
}
