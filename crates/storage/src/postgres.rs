//! PostgreSQL, for several service replicas sharing one database.
//!
//! Three roles, three entry points: the owner role runs
//! [`PostgresStorage::migrate`] and [`PostgresStorage::grant_service_role`];
//! the service connects with [`PostgresStorage::connect`] as a role that
//! can only SELECT and INSERT evidence, UPDATE the state columns, and never
//! DELETE or TRUNCATE.

use core::future::Future;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::Row as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};

use crate::error::Error;
use crate::migrations::{self, Embedded, embed};
use crate::sql::{Arg, SqlStorage, sealed};

/// The PostgreSQL backend (marker type; see [`PostgresStorage`]).
#[derive(Debug)]
pub enum Postgres {}

/// Storage in a PostgreSQL database shared by service replicas.
pub type PostgresStorage = SqlStorage<Postgres>;

static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| migrations::migrator(MIGRATIONS));

/// Every file of `migrations/postgres/`, in order.
const MIGRATIONS: &[Embedded] = embed!("postgres":
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

/// The transaction advisory lock every write transaction takes at `BEGIN`
/// (`"shkpwrit"` as a big-endian integer): one writer at a time across all
/// replicas, so audit sequence numbers never fork and state checks never
/// race.
const WRITE_LOCK_KEY: i64 = 0x7368_6b70_7772_6974;

/// How long [`PostgresOptions::default`] lets a caller wait for a
/// connection before [`Error::DatabaseUnavailable`]: long enough for a
/// connection to be opened (or for a busy pool to free one), short enough
/// that a request fails fast while the database is down instead of piling
/// up behind the driver's 30 s default.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per replica by default.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

/// What [`PostgresStorage::connect_with`] does when the server runs with
/// `fsync` or `synchronous_commit` off: a crash could then lose committed
/// transactions (a recorded hard delete, a consumed approval, audit
/// records).
#[derive(Debug, Clone, Copy)]
pub enum DurabilityPolicy {
    /// Refuse to connect with [`Error::NotDurable`] (the default).
    Refuse,
    /// Connect anyway, after calling the function with the
    /// [`Error::NotDurable`] of each such setting, for the service to log
    /// (e.g. a throwaway development database).
    Warn(fn(&Error)),
}

/// How the service connects to PostgreSQL. [`Default`] is what a
/// production service wants; change fields of a default value.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// How long `begin`, `begin_read_only` and `connect` wait for a
    /// connection before failing with [`Error::DatabaseUnavailable`]
    /// (default [`DEFAULT_ACQUIRE_TIMEOUT`]).
    pub acquire_timeout: Duration,
    /// Connections of this replica (default [`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: u32,
    /// What to do with a server that may lose commits (default
    /// [`DurabilityPolicy::Refuse`]).
    pub durability: DurabilityPolicy,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            durability: DurabilityPolicy::Refuse,
        }
    }
}

fn connect_options(url: &str) -> Result<PgConnectOptions, Error> {
    // The URL may hold a password: the driver's parse error names the
    // problem, never the URL.
    PgConnectOptions::from_str(url).map_err(Error::database("parse the database URL"))
}

async fn pool(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<sqlx::PgPool, Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_with(connect_options(url)?)
        .await
        .map_err(Error::database("connect"))
}

/// A pool of one connection for the owner's one-off tasks.
async fn owner_pool(url: &str) -> Result<sqlx::PgPool, Error> {
    pool(url, 1, DEFAULT_ACQUIRE_TIMEOUT).await
}

/// The latest migration this build ships.
fn latest_migration() -> i64 {
    MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0)
}

impl SqlStorage<Postgres> {
    /// Applies the schema migrations. Run as the owner role, e.g. at
    /// deployment; safe to repeat (sqlx serialises concurrent runs).
    ///
    /// # Errors
    /// [`Error::Database`] when the database is unreachable,
    /// [`Error::Migration`] when a migration fails.
    pub async fn migrate(owner_url: &str) -> Result<(), Error> {
        let pool = owner_pool(owner_url).await?;
        let result = MIGRATOR.run(&pool).await.map_err(Error::Migration);
        pool.close().await;
        result
    }

    /// Grants `service_role` exactly the privileges the storage code uses.
    /// Run as the owner role after [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`Error::Database`] when the role does not exist or the caller does
    /// not own the schema.
    pub async fn grant_service_role(owner_url: &str, service_role: &str) -> Result<(), Error> {
        let pool = owner_pool(owner_url).await?;
        let mut result = Ok(());
        // Each migration that adds tables ships the function granting them.
        for sql in [
            "SELECT shardkeep_grant_service($1)",
            "SELECT shardkeep_grant_audit_checkpoints($1)",
            "SELECT shardkeep_grant_backup($1)",
            "SELECT shardkeep_grant_approvals($1)",
            "SELECT shardkeep_grant_recovery_sessions($1)",
            "SELECT shardkeep_grant_destruction_statements($1)",
            "SELECT shardkeep_grant_audit_reviews($1)",
        ] {
            result = sqlx::query(sql)
                .bind(service_role)
                .execute(&pool)
                .await
                .map(drop)
                .map_err(Error::database("grant service privileges"));
            if result.is_err() {
                break;
            }
        }
        pool.close().await;
        result
    }

    /// Connects as the service role with [`PostgresOptions::default`]:
    /// see [`connect_with`](Self::connect_with).
    ///
    /// # Errors
    /// As [`connect_with`](Self::connect_with).
    pub async fn connect(service_url: &str) -> Result<Self, Error> {
        Self::connect_with(service_url, &PostgresOptions::default()).await
    }

    /// Connects as the service role. The schema must be at this build's
    /// migration: the service never migrates, it has no right to. The
    /// server must keep commits across a crash (`fsync` and
    /// `synchronous_commit` on), unless `options.durability` says to only
    /// warn.
    ///
    /// # Errors
    /// [`Error::DatabaseUnavailable`] when no connection is made within
    /// `options.acquire_timeout`, [`Error::Database`] when the database
    /// refuses it, [`Error::SchemaOutdated`] when the migrations have not
    /// been run, [`Error::NotDurable`] under [`DurabilityPolicy::Refuse`].
    pub async fn connect_with(service_url: &str, options: &PostgresOptions) -> Result<Self, Error> {
        let pool = pool(
            service_url,
            options.max_connections,
            options.acquire_timeout,
        )
        .await?;
        match check_server(&pool, options.durability).await {
            Ok(()) => Ok(Self::from_pool(pool)),
            Err(error) => {
                pool.close().await;
                Err(error)
            }
        }
    }
}

/// The schema is at this build's migration and the server is durable (or
/// the policy only warns).
async fn check_server(pool: &sqlx::PgPool, durability: DurabilityPolicy) -> Result<(), Error> {
    let expected = latest_migration();
    let found = applied_migration(pool).await?;
    if found != Some(expected) {
        return Err(Error::SchemaOutdated { found, expected });
    }
    for setting in ["fsync", "synchronous_commit"] {
        let value: String = sqlx::query_scalar("SELECT current_setting($1)")
            .bind(setting)
            .fetch_one(pool)
            .await
            .map_err(Error::database("check durability settings"))?;
        // `synchronous_commit` may also be `local`, `remote_write` or
        // `remote_apply`: each waits for the local WAL flush.
        if value == "off" {
            let error = Error::NotDurable { setting, value };
            match durability {
                DurabilityPolicy::Refuse => return Err(error),
                DurabilityPolicy::Warn(warn) => warn(&error),
            }
        }
    }
    Ok(())
}

async fn applied_migration(pool: &sqlx::PgPool) -> Result<Option<i64>, Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(Error::database("check schema version"))?;
    if !exists {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map_err(Error::database("check schema version"))
}

impl sealed::Backend for Postgres {
    type Pool = sqlx::PgPool;
    type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
    type Row = PgRow;

    async fn begin_write(pool: &sqlx::PgPool) -> Result<Self::Tx, Error> {
        let begin = async {
            let mut tx = pool.begin().await?;
            // Like SQLite's busy timeout: a writer waits at most this long
            // for the one before it, then fails instead of hanging.
            sqlx::query("SET LOCAL lock_timeout = '30s'")
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        };
        begin.await.map_err(Error::database("begin"))
    }

    async fn begin_read(pool: &sqlx::PgPool) -> Result<Self::Tx, Error> {
        pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(Error::database("begin read-only"))
    }

    fn execute<'t>(
        tx: &'t mut Self::Tx,
        operation: &'static str,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<u64, Error>> + Send + 't {
        let query = bind(sql, args);
        async move {
            query
                .execute(&mut **tx)
                .await
                .map(|result| result.rows_affected())
                .map_err(Error::database(operation))
        }
    }

    fn fetch<'t>(
        tx: &'t mut Self::Tx,
        operation: &'static str,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Vec<PgRow>, Error>> + Send + 't {
        let query = bind(sql, args);
        async move {
            query
                .fetch_all(&mut **tx)
                .await
                .map_err(Error::database(operation))
        }
    }

    async fn commit(tx: Self::Tx) -> Result<(), Error> {
        tx.commit().await.map_err(Error::database("commit"))
    }

    async fn rollback(tx: Self::Tx) -> Result<(), Error> {
        tx.rollback().await.map_err(Error::database("rollback"))
    }

    async fn close(pool: &sqlx::PgPool) {
        pool.close().await;
    }

    fn connections(pool: &sqlx::PgPool) -> usize {
        usize::try_from(pool.size()).unwrap_or(usize::MAX)
    }

    fn int(row: &PgRow, index: usize) -> Option<Option<i64>> {
        row.try_get(index).ok()
    }

    fn text(row: &PgRow, index: usize) -> Option<Option<String>> {
        row.try_get(index).ok()
    }

    fn blob(row: &PgRow, index: usize) -> Option<Option<Vec<u8>>> {
        row.try_get(index).ok()
    }
}

/// `sql` with `args` bound in order.
fn bind(
    sql: &'static str,
    args: Vec<Arg>,
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    args.into_iter()
        .fold(sqlx::query(sql), |query, arg| match arg {
            Arg::Int(value) => query.bind(value),
            Arg::Text(value) => query.bind(value),
            Arg::Blob(value) => query.bind(value),
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_file_is_embedded() {
        crate::migrations::tests::assert_lists_directory("postgres", super::MIGRATIONS);
    }
}
