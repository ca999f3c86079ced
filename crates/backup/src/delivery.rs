//! Deliver and confirm (procedure step 2), and the delivery certificate.
//!
//! Every delivery attempt of a container is recorded: sent, or failed with
//! its reason. A receipt counts only when it verifies under the receipt key
//! registered, **now**, to the person the slot's container was sealed to
//! (recorded in the custody map at generate time), names the slot's
//! custodian entity, and is about the envelope delivered to the slot. A
//! revoked person's or entity's receipt is refused; after a key rotation
//! only the current key counts. Refused receipts are audited. When every
//! external share of a version has a "received" receipt, the receipts form
//! its delivery certificate.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use shardkeep_audit::{EventType, Outcome};
use shardkeep_envelope::{
    CustodianSet, DeliveryCertificate, DeliveryState, ReceiptStatus, VerifiedReceipt,
};
use shardkeep_storage::{
    CustodyEntry, CustodyStore, DeliveryOutcome, DeliveryRecord, KeyVersionState, KeyVersionStore,
    MAX_REASON_LEN, PersonKeyEpoch, ReceiptStore, RegistryStore, Storage, Transaction,
};
use shardkeep_types::{
    ActorId, CustodianId, FreeText, NodeVersion, ShareIndex, ShareSlot, Timestamp,
};

use crate::error::Error;
use crate::registry::{Role, active_entity, active_person, admit_ed25519_key, registry_error};
use crate::service::BackupService;

/// How a delivery attempt went, as the operator reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The container was handed over (courier, media, file transfer); the
    /// custodian's receipt confirms it.
    Sent,
    /// The delivery failed.
    Failed {
        /// Why.
        reason: FreeText<MAX_REASON_LEN>,
    },
}

/// One delivery attempt of one external share's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The external slot.
    pub slot: ShareSlot,
    /// [`container_hash`](crate::container_hash) of the container sent:
    /// it must be the one generated for the slot.
    pub container_hash: [u8; 32],
    /// How it went.
    pub result: DeliveryResult,
}

/// An accepted receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The slot.
    pub slot: ShareSlot,
    /// Its custodian entity.
    pub custodian: CustodianId,
    /// The person whose registered key signed the receipt.
    pub person: ActorId,
    /// What the custodian says: received, or failed with a reason.
    pub status: ReceiptStatus,
    /// The version's delivery certificate, when this receipt completed it.
    pub certificate: Option<DeliveryCertificate>,
}

impl<S: Storage> BackupService<S> {
    /// Records a delivery attempt (an operator does it): sent, or failed
    /// with its reason. The container must be the one generated for the
    /// slot, its version active, and its custodian entity and person still
    /// registered and active.
    ///
    /// # Errors
    /// The refusals of authorization (audited); [`Error::NotExternalSlot`],
    /// [`Error::VersionNotActive`], [`Error::ContainerMismatch`],
    /// [`Error::UnknownEntity`], [`Error::EntityRevoked`],
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`]; storage and
    /// audit errors.
    pub async fn deliver(&self, actor: &ActorId, report: DeliveryReport) -> Result<(), Error> {
        let now = self.now();
        let version = report.slot.node_version();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator], Some(&version))
            .await?;
        let entry = custody_entry(&mut tx, &report.slot).await?;
        check_active(&mut tx, &version).await?;
        // Public hashes: a plain comparison.
        if entry.container_hash != report.container_hash {
            return Err(Error::ContainerMismatch(report.slot));
        }
        active_entity(&mut tx, &entry.custodian).await?;
        active_person(&mut tx, &entry.person).await?;

        let mut record = self.record(EventType::Deliver, actor, Some(&version));
        record.share_index = Some(report.slot.index);
        record.envelope_id = Some(*entry.envelope_id.as_bytes());
        record.target = Some(FreeText::sanitized(entry.custodian.as_str())?);
        record.detail = Some(FreeText::sanitized(&format!(
            "container {} for {} (age {})",
            hex::encode(entry.container_hash),
            entry.person,
            entry.recipient
        ))?);
        if let DeliveryResult::Failed { reason } = &report.result {
            tx.record_delivery(&DeliveryRecord {
                slot: report.slot.clone(),
                custodian: entry.custodian.clone(),
                envelope_id: *entry.envelope_id.as_bytes(),
                outcome: DeliveryOutcome::Failed {
                    reason: reason.clone(),
                },
                recorded_at: now,
            })
            .await?;
            record.outcome = Outcome::Failure {
                reason: FreeText::sanitized(reason.as_str())?,
            };
        }
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accepts a custodian's signed receipt for one external slot (an
    /// operator relays it, or the slot's own custodian person submits it).
    /// It must verify under the receipt key registered now to the person
    /// the container was sealed to, name the slot's custodian entity, and
    /// be about the envelope delivered to the slot. A "received" receipt
    /// confirms the slot; a "failed" one is recorded as a failed delivery.
    /// A refused receipt is audited.
    ///
    /// # Errors
    /// The refusals of authorization (audited), [`Error::NotSlotCustodian`]
    /// (audited); [`Error::NotExternalSlot`], [`Error::VersionNotActive`],
    /// [`Error::UnknownEntity`], [`Error::EntityRevoked`],
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingPersonKey`], [`Error::WeakKey`];
    /// [`Error::ReceiptWrongCustodian`], [`Error::ReceiptSignature`],
    /// [`Error::ReceiptWrongEnvelope`] (audited); [`Error::Envelope`] for a
    /// malformed receipt; [`Error::AlreadyConfirmed`]; storage and audit
    /// errors.
    pub async fn confirm(
        &self,
        actor: &ActorId,
        slot: &ShareSlot,
        receipt: &[u8],
    ) -> Result<Confirmation, Error> {
        let now = self.now();
        let version = slot.node_version();
        let tx = self.begin().await?;
        let (mut tx, submitter) = self
            .authorize_or_refuse(
                tx,
                actor,
                &[Role::Operator, Role::Custodian],
                Some(&version),
            )
            .await?;
        let entry = custody_entry(&mut tx, slot).await?;
        if !submitter.roles.contains(Role::Operator) && submitter.id != entry.person {
            drop(tx);
            let refusal = Error::NotSlotCustodian {
                actor: actor.clone(),
                slot: slot.clone(),
            };
            return self.refuse(actor, Some(&version), refusal).await;
        }
        check_active(&mut tx, &version).await?;
        active_entity(&mut tx, &entry.custodian).await?;
        let person = active_person(&mut tx, &entry.person).await?;
        let key_bytes = person.keys.receipt_key.ok_or(Error::MissingPersonKey {
            person: person.id.clone(),
            key: "receipt key",
        })?;
        let key = admit_ed25519_key(&person.id, "receipt key", &key_bytes)?;

        let verified = match verify_receipt(&entry, key, receipt) {
            Ok(verified) => verified,
            Err(error) => {
                drop(tx);
                return self.refuse_receipt(actor, &entry, error).await;
            }
        };
        let status = verified.receipt().status.clone();
        let outcome = match &status {
            ReceiptStatus::Received => DeliveryOutcome::Delivered {
                receipt: receipt.to_vec(),
            },
            ReceiptStatus::Failed(reason) => DeliveryOutcome::Failed {
                reason: FreeText::sanitized(reason.as_str())?,
            },
        };
        tx.record_delivery(&DeliveryRecord {
            slot: slot.clone(),
            custodian: entry.custodian.clone(),
            envelope_id: *entry.envelope_id.as_bytes(),
            outcome,
            recorded_at: now,
        })
        .await
        .map_err(|error| match error {
            shardkeep_storage::Error::ReceiptExists(slot) => Error::AlreadyConfirmed(slot),
            other => other.into(),
        })?;
        if status == ReceiptStatus::Received {
            tx.confirm_custody(slot, now).await?;
        }

        let mut record = self.record(EventType::Confirm, actor, Some(&version));
        record.share_index = Some(slot.index);
        record.envelope_id = Some(*entry.envelope_id.as_bytes());
        record.signature = Some(*verified.signature());
        record.target = Some(FreeText::sanitized(entry.custodian.as_str())?);
        let certificate = match &status {
            ReceiptStatus::Received => {
                let (certificate, missing) = self.assemble_certificate(&mut tx, &version).await?;
                record.detail = Some(FreeText::sanitized(&format!(
                    "receipt signed by {} at {}; {}",
                    person.id,
                    verified.receipt().timestamp.as_unix_millis(),
                    if missing.is_empty() {
                        "delivery certificate complete".to_owned()
                    } else {
                        format!("{} external share(s) still unconfirmed", missing.len())
                    }
                ))?);
                missing.is_empty().then_some(certificate)
            }
            ReceiptStatus::Failed(reason) => {
                record.outcome = Outcome::Failure {
                    reason: FreeText::sanitized(reason.as_str())?,
                };
                record.detail = Some(FreeText::sanitized(&format!(
                    "receipt signed by {} says the delivery failed",
                    person.id
                ))?);
                None
            }
        };
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(Confirmation {
            slot: slot.clone(),
            custodian: entry.custodian,
            person: person.id,
            status,
            certificate,
        })
    }

    /// The delivery certificate of a version: every external share has a
    /// "received" receipt from its own custodian about the envelope
    /// delivered to it. Each stored receipt is verified again, under the
    /// receipt key its person had registered when it was accepted.
    ///
    /// # Errors
    /// The refusals of authorization (audited; operators, security,
    /// compliance and auditors may read it);
    /// [`Error::DeliveryIncomplete`] naming the unconfirmed indices;
    /// [`Error::Envelope`] when a stored receipt no longer verifies;
    /// storage errors.
    pub async fn delivery_certificate(
        &self,
        actor: &ActorId,
        version: &NodeVersion,
    ) -> Result<DeliveryCertificate, Error> {
        let tx = self.begin_read_only().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(
                tx,
                actor,
                &[
                    Role::Operator,
                    Role::Security,
                    Role::Compliance,
                    Role::Auditor,
                ],
                Some(version),
            )
            .await?;
        let (certificate, missing) = self.assemble_certificate(&mut tx, version).await?;
        drop(tx);
        if missing.is_empty() {
            Ok(certificate)
        } else {
            Err(Error::DeliveryIncomplete {
                version: version.clone(),
                missing,
            })
        }
    }

    /// The certificate as the stored custody map and receipts make it, and
    /// the external indices it is missing.
    async fn assemble_certificate(
        &self,
        tx: &mut S::Transaction,
        version: &NodeVersion,
    ) -> Result<(DeliveryCertificate, Vec<ShareIndex>), Error> {
        let entries = tx.custody_map(version).await?;
        let deliveries = tx.deliveries(version).await?;
        let mut custodians = CustodianSet::new();
        let mut delivered = BTreeMap::new();
        let mut receipts = Vec::new();
        for entry in &entries {
            let accepted = deliveries
                .iter()
                .find_map(|delivery| match &delivery.outcome {
                    DeliveryOutcome::Delivered { receipt } if delivery.slot == entry.slot => {
                        Some((delivery.recorded_at, receipt))
                    }
                    _ => None,
                });
            let history = tx
                .person_key_history(&entry.person)
                .await
                .map_err(registry_error)?;
            let key = match accepted {
                Some((at, receipt)) => {
                    receipts.push(receipt);
                    accepting_key(entry, &history, at, receipt)?
                }
                // No receipt to check: the person's latest receipt key.
                None => {
                    let bytes = history
                        .iter()
                        .rev()
                        .find_map(|epoch| epoch.keys.receipt_key)
                        .ok_or(Error::MissingPersonKey {
                            person: entry.person.clone(),
                            key: "receipt key",
                        })?;
                    admit_ed25519_key(&entry.person, "receipt key", &bytes)?
                }
            };
            custodians.insert(entry.slot.index, entry.custodian.clone(), key)?;
            delivered.insert(entry.slot.index, entry.envelope_id);
        }
        let verified = receipts
            .into_iter()
            .map(|receipt| VerifiedReceipt::decode_verify(receipt, &custodians))
            .collect::<Result<Vec<_>, _>>()?;
        let certificate = DeliveryCertificate::assemble(&custodians, &delivered, &verified)?;
        let missing = certificate
            .entries()
            .iter()
            .filter(|entry| !matches!(entry.state, DeliveryState::Received { .. }))
            .map(|entry| entry.index)
            .collect();
        Ok((certificate, missing))
    }

    /// Audits a refused receipt as a failed `confirm` in a transaction of
    /// its own, and returns the refusal.
    async fn refuse_receipt<T>(
        &self,
        actor: &ActorId,
        entry: &CustodyEntry,
        error: Error,
    ) -> Result<T, Error> {
        let version = entry.slot.node_version();
        let mut record = self.record(EventType::Confirm, actor, Some(&version));
        record.share_index = Some(entry.slot.index);
        record.envelope_id = Some(*entry.envelope_id.as_bytes());
        record.target = Some(FreeText::sanitized(entry.custodian.as_str())?);
        record.outcome = Outcome::Failure {
            reason: FreeText::sanitized(&format!("receipt refused: {error}"))?,
        };
        let mut tx = self.begin().await?;
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Err(error)
    }
}

/// The custody entry of an external slot.
async fn custody_entry<T: CustodyStore + Send>(
    tx: &mut T,
    slot: &ShareSlot,
) -> Result<CustodyEntry, Error> {
    match tx.custody_entry(slot).await {
        Ok(entry) => Ok(entry),
        Err(shardkeep_storage::Error::CustodyEntryNotFound(_)) => {
            Err(Error::NotExternalSlot(slot.clone()))
        }
        Err(other) => Err(other.into()),
    }
}

/// Refuses a version that is not active.
async fn check_active<T: KeyVersionStore + Send>(
    tx: &mut T,
    version: &NodeVersion,
) -> Result<(), Error> {
    let record = tx.key_version(version).await?;
    if record.state == KeyVersionState::Active {
        Ok(())
    } else {
        Err(Error::VersionNotActive(version.clone()))
    }
}

/// Verifies a receipt for `entry`'s slot under `key`, the receipt key
/// registered now to the slot's person.
fn verify_receipt(
    entry: &CustodyEntry,
    key: VerifyingKey,
    receipt: &[u8],
) -> Result<VerifiedReceipt, Error> {
    let mut custodians = CustodianSet::new();
    custodians.insert(entry.slot.index, entry.custodian.clone(), key)?;
    let verified =
        VerifiedReceipt::decode_verify(receipt, &custodians).map_err(|error| match error {
            shardkeep_envelope::Error::UnknownCustodian(named) => Error::ReceiptWrongCustodian {
                slot: entry.slot.clone(),
                expected: entry.custodian.clone(),
                named,
            },
            shardkeep_envelope::Error::BadSignature => Error::ReceiptSignature(entry.slot.clone()),
            other => other.into(),
        })?;
    // Public ids: a plain comparison.
    if verified.receipt().envelope_id != entry.envelope_id {
        return Err(Error::ReceiptWrongEnvelope(entry.slot.clone()));
    }
    Ok(verified)
}

/// The receipt key under which a stored receipt was accepted at `at`: one
/// of the person's key epochs in force then (both ends inclusive, newest
/// first, since a rotation and an acceptance may share a millisecond)
/// under which it verifies.
fn accepting_key(
    entry: &CustodyEntry,
    history: &[PersonKeyEpoch],
    at: Timestamp,
    receipt: &[u8],
) -> Result<VerifyingKey, Error> {
    let candidates = history
        .iter()
        .rev()
        .filter(|epoch| epoch.valid_from <= at && epoch.valid_until.is_none_or(|until| at <= until))
        .filter_map(|epoch| epoch.keys.receipt_key);
    for bytes in candidates {
        let key = admit_ed25519_key(&entry.person, "receipt key", &bytes)?;
        if verify_receipt(entry, key, receipt).is_ok() {
            return Ok(key);
        }
    }
    Err(Error::StoredReceiptInvalid(entry.slot.clone()))
}
