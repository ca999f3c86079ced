//! Between the wire messages and the procedure's types. Every request
//! field is checked here (names, lengths); a malformed one is
//! [`Error::InvalidArgument`], naming the field and never its value.

use std::path::{Path, PathBuf};

use shardkeep_backup::{
    ApprovalOperation, ApprovalParams, ApprovalState, ApprovalSubject, Armor, AuditReviewState,
    ChangeApproval, Confirmation, CurrentPolicy, DrillDueReason, EntityRecord, EntityRegistration,
    ExposureState, ExternalCustodian, GenerateRequest, Generated, InventoryConfirmation,
    PersonKeys, PersonRecord, PersonRegistration, PolicySettings, ReceiptStatus, RecoveryOutcome,
    RecoveryReport, Role, RoleSet, Rotated, SaveDataSource, ServerShareEntry, ShareListPage,
    ShareRejection, StatusPage, TssGroup, VersionStatus,
};
use shardkeep_keydata::KeystoreCodec;
use shardkeep_storage::{
    ApprovalRequestHash, KeyVersionState, MAX_AGE_RECIPIENT_LEN, MAX_ENTITY_MEMBERS, SlotState,
};
use shardkeep_types::{
    ActorId, CustodianId, FreeText, KeyId, KeyVersion, Label, NodeId, NodeVersion, ShareIndex,
    ShareSlot, Threshold, Timestamp,
};

use crate::error::Error;
use crate::proto;

/// `Some(name)` for a non-empty field, `None` for an empty one.
pub(crate) fn optional_key_id(field: &'static str, value: &str) -> Result<Option<KeyId>, Error> {
    if value.is_empty() {
        return Ok(None);
    }
    KeyId::new(value)
        .map(Some)
        .map_err(|_| invalid(field, "not a valid name"))
}

/// As [`optional_key_id`], for a node id.
pub(crate) fn optional_node_id(field: &'static str, value: &str) -> Result<Option<NodeId>, Error> {
    if value.is_empty() {
        return Ok(None);
    }
    NodeId::new(value)
        .map(Some)
        .map_err(|_| invalid(field, "not a valid name"))
}

/// A required node version.
pub(crate) fn node_version(
    field: &'static str,
    version: Option<&proto::NodeVersion>,
) -> Result<NodeVersion, Error> {
    let version = version.ok_or_else(|| invalid(field, "missing"))?;
    let key_id = KeyId::new(&version.key_id).map_err(|_| invalid(field, "not a valid key id"))?;
    let node_id =
        NodeId::new(&version.node_id).map_err(|_| invalid(field, "not a valid node id"))?;
    if version.version == 0 {
        return Err(invalid(field, "versions start at 1"));
    }
    Ok(NodeVersion {
        key_id,
        node_id,
        version: KeyVersion::new(version.version),
    })
}

/// A required share slot.
pub(crate) fn share_slot(
    field: &'static str,
    slot: Option<&proto::ShareSlot>,
) -> Result<ShareSlot, Error> {
    let slot = slot.ok_or_else(|| invalid(field, "missing"))?;
    let version = node_version(field, slot.version.as_ref())?;
    let index = u8::try_from(slot.index)
        .ok()
        .and_then(ShareIndex::new)
        .ok_or_else(|| invalid(field, "share indices are 1 to 255"))?;
    Ok(version.slot(index))
}

/// The procedure's confirmation, as told.
pub(crate) fn confirmation_response(confirmation: &Confirmation) -> proto::ConfirmReceiptResponse {
    let (received, failure_reason) = match &confirmation.status {
        ReceiptStatus::Received => (true, String::new()),
        ReceiptStatus::Failed(reason) => (false, reason.as_str().to_owned()),
    };
    proto::ConfirmReceiptResponse {
        custodian: confirmation.custodian.as_str().to_owned(),
        person: confirmation.person.as_str().to_owned(),
        received,
        failure_reason,
        delivery_complete: confirmation.certificate.is_some(),
    }
}

/// The procedure's inventory confirmation, as told.
pub(crate) fn inventory_response(
    confirmation: &InventoryConfirmation,
) -> proto::ConfirmInventoryResponse {
    proto::ConfirmInventoryResponse {
        slot: Some(wire_slot(&confirmation.slot)),
        custodian: confirmation.custodian.as_str().to_owned(),
        person: confirmation.person.as_str().to_owned(),
        confirmed_at_unix: unix(confirmation.confirmed_at),
    }
}

/// Approval parameters, checked field by field.
pub(crate) fn approval_params(
    params: Option<&proto::ApprovalParams>,
) -> Result<ApprovalParams, Error> {
    let params = params.ok_or_else(|| invalid("params", "missing"))?;
    let operation = match proto::ApprovalOperation::try_from(params.operation) {
        Ok(proto::ApprovalOperation::Recover) => ApprovalOperation::Recover,
        Ok(proto::ApprovalOperation::Drill) => ApprovalOperation::Drill,
        Ok(proto::ApprovalOperation::Delete) => ApprovalOperation::Delete,
        Ok(proto::ApprovalOperation::PolicyChange) => ApprovalOperation::PolicyChange,
        Ok(proto::ApprovalOperation::ApproverSetChange) => ApprovalOperation::ApproverSetChange,
        Ok(proto::ApprovalOperation::Unspecified) | Err(_) => {
            return Err(invalid("params.operation", "not an operation"));
        }
    };
    let subject = match (&params.version, params.split_id.is_empty()) {
        (None, true) => None,
        (Some(version), false) => Some(ApprovalSubject {
            version: node_version("params.version", Some(version))?,
            split_id: fixed("params.split_id", &params.split_id)?,
        }),
        _ => {
            return Err(invalid(
                "params.split_id",
                "given exactly when a version is",
            ));
        }
    };
    let target = if params.target.is_empty() {
        None
    } else {
        Some(
            FreeText::new(&params.target)
                .map_err(|_| invalid("params.target", "not valid free text"))?,
        )
    };
    let slots = params
        .slots
        .iter()
        .map(|&index| share_index("params.slots", index))
        .collect::<Result<Vec<_>, _>>()?;
    let change_hash = if params.change_hash.is_empty() {
        None
    } else {
        Some(fixed("params.change_hash", &params.change_hash)?)
    };
    Ok(ApprovalParams {
        operation,
        subject,
        target,
        allow_server_shares: params.allow_server_shares,
        slots,
        change_hash,
        ticket: FreeText::new(&params.ticket)
            .map_err(|_| invalid("params.ticket", "not valid free text"))?,
        risk_note_hash: fixed("params.risk_note_hash", &params.risk_note_hash)?,
    })
}

/// The procedure's approval state, as told.
pub(crate) fn approval_state_response(state: &ApprovalState) -> proto::SubmitApprovalResponse {
    proto::SubmitApprovalResponse {
        request_hash: state.request.0.to_vec(),
        approvals: state
            .approvals
            .iter()
            .map(|(person, role)| proto::Approver {
                person: person.as_str().to_owned(),
                role: role.name().to_owned(),
            })
            .collect(),
        satisfied: state.satisfied,
    }
}

/// Longest keystore path a request may name, in bytes.
pub(crate) const MAX_KEYSTORE_PATH_LEN: usize = 4096;

/// Most custodians one generate request names (share indices are bytes).
pub(crate) const MAX_CUSTODIANS: usize = 255;

/// A share index from the wire.
pub(crate) fn share_index(field: &'static str, index: u32) -> Result<ShareIndex, Error> {
    u8::try_from(index)
        .ok()
        .and_then(ShareIndex::new)
        .ok_or_else(|| invalid(field, "share indices are 1 to 255"))
}

/// Share indices, strictly increasing (each named once, in order).
pub(crate) fn share_indices(
    field: &'static str,
    indices: &[u32],
) -> Result<Vec<ShareIndex>, Error> {
    if indices.is_empty() {
        return Err(invalid(field, "missing"));
    }
    if indices.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(invalid(field, "must be strictly increasing"));
    }
    indices
        .iter()
        .map(|&index| share_index(field, index))
        .collect()
}

/// A generate request checked field by field, owning what the procedure's
/// [`GenerateRequest`] borrows.
pub(crate) struct GenerateSource {
    key_id: KeyId,
    node_id: NodeId,
    path: PathBuf,
    /// The key, node and version the keystore file was written for: also
    /// names the node whose codec reads it.
    pub(crate) written_for: NodeVersion,
    group: TssGroup,
    custodians: Vec<ExternalCustodian>,
    armor: Armor,
}

impl GenerateSource {
    /// Checks `message`, named `field` when it is missing.
    pub(crate) fn parse(
        message: Option<&proto::GenerateBackupRequest>,
        field: &'static str,
    ) -> Result<Self, Error> {
        let message = message.ok_or_else(|| invalid(field, "missing"))?;
        let key_id =
            KeyId::new(&message.key_id).map_err(|_| invalid("key_id", "not a valid name"))?;
        let node_id =
            NodeId::new(&message.node_id).map_err(|_| invalid("node_id", "not a valid name"))?;
        let path = keystore_path(&message.keystore_path)?;
        let written_for = node_version(
            "keystore_written_for",
            message.keystore_written_for.as_ref(),
        )?;
        if written_for.key_id != key_id || written_for.node_id != node_id {
            return Err(invalid(
                "keystore_written_for",
                "names another key or node than the request",
            ));
        }
        let group = TssGroup {
            tss_degree: u16::try_from(message.tss_degree)
                .map_err(|_| invalid("tss_degree", "above 65535"))?,
            parties: u16::try_from(message.parties)
                .map_err(|_| invalid("parties", "above 65535"))?,
        };
        if message.custodians.len() > MAX_CUSTODIANS {
            return Err(invalid("custodians", "more than 255"));
        }
        let custodians = message
            .custodians
            .iter()
            .map(|custodian| {
                Ok(ExternalCustodian {
                    entity: custodian_id("custodians.entity", &custodian.entity)?,
                    person: actor_id("custodians.person", &custodian.person)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self {
            key_id,
            node_id,
            path,
            written_for,
            group,
            custodians,
            armor: if message.armor {
                Armor::Ascii
            } else {
                Armor::Binary
            },
        })
    }

    /// The procedure's request, reading the keystore through `codec`.
    pub(crate) fn request<'a>(
        &'a self,
        codec: &'a (dyn KeystoreCodec + Sync),
    ) -> GenerateRequest<'a> {
        GenerateRequest {
            key_id: self.key_id.clone(),
            node_id: self.node_id.clone(),
            save_data: SaveDataSource::Keystore {
                path: &self.path,
                written_for: &self.written_for,
                codec,
            },
            group: self.group,
            custodians: self.custodians.clone(),
            armor: self.armor,
        }
    }
}

/// A keystore path: absolute, capped, printable (it is audited and may
/// be shown).
fn keystore_path(path: &str) -> Result<PathBuf, Error> {
    const FIELD: &str = "keystore_path";
    if path.is_empty() {
        return Err(invalid(FIELD, "missing"));
    }
    if path.len() > MAX_KEYSTORE_PATH_LEN {
        return Err(invalid(FIELD, "longer than 4096 bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(invalid(FIELD, "holds a control character"));
    }
    if !Path::new(path).is_absolute() {
        return Err(invalid(FIELD, "not an absolute path"));
    }
    Ok(PathBuf::from(path))
}

/// What generate made, as told (the containers are for delivery: sealed
/// to their custodians, no secret to the caller).
pub(crate) fn generated_response(generated: &Generated) -> proto::GenerateBackupResponse {
    proto::GenerateBackupResponse {
        version: Some(wire_version(&generated.version)),
        split_id: generated.split_id.to_vec(),
        containers: generated
            .containers
            .iter()
            .map(|container| proto::Container {
                index: u32::from(container.index.get()),
                envelope_id: container.envelope_id.as_bytes().to_vec(),
                container_hash: container.container_hash.to_vec(),
                container: container.container.clone(),
            })
            .collect(),
        threshold: u32::from(generated.threshold.t()),
        shares: u32::from(generated.threshold.n()),
        server_indices: generated
            .server_shares
            .iter()
            .map(|share| u32::from(share.index.get()))
            .collect(),
    }
}

/// What a rotation made, as told.
pub(crate) fn rotated_response(rotated: &Rotated) -> proto::RotateBackupResponse {
    proto::RotateBackupResponse {
        previous: Some(wire_version(&rotated.previous)),
        cooldown_until_unix: unix(rotated.cooldown_until),
        generated: Some(generated_response(&rotated.generated)),
    }
}

/// Policy settings, checked field by field.
pub(crate) fn policy_settings(
    settings: Option<&proto::PolicySettings>,
) -> Result<PolicySettings, Error> {
    let settings = settings.ok_or_else(|| invalid("settings", "missing"))?;
    // Out of usize's range is out of any threshold's: refused below.
    let t = usize::try_from(settings.threshold).unwrap_or(usize::MAX);
    let n = usize::try_from(settings.shares).unwrap_or(usize::MAX);
    Ok(PolicySettings {
        threshold: Threshold::new(t, n)
            .map_err(|_| invalid("settings.threshold", "not a threshold of the shares"))?,
        server_shares: u8::try_from(settings.server_shares)
            .map_err(|_| invalid("settings.server_shares", "above 255"))?,
        kek_provider: Label::new(&settings.kek_provider)
            .map_err(|_| invalid("settings.kek_provider", "not a valid label"))?,
    })
}

/// The policy in force, as told.
pub(crate) fn policy_response(current: Option<&CurrentPolicy>) -> proto::GetPolicyResponse {
    let Some(current) = current else {
        return proto::GetPolicyResponse::default();
    };
    let policy = &current.policy;
    proto::GetPolicyResponse {
        settings: Some(proto::PolicySettings {
            threshold: u32::from(policy.threshold().t()),
            shares: u32::from(policy.threshold().n()),
            server_shares: u32::from(policy.server_shares()),
            kek_provider: policy.kek_provider().as_str().to_owned(),
        }),
        hash: current.hash.to_vec(),
        set_at_unix: unix(current.set_at),
        set_by: current.set_by.as_str().to_owned(),
    }
}

/// A review's state, as told.
pub(crate) fn review_response(state: &AuditReviewState) -> proto::SubmitAuditReviewResponse {
    proto::SubmitAuditReviewResponse {
        first_sequence: state.range.first,
        last_sequence: state.range.last,
        head_hash: state.range.head_hash.to_vec(),
        reviewers: state
            .reviewers
            .iter()
            .map(|reviewer| reviewer.as_str().to_owned())
            .collect(),
        complete: state.complete,
    }
}

/// At most `max` bytes: a field longer than its format allows is refused
/// before it is decoded (the message cap bounds the whole request; this,
/// each field).
pub(crate) fn capped(field: &'static str, bytes: &[u8], max: usize) -> Result<(), Error> {
    if bytes.len() > max {
        return Err(invalid(field, "longer than its format allows"));
    }
    Ok(())
}

/// Exactly `N` bytes.
pub(crate) fn fixed<const N: usize>(field: &'static str, bytes: &[u8]) -> Result<[u8; N], Error> {
    <[u8; N]>::try_from(bytes).map_err(|_| invalid(field, "wrong length"))
}

/// An empty page token is the first page.
pub(crate) fn page_token(token: String) -> Option<String> {
    (!token.is_empty()).then_some(token)
}

pub(crate) const fn invalid(field: &'static str, why: &'static str) -> Error {
    Error::InvalidArgument { field, why }
}

fn unix(at: Timestamp) -> u64 {
    at.as_unix_seconds()
}

fn wire_slot(slot: &ShareSlot) -> proto::ShareSlot {
    proto::ShareSlot {
        version: Some(wire_version(&slot.node_version())),
        index: u32::from(slot.index.get()),
    }
}

pub(crate) fn wire_version(version: &NodeVersion) -> proto::NodeVersion {
    proto::NodeVersion {
        key_id: version.key_id.as_str().to_owned(),
        node_id: version.node_id.as_str().to_owned(),
        version: version.version.get(),
    }
}

fn key_version_state(state: &KeyVersionState) -> proto::KeyVersionState {
    match state {
        KeyVersionState::Active => proto::KeyVersionState::Active,
        KeyVersionState::Retiring { .. } => proto::KeyVersionState::Retiring,
        KeyVersionState::Retired { .. } => proto::KeyVersionState::Retired,
    }
}

fn drill_reason(reason: DrillDueReason) -> proto::DrillDueReason {
    match reason {
        DrillDueReason::NeverPassed => proto::DrillDueReason::NeverPassed,
        DrillDueReason::ChangedSinceDrill => proto::DrillDueReason::ChangedSinceDrill,
        DrillDueReason::PolicyChanged => proto::DrillDueReason::PolicyChanged,
        DrillDueReason::Interval => proto::DrillDueReason::Interval,
        _ => proto::DrillDueReason::Unspecified,
    }
}

fn version_status(status: &VersionStatus) -> proto::VersionStatus {
    let (exposed_to, group_known) = match &status.exposure {
        ExposureState::Exposed { custodians } => (
            custodians
                .iter()
                .map(|custodian| custodian.as_str().to_owned())
                .collect(),
            true,
        ),
        ExposureState::UnknownGroup => (Vec::new(), false),
        _ => (Vec::new(), true),
    };
    proto::VersionStatus {
        version: Some(wire_version(&status.version)),
        threshold: u32::from(status.threshold.t()),
        shares: u32::from(status.threshold.n()),
        curve: status
            .curve
            .map(|curve| curve.name().to_owned())
            .unwrap_or_default(),
        state: key_version_state(&status.state).into(),
        created_at_unix: unix(status.created_at),
        server_shares: u32::from(status.server_shares),
        server_shares_held: u32::from(status.server_shares_held),
        server_shares_soft_deleted: u32::from(status.server_shares_soft_deleted),
        server_shares_hard_deleted: u32::from(status.server_shares_hard_deleted),
        external_shares: u32::from(status.external_shares),
        external_assigned: u32::from(status.external_assigned),
        external_confirmed: u32::from(status.external_confirmed),
        outstanding_deliveries: u32::from(status.outstanding_deliveries),
        deliveries_failed: status.deliveries_failed,
        recoverable: status.recoverable,
        last_inventory_at_unix: status.last_inventory_at.map_or(0, unix),
        last_passed_drill_at_unix: status.last_passed_drill_at.map_or(0, unix),
        next_drill_due_unix: status.next_drill.map_or(0, |due| unix(due.due_at)),
        next_drill_reason: status
            .next_drill
            .map_or(proto::DrillDueReason::Unspecified, |due| {
                drill_reason(due.reason)
            })
            .into(),
        drill_overdue: status.next_drill.is_some_and(|due| due.overdue),
        needs_regeneration: status.needs_regeneration,
        exposed_to,
        group_known,
        outstanding_destructions: status
            .outstanding_destructions
            .iter()
            .map(|destruction| u32::from(destruction.slot.index.get()))
            .collect(),
    }
}

pub(crate) fn status_response(page: &StatusPage) -> proto::GetBackupStatusResponse {
    proto::GetBackupStatusResponse {
        versions: page.versions.iter().map(version_status).collect(),
        next_page_token: page.next_page_token.clone().unwrap_or_default(),
        as_of_unix: unix(page.as_of),
    }
}

fn slot_state(state: &SlotState) -> proto::SlotState {
    match state {
        SlotState::Active => proto::SlotState::Active,
        SlotState::SoftDeleted { .. } => proto::SlotState::SoftDeleted,
        SlotState::HardDeleted { .. } => proto::SlotState::HardDeleted,
    }
}

fn server_share(entry: &ServerShareEntry) -> proto::ServerShare {
    proto::ServerShare {
        slot: Some(wire_slot(&entry.slot)),
        envelope_id: entry.envelope_id.as_bytes().to_vec(),
        kek_id: entry.kek_id.as_str().to_owned(),
        state: slot_state(&entry.state).into(),
        created_at_unix: unix(entry.created_at),
    }
}

pub(crate) fn share_list_response(page: &ShareListPage) -> proto::ListBackupSharesResponse {
    proto::ListBackupSharesResponse {
        shares: page.shares.iter().map(server_share).collect(),
        next_page_token: page.next_page_token.clone().unwrap_or_default(),
        as_of_unix: unix(page.as_of),
    }
}

/// The reason a caller is told. Every rejection made before the custodian
/// who sent the share is authenticated (it does not decrypt to the
/// session, does not decode, a signature fails, its custodian is not
/// registered) is one opaque reason: the caller who hands shares in learns
/// nothing about which check failed.
fn rejection_reason(reason: ShareRejection) -> proto::ShareRejectionReason {
    if !reason.custodian_authenticated() {
        return proto::ShareRejectionReason::Unreadable;
    }
    match reason {
        ShareRejection::OtherKey
        | ShareRejection::OtherNode
        | ShareRejection::OtherVersion
        | ShareRejection::OtherCurve
        | ShareRejection::OtherSplit => proto::ShareRejectionReason::OtherSubject,
        ShareRejection::NotBoundToSlot | ShareRejection::FeldmanCheckFailed => {
            proto::ShareRejectionReason::InvalidShare
        }
        ShareRejection::NotTheSlotsCustodian => proto::ShareRejectionReason::NotTheSlotsCustodian,
        ShareRejection::Duplicate => proto::ShareRejectionReason::Duplicate,
        ShareRejection::ServerShareInDrill => proto::ShareRejectionReason::ServerShareInDrill,
        // A reason added later: told as opaque until it is mapped.
        _ => proto::ShareRejectionReason::Unreadable,
    }
}

pub(crate) fn recovery_response(report: &RecoveryReport) -> proto::RecoverMpcShareResponse {
    let (state, drill_report) = match &report.outcome {
        RecoveryOutcome::Waiting => (proto::RecoveryState::Waiting, String::new()),
        RecoveryOutcome::Recovered { .. } => (proto::RecoveryState::Recovered, String::new()),
        RecoveryOutcome::Drilled { report, .. } => (proto::RecoveryState::Drilled, report.clone()),
        RecoveryOutcome::Failed { .. } => (proto::RecoveryState::Failed, String::new()),
    };
    let mut received_indices: Vec<u32> = report
        .received
        .iter()
        .map(|(index, _)| u32::from(index.get()))
        .collect();
    received_indices.sort_unstable();
    proto::RecoverMpcShareResponse {
        success: report.succeeded(),
        shares_received: u32::try_from(report.received.len()).unwrap_or(u32::MAX),
        threshold: u32::from(report.threshold),
        rejected: report
            .rejected
            .iter()
            .map(|rejected| {
                let authenticated = rejected.reason.custodian_authenticated();
                proto::RejectedShare {
                    position: u32::try_from(rejected.position).unwrap_or(u32::MAX),
                    // The index is told only once the share was
                    // authenticated, like the reason.
                    index: rejected
                        .index
                        .filter(|_| authenticated)
                        .map_or(0, |index| u32::from(index.get())),
                    reason: rejection_reason(rejected.reason).into(),
                }
            })
            .collect(),
        state: state.into(),
        received_indices,
        drill_report,
    }
}

/// A role set named on the wire, each role once.
pub(crate) fn roles(field: &'static str, names: &[String]) -> Result<RoleSet, Error> {
    let mut roles = RoleSet::EMPTY;
    for name in names {
        let role = Role::ALL
            .into_iter()
            .find(|role| role.name() == name)
            .ok_or_else(|| invalid(field, "not a role name"))?;
        if roles.contains(role) {
            return Err(invalid(field, "a role is named twice"));
        }
        roles = roles.with(role);
    }
    Ok(roles)
}

/// A role set on the wire, in [`Role::ALL`] order.
pub(crate) fn wire_roles(roles: RoleSet) -> Vec<String> {
    roles.iter().map(|role| role.name().to_owned()).collect()
}

/// An optional 32-byte key: empty is none.
fn optional_key(field: &'static str, bytes: &[u8]) -> Result<Option<[u8; 32]>, Error> {
    if bytes.is_empty() {
        Ok(None)
    } else {
        fixed(field, bytes).map(Some)
    }
}

/// A person's keys, as registered (the procedure checks them further:
/// weak, reused or already in use).
pub(crate) fn person_keys(keys: Option<&proto::PersonKeys>) -> Result<PersonKeys, Error> {
    let keys = keys.ok_or_else(|| invalid("keys", "missing"))?;
    Ok(PersonKeys {
        receipt_key: optional_key("keys.receipt_key", &keys.receipt_key)?,
        approval_key: optional_key("keys.approval_key", &keys.approval_key)?,
        age_recipient: if keys.age_recipient.is_empty() {
            None
        } else {
            capped(
                "keys.age_recipient",
                keys.age_recipient.as_bytes(),
                MAX_AGE_RECIPIENT_LEN,
            )?;
            Some(keys.age_recipient.clone())
        },
        tls_fingerprint: optional_key("keys.tls_fingerprint", &keys.tls_fingerprint)?,
    })
}

/// A required actor id.
pub(crate) fn actor_id(field: &'static str, value: &str) -> Result<ActorId, Error> {
    ActorId::new(value).map_err(|_| invalid(field, "not a valid name"))
}

/// A required custodian id.
pub(crate) fn custodian_id(field: &'static str, value: &str) -> Result<CustodianId, Error> {
    CustodianId::new(value).map_err(|_| invalid(field, "not a valid name"))
}

/// Free text, checked (length and characters).
pub(crate) fn free_text<const MAX: usize>(
    field: &'static str,
    value: &str,
) -> Result<FreeText<MAX>, Error> {
    FreeText::new(value).map_err(|_| invalid(field, "not valid free text or too long"))
}

/// A registration, checked field by field.
pub(crate) fn person_registration(
    message: &proto::RegisterPersonRequest,
) -> Result<PersonRegistration, Error> {
    Ok(PersonRegistration {
        id: actor_id("person", &message.person)?,
        display_name: free_text("display_name", &message.display_name)?,
        roles: roles("roles", &message.roles)?,
        keys: person_keys(message.keys.as_ref())?,
    })
}

/// An entity's registration, checked field by field (the procedure checks
/// its members).
pub(crate) fn entity_registration(
    message: &proto::RegisterEntityRequest,
) -> Result<EntityRegistration, Error> {
    if message.members.len() > MAX_ENTITY_MEMBERS {
        return Err(invalid("members", "too many"));
    }
    Ok(EntityRegistration {
        id: custodian_id("entity", &message.entity)?,
        display_name: free_text("display_name", &message.display_name)?,
        contact: free_text("contact", &message.contact)?,
        members: message
            .members
            .iter()
            .map(|member| actor_id("members", member))
            .collect::<Result<_, _>>()?,
    })
}

/// The approval a change names: none when every field is empty (a change
/// that needs none), else all three, checked.
pub(crate) fn change_approval(
    request_hash: &[u8],
    ticket: &str,
    risk_note_hash: &[u8],
) -> Result<Option<ChangeApproval>, Error> {
    if request_hash.is_empty() && ticket.is_empty() && risk_note_hash.is_empty() {
        return Ok(None);
    }
    Ok(Some(ChangeApproval {
        request: ApprovalRequestHash(fixed("approval_request_hash", request_hash)?),
        ticket: FreeText::new(ticket).map_err(|_| invalid("ticket", "not a valid ticket"))?,
        risk_note_hash: fixed("risk_note_hash", risk_note_hash)?,
    }))
}

/// A registered person, as told.
pub(crate) fn person_response(person: &PersonRecord) -> proto::RegisterPersonResponse {
    proto::RegisterPersonResponse {
        person: person.id.as_str().to_owned(),
        roles: wire_roles(person.roles),
        key_epoch: person.key_epoch,
        registered_at_unix: unix(person.registered_at),
        registered_by: person.registered_by.as_str().to_owned(),
    }
}

/// A registered entity, as told.
pub(crate) fn entity_response(entity: &EntityRecord) -> proto::RegisterEntityResponse {
    proto::RegisterEntityResponse {
        entity: entity.id.as_str().to_owned(),
        members: entity
            .members
            .iter()
            .map(|member| member.as_str().to_owned())
            .collect(),
        registered_at_unix: unix(entity.registered_at),
    }
}

#[cfg(test)]
mod tests {
    use shardkeep_backup::RejectedShare;
    use shardkeep_storage::RecoverySessionId;

    use super::*;

    const EVERY_REJECTION: [ShareRejection; 15] = [
        ShareRejection::Unreadable,
        ShareRejection::OtherSession,
        ShareRejection::EnvelopeInvalid,
        ShareRejection::UnknownCustodian,
        ShareRejection::CustodianSignatureInvalid,
        ShareRejection::OtherKey,
        ShareRejection::OtherNode,
        ShareRejection::OtherVersion,
        ShareRejection::OtherCurve,
        ShareRejection::OtherSplit,
        ShareRejection::NotBoundToSlot,
        ShareRejection::FeldmanCheckFailed,
        ShareRejection::NotTheSlotsCustodian,
        ShareRejection::Duplicate,
        ShareRejection::ServerShareInDrill,
    ];

    fn report_rejecting(reason: ShareRejection) -> RecoveryReport {
        RecoveryReport {
            session: RecoverySessionId([7; 16]),
            threshold: 3,
            received: Vec::new(),
            rejected: vec![RejectedShare {
                position: 2,
                custodian: None,
                index: ShareIndex::new(4),
                reason,
            }],
            outcome: RecoveryOutcome::Waiting,
            timings: shardkeep_backup::RecoveryTimings::default(),
        }
    }

    #[test]
    fn every_rejection_before_the_custodian_is_authenticated_is_one_opaque_reason_without_index() {
        for reason in EVERY_REJECTION {
            let response = recovery_response(&report_rejecting(reason));
            let told = &response.rejected[0];
            assert_eq!(told.position, 2);
            if reason.custodian_authenticated() {
                assert_ne!(
                    told.reason(),
                    proto::ShareRejectionReason::Unreadable,
                    "{reason}"
                );
                assert_eq!(told.index, 4, "{reason}");
            } else {
                assert_eq!(
                    told.reason(),
                    proto::ShareRejectionReason::Unreadable,
                    "{reason}"
                );
                assert_eq!(told.index, 0, "{reason}");
            }
        }
    }

    fn recover_params() -> proto::ApprovalParams {
        proto::ApprovalParams {
            operation: proto::ApprovalOperation::Recover.into(),
            version: Some(proto::NodeVersion {
                key_id: "wallet".into(),
                node_id: "node-0".into(),
                version: 1,
            }),
            split_id: vec![5; 32],
            target: "/var/lib/node-0".into(),
            allow_server_shares: true,
            slots: Vec::new(),
            change_hash: Vec::new(),
            ticket: "INC-42".into(),
            risk_note_hash: vec![7; 32],
        }
    }

    #[test]
    fn approval_params_convert_field_by_field() {
        let params = approval_params(Some(&recover_params())).unwrap();
        assert_eq!(params.operation, ApprovalOperation::Recover);
        let subject = params.subject.unwrap();
        assert_eq!(subject.split_id, [5; 32]);
        assert_eq!(subject.version.key_id.as_str(), "wallet");
        assert_eq!(params.target.unwrap().as_str(), "/var/lib/node-0");
        assert!(params.allow_server_shares);
        assert_eq!(params.change_hash, None);
        assert_eq!(params.ticket.as_str(), "INC-42");
        assert_eq!(params.risk_note_hash, [7; 32]);
    }

    #[test]
    fn malformed_approval_params_name_their_field() {
        type Breakage = fn(&mut proto::ApprovalParams);
        let cases: [(Breakage, &str); 6] = [
            (|p| p.operation = 0, "params.operation"),
            (|p| p.operation = 99, "params.operation"),
            (|p| p.split_id.clear(), "params.split_id"),
            (|p| p.version = None, "params.split_id"),
            (|p| p.slots = vec![0], "params.slots"),
            (|p| p.change_hash = vec![1; 31], "params.change_hash"),
        ];
        for (break_it, field) in cases {
            let mut params = recover_params();
            break_it(&mut params);
            match approval_params(Some(&params)) {
                Err(Error::InvalidArgument { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_version_is_checked_field_by_field() {
        let good = proto::NodeVersion {
            key_id: "wallet".into(),
            node_id: "node-0".into(),
            version: 1,
        };
        assert!(node_version("version", Some(&good)).is_ok());
        assert!(matches!(
            node_version("version", None),
            Err(Error::InvalidArgument { why: "missing", .. })
        ));
        let zero = proto::NodeVersion {
            version: 0,
            ..good.clone()
        };
        assert!(matches!(
            node_version("version", Some(&zero)),
            Err(Error::InvalidArgument {
                why: "versions start at 1",
                ..
            })
        ));
        let bad_key = proto::NodeVersion {
            key_id: "a b".into(),
            ..good
        };
        assert!(matches!(
            node_version("version", Some(&bad_key)),
            Err(Error::InvalidArgument {
                why: "not a valid key id",
                ..
            })
        ));
        let slot = |index| proto::ShareSlot {
            version: Some(proto::NodeVersion {
                key_id: "wallet".into(),
                node_id: "node-0".into(),
                version: 1,
            }),
            index,
        };
        assert_eq!(share_slot("slot", Some(&slot(3))).unwrap().index.get(), 3);
        for bad in [0, 256] {
            assert!(matches!(
                share_slot("slot", Some(&slot(bad))),
                Err(Error::InvalidArgument {
                    why: "share indices are 1 to 255",
                    ..
                })
            ));
        }
        assert!(matches!(
            fixed::<32>("risk_note_hash", &[0; 31]),
            Err(Error::InvalidArgument {
                field: "risk_note_hash",
                why: "wrong length"
            })
        ));
    }
}
