//! The PostgreSQL witness (feature `postgres-witness`): a witness table in
//! a database of its own, written through a role that can only add lines.

use std::borrow::Cow;
use std::str::FromStr;

use shardkeep_types::AuditLogId;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::checkpoint::{Checkpoint, check_witness_len};
use crate::error::{Error, WitnessError};
use crate::witness::Witness;

/// The witness schema. Built by hand rather than with `sqlx::migrate!`,
/// whose proc-macro compiles a second copy of sqlx and its drivers; version,
/// description and checksum are what the macro would give the file.
fn witness_migrator() -> Migrator {
    Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("witness"),
        MigrationType::Simple,
        include_str!("../migrations/witness-postgres/0001_witness.sql").into_sql_str(),
        false,
    )])
}

/// Rows per witness read.
const READ_PAGE: i64 = 10_000;

/// A witness table in a PostgreSQL database of its own (the server may be
/// the audited database's), written through a role that can only INSERT
/// and SELECT: the service that holds the log never holds a right to change
/// or remove its anchor. Triggers refuse UPDATE, DELETE and TRUNCATE to the
/// table's owner too.
///
/// Set up once, as the witness database's owner (a role the service never
/// gets): [`install`](Self::install), then [`grant_writer`](Self::grant_writer)
/// for the service's witness role and [`grant_reader`](Self::grant_reader)
/// for verifiers. The SQL is `migrations/witness-postgres/` in this crate.
#[derive(Debug, Clone)]
pub struct PostgresWitness {
    pool: PgPool,
}

fn options(url: &str) -> Result<PgConnectOptions, Error> {
    // The URL may hold a password: the driver's error names the problem,
    // never the URL.
    PgConnectOptions::from_str(url).map_err(Error::witness_database("parse the witness URL"))
}

async fn pool(url: &str, max_connections: u32) -> Result<PgPool, Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options(url)?)
        .await
        .map_err(Error::witness_database("connect to the witness"))
}

/// Runs `SELECT function($1)` as the owner.
async fn grant(owner_url: &str, sql: &'static str, role: &str) -> Result<(), Error> {
    let pool = pool(owner_url, 1).await?;
    let result = sqlx::query(sql)
        .bind(role)
        .execute(&pool)
        .await
        .map(drop)
        .map_err(Error::witness_database("grant witness privileges"));
    pool.close().await;
    result
}

impl PostgresWitness {
    /// Creates the witness table, its triggers and grant functions. Run as
    /// the witness database's owner; safe to repeat.
    ///
    /// # Errors
    /// [`Error::WitnessDatabase`] when the database is unreachable,
    /// [`Error::WitnessMigration`] when the schema cannot be applied.
    pub async fn install(owner_url: &str) -> Result<(), Error> {
        let pool = pool(owner_url, 1).await?;
        let result = witness_migrator()
            .run(&pool)
            .await
            .map_err(Error::WitnessMigration);
        pool.close().await;
        result
    }

    /// Lets `role` add lines (never their id or arrival time) and read them:
    /// the role the service writes checkpoints through.
    ///
    /// # Errors
    /// [`Error::WitnessDatabase`] when the role does not exist or the caller
    /// does not own the table.
    pub async fn grant_writer(owner_url: &str, role: &str) -> Result<(), Error> {
        grant(owner_url, "SELECT shardkeep_witness_grant_writer($1)", role).await
    }

    /// Lets `role` read lines only: the role a verifier reads through.
    ///
    /// # Errors
    /// [`Error::WitnessDatabase`] when the role does not exist or the caller
    /// does not own the table.
    pub async fn grant_reader(owner_url: &str, role: &str) -> Result<(), Error> {
        grant(owner_url, "SELECT shardkeep_witness_grant_reader($1)", role).await
    }

    /// Connects as the writer (or a reader) role.
    ///
    /// # Errors
    /// [`Error::WitnessDatabase`] when the database is unreachable,
    /// [`Error::WitnessNotInstalled`] when it holds no witness table.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let pool = pool(url, 2).await?;
        let installed: Result<bool, Error> =
            sqlx::query_scalar("SELECT to_regclass('shardkeep_witness') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .map_err(Error::witness_database("look for the witness table"));
        match installed {
            Ok(true) => Ok(Self { pool }),
            Ok(false) => {
                pool.close().await;
                Err(Error::WitnessNotInstalled)
            }
            Err(error) => {
                pool.close().await;
                Err(error)
            }
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Witness for PostgresWitness {
    async fn append(&mut self, checkpoint: &Checkpoint) -> Result<(), Error> {
        // Sequences are stored as signed 64-bit integers, as in the log.
        let sequence = i64::try_from(checkpoint.sequence).map_err(|_| Error::Witness {
            line: 0,
            error: WitnessError::BadNumber("sequence"),
        })?;
        sqlx::query("INSERT INTO shardkeep_witness (log_id, sequence, line) VALUES ($1, $2, $3)")
            .bind(checkpoint.log_id.0.as_slice())
            .bind(sequence)
            .bind(checkpoint.to_line())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(Error::witness_database("append to the witness"))
    }

    async fn read(&mut self, log: &AuditLogId) -> Result<Vec<Checkpoint>, Error> {
        let mut checkpoints = Vec::new();
        let mut after = 0_i64;
        let mut bytes = 0_usize;
        loop {
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, line FROM shardkeep_witness WHERE log_id = $1 AND id > $2 \
                 ORDER BY id LIMIT $3",
            )
            .bind(log.0.as_slice())
            .bind(after)
            .bind(READ_PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(Error::witness_database("read the witness"))?;
            let Some((last, _)) = rows.last() else { break };
            after = *last;
            for (_, line) in rows {
                bytes = bytes.saturating_add(line.len() + 1);
                check_witness_len(bytes)?;
                let number = checkpoints.len() + 1;
                let checkpoint =
                    Checkpoint::parse_line(line.as_bytes()).map_err(|error| Error::Witness {
                        line: number,
                        error,
                    })?;
                checkpoints.push(checkpoint);
            }
        }
        Ok(checkpoints)
    }
}

#[cfg(test)]
mod migration_tests {
    /// The one migration is all the directory holds: a second file would
    /// need its own entry in `witness_migrator`.
    #[test]
    fn the_witness_migrator_embeds_every_file() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/witness-postgres");
        let files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(files, ["0001_witness.sql"]);
        assert_eq!(super::witness_migrator().iter().count(), 1);
    }
}
