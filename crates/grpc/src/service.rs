//! The gRPC service: each RPC resolves its caller from the client
//! certificate, checks and converts the request, and calls one operation
//! of the backup procedure.

use core::fmt;
use std::sync::Arc;

use shardkeep_backup::{
    BackupService, DeliveryReport, DeliveryResult, DrillParams, MAX_SUBMISSIONS_PER_CALL,
    RecoveryParams, RecoveryTarget, SessionDescriptor, ShareListQuery, StatusQuery,
};
use shardkeep_keydata::{KeystoreCodec, SelfTestPeers};
use shardkeep_storage::{ApprovalRequestHash, RecoverySessionId, Storage};
use shardkeep_types::{ActorId, FreeText, KeyVersion, NodeVersion};
use tonic::{Request, Response, Status};

use crate::convert::{
    self, fixed, invalid, node_version, optional_key_id, optional_node_id, page_token, share_slot,
};
use crate::error::Error;
use crate::identity::{self, Caller};
use crate::proto;
use crate::proto::backup_service_server::BackupServiceServer;

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

/// The backup procedure served over gRPC.
pub struct GrpcService<S> {
    backup: BackupService<S>,
    targets: Arc<dyn RecoveryTargets>,
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
        Self { backup, targets }
    }

    /// The tonic service to add to a server: messages capped at
    /// [`MAX_MESSAGE_SIZE`] each way.
    #[must_use]
    pub fn into_server(self) -> BackupServiceServer<Self> {
        BackupServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// Runs one operation of the procedure for `caller` on a blocking
    /// thread, driven there by the runtime's handle: the procedure's
    /// futures are not `Send` (tonic's handlers must be), and a recovery at
    /// threshold self-tests with the other parties synchronously, which
    /// must not hold up the runtime's workers.
    ///
    /// The operation authorizes the caller again; if it finds them unknown
    /// or revoked (a revocation since the lookup), that is the caller's
    /// identity refusal. The same errors about another person (a
    /// custodian, an approver) stay the procedure's refusals.
    async fn run<T, F, Fut>(&self, caller: Caller, operation: F) -> Result<T, Error>
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
        result.map_err(|error| match error {
            Error::Backup(
                shardkeep_backup::Error::UnknownPerson(person)
                | shardkeep_backup::Error::PersonRevoked(person),
            ) if person == caller.actor => Error::PersonRevoked(person),
            other => other,
        })
    }

    /// Starts a session (recovery or drill) with `start`, and answers with
    /// its signed descriptor and threshold.
    async fn started<F, Fut>(
        &self,
        caller: Caller,
        start: F,
    ) -> Result<Response<proto::StartRecoveryResponse>, Status>
    where
        F: FnOnce(BackupService<S>, ActorId) -> Fut + Send + 'static,
        Fut: Future<Output = Result<SessionDescriptor, Error>>,
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
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Error> {
        let chain = request.peer_certs();
        let fingerprint = identity::leaf_fingerprint(chain.as_deref().map(Vec::as_slice))?;
        identity::resolve(self.backup.storage(), fingerprint).await
    }
}

#[tonic::async_trait]
impl<S: Storage + 'static> proto::backup_service_server::BackupService for GrpcService<S> {
    async fn get_backup_status(
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

    async fn list_backup_shares(
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

    async fn start_recovery(
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

    async fn start_drill(
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

    async fn recover_mpc_share(
        &self,
        request: Request<proto::RecoverMpcShareRequest>,
    ) -> Result<Response<proto::RecoverMpcShareResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        let session = RecoverySessionId(fixed("session_id", &message.session_id)?);
        if message.share_data.len() > MAX_SUBMISSIONS_PER_CALL {
            return Err(invalid("share_data", "more submissions than one call takes").into());
        }
        let targets = Arc::clone(&self.targets);
        let report = self
            .run(caller, move |backup, actor| async move {
                // The session's version names the node whose codec and
                // peers the recovery uses (an operator call too, so
                // authorized and counted).
                let progress = backup.recovery_progress(&actor, &session).await?;
                let codec = targets.codec(&progress.version)?;
                let mut peers = targets.peers(&progress.version)?;
                let target = RecoveryTarget {
                    codec: codec.as_ref(),
                    peers: peers.as_mut(),
                };
                Ok(backup
                    .submit_recovery_shares(&actor, &session, &message.share_data, target)
                    .await?)
            })
            .await?;
        Ok(Response::new(convert::recovery_response(&report)))
    }

    async fn record_delivery(
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

    async fn confirm_receipt(
        &self,
        request: Request<proto::ConfirmReceiptRequest>,
    ) -> Result<Response<proto::ConfirmReceiptResponse>, Status> {
        let caller = self.caller(&request).await?;
        let message = request.into_inner();
        let slot = share_slot("slot", message.slot.as_ref())?;
        let confirmation = self
            .run(caller, move |backup, actor| async move {
                Ok(backup.confirm(&actor, &slot, &message.receipt).await?)
            })
            .await?;
        Ok(Response::new(convert::confirmation_response(&confirmation)))
    }

    async fn issue_inventory_challenge(
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

    async fn confirm_inventory(
        &self,
        request: Request<proto::ConfirmInventoryRequest>,
    ) -> Result<Response<proto::ConfirmInventoryResponse>, Status> {
        let caller = self.caller(&request).await?;
        let proof = request.into_inner().proof;
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

    async fn request_approval(
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

    async fn submit_approval(
        &self,
        request: Request<proto::SubmitApprovalRequest>,
    ) -> Result<Response<proto::SubmitApprovalResponse>, Status> {
        let caller = self.caller(&request).await?;
        let approval = request.into_inner().approval;
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
}
