//! Recovery sessions on the service side (procedure step 6): starting one
//! on consumed approvals, finding it again, and wiping it when it lapses.
//!
//! A session's secret (its one-time age identity, and later the shares it
//! received) lives only in the memory of the [`BackupService`] instance
//! that started it; the database holds its non-secret metadata
//! (`recovery_sessions`), with at most one open session per key version.
//! Another replica asked about the session answers
//! [`Error::SessionOnOtherReplica`]. A session lapses when it is idle for
//! `session_idle_timeout` or when its approval request lapses, whichever
//! comes first; a lapsed session is wiped from memory and closed as
//! expired.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use shardkeep_audit::{EventType, Outcome};
use shardkeep_envelope::CurveShare;
use shardkeep_envelope::deps::age;
use shardkeep_storage::{
    ApprovalOperation, ApprovalRequestHash, GroupStore, KeyVersionStore, RecoverySessionId,
    RecoverySessionOutcome, RecoverySessionRecord, RecoverySessionStore, Storage, Transaction,
};
use shardkeep_types::{ActorId, FreeText, NodeVersion, ShareIndex, Threshold, Timestamp};

use crate::access::{RateCheck, RateKind};
use crate::approval::{
    ApprovalParams, ApprovalSubject, MAX_APPROVAL_TARGET_LEN, MAX_APPROVAL_TICKET_LEN,
};
use crate::approval_ops::{consume_approvals, is_approval_refusal, standing_approvals};
use crate::error::Error;
use crate::recovery_shares::{RejectedShare, ShareSource};
use crate::reference::VerifiedSplit;
use crate::registry::Role;
use crate::schedule::DrillSchedule;
use crate::service::BackupService;
use crate::session::{SessionDescriptor, UnsignedDescriptor};

/// What a recovery was approved for: every parameter of the approval
/// request, compared field by field when the session starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryParams {
    /// The key version to recover.
    pub version: NodeVersion,
    /// The node's keystore directory the recovered share is written to.
    pub target: FreeText<MAX_APPROVAL_TARGET_LEN>,
    /// Whether the server-held shares may join.
    pub allow_server_shares: bool,
    /// The incident ticket.
    pub ticket: FreeText<MAX_APPROVAL_TICKET_LEN>,
    /// The hash of the risk note the approvers read.
    pub risk_note_hash: [u8; 32],
}

/// What a drill was approved for (a security person approves): every
/// parameter of the approval request. A drill never uses server shares
/// and names no target (it writes to a sandbox of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillParams {
    /// The key version drilled.
    pub version: NodeVersion,
    /// The change or drill ticket.
    pub ticket: FreeText<MAX_APPROVAL_TICKET_LEN>,
    /// The hash of the risk note the approver read.
    pub risk_note_hash: [u8; 32],
}

impl RecoveryParams {
    /// The approval request parameters of exactly this recovery of the
    /// split `split_id` (the version's, as generate returned it): what the
    /// operator passes to
    /// [`request_approval`](BackupService::request_approval) before
    /// [`start_recovery`](BackupService::start_recovery).
    #[must_use]
    pub fn approval_params(&self, split_id: [u8; 32]) -> ApprovalParams {
        ApprovalParams {
            operation: ApprovalOperation::Recover,
            subject: Some(ApprovalSubject {
                version: self.version.clone(),
                split_id,
            }),
            target: Some(self.target.clone()),
            allow_server_shares: self.allow_server_shares,
            slots: Vec::new(),
            change_hash: None,
            ticket: self.ticket.clone(),
            risk_note_hash: self.risk_note_hash,
        }
    }
}

impl DrillParams {
    /// The approval request parameters of exactly this drill of the split
    /// `split_id`, for [`start_drill`](BackupService::start_drill).
    #[must_use]
    pub fn approval_params(&self, split_id: [u8; 32]) -> ApprovalParams {
        ApprovalParams {
            operation: ApprovalOperation::Drill,
            subject: Some(ApprovalSubject {
                version: self.version.clone(),
                split_id,
            }),
            target: None,
            allow_server_shares: false,
            slots: Vec::new(),
            change_hash: None,
            ticket: self.ticket.clone(),
            risk_note_hash: self.risk_note_hash,
        }
    }

    /// The approval request parameters pre-approving drills like this one
    /// under `schedule`, for
    /// [`start_scheduled_drill`](BackupService::start_scheduled_drill):
    /// the drill's, with the schedule's hash as change hash.
    ///
    /// # Errors
    /// [`Error::DrillScheduleInvalid`].
    pub fn schedule_approval_params(
        &self,
        split_id: [u8; 32],
        schedule: &DrillSchedule,
    ) -> Result<ApprovalParams, Error> {
        let mut params = self.approval_params(split_id);
        params.change_hash = Some(schedule.hash()?);
        Ok(params)
    }
}

/// The parameters of a session, recover or drill.
struct SessionParams<'a> {
    operation: ApprovalOperation,
    /// The pre-approved schedule a drill runs under, instead of approvals
    /// of its own.
    schedule: Option<&'a DrillSchedule>,
    version: NodeVersion,
    target: Option<FreeText<MAX_APPROVAL_TARGET_LEN>>,
    allow_server_shares: bool,
    ticket: FreeText<MAX_APPROVAL_TICKET_LEN>,
    risk_note_hash: [u8; 32],
}

/// Where a recovery session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryProgress {
    /// The session.
    pub session: RecoverySessionId,
    /// The key version it recovers.
    pub version: NodeVersion,
    /// Shares needed (`t`).
    pub threshold: u8,
    /// The indices of the shares accepted so far.
    pub received: Vec<ShareIndex>,
    /// When the session lapses unless used again.
    pub idle_expires_at: Timestamp,
    /// When it ends at the latest.
    pub expires_at: Timestamp,
}

/// One session held in this instance's memory.
pub(crate) struct LiveSession {
    /// The one-time age identity submissions are encrypted to.
    pub(crate) identity: age::x25519::Identity,
    pub(crate) operation: ApprovalOperation,
    pub(crate) started_at: Timestamp,
    pub(crate) split: VerifiedSplit,
    pub(crate) target: String,
    pub(crate) allow_server_shares: bool,
    pub(crate) expires_at: Timestamp,
    pub(crate) idle_expires_at: Timestamp,
    /// The shares accepted so far (wiped on drop).
    pub(crate) received: Vec<AcceptedShare>,
    /// The shares rejected so far, with their reasons.
    pub(crate) rejected: Vec<RejectedShare>,
    /// The sealed protocol archive, from the first accepted custodian
    /// share.
    pub(crate) archive: Option<Vec<u8>>,
    /// Where the session's time went so far.
    pub(crate) timings: crate::RecoveryTimings,
    /// The tss-lib group's signing threshold, for the self-test (read
    /// once, at the start).
    pub(crate) group: Threshold,
}

/// A share accepted into a session.
pub(crate) struct AcceptedShare {
    pub(crate) index: ShareIndex,
    pub(crate) source: ShareSource,
    pub(crate) envelope_id: shardkeep_types::EnvelopeId,
    /// The share (wiped on drop).
    pub(crate) share: CurveShare,
}

impl LiveSession {
    /// The time it lapsed at, if it has at `now`.
    fn lapsed_at(&self, now: Timestamp) -> Option<Timestamp> {
        let deadline = self.idle_expires_at.min(self.expires_at);
        (now >= deadline).then_some(deadline)
    }
}

/// The sessions this instance holds, by id. Dropping a session wipes its
/// secret (the age identity zeroizes itself; shares are wiped on drop).
///
/// A session at threshold leaves the table for the call that completes it,
/// and is *finishing* until that call has closed it in the database: a
/// concurrent call for it must not take it for one this replica lost.
#[derive(Default)]
pub(crate) struct SessionTable {
    sessions: Mutex<HashMap<RecoverySessionId, LiveSession>>,
    finishing: Mutex<HashSet<RecoverySessionId>>,
}

impl SessionTable {
    /// Runs `f` on the table. The lock is held for `f` only: never across
    /// an `.await`.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<RecoverySessionId, LiveSession>) -> T,
    ) -> T {
        // A panic while holding the lock leaves the table usable.
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut sessions)
    }

    /// Takes `session` out of the table for the call that completes it:
    /// it is finishing until the returned guard drops. Call it inside
    /// [`with`](Self::with), so that no other call sees the session
    /// neither held nor finishing.
    pub(crate) fn take_to_finish<'a>(
        &'a self,
        sessions: &mut HashMap<RecoverySessionId, LiveSession>,
        session: &RecoverySessionId,
    ) -> Option<(LiveSession, Finishing<'a>)> {
        let live = sessions.remove(session)?;
        self.finishing_set().insert(*session);
        Some((
            live,
            Finishing {
                table: self,
                session: *session,
            },
        ))
    }

    /// Whether the call that completes `session` is still at work. Call it
    /// inside [`with`](Self::with) (the lock order is the table's, then
    /// this set's).
    pub(crate) fn is_finishing(&self, session: &RecoverySessionId) -> bool {
        self.finishing_set().contains(session)
    }

    fn finishing_set(&self) -> std::sync::MutexGuard<'_, HashSet<RecoverySessionId>> {
        self.finishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session being completed; it stops finishing when this drops (after
/// its close is committed, or on any error on the way).
pub(crate) struct Finishing<'a> {
    table: &'a SessionTable,
    session: RecoverySessionId,
}

impl Drop for Finishing<'_> {
    fn drop(&mut self) {
        self.table.finishing_set().remove(&self.session);
    }
}

/// A session found for use, in memory and open.
pub(crate) enum Found {
    /// Held here, not lapsed; its idle deadline moved to the given time.
    Live(Timestamp),
    /// Held here but lapsed at the given time: wiped now.
    Lapsed(Timestamp),
    /// Not held here: taken by the call that completes it, which has not
    /// closed it yet.
    Finishing,
    /// Not held here.
    Absent,
}

impl<S: Storage> BackupService<S> {
    /// Starts a recovery session (an operator does it) on consumed
    /// approvals: the request `request`, asked by the caller for exactly
    /// `params` and approved by a business owner and a security person.
    ///
    /// In one transaction: the caller is authorized; the version's split
    /// reference verifies; no other session of the version is open (a
    /// lapsed one is closed as expired first); the approvals are consumed
    /// (every parameter compared); the session's metadata and its audit
    /// record (`recover`) are written. The session's one-time age identity
    /// stays in this instance's memory; the returned descriptor, signed by
    /// the service under `shardkeep/recovery-session/v1`, is what the
    /// custodians check before they send their shares
    /// ([`prepare_recovery_submission`](crate::prepare_recovery_submission)).
    ///
    /// The session lapses when idle for `session_idle_timeout`, and at the
    /// latest when its approval request lapses.
    ///
    /// # Errors
    /// [`Error::RateLimited`] (recovery attempts, recorded); the refusals
    /// of authorization (audited); [`Error::VersionRetired`];
    /// [`Error::RecoveryTargetNotADirectory`]; [`Error::RecoverySessionActive`]
    /// (audited); the refusals of approval consumption (audited,
    /// `recover`); [`Error::SplitReferenceInvalid`]; storage and audit
    /// errors.
    pub async fn start_recovery(
        &self,
        actor: &ActorId,
        request: &ApprovalRequestHash,
        params: RecoveryParams,
    ) -> Result<SessionDescriptor, Error> {
        self.start_session(
            actor,
            request,
            SessionParams {
                operation: ApprovalOperation::Recover,
                schedule: None,
                version: params.version,
                target: Some(params.target),
                allow_server_shares: params.allow_server_shares,
                ticket: params.ticket,
                risk_note_hash: params.risk_note_hash,
            },
        )
        .await
    }

    /// Starts a drill session (an operator does it) on a consumed security
    /// approval of a drill of exactly `params`: as
    /// [`start_recovery`](Self::start_recovery), but only external shares
    /// are ever used (any server-held index is refused), and at threshold
    /// the keystore is written to a sandbox under a one-time keystore KEK,
    /// self-tested and deleted again; the drill report is stored and
    /// audited (`drill`).
    ///
    /// # Errors
    /// As [`start_recovery`](Self::start_recovery); approval refusals are
    /// audited as `drill`.
    pub async fn start_drill(
        &self,
        actor: &ActorId,
        request: &ApprovalRequestHash,
        params: DrillParams,
    ) -> Result<SessionDescriptor, Error> {
        self.start_session(
            actor,
            request,
            SessionParams {
                operation: ApprovalOperation::Drill,
                schedule: None,
                version: params.version,
                target: None,
                allow_server_shares: false,
                ticket: params.ticket,
                risk_note_hash: params.risk_note_hash,
            },
        )
        .await
    }

    /// Starts a drill session (an operator does it) under a pre-approved
    /// drill schedule, without a per-drill approval: `schedule_request` is
    /// a drill request of exactly `params` whose change hash is
    /// `schedule`'s hash, approved by a security person (see
    /// [`DrillSchedule`]). The drill runs as one started by
    /// [`start_drill`](Self::start_drill); the request is not used up.
    ///
    /// At each start, in the session's transaction: the request was never
    /// used and was made in this deployment for exactly these parameters;
    /// its approvers (none of them the caller or the requester) are active
    /// and hold their role now; `now` is in the schedule's window; the last
    /// session started under the schedule started at least `cadence` ago.
    /// The session ends at the latest when the window does, or
    /// `approval_ttl` after its start, whichever comes first.
    ///
    /// # Errors
    /// As [`start_drill`](Self::start_drill), except
    /// [`Error::ApprovalExpired`]; [`Error::DrillScheduleInvalid`];
    /// [`Error::DrillOutsideSchedule`], [`Error::DrillTooSoon`] (audited,
    /// `drill`).
    pub async fn start_scheduled_drill(
        &self,
        actor: &ActorId,
        schedule_request: &ApprovalRequestHash,
        schedule: &DrillSchedule,
        params: DrillParams,
    ) -> Result<SessionDescriptor, Error> {
        schedule.validate()?;
        self.start_session(
            actor,
            schedule_request,
            SessionParams {
                operation: ApprovalOperation::Drill,
                schedule: Some(schedule),
                version: params.version,
                target: None,
                allow_server_shares: false,
                ticket: params.ticket,
                risk_note_hash: params.risk_note_hash,
            },
        )
        .await
    }

    /// The approvals a drill under `schedule` starts on, in the session's
    /// transaction: the standing approvals of the request, the window and
    /// the cadence. Returns them and the session's end.
    async fn scheduled_approvals(
        &self,
        tx: &mut S::Transaction,
        request: &ApprovalRequestHash,
        schedule: &DrillSchedule,
        expected: &ApprovalParams,
        actor: &ActorId,
        now: Timestamp,
    ) -> Result<(Vec<shardkeep_storage::ApprovalRecord>, Timestamp), Error> {
        let deployment = &self.config().deployment_id;
        let approvals = standing_approvals(tx, deployment, request, expected, actor).await?;
        if !schedule.covers(now) {
            return Err(Error::DrillOutsideSchedule {
                request: *request,
                not_before: schedule.not_before,
                not_after: schedule.not_after,
            });
        }
        if let Some(last) = tx.latest_recovery_session_of_request(request).await? {
            // Past the last representable time: never again.
            let next_at = last
                .started_at
                .checked_add(schedule.cadence)
                .unwrap_or(schedule.not_after);
            if now < next_at {
                return Err(Error::DrillTooSoon {
                    request: *request,
                    next_at,
                });
            }
        }
        let end = now
            .checked_add(self.config().approval_ttl)
            .map_or(schedule.not_after, |end| end.min(schedule.not_after));
        Ok((approvals, end))
    }

    async fn start_session(
        &self,
        actor: &ActorId,
        request: &ApprovalRequestHash,
        params: SessionParams<'_>,
    ) -> Result<SessionDescriptor, Error> {
        let operation = params.operation;
        let event = match operation {
            ApprovalOperation::Drill => EventType::Drill,
            _ => EventType::Recover,
        };
        let clock = std::time::Instant::now();
        self.expire_recovery_sessions().await?;
        let version = params.version.clone();
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator], Some(&version))
            .await?;
        // The attempt counts in this transaction, which then holds nothing
        // else until the approvals are consumed: every refusal before that
        // commits it, so a refused attempt still counts.
        if let RateCheck::Refused(error) = self
            .count_in(&mut tx, actor, RateKind::RecoveryAttempt)
            .await?
        {
            return Self::refuse_counted(tx, error).await;
        }
        // A recovered share of a retired version must never be put back
        // into service; a retiring one is still the fallback of a rotation.
        if let Some(error) = crate::rotation::unrecoverable(&mut tx, &version).await? {
            return Self::refuse_counted(tx, error).await;
        }
        // The node's keystore directory must be there before approvals are
        // used for it (a recovery writes into it, never creates it).
        if let Some(target) = &params.target
            && !std::path::Path::new(target.as_str()).is_dir()
        {
            let error = Error::RecoveryTargetNotADirectory(target.as_str().to_owned());
            return Self::refuse_counted(tx, error).await;
        }
        let mut timings = crate::RecoveryTimings::default();
        let group = tx.group(&version.key_id).await?;
        let group =
            Threshold::from_tss_lib(usize::from(group.tss_degree), usize::from(group.parties))?;
        let reference = tx.split_reference(&version).await?;
        let split = crate::recovery_shares::timed(&mut timings.checks, || {
            VerifiedSplit::verify(&version, &reference, self.trusted_signers())
        })?;
        if let Some(open) = tx.open_recovery_session(&version).await? {
            let lapsed_at = open.idle_expires_at.min(open.expires_at);
            // One completing here is active whatever its deadline says.
            if now < lapsed_at || self.sessions().is_finishing(&open.id) {
                let error = Error::RecoverySessionActive(version.clone());
                return self
                    .refuse_as(tx, EventType::AccessDenied, actor, Some(&version), error)
                    .await;
            }
            self.close_lapsed(&mut tx, actor, &open, now).await?;
        }
        let expected = ApprovalParams {
            operation,
            subject: Some(ApprovalSubject {
                version: version.clone(),
                split_id: *split.split_id(),
            }),
            target: params.target.clone(),
            allow_server_shares: params.allow_server_shares,
            slots: Vec::new(),
            change_hash: params.schedule.map(DrillSchedule::hash).transpose()?,
            ticket: params.ticket,
            risk_note_hash: params.risk_note_hash,
        };
        let deployment = self.config().deployment_id.clone();
        let approved = match params.schedule {
            None => consume_approvals(&mut tx, &deployment, request, &expected, actor, now).await,
            Some(schedule) => {
                self.scheduled_approvals(&mut tx, request, schedule, &expected, actor, now)
                    .await
            }
        };
        let (approvals, expires_at) = match approved {
            Ok(approved) => approved,
            Err(error) if is_approval_refusal(&error) => {
                return self.refuse_as(tx, event, actor, None, error).await;
            }
            Err(other) => return Err(other),
        };
        let idle_expires_at = self.idle_deadline(now, expires_at)?;
        let session = RecoverySessionId(self.random_bytes());
        let keys_clock = std::time::Instant::now();
        let identity = age::x25519::Identity::generate();
        let descriptor = UnsignedDescriptor {
            session,
            deployment: &deployment,
            operation,
            version: &version,
            split_id: *split.split_id(),
            recipient: identity.to_public().to_string(),
            started_at: now,
            expires_at,
            request: *request,
            approvals: approvals
                .iter()
                .map(|approval| (approval.approver.clone(), approval.role))
                .collect(),
        }
        .sign(self.envelope_signer())?;
        timings.session_keys = keys_clock.elapsed();
        tx.insert_recovery_session(&RecoverySessionRecord {
            id: session,
            version: version.clone(),
            split_id: *split.split_id(),
            operation,
            request_hash: *request,
            replica: self.config().replica_id.clone(),
            started_by: actor.clone(),
            started_at: now,
            expires_at,
            idle_expires_at,
            closed_at: None,
            outcome: None,
        })
        .await
        .map_err(|error| match error {
            shardkeep_storage::Error::RecoverySessionOpen(version) => {
                Error::RecoverySessionActive(version)
            }
            other => other.into(),
        })?;
        let approvers: Vec<String> = approvals
            .iter()
            .map(|approval| format!("{} ({})", approval.approver, approval.role))
            .collect();
        let mut record = self.record(event, actor, Some(&version));
        if let Some(target) = &params.target {
            record.target = Some(FreeText::sanitized(target.as_str())?);
        }
        record.detail = Some(FreeText::sanitized(&format!(
            "{operation} session {session} started on replica {}: split {}, server shares {}, \
             request {request}{} approved by {}, idle until {idle_expires_at}, ends {expires_at}",
            self.config().replica_id,
            hex::encode(split.split_id()),
            if params.allow_server_shares {
                "allowed"
            } else {
                "not allowed"
            },
            if params.schedule.is_some() {
                " (a pre-approved drill schedule)"
            } else {
                ""
            },
            approvers.join(", "),
        ))?);
        Self::audit(&mut tx, &record).await?;
        crate::recovery_shares::timed_async(&mut timings.commits, tx.commit()).await?;
        crate::pause::announce_session_key(&session, &identity);
        self.sessions().with(|sessions| {
            sessions.insert(
                session,
                LiveSession {
                    identity,
                    operation,
                    started_at: now,
                    split,
                    target: params
                        .target
                        .as_ref()
                        .map_or_else(String::new, |target| target.as_str().to_owned()),
                    allow_server_shares: params.allow_server_shares,
                    expires_at,
                    idle_expires_at,
                    received: Vec::new(),
                    rejected: Vec::new(),
                    archive: None,
                    timings: crate::RecoveryTimings {
                        total: clock.elapsed(),
                        ..timings
                    },
                    group,
                },
            )
        });
        Ok(descriptor)
    }

    /// Where a session stands (an operator asks). Counts as activity: the
    /// idle deadline moves.
    ///
    /// # Errors
    /// The refusals of authorization (audited);
    /// [`Error::RecoverySessionUnknown`], [`Error::SessionOnOtherReplica`],
    /// [`Error::RecoverySessionClosed`], [`Error::RecoverySessionFinishing`],
    /// [`Error::RecoverySessionExpired`],
    /// [`Error::RecoverySessionLost`]; storage and audit errors.
    pub async fn recovery_progress(
        &self,
        actor: &ActorId,
        session: &RecoverySessionId,
    ) -> Result<RecoveryProgress, Error> {
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator], None)
            .await?;
        if let Err(refused) = self.use_session_in(&mut tx, actor, session).await? {
            // Commits the session's close when it lapsed.
            return Self::refuse_counted(tx, refused).await;
        }
        tx.commit().await?;
        self.sessions()
            .with(|sessions| {
                sessions.get(session).map(|live| RecoveryProgress {
                    session: *session,
                    version: live.split.version().clone(),
                    threshold: live.split.threshold().t(),
                    received: live.received.iter().map(|held| held.index).collect(),
                    idle_expires_at: live.idle_expires_at,
                    expires_at: live.expires_at,
                })
            })
            .ok_or(Error::RecoverySessionLost(*session))
    }

    /// Wipes the sessions of this instance that lapsed (idle too long, or
    /// past their end) and closes their metadata as expired, with an audit
    /// record each. Returns how many. Every session operation runs it
    /// first; run it from a timer too, so an idle session never outlives
    /// its deadline by more than the timer's period.
    ///
    /// # Errors
    /// Storage and audit errors (the lapsed sessions are wiped from memory
    /// regardless).
    pub async fn expire_recovery_sessions(&self) -> Result<usize, Error> {
        let now = self.now();
        let lapsed: Vec<RecoverySessionId> = self.sessions().with(|sessions| {
            let lapsed: Vec<RecoverySessionId> = sessions
                .iter()
                .filter(|(_, live)| live.lapsed_at(now).is_some())
                .map(|(id, _)| *id)
                .collect();
            for id in &lapsed {
                sessions.remove(id);
            }
            lapsed
        });
        if lapsed.is_empty() {
            return Ok(0);
        }
        let replica = self.replica_actor()?;
        let mut tx = self.begin().await?;
        for id in &lapsed {
            let record = tx.recovery_session(id).await?;
            if record.closed_at.is_none() {
                self.close_lapsed(&mut tx, &replica, &record, now).await?;
            }
        }
        tx.commit().await?;
        Ok(lapsed.len())
    }

    /// Finds `session` for use by `actor`, in `tx`: held in this
    /// instance's memory, open and not lapsed (its idle deadline moves, in
    /// memory and in `tx`). A lapsed session is wiped and closed as
    /// expired; a session of this replica that memory no longer holds is
    /// closed as abandoned. The inner error is the refusal: commit `tx`
    /// (it holds the close and its audit record), then return it; the
    /// outer one is a storage or audit failure.
    pub(crate) async fn use_session_in(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        session: &RecoverySessionId,
    ) -> Result<Result<(), Error>, Error> {
        let now = self.now();
        let idle = self.config().session_idle_timeout;
        let table = self.sessions();
        let found = table.with(|sessions| {
            let Some(live) = sessions.get_mut(session) else {
                if table.is_finishing(session) {
                    return Found::Finishing;
                }
                return Found::Absent;
            };
            if let Some(at) = live.lapsed_at(now) {
                sessions.remove(session);
                return Found::Lapsed(at);
            }
            let moved = now
                .checked_add(idle)
                .map_or(live.expires_at, |at| at.min(live.expires_at));
            live.idle_expires_at = moved;
            Found::Live(moved)
        });
        let record = match tx.recovery_session(session).await {
            Ok(record) => record,
            Err(shardkeep_storage::Error::RecoverySessionNotFound(_)) => {
                return Ok(Err(Error::RecoverySessionUnknown(*session)));
            }
            Err(other) => return Err(other.into()),
        };
        if record.replica != self.config().replica_id {
            return Ok(Err(Error::SessionOnOtherReplica {
                session: *session,
                replica: record.replica,
            }));
        }
        if record.closed_at.is_some() {
            // Closed elsewhere (a replica that found it lapsed): wipe it.
            self.sessions().with(|sessions| sessions.remove(session));
            return Ok(Err(Error::RecoverySessionClosed(*session)));
        }
        match found {
            Found::Finishing => Ok(Err(Error::RecoverySessionFinishing(*session))),
            Found::Live(idle_expires_at) => {
                tx.touch_recovery_session(session, idle_expires_at).await?;
                Ok(Ok(()))
            }
            Found::Lapsed(expired_at) => {
                self.close_lapsed(tx, actor, &record, now).await?;
                Ok(Err(Error::RecoverySessionExpired {
                    session: *session,
                    expired_at,
                }))
            }
            Found::Absent => {
                let lapsed_at = record.idle_expires_at.min(record.expires_at);
                if now >= lapsed_at {
                    self.close_lapsed(tx, actor, &record, now).await?;
                    return Ok(Err(Error::RecoverySessionExpired {
                        session: *session,
                        expired_at: lapsed_at,
                    }));
                }
                tx.close_recovery_session(session, now, RecoverySessionOutcome::Abandoned)
                    .await?;
                let mut audit = self.record(EventType::Recover, actor, Some(&record.version));
                audit.outcome = Outcome::Failure {
                    reason: FreeText::sanitized(&format!(
                        "recovery session {session} abandoned: this replica no longer holds it{}",
                        Self::sweep_sandboxes(&record)
                    ))?,
                };
                Self::audit(tx, &audit).await?;
                Ok(Err(Error::RecoverySessionLost(*session)))
            }
        }
    }

    /// Closes a lapsed session's metadata as expired in `tx`, wipes it
    /// from memory if held, and audits it.
    async fn close_lapsed(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        record: &RecoverySessionRecord,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.sessions().with(|sessions| sessions.remove(&record.id));
        tx.close_recovery_session(&record.id, now, RecoverySessionOutcome::Expired)
            .await?;
        let mut audit = self.record(EventType::Recover, actor, Some(&record.version));
        audit.outcome = Outcome::Failure {
            reason: FreeText::sanitized(&format!(
                "recovery session {} expired (idle until {}, end {}); wiped{}",
                record.id,
                record.idle_expires_at,
                record.expires_at,
                Self::sweep_sandboxes(record)
            ))?,
        };
        Self::audit(tx, &audit).await
    }

    /// For a drill's session closed without completing: removes the
    /// sandboxes it left (a process killed during the drill) and says so
    /// for the audit record.
    fn sweep_sandboxes(record: &RecoverySessionRecord) -> String {
        if record.operation != ApprovalOperation::Drill {
            return String::new();
        }
        match crate::recovery_shares::remove_drill_sandboxes(&record.id) {
            (0, 0) => String::new(),
            (removed, 0) => format!("; {removed} sandbox(es) left by the drill removed"),
            (removed, left) => format!(
                "; {removed} sandbox(es) left by the drill removed, {left} could NOT be removed"
            ),
        }
    }

    /// `now` plus the idle timeout, but never past `end`.
    fn idle_deadline(&self, now: Timestamp, end: Timestamp) -> Result<Timestamp, Error> {
        let idle =
            now.checked_add(self.config().session_idle_timeout)
                .ok_or(Error::InvalidConfig {
                    setting: "session_idle_timeout",
                    why: "reaches past the last representable time",
                })?;
        Ok(idle.min(end))
    }

    /// The name this replica records its own actions under.
    fn replica_actor(&self) -> Result<ActorId, Error> {
        Ok(ActorId::new(format!(
            "replica:{}",
            self.config().replica_id
        ))?)
    }
}
