//! File-system rules for key material: who may own and read key files and
//! key directories, how they are created (atomically, never overwriting)
//! and how they are removed.
//!
//! Everything below works from an opened directory handle ([`KeyDir`]):
//! a key directory is found once, by walking its path one component at a
//! time with `openat(O_NOFOLLOW)` and checking every directory on the way
//! with `fstat` on the descriptor just opened; from then on every key file
//! is opened, created, linked and unlinked relative to that descriptor.
//! Swapping a checked directory (or one of its parents) for a symbolic link
//! afterwards therefore changes nothing: the handle still names the
//! directory that was checked.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Permissions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use rand::TryRng;
use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use shardkeep_types::FramingError;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::keyfile::MAX_KEY_FILE_LEN;

/// Permission bits that group and others must not have on a key file.
const FILE_FORBIDDEN_BITS: u32 = 0o077;
/// Permission bits that group and others must not have on a key directory,
/// or on a parent of one that lacks the sticky bit.
const DIR_FORBIDDEN_BITS: u32 = 0o022;
/// The sticky bit: in a directory that has it, only an entry's owner (and
/// the directory's owner, and root) may rename or remove the entry.
const STICKY_BIT: u32 = 0o1000;
/// Symbolic links followed while walking to a key directory before giving
/// up (Linux's own limit for one path lookup).
const MAX_SYMLINKS: usize = 40;
/// Prefix of the temporary files key files are written through.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

pub(crate) fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

fn errno_error(op: &'static str, path: &Path) -> impl FnOnce(Errno) -> Error {
    let path = path.to_path_buf();
    move |errno| Error::Io {
        op,
        path,
        source: errno.into(),
    }
}

fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn file_type(stat: &Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode)
}

fn permission_bits(stat: &Stat) -> u32 {
    stat.st_mode & 0o7777
}

/// A key file: a regular file owned by this user that group and others
/// cannot read or write.
fn check_key_file(stat: &Stat, path: &Path) -> Result<(), Error> {
    if file_type(stat) != FileType::RegularFile {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
        });
    }
    check_owner(stat, path)?;
    let mode = permission_bits(stat);
    if mode & FILE_FORBIDDEN_BITS != 0 {
        return Err(Error::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn check_owner(stat: &Stat, path: &Path) -> Result<(), Error> {
    let expected = effective_uid();
    if stat.st_uid != expected {
        return Err(Error::WrongOwner {
            path: path.to_path_buf(),
            owner: stat.st_uid,
            expected,
        });
    }
    Ok(())
}

/// A key directory: a directory owned by this user that group and others
/// cannot write to.
fn check_key_dir(stat: &Stat, path: &Path) -> Result<(), Error> {
    if file_type(stat) != FileType::Directory {
        return Err(Error::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    check_owner(stat, path)?;
    let mode = permission_bits(stat);
    if mode & DIR_FORBIDDEN_BITS != 0 {
        return Err(Error::InsecureDirectory {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// A directory on the way to a key directory: owned by root or this user,
/// and not writable by group or others unless it has the sticky bit (as
/// `/tmp` does), since whoever can write to it could rename the next
/// component away and put their own in its place. In a sticky directory
/// they cannot touch entries that are not theirs, and the next component
/// is itself checked to belong to root or this user.
fn check_parent_dir(stat: &Stat, path: &Path) -> Result<(), Error> {
    if file_type(stat) != FileType::Directory {
        return Err(Error::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    check_trusted_owner(stat, path)?;
    let mode = permission_bits(stat);
    if mode & DIR_FORBIDDEN_BITS != 0 && mode & STICKY_BIT == 0 {
        return Err(Error::InsecureDirectory {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Parents and the symbolic links among them must belong to root or to
/// this user: anyone else could replace them.
fn check_trusted_owner(stat: &Stat, path: &Path) -> Result<(), Error> {
    let expected = effective_uid();
    if stat.st_uid != 0 && stat.st_uid != expected {
        return Err(Error::UntrustedParent {
            path: path.to_path_buf(),
            owner: stat.st_uid,
            expected,
        });
    }
    Ok(())
}

/// Opens a directory entry of `dir` as a directory, never following a
/// symbolic link. `Ok(None)` when it does not exist.
fn open_dir_at(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<Option<OwnedFd>, Error> {
    match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        // A symbolic link (ELOOP), or not a directory: look at the entry
        // itself to say which.
        Err(Errno::LOOP | Errno::NOTDIR) => {
            let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno_error("stat", path))?;
            Err(if file_type(&stat) == FileType::Symlink {
                Error::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                Error::NotADirectory {
                    path: path.to_path_buf(),
                }
            })
        }
        Err(errno) => Err(errno_error("open directory", path)(errno)),
    }
}

/// Creates the directory entry `name` of `dir` with mode 0700; an entry
/// that appeared meanwhile is fine (the caller opens and checks it).
fn make_dir_at(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<(), Error> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(errno) => Err(errno_error("create directory", path)(errno)),
    }
}

/// The components of an absolute path still to walk, root excluded.
fn components_of(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// An opened key directory: every key file operation goes through this
/// handle, never through the path again. Permissions are checked again
/// (on the handle) before every operation, so a directory opened up to
/// group or others later is refused from then on.
pub(crate) struct KeyDir {
    fd: OwnedFd,
    /// For messages only; never opened again.
    path: PathBuf,
}

impl KeyDir {
    /// Opens an existing key directory (see [`walk`](Self::walk)).
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        Self::walk(path, false)
    }

    /// Opens a key directory, creating it and missing parents with mode
    /// 0700 (see [`walk`](Self::walk)).
    pub(crate) fn create(path: &Path) -> Result<Self, Error> {
        Self::walk(path, true)
    }

    /// Walks `path` from the root (a relative path from the current
    /// directory) one component at a time, opening each with `O_NOFOLLOW`
    /// relative to the one before and checking it on its descriptor:
    /// parents must belong to root or this user and be closed to writes by
    /// group and others (unless sticky); the key directory itself must
    /// belong to this user, be closed to writes by group and others, and
    /// not be a symbolic link ([`Error::Symlink`]). A symbolic link among
    /// the parents is followed by walking its target the same way, so its
    /// directories are checked too (and the link itself must belong to
    /// root or this user).
    fn walk(path: &Path, create: bool) -> Result<Self, Error> {
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(io_error("resolve", path))?
                .join(path)
        };
        let root = Path::new("/");
        let open_root = || -> Result<OwnedFd, Error> {
            let fd = rustix::fs::openat(
                CWD,
                root,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno_error("open directory", root))?;
            let stat = rustix::fs::fstat(&fd).map_err(errno_error("stat", root))?;
            check_parent_dir(&stat, root)?;
            Ok(fd)
        };
        let mut pending = components_of(&absolute);
        let mut current = open_root()?;
        // The real path of `current`, for messages.
        let mut walked = root.to_path_buf();
        let mut links = 0;
        if pending.is_empty() {
            // The root itself as a key directory.
            let stat = rustix::fs::fstat(&current).map_err(errno_error("stat", root))?;
            check_key_dir(&stat, root)?;
        }
        while let Some(name) = pending.pop_front() {
            let is_key_dir = pending.is_empty();
            let next_path = if name == ".." {
                walked.parent().unwrap_or(root).to_path_buf()
            } else {
                walked.join(&name)
            };
            let opened = match open_dir_at(&current, &name, &next_path) {
                Ok(None) if create && name != ".." => {
                    make_dir_at(&current, &name, &next_path)?;
                    open_dir_at(&current, &name, &next_path)?
                }
                Err(Error::Symlink { .. }) if !is_key_dir => {
                    let stat = rustix::fs::statat(&current, &name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(errno_error("stat", &next_path))?;
                    check_trusted_owner(&stat, &next_path)?;
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(errno_error("resolve", path)(Errno::LOOP));
                    }
                    let target = rustix::fs::readlinkat(&current, &name, Vec::new())
                        .map_err(errno_error("read link", &next_path))?;
                    let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                    for component in components_of(&target).into_iter().rev() {
                        pending.push_front(component);
                    }
                    if target.is_absolute() {
                        current = open_root()?;
                        walked = root.to_path_buf();
                    }
                    continue;
                }
                other => other?,
            };
            let Some(fd) = opened else {
                return Err(errno_error("open directory", &next_path)(Errno::NOENT));
            };
            let stat = rustix::fs::fstat(&fd).map_err(errno_error("stat", &next_path))?;
            if is_key_dir {
                check_key_dir(&stat, &next_path)?;
            } else {
                check_parent_dir(&stat, &next_path)?;
            }
            current = fd;
            walked = next_path;
        }
        Ok(Self {
            fd: current,
            path: path.to_path_buf(),
        })
    }

    /// The directory `name` inside this one, checked as a key directory;
    /// created with mode 0700 when missing if `create`.
    pub(crate) fn subdir(&self, name: &str, create: bool) -> Result<Self, Error> {
        self.recheck()?;
        let path = self.path.join(name);
        let name = OsStr::new(name);
        let opened = match open_dir_at(&self.fd, name, &path)? {
            None if create => {
                make_dir_at(&self.fd, name, &path)?;
                open_dir_at(&self.fd, name, &path)?
            }
            other => other,
        };
        let fd = opened.ok_or_else(|| errno_error("open directory", &path)(Errno::NOENT))?;
        let stat = rustix::fs::fstat(&fd).map_err(errno_error("stat", &path))?;
        check_key_dir(&stat, &path)?;
        Ok(Self { fd, path })
    }

    /// The path of an entry (for messages).
    pub(crate) fn entry_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Checks the directory's owner and mode again, on the handle.
    fn recheck(&self) -> Result<(), Error> {
        let stat = rustix::fs::fstat(&self.fd).map_err(errno_error("stat", &self.path))?;
        check_key_dir(&stat, &self.path)
    }

    /// Opens the entry `name` without following a symbolic link, and
    /// without blocking on a FIFO (the type check then refuses it).
    fn open_file(&self, name: &OsStr, flags: OFlags) -> Result<File, Error> {
        let path = self.path.join(name);
        match rustix::fs::openat(
            &self.fd,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(File::from(fd)),
            Err(Errno::LOOP) => Err(Error::Symlink { path }),
            // A directory opened for writing, a FIFO without reader, a device.
            Err(Errno::ISDIR | Errno::NXIO) => Err(Error::NotRegularFile { path }),
            Err(errno) => Err(errno_error("open", &path)(errno)),
        }
    }

    /// Whether an entry `name` exists (of any type; links not followed).
    pub(crate) fn contains(&self, name: &str) -> Result<bool, Error> {
        self.recheck()?;
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(errno) => Err(errno_error("stat", &self.path.join(name))(errno)),
        }
    }

    /// The names of the entries, `.` and `..` excluded. (Listing, like
    /// erasing, works in a directory that has become insecure.)
    pub(crate) fn names(&self) -> Result<Vec<OsString>, Error> {
        let dir = Dir::read_from(&self.fd).map_err(errno_error("list", &self.path))?;
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry.map_err(errno_error("list", &self.path))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        Ok(names)
    }

    /// Reads the key file `name` after checking that it is a regular file
    /// owned by this user with no group or other access, at most
    /// [`MAX_KEY_FILE_LEN`] bytes. `Ok(None)` when it does not exist.
    pub(crate) fn read_key_file(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        self.recheck()?;
        let path = self.path.join(name);
        let mut file = match self.open_file(OsStr::new(name), OFlags::RDONLY) {
            Ok(file) => file,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let stat = rustix::fs::fstat(&file).map_err(errno_error("stat", &path))?;
        check_key_file(&stat, &path)?;
        let too_large = |len| Error::KeyFile {
            path: path.clone(),
            source: FramingError::TooLarge {
                format: "key file",
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max: MAX_KEY_FILE_LEN,
            }
            .into(),
        };
        let len = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
        if len > MAX_KEY_FILE_LEN as u64 {
            return Err(too_large(len));
        }
        // Capacity fixed up front so the buffer never reallocates (which
        // would leave an unwiped copy behind); the `take` bounds a file that
        // grew.
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN + 1));
        (&mut file)
            .take(MAX_KEY_FILE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error("read", &path))?;
        if bytes.len() > MAX_KEY_FILE_LEN {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(Some(bytes))
    }

    fn sync(&self) -> Result<(), Error> {
        rustix::fs::fsync(&self.fd).map_err(errno_error("fsync directory", &self.path))
    }

    /// Writes a new key file `name` atomically with mode 0600: a temporary
    /// file in this directory is written and fsynced, then hard-linked to
    /// `name` (which fails if `name` exists, so a key is never
    /// overwritten), then removed; finally the directory is fsynced. A
    /// crash leaves either no key file or a complete one (plus, at worst, a
    /// temporary file that [`remove_temp_files`](Self::remove_temp_files)
    /// cleans up).
    pub(crate) fn create_key_file(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        self.recheck()?;
        let path = self.path.join(name);
        let temp = format!("{TEMP_PREFIX}{name}.{}", random_suffix()?);
        let temp_path = self.path.join(&temp);
        let written = (|| {
            let fd = rustix::fs::openat(
                &self.fd,
                temp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(errno_error("create", &temp_path))?;
            let mut file = File::from(fd);
            // The umask can only remove bits; set exactly 0600 anyway.
            file.set_permissions(Permissions::from_mode(0o600))
                .map_err(io_error("chmod", &temp_path))?;
            file.write_all(bytes)
                .map_err(io_error("write", &temp_path))?;
            file.sync_all().map_err(io_error("fsync", &temp_path))
        })();
        let linked = written.and_then(|()| {
            match rustix::fs::linkat(&self.fd, temp.as_str(), &self.fd, name, AtFlags::empty()) {
                Ok(()) => Ok(()),
                Err(Errno::EXIST) => Err(Error::AlreadyExists { path: path.clone() }),
                Err(errno) => Err(errno_error("link", &path)(errno)),
            }
        });
        let removed = match linked {
            // The temporary name is a second link to the key file's inode:
            // unlink it only (overwriting would wipe the key file too).
            Ok(()) => rustix::fs::unlinkat(&self.fd, temp.as_str(), AtFlags::empty())
                .map_err(errno_error("remove", &temp_path)),
            // The temporary file is the only copy of a key nobody will use.
            Err(_) => self.erase(&temp).map(drop),
        };
        linked?;
        removed?;
        self.sync()
    }

    /// Best-effort erasure of the entry `name`: overwrites the file's bytes
    /// with zeros, fsyncs, unlinks it and fsyncs the directory. On
    /// copy-on-write or journaling file systems, SSDs, snapshots and
    /// backups the old bytes may survive; see the crate documentation.
    /// `Ok(false)` when the entry did not exist.
    ///
    /// Unlike reading, erasing does not insist on private permissions: a
    /// key file that was exposed is all the more reason to remove it. A
    /// symbolic link is unlinked (never followed); a directory or special
    /// file is left alone with [`Error::NotRegularFile`]. For the same
    /// reason the directory's own permissions are not checked again here.
    pub(crate) fn erase(&self, name: &str) -> Result<bool, Error> {
        let path = self.path.join(name);
        let mut file = match self.open_file(OsStr::new(name), OFlags::WRONLY) {
            Ok(file) => file,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(false);
            }
            Err(Error::Symlink { .. }) => {
                rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())
                    .map_err(errno_error("remove", &path))?;
                self.sync()?;
                return Ok(true);
            }
            Err(error) => return Err(error),
        };
        let stat = rustix::fs::fstat(&file).map_err(errno_error("stat", &path))?;
        if file_type(&stat) != FileType::RegularFile {
            return Err(Error::NotRegularFile { path });
        }
        let zeros = [0u8; MAX_KEY_FILE_LEN];
        let mut left = u64::try_from(stat.st_size).unwrap_or(0);
        while left > 0 {
            let chunk = usize::try_from(left.min(zeros.len() as u64)).unwrap_or(zeros.len());
            file.write_all(&zeros[..chunk])
                .map_err(io_error("overwrite", &path))?;
            left -= chunk as u64;
        }
        file.sync_all().map_err(io_error("fsync", &path))?;
        drop(file);
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())
            .map_err(errno_error("remove", &path))?;
        self.sync()?;
        Ok(true)
    }

    /// Erases temporary files left by an interrupted
    /// [`create_key_file`](Self::create_key_file) of `name`.
    pub(crate) fn remove_temp_files(&self, name: &str) -> Result<(), Error> {
        let prefix = format!("{TEMP_PREFIX}{name}.");
        for entry in self.names()? {
            if let Some(entry) = entry.to_str()
                && entry.starts_with(&prefix)
            {
                self.erase(entry)?;
            }
        }
        Ok(())
    }
}

/// A key file at a path: its directory, opened and checked as a key
/// directory, and its name in it.
pub(crate) fn key_file_location(path: &Path) -> Result<(KeyDir, String), Error> {
    let name = match path.file_name().map(OsStr::to_str) {
        Some(Some(name)) if !name.is_empty() => name.to_owned(),
        _ => {
            return Err(Error::NotRegularFile {
                path: path.to_path_buf(),
            });
        }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Ok((KeyDir::open(dir)?, name))
}

fn random_suffix() -> Result<String, Error> {
    let mut bytes = [0u8; 8];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| Error::Randomness)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_normal_and_parent_components_only() {
        let parts = components_of(Path::new("/a/./b/../c"));
        assert_eq!(parts, ["a", "b", "..", "c"]);
        assert!(components_of(Path::new("/")).is_empty());
    }

    #[test]
    fn bare_and_odd_key_file_names() {
        assert!(matches!(
            key_file_location(Path::new("/")),
            Err(Error::NotRegularFile { .. })
        ));
        assert!(matches!(
            key_file_location(Path::new("/tmp/..")),
            Err(Error::NotRegularFile { .. })
        ));
    }
}
