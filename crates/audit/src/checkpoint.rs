//! Signed checkpoints of the chain head (format v2), their witness lines,
//! and the file witness.
//!
//! A witness line holds one checkpoint:
//!
//! ```text
//! shardkeep-checkpoint-v2 <log id> <sequence> <head hash> <signed at> <signer id> <signature>\n
//! ```
//!
//! The log id (16 bytes), head hash (32) and ed25519 signature (64) are
//! lowercase hex; `sequence` and `signed at` (milliseconds since the Unix
//! epoch) are decimal without sign or leading zeros; the signer id follows
//! the name rule. Fields are separated by exactly one space and every line,
//! the last included, ends with `\n`. The signature covers
//! `"shardkeep/checkpoint/v2" || log id || u8 len(signer id) || signer id ||
//! sequence (u64 BE) || head hash || signed at (u64 BE)`.
//!
//! Version 1 lines (`shardkeep-checkpoint-v1`, no log id) are refused with
//! [`WitnessError::RetiredFormat`]: a checkpoint that names no log could be
//! replayed against another log with the same first records.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, VerifyingKey};
use shardkeep_types::{AUDIT_LOG_ID_LEN, AuditHead, AuditLogId};
use shardkeep_types::{Signer, SignerId, Timestamp};
use shardkeep_wire::{FramingError, check_total_len};

use crate::error::{Error, WitnessError};
use crate::witness::Witness;

/// Domain tag of checkpoint signatures.
pub const CHECKPOINT_TAG: &[u8] = b"shardkeep/checkpoint/v2";

/// The checkpoint format this crate writes and reads.
pub const CHECKPOINT_FORMAT_VERSION: u8 = 2;

/// The first field of every witness line.
const LINE_PREFIX: &str = "shardkeep-checkpoint-v2";

/// The first field of a retired version 1 line.
const V1_LINE_PREFIX: &str = "shardkeep-checkpoint-v1";

/// Longest witness line, newline excluded.
pub const MAX_WITNESS_LINE_LEN: usize = 512;

/// Largest witness the verifier reads, in bytes of lines.
pub const MAX_WITNESS_FILE_LEN: usize = 256 * 1024 * 1024;

/// A signed statement that the head of log `log_id` at `sequence` is
/// `head_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log, fixed when it was created.
    pub log_id: AuditLogId,
    /// The head's sequence (0 for an empty log).
    pub sequence: u64,
    /// The head's hash.
    pub head_hash: [u8; 32],
    /// When it was signed (the signer's clock).
    pub signed_at: Timestamp,
    /// Which key signed it.
    pub signer_id: SignerId,
    /// The ed25519 signature.
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// Signs the head of log `log_id`.
    ///
    /// # Errors
    /// [`Error::Signer`] when the signer fails.
    pub fn sign<S: Signer + ?Sized>(
        log_id: AuditLogId,
        head: &AuditHead,
        signed_at: Timestamp,
        signer: &S,
    ) -> Result<Self, Error> {
        let message = signed_message(
            &log_id,
            head.sequence,
            &head.hash,
            signed_at,
            signer.signer_id(),
        );
        let signature = signer.sign(&message).map_err(Error::Signer)?;
        Ok(Self {
            log_id,
            sequence: head.sequence,
            head_hash: head.hash,
            signed_at,
            signer_id: signer.signer_id().clone(),
            signature: signature.to_bytes(),
        })
    }

    /// Whether the signature verifies (strictly) under `key`.
    #[must_use]
    pub fn verifies(&self, key: &VerifyingKey) -> bool {
        let message = signed_message(
            &self.log_id,
            self.sequence,
            &self.head_hash,
            self.signed_at,
            &self.signer_id,
        );
        key.verify_strict(&message, &Signature::from_bytes(&self.signature))
            .is_ok()
    }

    /// The head this checkpoint names.
    #[must_use]
    pub fn head(&self) -> AuditHead {
        AuditHead {
            sequence: self.sequence,
            hash: self.head_hash,
        }
    }

    /// The witness line, without its newline.
    #[must_use]
    pub fn to_line(&self) -> String {
        format!(
            "{LINE_PREFIX} {} {} {} {} {} {}",
            self.log_id,
            self.sequence,
            hex::encode(self.head_hash),
            self.signed_at.as_unix_millis(),
            self.signer_id,
            hex::encode(self.signature)
        )
    }

    /// Parses one witness line (without its newline).
    ///
    /// # Errors
    /// [`WitnessError`] for anything but the canonical v2 form;
    /// [`WitnessError::RetiredFormat`] for a v1 line.
    pub fn parse_line(line: &[u8]) -> Result<Self, WitnessError> {
        check_total_len("checkpoint line", line.len(), MAX_WITNESS_LINE_LEN)?;
        // The prefix is the line's magic and version.
        let not_a_checkpoint = FramingError::BadMagic {
            format: "checkpoint line",
        };
        let line = core::str::from_utf8(line).map_err(|_| not_a_checkpoint.clone())?;
        let prefix = line.split(' ').next().unwrap_or_default();
        if prefix == V1_LINE_PREFIX {
            return Err(WitnessError::RetiredFormat);
        }
        if prefix != LINE_PREFIX {
            return Err(not_a_checkpoint.into());
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let [
            _,
            log_id,
            sequence,
            head_hash,
            signed_at,
            signer_id,
            signature,
        ] = fields[..]
        else {
            return Err(WitnessError::FieldCount);
        };
        let signed_at = Timestamp::from_unix_millis(parse_decimal(signed_at, "signed_at")?)
            .map_err(|_| WitnessError::BadNumber("signed_at"))?;
        Ok(Self {
            log_id: AuditLogId(parse_hex::<AUDIT_LOG_ID_LEN>(log_id, "log id")?),
            sequence: parse_decimal(sequence, "sequence")?,
            head_hash: parse_hex(head_hash, "head hash")?,
            signed_at,
            signer_id: SignerId::new(signer_id).map_err(|_| WitnessError::BadSignerId)?,
            signature: parse_hex(signature, "signature")?,
        })
    }
}

/// The bytes a checkpoint signature covers.
fn signed_message(
    log_id: &AuditLogId,
    sequence: u64,
    head_hash: &[u8; 32],
    signed_at: Timestamp,
    signer_id: &SignerId,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(
        CHECKPOINT_TAG.len() + AUDIT_LOG_ID_LEN + 1 + signer_id.as_str().len() + 8 + 32 + 8,
    );
    message.extend_from_slice(CHECKPOINT_TAG);
    message.extend_from_slice(&log_id.0);
    signer_id.encode_prefixed(&mut message);
    message.extend_from_slice(&sequence.to_be_bytes());
    message.extend_from_slice(head_hash);
    message.extend_from_slice(&signed_at.as_unix_millis().to_be_bytes());
    message
}

/// A canonical decimal: digits only, no leading zero unless it is "0".
fn parse_decimal(field: &str, name: &'static str) -> Result<u64, WitnessError> {
    let canonical = !field.is_empty()
        && field.bytes().all(|b| b.is_ascii_digit())
        && (field == "0" || !field.starts_with('0'));
    if !canonical {
        return Err(WitnessError::BadNumber(name));
    }
    field.parse().map_err(|_| WitnessError::BadNumber(name))
}

/// Lowercase hex of exactly `N` bytes.
fn parse_hex<const N: usize>(field: &str, name: &'static str) -> Result<[u8; N], WitnessError> {
    if field.len() != 2 * N
        || !field
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(WitnessError::BadHex(name));
    }
    let mut out = [0; N];
    hex::decode_to_slice(field, &mut out).map_err(|_| WitnessError::BadHex(name))?;
    Ok(out)
}

/// Refuses a witness of `len` bytes when it is larger than the verifier
/// reads.
pub(crate) fn check_witness_len(len: usize) -> Result<(), Error> {
    check_total_len("witness", len, MAX_WITNESS_FILE_LEN).map_err(|error| Error::Witness {
        line: 0,
        error: error.into(),
    })
}

/// Parses a whole witness file.
///
/// # Errors
/// [`Error::Witness`] naming the first bad line (an incomplete last line is
/// [`WitnessError::IncompleteLine`]).
pub fn parse_witness(bytes: &[u8]) -> Result<Vec<Checkpoint>, Error> {
    check_witness_len(bytes.len())?;
    let mut checkpoints = Vec::new();
    let mut rest = bytes;
    let mut line = 0;
    while !rest.is_empty() {
        line += 1;
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            return Err(Error::Witness {
                line,
                error: WitnessError::IncompleteLine,
            });
        };
        let checkpoint =
            Checkpoint::parse_line(&rest[..end]).map_err(|error| Error::Witness { line, error })?;
        checkpoints.push(checkpoint);
        rest = &rest[end + 1..];
    }
    Ok(checkpoints)
}

/// Reads and parses a witness file.
///
/// # Errors
/// [`Error::Io`] or [`Error::Witness`].
pub fn read_witness(path: impl AsRef<Path>) -> Result<Vec<Checkpoint>, Error> {
    let file = File::open(path)?;
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    check_witness_len(len)?;
    let mut bytes = Vec::with_capacity(len);
    std::io::Read::read_to_end(&mut std::io::BufReader::new(file), &mut bytes)?;
    parse_witness(&bytes)
}

/// A witness file: opened with `O_APPEND`, created with mode 0600, each
/// checkpoint flushed to disk before [`append`](Witness::append) returns.
///
/// The service can rewrite a file it can append to, so on its own this is
/// an anchor only when the file lives out of the service's reach for
/// anything but appending: a `chattr +a` file, a write-once mount, a log
/// shipper that copies each line away. Otherwise pair it with (or use
/// instead) a [`PostgresWitness`](crate::PostgresWitness).
#[derive(Debug)]
pub struct FileWitness {
    path: PathBuf,
    file: File,
}

impl FileWitness {
    /// Opens (or creates) the witness file for appending.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Self {
            path: path.as_ref().to_path_buf(),
            file: options.open(path)?,
        })
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Witness for FileWitness {
    async fn append(&mut self, checkpoint: &Checkpoint) -> Result<(), Error> {
        let mut line = checkpoint.to_line();
        line.push('\n');
        let mut file = self.file.try_clone()?;
        // The write and the fsync block: off the async workers.
        tokio::task::spawn_blocking(move || {
            // One write call: with O_APPEND the line lands whole at the end,
            // also beside other writers of the same file.
            file.write_all(line.as_bytes())?;
            file.sync_data()
        })
        .await
        .map_err(|_| Error::Io(std::io::Error::other("the witness write task failed")))??;
        Ok(())
    }

    async fn read(&mut self, _log: &AuditLogId) -> Result<Vec<Checkpoint>, Error> {
        // Every line: a file is the witness of one log, and the verifier
        // refuses a line of another.
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || read_witness(path))
            .await
            .map_err(|_| Error::Io(std::io::Error::other("the witness read task failed")))?
    }
}

#[cfg(test)]
mod tests {
    use shardkeep_types::InMemorySigner;

    use super::*;

    const LOG: AuditLogId = AuditLogId([0x1d; AUDIT_LOG_ID_LEN]);

    fn signer() -> InMemorySigner {
        InMemorySigner::from_seed(SignerId::new("audit-1").unwrap(), &[3; 32])
    }

    fn checkpoint() -> Checkpoint {
        let head = AuditHead {
            sequence: 42,
            hash: [0xab; 32],
        };
        Checkpoint::sign(
            LOG,
            &head,
            Timestamp::from_unix_millis(1_000).unwrap(),
            &signer(),
        )
        .unwrap()
    }

    #[test]
    fn lines_round_trip_and_verify() {
        let checkpoint = checkpoint();
        let line = checkpoint.to_line();
        assert!(line.starts_with(&format!(
            "shardkeep-checkpoint-v2 {} 42 abab",
            "1d".repeat(16)
        )));
        let parsed = Checkpoint::parse_line(line.as_bytes()).unwrap();
        assert_eq!(parsed, checkpoint);
        assert!(parsed.verifies(&signer().verifying_key()));
        let other = InMemorySigner::from_seed(SignerId::new("audit-1").unwrap(), &[4; 32]);
        assert!(!parsed.verifies(&other.verifying_key()));
        // Every signed field is bound: moving any one breaks the signature.
        let mut moved = parsed.clone();
        moved.sequence = 43;
        assert!(!moved.verifies(&signer().verifying_key()));
        let mut other_log = parsed.clone();
        other_log.log_id = AuditLogId([0x1e; AUDIT_LOG_ID_LEN]);
        assert!(!other_log.verifies(&signer().verifying_key()));
        let mut renamed = parsed.clone();
        renamed.signer_id = SignerId::new("audit-2").unwrap();
        assert!(!renamed.verifies(&signer().verifying_key()));
        let mut rehashed = parsed;
        rehashed.head_hash[0] ^= 1;
        assert!(!rehashed.verifies(&signer().verifying_key()));
    }

    #[test]
    fn refuses_non_canonical_lines() {
        let line = checkpoint().to_line();
        let log = "1d".repeat(16);
        let bad = [
            (
                line.replacen(" 42 ", " 042 ", 1),
                WitnessError::BadNumber("sequence"),
            ),
            (
                line.replacen(" 42 ", " +42 ", 1),
                WitnessError::BadNumber("sequence"),
            ),
            (line.replacen(" 42 ", "  42 ", 1), WitnessError::FieldCount),
            (
                line.replacen("abab", "ABAB", 1),
                WitnessError::BadHex("head hash"),
            ),
            (
                line.replacen(&log, &log[2..], 1),
                WitnessError::BadHex("log id"),
            ),
            (
                line.replacen(" 1000 ", " 01000 ", 1),
                WitnessError::BadNumber("signed_at"),
            ),
            (
                line.replacen("audit-1", "audit/1", 1),
                WitnessError::BadSignerId,
            ),
            (
                line.replacen("v2", "v3", 1),
                WitnessError::Framing(FramingError::BadMagic {
                    format: "checkpoint line",
                }),
            ),
            (line.replacen("v2", "v1", 1), WitnessError::RetiredFormat),
            (format!("{line} extra"), WitnessError::FieldCount),
            (
                line[..line.len() - 2].to_owned(),
                WitnessError::BadHex("signature"),
            ),
        ];
        for (text, expected) in bad {
            assert_eq!(
                Checkpoint::parse_line(text.as_bytes()),
                Err(expected),
                "{text}"
            );
        }
        assert_eq!(
            Checkpoint::parse_line(&[b'a'; MAX_WITNESS_LINE_LEN + 1]),
            Err(WitnessError::Framing(FramingError::TooLarge {
                format: "checkpoint line",
                len: MAX_WITNESS_LINE_LEN + 1,
                max: MAX_WITNESS_LINE_LEN
            }))
        );
    }

    #[tokio::test]
    async fn witness_files_append_and_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness");
        let mut witness = FileWitness::open(&path).unwrap();
        witness.append(&checkpoint()).await.unwrap();
        drop(witness);
        let mut witness = FileWitness::open(&path).unwrap();
        witness.append(&checkpoint()).await.unwrap();
        assert_eq!(
            witness.read(&LOG).await.unwrap(),
            [checkpoint(), checkpoint()]
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        let mut torn = std::fs::read(&path).unwrap();
        torn.truncate(torn.len() - 1);
        assert!(matches!(
            parse_witness(&torn),
            Err(Error::Witness {
                line: 2,
                error: WitnessError::IncompleteLine
            })
        ));
        assert!(parse_witness(b"").unwrap().is_empty());
    }
}
