//! PostgreSQL, for several service replicas sharing one database.
//!
//! Three roles, three entry points: the owner role runs
//! [`PostgresStorage::migrate`] and [`PostgresStorage::grant_service_role`];
//! the service connects with [`PostgresStorage::connect`] as a role that
//! can only SELECT and INSERT evidence, UPDATE the state columns, and never
//! DELETE or TRUNCATE.

use std::str::FromStr;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};

use crate::error::Error;
use crate::sql::{SqlStorage, sealed};

/// The PostgreSQL backend (marker type; see [`PostgresStorage`]).
#[derive(Debug)]
pub enum Postgres {}

/// Storage in a PostgreSQL database shared by service replicas.
pub type PostgresStorage = SqlStorage<Postgres>;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// The transaction advisory lock every write transaction takes at `BEGIN`
/// (`"shkpwrit"` as a big-endian integer): one writer at a time across all
/// replicas, so audit sequence numbers never fork and state checks never
/// race.
const WRITE_LOCK_KEY: i64 = 0x7368_6b70_7772_6974;

/// Connections per replica.
const MAX_CONNECTIONS: u32 = 8;

fn options(url: &str) -> Result<PgConnectOptions, Error> {
    // The URL may hold a password: the driver's parse error names the
    // problem, never the URL.
    PgConnectOptions::from_str(url).map_err(Error::database("parse the database URL"))
}

async fn pool(url: &str, max_connections: u32) -> Result<sqlx::PgPool, Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options(url)?)
        .await
        .map_err(Error::database("connect"))
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
        let pool = pool(owner_url, 1).await?;
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
        let pool = pool(owner_url, 1).await?;
        let mut result = Ok(());
        // Each migration that adds tables ships the function granting them.
        for sql in [
            "SELECT shardkeep_grant_service($1)",
            "SELECT shardkeep_grant_audit_checkpoints($1)",
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

    /// Connects as the service role. The schema must be at this build's
    /// migration: the service never migrates, it has no right to.
    ///
    /// # Errors
    /// [`Error::Database`] when the database is unreachable,
    /// [`Error::SchemaOutdated`] when the migrations have not been run.
    pub async fn connect(service_url: &str) -> Result<Self, Error> {
        let pool = pool(service_url, MAX_CONNECTIONS).await?;
        let expected = latest_migration();
        let found = applied_migration(&pool).await;
        match found {
            Ok(Some(found)) if found == expected => Ok(Self::from_pool(pool)),
            Ok(found) => {
                pool.close().await;
                Err(Error::SchemaOutdated { found, expected })
            }
            Err(error) => {
                pool.close().await;
                Err(error)
            }
        }
    }
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
    type Db = sqlx::Postgres;

    async fn begin_write(
        pool: &sqlx::Pool<sqlx::Postgres>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        // Like SQLite's busy timeout: a writer waits at most this long for
        // the one before it, then fails instead of hanging.
        sqlx::query("SET LOCAL lock_timeout = '30s'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn begin_read(
        pool: &sqlx::Pool<sqlx::Postgres>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}
