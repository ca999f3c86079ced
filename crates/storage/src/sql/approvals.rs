//! Approval requests (server-issued nonces) and the signed approvals of
//! them. A request is consumed once, in the transaction of its operation.

use shardkeep_types::{ActorId, Label, Timestamp};

use super::{Backend, Columns, SqlTransaction, args, guarded, node_version, version_args, with};
use crate::error::Error;
use crate::records::{Approval, ApprovalNonce, ApprovalRequest};
use crate::traits::ApprovalStore;
use crate::types::timestamp_to_db;

const REQUESTS: &str = "approval_requests";
const APPROVALS: &str = "approvals";

struct StoredRequest {
    request: ApprovalRequest,
    consumed_at: Option<Timestamp>,
}

async fn load_request<B: Backend>(
    tx: &mut SqlTransaction<B>,
    nonce: &ApprovalNonce,
) -> Result<StoredRequest, Error> {
    let row = tx
        .fetch_optional(
            REQUESTS,
            "SELECT key_id, node_id, version, nonce, operation, request_hash, requester, ticket, \
             issued_at, expires_at, consumed_at FROM approval_requests WHERE nonce = $1",
            args![nonce.0.as_slice()],
        )
        .await?
        .ok_or(Error::ApprovalRequestNotFound(*nonce))?;
    let cols = Columns::<B>::new(&row, REQUESTS);
    Ok(StoredRequest {
        request: ApprovalRequest {
            target: node_version(&cols, 0)?,
            nonce: ApprovalNonce(cols.digest(3, "nonce")?),
            operation: cols.parse(4, "operation", Label::new)?,
            request_hash: cols.digest(5, "request_hash")?,
            requester: cols.parse(6, "requester", ActorId::new)?,
            ticket: cols.parse(7, "ticket", Label::new)?,
            issued_at: cols.timestamp(8, "issued_at")?,
            expires_at: cols.timestamp(9, "expires_at")?,
        },
        consumed_at: cols.opt_timestamp(10, "consumed_at")?,
    })
}

async fn approvals_of<B: Backend>(
    tx: &mut SqlTransaction<B>,
    nonce: &ApprovalNonce,
) -> Result<Vec<Approval>, Error> {
    let rows = tx
        .fetch(
            APPROVALS,
            "SELECT key_id, node_id, version, nonce, operation, request_hash, requester, ticket, \
             role, expires_at, approver, signature, recorded_at FROM approvals \
             WHERE nonce = $1 ORDER BY recorded_at, approver",
            args![nonce.0.as_slice()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, APPROVALS);
            Ok(Approval {
                target: node_version(&cols, 0)?,
                nonce: ApprovalNonce(cols.digest(3, "nonce")?),
                operation: cols.parse(4, "operation", Label::new)?,
                request_hash: cols.digest(5, "request_hash")?,
                requester: cols.parse(6, "requester", ActorId::new)?,
                ticket: cols.parse(7, "ticket", Label::new)?,
                role: cols.parse(8, "role", Label::new)?,
                expires_at: cols.timestamp(9, "expires_at")?,
                approver: cols.parse(10, "approver", ActorId::new)?,
                signature: cols
                    .blob(11, "signature")?
                    .try_into()
                    .map_err(|_| cols.corrupt("signature"))?,
                recorded_at: cols.timestamp(12, "recorded_at")?,
            })
        })
        .collect()
}

async fn issue<B: Backend>(
    tx: &mut SqlTransaction<B>,
    request: &ApprovalRequest,
) -> Result<(), Error> {
    if request.expires_at <= request.issued_at {
        return Err(Error::TimesOutOfOrder {
            field: "expires_at",
        });
    }
    match load_request(tx, &request.nonce).await {
        Ok(_) => return Err(Error::ApprovalRequestExists(request.nonce)),
        Err(Error::ApprovalRequestNotFound(_)) => {}
        Err(other) => return Err(other),
    }
    tx.execute(
        REQUESTS,
        "INSERT INTO approval_requests (key_id, node_id, version, nonce, operation, request_hash, \
         requester, ticket, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        with(
            version_args(&request.target),
            args![
                request.nonce.0.as_slice(),
                request.operation.as_str(),
                request.request_hash.as_slice(),
                request.requester.as_str(),
                request.ticket.as_str(),
                timestamp_to_db(request.issued_at),
                timestamp_to_db(request.expires_at),
            ],
        ),
    )
    .await?;
    Ok(())
}

/// The first signed field in which an approval differs from its request.
fn mismatch(request: &ApprovalRequest, approval: &Approval) -> Option<&'static str> {
    if approval.operation != request.operation {
        Some("operation")
    } else if approval.request_hash != request.request_hash {
        Some("request_hash")
    } else if approval.requester != request.requester {
        Some("requester")
    } else if approval.ticket != request.ticket {
        Some("ticket")
    } else if approval.target != request.target {
        Some("target")
    } else {
        None
    }
}

async fn record<B: Backend>(tx: &mut SqlTransaction<B>, approval: &Approval) -> Result<(), Error> {
    let nonce = approval.nonce;
    let stored = load_request(tx, &nonce).await?;
    if stored.consumed_at.is_some() {
        return Err(Error::ApprovalRequestConsumed(nonce));
    }
    if approval.recorded_at >= stored.request.expires_at {
        return Err(Error::ApprovalRequestExpired {
            nonce,
            expired_at: stored.request.expires_at,
        });
    }
    if let Some(field) = mismatch(&stored.request, approval) {
        return Err(Error::ApprovalMismatch { nonce, field });
    }
    if approval.approver == approval.requester {
        return Err(Error::ApproverIsRequester(approval.approver.clone()));
    }
    if tx
        .fetch_optional(
            APPROVALS,
            "SELECT 1 FROM approvals WHERE nonce = $1 AND approver = $2",
            args![nonce.0.as_slice(), approval.approver.as_str()],
        )
        .await?
        .is_some()
    {
        return Err(Error::ApprovalExists {
            nonce,
            approver: approval.approver.clone(),
        });
    }
    tx.execute(
        APPROVALS,
        "INSERT INTO approvals (key_id, node_id, version, nonce, operation, request_hash, \
         requester, ticket, role, expires_at, approver, signature, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        with(
            version_args(&approval.target),
            args![
                nonce.0.as_slice(),
                approval.operation.as_str(),
                approval.request_hash.as_slice(),
                approval.requester.as_str(),
                approval.ticket.as_str(),
                approval.role.as_str(),
                timestamp_to_db(approval.expires_at),
                approval.approver.as_str(),
                approval.signature.as_slice(),
                timestamp_to_db(approval.recorded_at),
            ],
        ),
    )
    .await?;
    Ok(())
}

async fn request_with_approvals<B: Backend>(
    tx: &mut SqlTransaction<B>,
    nonce: &ApprovalNonce,
) -> Result<(ApprovalRequest, Vec<Approval>), Error> {
    let stored = load_request(tx, nonce).await?;
    Ok((stored.request, approvals_of(tx, nonce).await?))
}

async fn consume<B: Backend>(
    tx: &mut SqlTransaction<B>,
    nonce: &ApprovalNonce,
    operation: &Label,
    request_hash: &[u8; 32],
    now: Timestamp,
) -> Result<Vec<Approval>, Error> {
    let stored = load_request(tx, nonce).await?;
    if stored.consumed_at.is_some() {
        return Err(Error::ApprovalRequestConsumed(*nonce));
    }
    if now >= stored.request.expires_at {
        return Err(Error::ApprovalRequestExpired {
            nonce: *nonce,
            expired_at: stored.request.expires_at,
        });
    }
    let field = if &stored.request.operation != operation {
        Some("operation")
    } else if &stored.request.request_hash != request_hash {
        Some("request_hash")
    } else {
        None
    };
    if let Some(field) = field {
        return Err(Error::ApprovalMismatch {
            nonce: *nonce,
            field,
        });
    }
    tx.update_one(
        REQUESTS,
        "UPDATE approval_requests SET consumed_at = $2 WHERE nonce = $1 AND consumed_at IS NULL",
        args![nonce.0.as_slice(), timestamp_to_db(now)],
    )
    .await?;
    let mut approvals = approvals_of(tx, nonce).await?;
    approvals.retain(|approval| now < approval.expires_at);
    Ok(approvals)
}

impl<B: Backend> ApprovalStore for SqlTransaction<B> {
    async fn issue_approval_request(&mut self, request: &ApprovalRequest) -> Result<(), Error> {
        guarded!(self, Write, issue(self, request))
    }

    async fn record_approval(&mut self, approval: &Approval) -> Result<(), Error> {
        guarded!(self, Write, record(self, approval))
    }

    async fn approval_request(
        &mut self,
        nonce: &ApprovalNonce,
    ) -> Result<(ApprovalRequest, Vec<Approval>), Error> {
        guarded!(self, Read, request_with_approvals(self, nonce))
    }

    async fn consume_approval_request(
        &mut self,
        nonce: &ApprovalNonce,
        operation: &Label,
        request_hash: &[u8; 32],
        now: Timestamp,
    ) -> Result<Vec<Approval>, Error> {
        guarded!(
            self,
            Write,
            consume(self, nonce, operation, request_hash, now)
        )
    }
}
