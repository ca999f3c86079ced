//! Group keys, backup policies and the split reference of each key version.

use shardkeep_types::{ActorId, KeyId, NodeVersion, Threshold};

use super::{Backend, Columns, SqlTransaction, args, guarded, version_args, with};
use crate::error::Error;
use crate::records::{
    DIGEST_LEN, GroupRecord, MAX_BINDING_LEN, MAX_COMMITMENTS_LEN, MAX_GROUP_KEY_LEN,
    MAX_POLICY_LEN, PolicyRecord, SplitReference,
};
use crate::traits::GroupStore;
use crate::types::{check_blob, timestamp_to_db};

const GROUPS: &str = "groups";
const POLICIES: &str = "policies";
const REFERENCES: &str = "split_references";

async fn load_group<B: Backend>(
    tx: &mut SqlTransaction<B>,
    key_id: &KeyId,
) -> Result<Option<GroupRecord>, Error> {
    let Some(row) = tx
        .fetch_optional(
            GROUPS,
            "SELECT key_id, curve, group_public_key, tss_degree, parties, registered_at \
             FROM groups WHERE key_id = $1",
            args![key_id.as_str()],
        )
        .await?
    else {
        return Ok(None);
    };
    decode_group::<B>(&row).map(Some)
}

fn decode_group<B: Backend>(row: &B::Row) -> Result<GroupRecord, Error> {
    let cols = Columns::<B>::new(row, GROUPS);
    Ok(GroupRecord {
        key_id: cols.parse(0, "key_id", KeyId::new)?,
        curve: cols.small(1, "curve")?,
        group_public_key: cols.blob(2, "group_public_key")?,
        tss_degree: cols.small(3, "tss_degree")?,
        parties: cols.small(4, "parties")?,
        registered_at: cols.timestamp(5, "registered_at")?,
    })
}

async fn groups_of<B: Backend>(
    tx: &mut SqlTransaction<B>,
    keys: &[KeyId],
) -> Result<Vec<GroupRecord>, Error> {
    let mut groups = Vec::new();
    for chunk in keys.chunks(crate::KEYS_PER_QUERY) {
        let rows = tx
            .fetch(
                GROUPS,
                "SELECT key_id, curve, group_public_key, tss_degree, parties, registered_at \
                 FROM groups WHERE key_id IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32) ORDER BY key_id",
                super::key_list_args(chunk),
            )
            .await?;
        for row in &rows {
            groups.push(decode_group::<B>(row)?);
        }
    }
    groups.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    groups.dedup_by(|a, b| a.key_id == b.key_id);
    Ok(groups)
}

/// A group, or [`Error::GroupNotFound`].
async fn group<B: Backend>(
    tx: &mut SqlTransaction<B>,
    key_id: &KeyId,
) -> Result<GroupRecord, Error> {
    load_group(tx, key_id)
        .await?
        .ok_or_else(|| Error::GroupNotFound(key_id.clone()))
}

async fn register_group<B: Backend>(
    tx: &mut SqlTransaction<B>,
    group: &GroupRecord,
) -> Result<(), Error> {
    check_blob(
        "group public key",
        &group.group_public_key,
        1,
        MAX_GROUP_KEY_LEN,
    )?;
    if group.tss_degree == 0 || group.tss_degree >= group.parties {
        return Err(Error::InvalidGroupParameters {
            tss_degree: group.tss_degree,
            parties: group.parties,
        });
    }
    if let Some(stored) = load_group(tx, &group.key_id).await? {
        let same = (
            stored.curve,
            &stored.group_public_key,
            stored.tss_degree,
            stored.parties,
        ) == (
            group.curve,
            &group.group_public_key,
            group.tss_degree,
            group.parties,
        );
        return if same {
            Ok(())
        } else {
            Err(Error::GroupExists(group.key_id.clone()))
        };
    }
    tx.execute(
        GROUPS,
        "INSERT INTO groups (key_id, curve, group_public_key, tss_degree, parties, \
         registered_at) VALUES ($1, $2, $3, $4, $5, $6)",
        args![
            group.key_id.as_str(),
            i64::from(group.curve),
            group.group_public_key.as_slice(),
            i64::from(group.tss_degree),
            i64::from(group.parties),
            timestamp_to_db(group.registered_at),
        ],
    )
    .await?;
    Ok(())
}

/// Columns 0..=3 of a policy.
macro_rules! select_policy {
    ($tail:literal) => {
        concat!(
            "SELECT hash, encoding, set_at, set_by FROM policies ",
            $tail
        )
    };
}

fn decode_policy<B: Backend>(row: &B::Row) -> Result<PolicyRecord, Error> {
    let cols = Columns::<B>::new(row, POLICIES);
    Ok(PolicyRecord {
        hash: cols.digest(0, "hash")?,
        encoding: cols.blob(1, "encoding")?,
        set_at: cols.timestamp(2, "set_at")?,
        set_by: cols.parse(3, "set_by", ActorId::new)?,
    })
}

async fn find_policy<B: Backend>(
    tx: &mut SqlTransaction<B>,
    hash: &[u8; DIGEST_LEN],
) -> Result<Option<PolicyRecord>, Error> {
    // The first time it was set: what a version made under it saw.
    const SQL: &str = select_policy!("WHERE hash = $1 ORDER BY id LIMIT 1");
    tx.fetch_optional(POLICIES, SQL, args![hash.as_slice()])
        .await?
        .as_ref()
        .map(decode_policy::<B>)
        .transpose()
}

async fn current_policy<B: Backend>(
    tx: &mut SqlTransaction<B>,
) -> Result<Option<PolicyRecord>, Error> {
    const SQL: &str = select_policy!("ORDER BY id DESC LIMIT 1");
    tx.fetch_optional(POLICIES, SQL, Vec::new())
        .await?
        .as_ref()
        .map(decode_policy::<B>)
        .transpose()
}

async fn set_policy<B: Backend>(
    tx: &mut SqlTransaction<B>,
    policy: &PolicyRecord,
) -> Result<(), Error> {
    check_blob("policy", &policy.encoding, 1, MAX_POLICY_LEN)?;
    if let Some(stored) = find_policy(tx, &policy.hash).await?
        && stored.encoding != policy.encoding
    {
        return Err(Error::PolicyConflict(policy.hash));
    }
    if let Some(current) = current_policy(tx).await?
        && policy.set_at < current.set_at
    {
        return Err(Error::TimesOutOfOrder { field: "set_at" });
    }
    tx.execute(
        POLICIES,
        "INSERT INTO policies (hash, encoding, set_at, set_by) VALUES ($1, $2, $3, $4)",
        args![
            policy.hash.as_slice(),
            policy.encoding.as_slice(),
            timestamp_to_db(policy.set_at),
            policy.set_by.as_str(),
        ],
    )
    .await?;
    Ok(())
}

/// Checks a split reference against the version's threshold, its group
/// and the policies set, before the version is created.
pub(super) async fn check_reference<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
    threshold: Threshold,
    reference: &SplitReference,
) -> Result<(), Error> {
    check_blob(
        "commitments",
        &reference.commitments,
        1,
        MAX_COMMITMENTS_LEN,
    )?;
    check_blob("binding", &reference.binding, 1, MAX_BINDING_LEN)?;
    // The server alone never recovers; the custodians alone always can.
    let external = threshold.n().checked_sub(reference.server_shares);
    if reference.server_shares >= threshold.t() || external.is_none_or(|e| e < threshold.t()) {
        return Err(Error::ServerSharesOutOfRange {
            server_shares: reference.server_shares,
            threshold,
        });
    }
    let group = group(tx, &version.key_id).await?;
    if group.curve != reference.curve {
        return Err(Error::CurveMismatch {
            group: group.curve,
            reference: reference.curve,
        });
    }
    if find_policy(tx, &reference.policy_hash).await?.is_none() {
        return Err(Error::PolicyNotFound(reference.policy_hash));
    }
    Ok(())
}

/// Stores the split reference of a version just created.
pub(super) async fn insert_reference<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
    reference: &SplitReference,
) -> Result<(), Error> {
    tx.execute(
        REFERENCES,
        "INSERT INTO split_references (key_id, node_id, version, curve, split_id, commitments, \
         binding, policy_hash, server_shares) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        with(
            version_args(version),
            args![
                i64::from(reference.curve),
                reference.split_id.as_slice(),
                reference.commitments.as_slice(),
                reference.binding.as_slice(),
                reference.policy_hash.as_slice(),
                i64::from(reference.server_shares),
            ],
        ),
    )
    .await?;
    Ok(())
}

/// The split reference of a version, or [`Error::KeyVersionNotFound`] /
/// [`Error::SplitReferenceNotFound`].
pub(super) async fn load_reference<B: Backend>(
    tx: &mut SqlTransaction<B>,
    version: &NodeVersion,
) -> Result<SplitReference, Error> {
    let Some(row) = tx
        .fetch_optional(
            REFERENCES,
            "SELECT curve, split_id, commitments, binding, policy_hash, server_shares \
             FROM split_references WHERE key_id = $1 AND node_id = $2 AND version = $3",
            version_args(version),
        )
        .await?
    else {
        super::key_versions::load(tx, version).await?;
        return Err(Error::SplitReferenceNotFound(version.clone()));
    };
    let cols = Columns::<B>::new(&row, REFERENCES);
    Ok(SplitReference {
        curve: cols.small(0, "curve")?,
        split_id: cols.digest(1, "split_id")?,
        commitments: cols.blob(2, "commitments")?,
        binding: cols.blob(3, "binding")?,
        policy_hash: cols.digest(4, "policy_hash")?,
        server_shares: cols.small(5, "server_shares")?,
    })
}

impl<B: Backend> GroupStore for SqlTransaction<B> {
    async fn register_group(&mut self, group: &GroupRecord) -> Result<(), Error> {
        guarded!(self, Write, register_group(self, group))
    }

    async fn group(&mut self, key_id: &KeyId) -> Result<GroupRecord, Error> {
        guarded!(self, Read, group(self, key_id))
    }

    async fn groups_of(&mut self, keys: &[KeyId]) -> Result<Vec<GroupRecord>, Error> {
        guarded!(self, Read, groups_of(self, keys))
    }

    async fn set_policy(&mut self, policy: &PolicyRecord) -> Result<(), Error> {
        guarded!(self, Write, set_policy(self, policy))
    }

    async fn current_policy(&mut self) -> Result<Option<PolicyRecord>, Error> {
        guarded!(self, Read, current_policy(self))
    }

    async fn policy(&mut self, hash: &[u8; DIGEST_LEN]) -> Result<PolicyRecord, Error> {
        guarded!(self, Read, async {
            find_policy(self, hash)
                .await?
                .ok_or(Error::PolicyNotFound(*hash))
        })
    }
}
