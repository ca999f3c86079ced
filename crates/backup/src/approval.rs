//! Approvals of sensitive operations: the canonical request an approver
//! reads (`shkp-apq`), the signed approval they answer with (`shkp-apv`),
//! and the approver's side of it ([`sign_approval`]).
//!
//! A request carries every parameter of the operation it authorises, so an
//! approval can never be used for an operation it did not describe. Its
//! hash is `SHA-256("shardkeep/approval-request/v1" || encoding)`; an
//! approval is an ed25519 signature by the approver's registered approval
//! key over `"shardkeep/approval/v1" || request hash || name(approver) ||
//! role`. The approver's tool decodes the request, shows it
//! ([`ApprovalRequest::describe`]) and recomputes the hash itself: it never
//! signs a hash it was handed.

use core::fmt;
use core::fmt::Write as _;

use ed25519_dalek::{SIGNATURE_LENGTH, Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use shardkeep_storage::{ApprovalOperation, ApprovalRequestHash};
use shardkeep_types::{
    ActorId, FreeText, KeyId, KeyVersion, Label, MAX_NAME_LEN, NodeId, NodeVersion, ShareIndex,
    Signer, Timestamp,
};
use shardkeep_wire::{Reader, check_total_len, put_prefixed_u8, put_prefixed_u16};

use crate::error::Error;
use crate::registry::Role;

/// First bytes of an approval request.
pub const APPROVAL_REQUEST_MAGIC: &[u8; 8] = b"shkp-apq";
/// The approval request format version this build writes and reads.
pub const APPROVAL_REQUEST_VERSION: u8 = 1;
/// First bytes of a signed approval.
pub const APPROVAL_MAGIC: &[u8; 8] = b"shkp-apv";
/// The approval format version this build writes and reads.
pub const APPROVAL_VERSION: u8 = 1;
/// Domain tag of the request hash.
pub const APPROVAL_REQUEST_HASH_TAG: &[u8] = b"shardkeep/approval-request/v1";
/// Domain tag of the approver's signature.
pub const APPROVAL_SIGNATURE_TAG: &[u8] = b"shardkeep/approval/v1";

/// Longest target (the node's keystore directory), in bytes.
pub const MAX_APPROVAL_TARGET_LEN: usize = 1024;
/// Longest ticket reference, in bytes.
pub const MAX_APPROVAL_TICKET_LEN: usize = 128;
/// Most slots one delete request names.
pub const MAX_APPROVAL_SLOTS: usize = 255;

/// Longest encoded [`ApprovalRequest`], in bytes (checked before parsing):
/// magic and version, deployment, operation, subject (flag, key, node,
/// version, split id), target, server-shares flag, slots, change hash,
/// requester, ticket, risk-note hash, nonce, two times.
pub const MAX_APPROVAL_REQUEST_LEN: usize = 8
    + 1
    + (1 + MAX_NAME_LEN)
    + 1
    + (1 + (1 + MAX_NAME_LEN) * 2 + 4 + 32)
    + (2 + MAX_APPROVAL_TARGET_LEN)
    + 1
    + (1 + MAX_APPROVAL_SLOTS)
    + (1 + 32)
    + (1 + MAX_NAME_LEN)
    + (1 + MAX_APPROVAL_TICKET_LEN)
    + 32
    + 32
    + 8
    + 8;
/// Longest encoded [`Approval`], in bytes.
pub const MAX_APPROVAL_LEN: usize = 8 + 1 + 32 + 1 + MAX_NAME_LEN + 1 + SIGNATURE_LENGTH;

// Every request this crate makes fits the column storage keeps it in.
const _: () = assert!(MAX_APPROVAL_REQUEST_LEN <= shardkeep_storage::MAX_APPROVAL_REQUEST_LEN);

/// The key version an operation touches and the split it expects there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSubject {
    /// The key version.
    pub version: NodeVersion,
    /// The split id of the version (from its split reference).
    pub split_id: [u8; 32],
}

/// Every parameter of the operation an approval request authorises: what
/// the requester supplies, and what the operation compares field by field
/// when it consumes the approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalParams {
    /// The operation.
    pub operation: ApprovalOperation,
    /// The key version and split (recover, drill, delete); none for policy
    /// and approver-set changes.
    pub subject: Option<ApprovalSubject>,
    /// The node's keystore directory the recovered share is written to
    /// (recover; a drill may name its scratch directory); none otherwise.
    pub target: Option<FreeText<MAX_APPROVAL_TARGET_LEN>>,
    /// Whether the server-held shares may be used (recover, drill only).
    pub allow_server_shares: bool,
    /// The exact share slots to delete, strictly increasing (delete only).
    pub slots: Vec<ShareIndex>,
    /// The hash of the change: the new policy's hash (policy change), the
    /// hash of the approver-set change (approver-set change), the hash of
    /// the schedule a drill request pre-approves
    /// ([`DrillSchedule::hash`](crate::DrillSchedule::hash)),
    /// [`immediate_delete_hash`](crate::immediate_delete_hash) of the
    /// version for an immediate hard delete of an exposed version; none
    /// otherwise.
    pub change_hash: Option<[u8; 32]>,
    /// The change or incident ticket.
    pub ticket: FreeText<MAX_APPROVAL_TICKET_LEN>,
    /// The hash of the written risk note the approvers read.
    pub risk_note_hash: [u8; 32],
}

impl ApprovalParams {
    /// Checks which fields the operation needs and which it must leave
    /// empty: recover, drill and delete name a subject; recover names a
    /// target; delete names at least one slot and nothing of server shares
    /// or targets; policy and approver-set changes name a change hash and
    /// nothing else; slots are strictly increasing.
    ///
    /// # Errors
    /// [`Error::ApprovalParamsInvalid`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        use ApprovalOperation as Op;
        let invalid = |field: &'static str, why: &'static str| {
            Err(Error::ApprovalParamsInvalid {
                operation: self.operation,
                field,
                why,
            })
        };
        let touches_version = matches!(self.operation, Op::Recover | Op::Drill | Op::Delete);
        if touches_version != self.subject.is_some() {
            return invalid("subject", "named for recover, drill, delete only");
        }
        match self.operation {
            Op::Recover if self.target.is_none() => {
                return invalid("target", "a recovery names the keystore directory");
            }
            Op::Delete | Op::PolicyChange | Op::ApproverSetChange if self.target.is_some() => {
                return invalid("target", "only recover and drill name a target");
            }
            _ => {}
        }
        if self.allow_server_shares && !matches!(self.operation, Op::Recover | Op::Drill) {
            return invalid("allow_server_shares", "only recover and drill use shares");
        }
        if (self.operation == Op::Delete) == self.slots.is_empty() {
            return invalid("slots", "a delete names its slots; nothing else does");
        }
        if self.slots.len() > MAX_APPROVAL_SLOTS
            || self.slots.windows(2).any(|pair| pair[0] >= pair[1])
        {
            return invalid("slots", "must be strictly increasing");
        }
        let changes = matches!(self.operation, Op::PolicyChange | Op::ApproverSetChange);
        // A drill's change hash is the hash of the schedule it pre-approves
        // (see `DrillSchedule`); a drill without one is a single drill. A
        // delete's is `immediate_delete_hash` of its version: an immediate
        // hard delete of an exposed version, without cooldown.
        if (changes && self.change_hash.is_none())
            || (!changes
                && !matches!(self.operation, Op::Drill | Op::Delete)
                && self.change_hash.is_some())
        {
            return invalid(
                "change_hash",
                "named for policy and approver-set changes, drill schedules and immediate deletes only",
            );
        }
        Ok(())
    }

    /// The first parameter in which `other` differs from these, in the
    /// order of the encoding, or `None`.
    #[must_use]
    pub fn first_difference(&self, other: &Self) -> Option<&'static str> {
        if self.operation != other.operation {
            return Some("operation");
        }
        match (&self.subject, &other.subject) {
            (Some(a), Some(b)) => {
                if a.version.key_id != b.version.key_id {
                    return Some("key_id");
                }
                if a.version.node_id != b.version.node_id {
                    return Some("node_id");
                }
                if a.version.version != b.version.version {
                    return Some("version");
                }
                if a.split_id != b.split_id {
                    return Some("split_id");
                }
            }
            (None, None) => {}
            _ => return Some("subject"),
        }
        if self.target != other.target {
            Some("target")
        } else if self.allow_server_shares != other.allow_server_shares {
            Some("allow_server_shares")
        } else if self.slots != other.slots {
            Some("slots")
        } else if self.change_hash != other.change_hash {
            Some("change_hash")
        } else if self.ticket != other.ticket {
            Some("ticket")
        } else if self.risk_note_hash != other.risk_note_hash {
            Some("risk_note_hash")
        } else {
            None
        }
    }
}

/// An approval request as approvers read and sign it: the deployment, every
/// parameter of the operation, who asked, and the server's nonce and times.
/// Public data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// The deployment (an approval never crosses deployments).
    pub deployment: Label,
    /// The operation's parameters.
    pub params: ApprovalParams,
    /// Who asked (never an approver of it).
    pub requester: ActorId,
    /// The server's fresh random nonce: no two requests hash alike.
    pub nonce: [u8; 32],
    /// When the server made it.
    pub created_at: Timestamp,
    /// When it lapses (after `created_at`).
    pub expires_at: Timestamp,
}

impl ApprovalRequest {
    /// The canonical encoding (see `docs/formats.md`): magic `shkp-apq`,
    /// version 1, then the fields in order, names and texts
    /// length-prefixed, options flagged, so the encoding is injective.
    ///
    /// # Errors
    /// [`Error::ApprovalParamsInvalid`] (the parameters break the
    /// operation's rules), [`Error::Framing`].
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.params.validate()?;
        if self.expires_at <= self.created_at {
            return Err(Error::ApprovalParamsInvalid {
                operation: self.params.operation,
                field: "expires_at",
                why: "must be after created_at",
            });
        }
        let params = &self.params;
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(APPROVAL_REQUEST_MAGIC);
        out.push(APPROVAL_REQUEST_VERSION);
        self.deployment.encode_prefixed(&mut out);
        out.push(params.operation.code());
        match &params.subject {
            None => out.push(0),
            Some(subject) => {
                out.push(1);
                subject.version.key_id.encode_prefixed(&mut out);
                subject.version.node_id.encode_prefixed(&mut out);
                out.extend_from_slice(&subject.version.version.get().to_be_bytes());
                out.extend_from_slice(&subject.split_id);
            }
        }
        let target = params.target.as_ref().map_or("", FreeText::as_str);
        put_prefixed_u16(
            &mut out,
            "target",
            target.as_bytes(),
            MAX_APPROVAL_TARGET_LEN,
        )?;
        out.push(u8::from(params.allow_server_shares));
        let slots: Vec<u8> = params.slots.iter().map(|index| index.get()).collect();
        put_prefixed_u8(&mut out, "slots", &slots, MAX_APPROVAL_SLOTS)?;
        match &params.change_hash {
            None => out.push(0),
            Some(hash) => {
                out.push(1);
                out.extend_from_slice(hash);
            }
        }
        self.requester.encode_prefixed(&mut out);
        put_prefixed_u8(
            &mut out,
            "ticket",
            params.ticket.as_str().as_bytes(),
            MAX_APPROVAL_TICKET_LEN,
        )?;
        out.extend_from_slice(&params.risk_note_hash);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.created_at.as_unix_millis().to_be_bytes());
        out.extend_from_slice(&self.expires_at.as_unix_millis().to_be_bytes());
        Ok(out)
    }

    /// Decodes [`ApprovalRequest::encode`]'s output, refusing anything
    /// else (what the approver's tool runs first).
    ///
    /// # Errors
    /// [`Error::Framing`] (cap, magic, version, lengths, flags, truncation,
    /// trailing bytes), [`Error::Types`] (a name, text, index or time),
    /// [`Error::ApprovalParamsInvalid`] (the parameters break the
    /// operation's rules).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        check_total_len("approval request", bytes.len(), MAX_APPROVAL_REQUEST_LEN)?;
        let mut reader = Reader::new(bytes);
        reader.magic_and_version(
            "approval request",
            APPROVAL_REQUEST_MAGIC,
            APPROVAL_REQUEST_VERSION,
        )?;
        let deployment = Label::decode_prefixed(&mut reader)?;
        let code = reader.u8("operation")?;
        let operation = ApprovalOperation::from_code(code).ok_or(Error::ApprovalByteInvalid {
            field: "operation",
            byte: code,
        })?;
        let subject = match flag(&mut reader, "subject")? {
            false => None,
            true => {
                let key_id = KeyId::decode_prefixed(&mut reader)?;
                let node_id = NodeId::decode_prefixed(&mut reader)?;
                let version = KeyVersion::new(reader.u32("version")?);
                let split_id = *reader.array::<32>("split_id")?;
                Some(ApprovalSubject {
                    version: NodeVersion {
                        key_id,
                        node_id,
                        version,
                    },
                    split_id,
                })
            }
        };
        let target = reader.prefixed_u16("target", 0, MAX_APPROVAL_TARGET_LEN)?;
        let target = if target.is_empty() {
            None
        } else {
            Some(FreeText::from_utf8(target)?)
        };
        let allow_server_shares = flag(&mut reader, "allow_server_shares")?;
        let slots = reader
            .prefixed_u8("slots", 0, MAX_APPROVAL_SLOTS)?
            .iter()
            .map(|&index| {
                ShareIndex::new(index).ok_or(Error::ApprovalParamsInvalid {
                    operation,
                    field: "slots",
                    why: "share indices are 1 to 255",
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let change_hash = match flag(&mut reader, "change_hash")? {
            false => None,
            true => Some(*reader.array::<32>("change_hash")?),
        };
        let requester = ActorId::decode_prefixed(&mut reader)?;
        let ticket =
            FreeText::from_utf8(reader.prefixed_u8("ticket", 1, MAX_APPROVAL_TICKET_LEN)?)?;
        let risk_note_hash = *reader.array::<32>("risk_note_hash")?;
        let nonce = *reader.array::<32>("nonce")?;
        let created_at = Timestamp::from_unix_millis(reader.u64("created_at")?)?;
        let expires_at = Timestamp::from_unix_millis(reader.u64("expires_at")?)?;
        reader.finish("approval request")?;
        let request = Self {
            deployment,
            params: ApprovalParams {
                operation,
                subject,
                target,
                allow_server_shares,
                slots,
                change_hash,
                ticket,
                risk_note_hash,
            },
            requester,
            nonce,
            created_at,
            expires_at,
        };
        // The same rules as encoding: a request this build would not make
        // is refused, so decode-then-encode gives back the same bytes.
        request.encode()?;
        Ok(request)
    }

    /// The request hash: `SHA-256("shardkeep/approval-request/v1" ||
    /// encoding)`.
    ///
    /// # Errors
    /// As [`ApprovalRequest::encode`].
    pub fn hash(&self) -> Result<ApprovalRequestHash, Error> {
        Ok(request_hash(&self.encode()?))
    }

    /// Every field, readably, for the approver to read before signing.
    #[must_use]
    pub fn describe(&self) -> String {
        let params = &self.params;
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "approval request (shkp-apq v1)");
        let _ = writeln!(out, "  deployment:          {}", self.deployment);
        let _ = writeln!(out, "  operation:           {}", params.operation);
        match &params.subject {
            Some(subject) => {
                let _ = writeln!(out, "  key:                 {}", subject.version.key_id);
                let _ = writeln!(out, "  node:                {}", subject.version.node_id);
                let _ = writeln!(out, "  version:             {}", subject.version.version);
                let _ = writeln!(
                    out,
                    "  split id:            {}",
                    hex::encode(subject.split_id)
                );
            }
            None => {
                let _ = writeln!(out, "  key version:         (none)");
            }
        }
        let _ = writeln!(
            out,
            "  target:              {}",
            params.target.as_ref().map_or("(none)", FreeText::as_str)
        );
        let _ = writeln!(
            out,
            "  server shares:       {}",
            if params.allow_server_shares {
                "may be used"
            } else {
                "not used"
            }
        );
        let slots: Vec<String> = params.slots.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "  slots:               {}",
            if slots.is_empty() {
                "(none)".to_owned()
            } else {
                slots.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "  change hash:         {}",
            params
                .change_hash
                .map_or_else(|| "(none)".to_owned(), hex::encode)
        );
        let _ = writeln!(out, "  requester:           {}", self.requester);
        let _ = writeln!(out, "  ticket:              {}", params.ticket.as_str());
        let _ = writeln!(
            out,
            "  risk note hash:      {}",
            hex::encode(params.risk_note_hash)
        );
        let _ = writeln!(out, "  server nonce:        {}", hex::encode(self.nonce));
        let _ = writeln!(out, "  created:             {}", self.created_at);
        let _ = writeln!(out, "  expires:             {}", self.expires_at);
        if let Ok(hash) = self.hash() {
            let _ = writeln!(out, "  request hash:        {hash}");
        }
        out
    }
}

impl fmt::Display for ApprovalRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A flag byte: 0 or 1, nothing else.
fn flag(reader: &mut Reader<'_>, field: &'static str) -> Result<bool, Error> {
    match reader.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        byte => Err(Error::ApprovalByteInvalid { field, byte }),
    }
}

/// `SHA-256("shardkeep/approval-request/v1" || encoding)`.
#[must_use]
pub fn request_hash(encoding: &[u8]) -> ApprovalRequestHash {
    let mut hasher = Sha256::new();
    hasher.update(APPROVAL_REQUEST_HASH_TAG);
    hasher.update(encoding);
    ApprovalRequestHash(hasher.finalize().into())
}

/// The role's byte in an approval: 1 operator, 2 security, 3 business
/// owner, 4 compliance, 5 custodian, 6 auditor (never renumbered).
#[must_use]
pub fn role_code(role: Role) -> u8 {
    match role {
        Role::Operator => 1,
        Role::Security => 2,
        Role::BusinessOwner => 3,
        Role::Compliance => 4,
        Role::Custodian => 5,
        // `Role` is non-exhaustive; a new role gets the next code here.
        _ => 6,
    }
}

pub(crate) fn role_from_code(code: u8) -> Option<Role> {
    Role::ALL.into_iter().find(|role| role_code(*role) == code)
}

/// One person's signed approval of one request. Public data.
#[derive(Clone, PartialEq, Eq)]
pub struct Approval {
    /// The hash of the request approved.
    pub request_hash: ApprovalRequestHash,
    /// The approving person.
    pub approver: ActorId,
    /// The role they approve in.
    pub role: Role,
    /// Ed25519 by their registered approval key over
    /// [`Approval::signed_message`].
    pub signature: [u8; SIGNATURE_LENGTH],
}

impl fmt::Debug for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approval")
            .field("request_hash", &self.request_hash)
            .field("approver", &self.approver)
            .field("role", &self.role)
            .field("signature", &hex::encode(self.signature))
            .finish()
    }
}

impl Approval {
    /// What the approver signs: `"shardkeep/approval/v1" || request hash
    /// (32) || name(approver) || role (u8)`.
    #[must_use]
    pub fn signed_message(
        request_hash: &ApprovalRequestHash,
        approver: &ActorId,
        role: Role,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(APPROVAL_SIGNATURE_TAG.len() + 32 + 1 + MAX_NAME_LEN + 1);
        out.extend_from_slice(APPROVAL_SIGNATURE_TAG);
        out.extend_from_slice(&request_hash.0);
        approver.encode_prefixed(&mut out);
        out.push(role_code(role));
        out
    }

    /// The canonical encoding: magic `shkp-apv`, version 1, request hash
    /// (32), name(approver), role (u8), signature (64).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_APPROVAL_LEN);
        out.extend_from_slice(APPROVAL_MAGIC);
        out.push(APPROVAL_VERSION);
        out.extend_from_slice(&self.request_hash.0);
        self.approver.encode_prefixed(&mut out);
        out.push(role_code(self.role));
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes [`Approval::encode`]'s output, refusing anything else. The
    /// signature is not checked here ([`Approval::verify`]).
    ///
    /// # Errors
    /// [`Error::Framing`], [`Error::Types`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        check_total_len("approval", bytes.len(), MAX_APPROVAL_LEN)?;
        let mut reader = Reader::new(bytes);
        reader.magic_and_version("approval", APPROVAL_MAGIC, APPROVAL_VERSION)?;
        let request_hash = ApprovalRequestHash(*reader.array::<32>("request_hash")?);
        let approver = ActorId::decode_prefixed(&mut reader)?;
        let code = reader.u8("role")?;
        let role = role_from_code(code).ok_or(Error::ApprovalByteInvalid {
            field: "role",
            byte: code,
        })?;
        let signature = *reader.array::<SIGNATURE_LENGTH>("signature")?;
        reader.finish("approval")?;
        Ok(Self {
            request_hash,
            approver,
            role,
            signature,
        })
    }

    /// Checks the signature with `key` (ed25519 `verify_strict`).
    ///
    /// # Errors
    /// [`Error::ApprovalSignatureInvalid`] naming the approver.
    pub fn verify(&self, key: &[u8; 32]) -> Result<(), Error> {
        let refused = || Error::ApprovalSignatureInvalid(self.approver.clone());
        let key = VerifyingKey::from_bytes(key).map_err(|_| refused())?;
        let message = Self::signed_message(&self.request_hash, &self.approver, self.role);
        key.verify_strict(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| refused())
    }
}

/// The approver's tool: decodes `request_bytes` (refusing anything but a
/// canonical request), recomputes its hash and signs an approval of it as
/// `approver` in `role` with `signer` (the approver's approval key). It
/// takes the request, never a hash: what is signed is what was shown.
///
/// # Errors
/// As [`ApprovalRequest::decode`]; [`Error::Signing`] when the signer
/// fails.
pub fn sign_approval(
    request_bytes: &[u8],
    approver: &ActorId,
    role: Role,
    signer: &dyn Signer,
) -> Result<Approval, Error> {
    let request = ApprovalRequest::decode(request_bytes)?;
    let request_hash = request_hash(&request.encode()?);
    let message = Approval::signed_message(&request_hash, approver, role);
    let signature = signer.sign(&message).map_err(Error::Signing)?.to_bytes();
    Ok(Approval {
        request_hash,
        approver: approver.clone(),
        role,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use shardkeep_types::{InMemorySigner, SignerId};

    use super::*;

    /// Changes one parameter.
    type ParamsEdit = fn(&mut ApprovalParams);

    fn delete_request() -> ApprovalRequest {
        ApprovalRequest {
            deployment: Label::new("prod-eu").unwrap(),
            params: ApprovalParams {
                operation: ApprovalOperation::Delete,
                subject: Some(ApprovalSubject {
                    version: NodeVersion {
                        key_id: KeyId::new("key-1").unwrap(),
                        node_id: NodeId::new("node-a").unwrap(),
                        version: KeyVersion::new(3),
                    },
                    split_id: [0x11; 32],
                }),
                target: None,
                allow_server_shares: false,
                slots: vec![ShareIndex::new(1).unwrap(), ShareIndex::new(4).unwrap()],
                change_hash: None,
                ticket: FreeText::new("CHG-42").unwrap(),
                risk_note_hash: [0x22; 32],
            },
            requester: ActorId::new("ops.carol").unwrap(),
            nonce: [0x33; 32],
            created_at: Timestamp::from_unix_millis(1_800_000_000_000).unwrap(),
            expires_at: Timestamp::from_unix_millis(1_800_086_400_000).unwrap(),
        }
    }

    fn recover_request() -> ApprovalRequest {
        let mut request = delete_request();
        request.params.operation = ApprovalOperation::Recover;
        request.params.slots = Vec::new();
        request.params.target = Some(FreeText::new("/var/lib/mpc/node-a").unwrap());
        request.params.allow_server_shares = true;
        request
    }

    fn policy_request() -> ApprovalRequest {
        let mut request = delete_request();
        request.params.operation = ApprovalOperation::PolicyChange;
        request.params.subject = None;
        request.params.slots = Vec::new();
        request.params.change_hash = Some([0x44; 32]);
        request
    }

    fn signer() -> InMemorySigner {
        InMemorySigner::from_seed(SignerId::new("sec-bob-approval").unwrap(), &[9; 32])
    }

    /// The encodings are pinned: a change to either format fails here.
    #[test]
    fn golden_encodings() {
        assert_eq!(
            hex::encode(delete_request().encode().unwrap()),
            concat!(
                "73686b702d61707101",
                "0770726f642d6575",
                "03",
                "01",
                "056b65792d31",
                "066e6f64652d61",
                "00000003",
                "1111111111111111111111111111111111111111111111111111111111111111",
                "0000",
                "00",
                "020104",
                "00",
                "096f70732e6361726f6c",
                "064348472d3432",
                "2222222222222222222222222222222222222222222222222222222222222222",
                "3333333333333333333333333333333333333333333333333333333333333333",
                "000001a3185c5000",
                "000001a31d82ac00",
            )
        );
        assert_eq!(
            hex::encode(policy_request().encode().unwrap()),
            concat!(
                "73686b702d61707101",
                "0770726f642d6575",
                "04",
                "00",
                "0000",
                "00",
                "00",
                "01",
                "4444444444444444444444444444444444444444444444444444444444444444",
                "096f70732e6361726f6c",
                "064348472d3432",
                "2222222222222222222222222222222222222222222222222222222222222222",
                "3333333333333333333333333333333333333333333333333333333333333333",
                "000001a3185c5000",
                "000001a31d82ac00",
            )
        );
        let recover = recover_request().encode().unwrap();
        assert_eq!(
            hex::encode(
                &recover
                    [9 + 8 + 1 + 1 + 6 + 7 + 4 + 32..9 + 8 + 1 + 1 + 6 + 7 + 4 + 32 + 2 + 19 + 2]
            ),
            concat!("0013", "2f7661722f6c69622f6d70632f6e6f64652d61", "01", "00"),
        );
        let bytes = delete_request().encode().unwrap();
        let approval = sign_approval(
            &bytes,
            &ActorId::new("sec.bob").unwrap(),
            Role::Security,
            &signer(),
        )
        .unwrap();
        let encoded = approval.encode();
        assert_eq!(hex::encode(&encoded[..9]), "73686b702d61707601");
        assert_eq!(&encoded[9..41], &request_hash(&bytes).0);
        assert_eq!(hex::encode(&encoded[41..50]), "077365632e626f6202");
        assert_eq!(encoded.len(), 50 + SIGNATURE_LENGTH);
        // The hash is tagged: pinned against an independent computation.
        let mut tagged = b"shardkeep/approval-request/v1".to_vec();
        tagged.extend_from_slice(&bytes);
        assert_eq!(
            request_hash(&bytes).0,
            <[u8; 32]>::from(Sha256::digest(&tagged))
        );
    }

    #[test]
    fn caps_are_the_documented_ones() {
        assert_eq!(MAX_APPROVAL_REQUEST_LEN, 1832);
        assert_eq!(MAX_APPROVAL_LEN, 171);
    }

    #[test]
    fn requests_and_approvals_round_trip() {
        for request in [delete_request(), recover_request(), policy_request()] {
            let bytes = request.encode().unwrap();
            assert_eq!(ApprovalRequest::decode(&bytes).unwrap(), request);
        }
        let approval = sign_approval(
            &delete_request().encode().unwrap(),
            &ActorId::new("sec.bob").unwrap(),
            Role::Security,
            &signer(),
        )
        .unwrap();
        assert_eq!(Approval::decode(&approval.encode()).unwrap(), approval);
        approval
            .verify(signer().verifying_key().as_bytes())
            .unwrap();
    }

    #[test]
    fn decoding_refuses_anything_but_the_canonical_encoding() {
        let bytes = delete_request().encode().unwrap();
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(ApprovalRequest::decode(&trailing).is_err());
        for cut in 0..bytes.len() {
            assert!(ApprovalRequest::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let offset_operation = 9 + 8;
        for (offset, value) in [
            (0, b'x'),                 // magic
            (8, 2),                    // version
            (offset_operation, 0),     // unknown operation
            (offset_operation, 6),     // unknown operation
            (offset_operation + 1, 2), // subject flag
        ] {
            let mut bad = bytes.clone();
            bad[offset] = value;
            assert!(ApprovalRequest::decode(&bad).is_err(), "offset {offset}");
        }
        // Slots out of order, and the server-shares flag out of range.
        let slots_at = 9 + 8 + 1 + 1 + 6 + 7 + 4 + 32 + 2 + 1;
        let mut unordered = bytes.clone();
        unordered[slots_at + 1] = 4;
        unordered[slots_at + 2] = 1;
        assert!(matches!(
            ApprovalRequest::decode(&unordered),
            Err(Error::ApprovalParamsInvalid { field: "slots", .. })
        ));
        let mut flag = bytes.clone();
        flag[slots_at - 1] = 2;
        assert!(ApprovalRequest::decode(&flag).is_err());
        // A well-formed request the operation's rules refuse.
        let mut with_shares = bytes.clone();
        with_shares[slots_at - 1] = 1;
        assert!(matches!(
            ApprovalRequest::decode(&with_shares),
            Err(Error::ApprovalParamsInvalid {
                field: "allow_server_shares",
                ..
            })
        ));
        let approval = sign_approval(
            &bytes,
            &ActorId::new("sec.bob").unwrap(),
            Role::Security,
            &signer(),
        )
        .unwrap()
        .encode();
        let mut role = approval.clone();
        role[49] = 7;
        assert!(Approval::decode(&role).is_err());
        let mut long = approval.clone();
        long.push(0);
        assert!(Approval::decode(&long).is_err());
        assert!(Approval::decode(&approval[..approval.len() - 1]).is_err());
    }

    #[test]
    fn each_operation_names_only_its_fields() {
        let cases: [(ApprovalRequest, ParamsEdit, &str); 8] = [
            (delete_request(), |p| p.subject = None, "subject"),
            (delete_request(), |p| p.slots.clear(), "slots"),
            (
                delete_request(),
                |p| p.target = Some(FreeText::new("/x").unwrap()),
                "target",
            ),
            (recover_request(), |p| p.target = None, "target"),
            (
                recover_request(),
                |p| p.slots = vec![ShareIndex::new(1).unwrap()],
                "slots",
            ),
            (policy_request(), |p| p.change_hash = None, "change_hash"),
            (
                recover_request(),
                |p| p.change_hash = Some([1; 32]),
                "change_hash",
            ),
            (
                policy_request(),
                |p| p.allow_server_shares = true,
                "allow_server_shares",
            ),
        ];
        for (mut request, edit, expected) in cases {
            edit(&mut request.params);
            assert!(
                matches!(
                    request.encode(),
                    Err(Error::ApprovalParamsInvalid { field, .. }) if field == expected
                ),
                "{expected}"
            );
        }
        let mut backwards = delete_request();
        backwards.expires_at = backwards.created_at;
        assert!(backwards.encode().is_err());
        // A drill may name a change hash: the schedule it pre-approves.
        let mut schedule = recover_request();
        schedule.params.operation = ApprovalOperation::Drill;
        schedule.params.target = None;
        schedule.params.allow_server_shares = false;
        schedule.params.change_hash = Some([1; 32]);
        let bytes = schedule.encode().unwrap();
        assert_eq!(ApprovalRequest::decode(&bytes).unwrap(), schedule);
    }

    /// The consuming operation compares every parameter: each one changed
    /// in turn is named.
    #[test]
    fn every_parameter_is_compared() {
        let base = recover_request().params;
        let edits: [(ParamsEdit, &str); 11] = [
            (|p| p.operation = ApprovalOperation::Drill, "operation"),
            (|p| p.subject = None, "subject"),
            (
                |p| p.subject.as_mut().unwrap().version.key_id = KeyId::new("key-2").unwrap(),
                "key_id",
            ),
            (
                |p| p.subject.as_mut().unwrap().version.node_id = NodeId::new("node-b").unwrap(),
                "node_id",
            ),
            (
                |p| p.subject.as_mut().unwrap().version.version = KeyVersion::new(4),
                "version",
            ),
            (
                |p| p.subject.as_mut().unwrap().split_id = [0; 32],
                "split_id",
            ),
            (
                |p| p.target = Some(FreeText::new("/tmp/elsewhere").unwrap()),
                "target",
            ),
            (|p| p.allow_server_shares = false, "allow_server_shares"),
            (|p| p.slots = vec![ShareIndex::new(2).unwrap()], "slots"),
            (|p| p.change_hash = Some([1; 32]), "change_hash"),
            (|p| p.risk_note_hash = [0; 32], "risk_note_hash"),
        ];
        assert_eq!(base.first_difference(&base), None);
        for (edit, expected) in edits {
            let mut other = base.clone();
            edit(&mut other);
            assert_eq!(base.first_difference(&other), Some(expected));
        }
        let mut ticket = base.clone();
        ticket.ticket = FreeText::new("CHG-43").unwrap();
        assert_eq!(base.first_difference(&ticket), Some("ticket"));
    }

    #[test]
    fn the_signature_covers_hash_approver_and_role() {
        let bytes = delete_request().encode().unwrap();
        let key = *signer().verifying_key().as_bytes();
        let approval = sign_approval(
            &bytes,
            &ActorId::new("sec.bob").unwrap(),
            Role::Security,
            &signer(),
        )
        .unwrap();
        approval.verify(&key).unwrap();
        let mut other_role = approval.clone();
        other_role.role = Role::BusinessOwner;
        let mut other_person = approval.clone();
        other_person.approver = ActorId::new("sec.eve").unwrap();
        let mut other_request = approval.clone();
        other_request.request_hash = request_hash(&policy_request().encode().unwrap());
        for forged in [other_role, other_person, other_request] {
            assert!(matches!(
                forged.verify(&key),
                Err(Error::ApprovalSignatureInvalid(_))
            ));
        }
        // The tool signs only what decodes: never a bare hash.
        assert!(
            sign_approval(
                &approval.request_hash.0,
                &approval.approver,
                Role::Security,
                &signer()
            )
            .is_err()
        );
    }

    #[test]
    fn describe_shows_every_field() {
        let text = recover_request().describe();
        for needle in [
            "prod-eu",
            "recover",
            "key-1",
            "node-a",
            "v3",
            &hex::encode([0x11; 32]),
            "/var/lib/mpc/node-a",
            "may be used",
            "ops.carol",
            "CHG-42",
            &hex::encode([0x22; 32]),
            &hex::encode([0x33; 32]),
            &recover_request().hash().unwrap().to_string(),
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
