//! The one error type of this crate.
//!
//! Every refusal of the procedure has its own variant, so callers (the gRPC
//! service, the CLI, tests) can tell them apart; lower crates' errors are
//! wrapped with their source. Messages name ids, indices and settings, never
//! key material, shares or passphrases.
//!
//! At a service boundary, decryption and signature failures must collapse to
//! one opaque status for the caller (the detail goes to the audit record):
//! [`Error::is_opaque_to_caller`] says which.

use shardkeep_types::{
    ActorId, CustodianId, CustodyError, FramingError, KekId, KeyId, Label, NodeId, NodeVersion,
    ShareIndex, ShareSlot, ThresholdError, Timestamp,
};

use shardkeep_storage::{ApprovalOperation, ApprovalRequestHash, RecoverySessionId};

use crate::access::RateKind;
use crate::registry::Role;

/// Why an operation of the backup service was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration setting cannot work.
    #[error("invalid configuration: {setting} {why}")]
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The policy would let the server alone recover a node.
    #[error(
        "policy refused: the server would hold {server} shares but t is {t}; the server must hold fewer than t"
    )]
    PolicyServerShares {
        /// Server shares asked for.
        server: u8,
        /// The threshold.
        t: u8,
    },
    /// The policy would not let the external custodians alone recover a
    /// node (a drill from external shares could never pass).
    #[error(
        "policy refused: external custodians would hold {external} shares but t is {t}; they must hold at least t"
    )]
    PolicyExternalShares {
        /// External shares.
        external: u8,
        /// The threshold.
        t: u8,
    },
    /// A policy is in force: changing it needs approvals
    /// ([`BackupService::set_policy_approved`](crate::BackupService::set_policy_approved)).
    #[error(
        "policy refused: policy {} is in force; a change needs an approved policy-change request",
        hex::encode(current)
    )]
    PolicyChangeNeedsApproval {
        /// The hash of the policy in force.
        current: [u8; 32],
    },
    /// The exposure rule: with the server's shares, one custodian entity
    /// could rebuild more nodes' shares of a group key than its tss-lib
    /// threshold allows.
    #[error(
        "exposure rule: custodian {custodian} with the server's shares could rebuild {nodes} nodes' shares of group key {key_id}, more than its tss-lib threshold {allowed}; give some nodes disjoint custodian sets, or delete the server shares of some nodes (zero retention)"
    )]
    Exposure {
        /// The group key.
        key_id: KeyId,
        /// The custodian entity.
        custodian: CustodianId,
        /// Nodes it could rebuild with the server.
        nodes: usize,
        /// The group's tss-lib threshold (polynomial degree).
        allowed: u16,
    },
    /// The person is not registered.
    #[error("{0} is not a registered person")]
    UnknownPerson(ActorId),
    /// The person was revoked: nothing they sign or ask for counts any more.
    #[error("{0} has been revoked")]
    PersonRevoked(ActorId),
    /// The person does not hold the role the operation needs.
    #[error("{person} does not hold the role {role}")]
    MissingRole {
        /// Who.
        person: ActorId,
        /// The role needed.
        role: Role,
    },
    // ----- policy (set_policy, generate) -----
    /// No policy has been set yet: nothing can be generated.
    #[error(
        "no backup policy is set: a security person must set one (set_policy) before anything is generated"
    )]
    NoPolicy,
    /// The stored policy does not hash to the hash stored with it: the row
    /// was altered or corrupted.
    #[error(
        "the stored policy {} does not match its hash: the database row was altered or corrupted; set the policy again and investigate",
        hex::encode(.hash)
    )]
    PolicyCorrupt {
        /// The hash stored with it.
        hash: [u8; 32],
    },
    /// The policy has more shares than one transaction can audit (one
    /// `generate` record per share, committed with the shares).
    #[error(
        "policy refused: {n} shares per node, but one generate can audit at most {max}; choose a smaller n"
    )]
    PolicyTooManyShares {
        /// Shares per node asked for.
        n: u8,
        /// The most one generate can record.
        max: usize,
    },

    // ----- registry -----
    /// The registry is empty and the first person is not registering
    /// themselves: the first registration is the bootstrap of one security
    /// person, by that person.
    #[error(
        "the registry is empty: the first person must register themselves (actor {actor} registered {person})"
    )]
    BootstrapNotSelf {
        /// Who asked.
        actor: ActorId,
        /// Whom they tried to register.
        person: ActorId,
    },
    /// The first person registered must hold the security role: only a
    /// security person registers others.
    #[error(
        "the registry is empty: the first person ({0}) must hold the security role, or nobody could register anyone else"
    )]
    BootstrapWithoutSecurity(ActorId),
    /// A person with this id is already registered.
    #[error("{0} is already registered; rotate their keys or change their roles instead")]
    PersonExists(ActorId),
    /// A key or identity is (or was) registered to another person.
    #[error(
        "the {kind} is (or was) registered to another person: every person needs keys of their own"
    )]
    KeyInUse {
        /// Which key.
        kind: &'static str,
    },
    /// A key the person held in an earlier key epoch, rotated out since:
    /// it never comes back.
    #[error(
        "the {kind} was rotated out of this person's keys: a retired key is never registered again; generate a new one"
    )]
    KeyRetired {
        /// Which key.
        kind: &'static str,
    },
    /// An ed25519 public key is weak, of mixed order or non-canonically
    /// encoded: no honest key generator makes it.
    #[error("{person}'s {key} is a weak or non-canonical ed25519 key; generate a new key pair")]
    WeakKey {
        /// Whose key.
        person: ActorId,
        /// Which key.
        key: &'static str,
    },
    /// One ed25519 key is given for two purposes (receipts and approvals).
    #[error(
        "{0} uses one key as both receipt key and approval key; each purpose needs its own key"
    )]
    KeyReused(ActorId),
    /// The age recipient does not parse as an X25519 age recipient, or is
    /// not in its canonical (lower-case bech32) form.
    #[error(
        "{person}'s age recipient is not a canonical X25519 age recipient (age1..., lower case, as age-keygen prints it)"
    )]
    InvalidAgeRecipient {
        /// Whose recipient.
        person: ActorId,
    },
    /// No custodian entity with this id is registered.
    #[error("custodian entity {0} is not registered")]
    UnknownEntity(CustodianId),
    /// A custodian entity with this id is already registered.
    #[error("custodian entity {0} is already registered")]
    EntityExists(CustodianId),
    /// The custodian entity was revoked: it receives no share and its
    /// receipts no longer count.
    #[error("custodian entity {0} has been revoked")]
    EntityRevoked(CustodianId),
    /// An entity lists no member, too many, or one person twice.
    #[error("custodian entity {entity}: {why}")]
    InvalidMembers {
        /// The entity.
        entity: CustodianId,
        /// What is wrong.
        why: &'static str,
    },
    /// The person already acts for another active custodian entity: one
    /// person acts for at most one entity, so distinct entities are
    /// distinct people.
    #[error(
        "{person} already acts for custodian entity {entity}; revoke that entity first or register another person"
    )]
    PersonInOtherEntity {
        /// The person.
        person: ActorId,
        /// The entity they act for.
        entity: CustodianId,
    },
    /// A security person tried to change their own roles: role changes
    /// need a second person.
    #[error("{0} cannot change their own roles; another security person must do it")]
    OwnRolesChange(ActorId),
    /// The change would leave no active security person, and nobody could
    /// register, revoke or set policy any more.
    #[error("{0} is the last active security person; register another security person first")]
    LastSecurityPerson(ActorId),

    // ----- generate -----
    /// The group key is registered with other parameters than the ones
    /// given (or found in the save data).
    #[error(
        "group key {key_id} is registered with another {field}; check the node's save data and the tss-lib parameters"
    )]
    GroupMismatch {
        /// The group key.
        key_id: KeyId,
        /// Which parameter differs.
        field: &'static str,
    },
    /// The tss-lib parameters given for the group do not fit.
    #[error(
        "group key {key_id}: tss-lib degree {tss_degree} with {parties} parties is not a threshold group (1 <= degree < parties), or the save data has {save_data_parties} parties"
    )]
    InvalidGroup {
        /// The group key.
        key_id: KeyId,
        /// The degree given.
        tss_degree: u16,
        /// The party count given.
        parties: u16,
        /// The party count of the save data.
        save_data_parties: usize,
    },
    /// The node's share does not match its own public share: `Xi·G` is not
    /// `BigXj[self]` in the save data.
    #[error(
        "the save data of node {0} is inconsistent: Xi·G is not its own public share BigXj[self]; do not back it up"
    )]
    PublicShareMismatch(NodeId),
    /// The node already has an active key version (rotation replaces it).
    #[error("{0} is already backed up and active; rotate it instead of generating again")]
    ActiveVersionExists(NodeVersion),
    /// The number of external custodians given is not the policy's.
    #[error("the policy sends {expected} shares to external custodians, but {got} were named")]
    CustodianCount {
        /// External shares under the policy.
        expected: u8,
        /// Custodians named.
        got: usize,
    },
    /// A custodian entity is named for two shares of one node.
    #[error(
        "custodian entity {0} is named twice: every external share of a node goes to a distinct entity"
    )]
    DuplicateCustodian(CustodianId),
    /// A person is named for two shares of one node.
    #[error("{0} is named for two shares of one node: custodians must be distinct persons")]
    DuplicateCustodianPerson(ActorId),
    /// The person does not act for the custodian entity.
    #[error("{person} does not act for custodian entity {entity}")]
    NotEntityMember {
        /// The person.
        person: ActorId,
        /// The entity.
        entity: CustodianId,
    },
    /// The person has no registered key of a kind the operation needs.
    #[error("{person} has no registered {key}; rotate their keys to add one")]
    MissingPersonKey {
        /// The person.
        person: ActorId,
        /// Which key.
        key: &'static str,
    },
    /// Generate failed after creating slot KEKs, and some of them could not
    /// be destroyed again.
    #[error(
        "generate failed ({source}) and {} slot KEK(s) it created could not be destroyed: {}; destroy them by hand",
        undestroyed.len(),
        undestroyed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    KekCleanup {
        /// Why generate failed.
        #[source]
        source: Box<Error>,
        /// The KEKs still in the provider.
        undestroyed: Vec<KekId>,
    },
    /// A stored split reference fails its check: the signed binding does not
    /// verify, or the row's columns or commitments disagree with it.
    #[error(
        "the stored split reference of {version} fails its check ({why}): the database row was altered or corrupted; do not use this version until it is investigated"
    )]
    SplitReferenceInvalid {
        /// The key version.
        version: NodeVersion,
        /// What failed.
        why: &'static str,
    },
    /// An envelope is not one of the stored split's envelopes.
    #[error("the envelope for {slot} is not of the split stored for its version ({why})")]
    EnvelopeNotOfSplit {
        /// The slot it claims.
        slot: ShareSlot,
        /// What differs.
        why: &'static str,
    },

    // ----- deliver / confirm -----
    /// The slot has no custody entry: it is not an external share of a
    /// stored version.
    #[error("{0} is not an external share slot with a custodian")]
    NotExternalSlot(ShareSlot),
    /// The key version is not active.
    #[error("{0} is not active")]
    VersionNotActive(NodeVersion),
    /// The container reported delivered is not the one generated for the
    /// slot.
    #[error(
        "the container delivered for {0} is not the one generated for it (container hash differs)"
    )]
    ContainerMismatch(ShareSlot),
    /// The receipt names another custodian than the slot's.
    #[error(
        "the receipt for {slot} names custodian {named}, but the slot's custodian is {expected}"
    )]
    ReceiptWrongCustodian {
        /// The slot.
        slot: ShareSlot,
        /// The slot's custodian entity.
        expected: CustodianId,
        /// The custodian the receipt names.
        named: CustodianId,
    },
    /// The receipt's signature does not verify under the registered receipt
    /// key of the slot's custodian person.
    #[error("the receipt for {0} is not signed by the registered receipt key of its custodian")]
    ReceiptSignature(ShareSlot),
    /// The receipt is about another envelope than the one delivered to the
    /// slot.
    #[error("the receipt for {0} is about another envelope than the one delivered to the slot")]
    ReceiptWrongEnvelope(ShareSlot),
    /// The slot already has a confirmed receipt.
    #[error("{0} is already confirmed")]
    AlreadyConfirmed(ShareSlot),
    /// The actor is neither an operator nor the slot's custodian person.
    #[error("{actor} may not submit the receipt for {slot}: only an operator or its custodian may")]
    NotSlotCustodian {
        /// Who asked.
        actor: ActorId,
        /// The slot.
        slot: ShareSlot,
    },
    /// A stored receipt does not verify under any receipt key its person
    /// had when it was accepted: the row was altered.
    #[error(
        "the stored receipt of {0} does not verify under its custodian's key history: the database row was altered or corrupted; investigate"
    )]
    StoredReceiptInvalid(ShareSlot),
    /// Not every external share of the version is confirmed yet.
    #[error(
        "{version} has no delivery certificate yet: external share(s) {} are not confirmed",
        missing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    DeliveryIncomplete {
        /// The key version.
        version: NodeVersion,
        /// The external indices without a "received" receipt.
        missing: Vec<ShareIndex>,
    },
    /// Bytes that are not a well-framed value of one of this crate's formats.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// An invalid name, time or free text.
    #[error(transparent)]
    Types(#[from] shardkeep_types::Error),
    /// An invalid threshold or share index.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// The storage backend refused or failed.
    #[error("storage: {0}")]
    Storage(#[source] shardkeep_storage::Error),
    /// An envelope, container or receipt was refused.
    #[error("envelope: {0}")]
    Envelope(#[source] shardkeep_envelope::Error),
    /// The node's save data, archive or keystore was refused.
    #[error("keystore: {0}")]
    Keydata(#[source] shardkeep_keydata::Error),
    /// Secret sharing refused (a share, commitments, a proof).
    #[error("secret sharing: {0}")]
    Sharing(#[source] shardkeep_sss_core::Error),
    /// The KEK provider refused or failed.
    #[error("key custody: {0}")]
    Kms(#[source] shardkeep_kms::Error),
    /// The audit log refused or failed.
    #[error("audit: {0}")]
    Audit(#[source] shardkeep_audit::Error),

    // ----- status, listing, inventory, rate limits (inspect) -----
    /// A page token this service did not issue, or issued for another
    /// query.
    #[error("bad page token ({why}); ask for the first page again, without a token")]
    BadPageToken {
        /// What is wrong with it.
        why: &'static str,
    },
    /// One person made more calls of one kind in the current window than
    /// the configured limit allows. Recorded as an anomaly.
    #[error(
        "rate limited: {person} made {count} {kind} calls in the current window (limit {limit}); wait until {retry_at}, and have security review the anomaly if this was not expected"
    )]
    RateLimited {
        /// Who.
        person: ActorId,
        /// Which kind of call.
        kind: RateKind,
        /// Calls counted in the window, this one included.
        count: u32,
        /// The limit per window.
        limit: u32,
        /// When the next window starts.
        retry_at: Timestamp,
    },
    /// The slot has no custodian to challenge: it is server-held, or not
    /// mapped.
    #[error(
        "{0} is not an external share in custody; check the slot (server-held slots are listed, not challenged)"
    )]
    NotInCustody(ShareSlot),
    /// No inventory challenge has this nonce.
    #[error("no inventory challenge with nonce {}; issue a new challenge", hex::encode(.nonce))]
    ChallengeNotFound {
        /// The nonce.
        nonce: [u8; 32],
    },
    /// The challenge was already answered (or refused): each is single use.
    #[error("inventory challenge {} was already used; issue a new challenge", hex::encode(.nonce))]
    ChallengeConsumed {
        /// The nonce.
        nonce: [u8; 32],
    },
    /// The challenge lapsed before it was answered.
    #[error(
        "the inventory challenge expired at {expired_at}; issue a new challenge and answer it sooner"
    )]
    ChallengeExpired {
        /// When it lapsed.
        expired_at: Timestamp,
    },
    /// A proof repeats the challenge with a field that differs from the
    /// challenge as issued (or the custodian's envelope is for another
    /// slot than the challenge names).
    #[error(
        "the inventory proof does not match its challenge: {field} differs; answer the challenge as issued"
    )]
    ChallengeMismatch {
        /// The field that differs.
        field: &'static str,
    },
    /// A custodian was handed a challenge addressed to another entity.
    #[error(
        "this challenge is for custodian {challenge}, not {custodian}; return it to the operator"
    )]
    ChallengeForOtherCustodian {
        /// The entity the challenge names.
        challenge: CustodianId,
        /// The entity asked to answer.
        custodian: CustodianId,
    },
    /// The person has no registered receipt-signing key, so nothing they
    /// sign can be checked.
    #[error(
        "{0} has no registered receipt key; register one before they sign receipts or inventory proofs"
    )]
    NoReceiptKey(ActorId),
    /// The person does not act for the custodian entity.
    #[error("{person} does not act for custodian {custodian}")]
    NotCustodianMember {
        /// Who.
        person: ActorId,
        /// The entity.
        custodian: CustodianId,
    },
    /// The custodian entity was revoked.
    #[error("custodian {0} has been revoked; move its shares to another custodian")]
    CustodianRevoked(CustodianId),
    /// The proof is signed by a member of the entity other than the person
    /// the slot's container was sealed to.
    #[error(
        "{slot} was sealed to {expected}, but the inventory proof is from {got}; the person who holds the container must answer"
    )]
    InventoryWrongPerson {
        /// The slot.
        slot: ShareSlot,
        /// The person in the custody map.
        expected: ActorId,
        /// The person who signed.
        got: ActorId,
    },
    /// The proof's signature does not verify under the person's
    /// registered receipt key.
    #[error(
        "the inventory proof's signature does not verify under {person}'s registered receipt key"
    )]
    InventorySignatureInvalid {
        /// The person the proof names.
        person: ActorId,
    },
    /// The proof is about another envelope than the one delivered for the
    /// slot (or the custodian's container holds another envelope).
    #[error(
        "the inventory proof for {slot} names another envelope than the one delivered; check which container the custodian opened"
    )]
    InventoryEnvelopeMismatch {
        /// The slot.
        slot: ShareSlot,
    },
    /// The proof was made from another container than the one delivered.
    #[error(
        "the inventory proof for {slot} was made from another container than the one delivered; the custodian must keep the container file exactly as delivered"
    )]
    InventoryContainerMismatch {
        /// The slot.
        slot: ShareSlot,
    },
    /// The proof of possession does not verify against the stored
    /// commitments for this challenge.
    #[error("the proof of possession for {slot} does not verify against the stored commitments")]
    PossessionProofRejected {
        /// The slot.
        slot: ShareSlot,
        /// Why.
        #[source]
        source: shardkeep_sss_core::Error,
    },
    /// The split reference stored for a version does not hold together
    /// (its commitments do not decode on its curve, or do not hash to its
    /// split id): nothing can be checked against it.
    #[error(
        "the stored split reference of {0} is inconsistent; the database may be damaged: restore it from backup and investigate"
    )]
    InconsistentSplitReference(NodeVersion),
    /// A signer failed.
    #[error("signing failed: {0}")]
    Signing(#[source] CustodyError),

    // ----- approvals -----
    /// The parameters of an approval request break its operation's rules.
    #[error("approval request for {operation}: {field} {why}")]
    ApprovalParamsInvalid {
        /// The operation.
        operation: ApprovalOperation,
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        why: &'static str,
    },
    /// An enum or flag byte of an approval encoding is not a known value.
    #[error("approval encoding: {field} byte {byte} is not a known value")]
    ApprovalByteInvalid {
        /// The field.
        field: &'static str,
        /// The byte found.
        byte: u8,
    },
    /// No approval request with this hash.
    #[error("no approval request {0}")]
    ApprovalRequestUnknown(ApprovalRequestHash),
    /// The stored request does not hash to its name.
    #[error("stored approval request {0} does not match its hash")]
    ApprovalRequestCorrupt(ApprovalRequestHash),
    /// The approvals of the request do not satisfy the operation's rule.
    #[error("approval request {request} lacks {needed}")]
    ApprovalMissing {
        /// The request.
        request: ApprovalRequestHash,
        /// What is missing.
        needed: &'static str,
    },
    /// The request lapsed.
    #[error("approval request {request} expired at {expired_at}")]
    ApprovalExpired {
        /// The request.
        request: ApprovalRequestHash,
        /// When it lapsed.
        expired_at: Timestamp,
    },
    /// The request was already used by an operation (approvals are single
    /// use).
    #[error("approval request {0} was already used")]
    ApprovalReplayed(ApprovalRequestHash),
    /// The approver is the requester.
    #[error("{0} cannot approve their own request")]
    SelfApproval(ActorId),
    /// The person already approved this request (in any role).
    #[error("{0} already approved this request")]
    SameApproverTwice(ActorId),
    /// The approver does not hold the role they approve in, or the
    /// operation takes no approval in that role.
    #[error("{approver} cannot approve this request as {role}")]
    ApproverWrongRole {
        /// The approver.
        approver: ActorId,
        /// The role claimed.
        role: Role,
    },
    /// The approver was revoked (or is not registered).
    #[error("approver {0} is revoked or not registered")]
    ApproverRevoked(ActorId),
    /// The approval's signature does not verify under the approver's
    /// registered approval key (or they have none).
    #[error("the approval signature of {0} does not verify")]
    ApprovalSignatureInvalid(ActorId),
    /// The request was made for other parameters than the operation's.
    #[error("approval request {request} was made for another {field}")]
    ApprovalParametersMismatch {
        /// The request.
        request: ApprovalRequestHash,
        /// The first parameter that differs.
        field: &'static str,
    },
    /// An approval is submitted by someone other than the approver it names.
    #[error("{actor} cannot submit the approval of {approver}")]
    ApprovalNotSubmitter {
        /// Who submitted.
        actor: ActorId,
        /// The approver named.
        approver: ActorId,
    },

    // ----- audit review -----
    /// Review bytes that do not decode as a review (`shkp-arv` v1), or a
    /// stored review that no longer does.
    #[error("audit review: {0}")]
    AuditReviewInvalid(shardkeep_audit::DecodeError),
    /// A review is submitted by someone other than the reviewer it names.
    #[error("{actor} cannot submit the audit review of {reviewer}")]
    AuditReviewNotSubmitter {
        /// Who submitted.
        actor: ActorId,
        /// The reviewer named.
        reviewer: ActorId,
    },
    /// The review's signature does not verify under the reviewer's
    /// registered approval key (or they have none).
    #[error("the audit review signature of {0} does not verify")]
    AuditReviewSignatureInvalid(ActorId),
    /// The review names another audit log than this deployment's.
    #[error("the audit review names another audit log than this one")]
    AuditReviewOtherLog,
    /// The reviewed range ends after the log's head.
    #[error("the reviewed range ends at {last}, after the audit log's head {head}")]
    AuditReviewBeyondHead {
        /// The range's last sequence.
        last: u64,
        /// The log's head sequence.
        head: u64,
    },
    /// The stored record at the range's last sequence hashes to another
    /// head than the review names: the range is not this log's.
    #[error("the audit log's record {last} does not have the reviewed head hash")]
    AuditReviewHeadMismatch {
        /// The range's last sequence.
        last: u64,
    },
    /// This review (its signature) was already recorded.
    #[error("this audit review of {0} was already recorded")]
    AuditReviewReplayed(ActorId),
    /// The person already reviewed this range: the second reviewer must be
    /// another person.
    #[error("{0} already reviewed this range; the second review must be another person's")]
    SameReviewerTwice(ActorId),
    /// Two persons already reviewed this range: the review is complete.
    #[error("this range of the audit log already has its two reviews")]
    AuditReviewComplete,
    /// The range has fewer reviews than a two-person review needs: it
    /// cannot be archived yet.
    #[error("this range of the audit log has {reviewers} of its 2 reviews")]
    AuditReviewIncomplete {
        /// The distinct reviewers so far.
        reviewers: usize,
    },

    // ----- drill schedules -----
    /// A drill schedule breaks its rules (window, cadence).
    #[error("drill schedule: {field} {why}")]
    DrillScheduleInvalid {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        why: &'static str,
    },
    /// A scheduled drill outside the schedule's window.
    #[error("drill schedule {request} runs from {not_before} until {not_after}")]
    DrillOutsideSchedule {
        /// The schedule's approval request.
        request: ApprovalRequestHash,
        /// The window's start.
        not_before: Timestamp,
        /// The window's end.
        not_after: Timestamp,
    },
    /// A scheduled drill sooner than the schedule's cadence after the last
    /// one started under it.
    #[error("drill schedule {request}: the next drill may start at {next_at}")]
    DrillTooSoon {
        /// The schedule's approval request.
        request: ApprovalRequestHash,
        /// When the next drill may start.
        next_at: Timestamp,
    },

    // ----- recovery sessions -----
    /// Another recovery session of the key version is open (at most one
    /// at a time).
    #[error("a recovery session of {0} is already open")]
    RecoverySessionActive(NodeVersion),
    /// No recovery session with this id.
    #[error("no recovery session {0}")]
    RecoverySessionUnknown(RecoverySessionId),
    /// The session's secret lives in the memory of another replica: send
    /// the call there.
    #[error("recovery session {session} lives on replica {replica}")]
    SessionOnOtherReplica {
        /// The session.
        session: RecoverySessionId,
        /// The replica holding it.
        replica: Label,
    },
    /// The session lapsed (idle too long, or past its end); it is wiped.
    #[error("recovery session {session} expired at {expired_at}")]
    RecoverySessionExpired {
        /// The session.
        session: RecoverySessionId,
        /// When it lapsed.
        expired_at: Timestamp,
    },
    /// The session is closed (completed, failed, expired or abandoned).
    #[error("recovery session {0} is closed")]
    RecoverySessionClosed(RecoverySessionId),
    /// The session reached its threshold and another call is completing
    /// it: it takes no more shares, and its outcome is that call's answer.
    #[error("recovery session {0} is completing in another call; it takes no more shares")]
    RecoverySessionFinishing(RecoverySessionId),
    /// The session was started on this replica, whose memory no longer
    /// holds it (the process restarted): it is closed as abandoned.
    #[error("recovery session {0} was lost by this replica (restarted); start a new one")]
    RecoverySessionLost(RecoverySessionId),
    /// A recovery or drill at threshold would self-test while this process
    /// holds the secret share of other parties of the same group (every
    /// peer must answer from its own node); nothing is consumed, the
    /// session keeps its shares.
    #[error(
        "{others} other parties' secret shares of this group are loaded in this process; \
         refusing to self-test"
    )]
    OtherPartySecretsLoaded {
        /// How many other parties of the group are held.
        others: usize,
    },
    /// A session descriptor does not decode or does not verify under the
    /// pinned service key.
    #[error("recovery session descriptor refused: {0}")]
    SessionDescriptorInvalid(&'static str),
    /// A session descriptor is for another share than the container's.
    #[error("the recovery session is for another {field} than this container")]
    SessionDescriptorMismatch {
        /// The first field that differs.
        field: &'static str,
    },
    /// A session descriptor's session has ended.
    #[error("the recovery session ended at {0}")]
    SessionDescriptorExpired(Timestamp),
    /// The keystore written at the end of a recovery did not load back as
    /// the save data regenerated.
    #[error("the keystore written for {0} does not load back as recovered")]
    RecoveredKeystoreDiffers(NodeVersion),
    /// A recovery reached its threshold without the sealed protocol
    /// archive (no custodian share was accepted).
    #[error("recovery session {0} has no protocol archive: at least one custodian share is needed")]
    RecoveryWithoutArchive(RecoverySessionId),
    /// A submitted share was rejected (the reason, for audit records and
    /// anomalies; callers get the reasons in the report).
    #[error("share rejected: {0}")]
    ShareRejected(crate::recovery_shares::ShareRejection),
    /// The approved target of a recovery is not an existing directory.
    #[error("the recovery target {0:?} is not an existing directory")]
    RecoveryTargetNotADirectory(String),
    /// Too many submissions in one call.
    #[error("{got} submissions in one call; at most {max}")]
    TooManySubmissions {
        /// How many were given.
        got: usize,
        /// The cap.
        max: usize,
    },
    /// A server-held share could not be read for a recovery: no KEK is
    /// pinned for its slot, or it failed the Feldman check.
    #[error("the server share of {0} cannot be used")]
    ServerShareUnavailable(ShareSlot),
    /// A container could not be opened for a submission (decryption or
    /// framing; the detail stays with the custodian).
    #[error("the custodian container does not open with this identity")]
    ContainerUnreadable,

    // ----- deletion and zero retention -----
    /// A deletion named a slot that is not one of the version's
    /// server-held slots.
    #[error("{0} is not a server-held slot of its version")]
    NotServerSlot(ShareSlot),
    /// DEL-01: fewer than `t` external shares are confirmed at distinct
    /// custodian entities that are still registered (with a registered
    /// person), so the server's shares cannot go.
    #[error(
        "deletion refused for {version}: {confirmed} external shares confirmed at distinct registered custodians, {needed} needed"
    )]
    DeletionTooFewConfirmed {
        /// The key version.
        version: NodeVersion,
        /// Distinct registered entities with a confirmed receipt.
        confirmed: usize,
        /// The threshold.
        needed: u8,
    },
    /// DEL-02: no passed drill of this version that used external shares
    /// only.
    #[error("deletion refused for {0}: no passed external-only drill of this version")]
    DeletionWithoutDrill(NodeVersion),
    /// A recovery session or drill (with its sandbox) of the node is open.
    #[error("deletion refused for {version}: recovery session {session} of the node is open")]
    DeletionSessionOpen {
        /// The key version to delete from.
        version: NodeVersion,
        /// The open session.
        session: RecoverySessionId,
    },
    /// The slot is not active (a soft delete), or not soft-deleted (a
    /// rollback, a hard delete).
    #[error("{slot} is {state}")]
    SlotState {
        /// The slot.
        slot: ShareSlot,
        /// Its deletion state.
        state: &'static str,
    },
    /// DEL-05: a hard delete before the slot's cooldown ended.
    #[error("{slot} is in its deletion cooldown until {until}")]
    DeletionCooldown {
        /// The slot.
        slot: ShareSlot,
        /// When the cooldown ends.
        until: Timestamp,
    },
    /// A hard delete named a request that did not authorise the soft
    /// delete of exactly these slots.
    #[error("request {request} did not authorise this deletion: {why}")]
    DeletionRequestMismatch {
        /// The request.
        request: ApprovalRequestHash,
        /// What differs.
        why: &'static str,
    },
    /// An immediate hard delete of a version none of whose custodians (nor
    /// the persons the shares were sealed to) is revoked: use the soft
    /// delete and its cooldown.
    #[error("{0} is not exposed: no custodian of it is revoked; soft-delete it instead")]
    VersionNotExposed(NodeVersion),
    /// The slot has no live pinned KEK to destroy.
    #[error("{0} has no pinned KEK to destroy")]
    SlotKekMissing(ShareSlot),
    /// The zero-retention sign-off is not by an active compliance person
    /// with their registered approval key.
    #[error("zero-retention sign-off by {person} refused: {why}")]
    ZeroRetentionSignOff {
        /// Who signed.
        person: ActorId,
        /// Why it is refused.
        why: &'static str,
    },
    /// A zero-retention certificate (or the body of one) that breaks a
    /// rule of the format, or whose issuer or compliance signature does
    /// not verify.
    #[error("zero-retention certificate refused: {0}")]
    ZeroRetentionCertificateInvalid(&'static str),
    /// A rotation was asked for a node without an active version (generate
    /// makes its first).
    #[error("node {node_id} of key {key_id} has no active version to rotate; generate it first")]
    NothingToRotate {
        /// The group key.
        key_id: KeyId,
        /// The node.
        node_id: NodeId,
    },
    /// An earlier rotation of the node is not finished: its old version is
    /// still retiring.
    #[error("{0} is still retiring after an earlier rotation; retire it before rotating again")]
    RotationInProgress(NodeVersion),
    /// The save data does not fit the kind of rotation: a reshare must
    /// bring a new `Xi`, a re-split the same one.
    #[error(
        "a {kind} of {version} was asked, but the save data's Xi {}",
        if *same_xi { "is unchanged (that is a re-split)" } else { "changed (that is a reshare)" }
    )]
    RotationKindMismatch {
        /// The active version.
        version: NodeVersion,
        /// The kind asked for.
        kind: crate::rotation::RotationKind,
        /// Whether the save data holds the active version's `Xi`.
        same_xi: bool,
    },
    /// A change that gives or takes an approving role was made without an
    /// approved approver-set change request, while current approvers could
    /// approve it.
    #[error(
        "changing the approver set ({0}) needs an approved approver-set change request naming that change"
    )]
    ApproverSetChangeUnapproved(ActorId),
    /// A destruction statement names a version that no re-split replaced
    /// (active, or followed by a reshare): its old shares recover nothing
    /// of the node's current `Xi`, or are still in use.
    #[error("{0} was not replaced by a re-split: no destruction statement is due for it")]
    DestructionNotResplit(NodeVersion),
    /// A destruction statement disagrees with the slot's custody entry (or
    /// its time is in the future, or another person submits it).
    #[error("the destruction statement for {slot} does not match: {field}")]
    DestructionMismatch {
        /// The slot.
        slot: ShareSlot,
        /// The field that differs.
        field: &'static str,
    },
    /// A destruction statement's signature does not verify under the
    /// person's registered receipt key.
    #[error("the destruction statement signed by {0} does not verify")]
    DestructionSignatureInvalid(ActorId),
    /// The slot already has a destruction statement.
    #[error("a destruction statement for {0} is already recorded")]
    DestructionReplayed(ShareSlot),
    /// The key version is retired: its shares recover nothing the service
    /// accepts, in a recovery or a drill.
    #[error(
        "{version} is retired; {}",
        match current {
            Some(current) => format!("the current version is {current}"),
            None => "the node has no current version".to_owned(),
        }
    )]
    VersionRetired {
        /// The retired version asked for.
        version: NodeVersion,
        /// The node's active version, if it has one.
        current: Option<NodeVersion>,
    },
}

impl Error {
    /// Whether a service boundary must show this error to a remote caller
    /// as one opaque "cannot verify or decrypt" status, keeping the detail
    /// for the audit record: decryption and signature failures, whose
    /// detail would help an attacker.
    #[must_use]
    pub fn is_opaque_to_caller(&self) -> bool {
        matches!(
            self,
            Self::Envelope(_)
                | Self::Sharing(_)
                | Self::Keydata(_)
                | Self::ReceiptSignature(_)
                | Self::InventorySignatureInvalid { .. }
                | Self::ApprovalSignatureInvalid(_)
                | Self::AuditReviewSignatureInvalid(_)
                | Self::PossessionProofRejected { .. }
                | Self::SessionDescriptorInvalid(_)
                | Self::DestructionSignatureInvalid(_)
        )
    }
}

impl From<shardkeep_storage::Error> for Error {
    fn from(error: shardkeep_storage::Error) -> Self {
        Self::Storage(error)
    }
}

impl From<shardkeep_envelope::Error> for Error {
    fn from(error: shardkeep_envelope::Error) -> Self {
        Self::Envelope(error)
    }
}

impl From<shardkeep_keydata::Error> for Error {
    fn from(error: shardkeep_keydata::Error) -> Self {
        Self::Keydata(error)
    }
}

impl From<shardkeep_sss_core::Error> for Error {
    fn from(error: shardkeep_sss_core::Error) -> Self {
        Self::Sharing(error)
    }
}

impl From<shardkeep_kms::Error> for Error {
    fn from(error: shardkeep_kms::Error) -> Self {
        Self::Kms(error)
    }
}

impl From<shardkeep_audit::Error> for Error {
    fn from(error: shardkeep_audit::Error) -> Self {
        Self::Audit(error)
    }
}
