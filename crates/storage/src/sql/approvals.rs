//! Approval requests and the signed approvals of them. A request is
//! consumed once, in the transaction of its operation; approvals are
//! append-only.

use shardkeep_types::{ActorId, Timestamp};

use super::{Backend, Columns, SqlTransaction, args, guarded};
use crate::error::Error;
use crate::records::{
    ApprovalOperation, ApprovalRecord, ApprovalRequestHash, ApprovalRequestRecord,
    MAX_APPROVAL_REQUEST_LEN, Role,
};
use crate::traits::ApprovalStore;
use crate::types::{check_blob, timestamp_to_db};

const REQUESTS: &str = "approval_requests";
const APPROVALS: &str = "approvals";

pub(super) async fn load_request<B: Backend>(
    tx: &mut SqlTransaction<B>,
    hash: &ApprovalRequestHash,
) -> Result<ApprovalRequestRecord, Error> {
    let row = tx
        .fetch_optional(
            REQUESTS,
            "SELECT hash, encoding, operation, key_id, node_id, version, requester, created_at, \
             expires_at, consumed_at, consumed_by FROM approval_requests WHERE hash = $1",
            args![hash.0.as_slice()],
        )
        .await?
        .ok_or(Error::ApprovalRequestNotFound(*hash))?;
    let cols = Columns::<B>::new(&row, REQUESTS);
    let operation = cols
        .small::<u8>(2, "operation")
        .ok()
        .and_then(ApprovalOperation::from_code)
        .ok_or_else(|| cols.corrupt("operation"))?;
    let subject = match cols.opt_text(3, "key_id")? {
        None => None,
        Some(_) => Some(super::node_version(&cols, 3)?),
    };
    let consumed_by = cols
        .opt_text(10, "consumed_by")?
        .map(|by| ActorId::new(by).map_err(|_| cols.corrupt("consumed_by")))
        .transpose()?;
    Ok(ApprovalRequestRecord {
        hash: ApprovalRequestHash(cols.digest(0, "hash")?),
        encoding: cols.blob(1, "encoding")?,
        operation,
        subject,
        requester: cols.parse(6, "requester", ActorId::new)?,
        created_at: cols.timestamp(7, "created_at")?,
        expires_at: cols.timestamp(8, "expires_at")?,
        consumed_at: cols.opt_timestamp(9, "consumed_at")?,
        consumed_by,
    })
}

async fn insert_request<B: Backend>(
    tx: &mut SqlTransaction<B>,
    request: &ApprovalRequestRecord,
) -> Result<(), Error> {
    check_blob(
        "approval request",
        &request.encoding,
        1,
        MAX_APPROVAL_REQUEST_LEN,
    )?;
    if request.expires_at <= request.created_at {
        return Err(Error::TimesOutOfOrder {
            field: "expires_at",
        });
    }
    if request.consumed_at.is_some() || request.consumed_by.is_some() {
        return Err(Error::TimesOutOfOrder {
            field: "consumed_at",
        });
    }
    match load_request(tx, &request.hash).await {
        Ok(_) => return Err(Error::ApprovalRequestExists(request.hash)),
        Err(Error::ApprovalRequestNotFound(_)) => {}
        Err(other) => return Err(other),
    }
    let (key_id, node_id, version) = match &request.subject {
        Some(subject) => (
            Some(subject.key_id.as_str()),
            Some(subject.node_id.as_str()),
            Some(i64::from(subject.version.get())),
        ),
        None => (None, None, None),
    };
    tx.execute(
        REQUESTS,
        "INSERT INTO approval_requests (hash, encoding, operation, key_id, node_id, version, \
         requester, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![
            request.hash.0.as_slice(),
            request.encoding.as_slice(),
            i64::from(request.operation.code()),
            key_id,
            node_id,
            version,
            request.requester.as_str(),
            timestamp_to_db(request.created_at),
            timestamp_to_db(request.expires_at),
        ],
    )
    .await?;
    Ok(())
}

fn parse_role(name: &str) -> Option<Role> {
    Role::ALL.into_iter().find(|role| role.name() == name)
}

async fn approvals_of<B: Backend>(
    tx: &mut SqlTransaction<B>,
    hash: &ApprovalRequestHash,
) -> Result<Vec<ApprovalRecord>, Error> {
    let rows = tx
        .fetch(
            APPROVALS,
            "SELECT request_hash, approver, role, signature, approved_at FROM approvals \
             WHERE request_hash = $1 ORDER BY approved_at, approver",
            args![hash.0.as_slice()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let cols = Columns::<B>::new(row, APPROVALS);
            Ok(ApprovalRecord {
                request_hash: ApprovalRequestHash(cols.digest(0, "request_hash")?),
                approver: cols.parse(1, "approver", ActorId::new)?,
                role: parse_role(&cols.text(2, "role")?).ok_or_else(|| cols.corrupt("role"))?,
                signature: cols
                    .blob(3, "signature")?
                    .try_into()
                    .map_err(|_| cols.corrupt("signature"))?,
                approved_at: cols.timestamp(4, "approved_at")?,
            })
        })
        .collect()
}

async fn insert_approval<B: Backend>(
    tx: &mut SqlTransaction<B>,
    approval: &ApprovalRecord,
) -> Result<(), Error> {
    let hash = approval.request_hash;
    let request = load_request(tx, &hash).await?;
    if request.consumed_at.is_some() {
        return Err(Error::ApprovalConsumed(hash));
    }
    if approval.approver == request.requester {
        return Err(Error::ApproverIsRequester(approval.approver.clone()));
    }
    if tx
        .fetch_optional(
            APPROVALS,
            "SELECT 1 FROM approvals WHERE request_hash = $1 AND approver = $2",
            args![hash.0.as_slice(), approval.approver.as_str()],
        )
        .await?
        .is_some()
    {
        return Err(Error::ApprovalExists {
            request: hash,
            approver: approval.approver.clone(),
        });
    }
    tx.execute(
        APPROVALS,
        "INSERT INTO approvals (request_hash, approver, role, signature, approved_at) \
         VALUES ($1, $2, $3, $4, $5)",
        args![
            hash.0.as_slice(),
            approval.approver.as_str(),
            approval.role.name(),
            approval.signature.as_slice(),
            timestamp_to_db(approval.approved_at),
        ],
    )
    .await?;
    Ok(())
}

async fn consume<B: Backend>(
    tx: &mut SqlTransaction<B>,
    hash: &ApprovalRequestHash,
    at: Timestamp,
    by: &ActorId,
) -> Result<(), Error> {
    // Row-level: of two transactions consuming the same request, the second
    // updates nothing; a refused update reads to name why.
    let updated = tx
        .execute(
            REQUESTS,
            "UPDATE approval_requests SET consumed_at = $2, consumed_by = $3 \
             WHERE hash = $1 AND consumed_at IS NULL AND created_at <= $2",
            args![hash.0.as_slice(), timestamp_to_db(at), by.as_str()],
        )
        .await?;
    if updated == 1 {
        return Ok(());
    }
    if load_request(tx, hash).await?.consumed_at.is_some() {
        return Err(Error::ApprovalConsumed(*hash));
    }
    Err(Error::TimesOutOfOrder {
        field: "consumed_at",
    })
}

impl<B: Backend> ApprovalStore for SqlTransaction<B> {
    async fn insert_approval_request(
        &mut self,
        request: &ApprovalRequestRecord,
    ) -> Result<(), Error> {
        guarded!(self, Write, insert_request(self, request))
    }

    async fn approval_request(
        &mut self,
        hash: &ApprovalRequestHash,
    ) -> Result<ApprovalRequestRecord, Error> {
        guarded!(self, Read, load_request(self, hash))
    }

    async fn insert_approval(&mut self, approval: &ApprovalRecord) -> Result<(), Error> {
        guarded!(self, Write, insert_approval(self, approval))
    }

    async fn approvals(
        &mut self,
        hash: &ApprovalRequestHash,
    ) -> Result<Vec<ApprovalRecord>, Error> {
        guarded!(self, Read, approvals_of(self, hash))
    }

    async fn consume_approval_request(
        &mut self,
        hash: &ApprovalRequestHash,
        at: Timestamp,
        by: &ActorId,
    ) -> Result<(), Error> {
        guarded!(self, Write, consume(self, hash, at, by))
    }
}
