//! Reading the files an operator carries and writing the ones the command
//! makes.

use std::io::{Read as _, Write as _};
use std::path::Path;

use crate::error::Error;

/// Reads `path`, refusing more than `max` bytes (checked while reading,
/// so a huge file is never loaded).
///
/// # Errors
/// [`Error::ReadFile`], [`Error::FileTooLarge`].
pub(crate) fn read_capped(path: &Path, what: &'static str, max: usize) -> Result<Vec<u8>, Error> {
    let failed = |source| Error::ReadFile {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut bytes = Vec::new();
    // One byte over the cap tells a file at the cap from a larger one.
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit).read_to_end(&mut bytes).map_err(failed)?;
    if bytes.len() > max {
        return Err(Error::FileTooLarge {
            path: path.to_owned(),
            what,
            max,
        });
    }
    Ok(bytes)
}

/// Whether a written file is readable by its owner only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Public data (requests, descriptors, receipts): the default mode.
    Public,
    /// Secrets or keys: mode 0600 on Unix.
    OwnerOnly,
}

/// Creates `path` for writing, which must not exist unless `force`
/// (then it is truncated; a secret's mode is narrowed).
///
/// # Errors
/// [`Error::OutputExists`], [`Error::WriteFile`].
pub(crate) fn create(path: &Path, force: bool, access: Access) -> Result<std::fs::File, Error> {
    let failed = |source| Error::WriteFile {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    if access == Access::OwnerOnly {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = access;
    let file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            Error::OutputExists(path.to_owned())
        } else {
            failed(source)
        }
    })?;
    // A replaced file keeps its old mode: a secret is narrowed explicitly.
    #[cfg(unix)]
    if access == Access::OwnerOnly {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
    }
    Ok(file)
}

/// Writes `bytes` to `path`, which must not exist unless `force`.
///
/// # Errors
/// [`Error::OutputExists`], [`Error::WriteFile`].
pub(crate) fn write_new(
    path: &Path,
    bytes: &[u8],
    force: bool,
    access: Access,
) -> Result<(), Error> {
    let mut file = create(path, force, access)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| Error::WriteFile {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_the_cap_is_refused_and_one_at_the_cap_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [1u8; 10]).unwrap();
        assert_eq!(read_capped(&path, "file", 10).unwrap().len(), 10);
        assert!(matches!(
            read_capped(&path, "file", 9),
            Err(Error::FileTooLarge { max: 9, .. })
        ));
    }

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_new(&path, b"first", false, Access::Public).unwrap();
        assert!(matches!(
            write_new(&path, b"second", false, Access::Public),
            Err(Error::OutputExists(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_new(&path, b"second", true, Access::OwnerOnly).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "a replaced secret is narrowed");
        }
    }
}
