//! The service's side of an inventory: issuing single-use challenges and
//! checking the custodians' signed proofs against the stored commitments.

use shardkeep_audit::{AuditRecord, EventType, Outcome};
use shardkeep_envelope::CurveCommitments;
use shardkeep_sss_core::{
    Commitments, Curve, CurveId, Ed25519, PossessionProof, Secp256k1, verify_possession,
};
use shardkeep_storage::{
    AccessControlStore, CustodyStore, EntityState, GroupStore, InventoryProofRecord,
    InventoryStore, KeyVersionStore, RegistryStore, SplitReference, StatusStore, Storage,
    Transaction,
};
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, NodeVersion, ShareSlot, Threshold, Timestamp,
};

use crate::access::{RateCheck, RateKind};
use crate::error::Error;
use crate::inventory::{InventoryChallenge, InventoryProof};
use crate::registry::Role;
use crate::service::BackupService;

/// A verified inventory proof, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InventoryConfirmation {
    /// The external share slot confirmed.
    pub slot: ShareSlot,
    /// The custodian entity holding it.
    pub custodian: CustodianId,
    /// The person who signed the proof.
    pub person: ActorId,
    /// The envelope the share is in.
    pub envelope_id: EnvelopeId,
    /// The slot's new confirmation time.
    pub confirmed_at: Timestamp,
}

/// Why a proof was refused, and what the refusal is counted against.
struct Rejection {
    error: Error,
    /// Whose rejected proof this counts as: the signer once the signature
    /// verified, the submitter before.
    counted: ActorId,
    /// The slot, once known.
    slot: Option<ShareSlot>,
    /// Whether the challenge was consumed in the transaction (the refusal
    /// is then recorded in it: the nonce stays used).
    consumed: bool,
}

/// What the checks found, for the record.
struct Verified {
    proof: InventoryProof,
    custodian: CustodianId,
}

/// The stored commitments of a version's split, on its curve, checked
/// against the stored split id.
pub(crate) fn stored_commitments(
    version: &NodeVersion,
    threshold: Threshold,
    reference: &SplitReference,
) -> Result<CurveCommitments, Error> {
    fn decode<C: Curve>(
        version: &NodeVersion,
        threshold: Threshold,
        reference: &SplitReference,
    ) -> Result<Commitments<C>, Error> {
        let inconsistent = || Error::InconsistentSplitReference(version.clone());
        let commitments = Commitments::<C>::from_bytes(threshold, &reference.commitments)
            .map_err(|_| inconsistent())?;
        // Public ids: a plain comparison.
        if *commitments.split_id().as_bytes() != reference.split_id {
            return Err(inconsistent());
        }
        Ok(commitments)
    }
    match CurveId::from_u8(reference.curve) {
        Ok(CurveId::Secp256k1) => Ok(CurveCommitments::Secp256k1(decode::<Secp256k1>(
            version, threshold, reference,
        )?)),
        Ok(CurveId::Ed25519) => Ok(CurveCommitments::Ed25519(decode::<Ed25519>(
            version, threshold, reference,
        )?)),
        Err(_) => Err(Error::InconsistentSplitReference(version.clone())),
    }
}

/// Verifies the possession proof bytes for `index` against `commitments`.
fn check_possession(
    commitments: &CurveCommitments,
    slot: &ShareSlot,
    possession: &[u8],
    context: &[u8],
) -> Result<(), Error> {
    fn check<C: Curve>(
        commitments: &Commitments<C>,
        slot: &ShareSlot,
        possession: &[u8],
        context: &[u8],
    ) -> Result<(), shardkeep_sss_core::Error> {
        let proof = PossessionProof::<C>::from_bytes(possession)?;
        verify_possession(&proof, commitments, slot.index, context)
    }
    let checked = match commitments {
        CurveCommitments::Secp256k1(commitments) => check(commitments, slot, possession, context),
        CurveCommitments::Ed25519(commitments) => check(commitments, slot, possession, context),
    };
    checked.map_err(|source| Error::PossessionProofRejected {
        slot: slot.clone(),
        source,
    })
}

impl<S: Storage> BackupService<S>
where
    S::Transaction: RegistryStore + GroupStore + StatusStore + AccessControlStore + InventoryStore,
{
    /// Issues a single-use inventory challenge for the custodian of an
    /// external share slot, valid for the configured time
    /// (`inventory_challenge_ttl`). The operator carries
    /// [`InventoryChallenge::encode`] to the custodian, whose tool answers
    /// with [`prove_inventory`](crate::prove_inventory). Audited
    /// (`inspect`).
    ///
    /// # Errors
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingRole`] (operator); [`Error::RateLimited`];
    /// [`Error::NotInCustody`] for a slot with no custodian;
    /// [`Error::CustodianRevoked`]; storage and audit failures.
    pub async fn issue_inventory_challenge(
        &self,
        actor: &ActorId,
        slot: &ShareSlot,
    ) -> Result<InventoryChallenge, Error> {
        let result = self.issue_challenge(actor, slot).await;
        self.observed(actor, result).await
    }

    async fn issue_challenge(
        &self,
        actor: &ActorId,
        slot: &ShareSlot,
    ) -> Result<InventoryChallenge, Error> {
        let version = slot.node_version();
        let mut tx = self.begin().await?;
        if let Err(refusal) = Self::authorize(&mut tx, actor, Role::Operator).await {
            drop(tx);
            return self.refuse(actor, Some(&version), refusal).await;
        }
        if let RateCheck::Refused(error) = self.count_in(&mut tx, actor, RateKind::Inspect).await? {
            tx.commit().await?;
            return Err(error);
        }
        let entry = match tx.custody_entry(slot).await {
            Ok(entry) => entry,
            Err(shardkeep_storage::Error::CustodyEntryNotFound(_)) => {
                drop(tx);
                let refusal = Error::NotInCustody(slot.clone());
                return self
                    .refuse_inspect(actor, "inventory challenge", refusal)
                    .await;
            }
            Err(other) => return Err(other.into()),
        };
        let entity = tx.entity(&entry.custodian).await?;
        if !matches!(entity.state, EntityState::Active) {
            drop(tx);
            let refusal = Error::CustodianRevoked(entry.custodian);
            return self
                .refuse_inspect(actor, "inventory challenge", refusal)
                .await;
        }
        let now = self.now();
        let expires_at = now
            .checked_add(self.config().inventory_challenge_ttl)
            .ok_or(Error::InvalidConfig {
                setting: "inventory_challenge_ttl",
                why: "reaches past the last representable time",
            })?;
        let challenge = InventoryChallenge {
            nonce: self.random_bytes(),
            slot: slot.clone(),
            envelope_id: entry.envelope_id,
            custodian: entry.custodian.clone(),
            expires_at,
        };
        tx.issue_inventory_challenge(&shardkeep_storage::InventoryChallenge {
            nonce: challenge.nonce,
            slot: slot.clone(),
            custodian: entry.custodian.clone(),
            issued_at: now,
            expires_at,
        })
        .await?;
        let mut record = self.slot_record(EventType::Inspect, actor, slot);
        record.envelope_id = Some(*entry.envelope_id.as_bytes());
        record.target = Some(FreeText::sanitized(entry.custodian.as_str())?);
        record.detail = Some(FreeText::sanitized(&format!(
            "inventory challenge issued; expires {expires_at}"
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(challenge)
    }

    /// Checks a custodian's signed inventory proof ([`InventoryProof`]
    /// bytes) and records it: the slot's confirmation time is set.
    ///
    /// In order: the caller is an operator, or the person who signed the
    /// proof (role custodian); the signer is looked up now (registered,
    /// active, custodian, a member of the challenged entity, which is
    /// active) and the signature checked with their registered receipt
    /// key; the challenge is consumed (single use, unexpired) and must be
    /// the one the proof repeats; the custody map must name this person,
    /// this envelope and this container; the proof of possession must
    /// verify against the commitments stored at generate time. Audited
    /// (`confirm`); a refusal too, and rejected proofs from one person past
    /// the threshold are an anomaly. A challenge answered with a bad proof
    /// stays used.
    ///
    /// # Errors
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingRole`] (for the caller or the signer);
    /// [`Error::RateLimited`]; [`Error::Framing`], [`Error::Types`] for
    /// bytes that do not decode; [`Error::NoReceiptKey`],
    /// [`Error::InventorySignatureInvalid`], [`Error::CustodianRevoked`],
    /// [`Error::NotCustodianMember`]; [`Error::ChallengeNotFound`],
    /// [`Error::ChallengeConsumed`], [`Error::ChallengeExpired`],
    /// [`Error::ChallengeMismatch`]; [`Error::NotInCustody`],
    /// [`Error::InventoryWrongPerson`],
    /// [`Error::InventoryEnvelopeMismatch`],
    /// [`Error::InventoryContainerMismatch`],
    /// [`Error::PossessionProofRejected`]; storage and audit failures.
    pub async fn confirm_inventory(
        &self,
        actor: &ActorId,
        proof: &[u8],
    ) -> Result<InventoryConfirmation, Error> {
        let result = self.confirm_inventory_proof(actor, proof).await;
        self.observed(actor, result).await
    }

    async fn confirm_inventory_proof(
        &self,
        actor: &ActorId,
        bytes: &[u8],
    ) -> Result<InventoryConfirmation, Error> {
        let mut tx = self.begin().await?;
        let caller =
            match Self::authorize_any(&mut tx, actor, &[Role::Operator, Role::Custodian]).await {
                Ok(caller) => caller,
                Err(refusal) => {
                    drop(tx);
                    return self.refuse(actor, None, refusal).await;
                }
            };
        if let RateCheck::Refused(error) = self.count_in(&mut tx, actor, RateKind::Inspect).await? {
            tx.commit().await?;
            return Err(error);
        }
        let checked = self
            .check_proof(&mut tx, actor, caller.roles.contains(Role::Operator), bytes)
            .await?;
        let verified = match checked {
            Ok(verified) => verified,
            Err(rejection) if rejection.consumed => {
                // Record the refusal with the consumed challenge; if that
                // fails, record it on its own.
                match self.record_rejection(&mut tx, actor, &rejection).await {
                    Ok(()) => {
                        tx.commit().await?;
                        return Err(rejection.error);
                    }
                    Err(_) => {
                        drop(tx);
                        return self.reject_alone(actor, rejection).await;
                    }
                }
            }
            Err(rejection) => {
                drop(tx);
                return self.reject_alone(actor, rejection).await;
            }
        };
        let now = self.now();
        let slot = verified.proof.challenge.slot.clone();
        tx.record_inventory_proof(&InventoryProofRecord {
            nonce: verified.proof.challenge.nonce,
            slot: slot.clone(),
            person: verified.proof.person.clone(),
            proof: bytes.to_vec(),
            verified_at: now,
        })
        .await?;
        let mut record = self.slot_record(EventType::Confirm, actor, &slot);
        record.envelope_id = Some(*verified.proof.challenge.envelope_id.as_bytes());
        record.signature = Some(verified.proof.signature);
        record.target = Some(FreeText::sanitized(verified.custodian.as_str())?);
        record.detail = Some(FreeText::sanitized(&format!(
            "inventory proof by {} verified; nonce {}; container {}",
            verified.proof.person,
            hex::encode(verified.proof.challenge.nonce),
            hex::encode(verified.proof.container_hash)
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(InventoryConfirmation {
            slot,
            custodian: verified.custodian,
            person: verified.proof.person,
            envelope_id: verified.proof.challenge.envelope_id,
            confirmed_at: now,
        })
    }

    /// Every check of [`BackupService::confirm_inventory`], consuming the
    /// challenge. `Ok(Err(_))` is a refusal of the proof; `Err(_)` a
    /// failure of storage.
    async fn check_proof(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        caller_is_operator: bool,
        bytes: &[u8],
    ) -> Result<Result<Verified, Rejection>, Error> {
        let reject = |error: Error, counted: &ActorId, slot: Option<&ShareSlot>, consumed| {
            Ok(Err(Rejection {
                error,
                counted: counted.clone(),
                slot: slot.cloned(),
                consumed,
            }))
        };
        let proof = match InventoryProof::decode(bytes) {
            Ok(proof) => proof,
            Err(error) => return reject(error, actor, None, false),
        };
        let slot = proof.challenge.slot.clone();
        if !caller_is_operator && proof.person != *actor {
            let error = Error::MissingRole {
                person: actor.clone(),
                role: Role::Operator,
            };
            return reject(error, actor, Some(&slot), false);
        }
        // The signer, looked up now.
        let signer = match Self::authorize(tx, &proof.person, Role::Custodian).await {
            Ok(signer) => signer,
            Err(error) => return reject(error, actor, Some(&slot), false),
        };
        let Some(receipt_key) = signer.keys.receipt_key else {
            return reject(
                Error::NoReceiptKey(proof.person.clone()),
                actor,
                Some(&slot),
                false,
            );
        };
        if let Err(error) = proof.verify_signature(&receipt_key) {
            return reject(error, actor, Some(&slot), false);
        }
        // From here on the signer is authenticated: refusals count against
        // them.
        let person = proof.person.clone();
        let entity = match tx.entity(&proof.challenge.custodian).await {
            Ok(entity) => entity,
            Err(shardkeep_storage::Error::EntityNotFound(custodian)) => {
                let error = Error::NotCustodianMember {
                    person: person.clone(),
                    custodian,
                };
                return reject(error, &person, Some(&slot), false);
            }
            Err(other) => return Err(other.into()),
        };
        if !matches!(entity.state, EntityState::Active) {
            return reject(
                Error::CustodianRevoked(entity.id),
                &person,
                Some(&slot),
                false,
            );
        }
        if !entity.members.contains(&person) {
            let error = Error::NotCustodianMember {
                person: person.clone(),
                custodian: entity.id,
            };
            return reject(error, &person, Some(&slot), false);
        }
        let nonce = proof.challenge.nonce;
        let issued = match tx.consume_inventory_challenge(&nonce, self.now()).await {
            Ok(issued) => issued,
            Err(shardkeep_storage::Error::ChallengeNotFound(_)) => {
                return reject(
                    Error::ChallengeNotFound { nonce },
                    &person,
                    Some(&slot),
                    false,
                );
            }
            Err(shardkeep_storage::Error::ChallengeConsumed(_)) => {
                return reject(
                    Error::ChallengeConsumed { nonce },
                    &person,
                    Some(&slot),
                    false,
                );
            }
            Err(shardkeep_storage::Error::ChallengeExpired { .. }) => {
                let error = Error::ChallengeExpired {
                    expired_at: proof.challenge.expires_at,
                };
                return reject(error, &person, Some(&slot), false);
            }
            Err(other) => return Err(other.into()),
        };
        // The challenge is used from here on, whatever the outcome.
        let mismatch = if issued.slot != proof.challenge.slot {
            Some("slot")
        } else if issued.custodian != proof.challenge.custodian {
            Some("custodian")
        } else if issued.expires_at != proof.challenge.expires_at {
            Some("expiry")
        } else {
            None
        };
        if let Some(field) = mismatch {
            return reject(
                Error::ChallengeMismatch { field },
                &person,
                Some(&slot),
                true,
            );
        }
        let entry = match tx.custody_entry(&slot).await {
            Ok(entry) => entry,
            Err(shardkeep_storage::Error::CustodyEntryNotFound(_)) => {
                return reject(
                    Error::NotInCustody(slot.clone()),
                    &person,
                    Some(&slot),
                    true,
                );
            }
            Err(other) => return Err(other.into()),
        };
        // Public values: plain comparisons.
        let refusal = if entry.custodian != issued.custodian {
            Some(Error::ChallengeMismatch { field: "custodian" })
        } else if entry.person != person {
            Some(Error::InventoryWrongPerson {
                slot: slot.clone(),
                expected: entry.person.clone(),
                got: person.clone(),
            })
        } else if entry.envelope_id != proof.challenge.envelope_id {
            Some(Error::InventoryEnvelopeMismatch { slot: slot.clone() })
        } else if entry.container_hash != proof.container_hash {
            Some(Error::InventoryContainerMismatch { slot: slot.clone() })
        } else {
            None
        };
        if let Some(error) = refusal {
            return reject(error, &person, Some(&slot), true);
        }
        let version = slot.node_version();
        let record = tx.key_version(&version).await?;
        let reference = tx.split_reference(&version).await?;
        let commitments = stored_commitments(&version, record.threshold, &reference)?;
        let context = proof.challenge.possession_context(&proof.container_hash);
        if let Err(error) = check_possession(&commitments, &slot, &proof.possession, &context) {
            return reject(error, &person, Some(&slot), true);
        }
        Ok(Ok(Verified {
            proof,
            custodian: entry.custodian,
        }))
    }

    /// Writes a refused proof's audit record (`confirm`, failed) and
    /// counts it against its person, into `tx`.
    async fn record_rejection(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        rejection: &Rejection,
    ) -> Result<(), Error> {
        let mut record = match &rejection.slot {
            Some(slot) => self.slot_record(EventType::Confirm, actor, slot),
            None => self.record(EventType::Confirm, actor, None),
        };
        record.outcome = Outcome::Failure {
            reason: FreeText::sanitized(&rejection.error.to_string())?,
        };
        record.detail = Some(FreeText::sanitized(&format!(
            "inventory proof refused; counted against {}",
            rejection.counted
        ))?);
        Self::audit(tx, &record).await?;
        self.count_rejection_in(
            tx,
            &rejection.counted,
            rejection.slot.as_ref(),
            RateKind::BadInventoryProof,
            &rejection.error,
        )
        .await
    }

    /// Records a refused proof in a transaction of its own (the call's
    /// transaction was rolled back), counting the call against the caller's
    /// inspect limit again, and returns the refusal.
    async fn reject_alone<T>(&self, actor: &ActorId, rejection: Rejection) -> Result<T, Error> {
        let mut tx = self.begin().await?;
        // The call's own count was rolled back with it; a refusal over the
        // limit is recorded as an anomaly here, and the proof's refusal is
        // what the caller gets.
        let _over_limit = self.count_in(&mut tx, actor, RateKind::Inspect).await?;
        self.record_rejection(&mut tx, actor, &rejection).await?;
        tx.commit().await?;
        Err(rejection.error)
    }

    /// An audit record of `event` by `actor` about one slot.
    fn slot_record(&self, event: EventType, actor: &ActorId, slot: &ShareSlot) -> AuditRecord {
        let version = NodeVersion::from(slot);
        let mut record = self.record(event, actor, Some(&version));
        record.share_index = Some(slot.index);
        record
    }
}
