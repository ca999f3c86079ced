//! Where checkpoints are anchored outside the audited database: the
//! [`Witness`] trait. Its implementations are
//! [`FileWitness`](crate::FileWitness) and, with the `postgres-witness`
//! feature, `PostgresWitness`.

use core::future::Future;

use shardkeep_types::AuditLogId;

use crate::checkpoint::Checkpoint;
use crate::error::Error;

/// An append-only store of checkpoints that the service writing the audit
/// log cannot rewrite or cut: the log's anchor. [`checkpoint`](crate::checkpoint)
/// appends every checkpoint it makes; the verifier reads the witnessed
/// heads back from here, never from the audited database.
pub trait Witness: Send {
    /// Appends one checkpoint and returns once it is durable.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::WitnessDatabase`] when the witness cannot
    /// take it.
    fn append(&mut self, checkpoint: &Checkpoint)
    -> impl Future<Output = Result<(), Error>> + Send;

    /// What this witness holds that may concern `log`, in the order it was
    /// witnessed: a store shared by several logs returns the checkpoints of
    /// `log` only; a file returns every line (the verifier refuses a line of
    /// another log).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::WitnessDatabase`], or [`Error::Witness`] for
    /// a line that does not parse.
    fn read(
        &mut self,
        log: &AuditLogId,
    ) -> impl Future<Output = Result<Vec<Checkpoint>, Error>> + Send;
}
