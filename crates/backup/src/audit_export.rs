//! Exporting the audit log to an auditor or a compliance person, as an
//! operation: authorized, counted against the caller's inspect rate limit
//! and audited, so that the log itself shows who took a copy of it.

use shardkeep_audit::EventType;
use shardkeep_storage::{AccessControlStore, RegistryStore, Storage, Transaction};
use shardkeep_types::{ActorId, FreeText};

use crate::access::{RateCheck, RateKind};
use crate::error::Error;
use crate::registry::Role;
use crate::service::BackupService;

/// Who may export the audit log.
const EXPORT_ROLES: [Role; 2] = [Role::Auditor, Role::Compliance];

impl<S: Storage> BackupService<S>
where
    S::Transaction: RegistryStore + AccessControlStore,
{
    /// The audit log in its export format (`shardkeep_audit`'s
    /// [`Export`](shardkeep_audit::Export)): the log's identity and its
    /// rows from `from_sequence` on (every row for 0 or 1).
    ///
    /// The caller must be an active auditor or compliance person; the call
    /// counts against their inspect rate limit. The export is audited
    /// (`inspect`, naming the caller and the first sequence) before the
    /// log is read, so the export carries its own record: a copy of the
    /// log never leaves without the log showing who took it.
    ///
    /// # Errors
    /// The refusals of authorization (audited as `access-denied`);
    /// [`Error::RateLimited`] (an anomaly, audited); [`Error::Audit`]
    /// when the log cannot be read or re-encoded; storage and audit errors.
    pub async fn export_audit(
        &self,
        actor: &ActorId,
        from_sequence: u64,
    ) -> Result<Vec<u8>, Error> {
        let result = self.export_audit_of(actor, from_sequence).await;
        self.observed(actor, result).await
    }

    async fn export_audit_of(&self, actor: &ActorId, from_sequence: u64) -> Result<Vec<u8>, Error> {
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &EXPORT_ROLES, None)
            .await?;
        if let RateCheck::Refused(error) = self.count_in(&mut tx, actor, RateKind::Inspect).await? {
            tx.commit().await?;
            return Err(error);
        }
        let mut record = self.record(EventType::Inspect, actor, None);
        record.detail = Some(FreeText::sanitized(&format!(
            "audit export from sequence {}",
            from_sequence.max(1)
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;

        let mut export = Vec::new();
        shardkeep_audit::export(self.storage(), &mut export)
            .await
            .map_err(Error::Audit)?;
        if from_sequence > 1 {
            // The rows before `from_sequence` left out; the header (the
            // log's identity) kept.
            let parsed = shardkeep_audit::parse_export(&export).map_err(Error::Audit)?;
            let rows: Vec<_> = parsed
                .rows
                .into_iter()
                .filter(|row| row.sequence >= from_sequence)
                .collect();
            export = shardkeep_audit::encode_export(&parsed.log_id, &rows);
        }
        Ok(export)
    }
}
