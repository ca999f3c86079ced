//! Single-use inventory challenges and the proofs that answer them.

use shardkeep_types::{CustodianId, Timestamp};

use super::{
    Backend, Columns, SqlTransaction, args, custody, guarded, share_slot, slot_args, with,
};
use crate::error::Error;
use crate::records::{
    DIGEST_LEN, InventoryChallenge, InventoryProofRecord, MAX_INVENTORY_PROOF_LEN,
};
use crate::traits::InventoryStore;
use crate::types::{check_blob, timestamp_to_db};

const CHALLENGES: &str = "inventory_challenges";
const PROOFS: &str = "inventory_proofs";

/// A challenge and when it was consumed, if it was.
async fn load<B: Backend>(
    tx: &mut SqlTransaction<B>,
    nonce: &[u8; DIGEST_LEN],
) -> Result<(InventoryChallenge, Option<Timestamp>), Error> {
    let row = tx
        .fetch_optional(
            CHALLENGES,
            "SELECT key_id, node_id, version, share_index, custodian_id, issued_at, expires_at, \
             consumed_at, nonce FROM inventory_challenges WHERE nonce = $1",
            args![nonce.as_slice()],
        )
        .await?
        .ok_or(Error::ChallengeNotFound(*nonce))?;
    let cols = Columns::<B>::new(&row, CHALLENGES);
    let challenge = InventoryChallenge {
        nonce: cols.digest(8, "nonce")?,
        slot: share_slot(&cols, 0)?,
        custodian: cols.parse(4, "custodian_id", CustodianId::new)?,
        issued_at: cols.timestamp(5, "issued_at")?,
        expires_at: cols.timestamp(6, "expires_at")?,
    };
    Ok((challenge, cols.opt_timestamp(7, "consumed_at")?))
}

async fn issue<B: Backend>(
    tx: &mut SqlTransaction<B>,
    challenge: &InventoryChallenge,
) -> Result<(), Error> {
    if challenge.expires_at <= challenge.issued_at {
        return Err(Error::TimesOutOfOrder {
            field: "expires_at",
        });
    }
    match load(tx, &challenge.nonce).await {
        Err(Error::ChallengeNotFound(_)) => {}
        Ok(_) => return Err(Error::ChallengeExists(challenge.nonce)),
        Err(error) => return Err(error),
    }
    let entry = custody::load(tx, &challenge.slot).await?;
    if entry.custodian != challenge.custodian {
        return Err(Error::CustodianMismatch {
            slot: challenge.slot.clone(),
            mapped: entry.custodian,
        });
    }
    tx.execute(
        CHALLENGES,
        "INSERT INTO inventory_challenges (key_id, node_id, version, share_index, nonce, \
         custodian_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        with(
            slot_args(&challenge.slot),
            args![
                challenge.nonce.as_slice(),
                challenge.custodian.as_str(),
                timestamp_to_db(challenge.issued_at),
                timestamp_to_db(challenge.expires_at),
            ],
        ),
    )
    .await?;
    Ok(())
}

async fn consume<B: Backend>(
    tx: &mut SqlTransaction<B>,
    nonce: &[u8; DIGEST_LEN],
    now: Timestamp,
) -> Result<InventoryChallenge, Error> {
    let (challenge, consumed_at) = load(tx, nonce).await?;
    if consumed_at.is_some() {
        return Err(Error::ChallengeConsumed(*nonce));
    }
    if now >= challenge.expires_at {
        return Err(Error::ChallengeExpired {
            nonce: *nonce,
            expired_at: challenge.expires_at,
        });
    }
    tx.update_one(
        CHALLENGES,
        "UPDATE inventory_challenges SET consumed_at = $2 \
         WHERE nonce = $1 AND consumed_at IS NULL",
        args![nonce.as_slice(), timestamp_to_db(now)],
    )
    .await?;
    Ok(challenge)
}

async fn record_proof<B: Backend>(
    tx: &mut SqlTransaction<B>,
    proof: &InventoryProofRecord,
) -> Result<(), Error> {
    check_blob("inventory proof", &proof.proof, 1, MAX_INVENTORY_PROOF_LEN)?;
    let (challenge, consumed_at) = load(tx, &proof.nonce).await?;
    if consumed_at.is_none() {
        return Err(Error::ChallengeNotConsumed(proof.nonce));
    }
    if challenge.slot != proof.slot {
        return Err(Error::ChallengeSlotMismatch(proof.nonce));
    }
    if proof.verified_at < challenge.issued_at {
        return Err(Error::TimesOutOfOrder {
            field: "verified_at",
        });
    }
    if tx
        .fetch_optional(
            PROOFS,
            "SELECT 1 FROM inventory_proofs WHERE nonce = $1",
            args![proof.nonce.as_slice()],
        )
        .await?
        .is_some()
    {
        return Err(Error::InventoryProofExists(proof.nonce));
    }
    let entry = custody::load(tx, &proof.slot).await?;
    if entry.person != proof.person {
        return Err(Error::CustodyPersonMismatch {
            slot: proof.slot.clone(),
            expected: entry.person,
        });
    }
    tx.execute(
        PROOFS,
        "INSERT INTO inventory_proofs (key_id, node_id, version, share_index, nonce, person_id, \
         proof, verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        with(
            slot_args(&proof.slot),
            args![
                proof.nonce.as_slice(),
                proof.person.as_str(),
                proof.proof.as_slice(),
                timestamp_to_db(proof.verified_at),
            ],
        ),
    )
    .await?;
    custody::confirm(tx, &proof.slot, proof.verified_at).await
}

impl<B: Backend> InventoryStore for SqlTransaction<B> {
    async fn issue_inventory_challenge(
        &mut self,
        challenge: &InventoryChallenge,
    ) -> Result<(), Error> {
        guarded!(self, Write, issue(self, challenge))
    }

    async fn consume_inventory_challenge(
        &mut self,
        nonce: &[u8; DIGEST_LEN],
        now: Timestamp,
    ) -> Result<InventoryChallenge, Error> {
        guarded!(self, Write, consume(self, nonce, now))
    }

    async fn record_inventory_proof(&mut self, proof: &InventoryProofRecord) -> Result<(), Error> {
        guarded!(self, Write, record_proof(self, proof))
    }
}
