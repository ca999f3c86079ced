//! The embedded default: one SQLite file, created on first use.

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use crate::error::Error;
use crate::migrations::{self, Embedded, embed};
use crate::sql::{SqlStorage, sealed};

/// The SQLite backend (marker type; see [`SqliteStorage`]).
#[derive(Debug)]
pub enum Sqlite {}

/// Storage in one SQLite file: WAL journal, `synchronous=FULL`, foreign
/// keys on, `secure_delete` on (erased bytes are overwritten), migrations
/// applied on open.
pub type SqliteStorage = SqlStorage<Sqlite>;

static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| migrations::migrator(MIGRATIONS));

/// Every file of `migrations/sqlite/`, in order.
const MIGRATIONS: &[Embedded] = embed!("sqlite":
    1 => "0001_initial.sql",
    2 => "0002_slot_keks.sql",
    3 => "0003_sealed_share_bytes.sql",
    4 => "0004_checkpoint_guard.sql",
    5 => "0005_registry.sql",
    6 => "0006_split_references.sql",
    7 => "0007_custody_persons.sql",
    8 => "0008_inventory_access.sql",
    9 => "0009_status_indexes.sql",
    10 => "0010_approvals.sql",
    11 => "0011_recovery_sessions.sql",
    12 => "0012_destruction_statements.sql",
    13 => "0013_audit_reviews.sql",
);

/// How long a writer waits for the write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per pool: writers serialise anyway; readers run beside them
/// in WAL mode.
const MAX_CONNECTIONS: u32 = 4;

impl SqlStorage<Sqlite> {
    /// Opens the database file at `path`, creating it (mode 0600) and its
    /// schema on first use and applying any newer migrations.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be created, [`Error::Database`]
    /// when it cannot be opened, [`Error::Migration`] when the schema
    /// cannot be brought up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // A file opened in this process has no link that can go stale
            // between uses, so a ping before each transaction (the default,
            // made for network connections) is one more round trip to the
            // connection's worker thread for nothing; a failing file still
            // fails the transaction's first statement.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(Error::database("open"))?;
        MIGRATOR.run(&pool).await.map_err(Error::Migration)?;
        Ok(Self::from_pool(pool))
    }
}

/// Creates the file readable by its owner only, unless it exists. The
/// sealed shares in it are encrypted, but the custody map and the audit log
/// are nobody else's business either.
fn create_private_file(path: &Path) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(Error::Io(error)),
    }
}

impl sealed::Backend for Sqlite {
    type Db = sqlx::Sqlite;

    async fn begin_write(
        pool: &sqlx::Pool<sqlx::Sqlite>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        // IMMEDIATE takes the write lock at BEGIN, so a transaction never
        // reads a state that another writer changes before it writes.
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn begin_read(
        pool: &sqlx::Pool<sqlx::Sqlite>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        // DEFERRED: a WAL snapshot from the first read, no lock on writers.
        pool.begin_with("BEGIN DEFERRED").await
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_file_is_embedded() {
        crate::migrations::tests::assert_lists_directory("sqlite", super::MIGRATIONS);
    }
}
