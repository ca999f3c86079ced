//! The zero-retention certificate (`shkp-zrc`): the signed, offline
//! verifiable statement that the server no longer holds some slots of a key
//! version, and why that is safe.
//!
//! It lists the slots hard-deleted, how each slot KEK was destroyed (named
//! honestly: `hsm-destroy`, or `file-delete (not a crypto-shred)`), each
//! destroyed key's id and fingerprint, the evidence that the node can still
//! be recovered without the server (the confirmed receipts and the passed
//! external-only drill, by id and hash), the approvals of the deletion, the
//! audit checkpoint witnessed after the deletion records, a compliance
//! person's signed sign-off, and the times. The service signs it with a key
//! of its own (not the audit key, not the envelope key); anyone holding the
//! public key verifies it offline with [`verify_zero_retention_certificate`].
//!
//! Layout (every integer big-endian, names `u8`-length-prefixed):
//!
//! ```text
//! "shkp-zrc" || version (1)
//! body:
//!   deployment || key id || node id || key version (u32) || split id (32)
//!   shred method (u8: 1 hsm-destroy, 2 file-delete)
//!   slots (u8 count, 1..): index (u8) || KEK id || fingerprint (32)
//!                          || soft-deleted at (u64 ms) || hard-deleted at (u64 ms)
//!   receipts (u8 count): index (u8) || custodian id || envelope id (32) || receipt hash (32)
//!   drill: started at (u64) || finished at (u64) || shares used (u8-prefixed indices)
//!          || report hash (32)
//!   approval request hash (32)
//!   approvals (u8 count, 1..): approver || role (u8) || signature (64)
//!   deletion records: first sequence (u64) || last sequence (u64)
//!   checkpoint: log id (16) || sequence (u64) || head hash (32) || signed at (u64)
//!               || signer id || signature (64)
//!   drafted at (u64)
//! sign-off: person || public key (32) || signed at (u64) || signature (64)
//! issuer (signer id) || issued at (u64)
//! signature (64)
//! ```
//!
//! The compliance person signs `"shardkeep/zero-retention-signoff/v1" ||
//! version || body`; the issuer signs `"shardkeep/zero-retention/v1" ||`
//! every byte before its signature. Slots and receipts are in strictly
//! increasing index order, so one certificate has one encoding.

use core::fmt::Write as _;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use shardkeep_audit::Checkpoint;
use shardkeep_kms::ShredMethod;
use shardkeep_storage::ApprovalRequestHash;
use shardkeep_types::{
    AUDIT_LOG_ID_LEN, ActorId, AuditLogId, CustodianId, KekId, KeyId, KeyVersion, Label,
    MAX_NAME_LEN, NodeId, NodeVersion, ShareIndex, Signer, SignerId, Timestamp,
};
use shardkeep_wire::{Reader, check_total_len, put_prefixed_u8};

use crate::approval::{role_code, role_from_code};
use crate::error::Error;
use crate::registry::Role;

/// First bytes of a zero-retention certificate.
pub const ZERO_RETENTION_MAGIC: &[u8; 8] = b"shkp-zrc";
/// The certificate format version this build writes and reads.
pub const ZERO_RETENTION_VERSION: u8 = 1;
/// Domain tag of the issuer's signature.
pub const ZERO_RETENTION_TAG: &[u8] = b"shardkeep/zero-retention/v1";
/// Domain tag of the compliance sign-off signature.
pub const ZERO_RETENTION_SIGNOFF_TAG: &[u8] = b"shardkeep/zero-retention-signoff/v1";
/// Domain tag of the evidence hashes (receipts, drill reports).
pub const ZERO_RETENTION_EVIDENCE_TAG: &[u8] = b"shardkeep/zero-retention-evidence/v1";
/// Most slots, receipts or approvals one certificate lists.
pub const MAX_ZERO_RETENTION_ENTRIES: usize = 255;

const NAME: usize = 1 + MAX_NAME_LEN;
const SLOT_LEN: usize = 1 + NAME + 32 + 8 + 8;
const RECEIPT_LEN: usize = 1 + NAME + 32 + 32;
const APPROVAL_LEN: usize = NAME + 1 + 64;
const CHECKPOINT_LEN: usize = AUDIT_LOG_ID_LEN + 8 + 32 + 8 + NAME + 64;

/// Longest encoded certificate, in bytes (checked before parsing).
pub const MAX_ZERO_RETENTION_CERTIFICATE_LEN: usize = 9
    + NAME * 3
    + 4
    + 32
    + 1
    + (1 + MAX_ZERO_RETENTION_ENTRIES * SLOT_LEN)
    + (1 + MAX_ZERO_RETENTION_ENTRIES * RECEIPT_LEN)
    + (8 + 8 + 1 + MAX_ZERO_RETENTION_ENTRIES + 32)
    + 32
    + (1 + MAX_ZERO_RETENTION_ENTRIES * APPROVAL_LEN)
    + 16
    + CHECKPOINT_LEN
    + 8
    + (NAME + 32 + 8 + 64)
    + (NAME + 8)
    + 64;

/// `SHA-256("shardkeep/zero-retention-evidence/v1" || kind || bytes)`: the
/// hash a certificate names a receipt or a drill report by.
#[must_use]
pub fn evidence_hash(kind: &str, bytes: &[u8]) -> [u8; 32] {
    let kind = kind.as_bytes();
    // Kinds are this crate's short literals ("receipt", "drill-report").
    let kind_len = u8::try_from(kind.len()).unwrap_or(u8::MAX);
    Sha256::new()
        .chain_update(ZERO_RETENTION_EVIDENCE_TAG)
        .chain_update([kind_len])
        .chain_update(kind)
        .chain_update(bytes)
        .finalize()
        .into()
}

/// One hard-deleted slot and the KEK destroyed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestroyedSlot {
    /// The share index.
    pub index: ShareIndex,
    /// The destroyed KEK's id.
    pub kek_id: KekId,
    /// The destroyed KEK's pinned fingerprint.
    pub fingerprint: [u8; 32],
    /// When the slot was soft-deleted.
    pub soft_deleted_at: Timestamp,
    /// When it was hard-deleted (its KEK destroyed).
    pub hard_deleted_at: Timestamp,
}

/// A confirmed receipt of an external share, by id and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptEvidence {
    /// The external share's index.
    pub index: ShareIndex,
    /// The custodian entity that confirmed it.
    pub custodian: CustodianId,
    /// The envelope it holds.
    pub envelope_id: [u8; 32],
    /// [`evidence_hash`]`("receipt", signed receipt)`.
    pub receipt_hash: [u8; 32],
}

/// The passed external-only drill, by id (version and start) and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillEvidence {
    /// When it started (with the version, the drill record's id).
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// The external shares it recovered from, increasing.
    pub shares_used: Vec<ShareIndex>,
    /// [`evidence_hash`]`("drill-report", report)`.
    pub report_hash: [u8; 32],
}

/// One approval of the deletion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalEvidence {
    /// The approver.
    pub approver: ActorId,
    /// The role they approved in.
    pub role: Role,
    /// Their signature over the request (see [`crate::Approval`]).
    pub signature: [u8; 64],
}

/// What the compliance person signs and the issuer then signs with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroRetentionBody {
    /// The deployment.
    pub deployment: Label,
    /// The key version whose server slots were deleted.
    pub version: NodeVersion,
    /// Its split id.
    pub split_id: [u8; 32],
    /// How the KEKs were destroyed.
    pub method: ShredMethod,
    /// The slots, by increasing index.
    pub slots: Vec<DestroyedSlot>,
    /// The confirmed receipts, by increasing index.
    pub receipts: Vec<ReceiptEvidence>,
    /// The passed external-only drill.
    pub drill: DrillEvidence,
    /// The deletion's approval request.
    pub request: ApprovalRequestHash,
    /// Its approvals.
    pub approvals: Vec<ApprovalEvidence>,
    /// The audit sequences of the deletion's records (soft delete to hard
    /// delete), first and last.
    pub deletion_records: (u64, u64),
    /// The checkpoint witnessed after them (its sequence is at least the
    /// last deletion record's).
    pub checkpoint: Checkpoint,
    /// When the service drew up the body (after the checkpoint).
    pub drafted_at: Timestamp,
}

/// The compliance person's signed sign-off of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceSignOff {
    /// The compliance person.
    pub person: ActorId,
    /// Their registered approval key (checked by the service when it
    /// issued the certificate).
    pub public_key: [u8; 32],
    /// When they signed.
    pub signed_at: Timestamp,
    /// Ed25519 over `"shardkeep/zero-retention-signoff/v1" || version ||
    /// body`.
    pub signature: [u8; 64],
}

/// A verified zero-retention certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroRetentionCertificate {
    /// What it states.
    pub body: ZeroRetentionBody,
    /// The compliance sign-off.
    pub sign_off: ComplianceSignOff,
    /// The issuing key's id.
    pub issuer: SignerId,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// The issuer's signature.
    pub signature: [u8; 64],
}

fn method_code(method: ShredMethod) -> u8 {
    match method {
        ShredMethod::HsmDestroy => 1,
        // `ShredMethod` is non-exhaustive: a method this build does not know
        // is certified as the weakest one it does.
        _ => 2,
    }
}

fn method_from_code(code: u8) -> Option<ShredMethod> {
    match code {
        1 => Some(ShredMethod::HsmDestroy),
        2 => Some(ShredMethod::FileDelete),
        _ => None,
    }
}

fn invalid(why: &'static str) -> Error {
    Error::ZeroRetentionCertificateInvalid(why)
}

fn put_count(out: &mut Vec<u8>, len: usize, field: &'static str) -> Result<(), Error> {
    let count = u8::try_from(len).map_err(|_| invalid(field))?;
    out.push(count);
    Ok(())
}

fn put_time(out: &mut Vec<u8>, at: Timestamp) {
    out.extend_from_slice(&at.as_unix_millis().to_be_bytes());
}

fn read_time(reader: &mut Reader<'_>, field: &'static str) -> Result<Timestamp, Error> {
    Ok(Timestamp::from_unix_millis(reader.u64(field)?)?)
}

fn read_index(reader: &mut Reader<'_>, field: &'static str) -> Result<ShareIndex, Error> {
    ShareIndex::new(reader.u8(field)?).ok_or(invalid("share indices are 1 to 255"))
}

/// Refuses indices that are not strictly increasing.
fn increasing(indices: impl Iterator<Item = ShareIndex>, why: &'static str) -> Result<(), Error> {
    let indices: Vec<ShareIndex> = indices.collect();
    if indices.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(invalid(why));
    }
    Ok(())
}

impl ZeroRetentionBody {
    /// Checks the rules every body keeps: at least one slot and one
    /// approval, at most [`MAX_ZERO_RETENTION_ENTRIES`] of each list,
    /// slots and receipts by strictly increasing index, each slot
    /// soft-deleted before it was hard-deleted, the deletion records in
    /// order and covered by the checkpoint, the drill over before the
    /// body was drawn up.
    ///
    /// # Errors
    /// [`Error::ZeroRetentionCertificateInvalid`] naming the rule.
    pub fn validate(&self) -> Result<(), Error> {
        if self.slots.is_empty() {
            return Err(invalid("no slot"));
        }
        if self.approvals.is_empty() {
            return Err(invalid("no approval"));
        }
        if [
            self.slots.len(),
            self.receipts.len(),
            self.approvals.len(),
            self.drill.shares_used.len(),
        ]
        .iter()
        .any(|len| *len > MAX_ZERO_RETENTION_ENTRIES)
        {
            return Err(invalid("too many entries"));
        }
        increasing(
            self.slots.iter().map(|slot| slot.index),
            "slots out of order",
        )?;
        increasing(
            self.receipts.iter().map(|receipt| receipt.index),
            "receipts out of order",
        )?;
        increasing(
            self.drill.shares_used.iter().copied(),
            "drill shares out of order",
        )?;
        if self
            .slots
            .iter()
            .any(|slot| slot.hard_deleted_at < slot.soft_deleted_at)
        {
            return Err(invalid("a slot hard-deleted before its soft delete"));
        }
        let (first, last) = self.deletion_records;
        if first == 0 || last < first {
            return Err(invalid("deletion records out of order"));
        }
        if self.checkpoint.sequence < last {
            return Err(invalid(
                "the checkpoint does not cover the deletion records",
            ));
        }
        if self.drill.finished_at < self.drill.started_at {
            return Err(invalid("the drill ended before it started"));
        }
        Ok(())
    }

    /// The body's canonical bytes (what the compliance person signs,
    /// after the tag and version).
    ///
    /// # Errors
    /// [`Error::ZeroRetentionCertificateInvalid`] for a body that breaks
    /// [`validate`](Self::validate)'s rules; [`Error::Framing`].
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.validate()?;
        let mut out = Vec::with_capacity(1024);
        self.deployment.encode_prefixed(&mut out);
        self.version.key_id.encode_prefixed(&mut out);
        self.version.node_id.encode_prefixed(&mut out);
        out.extend_from_slice(&self.version.version.get().to_be_bytes());
        out.extend_from_slice(&self.split_id);
        out.push(method_code(self.method));
        put_count(&mut out, self.slots.len(), "too many slots")?;
        for slot in &self.slots {
            out.push(slot.index.get());
            slot.kek_id.encode_prefixed(&mut out);
            out.extend_from_slice(&slot.fingerprint);
            put_time(&mut out, slot.soft_deleted_at);
            put_time(&mut out, slot.hard_deleted_at);
        }
        put_count(&mut out, self.receipts.len(), "too many receipts")?;
        for receipt in &self.receipts {
            out.push(receipt.index.get());
            receipt.custodian.encode_prefixed(&mut out);
            out.extend_from_slice(&receipt.envelope_id);
            out.extend_from_slice(&receipt.receipt_hash);
        }
        put_time(&mut out, self.drill.started_at);
        put_time(&mut out, self.drill.finished_at);
        let used: Vec<u8> = self.drill.shares_used.iter().map(|i| i.get()).collect();
        put_prefixed_u8(&mut out, "drill shares", &used, MAX_ZERO_RETENTION_ENTRIES)?;
        out.extend_from_slice(&self.drill.report_hash);
        out.extend_from_slice(&self.request.0);
        put_count(&mut out, self.approvals.len(), "too many approvals")?;
        for approval in &self.approvals {
            approval.approver.encode_prefixed(&mut out);
            out.push(role_code(approval.role));
            out.extend_from_slice(&approval.signature);
        }
        out.extend_from_slice(&self.deletion_records.0.to_be_bytes());
        out.extend_from_slice(&self.deletion_records.1.to_be_bytes());
        let checkpoint = &self.checkpoint;
        out.extend_from_slice(&checkpoint.log_id.0);
        out.extend_from_slice(&checkpoint.sequence.to_be_bytes());
        out.extend_from_slice(&checkpoint.head_hash);
        put_time(&mut out, checkpoint.signed_at);
        checkpoint.signer_id.encode_prefixed(&mut out);
        out.extend_from_slice(&checkpoint.signature);
        put_time(&mut out, self.drafted_at);
        Ok(out)
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        let deployment = Label::decode_prefixed(reader)?;
        let key_id = KeyId::decode_prefixed(reader)?;
        let node_id = NodeId::decode_prefixed(reader)?;
        let version = KeyVersion::new(reader.u32("key version")?);
        let split_id = *reader.array::<32>("split id")?;
        let method =
            method_from_code(reader.u8("shred method")?).ok_or(invalid("unknown shred method"))?;
        let mut slots = Vec::new();
        for _ in 0..reader.u8("slot count")? {
            slots.push(DestroyedSlot {
                index: read_index(reader, "slot index")?,
                kek_id: KekId::decode_prefixed(reader)?,
                fingerprint: *reader.array::<32>("fingerprint")?,
                soft_deleted_at: read_time(reader, "soft-deleted at")?,
                hard_deleted_at: read_time(reader, "hard-deleted at")?,
            });
        }
        let mut receipts = Vec::new();
        for _ in 0..reader.u8("receipt count")? {
            receipts.push(ReceiptEvidence {
                index: read_index(reader, "receipt index")?,
                custodian: CustodianId::decode_prefixed(reader)?,
                envelope_id: *reader.array::<32>("envelope id")?,
                receipt_hash: *reader.array::<32>("receipt hash")?,
            });
        }
        let started_at = read_time(reader, "drill started at")?;
        let finished_at = read_time(reader, "drill finished at")?;
        let shares_used = reader
            .prefixed_u8("drill shares", 0, MAX_ZERO_RETENTION_ENTRIES)?
            .iter()
            .map(|&index| ShareIndex::new(index).ok_or(invalid("share indices are 1 to 255")))
            .collect::<Result<Vec<_>, _>>()?;
        let drill = DrillEvidence {
            started_at,
            finished_at,
            shares_used,
            report_hash: *reader.array::<32>("drill report hash")?,
        };
        let request = ApprovalRequestHash(*reader.array::<32>("request hash")?);
        let mut approvals = Vec::new();
        for _ in 0..reader.u8("approval count")? {
            let approver = ActorId::decode_prefixed(reader)?;
            let role = role_from_code(reader.u8("role")?).ok_or(invalid("unknown role"))?;
            approvals.push(ApprovalEvidence {
                approver,
                role,
                signature: *reader.array::<64>("approval signature")?,
            });
        }
        let deletion_records = (
            reader.u64("first deletion record")?,
            reader.u64("last deletion record")?,
        );
        let checkpoint = Checkpoint {
            log_id: AuditLogId(*reader.array::<AUDIT_LOG_ID_LEN>("log id")?),
            sequence: reader.u64("checkpoint sequence")?,
            head_hash: *reader.array::<32>("head hash")?,
            signed_at: read_time(reader, "checkpoint signed at")?,
            signer_id: SignerId::decode_prefixed(reader)?,
            signature: *reader.array::<64>("checkpoint signature")?,
        };
        let drafted_at = read_time(reader, "drafted at")?;
        let body = Self {
            deployment,
            version: NodeVersion {
                key_id,
                node_id,
                version,
            },
            split_id,
            method,
            slots,
            receipts,
            drill,
            request,
            approvals,
            deletion_records,
            checkpoint,
            drafted_at,
        };
        body.validate()?;
        Ok(body)
    }

    /// What the compliance person's signature covers: the sign-off tag,
    /// the format version and the body.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn sign_off_message(&self) -> Result<Vec<u8>, Error> {
        let body = self.encode()?;
        let mut message = Vec::with_capacity(ZERO_RETENTION_SIGNOFF_TAG.len() + 1 + body.len());
        message.extend_from_slice(ZERO_RETENTION_SIGNOFF_TAG);
        message.push(ZERO_RETENTION_VERSION);
        message.extend_from_slice(&body);
        Ok(message)
    }

    /// Every field, readably, for the compliance person to read before
    /// signing.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "zero-retention certificate (shkp-zrc v1)");
        let _ = writeln!(out, "  deployment:      {}", self.deployment);
        let _ = writeln!(out, "  key version:     {}", self.version);
        let _ = writeln!(out, "  split id:        {}", hex::encode(self.split_id));
        let _ = writeln!(out, "  shred method:    {}", self.method);
        for slot in &self.slots {
            let _ = writeln!(
                out,
                "  slot {}: KEK {} fingerprint {}, soft-deleted {}, hard-deleted {}",
                slot.index,
                slot.kek_id,
                hex::encode(slot.fingerprint),
                slot.soft_deleted_at,
                slot.hard_deleted_at
            );
        }
        for receipt in &self.receipts {
            let _ = writeln!(
                out,
                "  receipt {}: {} envelope {} hash {}",
                receipt.index,
                receipt.custodian,
                hex::encode(receipt.envelope_id),
                hex::encode(receipt.receipt_hash)
            );
        }
        let used: Vec<String> = self
            .drill
            .shares_used
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(
            out,
            "  drill: {} to {}, shares {}, report hash {}",
            self.drill.started_at,
            self.drill.finished_at,
            used.join(", "),
            hex::encode(self.drill.report_hash)
        );
        let _ = writeln!(out, "  approval request: {}", self.request);
        for approval in &self.approvals {
            let _ = writeln!(
                out,
                "  approved by {} ({})",
                approval.approver, approval.role
            );
        }
        let _ = writeln!(
            out,
            "  deletion records {} to {}, witnessed checkpoint at {} ({}) signed {} by {}",
            self.deletion_records.0,
            self.deletion_records.1,
            self.checkpoint.sequence,
            hex::encode(self.checkpoint.head_hash),
            self.checkpoint.signed_at,
            self.checkpoint.signer_id
        );
        let _ = writeln!(out, "  drawn up:        {}", self.drafted_at);
        out
    }
}

/// The compliance person's side: signs `body` after their tool decoded
/// and showed it ([`ZeroRetentionBody::describe`]).
///
/// # Errors
/// As [`ZeroRetentionBody::encode`]; [`Error::Signing`] when the signer
/// fails.
pub fn sign_zero_retention(
    body: &ZeroRetentionBody,
    person: &ActorId,
    key: &dyn Signer,
    at: Timestamp,
) -> Result<ComplianceSignOff, Error> {
    let signature = key
        .sign(&body.sign_off_message()?)
        .map_err(Error::Signing)?;
    Ok(ComplianceSignOff {
        person: person.clone(),
        public_key: key.verifying_key().to_bytes(),
        signed_at: at,
        signature: signature.to_bytes(),
    })
}

impl ComplianceSignOff {
    /// Whether the signature verifies (strictly) over `body` under the
    /// sign-off's own public key.
    ///
    /// # Errors
    /// [`Error::ZeroRetentionCertificateInvalid`] when it does not.
    pub fn verify(&self, body: &ZeroRetentionBody) -> Result<(), Error> {
        let key = VerifyingKey::from_bytes(&self.public_key)
            .map_err(|_| invalid("compliance key is no ed25519 key"))?;
        key.verify_strict(
            &body.sign_off_message()?,
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| invalid("compliance signature"))
    }
}

impl ZeroRetentionCertificate {
    /// Signs a certificate: `body` with its verified sign-off, by
    /// `issuer`.
    ///
    /// # Errors
    /// As [`ZeroRetentionBody::encode`]; [`Error::ZeroRetentionCertificateInvalid`]
    /// when the sign-off does not verify; [`Error::Signing`].
    pub fn issue(
        body: ZeroRetentionBody,
        sign_off: ComplianceSignOff,
        issuer: &dyn Signer,
        issued_at: Timestamp,
    ) -> Result<Self, Error> {
        sign_off.verify(&body)?;
        let mut certificate = Self {
            body,
            sign_off,
            issuer: issuer.signer_id().clone(),
            issued_at,
            signature: [0; 64],
        };
        let signed = certificate.signed_part()?;
        certificate.signature = issuer
            .sign(&tagged(&signed))
            .map_err(Error::Signing)?
            .to_bytes();
        Ok(certificate)
    }

    /// Everything before the signature.
    fn signed_part(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(2048);
        out.extend_from_slice(ZERO_RETENTION_MAGIC);
        out.push(ZERO_RETENTION_VERSION);
        out.extend_from_slice(&self.body.encode()?);
        self.sign_off.person.encode_prefixed(&mut out);
        out.extend_from_slice(&self.sign_off.public_key);
        put_time(&mut out, self.sign_off.signed_at);
        out.extend_from_slice(&self.sign_off.signature);
        self.issuer.encode_prefixed(&mut out);
        put_time(&mut out, self.issued_at);
        Ok(out)
    }

    /// The certificate's bytes.
    ///
    /// # Errors
    /// As [`ZeroRetentionBody::encode`].
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = self.signed_part()?;
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    /// Decodes a certificate without checking any signature (what
    /// [`verify_zero_retention_certificate`] runs first).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        check_total_len(
            "zero-retention certificate",
            bytes.len(),
            MAX_ZERO_RETENTION_CERTIFICATE_LEN,
        )?;
        let mut reader = Reader::new(bytes);
        reader.magic_and_version(
            "zero-retention certificate",
            ZERO_RETENTION_MAGIC,
            ZERO_RETENTION_VERSION,
        )?;
        let body = ZeroRetentionBody::decode(&mut reader)?;
        let sign_off = ComplianceSignOff {
            person: ActorId::decode_prefixed(&mut reader)?,
            public_key: *reader.array::<32>("compliance key")?,
            signed_at: read_time(&mut reader, "signed off at")?,
            signature: *reader.array::<64>("compliance signature")?,
        };
        let issuer = SignerId::decode_prefixed(&mut reader)?;
        let issued_at = read_time(&mut reader, "issued at")?;
        let signature = *reader.array::<64>("signature")?;
        reader.finish("zero-retention certificate")?;
        Ok(Self {
            body,
            sign_off,
            issuer,
            issued_at,
            signature,
        })
    }

    /// Whether the checkpoint in the certificate verifies under the audit
    /// checkpoint key `audit_key` (held by whoever reads the witness).
    #[must_use]
    pub fn checkpoint_verifies(&self, audit_key: &VerifyingKey) -> bool {
        self.body.checkpoint.verifies(audit_key)
    }
}

fn tagged(signed: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(ZERO_RETENTION_TAG.len() + signed.len());
    message.extend_from_slice(ZERO_RETENTION_TAG);
    message.extend_from_slice(signed);
    message
}

/// Verifies a zero-retention certificate offline: the format (length cap,
/// magic, version, every field, no trailing byte), the issuer's signature
/// under `public_key` (strict ed25519), and the compliance sign-off under
/// the key it names. Needs nothing but the bytes and the key.
///
/// # Errors
/// [`Error::Framing`] and [`Error::Types`] for bytes that are not a
/// certificate; [`Error::ZeroRetentionCertificateInvalid`] naming the
/// broken rule or signature.
pub fn verify_zero_retention_certificate(
    bytes: &[u8],
    public_key: &VerifyingKey,
) -> Result<ZeroRetentionCertificate, Error> {
    let certificate = ZeroRetentionCertificate::decode(bytes)?;
    let signed_len = bytes.len().saturating_sub(64);
    let signed = bytes.get(..signed_len).ok_or(invalid("truncated"))?;
    public_key
        .verify_strict(
            &tagged(signed),
            &Signature::from_bytes(&certificate.signature),
        )
        .map_err(|_| invalid("issuer signature"))?;
    certificate.sign_off.verify(&certificate.body)?;
    // One encoding per certificate: what was signed re-encodes to itself.
    if certificate.encode()? != bytes {
        return Err(invalid("not the canonical encoding"));
    }
    Ok(certificate)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use shardkeep_types::InMemorySigner;

    use super::*;

    fn signer(name: &str, seed: u8) -> InMemorySigner {
        InMemorySigner::from_seed(SignerId::new(name).unwrap(), &[seed; 32])
    }

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_seconds(1_800_000_000 + seconds).unwrap()
    }

    fn index(i: u8) -> ShareIndex {
        ShareIndex::new(i).unwrap()
    }

    /// A body of fixed values (the golden vector's).
    pub(super) fn body(method: ShredMethod) -> ZeroRetentionBody {
        let audit = signer("audit-1", 0x0a);
        let checkpoint = Checkpoint::sign(
            AuditLogId([0x1d; AUDIT_LOG_ID_LEN]),
            &shardkeep_types::AuditHead {
                sequence: 42,
                hash: [0x42; 32],
            },
            at(900),
            &audit,
        )
        .unwrap();
        ZeroRetentionBody {
            deployment: Label::new("prod-eu").unwrap(),
            version: NodeVersion {
                key_id: KeyId::new("key-1").unwrap(),
                node_id: NodeId::new("node-a").unwrap(),
                version: KeyVersion::new(3),
            },
            split_id: [0x11; 32],
            method,
            slots: vec![
                DestroyedSlot {
                    index: index(4),
                    kek_id: KekId::new("kek-4").unwrap(),
                    fingerprint: [0x44; 32],
                    soft_deleted_at: at(100),
                    hard_deleted_at: at(800),
                },
                DestroyedSlot {
                    index: index(5),
                    kek_id: KekId::new("kek-5").unwrap(),
                    fingerprint: [0x55; 32],
                    soft_deleted_at: at(100),
                    hard_deleted_at: at(800),
                },
            ],
            receipts: (1..=3)
                .map(|i| ReceiptEvidence {
                    index: index(i),
                    custodian: CustodianId::new(format!("cust-{i}")).unwrap(),
                    envelope_id: [i; 32],
                    receipt_hash: [0xe0 + i; 32],
                })
                .collect(),
            drill: DrillEvidence {
                started_at: at(10),
                finished_at: at(20),
                shares_used: vec![index(1), index(2), index(3)],
                report_hash: [0xd1; 32],
            },
            request: ApprovalRequestHash([0x22; 32]),
            approvals: vec![
                ApprovalEvidence {
                    approver: ActorId::new("biz-1").unwrap(),
                    role: Role::BusinessOwner,
                    signature: [0xb1; 64],
                },
                ApprovalEvidence {
                    approver: ActorId::new("sec-2").unwrap(),
                    role: Role::Security,
                    signature: [0x52; 64],
                },
            ],
            deletion_records: (40, 41),
            checkpoint,
            drafted_at: at(901),
        }
    }

    pub(super) fn issuer() -> InMemorySigner {
        signer("zero-retention-1", 0x2c)
    }

    pub(super) fn compliance() -> InMemorySigner {
        signer("compliance-key", 0xc0)
    }

    pub(super) fn certificate(method: ShredMethod) -> Vec<u8> {
        let body = body(method);
        let sign_off = sign_zero_retention(
            &body,
            &ActorId::new("comp-1").unwrap(),
            &compliance(),
            at(950),
        )
        .unwrap();
        ZeroRetentionCertificate::issue(body, sign_off, &issuer(), at(960))
            .unwrap()
            .encode()
            .unwrap()
    }

    #[test]
    fn a_certificate_verifies_offline_and_names_its_method() {
        for method in [ShredMethod::HsmDestroy, ShredMethod::FileDelete] {
            let bytes = certificate(method);
            let verified =
                verify_zero_retention_certificate(&bytes, &issuer().verifying_key()).unwrap();
            assert_eq!(verified.body, body(method));
            assert_eq!(verified.body.method, method);
            assert!(verified.checkpoint_verifies(&signer("audit-1", 0x0a).verifying_key()));
            assert!(verified.body.describe().contains(method.name()));
        }
        let described = body(ShredMethod::FileDelete).describe();
        assert!(described.contains("file-delete (not a crypto-shred)"));
    }

    /// Every single changed byte is refused (framing, a field rule or a
    /// signature), and so is every cut and an appended byte.
    #[test]
    fn every_changed_byte_is_refused() {
        let bytes = certificate(ShredMethod::HsmDestroy);
        let key = issuer().verifying_key();
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut changed = bytes.clone();
                changed[at] ^= flip;
                assert!(
                    verify_zero_retention_certificate(&changed, &key).is_err(),
                    "byte {at} ^ {flip:#x} was accepted"
                );
            }
        }
        for len in 0..bytes.len() {
            assert!(verify_zero_retention_certificate(&bytes[..len], &key).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            verify_zero_retention_certificate(&longer, &key),
            Err(Error::Framing(_))
        ));
    }

    #[test]
    fn another_key_or_a_forged_sign_off_is_refused() {
        let bytes = certificate(ShredMethod::HsmDestroy);
        assert!(matches!(
            verify_zero_retention_certificate(&bytes, &compliance().verifying_key()),
            Err(Error::ZeroRetentionCertificateInvalid("issuer signature"))
        ));
        // The issuer re-signs a certificate whose sign-off is another body's.
        let body = body(ShredMethod::HsmDestroy);
        let mut other = body.clone();
        other.drafted_at = at(902);
        let sign_off = sign_zero_retention(
            &other,
            &ActorId::new("comp-1").unwrap(),
            &compliance(),
            at(950),
        )
        .unwrap();
        assert!(matches!(
            ZeroRetentionCertificate::issue(body, sign_off, &issuer(), at(960)),
            Err(Error::ZeroRetentionCertificateInvalid(
                "compliance signature"
            ))
        ));
    }

    #[test]
    fn bodies_that_break_a_rule_are_refused() {
        let mut empty = body(ShredMethod::HsmDestroy);
        empty.slots.clear();
        assert!(matches!(
            empty.encode(),
            Err(Error::ZeroRetentionCertificateInvalid("no slot"))
        ));
        let mut uncovered = body(ShredMethod::HsmDestroy);
        uncovered.deletion_records = (40, 43);
        assert!(uncovered.encode().is_err());
        let mut unordered = body(ShredMethod::HsmDestroy);
        unordered.slots.reverse();
        assert!(unordered.encode().is_err());
    }

    proptest! {
        #[test]
        fn round_trip(
            slot_count in 1usize..6,
            receipt_count in 0usize..6,
            hsm in any::<bool>(),
            fingerprint in any::<[u8; 32]>(),
            soft in 0u64..1_000,
            delay in 0u64..1_000,
            records in (1u64..40, 0u64..2),
        ) {
            let method = if hsm { ShredMethod::HsmDestroy } else { ShredMethod::FileDelete };
            let mut body = body(method);
            body.slots = (0..slot_count)
                .map(|i| DestroyedSlot {
                    index: index(u8::try_from(i * 3 + 1).unwrap()),
                    kek_id: KekId::new(format!("kek-{i}")).unwrap(),
                    fingerprint,
                    soft_deleted_at: at(soft),
                    hard_deleted_at: at(soft + delay),
                })
                .collect();
            body.receipts = (0..receipt_count)
                .map(|i| ReceiptEvidence {
                    index: index(u8::try_from(i * 3 + 2).unwrap()),
                    custodian: CustodianId::new(format!("c-{i}")).unwrap(),
                    envelope_id: fingerprint,
                    receipt_hash: [u8::try_from(i).unwrap(); 32],
                })
                .collect();
            body.deletion_records = (records.0, records.0 + records.1);
            let sign_off = sign_zero_retention(
                &body, &ActorId::new("comp-1").unwrap(), &compliance(), at(950),
            ).unwrap();
            let certificate =
                ZeroRetentionCertificate::issue(body, sign_off, &issuer(), at(960)).unwrap();
            let bytes = certificate.encode().unwrap();
            prop_assert!(bytes.len() <= MAX_ZERO_RETENTION_CERTIFICATE_LEN);
            let verified =
                verify_zero_retention_certificate(&bytes, &issuer().verifying_key()).unwrap();
            prop_assert_eq!(verified, certificate);
        }
    }

    /// The vectors of `tests/data/zero_retention/`, regenerated from fixed
    /// inputs and compared byte for byte; each stored body verifies with
    /// its expected outcome.
    #[test]
    fn golden_vectors() {
        use shardkeep_test_support::{GoldenDir, Vector, data_dir};

        let dir = data_dir(env!("CARGO_MANIFEST_DIR"), "zero_retention");
        let vector = |expect: &str, comment: &str, body: Vec<u8>| {
            Vector::new(expect)
                .comment(comment)
                .header("issuer-id", "zero-retention-1")
                .hex("issuer-seed", [0x2c; 32])
                .hex("issuer-public", issuer().verifying_key().as_bytes())
                .hex("compliance-seed", [0xc0; 32])
                .hex("audit-seed", [0x0a; 32])
                .header(
                    "values",
                    "the fixed body of crates/backup/src/zero_retention.rs",
                )
                .body(body)
        };
        let outcome = |bytes: &[u8]| -> String {
            match verify_zero_retention_certificate(bytes, &issuer().verifying_key()) {
                Ok(_) => "ok".to_owned(),
                Err(Error::ZeroRetentionCertificateInvalid(why)) => format!("invalid {why}"),
                Err(Error::Framing(_)) => "framing".to_owned(),
                Err(other) => format!("error {other}"),
            }
        };
        let hsm = certificate(ShredMethod::HsmDestroy);
        let file = certificate(ShredMethod::FileDelete);
        let mut cases = vec![
            (
                "pass/hsm_destroy",
                "slots 4 and 5, HSM destroy",
                hsm.clone(),
            ),
            (
                "pass/file_delete",
                "slots 4 and 5, local key store: a file delete",
                file,
            ),
        ];
        let mut signature = hsm.clone();
        *signature.last_mut().unwrap() ^= 0x01;
        cases.push((
            "fail/bad_signature",
            "last signature byte changed",
            signature,
        ));
        let mut trailing = hsm.clone();
        trailing.push(0);
        cases.push((
            "fail/trailing_byte",
            "one byte after the signature",
            trailing,
        ));
        let mut method = hsm.clone();
        let method_at = 9 + 8 + 6 + 7 + 4 + 32;
        method[method_at] = 2;
        cases.push((
            "fail/method_changed",
            "hsm-destroy turned into file-delete, not re-signed",
            method,
        ));
        let mut golden = GoldenDir::new(&dir);
        for (name, comment, bytes) in cases {
            let expect = outcome(&bytes);
            golden.add(name, &vector(&expect, comment, bytes));
        }
        golden.finish().unwrap();
        // The stored vectors verify as they say (also when written just now).
        for (name, expected) in [
            ("pass/hsm_destroy", "ok"),
            ("pass/file_delete", "ok"),
            ("fail/bad_signature", "invalid issuer signature"),
            ("fail/trailing_byte", "framing"),
            ("fail/method_changed", "invalid issuer signature"),
        ] {
            let stored = Vector::read(&dir.join(format!("{name}.vec"))).unwrap();
            assert_eq!(stored.expect(), expected, "{name}");
            assert_eq!(outcome(stored.body_bytes()), expected, "{name}");
        }
    }
}
