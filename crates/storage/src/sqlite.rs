//! The embedded default: one SQLite file, created on first use.
//!
//! Driven by rusqlite, statements on the calling thread: a statement on a
//! local file takes microseconds, less than a hand-off to a worker thread
//! and back (which is what an async driver does with every statement, and
//! what costs tens of microseconds when the worker's CPU has to wake up).
//! Each statement is prepared once per connection and kept in its cache.
//!
//! Two things can take long and go to a blocking thread
//! (`tokio::task::spawn_blocking`) instead, so they never stall the async
//! runtime: waiting for the write lock while another process holds it, and
//! `COMMIT` of a write transaction, which syncs the WAL (`synchronous=FULL`).
//! Readers never wait: in WAL mode a read sees its snapshot beside a
//! writer.
//!
//! Connections: one writer behind an async mutex (the in-process writers
//! queue without blocking a runtime thread; the write transaction holds the
//! mutex's guard until it ends), and up to `IDLE_READERS` idle readers
//! kept for read-only transactions (more are opened when more run at once).

mod migrate;

use core::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql};
use sqlx::migrate::Migrator;
use tokio::sync::OwnedMutexGuard;

use crate::error::Error;
use crate::migrations::{self, Embedded, embed};
use crate::sql::{Arg, SqlStorage, sealed};

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

/// Idle reader connections kept open for the next read-only transactions.
const IDLE_READERS: usize = 4;

/// Prepared statements kept per connection: more than this crate has, so
/// every statement is prepared once per connection.
const STATEMENT_CACHE: usize = 512;

/// The pragmas of every connection.
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                       PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;";

impl SqlStorage<Sqlite> {
    /// Opens the database file at `path`, creating it (mode 0600) and its
    /// schema on first use and applying any newer migrations.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be created, [`Error::Database`]
    /// when it cannot be opened, [`Error::Migration`] when the schema
    /// cannot be brought up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        // Creating the file, opening it and migrating read and sync files.
        let opened = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            create_private_file(&path)?;
            let writer = connect(&path).map_err(Error::sqlite("open"))?;
            migrate::run(&writer, &MIGRATOR).map_err(Error::Migration)?;
            Ok((path, writer))
        })
        .await;
        let (path, writer) = opened.map_err(|_| Error::worker_failed("open"))??;
        Ok(Self::from_pool(Connections(Arc::new(Shared {
            path,
            writer: Arc::new(tokio::sync::Mutex::new(Some(writer))),
            readers: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            statements: AtomicU64::new(0),
        }))))
    }

    /// How many SQL statements this storage and its clones have run,
    /// `BEGIN`, `COMMIT` and `ROLLBACK` included (for benches and tests
    /// that count a procedure's statements).
    #[cfg(feature = "test-support")]
    #[must_use]
    pub fn statements_run(&self) -> u64 {
        self.pool.0.statements.load(Ordering::Relaxed)
    }
}

/// Creates the file readable by its owner only, unless it exists. The
/// sealed shares in it are encrypted, but the custody map and the audit log
/// are nobody else's business either. SQLite gives its WAL and shared-memory
/// files the database file's mode.
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

/// Opens one connection to an existing file (never creating it: that is
/// [`create_private_file`]'s job, with the right mode) with this crate's
/// pragmas.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.execute_batch(PRAGMAS)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

/// The connections of one storage, shared by its clones.
#[derive(Clone)]
#[allow(unreachable_pub)] // Named by the sealed trait; unreachable outside the crate.
pub struct Connections(Arc<Shared>);

struct Shared {
    path: PathBuf,
    /// The one writer; `None` once closed.
    writer: Arc<tokio::sync::Mutex<Option<Connection>>>,
    /// Idle readers.
    readers: Mutex<Vec<Connection>>,
    closed: AtomicBool,
    /// Every statement run (see `SqliteStorage::statements_run`).
    statements: AtomicU64,
}

impl core::fmt::Debug for Connections {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connections")
            .field("idle_readers", &self.idle_readers())
            .field("closed", &self.0.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Connections {
    fn idle_readers(&self) -> usize {
        self.0
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn check_open(&self, operation: &'static str) -> Result<(), Error> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err(Error::database(operation)(sqlx::Error::PoolClosed));
        }
        Ok(())
    }
}

/// A transaction's connection, held for the transaction's life.
enum Lease {
    /// The writer, with the mutex's guard: no other writer of this process
    /// runs until it is dropped.
    Writer(OwnedMutexGuard<Option<Connection>>),
    /// A reader; `None` only while being returned.
    Reader(Option<Connection>),
}

/// An open SQLite transaction on a connection it owns until it ends.
#[allow(unreachable_pub)] // Named by the sealed trait; unreachable outside the crate.
pub struct SqliteTx {
    lease: Lease,
    shared: Arc<Shared>,
}

impl core::fmt::Debug for SqliteTx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SqliteTx")
            .field("writer", &matches!(self.lease, Lease::Writer(_)))
            .finish_non_exhaustive()
    }
}

impl SqliteTx {
    fn connection(&self) -> Option<&Connection> {
        match &self.lease {
            Lease::Writer(guard) => guard.as_ref(),
            Lease::Reader(connection) => connection.as_ref(),
        }
    }

    /// Runs `sql` with `args`, handing each row to `on_row`.
    fn run(
        &self,
        sql: &str,
        args: &[Arg],
        on_row: impl FnMut(&rusqlite::Row<'_>, usize) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        let connection = self.connection().ok_or(rusqlite::Error::InvalidQuery)?;
        self.shared.statements.fetch_add(1, Ordering::Relaxed);
        run(connection, sql, args, on_row)
    }

    fn run_plain(&self, sql: &str) -> rusqlite::Result<()> {
        self.run(sql, &[], |_, _| Ok(()))
    }
}

impl Drop for SqliteTx {
    /// Rolls back a transaction dropped open (as the other backend's
    /// driver does), and returns a reader to the idle ones.
    fn drop(&mut self) {
        let mut clean = true;
        if let Some(connection) = self.connection()
            && !connection.is_autocommit()
        {
            // Rolling back discards the transaction's pages: no sync.
            clean = self.run_plain("ROLLBACK").is_ok();
        }
        if let Lease::Reader(connection) = &mut self.lease
            && let Some(connection) = connection.take()
            && clean
            && !self.shared.closed.load(Ordering::Acquire)
        {
            let mut idle = self
                .shared
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < IDLE_READERS {
                idle.push(connection);
            }
        }
    }
}

/// Runs one statement on `connection`: prepared once and cached, `args`
/// bound by the number of each `$N` placeholder (SQLite numbers parameters
/// in order of first appearance, not by the digits of their names), each
/// row handed to `on_row` with the column count.
fn run(
    connection: &Connection,
    sql: &str,
    args: &[Arg],
    mut on_row: impl FnMut(&rusqlite::Row<'_>, usize) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let number = match statement.parameter_name(index) {
            Some(name) => name
                .strip_prefix('$')
                .and_then(|number| number.parse::<usize>().ok())
                .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?,
            None => index,
        };
        let arg = number
            .checked_sub(1)
            .and_then(|at| args.get(at))
            .ok_or(rusqlite::Error::InvalidParameterCount(number, args.len()))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    let columns = statement.column_count();
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        on_row(row, columns)?;
    }
    Ok(())
}

impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Int(Some(value)) => ValueRef::Integer(*value),
            Self::Text(Some(value)) => ValueRef::Text(value.as_bytes()),
            Self::Blob(Some(value)) => ValueRef::Blob(value),
            Self::Int(None) | Self::Text(None) | Self::Blob(None) => ValueRef::Null,
        }))
    }
}

/// A column's value as stored: text that is not UTF-8 is kept as a blob, so
/// that reading it as text fails as a corrupt row.
fn owned(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Integer(value),
        ValueRef::Real(value) => Value::Real(value),
        ValueRef::Text(bytes) => match core::str::from_utf8(bytes) {
            Ok(text) => Value::Text(text.to_owned()),
            Err(_) => Value::Blob(bytes.to_vec()),
        },
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

/// Whether SQLite gave up waiting for a lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Begins the write transaction on the writer `guard` holds: first without
/// waiting; when another process holds the write lock, on a blocking thread
/// with the busy timeout.
async fn begin_immediate(
    guard: OwnedMutexGuard<Option<Connection>>,
    shared: Arc<Shared>,
) -> Result<SqliteTx, Error> {
    const OPERATION: &str = "begin";
    let tx = SqliteTx {
        lease: Lease::Writer(guard),
        shared,
    };
    let connection = tx
        .connection()
        .ok_or_else(|| Error::database(OPERATION)(sqlx::Error::PoolClosed))?;
    if !connection.is_autocommit() {
        // A rollback that failed when a transaction was dropped: finish it.
        tx.run_plain("ROLLBACK").map_err(Error::sqlite(OPERATION))?;
    }
    connection
        .busy_timeout(Duration::ZERO)
        .map_err(Error::sqlite(OPERATION))?;
    // IMMEDIATE takes the write lock at BEGIN, so a transaction never reads
    // a state that another writer changes before it writes.
    let first = tx.run_plain("BEGIN IMMEDIATE");
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(Error::sqlite(OPERATION))?;
    match first {
        Ok(()) => Ok(tx),
        Err(error) if is_busy(&error) => tokio::task::spawn_blocking(move || {
            tx.run_plain("BEGIN IMMEDIATE")
                .map(|()| tx)
                .map_err(Error::sqlite(OPERATION))
        })
        .await
        .map_err(|_| Error::worker_failed(OPERATION))?,
        Err(error) => Err(Error::sqlite(OPERATION)(error)),
    }
}

impl sealed::Backend for Sqlite {
    type Pool = Connections;
    type Tx = SqliteTx;
    type Row = Vec<Value>;

    async fn begin_write(pool: &Connections) -> Result<SqliteTx, Error> {
        pool.check_open("begin")?;
        let guard = Arc::clone(&pool.0.writer).lock_owned().await;
        begin_immediate(guard, Arc::clone(&pool.0)).await
    }

    async fn begin_read(pool: &Connections) -> Result<SqliteTx, Error> {
        const OPERATION: &str = "begin read-only";
        pool.check_open(OPERATION)?;
        let idle = pool
            .0
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => {
                // Opening reads the file's header and schema.
                let path = pool.0.path.clone();
                tokio::task::spawn_blocking(move || {
                    connect(&path).and_then(|connection| {
                        connection.execute_batch("PRAGMA query_only = ON")?;
                        Ok(connection)
                    })
                })
                .await
                .map_err(|_| Error::worker_failed(OPERATION))?
                .map_err(Error::sqlite(OPERATION))?
            }
        };
        let tx = SqliteTx {
            lease: Lease::Reader(Some(connection)),
            shared: Arc::clone(&pool.0),
        };
        // DEFERRED: a WAL snapshot from the first read, no lock on writers.
        tx.run_plain("BEGIN DEFERRED")
            .map_err(Error::sqlite(OPERATION))?;
        Ok(tx)
    }

    fn execute<'t>(
        tx: &'t mut SqliteTx,
        operation: &'static str,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<u64, Error>> + Send + 't {
        let result = tx
            .run(sql, &args, |_, _| Ok(()))
            .and_then(|()| {
                tx.connection()
                    .map(Connection::changes)
                    .ok_or(rusqlite::Error::InvalidQuery)
            })
            .map_err(Error::sqlite(operation));
        core::future::ready(result)
    }

    fn fetch<'t>(
        tx: &'t mut SqliteTx,
        operation: &'static str,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Vec<Vec<Value>>, Error>> + Send + 't {
        let mut rows = Vec::new();
        let result = tx
            .run(sql, &args, |row, columns| {
                rows.push(
                    (0..columns)
                        .map(|index| row.get_ref(index).map(owned))
                        .collect::<rusqlite::Result<_>>()?,
                );
                Ok(())
            })
            .map(|()| rows)
            .map_err(Error::sqlite(operation));
        core::future::ready(result)
    }

    async fn commit(tx: SqliteTx) -> Result<(), Error> {
        const OPERATION: &str = "commit";
        match tx.lease {
            // A read-only transaction's commit only ends its snapshot.
            Lease::Reader(_) => tx.run_plain("COMMIT").map_err(Error::sqlite(OPERATION)),
            // The WAL is synced: on a blocking thread. A failed commit is
            // rolled back when `tx` drops there.
            Lease::Writer(_) => tokio::task::spawn_blocking(move || {
                tx.run_plain("COMMIT").map_err(Error::sqlite(OPERATION))
            })
            .await
            .map_err(|_| Error::worker_failed(OPERATION))?,
        }
    }

    async fn rollback(tx: SqliteTx) -> Result<(), Error> {
        // Discards the transaction's pages: no sync, no wait.
        tx.run_plain("ROLLBACK").map_err(Error::sqlite("rollback"))
    }

    async fn close(pool: &Connections) {
        pool.0.closed.store(true, Ordering::Release);
        let writer = pool.0.writer.lock().await.take();
        let readers = core::mem::take(
            &mut *pool
                .0
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // The last connection to close checkpoints the WAL into the file.
        let _ = tokio::task::spawn_blocking(move || drop((writer, readers))).await;
    }

    fn connections(pool: &Connections) -> usize {
        pool.idle_readers() + 1
    }

    fn int(row: &Vec<Value>, index: usize) -> Option<Option<i64>> {
        match row.get(index)? {
            Value::Null => Some(None),
            Value::Integer(value) => Some(Some(*value)),
            _ => None,
        }
    }

    fn text(row: &Vec<Value>, index: usize) -> Option<Option<String>> {
        match row.get(index)? {
            Value::Null => Some(None),
            Value::Text(value) => Some(Some(value.clone())),
            _ => None,
        }
    }

    fn blob(row: &Vec<Value>, index: usize) -> Option<Option<Vec<u8>>> {
        match row.get(index)? {
            Value::Null => Some(None),
            Value::Blob(value) => Some(Some(value.clone())),
            _ => None,
        }
    }
}

/// A SQLite failure, as the driver error the backends' [`Error`] variants
/// carry: SQLite's message (which names constraints and tables, never a
/// bound value) and its extended result code.
#[derive(Debug)]
struct SqliteFailure {
    message: String,
    /// The extended result code; `None` for a failure of the binding layer
    /// rather than of SQLite.
    code: Option<i32>,
}

impl core::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} (code {code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SqliteFailure {}

/// Extended result codes of SQLite's constraint failures.
const SQLITE_CONSTRAINT_CHECK: i32 = 275;
const SQLITE_CONSTRAINT_FOREIGNKEY: i32 = 787;
const SQLITE_CONSTRAINT_NOTNULL: i32 = 1299;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

impl sqlx::error::DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    /// The extended result code in decimal, as sqlx's SQLite driver gave it.
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.code.map(|code| code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        match self.code {
            Some(SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY) => {
                sqlx::error::ErrorKind::UniqueViolation
            }
            Some(SQLITE_CONSTRAINT_FOREIGNKEY) => sqlx::error::ErrorKind::ForeignKeyViolation,
            Some(SQLITE_CONSTRAINT_NOTNULL) => sqlx::error::ErrorKind::NotNullViolation,
            Some(SQLITE_CONSTRAINT_CHECK) => sqlx::error::ErrorKind::CheckViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

/// The driver error of a rusqlite failure.
fn driver_error(error: rusqlite::Error) -> sqlx::Error {
    let failure = match error {
        rusqlite::Error::SqliteFailure(code, message) => SqliteFailure {
            message: message.unwrap_or_else(|| code.to_string()),
            code: Some(code.extended_code),
        },
        // The binding layer's own errors name indices, types and
        // parameter names, never values.
        other => SqliteFailure {
            message: other.to_string(),
            code: None,
        },
    };
    sqlx::Error::Database(Box::new(failure))
}

impl Error {
    /// Maps a rusqlite failure as [`Error::database`] maps a sqlx one, with
    /// the classification sqlx's SQLite driver had: a guard trigger's
    /// refusal is [`Error::PrivilegeViolation`]; anything else, a lock not
    /// had within the busy timeout included, is [`Error::Database`] (as
    /// [`Storage::begin`](crate::Storage::begin) documents, and as
    /// PostgreSQL's lock timeout is).
    pub(crate) fn sqlite(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |error| Self::database(operation)(driver_error(error))
    }

    /// A blocking task of `operation` panicked or was cancelled at the
    /// runtime's shutdown.
    fn worker_failed(operation: &'static str) -> Self {
        Self::Database {
            operation,
            source: sqlx::Error::WorkerCrashed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded() {
        migrations::tests::assert_lists_directory("sqlite", MIGRATIONS);
    }

    /// `$N` binds the N-th argument wherever it appears, and SQLite's own
    /// parameter numbering (by first appearance) does not leak through.
    #[test]
    fn placeholders_bind_by_their_number() {
        let connection = Connection::open_in_memory().unwrap();
        let mut rows = Vec::new();
        run(
            &connection,
            "SELECT $2, $1, $2 || $1",
            &[Arg::from("a"), Arg::from("b")],
            |row, columns| {
                rows.push(
                    (0..columns)
                        .map(|index| row.get_ref(index).map(owned))
                        .collect::<rusqlite::Result<Vec<_>>>()?,
                );
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            rows,
            [vec![
                Value::Text("b".into()),
                Value::Text("a".into()),
                Value::Text("ba".into())
            ]]
        );
        let missing = run(&connection, "SELECT $3", &[Arg::from(1_i64)], |_, _| Ok(()));
        assert!(matches!(
            missing,
            Err(rusqlite::Error::InvalidParameterCount(3, 1))
        ));
    }
}
