//! The service side of approvals: requesting them, submitting them, and
//! consuming them in the transaction of the operation they authorise.
//!
//! Who approves what:
//!
//! | operation | approvals needed (distinct persons, none the requester) |
//! |---|---|
//! | recover, delete | one business owner and one security person |
//! | drill | one security person |
//! | policy change, approver-set change | one security person and a second security person or a business owner |

use shardkeep_audit::EventType;
use shardkeep_storage::{
    ApprovalOperation, ApprovalRecord, ApprovalRequestHash, ApprovalRequestRecord, ApprovalStore,
    PersonState, RegistryStore, Storage, Transaction,
};
use shardkeep_types::{ActorId, FreeText, Timestamp};

use crate::approval::{Approval, ApprovalParams, ApprovalRequest, request_hash};
use crate::error::Error;
use crate::policy::{CurrentPolicy, Policy, PolicySettings, check_auditable};
use crate::registry::Role;
use crate::service::BackupService;

/// Where a request stands after an approval was submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalState {
    /// The request.
    pub request: ApprovalRequestHash,
    /// Its operation.
    pub operation: ApprovalOperation,
    /// Who approved so far, in which role, in recording order.
    pub approvals: Vec<(ActorId, Role)>,
    /// Whether the approvals satisfy the operation's rule (approvers are
    /// checked again when the operation consumes them).
    pub satisfied: bool,
}

/// The roles an approval of `operation` may be given in.
fn accepted_roles(operation: ApprovalOperation) -> &'static [Role] {
    match operation {
        ApprovalOperation::Recover | ApprovalOperation::Delete => {
            &[Role::BusinessOwner, Role::Security]
        }
        ApprovalOperation::Drill => &[Role::Security],
        ApprovalOperation::PolicyChange | ApprovalOperation::ApproverSetChange => {
            &[Role::Security, Role::BusinessOwner]
        }
    }
}

/// The role that asks for `operation`: operators for the operations on
/// shares, security for changes of policy and approvers.
fn requester_role(operation: ApprovalOperation) -> Role {
    match operation {
        ApprovalOperation::Recover | ApprovalOperation::Drill | ApprovalOperation::Delete => {
            Role::Operator
        }
        ApprovalOperation::PolicyChange | ApprovalOperation::ApproverSetChange => Role::Security,
    }
}

/// What the approvals (one per person: storage keeps that) still lack for
/// `operation`, or `None` when they satisfy its rule.
fn missing(operation: ApprovalOperation, roles: &[Role]) -> Option<&'static str> {
    let security = roles.iter().filter(|r| **r == Role::Security).count();
    let owners = roles.iter().filter(|r| **r == Role::BusinessOwner).count();
    match operation {
        ApprovalOperation::Recover | ApprovalOperation::Delete => {
            if owners == 0 {
                Some("a business owner's approval")
            } else if security == 0 {
                Some("a security approval")
            } else {
                None
            }
        }
        ApprovalOperation::Drill => (security == 0).then_some("a security approval"),
        ApprovalOperation::PolicyChange | ApprovalOperation::ApproverSetChange => {
            if security == 0 {
                Some("a security approval")
            } else if security + owners < 2 {
                Some("a second approval (security or business owner)")
            } else {
                None
            }
        }
    }
}

/// Whether an error is an approval refusal that leaves an audit trace.
pub(crate) fn is_approval_refusal(error: &Error) -> bool {
    matches!(
        error,
        Error::ApprovalRequestUnknown(_)
            | Error::ApprovalMissing { .. }
            | Error::ApprovalExpired { .. }
            | Error::ApprovalReplayed(_)
            | Error::SelfApproval(_)
            | Error::SameApproverTwice(_)
            | Error::ApproverWrongRole { .. }
            | Error::ApproverRevoked(_)
            | Error::ApprovalSignatureInvalid(_)
            | Error::ApprovalParametersMismatch { .. }
            | Error::ApprovalNotSubmitter { .. }
            | Error::DrillOutsideSchedule { .. }
            | Error::DrillTooSoon { .. }
            | Error::ApproverSetChangeUnapproved(_)
    )
}

/// Loads a request and decodes its stored encoding, checking that it
/// hashes to its name.
async fn load_request<T: ApprovalStore + Send>(
    tx: &mut T,
    hash: &ApprovalRequestHash,
) -> Result<(ApprovalRequestRecord, ApprovalRequest), Error> {
    let record = match tx.approval_request(hash).await {
        Ok(record) => record,
        Err(shardkeep_storage::Error::ApprovalRequestNotFound(_)) => {
            return Err(Error::ApprovalRequestUnknown(*hash));
        }
        Err(other) => return Err(other.into()),
    };
    if request_hash(&record.encoding) != *hash {
        return Err(Error::ApprovalRequestCorrupt(*hash));
    }
    let request = ApprovalRequest::decode(&record.encoding)
        .map_err(|_| Error::ApprovalRequestCorrupt(*hash))?;
    Ok((record, request))
}

/// The approver, looked up now: registered, active, holding `role`.
async fn check_approver<T: RegistryStore + Send>(
    tx: &mut T,
    approver: &ActorId,
    role: Role,
) -> Result<shardkeep_storage::PersonRecord, Error> {
    let persons = tx.persons_named(std::slice::from_ref(approver)).await?;
    check_approver_among(&persons, approver, role).cloned()
}

/// The approver among `persons` (looked up now): registered, active,
/// holding `role`.
fn check_approver_among<'p>(
    persons: &'p [shardkeep_storage::PersonRecord],
    approver: &ActorId,
    role: Role,
) -> Result<&'p shardkeep_storage::PersonRecord, Error> {
    let Some(person) = persons.iter().find(|person| person.id == *approver) else {
        return Err(Error::ApproverRevoked(approver.clone()));
    };
    if !matches!(person.state, PersonState::Active) {
        return Err(Error::ApproverRevoked(approver.clone()));
    }
    if !person.roles.contains(role) {
        return Err(Error::ApproverWrongRole {
            approver: approver.clone(),
            role,
        });
    }
    Ok(person)
}

/// In the operation's transaction `tx`: the request `hash` exists, has not
/// lapsed at `now` and was not used; it was made in this deployment by
/// `actor` (who runs the operation) for exactly `expected`; its approvals
/// satisfy the operation's rule from distinct persons, none the requester,
/// each approver active and holding their role **now**. Marks the request
/// consumed (single use) and returns its approvals and its expiry.
///
/// # Errors
/// [`Error::ApprovalRequestUnknown`], [`Error::ApprovalRequestCorrupt`],
/// [`Error::ApprovalReplayed`], [`Error::ApprovalExpired`],
/// [`Error::ApprovalParametersMismatch`] (`deployment`, `requester` or the
/// parameter), [`Error::SelfApproval`], [`Error::ApproverRevoked`],
/// [`Error::ApproverWrongRole`], [`Error::ApprovalMissing`]; storage errors.
pub(crate) async fn consume_approvals<T: Transaction>(
    tx: &mut T,
    deployment: &shardkeep_types::Label,
    hash: &ApprovalRequestHash,
    expected: &ApprovalParams,
    actor: &ActorId,
    now: Timestamp,
) -> Result<(Vec<ApprovalRecord>, Timestamp), Error> {
    let (record, request) = load_request(tx, hash).await?;
    if record.consumed_at.is_some() {
        return Err(Error::ApprovalReplayed(*hash));
    }
    if now >= request.expires_at {
        return Err(Error::ApprovalExpired {
            request: *hash,
            expired_at: request.expires_at,
        });
    }
    // The deployment first, the requester next, then the parameters.
    let mismatch = |field| Error::ApprovalParametersMismatch {
        request: *hash,
        field,
    };
    if &request.deployment != deployment {
        return Err(mismatch("deployment"));
    }
    if &request.requester != actor {
        return Err(mismatch("requester"));
    }
    let approvals = checked_approvals(tx, deployment, hash, &request, expected).await?;
    match tx.consume_approval_request(hash, now, actor).await {
        Ok(()) => Ok((approvals, request.expires_at)),
        Err(shardkeep_storage::Error::ApprovalConsumed(_)) => Err(Error::ApprovalReplayed(*hash)),
        Err(other) => Err(other.into()),
    }
}

/// In the transaction of a drill under a pre-approved schedule: the
/// request `hash` exists and was never used; it was made in this
/// deployment for exactly `expected` (a drill whose change hash is the
/// schedule's hash); its approvals satisfy a drill's rule from persons
/// other than the requester and `actor` (who runs the drill), each
/// approver active and holding their role **now**. The request stays
/// unused and its own expiry does not apply (it bounded the time for
/// approving; the schedule's window bounds the drills). Returns its
/// approvals.
///
/// # Errors
/// As [`consume_approvals`], except [`Error::ApprovalExpired`].
pub(crate) async fn standing_approvals<T: Transaction>(
    tx: &mut T,
    deployment: &shardkeep_types::Label,
    hash: &ApprovalRequestHash,
    expected: &ApprovalParams,
    actor: &ActorId,
) -> Result<Vec<ApprovalRecord>, Error> {
    let (record, request) = load_request(tx, hash).await?;
    if record.consumed_at.is_some() {
        return Err(Error::ApprovalReplayed(*hash));
    }
    let approvals = checked_approvals(tx, deployment, hash, &request, expected).await?;
    if let Some(own) = approvals
        .iter()
        .find(|approval| approval.approver == *actor)
    {
        return Err(Error::SelfApproval(own.approver.clone()));
    }
    Ok(approvals)
}

/// The checks of [`consume_approvals`] and [`standing_approvals`]: the
/// deployment, every parameter, and the approvals (the operation's rule,
/// distinct persons, none the requester, each active with their role now).
async fn checked_approvals<T: Transaction>(
    tx: &mut T,
    deployment: &shardkeep_types::Label,
    hash: &ApprovalRequestHash,
    request: &ApprovalRequest,
    expected: &ApprovalParams,
) -> Result<Vec<ApprovalRecord>, Error> {
    let mismatch = |field| Error::ApprovalParametersMismatch {
        request: *hash,
        field,
    };
    if &request.deployment != deployment {
        return Err(mismatch("deployment"));
    }
    if let Some(field) = request.params.first_difference(expected) {
        return Err(mismatch(field));
    }
    let approvals = tx.approvals(hash).await?;
    let approvers: Vec<ActorId> = approvals
        .iter()
        .map(|approval| approval.approver.clone())
        .collect();
    let persons = tx.persons_named(&approvers).await?;
    let accepted = accepted_roles(request.params.operation);
    for approval in &approvals {
        if approval.approver == request.requester {
            return Err(Error::SelfApproval(approval.approver.clone()));
        }
        if !accepted.contains(&approval.role) {
            return Err(Error::ApproverWrongRole {
                approver: approval.approver.clone(),
                role: approval.role,
            });
        }
        check_approver_among(&persons, &approval.approver, approval.role)?;
    }
    let roles: Vec<Role> = approvals.iter().map(|approval| approval.role).collect();
    if let Some(needed) = missing(request.params.operation, &roles) {
        return Err(Error::ApprovalMissing {
            request: *hash,
            needed,
        });
    }
    Ok(approvals)
}

impl<S: Storage> BackupService<S> {
    /// Asks for approval of one operation with exactly `params`: an
    /// operator asks for recover, drill and delete, a security person for
    /// policy and approver-set changes. The service fills the deployment,
    /// a fresh 32-byte nonce, the times (`approval_ttl` from now) and the
    /// requester (the caller), stores the request and audits it
    /// (`approval-request`). The returned request's encoding is what the
    /// approvers read and sign ([`sign_approval`](crate::sign_approval)).
    ///
    /// # Errors
    /// The refusals of authorization (audited);
    /// [`Error::ApprovalParamsInvalid`]; storage and audit errors.
    pub async fn request_approval(
        &self,
        actor: &ActorId,
        params: ApprovalParams,
    ) -> Result<ApprovalRequest, Error> {
        let version = params
            .subject
            .as_ref()
            .map(|subject| subject.version.clone());
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(
                tx,
                actor,
                &[requester_role(params.operation)],
                version.as_ref(),
            )
            .await?;
        params.validate()?;
        let now = self.now();
        let expires_at =
            now.checked_add(self.config().approval_ttl)
                .ok_or(Error::InvalidConfig {
                    setting: "approval_ttl",
                    why: "reaches past the last representable time",
                })?;
        let request = ApprovalRequest {
            deployment: self.config().deployment_id.clone(),
            params,
            requester: actor.clone(),
            nonce: self.random_bytes(),
            created_at: now,
            expires_at,
        };
        let encoding = request.encode()?;
        let hash = request_hash(&encoding);
        tx.insert_approval_request(&ApprovalRequestRecord {
            hash,
            encoding,
            operation: request.params.operation,
            subject: version.clone(),
            requester: actor.clone(),
            created_at: now,
            expires_at,
            consumed_at: None,
            consumed_by: None,
        })
        .await?;
        let mut record = self.record(EventType::ApprovalRequest, actor, version.as_ref());
        record.detail = Some(FreeText::sanitized(&format!(
            "{} approval requested: request {hash}, ticket {}, expires {expires_at}",
            request.params.operation,
            request.params.ticket.as_str(),
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(request)
    }

    /// Records an approval ([`Approval`] bytes) submitted by the approver
    /// it names. In order: the caller is the approver; the request exists,
    /// is open and unexpired; the approver is not the requester, is
    /// registered and active and holds the role (looked up now), the
    /// operation takes approvals in that role; the signature verifies
    /// under their registered approval key; they have not approved the
    /// request before. Audited (`approve`); refusals too (`access-denied`).
    ///
    /// # Errors
    /// [`Error::Framing`], [`Error::Types`], [`Error::ApprovalByteInvalid`]
    /// for bytes that do not decode; [`Error::ApprovalNotSubmitter`],
    /// [`Error::ApprovalRequestUnknown`], [`Error::ApprovalReplayed`],
    /// [`Error::ApprovalExpired`], [`Error::SelfApproval`],
    /// [`Error::ApproverRevoked`], [`Error::ApproverWrongRole`],
    /// [`Error::ApprovalSignatureInvalid`], [`Error::SameApproverTwice`];
    /// storage and audit errors.
    pub async fn submit_approval(
        &self,
        actor: &ActorId,
        approval: &[u8],
    ) -> Result<ApprovalState, Error> {
        let approval = Approval::decode(approval)?;
        match self.record_approval(actor, &approval).await {
            Err(error) if is_approval_refusal(&error) => {
                self.refuse_approval(actor, EventType::Approve, error).await
            }
            other => other,
        }
    }

    async fn record_approval(
        &self,
        actor: &ActorId,
        approval: &Approval,
    ) -> Result<ApprovalState, Error> {
        if actor != &approval.approver {
            return Err(Error::ApprovalNotSubmitter {
                actor: actor.clone(),
                approver: approval.approver.clone(),
            });
        }
        let hash = approval.request_hash;
        let now = self.now();
        let mut tx = self.begin().await?;
        let (record, request) = load_request(&mut tx, &hash).await?;
        if record.consumed_at.is_some() {
            return Err(Error::ApprovalReplayed(hash));
        }
        if now >= request.expires_at {
            return Err(Error::ApprovalExpired {
                request: hash,
                expired_at: request.expires_at,
            });
        }
        if approval.approver == request.requester {
            return Err(Error::SelfApproval(approval.approver.clone()));
        }
        let person = check_approver(&mut tx, &approval.approver, approval.role).await?;
        if !accepted_roles(request.params.operation).contains(&approval.role) {
            return Err(Error::ApproverWrongRole {
                approver: approval.approver.clone(),
                role: approval.role,
            });
        }
        let key = person
            .keys
            .approval_key
            .ok_or_else(|| Error::ApprovalSignatureInvalid(approval.approver.clone()))?;
        approval.verify(&key)?;
        let stored = ApprovalRecord {
            request_hash: hash,
            approver: approval.approver.clone(),
            role: approval.role,
            signature: approval.signature,
            approved_at: now,
        };
        match tx.insert_approval(&stored).await {
            Ok(()) => {}
            Err(shardkeep_storage::Error::ApprovalExists { approver, .. }) => {
                return Err(Error::SameApproverTwice(approver));
            }
            Err(other) => return Err(other.into()),
        }
        let mut audit = self.record(EventType::Approve, actor, record.subject.as_ref());
        audit.detail = Some(FreeText::sanitized(&format!(
            "approved {} request {hash} as {}",
            request.params.operation, approval.role
        ))?);
        Self::audit(&mut tx, &audit).await?;
        let approvals: Vec<(ActorId, Role)> = tx
            .approvals(&hash)
            .await?
            .into_iter()
            .map(|approval| (approval.approver, approval.role))
            .collect();
        tx.commit().await?;
        let roles: Vec<Role> = approvals.iter().map(|(_, role)| *role).collect();
        Ok(ApprovalState {
            request: hash,
            operation: request.params.operation,
            satisfied: missing(request.params.operation, &roles).is_none(),
            approvals,
        })
    }

    /// Records an approval refusal as a failed `event` in a transaction of
    /// its own, and returns it.
    pub(crate) async fn refuse_approval<T>(
        &self,
        actor: &ActorId,
        event: EventType,
        error: Error,
    ) -> Result<T, Error> {
        let tx = self.begin().await?;
        self.refuse_as(tx, event, actor, None, error).await
    }

    /// Sets the split policy under approvals: the policy change a security
    /// person asked for ([`request_approval`](Self::request_approval) with
    /// [`ApprovalOperation::PolicyChange`] and the new policy's hash as
    /// change hash), approved by a security person and a second security
    /// person or business owner. The approvals are consumed in the same
    /// transaction that sets the policy and audits it, so a failed change
    /// leaves them unused and a done change can never reuse them.
    ///
    /// # Errors
    /// The refusals of authorization (audited); the validation errors of
    /// [`set_policy`](Self::set_policy); the refusals of approval
    /// consumption ([`Error::ApprovalRequestUnknown`],
    /// [`Error::ApprovalReplayed`], [`Error::ApprovalExpired`],
    /// [`Error::ApprovalParametersMismatch`], [`Error::SelfApproval`],
    /// [`Error::ApproverRevoked`], [`Error::ApproverWrongRole`],
    /// [`Error::ApprovalMissing`]; audited); storage and audit errors.
    pub async fn set_policy_approved(
        &self,
        actor: &ActorId,
        settings: PolicySettings,
        request: &ApprovalRequestHash,
        ticket: FreeText<{ crate::approval::MAX_APPROVAL_TICKET_LEN }>,
        risk_note_hash: [u8; 32],
    ) -> Result<CurrentPolicy, Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Security], None)
            .await?;
        let policy = Policy::new(
            settings.threshold,
            settings.server_shares,
            settings.kek_provider,
        )?;
        check_auditable(&policy)?;
        let expected = ApprovalParams {
            operation: ApprovalOperation::PolicyChange,
            subject: None,
            target: None,
            allow_server_shares: false,
            slots: Vec::new(),
            change_hash: Some(policy.hash()),
            ticket,
            risk_note_hash,
        };
        let deployment = self.config().deployment_id.clone();
        let approvals =
            match consume_approvals(&mut tx, &deployment, request, &expected, actor, now).await {
                Ok((approvals, _)) => approvals,
                Err(error) if is_approval_refusal(&error) => {
                    drop(tx);
                    return self.refuse_approval(actor, EventType::Policy, error).await;
                }
                Err(other) => return Err(other),
            };
        let approvers: Vec<String> = approvals
            .iter()
            .map(|approval| format!("{} ({})", approval.approver, approval.role))
            .collect();
        let detail = format!("request {request}, approved by {}", approvers.join(", "));
        let current = self
            .store_policy(&mut tx, actor, policy, now, Some(&detail))
            .await?;
        tx.commit().await?;
        Ok(current)
    }
}
