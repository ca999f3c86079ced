//! Golden directories: a generator's vectors compared with the stored files,
//! or written over them.
//!
//! A golden test builds every vector of a directory from fixed inputs, adds
//! them to a [`GoldenDir`] and calls [`GoldenDir::finish`]. Normally that
//! compares: every generated vector must be stored byte for byte, and every
//! stored `.vec` file the directory owns must be generated (or declared
//! [kept](GoldenDir::keep)). With `SHARDKEEP_REGENERATE_VECTORS=1` it writes
//! the vectors that differ and removes the stale ones instead, so that
//!
//! ```sh
//! SHARDKEEP_REGENERATE_VECTORS=1 cargo test --workspace --all-features -- golden
//! ```
//!
//! regenerates every vector of the workspace (every golden test has `golden`
//! in its name), and `git diff` shows what a format change moved.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::vector::{EXTENSION, Vector, VectorError};

/// The environment variable that turns golden tests into generators.
pub const REGENERATE_VAR: &str = "SHARDKEEP_REGENERATE_VECTORS";

/// The one command that regenerates every vector of the workspace.
pub const REGENERATE_COMMAND: &str =
    "SHARDKEEP_REGENERATE_VECTORS=1 cargo test --workspace --all-features -- golden";

/// Whether this run regenerates the vectors ([`REGENERATE_VAR`] set, and
/// neither empty nor `0`).
#[must_use]
pub fn regenerating() -> bool {
    std::env::var_os(REGENERATE_VAR).is_some_and(|value| !value.is_empty() && value != "0")
}

/// The vectors one generator owns: every `.vec` file under a directory
/// (subdirectories included) whose file name starts with a prefix.
#[derive(Debug)]
pub struct GoldenDir {
    dir: PathBuf,
    prefix: String,
    /// Path relative to `dir` (`pass/x.vec`) -> bytes.
    generated: BTreeMap<String, Vec<u8>>,
    /// Relative paths of vectors kept by hand (neither written nor removed).
    kept: BTreeSet<String>,
    problems: Vec<String>,
}

/// Why a golden directory does not match its generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenError {
    /// The directory.
    pub dir: PathBuf,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl fmt::Display for GoldenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: the stored golden vectors differ from the generator:",
            self.dir.display()
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        write!(
            f,
            "after a deliberate format change, regenerate and review the diff: {REGENERATE_COMMAND}"
        )
    }
}

impl std::error::Error for GoldenError {}

impl From<VectorError> for GoldenError {
    fn from(error: VectorError) -> Self {
        Self {
            dir: PathBuf::from(&error.file),
            problems: vec![error.to_string()],
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

/// The 1-based line of the first byte where `a` and `b` differ.
fn first_difference(a: &[u8], b: &[u8]) -> (usize, usize) {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.len().min(b.len()));
    let line = a
        .get(..at)
        .unwrap_or_default()
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1;
    (line, at)
}

impl GoldenDir {
    /// Owns every `.vec` file under `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_prefix(dir, "")
    }

    /// Owns the `.vec` files under `dir` whose file name starts with
    /// `prefix`: for generators that share a directory.
    #[must_use]
    pub fn with_prefix(dir: impl Into<PathBuf>, prefix: &str) -> Self {
        Self {
            dir: dir.into(),
            prefix: prefix.to_owned(),
            generated: BTreeMap::new(),
            kept: BTreeSet::new(),
            problems: Vec::new(),
        }
    }

    fn relative(&mut self, name: &str) -> Option<String> {
        let file_name = name.rsplit('/').next().unwrap_or(name);
        if !valid_name(name) || !file_name.starts_with(&self.prefix) {
            self.problems.push(format!(
                "{name:?} is not a vector name of this directory (lowercase, digits, '_', '-', \
                 '/' between directories, file name starting with {:?})",
                self.prefix
            ));
            return None;
        }
        let relative = format!("{name}.{EXTENSION}");
        if self.generated.contains_key(&relative) || self.kept.contains(&relative) {
            self.problems.push(format!("{relative} generated twice"));
            return None;
        }
        Some(relative)
    }

    /// Adds the vector `name` (a path below the directory without the
    /// extension, such as `fail/bad_magic`).
    pub fn add(&mut self, name: &str, vector: &Vector) {
        let Some(relative) = self.relative(name) else {
            return;
        };
        match vector.to_bytes() {
            Ok(bytes) => {
                self.generated.insert(relative, bytes);
            }
            Err(error) => self.problems.push(format!("{relative}: {error}")),
        }
    }

    /// Declares the stored vector `name` as kept by hand: a case no
    /// deterministic generator can write (an age file: age draws its own
    /// randomness). It must exist; it is never written or removed here.
    pub fn keep(&mut self, name: &str) {
        if let Some(relative) = self.relative(name) {
            self.kept.insert(relative);
        }
    }

    /// The owned `.vec` files under the directory, relative to it.
    fn stored(&self) -> Result<BTreeSet<String>, String> {
        let mut found = BTreeSet::new();
        let mut pending = vec![self.dir.clone()];
        while let Some(dir) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(format!("{}: {error}", dir.display())),
            };
            for entry in entries {
                let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let owned = path.extension().and_then(|e| e.to_str()) == Some(EXTENSION)
                    && path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&self.prefix));
                if let (true, Ok(relative)) = (owned, path.strip_prefix(&self.dir)) {
                    found.insert(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        Ok(found)
    }

    /// Compares the generated vectors with the stored ones, or, when
    /// [regenerating], writes those that differ and removes the stale ones.
    /// Returns how many vectors the directory holds.
    ///
    /// # Errors
    /// A [`GoldenError`] listing every missing, drifted or stale vector (or
    /// every file that could not be written).
    pub fn finish(self) -> Result<usize, GoldenError> {
        self.finish_as(regenerating())
    }

    fn finish_as(self, regenerate: bool) -> Result<usize, GoldenError> {
        let mut problems = self.problems.clone();
        let stored = self.stored().unwrap_or_else(|problem| {
            problems.push(problem);
            BTreeSet::new()
        });
        for (relative, bytes) in &self.generated {
            let path = self.dir.join(relative);
            let on_disk = std::fs::read(&path).ok();
            if on_disk.as_deref() == Some(bytes.as_slice()) {
                continue;
            }
            if regenerate {
                if let Err(error) = write_atomically(&path, bytes) {
                    problems.push(format!("{relative}: {error}"));
                }
            } else if let Some(on_disk) = on_disk {
                let (line, at) = first_difference(&on_disk, bytes);
                problems.push(format!(
                    "{relative} drifted: the generator writes other bytes from line {line} (byte {at})"
                ));
            } else {
                problems.push(format!("{relative} is missing"));
            }
        }
        for relative in &self.kept {
            if !stored.contains(relative) {
                problems.push(format!("{relative} (kept by hand) is missing"));
            }
        }
        for relative in &stored {
            if self.generated.contains_key(relative) || self.kept.contains(relative) {
                continue;
            }
            if regenerate {
                if let Err(error) = std::fs::remove_file(self.dir.join(relative)) {
                    problems.push(format!("{relative}: {error}"));
                }
            } else {
                problems.push(format!("{relative} is stale: no generator writes it"));
            }
        }
        if problems.is_empty() {
            Ok(self.generated.len() + self.kept.len())
        } else {
            Err(GoldenError {
                dir: self.dir,
                problems,
            })
        }
    }
}

/// Writes `bytes` to `path` through a hidden temporary file beside it, so
/// that a reader sees the old file or the new one, never a part.
///
/// # Errors
/// The I/O error.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// The directory `path` below the calling crate's `tests/data`: pass
/// `env!("CARGO_MANIFEST_DIR")`.
#[must_use]
pub fn data_dir(manifest_dir: &str, path: &str) -> PathBuf {
    Path::new(manifest_dir).join("tests/data").join(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_and_names_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("fail")).unwrap();
        std::fs::write(root.join("fail/same.vec"), b"expect: x\n\n").unwrap();
        std::fs::write(root.join("fail/drift.vec"), b"expect: x\nk: 1\n\n").unwrap();
        std::fs::write(root.join("fail/stale.vec"), b"expect: x\n\n").unwrap();
        std::fs::write(root.join("fail/other_prefix.vec"), b"expect: x\n\n").unwrap();
        let mut golden = GoldenDir::with_prefix(root, "s");
        golden.add("fail/same", &Vector::new("x"));
        golden.add("fail/sdrift", &Vector::new("x"));
        golden.add("fail/same", &Vector::new("y"));
        golden.add("fail/Bad", &Vector::new("x"));
        let error = golden.finish_as(false).unwrap_err();
        assert_eq!(
            error.problems,
            [
                "fail/same.vec generated twice",
                "\"fail/Bad\" is not a vector name of this directory (lowercase, digits, '_', \
                 '-', '/' between directories, file name starting with \"s\")",
                "fail/sdrift.vec is missing",
                "fail/stale.vec is stale: no generator writes it",
            ]
        );
        let mut drifted = GoldenDir::with_prefix(root, "d");
        drifted.add("fail/drift", &Vector::new("x").header("k", 2));
        assert_eq!(
            drifted.finish_as(false).unwrap_err().problems,
            ["fail/drift.vec drifted: the generator writes other bytes from line 2 (byte 13)"]
        );
    }

    #[test]
    fn kept_vectors_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kept.vec"), b"expect: x\n\n").unwrap();
        let mut golden = GoldenDir::new(dir.path());
        golden.keep("kept");
        assert_eq!(golden.finish_as(false).unwrap(), 1);
        let mut golden = GoldenDir::new(dir.path());
        golden.keep("kept");
        golden.keep("gone");
        assert_eq!(
            golden.finish_as(false).unwrap_err().problems,
            ["gone.vec (kept by hand) is missing"]
        );
    }

    #[test]
    fn regenerating_writes_what_differs_and_removes_the_stale() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("pass")).unwrap();
        std::fs::write(root.join("pass/kept.vec"), b"by hand").unwrap();
        std::fs::write(root.join("pass/stale.vec"), b"expect: x\n\n").unwrap();
        std::fs::write(root.join("pass/other.txt"), b"not a vector").unwrap();
        let mut golden = GoldenDir::new(root);
        golden.add("pass/new", &Vector::new("ok").body(*b"B"));
        golden.add("fail/deeper", &Vector::new("no"));
        golden.keep("pass/kept");
        assert_eq!(golden.finish_as(true).unwrap(), 3);
        assert_eq!(
            std::fs::read(root.join("pass/new.vec")).unwrap(),
            b"expect: ok\n\nB"
        );
        assert_eq!(
            std::fs::read(root.join("fail/deeper.vec")).unwrap(),
            b"expect: no\n\n"
        );
        assert_eq!(
            std::fs::read(root.join("pass/kept.vec")).unwrap(),
            b"by hand"
        );
        assert!(!root.join("pass/stale.vec").exists());
        assert!(root.join("pass/other.txt").exists());
    }

    #[test]
    fn first_difference_counts_lines() {
        assert_eq!(first_difference(b"a\nb\nc", b"a\nb\nd"), (3, 4));
        assert_eq!(first_difference(b"a\n", b"a\nb"), (2, 2));
    }
}
