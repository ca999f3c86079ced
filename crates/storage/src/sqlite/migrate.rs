//! The SQLite schema migrations, applied on the writer connection when the
//! file is opened.
//!
//! The bookkeeping is sqlx's, so files migrated by earlier builds (which ran
//! sqlx's migrator) open unchanged and files migrated here open in them:
//! the same `_sqlx_migrations` table, one row per applied migration with
//! the SHA-384 checksum of its text; a migration whose text changed since it
//! was applied, one recorded as failed, or one this build does not know
//! refuses the file with sqlx's own [`MigrateError`].

use std::collections::HashMap;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};
use sqlx::migrate::{MigrateError, Migration, Migrator};

use super::driver_error;

/// sqlx's table, as its SQLite driver creates it.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);";

/// A failure outside any one migration.
fn execute(error: rusqlite::Error) -> MigrateError {
    MigrateError::Execute(driver_error(error))
}

/// Brings the schema up to date: refuses a dirty, changed or unknown
/// applied migration, then applies each missing one in its own
/// transaction.
pub(super) fn run(connection: &Connection, migrator: &Migrator) -> Result<(), MigrateError> {
    connection.execute_batch(CREATE_TABLE).map_err(execute)?;
    let dirty: Option<i64> = connection
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(execute)?;
    if let Some(version) = dirty {
        return Err(MigrateError::Dirty(version));
    }
    let applied = applied(connection)?;
    for version in applied.keys() {
        if !migrator.version_exists(*version) {
            return Err(MigrateError::VersionMissing(*version));
        }
    }
    for migration in migrator.iter() {
        match applied.get(&migration.version) {
            Some(checksum) if *checksum != *migration.checksum => {
                return Err(MigrateError::VersionMismatch(migration.version));
            }
            Some(_) => {}
            None => apply(connection, migration)?,
        }
    }
    Ok(())
}

/// The checksum of each applied migration, by version.
fn applied(connection: &Connection) -> Result<HashMap<i64, Vec<u8>>, MigrateError> {
    let mut statement = connection
        .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .map_err(execute)?;
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(execute)?;
    rows.collect::<rusqlite::Result<_>>().map_err(execute)
}

/// Applies one migration and records it, in one transaction (unless its
/// text starts with `-- no-transaction`), then its execution time.
fn apply(connection: &Connection, migration: &Migration) -> Result<(), MigrateError> {
    let start = Instant::now();
    let failed = |error: rusqlite::Error| {
        MigrateError::ExecuteMigration(driver_error(error), migration.version)
    };
    let record = || {
        connection
            .execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (?1, ?2, TRUE, ?3, -1)",
                (
                    migration.version,
                    &*migration.description,
                    &*migration.checksum,
                ),
            )
            .map(drop)
    };
    if migration.no_tx {
        connection
            .execute_batch(migration.sql.as_str())
            .map_err(failed)?;
        record().map_err(execute)?;
    } else {
        // IMMEDIATE: a second process opening the file at the same time
        // waits here, then finds the migration applied and skips it.
        connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(execute)?;
        let result = applied_by_other(connection, migration.version)
            .map_err(execute)
            .and_then(|done| {
                if done {
                    return Ok(());
                }
                connection
                    .execute_batch(migration.sql.as_str())
                    .map_err(failed)?;
                record().map_err(execute)
            })
            .and_then(|()| connection.execute_batch("COMMIT").map_err(execute));
        if let Err(error) = result {
            // The migration's own error is the one to report.
            let _ = connection.execute_batch("ROLLBACK");
            return Err(error);
        }
    }
    let elapsed = i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX);
    connection
        .execute(
            "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2 \
             AND execution_time = -1",
            (elapsed, migration.version),
        )
        .map_err(execute)?;
    Ok(())
}

fn applied_by_other(connection: &Connection, version: i64) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = ?1)",
        [version],
        |row| row.get(0),
    )
}
