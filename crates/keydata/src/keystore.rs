//! `.keydata.enc`: the encrypted file an MPC node loads its save data from.
//!
//! The encryption is a [`KeystoreCodec`], so a node plugs in its own; the
//! default, [`KekKeystoreCodec`], writes format v1 (magic `shkp-kst`), whose
//! byte layout is in the repository's `docs/formats.md`, section
//! "`.keydata.enc` keystore v1": the node's ids and the KEK id, a fresh data
//! key wrapped by the KEK, and the AES-256-GCM-SIV body under the data key,
//! every header byte in its AAD.
//!
//! The plaintext is the save data's JSON exactly as tss-lib's
//! `json.Marshal` writes it, so a node decrypts and hands it to tss-lib.
//!
//! Writing is atomic: a temporary file in the target directory (mode 0600,
//! created exclusively), written, fsynced, then renamed over the target (or
//! hard-linked to it when the target must not exist yet), then the
//! directory fsynced. A crash at any point leaves the old file or the new
//! one, never a torn one; a crash may leave the temporary file
//! (`.<file name>.<16 hex digits>.tmp`) behind, which holds only ciphertext
//! and is never read. The next write of the same keystore removes such
//! leftovers (regular files of exactly that name, nothing else), so one
//! writer of a keystore at a time: a second, concurrent writer of the same
//! keystore may lose its temporary file and fail with [`Error::Io`] (never
//! a torn or lost keystore).

use core::fmt;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use shardkeep_types::{
    DataKey, FramingError, KekId, KeyEncryptionKey, MAX_WRAPPED_KEY_LEN, NodeVersion, WrappedKey,
};
use shardkeep_wire::{Reader, put_prefixed_u16};
use zeroize::Zeroizing;

use crate::codec::{self, NONCE_LEN, TAG_LEN};
use crate::error::{Error, FormatError, Result};
use crate::json::MAX_JSON_LEN;
use crate::save_data::LocalPartySaveData;

/// Magic bytes at the start of a v1 keystore file.
pub const KEYSTORE_MAGIC: [u8; 8] = *b"shkp-kst";
/// The keystore format version [`KekKeystoreCodec`] writes and reads.
pub const KEYSTORE_VERSION: u8 = 1;
/// Domain tag at the start of the keystore body's AAD.
pub const KEYSTORE_AAD_TAG: &[u8] = b"shardkeep/keystore/v1";
/// File name suffix of keystore files.
pub const KEYSTORE_SUFFIX: &str = ".keydata.enc";

const MAX_BODY_LEN: usize = MAX_JSON_LEN + TAG_LEN;
/// Largest keystore file read (header and body), checked before reading.
pub(crate) const MAX_KEYSTORE_LEN: usize =
    8 + 1 + 3 * 65 + 4 + 2 + MAX_WRAPPED_KEY_LEN + NONCE_LEN + 4 + MAX_BODY_LEN;

/// How a node's keystore is encrypted: turns the save data's JSON into the
/// bytes of a `.keydata.enc` file and back.
///
/// Implementations must bind the file to `id` and refuse, on decode, a file
/// written for another key, node or version. [`KekKeystoreCodec`] is the
/// default; a node with its own keystore encryption implements this trait.
pub trait KeystoreCodec {
    /// Encrypts `json` (tss-lib's JSON of the save data) for `id`.
    ///
    /// # Errors
    /// Whatever the encryption fails with; map foreign errors into
    /// [`Error::Codec`].
    fn encode(&self, id: &NodeVersion, json: &[u8]) -> Result<Vec<u8>>;

    /// Decrypts a keystore file written for `id`, into a wiped buffer.
    ///
    /// # Errors
    /// A typed error for malformed files, files of another `id`, and
    /// decryption failures.
    fn decode(&self, id: &NodeVersion, file: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
}

/// The default keystore codec: format v1 (see the module documentation),
/// a fresh data key per file, wrapped by a [`KeyEncryptionKey`].
pub struct KekKeystoreCodec<K> {
    kek: K,
}

impl<K: KeyEncryptionKey> KekKeystoreCodec<K> {
    /// A codec wrapping data keys with `kek`.
    pub fn new(kek: K) -> Self {
        Self { kek }
    }

    pub(crate) fn encode_with(
        &self,
        id: &NodeVersion,
        json: &[u8],
        data_key: &DataKey,
        wrapped: &WrappedKey,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>> {
        let bad_length = || Error::Keystore(codec::body_length_error(json.len(), MAX_BODY_LEN));
        // An empty plaintext would give a body the parser refuses.
        if json.is_empty() || json.len() > MAX_JSON_LEN {
            return Err(bad_length());
        }
        let mut header = Vec::with_capacity(256);
        header.extend_from_slice(KEYSTORE_AAD_TAG);
        header.extend_from_slice(&KEYSTORE_MAGIC);
        header.push(KEYSTORE_VERSION);
        id.encode(&mut header);
        self.kek.kek_id().encode_prefixed(&mut header);
        put_prefixed_u16(
            &mut header,
            "wrapped_key",
            wrapped.as_bytes(),
            MAX_WRAPPED_KEY_LEN,
        )
        .map_err(|e| Error::Keystore(e.into()))?;
        header.extend_from_slice(&nonce);
        let body_len = u32::try_from(json.len() + TAG_LEN).unwrap_or(u32::MAX);
        header.extend_from_slice(&body_len.to_be_bytes());

        let aad = &header[..];
        let file_header = &header[KEYSTORE_AAD_TAG.len()..];
        let mut out = Vec::with_capacity(file_header.len() + json.len() + TAG_LEN);
        out.extend_from_slice(file_header);
        if !codec::seal_into(data_key.expose(), &nonce, aad, json, &mut out) {
            return Err(bad_length());
        }
        Ok(out)
    }
}

impl<K> fmt::Debug for KekKeystoreCodec<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KekKeystoreCodec").finish_non_exhaustive()
    }
}

/// A parsed v1 keystore header (everything before the body).
pub(crate) struct KeystoreHeader<'a> {
    pub(crate) id: NodeVersion,
    pub(crate) kek_id: KekId,
    pub(crate) wrapped: WrappedKey,
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) header: &'a [u8],
    pub(crate) body: &'a [u8],
}

pub(crate) fn parse_keystore(file: &[u8]) -> Result<KeystoreHeader<'_>, FormatError> {
    let mut reader = Reader::new(file);
    reader.magic_and_version("keystore file", &KEYSTORE_MAGIC, KEYSTORE_VERSION)?;
    let id = codec::read_node_version(&mut reader)?;
    let kek_id = KekId::from_bytes(codec::read_name(&mut reader, "kek_id")?)
        .map_err(|_| FormatError::InvalidName("kek_id"))?;
    let wrapped = reader.prefixed_u16("wrapped_key", 1, MAX_WRAPPED_KEY_LEN)?;
    let wrapped =
        WrappedKey::new(wrapped.to_vec()).map_err(|_| FramingError::LengthOutOfRange {
            field: "wrapped_key",
            len: wrapped.len(),
            min: 1,
            max: MAX_WRAPPED_KEY_LEN,
        })?;
    let nonce = *reader.array::<NONCE_LEN>("nonce")?;
    let body = reader.prefixed_u32("body", TAG_LEN + 1, MAX_BODY_LEN)?;
    let header_len = reader.offset() - body.len();
    reader.finish("keystore file")?;
    Ok(KeystoreHeader {
        id,
        kek_id,
        wrapped,
        nonce,
        header: &file[..header_len],
        body,
    })
}

impl<K: KeyEncryptionKey> KeystoreCodec for KekKeystoreCodec<K> {
    fn encode(&self, id: &NodeVersion, json: &[u8]) -> Result<Vec<u8>> {
        let mut key = Zeroizing::new([0u8; 32]);
        codec::os_random(key.as_mut_slice())?;
        let data_key = DataKey::from_bytes(&key);
        let wrapped = self.kek.wrap(&data_key)?;
        let mut nonce = [0u8; NONCE_LEN];
        codec::os_random(&mut nonce)?;
        self.encode_with(id, json, &data_key, &wrapped, nonce)
    }

    fn decode(&self, id: &NodeVersion, file: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let parsed = parse_keystore(file).map_err(Error::Keystore)?;
        if parsed.id != *id {
            return Err(Error::KeystoreIdMismatch);
        }
        if parsed.kek_id != *self.kek.kek_id() {
            return Err(Error::KekMismatch {
                expected: self.kek.kek_id().clone(),
                found: parsed.kek_id,
            });
        }
        let data_key = self.kek.unwrap(&parsed.wrapped)?;
        let mut aad = Vec::with_capacity(KEYSTORE_AAD_TAG.len() + parsed.header.len());
        aad.extend_from_slice(KEYSTORE_AAD_TAG);
        aad.extend_from_slice(parsed.header);
        codec::open(data_key.expose(), &parsed.nonce, &aad, parsed.body)
            .ok_or(Error::KeystoreDecryptFailed)
    }
}

/// Whether a keystore write may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Refuse with [`Error::KeystoreExists`] if the file exists (checked
    /// atomically: the new file is hard-linked into place).
    CreateNew,
    /// Replace an existing file atomically (rename).
    Replace,
}

/// The keystore file of `id` in `dir`:
/// `<key_id>+<node_id>+v<version>.keydata.enc`. `+` never occurs in a name,
/// so distinct ids never share a file.
#[must_use]
pub fn keystore_path(dir: &Path, id: &NodeVersion) -> PathBuf {
    dir.join(format!(
        "{}+{}+v{}{KEYSTORE_SUFFIX}",
        id.key_id,
        id.node_id,
        id.version.get()
    ))
}

/// Encrypts `data` with `codec` and writes it atomically to
/// [`keystore_path`]`(dir, id)`; returns the path. Temporary files that
/// killed earlier writes of this keystore left behind are removed first
/// (see the module documentation); nothing else in `dir` is touched.
///
/// # Errors
/// [`Error::KeystoreExists`] under [`WriteMode::CreateNew`] when the file
/// exists (nothing is changed), the codec's errors, [`Error::Io`]. On an
/// error before the final directory sync, the target is untouched and the
/// temporary file removed; an error from the directory sync itself means
/// the new file is in place but may not survive a power loss.
pub fn write_keystore(
    dir: &Path,
    id: &NodeVersion,
    data: &LocalPartySaveData,
    codec: &dyn KeystoreCodec,
    mode: WriteMode,
) -> Result<PathBuf> {
    let target = keystore_path(dir, id);
    if mode == WriteMode::CreateNew && target.exists() {
        return Err(Error::KeystoreExists { path: target });
    }
    let json = data.to_json();
    let bytes = codec.encode(id, &json)?;
    drop(json);
    write_atomic(&target, &bytes, mode, &mut |_step| {
        #[cfg(feature = "pause-points")]
        crate::pause::pause_point(_step.pause_point());
        Ok(())
    })?;
    Ok(target)
}

/// Reads, decrypts and parses the keystore file at `path`, written for `id`.
///
/// # Errors
/// [`Error::Io`], [`Error::Keystore`] for a file over the size cap, the
/// codec's errors, the parse errors of [`LocalPartySaveData::from_json`].
pub fn load_keystore(
    path: &Path,
    id: &NodeVersion,
    codec: &dyn KeystoreCodec,
) -> Result<LocalPartySaveData> {
    let file = read_capped(path)?;
    let json = codec.decode(id, &file)?;
    LocalPartySaveData::from_json(&json)
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Reads a file of at most [`MAX_KEYSTORE_LEN`] bytes into a wiped buffer
/// (a foreign codec might store plaintext), allocated once.
fn read_capped(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let mut file = File::open(path).map_err(io_error("open", path))?;
    let len = file.metadata().map_err(io_error("stat", path))?.len();
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_KEYSTORE_LEN {
        return Err(Error::Keystore(
            FramingError::TooLarge {
                format: "keystore file",
                len,
                max: MAX_KEYSTORE_LEN,
            }
            .into(),
        ));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(len));
    let cap = u64::try_from(MAX_KEYSTORE_LEN).unwrap_or(u64::MAX) + 1;
    (&mut file)
        .take(cap)
        .read_to_end(&mut buf)
        .map_err(io_error("read", path))?;
    if buf.len() > MAX_KEYSTORE_LEN {
        return Err(Error::Keystore(
            FramingError::TooLarge {
                format: "keystore file",
                len: buf.len(),
                max: MAX_KEYSTORE_LEN,
            }
            .into(),
        ));
    }
    Ok(buf)
}

/// The steps of an atomic write, in order; tests inject failures before
/// each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteStep {
    CreateTemp,
    /// Half of the bytes are written when this step runs.
    WriteData,
    SyncFile,
    Commit,
    SyncDir,
}

#[cfg(feature = "pause-points")]
impl WriteStep {
    /// The pause point before this step (see [`crate::pause`]).
    const fn pause_point(self) -> &'static str {
        match self {
            Self::CreateTemp => "keystore-create-temp",
            Self::WriteData => "keystore-write-data",
            Self::SyncFile => "keystore-sync-file",
            Self::Commit => "keystore-commit",
            Self::SyncDir => "keystore-sync-dir",
        }
    }
}

/// Writes `bytes` to `target` atomically (see the module documentation).
/// `hook` runs before each step and may fail it.
pub(crate) fn write_atomic(
    target: &Path,
    bytes: &[u8],
    mode: WriteMode,
    hook: &mut dyn FnMut(WriteStep) -> io::Result<()>,
) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temps(dir, &name);
    let mut suffix = [0u8; TEMP_SUFFIX_LEN];
    codec::os_random(&mut suffix)?;
    let temp = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));

    let result = write_temp_and_commit(target, &temp, bytes, mode, hook);
    if result.is_err() {
        // Best effort: the target is untouched; a leftover holds ciphertext only.
        let _ = fs::remove_file(&temp);
    }
    result?;

    hook(WriteStep::SyncDir).map_err(io_error("sync directory", dir))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync directory", dir))
}

/// Random bytes in a temporary file's name (hex-encoded: 16 digits).
const TEMP_SUFFIX_LEN: usize = 8;

/// Whether `file_name` is exactly what [`write_atomic`] names the temporary
/// file of a write to `target_name`: `.<target_name>.<16 lowercase hex
/// digits>.tmp`.
fn is_temp_of(file_name: &OsStr, target_name: &str) -> bool {
    let Some(random) = file_name
        .to_str()
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_prefix(target_name))
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(".tmp"))
    else {
        return false;
    };
    random.len() == 2 * TEMP_SUFFIX_LEN
        && random
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Removes the temporary files that earlier writes to `target_name` left
/// behind when they were killed (they hold ciphertext only, but pile up):
/// regular files whose name is exactly that of such a file. Nothing else in
/// the directory is touched: not another keystore's temporary files, not a
/// look-alike name, not a symlink or directory of the exact name.
///
/// Best effort: a failure here leaves a stale file, which the write itself
/// does not need gone.
fn remove_stale_temps(dir: &Path, target_name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // `DirEntry::file_type` does not follow symlinks.
        if is_temp_of(&entry.file_name(), target_name)
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn write_temp_and_commit(
    target: &Path,
    temp: &Path,
    bytes: &[u8],
    mode: WriteMode,
    hook: &mut dyn FnMut(WriteStep) -> io::Result<()>,
) -> Result<()> {
    hook(WriteStep::CreateTemp).map_err(io_error("create temporary file", temp))?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(temp)
        .map_err(io_error("create temporary file", temp))?;

    let (first, second) = bytes.split_at(bytes.len() / 2);
    file.write_all(first)
        .map_err(io_error("write temporary file", temp))?;
    hook(WriteStep::WriteData).map_err(io_error("write temporary file", temp))?;
    file.write_all(second)
        .map_err(io_error("write temporary file", temp))?;

    hook(WriteStep::SyncFile).map_err(io_error("sync temporary file", temp))?;
    file.sync_all()
        .map_err(io_error("sync temporary file", temp))?;
    drop(file);

    hook(WriteStep::Commit).map_err(io_error("commit", target))?;
    match mode {
        WriteMode::Replace => {
            fs::rename(temp, target).map_err(io_error("rename into place", target))
        }
        WriteMode::CreateNew => {
            fs::hard_link(temp, target).map_err(|source| {
                if source.kind() == io::ErrorKind::AlreadyExists {
                    Error::KeystoreExists {
                        path: target.to_owned(),
                    }
                } else {
                    io_error("link into place", target)(source)
                }
            })?;
            // The target is in place; a leftover temporary name is harmless.
            let _ = fs::remove_file(temp);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use shardkeep_types::{InMemoryKek, KekId};

    use super::*;
    use crate::test_support::{fixture, id};

    fn codec() -> KekKeystoreCodec<InMemoryKek> {
        KekKeystoreCodec::new(InMemoryKek::from_bytes(
            KekId::new("kek-1").unwrap(),
            &[9; 32],
        ))
    }

    fn load(path: &Path) -> LocalPartySaveData {
        load_keystore(path, &id("node-0"), &codec()).unwrap()
    }

    fn same(a: &LocalPartySaveData, b: &LocalPartySaveData) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn write_then_load_round_trips_with_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = fixture("ecdsa", 0);
        let path = write_keystore(
            dir.path(),
            &id("node-0"),
            &data,
            &codec(),
            WriteMode::CreateNew,
        )
        .unwrap();
        assert_eq!(path, dir.path().join("key-1+node-0+v1.keydata.enc"));
        assert!(same(&load(&path), &data));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn create_new_refuses_an_existing_keystore_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let old = fixture("ecdsa", 0);
        let path = write_keystore(
            dir.path(),
            &id("node-0"),
            &old,
            &codec(),
            WriteMode::CreateNew,
        )
        .unwrap();
        let before = fs::read(&path).unwrap();
        let err = write_keystore(
            dir.path(),
            &id("node-0"),
            &fixture("ecdsa", 1),
            &codec(),
            WriteMode::CreateNew,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::KeystoreExists { path: p } if *p == path),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), before);
        // The atomic check at commit time, past the early one.
        let err = write_atomic(&path, b"new", WriteMode::CreateNew, &mut |_| Ok(())).unwrap_err();
        assert!(matches!(err, Error::KeystoreExists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn replace_swaps_the_keystore() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_keystore(
            dir.path(),
            &id("node-0"),
            &fixture("ecdsa", 0),
            &codec(),
            WriteMode::CreateNew,
        )
        .unwrap();
        let new = fixture("ecdsa", 1);
        write_keystore(
            dir.path(),
            &id("node-0"),
            &new,
            &codec(),
            WriteMode::Replace,
        )
        .unwrap();
        assert!(same(&load(&path), &new));
    }

    #[test]
    fn a_failure_at_any_step_leaves_the_old_file_or_the_new_one() {
        let steps = [
            WriteStep::CreateTemp,
            WriteStep::WriteData,
            WriteStep::SyncFile,
            WriteStep::Commit,
            WriteStep::SyncDir,
        ];
        for mode in [WriteMode::Replace, WriteMode::CreateNew] {
            for failing in steps {
                let dir = tempfile::tempdir().unwrap();
                let target = dir.path().join("k.keydata.enc");
                let had_old = mode == WriteMode::Replace;
                if had_old {
                    fs::write(&target, b"old contents").unwrap();
                }
                let result = write_atomic(&target, b"new contents", mode, &mut |step| {
                    if step == failing {
                        Err(io::Error::other("injected failure"))
                    } else {
                        Ok(())
                    }
                });
                assert!(
                    matches!(result, Err(Error::Io { .. })),
                    "{mode:?} {failing:?}"
                );
                let now = fs::read(&target).ok();
                // Only the directory sync runs after the commit.
                let expected: Option<&[u8]> = match (failing, had_old) {
                    (WriteStep::SyncDir, _) => Some(b"new contents"),
                    (_, true) => Some(b"old contents"),
                    (_, false) => None,
                };
                assert_eq!(now.as_deref(), expected, "{mode:?} {failing:?}");
                assert!(leftovers(dir.path()).is_empty(), "{mode:?} {failing:?}");
            }
        }
    }

    #[test]
    fn a_write_removes_its_own_stale_temporary_files_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let node = id("node-0");
        let target = keystore_path(dir.path(), &node);
        let name = target.file_name().unwrap().to_str().unwrap().to_owned();
        // What a write killed after creating its temporary file leaves.
        let stale = [
            format!(".{name}.0123456789abcdef.tmp"),
            format!(".{name}.fedcba9876543210.tmp"),
        ];
        let look_alikes = [
            format!(".{name}.0123456789abcde.tmp"),
            format!(".{name}.0123456789abcdef0.tmp"),
            format!(".{name}.0123456789ABCDEF.tmp"),
            format!(".{name}.0123456789abcdeg.tmp"),
            format!("{name}.0123456789abcdef.tmp"),
            format!(".{name}.0123456789abcdef.tmp.bak"),
            format!(".{name}0123456789abcdef.tmp"),
            // Another keystore's temporary file is that writer's business.
            ".key-1+node-1+v1.keydata.enc.0123456789abcdef.tmp".to_owned(),
            "unrelated.txt".to_owned(),
        ];
        for file in stale.iter().chain(&look_alikes) {
            fs::write(dir.path().join(file), b"left behind").unwrap();
        }
        // A directory with the exact name is not a file this writer made.
        let directory = format!(".{name}.00112233445566aa.tmp");
        fs::create_dir(dir.path().join(&directory)).unwrap();

        let data = fixture("eddsa", 0);
        write_keystore(dir.path(), &node, &data, &codec(), WriteMode::CreateNew).unwrap();

        for file in &stale {
            assert!(!dir.path().join(file).exists(), "{file} is still there");
        }
        for file in &look_alikes {
            assert_eq!(
                fs::read(dir.path().join(file)).unwrap(),
                b"left behind",
                "{file} was touched"
            );
        }
        assert!(dir.path().join(&directory).is_dir());
        assert!(same(&load(&target), &data));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_named_like_a_stale_temporary_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let node = id("node-0");
        let name = keystore_path(dir.path(), &node)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"not ours").unwrap();
        let link = dir.path().join(format!(".{name}.0123456789abcdef.tmp"));
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        write_keystore(
            dir.path(),
            &node,
            &fixture("eddsa", 0),
            &codec(),
            WriteMode::CreateNew,
        )
        .unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read(&elsewhere).unwrap(), b"not ours");
    }

    #[test]
    fn oversized_and_missing_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.keydata.enc");
        let file = File::create(&path).unwrap();
        file.set_len(u64::try_from(MAX_KEYSTORE_LEN).unwrap() + 1)
            .unwrap();
        let err = load_keystore(&path, &id("node-0"), &codec()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Keystore(FormatError::Framing(FramingError::TooLarge {
                    format: "keystore file",
                    ..
                }))
            ),
            "{err}"
        );
        let err = load_keystore(&dir.path().join("absent"), &id("node-0"), &codec()).unwrap_err();
        assert!(matches!(err, Error::Io { op: "open", .. }), "{err}");
    }

    #[test]
    fn a_directory_that_does_not_exist_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_keystore(
            &dir.path().join("missing"),
            &id("node-0"),
            &fixture("eddsa", 0),
            &codec(),
            WriteMode::CreateNew,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Io {
                    op: "create temporary file",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_empty_plaintext_is_refused_not_written_unreadable() {
        // Found by keydata_keystore_load: it once encoded to a body of just
        // a tag, which the parser (rightly) refuses.
        assert!(matches!(
            codec().encode(&id("node-0"), b""),
            Err(Error::Keystore(FormatError::Framing(
                FramingError::LengthOutOfRange { field: "body", .. }
            )))
        ));
    }

    #[test]
    fn distinct_ids_never_share_a_file() {
        let dir = Path::new("/d");
        let a = NodeVersion {
            key_id: "a".parse().unwrap(),
            node_id: "b.c".parse().unwrap(),
            version: shardkeep_types::KeyVersion::new(1),
        };
        let b = NodeVersion {
            key_id: "a.b".parse().unwrap(),
            node_id: "c".parse().unwrap(),
            version: shardkeep_types::KeyVersion::new(1),
        };
        assert_ne!(keystore_path(dir, &a), keystore_path(dir, &b));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        #[test]
        fn encode_decode_round_trips_for_any_ids(
            key in "[A-Za-z0-9._:-]{1,64}",
            node in "[A-Za-z0-9._:-]{1,64}",
            version in proptest::prelude::any::<u32>(),
        ) {
            let ids = NodeVersion {
                key_id: key.parse().unwrap(),
                node_id: node.parse().unwrap(),
                version: shardkeep_types::KeyVersion::new(version),
            };
            let json = fixture("eddsa", 1).to_json();
            let file = codec().encode(&ids, &json).unwrap();
            let decoded = codec().decode(&ids, &file).unwrap();
            proptest::prop_assert_eq!(decoded.as_slice(), json.as_slice());
            let parsed = parse_keystore(&file).unwrap();
            proptest::prop_assert_eq!(&parsed.id, &ids);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn mutated_keystores_are_rejected_never_a_panic(
            at in 0usize..4096,
            xor in 1u8..=255,
            cut in proptest::option::of(0usize..4096),
        ) {
            let json = fixture("eddsa", 0).to_json();
            let mut file = codec().encode(&id("node-0"), &json).unwrap();
            let at = at % file.len();
            file[at] ^= xor;
            if let Some(cut) = cut {
                file.truncate(cut % file.len());
            }
            proptest::prop_assert!(codec().decode(&id("node-0"), &file).is_err());
        }
    }
}
