//! The schema migrations of each dialect, embedded in the binary.
//!
//! Listed here by hand instead of `sqlx::migrate!`: that macro needs
//! sqlx's `macros` feature, whose proc-macro crate compiles a second copy
//! of sqlx with both drivers and the bundled SQLite C library for the
//! compiler, in every build of the crate (each feature set, toolchain and
//! profile). The migrations themselves are identical: same versions,
//! descriptions, checksums (SHA-384 of the text) and `-- no-transaction`
//! rule, so a database migrated by either build is accepted by the other.
//! A test checks that each list holds exactly the files of its directory.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One migration file: its version, its name in `migrations/<dialect>/`
/// and its text.
pub(crate) struct Embedded {
    version: i64,
    file: &'static str,
    sql: &'static str,
}

/// `Embedded` entries for files of `migrations/<dialect>/`, each given as
/// `version => "file name"`.
macro_rules! embed {
    ($dialect:literal: $($version:literal => $file:literal),+ $(,)?) => {
        &[$($crate::migrations::Embedded::new(
            $version,
            $file,
            include_str!(concat!("../migrations/", $dialect, "/", $file)),
        )),+]
    };
}
pub(crate) use embed;

impl Embedded {
    pub(crate) const fn new(version: i64, file: &'static str, sql: &'static str) -> Self {
        Self { version, file, sql }
    }

    /// What sqlx derives from a file name: the part after the version,
    /// without `.sql`, underscores read as spaces.
    fn description(&self) -> String {
        let rest = self
            .file
            .split_once('_')
            .map_or(self.file, |(_, rest)| rest);
        rest.trim_end_matches(".sql").replace('_', " ")
    }
}

/// The migrator for one dialect's files.
pub(crate) fn migrator(files: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|file| {
                Migration::new(
                    file.version,
                    Cow::Owned(file.description()),
                    MigrationType::Simple,
                    file.sql.into_sql_str(),
                    file.sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use super::Embedded;

    /// The list holds every file of the directory, in order, with the
    /// version its name starts with and its current text: a migration
    /// added to the directory but not to the list fails here.
    pub(crate) fn assert_lists_directory(dialect: &str, files: &[Embedded]) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = files.iter().map(|file| file.file).collect();
        assert_eq!(listed, on_disk, "migrations/{dialect}/ and its list differ");
        for file in files {
            let (prefix, _) = file.file.split_once('_').unwrap();
            assert_eq!(
                prefix.parse::<i64>().unwrap(),
                file.version,
                "{}",
                file.file
            );
            assert_eq!(
                std::fs::read_to_string(dir.join(file.file)).unwrap(),
                file.sql
            );
        }
    }

    #[test]
    fn descriptions_follow_sqlx() {
        let file = Embedded::new(7, "0007_custody_persons.sql", "");
        assert_eq!(file.description(), "custody persons");
    }
}
