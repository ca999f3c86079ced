//! The gRPC service: each RPC resolves its caller from the client
//! certificate, checks and converts the request, and calls one operation
//! of the backup procedure.

use core::fmt;
use core::pin::Pin;
use std::sync::Arc;

use shardkeep_audit::Witness;
use shardkeep_backup::{
    BackupService, ChecklistKind, ChecklistQuery, DeletionParams, DeliveryReport, DeliveryResult,
    DrillParams, EntityRegistration, MAX_APPROVAL_LEN, MAX_INVENTORY_PROOF_LEN,
    MAX_SEALED_SUBMISSION_LEN, MAX_SUBMISSIONS_PER_CALL, PersonKeys, PersonRegistration,
    RecoveryParams, RecoveryTarget, Role, RotateRequest, RotationKind, SessionDescriptor,
    ShareListQuery, StatusQuery, ZeroRetentionDraft,
};
use shardkeep_keydata::{KeystoreCodec, SelfTestPeers};
use shardkeep_storage::{
    ApprovalRequestHash, MAX_RECEIPT_LEN, MAX_REVOCATION_REASON_LEN, RecoverySessionId, Storage,
};
use shardkeep_types::{ActorId, CustodianId, FreeText, KeyVersion, NodeVersion, Signer};
use tonic::codegen::tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::convert::{
    self, GenerateSource, capped, fixed, invalid, node_version, optional_key_id, optional_node_id,
    page_token, share_indices, share_slot,
};
use crate::edge::EdgeRefusals;
use crate::error::Error;
use crate::identity::{self, Caller, CertificateFingerprint};
use crate::proto;
use crate::proto::backup_service_server::BackupServiceServer;
use crate::sidecar::SelfTestSidecar;

/// Largest request or response message, in bytes (4 MiB): a larger one is
/// refused with `OUT_OF_RANGE` before it is decoded.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// What a recovery at threshold writes with and self-tests against, per
/// node: the host process provides it (its keystore KEK, its channel to the
/// other parties' sidecars).
pub trait RecoveryTargets: Send + Sync + 'static {
    /// The keystore codec of the node `version` is a share of.
    ///
    /// # Errors
    /// [`Error::NoRecoveryTarget`] when this process does not serve that
    /// node.
    fn codec(&self, version: &NodeVersion) -> Result<Arc<dyn KeystoreCodec + Send + Sync>, Error>;

    /// A fresh connection to the other parties of `version`'s group, for
    /// the recovered share's sign/aggregate self-test.
    ///
    /// # Errors
    /// [`Error::NoRecoveryTarget`], or the host's own failure to connect.
    fn peers(&self, version: &NodeVersion) -> Result<Box<dyn SelfTestPeers + Send>, Error>;
}

/// The other parties of a version's group, connected on first use: a
/// call that leaves the session below its threshold never starts them.
struct LazyPeers {
    targets: Arc<dyn RecoveryTargets>,
    version: NodeVersion,
    connected: Option<Box<dyn SelfTestPeers + Send>>,
}

impl LazyPeers {
    fn connected(&mut self) -> shardkeep_keydata::Result<&mut (dyn SelfTestPeers + Send)> {
        if self.connected.is_none() {
            let peers = self
                .targets
                .peers(&self.version)
                .map_err(|error| shardkeep_keydata::Error::Peer(error.to_string()))?;
            self.connected = Some(peers);
        }
        match self.connected.as_deref_mut() {
            Some(peers) => Ok(peers),
            None => Err(shardkeep_keydata::Error::Peer("not connected".to_owned())),
        }
    }
}

impl SelfTestPeers for LazyPeers {
    fn commit(
        &mut self,
        request: &shardkeep_keydata::CommitRequest,
    ) -> shardkeep_keydata::Result<Vec<shardkeep_keydata::NonceCommitment>> {
        self.connected()?.commit(request)
    }

    fn sign(
        &mut self,
        request: &shardkeep_keydata::SignRequest,
    ) -> shardkeep_keydata::Result<Vec<shardkeep_keydata::SignatureShare>> {
        self.connected()?.sign(request)
    }
}

/// The chunks of an audit export, as `ExportAudit` streams them.
pub type ExportStream =
    Pin<Box<dyn Stream<Item = Result<proto::ExportAuditChunk, Status>> + Send + 'static>>;

/// A future that need not be `Send` (it runs on a blocking thread).
type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What signs and witnesses the audit checkpoint a hard delete ends with,
/// and the server's periodic ones, with the witness's type erased so that
/// [`GrpcService`] stays generic over its storage only.
trait Checkpoints<S>: Send + Sync {
    /// Checkpoints the log's committed head into the witness.
    fn checkpoint<'a>(
        &'a self,
        backup: &'a BackupService<S>,
    ) -> LocalFuture<'a, Result<shardkeep_audit::Checkpoint, shardkeep_audit::Error>>;

    /// [`BackupService::hard_delete`] with this signer and witness.
    fn hard_delete<'a>(
        &'a self,
        backup: &'a BackupService<S>,
        actor: &'a ActorId,
        version: &'a NodeVersion,
        request: &'a ApprovalRequestHash,
    ) -> LocalFuture<'a, Result<ZeroRetentionDraft, shardkeep_backup::Error>>;
}

/// The audit signer and the witness of [`GrpcService::with_checkpoints`].
struct Witnessed<W> {
    signer: Arc<dyn Signer + Send + Sync>,
    // One checkpoint at a time: a witness appends in order.
    witness: tokio::sync::Mutex<W>,
}

impl<S: Storage, W: Witness> Checkpoints<S> for Witnessed<W> {
    fn checkpoint<'a>(
        &'a self,
        backup: &'a BackupService<S>,
    ) -> LocalFuture<'a, Result<shardkeep_audit::Checkpoint, shardkeep_audit::Error>> {
        Box::pin(async move {
            let mut witness = self.witness.lock().await;
            shardkeep_audit::checkpoint(
                backup.storage(),
                self.signer.as_ref(),
                &mut *witness,
                backup.now(),
            )
            .await
        })
    }

    fn hard_delete<'a>(
        &'a self,
        backup: &'a BackupService<S>,
        actor: &'a ActorId,
        version: &'a NodeVersion,
        request: &'a ApprovalRequestHash,
    ) -> LocalFuture<'a, Result<ZeroRetentionDraft, shardkeep_backup::Error>> {
        Box::pin(async move {
            let mut witness = self.witness.lock().await;
            backup
                .hard_delete(actor, version, request, self.signer.as_ref(), &mut *witness)
                .await
        })
    }
}

/// Checkpoints the audit log into the witness when it has grown since its
/// last checkpoint here, on a blocking thread (the witness and the signer
/// need not be `Send` across awaits, as for a hard delete).
pub(crate) struct Checkpointer<S> {
    backup: BackupService<S>,
    checkpoints: Arc<dyn Checkpoints<S>>,
    /// The head sequence last checkpointed by this server.
    last: Option<u64>,
}

impl<S: Storage + 'static> Checkpointer<S> {
    /// A checkpoint of the committed head unless this server checkpointed
    /// that head already; its sequence, or `None` when the log has not
    /// grown.
    pub(crate) async fn checkpoint_if_grown(&mut self) -> Result<Option<u64>, Error> {
        use shardkeep_storage::{AuditStore as _, Transaction as _};
        let head = {
            let mut read = self.backup.storage().begin_read_only().await?;
            let head = read.audit_head().await?;
            read.rollback().await?;
            head
        };
        if head.sequence == 0 || self.last == Some(head.sequence) {
            return Ok(None);
        }
        let backup = self.backup.clone();
        let checkpoints = self.checkpoints.clone();
        let handle = tokio::runtime::Handle::current();
        let checkpoint =
            tokio::task::spawn_blocking(move || handle.block_on(checkpoints.checkpoint(&backup)))
                .await
                .map_err(|_| Error::TaskFailed)?
                .map_err(Error::Audit)?;
        self.last = Some(checkpoint.sequence);
        Ok(Some(checkpoint.sequence))
    }
}

/// The backup procedure served over gRPC.
pub struct GrpcService<S> {
    backup: BackupService<S>,
    targets: Arc<dyn RecoveryTargets>,
    checkpoints: Option<Arc<dyn Checkpoints<S>>>,
    edge: EdgeRefusals,
    sidecar: Option<Arc<SelfTestSidecar>>,
}

impl<S> fmt::Debug for GrpcService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcService")
            .field("backup", &self.backup)
            .finish_non_exhaustive()
    }
}

impl<S: Storage + 'static> GrpcService<S> {
    /// The procedure `backup` served, recovering with `targets`.
    #[must_use]
    pub fn new(backup: BackupService<S>, targets: Arc<dyn RecoveryTargets>) -> Self {
        Self {
            backup,
            targets,
            checkpoints: None,
            edge: EdgeRefusals::default(),
            sidecar: None,
        }
    }

    /// Serves `HardDeleteShares` too: each hard delete ends with an audit
    /// checkpoint signed by `audit_signer` and appended to `witness`.
    /// Without them, `HardDeleteShares` is refused with
    /// `FAILED_PRECONDITION`.
    #[must_use]
    pub fn with_checkpoints<W: Witness + 'static>(
        mut self,
        audit_signer: Arc<dyn Signer + Send + Sync>,
        witness: W,
    ) -> Self {
        self.checkpoints = Some(Arc::new(Witnessed {
            signer: audit_signer,
            witness: tokio::sync::Mutex::new(witness),
        }));
        self
    }

    /// The audit checkpointer of [`with_checkpoints`](Self::with_checkpoints),
    /// for the server's periodic checkpoints; `None` without them.
    pub(crate) fn checkpointer(&self) -> Option<Checkpointer<S>> {
        self.checkpoints.clone().map(|checkpoints| Checkpointer {
            backup: self.backup.clone(),
            checkpoints,
            last: None,
        })
    }

    /// Serves `SelfTest` too: `sidecar` answers for its party when another
    /// party's server self-tests a recovered share.
    #[must_use]
    pub fn with_self_test_sidecar(mut self, sidecar: SelfTestSidecar) -> Self {
        self.sidecar = Some(Arc::new(sidecar));
        self
    }

    /// The refusals at the edge (no, unknown or revoked certificate) this
    /// service counts: a handle to keep before the service is served.
    #[must_use]
    pub fn edge_refusals(&self) -> EdgeRefusals {
        self.edge.clone()
    }

    /// The procedure served.
    #[must_use]
    pub fn backup(&self) -> &BackupService<S> {
        &self.backup
    }

    /// The tonic service to add to a server: messages capped at
    /// [`MAX_MESSAGE_SIZE`] each way.
    #[must_use]
    pub fn into_server(self) -> BackupServiceServer<Self> {
        BackupServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// Runs one operation of the procedure for `caller`, awaited on the
    /// request's own task (the procedure's futures are `Send`: see
    /// [`procedure_futures_are_send`]).
    ///
    /// The operation authorizes the caller again; if it finds them unknown
    /// or revoked (a revocation since the lookup), that is the caller's
    /// identity refusal. The same errors about another person (a
    /// custodian, an approver) stay the procedure's refusals.
    async fn run<T, F, Fut>(&self, caller: Caller, operation: F) -> Result<T, Error>
    where
        F: FnOnce(BackupService<S>, ActorId) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send,
    {
        let result = operation(self.backup.clone(), caller.actor.clone()).await;
        result.map_err(|error| identity_refusal(&caller, error))
    }

    /// [`run`](Self::run) for an operation that blocks synchronously: a
    /// recovery at threshold self-tests with the other parties over a
    /// blocking channel; generate and rotate read the keystore file and
    /// call the KMS; a hard delete destroys KEKs and signs with a signer
    /// that need not be `Sync`. The operation runs on a blocking thread,
    /// driven there by the runtime's handle, so it never holds up the
    /// runtime's workers.
    async fn run_blocking<T, F, Fut>(&self, caller: Caller, operation: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(BackupService<S>, ActorId) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error>>,
    {
        let backup = self.backup.clone();
        let handle = tokio::runtime::Handle::current();
        let actor = caller.actor.clone();
        let result = tokio::task::spawn_blocking(move || handle.block_on(operation(backup, actor)))
            .await
            .map_err(|_| Error::TaskFailed)?;
        result.map_err(|error| identity_refusal(&caller, error))
    }

    /// Starts a session (recovery or drill) with `start`, and answers with
    /// its signed descriptor and threshold.
    async fn started<F, Fut>(
        &self,
        caller: Caller,
        start: F,
    ) -> Result<Response<proto::StartRecoveryResponse>, Status>
    where
        F: FnOnce(BackupService<S>, ActorId) -> Fut + Send,
        Fut: Future<Output = Result<SessionDescriptor, Error>> + Send,
    {
        let (descriptor, threshold) = self
            .run(caller, move |backup, actor| async move {
                let descriptor = start(backup.clone(), actor.clone()).await?;
                let threshold = backup
                    .recovery_progress(&actor, &descriptor.session)
                    .await?
                    .threshold;
                Ok((descriptor, threshold))
            })
            .await?;
        Ok(Response::new(proto::StartRecoveryResponse {
            session_id: descriptor.session.0.to_vec(),
            descriptor: descriptor.as_bytes().to_vec(),
            expires_at_unix: descriptor.expires_at.as_unix_seconds(),
            threshold: u32::from(threshold),
        }))
    }

    /// The caller of `request`, from its client certificate, looked up now.
    /// An edge refusal is counted (and reported within its budget).
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Error> {
        let method = request
            .extensions()
            .get::<tonic::GrpcMethod<'_>>()
            .map_or("unknown", tonic::GrpcMethod::method);
        let chain = request.peer_certs();
        let (fingerprint, caller) =
            match identity::leaf_fingerprint(chain.as_deref().map(Vec::as_slice)) {
                Ok(fingerprint) => (
                    Some(fingerprint),
                    identity::resolve(self.backup.storage(), fingerprint).await,
                ),
                Err(error) => (None, Err(error)),
            };
        match &caller {
            Ok(caller) => {
                tracing::Span::current().record("person", caller.actor.as_str());
            }
            Err(error) => {
                self.edge.record(method, error);
                if let Some(fingerprint) = &fingerprint {
                    self.certificate_anomaly(fingerprint, error).await;
                }
            }
        }
        caller
    }

    /// Records the refusal of an unknown or a revoked person's certificate
    /// as a durable anomaly (see [`EdgeRefusals`] and
    /// [`BackupService::record_certificate_refusal`] for how it is
    /// bounded). A failure to record is logged: the request is refused
    /// either way.
    async fn certificate_anomaly(&self, fingerprint: &CertificateFingerprint, error: &Error) {
        let revoked_person = match error {
            Error::UnknownCertificate { .. } => None,
            Error::PersonRevoked(person) => Some(person),
            _ => return,
        };
        if !self.edge.anomaly_due(fingerprint) {
            return;
        }
        if let Err(failure) = self
            .backup
            .record_certificate_refusal(&fingerprint.0, revoked_person)
            .await
        {
            tracing::warn!(
                target: "shardkeep_grpc::edge",
                fingerprint = %fingerprint,
                error = %failure,
                "refused certificate not recorded as an anomaly"
            );
        }
    }
}

/// `error` as the caller is told it: the procedure finding the caller
/// themselves unknown or revoked (a revocation since the lookup) is the
/// caller's identity refusal; the same errors about another person (a
/// custodian, an approver) stay the procedure's refusals.
fn identity_refusal(caller: &Caller, error: Error) -> Error {
    match error {
        Error::Backup(
            shardkeep_backup::Error::UnknownPerson(person)
            | shardkeep_backup::Error::PersonRevoked(person),
        ) if person == caller.actor => Error::PersonRevoked(person),
        other => other,
    }
}

/// Compile-time proof that the futures of the procedure's operations
/// awaited on the request's task ([`GrpcService::run`]) are `Send`: this
/// function does not compile otherwise. Never called.
#[allow(dead_code, clippy::too_many_arguments)]
fn procedure_futures_are_send<S: Storage + 'static>(
    backup: &BackupService<S>,
    actor: &ActorId,
    status: &StatusQuery,
    shares: &ShareListQuery,
    session: &RecoverySessionId,
    slot: &shardkeep_types::ShareSlot,
    bytes: &[u8],
    deletion: &DeletionParams,
    registrations: (PersonRegistration, EntityRegistration, PersonKeys),
    revocation: (&CustodianId, FreeText<MAX_REVOCATION_REASON_LEN>),
) {
    fn send<T: Send>(_: &T) {}
    let (person, entity, keys) = registrations;
    let (custodian, reason) = revocation;
    send(&backup.register_person(actor, person));
    send(&backup.register_entity(actor, entity));
    send(&backup.rotate_person_keys(actor, actor, keys));
    send(&backup.revoke_person(actor, actor, reason));
    send(&backup.revoke_entity(actor, custodian));
    send(&backup.status(actor, status));
    send(&backup.list_server_shares(actor, shares));
    send(&backup.recovery_progress(actor, session));
    send(&backup.confirm(actor, slot, bytes));
    send(&backup.issue_inventory_challenge(actor, slot));
    send(&backup.confirm_inventory(actor, bytes));
    send(&backup.submit_approval(actor, bytes));
    send(&backup.submit_audit_review(actor, bytes));
    send(&backup.soft_delete(actor, deletion));
    send(&backup.rollback_deletion(actor, &deletion.version, &deletion.slots));
    send(&backup.current_policy(actor));
    send(&backup.export_audit(actor, 0));
}

/// Largest chunk of an audit export stream: well under
/// [`MAX_MESSAGE_SIZE`].
pub const EXPORT_CHUNK_SIZE: usize = 1024 * 1024;

/// Runs one RPC's handler in a span naming the method (and, once the
/// certificate is resolved, the caller's person id), then reports its
/// outcome: `ok`, or the status code and message it was refused with
/// (status messages name ids and rules, never a secret). No request or
/// response byte is ever a field.
async fn traced<T>(
    method: &'static str,
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> Result<Response<T>, Status> {
    let span = tracing::info_span!("rpc", method, person = tracing::field::Empty);
    let started = tokio::time::Instant::now();
    let result = call.instrument(span.clone()).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let _entered = span.enter();
    match &result {
        Ok(_) => tracing::info!(elapsed_ms, outcome = "ok", "rpc served"),
        Err(status) => tracing::warn!(
            elapsed_ms,
            outcome = "refused",
            code = ?status.code(),
            message = status.message(),
            "rpc refused"
        ),
    }
    result
}

/// The handlers: each resolves its caller, checks the request and runs
/// its operation; [`traced`] wraps each in its span.
impl<S: Storage + 'static> GrpcService<S> {
    async fn serve_get_backup_status(
        &self,
        request: Request<proto::GetBackupStatusRequest>,
    ) -> Result<Response<proto::GetBackupStatusResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        let query = StatusQuery {
            key_id: optional_key_id("key_id", &message.key_id)?,
            node_id: optional_node_id("node_id", &message.node_id)?,
            include_retired: message.include_retired,
            page_size: message.page_size,
            page_token: page_token(message.page_token),
        };
        let page = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.status(&actor, &query).await?)
            })
            .await?;
        Ok(Response::new(convert::status_response(&page)))
    }

    async fn serve_list_backup_shares(
        &self,
        request: Request<proto::ListBackupSharesRequest>,
    ) -> Result<Response<proto::ListBackupSharesResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        let key_id = optional_key_id("key_id", &message.key_id)?;
        let node_id = optional_node_id("node_id", &message.node_id)?;
        let version = match message.version {
            0 => None,
            _ if key_id.is_none() || node_id.is_none() => {
                return Err(invalid("version", "needs key_id and node_id").into());
            }
            version => Some(KeyVersion::new(version)),
        };
        let query = ShareListQuery {
            key_id,
            node_id,
            version,
            page_size: message.page_size,
            page_token: page_token(message.page_token),
        };
        let page = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.list_server_shares(&actor, &query).await?)
            })
            .await?;
        Ok(Response::new(convert::share_list_response(&page)))
    }

    async fn serve_start_recovery(
        &self,
        request: Request<proto::StartRecoveryRequest>,
    ) -> Result<Response<proto::StartRecoveryResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        let approval = ApprovalRequestHash(fixed(
            "approval_request_hash",
            &message.approval_request_hash,
        )?);
        let params = RecoveryParams {
            version: node_version("version", message.version.as_ref())?,
            target: FreeText::new(&message.target)
                .map_err(|_| invalid("target", "not a valid directory name"))?,
            allow_server_shares: message.allow_server_shares,
            ticket: FreeText::new(&message.ticket)
                .map_err(|_| invalid("ticket", "not a valid ticket"))?,
            risk_note_hash: fixed("risk_note_hash", &message.risk_note_hash)?,
        };
        self.started(caller, move |backup, actor| async move {
            Ok(backup.start_recovery(&actor, &approval, params).await?)
        })
        .await
    }

    async fn serve_start_drill(
        &self,
        request: Request<proto::StartDrillRequest>,
    ) -> Result<Response<proto::StartRecoveryResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        let approval = ApprovalRequestHash(fixed(
            "approval_request_hash",
            &message.approval_request_hash,
        )?);
        let params = DrillParams {
            version: node_version("version", message.version.as_ref())?,
            ticket: FreeText::new(&message.ticket)
                .map_err(|_| invalid("ticket", "not a valid ticket"))?,
            risk_note_hash: fixed("risk_note_hash", &message.risk_note_hash)?,
        };
        self.started(caller, move |backup, actor| async move {
            Ok(backup.start_drill(&actor, &approval, params).await?)
        })
        .await
    }

    async fn serve_recover_mpc_share(
        &self,
        request: Request<proto::RecoverMpcShareRequest>,
    ) -> Result<Response<proto::RecoverMpcShareResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        let session = RecoverySessionId(fixed("session_id", &message.session_id)?);
        if message.share_data.len() > MAX_SUBMISSIONS_PER_CALL {
            return Err(invalid("share_data", "more submissions than one call takes").into());
        }
        for submission in &message.share_data {
            capped("share_data", submission, MAX_SEALED_SUBMISSION_LEN)?;
        }
        let targets = Arc::clone(&self.targets);
        let report = self
            .run_blocking(caller, move |backup, actor| async move {
                // The session's version names the node whose codec and
                // peers the recovery uses (an operator call too, so
                // authorized and counted).
                let progress = backup.recovery_progress(&actor, &session).await?;
                let codec = targets.codec(&progress.version)?;
                // The peers are reached only if the call brings the
                // session to its threshold.
                let mut peers = LazyPeers {
                    targets,
                    version: progress.version,
                    connected: None,
                };
                let target = RecoveryTarget {
                    codec: codec.as_ref(),
                    peers: &mut peers,
                };
                Ok(backup
                    .submit_recovery_shares(&actor, &session, &message.share_data, target)
                    .await?)
            })
            .await?;
        Ok(Response::new(convert::recovery_response(&report)))
    }

    async fn serve_record_delivery(
        &self,
        request: Request<proto::RecordDeliveryRequest>,
    ) -> Result<Response<proto::RecordDeliveryResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        let result = if message.failure_reason.is_empty() {
            DeliveryResult::Sent
        } else {
            DeliveryResult::Failed {
                reason: FreeText::new(&message.failure_reason)
                    .map_err(|_| invalid("failure_reason", "not valid free text"))?,
            }
        };
        let report = DeliveryReport {
            slot: share_slot("slot", message.slot.as_ref())?,
            container_hash: fixed("container_hash", &message.container_hash)?,
            result,
        };
        self.run(caller, move |backup, actor| async move {
            Ok(backup.deliver(&actor, report).await?)
        })
        .await?;
        Ok(Response::new(proto::RecordDeliveryResponse {}))
    }

    async fn serve_confirm_receipt(
        &self,
        request: Request<proto::ConfirmReceiptRequest>,
    ) -> Result<Response<proto::ConfirmReceiptResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        let slot = share_slot("slot", message.slot.as_ref())?;
        capped("receipt", &message.receipt, MAX_RECEIPT_LEN)?;
        let confirmation = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.confirm(&actor, &slot, &message.receipt).await?)
            })
            .await?;
        Ok(Response::new(convert::confirmation_response(&confirmation)))
    }

    async fn serve_issue_inventory_challenge(
        &self,
        request: Request<proto::IssueInventoryChallengeRequest>,
    ) -> Result<Response<proto::IssueInventoryChallengeResponse>, Status> {
        let caller = self.caller(&request).await?;
        let slot = share_slot("slot", request.get_ref().slot.as_ref())?;
        let challenge = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.issue_inventory_challenge(&actor, &slot).await?)
            })
            .await?;
        Ok(Response::new(proto::IssueInventoryChallengeResponse {
            challenge: challenge.encode(),
            custodian: challenge.custodian.as_str().to_owned(),
            expires_at_unix: challenge.expires_at.as_unix_seconds(),
        }))
    }

    async fn serve_confirm_inventory(
        &self,
        request: Request<proto::ConfirmInventoryRequest>,
    ) -> Result<Response<proto::ConfirmInventoryResponse>, Status> {
        let caller = self.caller(&request).await?;
        let proof = request.into_inner().proof;
        capped("proof", &proof, MAX_INVENTORY_PROOF_LEN)?;
        let confirmation = self
            .run(caller, move |backup, actor| async move {
                match backup.confirm_inventory(&actor, &proof).await {
                    // The only bytes decoded here are the proof's.
                    Err(
                        shardkeep_backup::Error::Framing(_) | shardkeep_backup::Error::Types(_),
                    ) => Err(invalid("proof", "it does not decode")),
                    other => Ok(other?),
                }
            })
            .await?;
        Ok(Response::new(convert::inventory_response(&confirmation)))
    }

    async fn serve_request_approval(
        &self,
        request: Request<proto::RequestApprovalRequest>,
    ) -> Result<Response<proto::RequestApprovalResponse>, Status> {
        let caller = self.caller(&request).await?;
        let params = convert::approval_params(request.get_ref().params.as_ref())?;
        let request = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.request_approval(&actor, params).await?)
            })
            .await?;
        let encoded = request.encode().map_err(Error::from)?;
        let hash = request.hash().map_err(Error::from)?;
        Ok(Response::new(proto::RequestApprovalResponse {
            request: encoded,
            request_hash: hash.0.to_vec(),
            expires_at_unix: request.expires_at.as_unix_seconds(),
        }))
    }

    async fn serve_submit_approval(
        &self,
        request: Request<proto::SubmitApprovalRequest>,
    ) -> Result<Response<proto::SubmitApprovalResponse>, Status> {
        let caller = self.caller(&request).await?;
        let approval = request.into_inner().approval;
        capped("approval", &approval, MAX_APPROVAL_LEN)?;
        let state = self
            .run(caller, move |backup, actor| async move {
                match backup.submit_approval(&actor, &approval).await {
                    // The only bytes decoded here are the approval's.
                    Err(
                        shardkeep_backup::Error::Framing(_)
                        | shardkeep_backup::Error::Types(_)
                        | shardkeep_backup::Error::ApprovalByteInvalid { .. },
                    ) => Err(invalid("approval", "it does not decode")),
                    other => Ok(other?),
                }
            })
            .await?;
        Ok(Response::new(convert::approval_state_response(&state)))
    }

    async fn serve_generate_backup(
        &self,
        request: Request<proto::GenerateBackupRequest>,
    ) -> Result<Response<proto::GenerateBackupResponse>, Status> {
        let caller = self.caller(&request).await?;
        let source = GenerateSource::parse(Some(request.get_ref()), "request")?;
        let codec = self.targets.codec(&source.written_for)?;
        let generated = self
            .run_blocking(caller, move |backup, actor| async move {
                Ok(backup
                    .generate(&actor, source.request(codec.as_ref()))
                    .await?)
            })
            .await?;
        Ok(Response::new(convert::generated_response(&generated)))
    }

    async fn serve_rotate_backup(
        &self,
        request: Request<proto::RotateBackupRequest>,
    ) -> Result<Response<proto::RotateBackupResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.get_ref();
        let kind = match proto::RotationKind::try_from(message.kind) {
            Ok(proto::RotationKind::Reshare) => RotationKind::Reshare,
            Ok(proto::RotationKind::Resplit) => RotationKind::Resplit,
            Ok(proto::RotationKind::Unspecified) | Err(_) => {
                return Err(invalid("kind", "not a rotation kind").into());
            }
        };
        let source = GenerateSource::parse(message.generate.as_ref(), "generate")?;
        let codec = self.targets.codec(&source.written_for)?;
        let rotated = self
            .run_blocking(caller, move |backup, actor| async move {
                let request = RotateRequest {
                    kind,
                    generate: source.request(codec.as_ref()),
                };
                Ok(backup.rotate(&actor, request).await?)
            })
            .await?;
        Ok(Response::new(convert::rotated_response(&rotated)))
    }

    async fn serve_soft_delete_shares(
        &self,
        request: Request<proto::SoftDeleteSharesRequest>,
    ) -> Result<Response<proto::SoftDeleteSharesResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.get_ref();
        let params = DeletionParams {
            version: node_version("version", message.version.as_ref())?,
            slots: share_indices("slots", &message.slots)?,
            request: ApprovalRequestHash(fixed(
                "approval_request_hash",
                &message.approval_request_hash,
            )?),
            ticket: FreeText::new(&message.ticket)
                .map_err(|_| invalid("ticket", "not a valid ticket"))?,
            risk_note_hash: fixed("risk_note_hash", &message.risk_note_hash)?,
        };
        let deleted = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.soft_delete(&actor, &params).await?)
            })
            .await?;
        Ok(Response::new(proto::SoftDeleteSharesResponse {
            at_unix: deleted.at.as_unix_seconds(),
            cooldown_until_unix: deleted.cooldown_until.as_unix_seconds(),
        }))
    }

    async fn serve_rollback_deletion(
        &self,
        request: Request<proto::RollbackDeletionRequest>,
    ) -> Result<Response<proto::RollbackDeletionResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.get_ref();
        let version = node_version("version", message.version.as_ref())?;
        let slots = share_indices("slots", &message.slots)?;
        self.run(caller, move |backup, actor| async move {
            Ok(backup.rollback_deletion(&actor, &version, &slots).await?)
        })
        .await?;
        Ok(Response::new(proto::RollbackDeletionResponse {}))
    }

    async fn serve_hard_delete_shares(
        &self,
        request: Request<proto::HardDeleteSharesRequest>,
    ) -> Result<Response<proto::HardDeleteSharesResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.get_ref();
        let version = node_version("version", message.version.as_ref())?;
        let hash = ApprovalRequestHash(fixed(
            "approval_request_hash",
            &message.approval_request_hash,
        )?);
        let checkpoints = self.checkpoints.clone().ok_or(Error::NoAuditCheckpoints)?;
        let draft = self
            .run_blocking(caller, move |backup, actor| async move {
                Ok(checkpoints
                    .hard_delete(&backup, &actor, &version, &hash)
                    .await?)
            })
            .await?;
        Ok(Response::new(proto::HardDeleteSharesResponse {
            zero_retention_draft: draft.body().encode().map_err(Error::from)?,
        }))
    }

    async fn serve_export_audit(
        &self,
        request: Request<proto::ExportAuditRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let caller = self.caller(&request).await?;
        let from = request.get_ref().from_sequence;
        let export = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.export_audit(&actor, from).await?)
            })
            .await?;
        let chunks: Vec<Result<proto::ExportAuditChunk, Status>> = export
            .chunks(EXPORT_CHUNK_SIZE)
            .map(|chunk| {
                Ok(proto::ExportAuditChunk {
                    data: chunk.to_vec(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tonic::codegen::tokio_stream::iter(
            chunks,
        ))))
    }

    async fn serve_submit_audit_review(
        &self,
        request: Request<proto::SubmitAuditReviewRequest>,
    ) -> Result<Response<proto::SubmitAuditReviewResponse>, Status> {
        let caller = self.caller(&request).await?;
        let review = request.into_inner().review;
        capped("review", &review, shardkeep_audit::MAX_REVIEW_LEN)?;
        let state = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.submit_audit_review(&actor, &review).await?)
            })
            .await?;
        Ok(Response::new(convert::review_response(&state)))
    }

    async fn serve_get_checklist_report(
        &self,
        request: Request<proto::GetChecklistReportRequest>,
    ) -> Result<Response<proto::GetChecklistReportResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.get_ref();
        let query = ChecklistQuery {
            version: node_version("version", message.version.as_ref())?,
            kind: match proto::ChecklistKind::try_from(message.kind) {
                Ok(proto::ChecklistKind::Generation) => ChecklistKind::Generation,
                Ok(proto::ChecklistKind::Drill) => ChecklistKind::Drill,
                Ok(proto::ChecklistKind::Deletion) => ChecklistKind::Deletion,
                Ok(proto::ChecklistKind::Unspecified) | Err(_) => {
                    return Err(invalid("kind", "not a checklist").into());
                }
            },
        };
        let report = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.checklist(&actor, &query).await?)
            })
            .await?;
        Ok(Response::new(proto::GetChecklistReportResponse {
            report: report.to_json(),
            passed: report.passed(),
        }))
    }

    async fn serve_get_policy(
        &self,
        request: Request<proto::GetPolicyRequest>,
    ) -> Result<Response<proto::GetPolicyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let current = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.current_policy(&actor).await?)
            })
            .await?;
        Ok(Response::new(convert::policy_response(current.as_ref())))
    }

    async fn serve_set_policy(
        &self,
        request: Request<proto::SetPolicyRequest>,
    ) -> Result<Response<proto::GetPolicyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.get_ref();
        let settings = convert::policy_settings(message.settings.as_ref())?;
        let approval = convert::change_approval(
            &message.approval_request_hash,
            &message.ticket,
            &message.risk_note_hash,
        )?;
        let current = self
            .run(caller, move |backup, actor| async move {
                Ok(match approval {
                    None => backup.set_policy(&actor, settings).await?,
                    Some(approval) => {
                        backup
                            .set_policy_approved(
                                &actor,
                                settings,
                                &approval.request,
                                approval.ticket,
                                approval.risk_note_hash,
                            )
                            .await?
                    }
                })
            })
            .await?;
        Ok(Response::new(convert::policy_response(Some(&current))))
    }

    async fn serve_register_person(
        &self,
        request: Request<proto::RegisterPersonRequest>,
    ) -> Result<Response<proto::RegisterPersonResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.get_ref();
        let registration = convert::person_registration(message)?;
        let approval = convert::change_approval(
            &message.approval_request_hash,
            &message.ticket,
            &message.risk_note_hash,
        )?;
        let person = self
            .run(caller, move |backup, actor| async move {
                Ok(match approval {
                    None => backup.register_person(&actor, registration).await?,
                    Some(approval) => {
                        backup
                            .register_person_approved(&actor, registration, &approval)
                            .await?
                    }
                })
            })
            .await?;
        Ok(Response::new(convert::person_response(&person)))
    }

    async fn serve_register_entity(
        &self,
        request: Request<proto::RegisterEntityRequest>,
    ) -> Result<Response<proto::RegisterEntityResponse>, Status> {
        let caller = self.caller(&request).await?;
        let registration = convert::entity_registration(request.get_ref())?;
        let entity = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.register_entity(&actor, registration).await?)
            })
            .await?;
        Ok(Response::new(convert::entity_response(&entity)))
    }

    async fn serve_rotate_person_keys(
        &self,
        request: Request<proto::RotatePersonKeysRequest>,
    ) -> Result<Response<proto::RotatePersonKeysResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.get_ref();
        let person = convert::actor_id("person", &message.person)?;
        let keys = convert::person_keys(message.keys.as_ref())?;
        let key_epoch = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.rotate_person_keys(&actor, &person, keys).await?)
            })
            .await?;
        Ok(Response::new(proto::RotatePersonKeysResponse { key_epoch }))
    }

    async fn serve_revoke_person(
        &self,
        request: Request<proto::RevokePersonRequest>,
    ) -> Result<Response<proto::RevokePersonResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.get_ref();
        let person = convert::actor_id("person", &message.person)?;
        let reason = convert::free_text("reason", &message.reason)?;
        self.run(caller, move |backup, actor| async move {
            Ok(backup.revoke_person(&actor, &person, reason).await?)
        })
        .await?;
        Ok(Response::new(proto::RevokePersonResponse {}))
    }

    async fn serve_revoke_entity(
        &self,
        request: Request<proto::RevokeEntityRequest>,
    ) -> Result<Response<proto::RevokeEntityResponse>, Status> {
        let caller = self.caller(&request).await?;
        let entity = convert::custodian_id("entity", &request.get_ref().entity)?;
        self.run(caller, move |backup, actor| async move {
            Ok(backup.revoke_entity(&actor, &entity).await?)
        })
        .await?;
        Ok(Response::new(proto::RevokeEntityResponse {}))
    }

    async fn serve_self_test(
        &self,
        request: Request<proto::SelfTestRequest>,
    ) -> Result<Response<proto::SelfTestResponse>, Status> {
        let caller = self.caller(&request).await?;
        caller.require_any(&[Role::Operator], "operator")?;
        let sidecar = self.sidecar.clone().ok_or(Error::NoSelfTestParty)?;
        let message = request.into_inner();
        let answer = sidecar.answer(&message.party_id, message.request).await?;
        Ok(Response::new(proto::SelfTestResponse { answer }))
    }
}

#[tonic::async_trait]
impl<S: Storage + 'static> proto::backup_service_server::BackupService for GrpcService<S> {
    async fn get_backup_status(
        &self,
        request: Request<proto::GetBackupStatusRequest>,
    ) -> Result<Response<proto::GetBackupStatusResponse>, Status> {
        traced("GetBackupStatus", self.serve_get_backup_status(request)).await
    }

    async fn list_backup_shares(
        &self,
        request: Request<proto::ListBackupSharesRequest>,
    ) -> Result<Response<proto::ListBackupSharesResponse>, Status> {
        traced("ListBackupShares", self.serve_list_backup_shares(request)).await
    }

    async fn start_recovery(
        &self,
        request: Request<proto::StartRecoveryRequest>,
    ) -> Result<Response<proto::StartRecoveryResponse>, Status> {
        traced("StartRecovery", self.serve_start_recovery(request)).await
    }

    async fn start_drill(
        &self,
        request: Request<proto::StartDrillRequest>,
    ) -> Result<Response<proto::StartRecoveryResponse>, Status> {
        traced("StartDrill", self.serve_start_drill(request)).await
    }

    async fn recover_mpc_share(
        &self,
        request: Request<proto::RecoverMpcShareRequest>,
    ) -> Result<Response<proto::RecoverMpcShareResponse>, Status> {
        traced("RecoverMPCShare", self.serve_recover_mpc_share(request)).await
    }

    async fn record_delivery(
        &self,
        request: Request<proto::RecordDeliveryRequest>,
    ) -> Result<Response<proto::RecordDeliveryResponse>, Status> {
        traced("RecordDelivery", self.serve_record_delivery(request)).await
    }

    async fn confirm_receipt(
        &self,
        request: Request<proto::ConfirmReceiptRequest>,
    ) -> Result<Response<proto::ConfirmReceiptResponse>, Status> {
        traced("ConfirmReceipt", self.serve_confirm_receipt(request)).await
    }

    async fn issue_inventory_challenge(
        &self,
        request: Request<proto::IssueInventoryChallengeRequest>,
    ) -> Result<Response<proto::IssueInventoryChallengeResponse>, Status> {
        traced(
            "IssueInventoryChallenge",
            self.serve_issue_inventory_challenge(request),
        )
        .await
    }

    async fn confirm_inventory(
        &self,
        request: Request<proto::ConfirmInventoryRequest>,
    ) -> Result<Response<proto::ConfirmInventoryResponse>, Status> {
        traced("ConfirmInventory", self.serve_confirm_inventory(request)).await
    }

    async fn request_approval(
        &self,
        request: Request<proto::RequestApprovalRequest>,
    ) -> Result<Response<proto::RequestApprovalResponse>, Status> {
        traced("RequestApproval", self.serve_request_approval(request)).await
    }

    async fn submit_approval(
        &self,
        request: Request<proto::SubmitApprovalRequest>,
    ) -> Result<Response<proto::SubmitApprovalResponse>, Status> {
        traced("SubmitApproval", self.serve_submit_approval(request)).await
    }

    async fn generate_backup(
        &self,
        request: Request<proto::GenerateBackupRequest>,
    ) -> Result<Response<proto::GenerateBackupResponse>, Status> {
        traced("GenerateBackup", self.serve_generate_backup(request)).await
    }

    async fn rotate_backup(
        &self,
        request: Request<proto::RotateBackupRequest>,
    ) -> Result<Response<proto::RotateBackupResponse>, Status> {
        traced("RotateBackup", self.serve_rotate_backup(request)).await
    }

    async fn soft_delete_shares(
        &self,
        request: Request<proto::SoftDeleteSharesRequest>,
    ) -> Result<Response<proto::SoftDeleteSharesResponse>, Status> {
        traced("SoftDeleteShares", self.serve_soft_delete_shares(request)).await
    }

    async fn rollback_deletion(
        &self,
        request: Request<proto::RollbackDeletionRequest>,
    ) -> Result<Response<proto::RollbackDeletionResponse>, Status> {
        traced("RollbackDeletion", self.serve_rollback_deletion(request)).await
    }

    async fn hard_delete_shares(
        &self,
        request: Request<proto::HardDeleteSharesRequest>,
    ) -> Result<Response<proto::HardDeleteSharesResponse>, Status> {
        traced("HardDeleteShares", self.serve_hard_delete_shares(request)).await
    }

    type ExportAuditStream = ExportStream;

    async fn export_audit(
        &self,
        request: Request<proto::ExportAuditRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        traced("ExportAudit", self.serve_export_audit(request)).await
    }

    async fn submit_audit_review(
        &self,
        request: Request<proto::SubmitAuditReviewRequest>,
    ) -> Result<Response<proto::SubmitAuditReviewResponse>, Status> {
        traced("SubmitAuditReview", self.serve_submit_audit_review(request)).await
    }

    async fn get_checklist_report(
        &self,
        request: Request<proto::GetChecklistReportRequest>,
    ) -> Result<Response<proto::GetChecklistReportResponse>, Status> {
        traced(
            "GetChecklistReport",
            self.serve_get_checklist_report(request),
        )
        .await
    }

    async fn get_policy(
        &self,
        request: Request<proto::GetPolicyRequest>,
    ) -> Result<Response<proto::GetPolicyResponse>, Status> {
        traced("GetPolicy", self.serve_get_policy(request)).await
    }

    async fn set_policy(
        &self,
        request: Request<proto::SetPolicyRequest>,
    ) -> Result<Response<proto::GetPolicyResponse>, Status> {
        traced("SetPolicy", self.serve_set_policy(request)).await
    }

    async fn register_person(
        &self,
        request: Request<proto::RegisterPersonRequest>,
    ) -> Result<Response<proto::RegisterPersonResponse>, Status> {
        traced("RegisterPerson", self.serve_register_person(request)).await
    }

    async fn register_entity(
        &self,
        request: Request<proto::RegisterEntityRequest>,
    ) -> Result<Response<proto::RegisterEntityResponse>, Status> {
        traced("RegisterEntity", self.serve_register_entity(request)).await
    }

    async fn rotate_person_keys(
        &self,
        request: Request<proto::RotatePersonKeysRequest>,
    ) -> Result<Response<proto::RotatePersonKeysResponse>, Status> {
        traced("RotatePersonKeys", self.serve_rotate_person_keys(request)).await
    }

    async fn revoke_person(
        &self,
        request: Request<proto::RevokePersonRequest>,
    ) -> Result<Response<proto::RevokePersonResponse>, Status> {
        traced("RevokePerson", self.serve_revoke_person(request)).await
    }

    async fn revoke_entity(
        &self,
        request: Request<proto::RevokeEntityRequest>,
    ) -> Result<Response<proto::RevokeEntityResponse>, Status> {
        traced("RevokeEntity", self.serve_revoke_entity(request)).await
    }

    async fn self_test(
        &self,
        request: Request<proto::SelfTestRequest>,
    ) -> Result<Response<proto::SelfTestResponse>, Status> {
        traced("SelfTest", self.serve_self_test(request)).await
    }
}
