//! File-system rules for key material: who may own and read key files,
//! how they are created (atomically, never overwriting) and how they are
//! removed.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::TryRng;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use zeroize::Zeroizing;

use crate::error::{Error, KeyFileError};
use crate::keyfile::MAX_KEY_FILE_LEN;

/// Permission bits that group and others must not have on a key file.
const FILE_FORBIDDEN_BITS: u32 = 0o077;
/// Permission bits that group and others must not have on a key directory.
const DIR_FORBIDDEN_BITS: u32 = 0o022;
/// Prefix of the temporary files key files are written through.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

pub(crate) fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// What a key path must be. Key files and key directories follow the same
/// rules (right type, owned by this user, no dangerous permission bits for
/// group and others) with their own bits and errors.
#[derive(Clone, Copy)]
enum KeyPath {
    File,
    Directory,
}

impl KeyPath {
    fn has_type(self, meta: &fs::Metadata) -> bool {
        match self {
            Self::File => meta.file_type().is_file(),
            Self::Directory => meta.is_dir(),
        }
    }

    fn wrong_type(self, path: PathBuf) -> Error {
        match self {
            Self::File => Error::NotRegularFile { path },
            Self::Directory => Error::NotADirectory { path },
        }
    }

    /// Permission bits that group and others must not have.
    fn forbidden_bits(self) -> u32 {
        match self {
            Self::File => FILE_FORBIDDEN_BITS,
            Self::Directory => DIR_FORBIDDEN_BITS,
        }
    }

    fn insecure(self, path: PathBuf, mode: u32) -> Error {
        match self {
            Self::File => Error::InsecurePermissions { path, mode },
            Self::Directory => Error::InsecureDirectory { path, mode },
        }
    }

    /// Checks type, owner and mode.
    fn check(self, meta: &fs::Metadata, path: &Path) -> Result<(), Error> {
        if !self.has_type(meta) {
            return Err(self.wrong_type(path.to_path_buf()));
        }
        let expected = effective_uid();
        if meta.uid() != expected {
            return Err(Error::WrongOwner {
                path: path.to_path_buf(),
                owner: meta.uid(),
                expected,
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & self.forbidden_bits() != 0 {
            return Err(self.insecure(path.to_path_buf(), mode));
        }
        Ok(())
    }
}

/// Checks owner and mode of an opened key file (on the descriptor, so the
/// file checked is the file read).
fn check_key_file(file: &File, path: &Path) -> Result<(), Error> {
    let meta = file.metadata().map_err(io_error("stat", path))?;
    KeyPath::File.check(&meta, path)
}

/// Checks that `path` is a directory owned by this user that group and
/// others cannot write to.
pub(crate) fn check_key_dir(path: &Path) -> Result<(), Error> {
    let meta = fs::metadata(path).map_err(io_error("stat", path))?;
    KeyPath::Directory.check(&meta, path)
}

/// Creates a key directory (and missing parents) with mode 0700, or checks
/// an existing one.
pub(crate) fn ensure_key_dir(path: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_error("create directory", path))?;
    check_key_dir(path)
}

/// Opens without following a final symlink, and without blocking on a FIFO
/// (the type check then refuses it).
fn open_no_follow(path: &Path, flags: OFlags) -> Result<File, Error> {
    match rustix::fs::open(
        path,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(File::from(fd)),
        Err(Errno::LOOP) => Err(Error::Symlink {
            path: path.to_path_buf(),
        }),
        // A directory opened for writing, a FIFO without reader, a device.
        Err(Errno::ISDIR | Errno::NXIO) => Err(Error::NotRegularFile {
            path: path.to_path_buf(),
        }),
        Err(errno) => Err(Error::Io {
            op: "open",
            path: path.to_path_buf(),
            source: errno.into(),
        }),
    }
}

/// Reads a key file after checking that it is a regular file owned by this
/// user with no group or other access, at most [`MAX_KEY_FILE_LEN`] bytes.
/// `Ok(None)` when it does not exist.
pub(crate) fn read_key_file(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    let mut file = match open_no_follow(path, OFlags::RDONLY) {
        Ok(file) => file,
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    check_key_file(&file, path)?;
    let len = file.metadata().map_err(io_error("stat", path))?.len();
    let too_large = |len| Error::KeyFile {
        path: path.to_path_buf(),
        source: KeyFileError::TooLarge {
            len,
            max: MAX_KEY_FILE_LEN,
        },
    };
    if len > MAX_KEY_FILE_LEN as u64 {
        return Err(too_large(len));
    }
    // Capacity fixed up front so the buffer never reallocates (which would
    // leave an unwiped copy behind); the `take` bounds a file that grew.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN + 1));
    (&mut file)
        .take(MAX_KEY_FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error("read", path))?;
    if bytes.len() > MAX_KEY_FILE_LEN {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// The directory holding `path`; `.` for a bare file name (whose
/// `parent()` is the empty path, which cannot be opened to fsync).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", dir))
}

fn random_suffix() -> Result<String, Error> {
    let mut bytes = [0u8; 8];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| Error::Randomness)?;
    Ok(hex::encode(bytes))
}

/// Writes a new key file atomically with mode 0600: a temporary file in the
/// same directory is written and fsynced, then hard-linked to `path` (which
/// fails if `path` exists, so a key is never overwritten), then removed;
/// finally the directory is fsynced. A crash leaves either no key file or a
/// complete one (plus, at worst, a temporary file that
/// [`remove_temp_files`] cleans up).
pub(crate) fn create_key_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp: PathBuf = dir.join(format!("{TEMP_PREFIX}{name}.{}", random_suffix()?));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits().cast_signed())
            .open(&temp)
            .map_err(io_error("create", &temp))?;
        // The umask can only remove bits; set exactly 0600 anyway.
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(io_error("chmod", &temp))?;
        file.write_all(bytes).map_err(io_error("write", &temp))?;
        file.sync_all().map_err(io_error("fsync", &temp))
    })();
    let linked = written.and_then(|()| match fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(Error::Io {
            op: "link",
            path: path.to_path_buf(),
            source,
        }),
    });
    let removed = match linked {
        // The temporary name is a second link to the key file's inode:
        // unlink it only (overwriting would wipe the key file too).
        Ok(()) => fs::remove_file(&temp).map_err(io_error("remove", &temp)),
        // The temporary file is the only copy of a key nobody will use.
        Err(_) => overwrite_and_remove(&temp).map(drop),
    };
    linked?;
    removed?;
    sync_dir(dir)
}

/// Best-effort erasure: overwrites the file's bytes with zeros, fsyncs,
/// unlinks it and fsyncs the directory. On copy-on-write or journaling file
/// systems, SSDs, snapshots and backups the old bytes may survive; see the
/// crate documentation. `Ok(false)` when the file did not exist.
///
/// Unlike reading, destroying does not insist on private permissions: a key
/// file that was exposed is all the more reason to remove it. A symbolic
/// link is unlinked (never followed); a directory or special file is left
/// alone with [`Error::NotRegularFile`].
pub(crate) fn overwrite_and_remove(path: &Path) -> Result<bool, Error> {
    let dir = parent_dir(path);
    let mut file = match open_no_follow(path, OFlags::WRONLY) {
        Ok(file) => file,
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(false);
        }
        Err(Error::Symlink { .. }) => {
            fs::remove_file(path).map_err(io_error("remove", path))?;
            sync_dir(dir)?;
            return Ok(true);
        }
        Err(error) => return Err(error),
    };
    let meta = file.metadata().map_err(io_error("stat", path))?;
    if !meta.file_type().is_file() {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
        });
    }
    let len = meta.len();
    let zeros = [0u8; MAX_KEY_FILE_LEN];
    let mut left = len;
    while left > 0 {
        let chunk = usize::try_from(left.min(zeros.len() as u64)).unwrap_or(zeros.len());
        file.write_all(&zeros[..chunk])
            .map_err(io_error("overwrite", path))?;
        left -= chunk as u64;
    }
    file.sync_all().map_err(io_error("fsync", path))?;
    drop(file);
    fs::remove_file(path).map_err(io_error("remove", path))?;
    sync_dir(dir)?;
    Ok(true)
}

/// Removes (best-effort erasing) temporary files left by an interrupted
/// [`create_key_file`] for the key file named `name` in `dir`.
pub(crate) fn remove_temp_files(dir: &Path, name: &str) -> Result<(), Error> {
    let prefix = format!("{TEMP_PREFIX}{name}.");
    for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            overwrite_and_remove(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_file_names_live_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("audit.key")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/")), Path::new("."));
        assert_eq!(parent_dir(Path::new("keys/audit.key")), Path::new("keys"));
        assert_eq!(parent_dir(Path::new("/etc/k")), Path::new("/etc"));
    }
}
