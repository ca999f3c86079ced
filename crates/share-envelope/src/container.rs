//! Custodian containers: an age file (X25519 recipients or one passphrase,
//! binary or ASCII armor) that a custodian opens with any age
//! implementation, holding the signed plain envelope and a copy of the
//! sealed protocol archive in a small versioned layout (the "contents",
//! documented in the crate README).

use core::fmt;
use std::io::{Read, Write};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::{ExposeSecret, SecretString};
use shardkeep_types::FramingError;
use shardkeep_wire::{Reader, check_total_len, put_prefixed_u16, put_prefixed_u32};
use zeroize::Zeroizing;

use crate::binding::archive_hash;
use crate::envelope::{EncodedEnvelope, MAX_ENVELOPE_LEN, PayloadKind, VerifiedEnvelope};
use crate::error::{ContainerError, Error};
use crate::trust::TrustedSigners;

/// First bytes of the container contents (the age plaintext).
pub const CONTAINER_MAGIC: &[u8; 8] = b"shkp-ctr";
/// The contents format version this build writes and reads.
pub const CONTAINER_VERSION: u8 = 1;
/// Longest sealed protocol archive a container carries, in bytes.
pub const MAX_ARCHIVE_LEN: usize = 4 * 1024 * 1024;
/// Longest container contents, in bytes.
pub const MAX_CONTAINER_CONTENTS_LEN: usize = 8 + 1 + 2 + MAX_ENVELOPE_LEN + 4 + MAX_ARCHIVE_LEN;
/// Longest container (age file, armored or not) accepted by
/// [`open_container`], in bytes (checked before parsing).
pub const MAX_CONTAINER_LEN: usize = 8 * 1024 * 1024;
/// Most X25519 recipients of one container.
pub const MAX_CONTAINER_RECIPIENTS: usize = 16;
/// Most recipient stanzas (of any type) in a container's age header,
/// counted before any of them is tried: each X25519 stanza costs every
/// supplied identity a Diffie-Hellman operation. A container this crate
/// makes has at most [`MAX_CONTAINER_RECIPIENTS`] plus one (age's "grease"
/// stanza).
pub const MAX_CONTAINER_STANZAS: usize = 32;
/// Smallest scrypt work factor (log2 N) accepted for a passphrase
/// container.
pub const MIN_SCRYPT_WORK_FACTOR: u8 = 15;
/// Largest scrypt work factor (log2 N) made or opened, and the one
/// [`ContainerRecipients::passphrase`] uses: 2^18, scrypt with `r = 8`, so
/// 256 MiB of memory and about a second per attempt.
///
/// Why 2^18 and not more: it is what the reference `age` CLI writes for
/// `age -p`, so every passphrase container a custodian makes with stock
/// tools opens; it bounds what an attacker-supplied container makes a
/// custodian's machine spend per open, right passphrase or wrong (age
/// itself accepts up to 2^22: 4 GiB and ~20 s); and each further doubling
/// buys only one bit against offline guessing, which a longer passphrase
/// buys more cheaply.
pub const MAX_SCRYPT_WORK_FACTOR: u8 = 18;

/// Binary age or ASCII armor (PEM-like, `-----BEGIN AGE ENCRYPTED FILE-----`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Armor {
    /// The binary age format.
    Binary,
    /// ASCII armor, safe for e-mail and paper.
    Ascii,
}

/// Who can open a container: X25519 recipients, or exactly one passphrase
/// (age allows a passphrase stanza only alone).
pub struct ContainerRecipients {
    kind: RecipientsKind,
}

enum RecipientsKind {
    X25519(Vec<age::x25519::Recipient>),
    Passphrase {
        passphrase: SecretString,
        work_factor: u8,
    },
}

impl ContainerRecipients {
    /// One or more X25519 recipients (`age1...`).
    ///
    /// # Errors
    /// [`ContainerError::RecipientCount`] for none or more than
    /// [`MAX_CONTAINER_RECIPIENTS`].
    pub fn x25519(recipients: Vec<age::x25519::Recipient>) -> Result<Self, Error> {
        if recipients.is_empty() || recipients.len() > MAX_CONTAINER_RECIPIENTS {
            return Err(ContainerError::RecipientCount {
                got: recipients.len(),
                max: MAX_CONTAINER_RECIPIENTS,
            }
            .into());
        }
        Ok(Self {
            kind: RecipientsKind::X25519(recipients),
        })
    }

    /// One passphrase, with scrypt work factor [`MAX_SCRYPT_WORK_FACTOR`]
    /// (2^18: what `age -p` writes; not age's machine-tuned default, which
    /// can exceed what [`open_container`] accepts).
    #[must_use]
    pub fn passphrase(passphrase: SecretString) -> Self {
        Self {
            kind: RecipientsKind::Passphrase {
                passphrase,
                work_factor: MAX_SCRYPT_WORK_FACTOR,
            },
        }
    }

    /// One passphrase with an explicit scrypt work factor `N = 2^log_n`.
    ///
    /// # Errors
    /// [`ContainerError::WorkFactor`] outside
    /// [`MIN_SCRYPT_WORK_FACTOR`]`..=`[`MAX_SCRYPT_WORK_FACTOR`].
    pub fn passphrase_with_work_factor(passphrase: SecretString, log_n: u8) -> Result<Self, Error> {
        if !(MIN_SCRYPT_WORK_FACTOR..=MAX_SCRYPT_WORK_FACTOR).contains(&log_n) {
            return Err(ContainerError::WorkFactor(log_n).into());
        }
        Ok(Self {
            kind: RecipientsKind::Passphrase {
                passphrase,
                work_factor: log_n,
            },
        })
    }

    fn encryptor(&self) -> Result<age::Encryptor, Error> {
        let encryptor = match &self.kind {
            RecipientsKind::X25519(recipients) => {
                age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            }
            RecipientsKind::Passphrase {
                passphrase,
                work_factor,
            } => {
                let mut recipient = age::scrypt::Recipient::new(passphrase.clone());
                // Within the accepted range, checked on construction: age's
                // own bounds (1..64) cannot panic.
                recipient.set_work_factor(*work_factor);
                age::Encryptor::with_recipients(core::iter::once(&recipient as &dyn age::Recipient))
            }
        };
        encryptor.map_err(|_| ContainerError::Encrypt.into())
    }
}

impl fmt::Debug for ContainerRecipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RecipientsKind::X25519(recipients) => f
                .debug_tuple("ContainerRecipients::X25519")
                .field(recipients)
                .finish(),
            RecipientsKind::Passphrase { work_factor, .. } => f
                .debug_struct("ContainerRecipients::Passphrase")
                .field("passphrase", &"<redacted>")
                .field("work_factor", work_factor)
                .finish(),
        }
    }
}

/// What opens a container: X25519 identities (`AGE-SECRET-KEY-1...`) or
/// the passphrase.
#[derive(Clone, Copy)]
pub enum ContainerIdentity<'a> {
    /// Any of these identities.
    X25519(&'a [age::x25519::Identity]),
    /// The container's passphrase.
    Passphrase(&'a SecretString),
}

impl fmt::Debug for ContainerIdentity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::X25519(ids) => write!(f, "ContainerIdentity::X25519({} identities)", ids.len()),
            Self::Passphrase(_) => f.write_str("ContainerIdentity::Passphrase(<redacted>)"),
        }
    }
}

/// Encodes the container contents (the age plaintext): magic, version, the
/// plain envelope and the sealed protocol archive, each length-prefixed.
/// The result holds the share value: it is wiped on drop.
///
/// # Errors
/// [`Error::WrongPayloadKind`] for a sealed envelope, [`Error::Framing`]
/// for an empty or oversized archive.
pub fn encode_container_contents(
    envelope: &EncodedEnvelope,
    sealed_archive: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    if envelope.kind() != PayloadKind::Plain {
        return Err(Error::WrongPayloadKind {
            expected: PayloadKind::Plain,
            got: envelope.kind(),
        });
    }
    check_len("archive", sealed_archive.len(), MAX_ARCHIVE_LEN)?;
    let mut out = Zeroizing::new(Vec::with_capacity(
        8 + 1 + 2 + envelope.as_bytes().len() + 4 + sealed_archive.len(),
    ));
    out.extend_from_slice(CONTAINER_MAGIC);
    out.push(CONTAINER_VERSION);
    put_prefixed_u16(&mut out, "envelope", envelope.as_bytes(), MAX_ENVELOPE_LEN)?;
    put_prefixed_u32(&mut out, "archive", sealed_archive, MAX_ARCHIVE_LEN)?;
    Ok(out)
}

/// Seals a plain envelope and a copy of the sealed protocol archive into an
/// age container for a custodian.
///
/// # Errors
/// As [`encode_container_contents`], and [`ContainerError::Encrypt`] when
/// age fails.
pub fn seal_container(
    envelope: &EncodedEnvelope,
    sealed_archive: &[u8],
    recipients: &ContainerRecipients,
    armor: Armor,
) -> Result<Vec<u8>, Error> {
    let contents = encode_container_contents(envelope, sealed_archive)?;
    let encryptor = recipients.encryptor()?;
    let format = match armor {
        Armor::Binary => Format::Binary,
        Armor::Ascii => Format::AsciiArmor,
    };
    let encrypt = || -> std::io::Result<Vec<u8>> {
        let output = ArmoredWriter::wrap_output(Vec::new(), format)?;
        let mut writer = encryptor.wrap_output(output)?;
        writer.write_all(&contents)?;
        writer.finish()?.finish()
    };
    encrypt().map_err(|_| ContainerError::Encrypt.into())
}

/// A container's verified contents: the plain envelope (signature, share
/// rules and Feldman check passed) and the protocol archive, which hashes to
/// the envelope's signed archive hash.
///
/// The envelope holds the share: `Debug` prints the envelope's public
/// header and the archive's length, never the share or the archive bytes.
pub struct OpenedContainer {
    envelope: VerifiedEnvelope,
    archive: Vec<u8>,
}

impl fmt::Debug for OpenedContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedContainer")
            .field("envelope", &self.envelope)
            .field("archive_len", &self.archive.len())
            .finish()
    }
}

impl OpenedContainer {
    /// Decodes and verifies container contents, for example the output of
    /// `age -d` run by a custodian.
    ///
    /// # Errors
    /// [`Error::Framing`] (cap, magic, version, lengths, truncation,
    /// trailing bytes);
    /// every error of [`VerifiedEnvelope::decode_verify`];
    /// [`Error::WrongPayloadKind`] for a sealed envelope;
    /// [`Error::ArchiveMismatch`].
    pub fn decode_verify(contents: &[u8], trusted: &TrustedSigners) -> Result<Self, Error> {
        check_total_len(
            "container contents",
            contents.len(),
            MAX_CONTAINER_CONTENTS_LEN,
        )?;
        let (envelope, archive) = read_contents(contents)?;
        Self::verify(&envelope, archive, trusted)
    }

    fn verify(envelope: &[u8], archive: Vec<u8>, trusted: &TrustedSigners) -> Result<Self, Error> {
        let envelope = VerifiedEnvelope::decode_verify(envelope, trusted)?;
        if envelope.payload_kind() != PayloadKind::Plain {
            return Err(Error::WrongPayloadKind {
                expected: PayloadKind::Plain,
                got: envelope.payload_kind(),
            });
        }
        // Public hashes: a plain comparison.
        if archive_hash(&archive) != *envelope.header().binding().archive_hash() {
            return Err(Error::ArchiveMismatch);
        }
        Ok(Self { envelope, archive })
    }

    /// The verified plain envelope.
    #[must_use]
    pub fn envelope(&self) -> &VerifiedEnvelope {
        &self.envelope
    }

    /// The sealed protocol archive.
    #[must_use]
    pub fn archive(&self) -> &[u8] {
        &self.archive
    }

    /// The envelope and the archive.
    #[must_use]
    pub fn into_parts(self) -> (VerifiedEnvelope, Vec<u8>) {
        (self.envelope, self.archive)
    }
}

/// Opens an age container (binary or armored, detected) with `identity`
/// and verifies its contents.
///
/// Before any key is tried: the container is at most [`MAX_CONTAINER_LEN`]
/// bytes, its age header has at most [`MAX_CONTAINER_STANZAS`] recipient
/// stanzas, and a passphrase container's scrypt work factor is at most
/// [`MAX_SCRYPT_WORK_FACTOR`]. Server-side paths that open containers from
/// outside use [`open_x25519_container`] instead.
///
/// # Errors
/// [`Error::Framing`] over [`MAX_CONTAINER_LEN`];
/// [`ContainerError::Malformed`], [`ContainerError::TooManyStanzas`],
/// [`ContainerError::NoMatchingIdentity`], [`ContainerError::ExcessiveWork`],
/// [`ContainerError::DecryptionFailed`]; then every error of
/// [`OpenedContainer::decode_verify`].
pub fn open_container(
    container: &[u8],
    identity: ContainerIdentity<'_>,
    trusted: &TrustedSigners,
) -> Result<OpenedContainer, Error> {
    open(container, identity, PassphrasePolicy::Accept, trusted)
}

/// Opens an X25519 container with any of `identities` and verifies its
/// contents, refusing a passphrase (scrypt) container outright, before any
/// key derivation. For server-side paths that open containers supplied from
/// outside (the backup service): they never hold a passphrase, and must not
/// let a sender choose what the server computes.
///
/// # Errors
/// As [`open_container`], and [`ContainerError::PassphraseNotAccepted`]
/// for a passphrase container.
pub fn open_x25519_container(
    container: &[u8],
    identities: &[age::x25519::Identity],
    trusted: &TrustedSigners,
) -> Result<OpenedContainer, Error> {
    open(
        container,
        ContainerIdentity::X25519(identities),
        PassphrasePolicy::Refuse,
        trusted,
    )
}

/// Whether an opener accepts passphrase (scrypt) containers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PassphrasePolicy {
    Accept,
    Refuse,
}

fn open(
    container: &[u8],
    identity: ContainerIdentity<'_>,
    passphrases: PassphrasePolicy,
    trusted: &TrustedSigners,
) -> Result<OpenedContainer, Error> {
    check_total_len("container", container.len(), MAX_CONTAINER_LEN)?;
    let dearmored;
    // age's own armor detection compares exactly this prefix. The armor is
    // removed first so that the header can be checked before age sees it.
    let age_file: &[u8] = if container.starts_with(ARMOR_BEGIN_MARKER) {
        let mut binary = Vec::with_capacity(container.len());
        ArmoredReader::new(container)
            .read_to_end(&mut binary)
            .map_err(|_| ContainerError::Malformed)?;
        dearmored = binary;
        &dearmored
    } else {
        container
    };
    let stanzas = stanza_count(age_file);
    if stanzas > MAX_CONTAINER_STANZAS {
        return Err(ContainerError::TooManyStanzas {
            got: stanzas,
            max: MAX_CONTAINER_STANZAS,
        }
        .into());
    }
    let decryptor = age::Decryptor::new_buffered(age_file).map_err(|e| map_decrypt_error(&e))?;
    if passphrases == PassphrasePolicy::Refuse && decryptor.is_scrypt() {
        return Err(ContainerError::PassphraseNotAccepted.into());
    }
    let (envelope, archive) = decrypt(decryptor, identity)?;
    OpenedContainer::verify(&envelope, archive, trusted)
}

/// The first line of an armored age file.
const ARMOR_BEGIN_MARKER: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// The number of recipient stanzas in a binary age v1 file's header: the
/// lines starting `-> ` between the version line and the first line
/// starting `---` (the MAC line). Stanza bodies are unpadded base64, which
/// has no `-`, so for a header age accepts this is exactly its stanza
/// count; for any other, age refuses the header anyway. Variable time: the
/// header is public.
fn stanza_count(age_file: &[u8]) -> usize {
    age_file
        .split(|byte| *byte == b'\n')
        .skip(1)
        .take_while(|line| !line.starts_with(b"---"))
        .filter(|line| line.starts_with(b"-> "))
        .count()
}

/// Decrypts an age file and reads the contents layout from the plaintext
/// stream (see [`read_contents`]).
fn decrypt(
    decryptor: age::Decryptor<&[u8]>,
    identity: ContainerIdentity<'_>,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), Error> {
    let stream = match identity {
        ContainerIdentity::X25519(identities) => {
            decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        }
        ContainerIdentity::Passphrase(passphrase) => {
            let mut scrypt = age::scrypt::Identity::new(SecretString::from(
                passphrase.expose_secret().to_owned(),
            ));
            scrypt.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
            decryptor.decrypt(core::iter::once(&scrypt as &dyn age::Identity))
        }
    }
    .map_err(|e| map_decrypt_error(&e))?;
    read_contents(stream)
}

/// Reads the contents layout field by field: the plain envelope (secret)
/// into a buffer of its exact size that is wiped on drop, the sealed archive
/// (ciphertext) into a plain one. Every length is checked against its cap
/// before its buffer is allocated. A read error other than end of input can
/// only come from age's authenticated stream: it is a decryption failure.
fn read_contents<R: Read>(mut input: R) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), Error> {
    let mut header = [0u8; 9];
    let (magic, version) = header.split_at_mut(8);
    read_field(&mut input, magic, "magic")?;
    read_field(&mut input, version, "version")?;
    Reader::new(&header).magic_and_version(
        "container contents",
        CONTAINER_MAGIC,
        CONTAINER_VERSION,
    )?;
    let mut len = [0u8; 2];
    read_field(&mut input, &mut len, "envelope")?;
    let envelope_len = check_len(
        "envelope",
        usize::from(u16::from_be_bytes(len)),
        MAX_ENVELOPE_LEN,
    )?;
    let mut envelope = Zeroizing::new(vec![0u8; envelope_len]);
    read_field(&mut input, &mut envelope, "envelope")?;
    let mut len = [0u8; 4];
    read_field(&mut input, &mut len, "archive")?;
    let archive_len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    let archive_len = check_len("archive", archive_len, MAX_ARCHIVE_LEN)?;
    let mut archive = vec![0u8; archive_len];
    read_field(&mut input, &mut archive, "archive")?;
    let limit = u64::try_from(MAX_CONTAINER_LEN).unwrap_or(u64::MAX);
    let trailing = std::io::copy(&mut input.take(limit), &mut std::io::sink())
        .map_err(|_| ContainerError::DecryptionFailed)?;
    if trailing > 0 {
        return Err(FramingError::TrailingBytes {
            what: "container contents",
            len: usize::try_from(trailing).unwrap_or(usize::MAX),
        }
        .into());
    }
    Ok((envelope, archive))
}

/// Fills `buf`; the end of input inside it is [`FramingError::Truncated`]
/// with the bytes still missing.
fn read_field<R: Read>(input: &mut R, buf: &mut [u8], field: &'static str) -> Result<(), Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(FramingError::Truncated {
                    field,
                    needed: buf.len() - filled,
                }
                .into());
            }
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ContainerError::DecryptionFailed.into()),
        }
    }
    Ok(())
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<usize, Error> {
    if len == 0 || len > max {
        return Err(FramingError::LengthOutOfRange {
            field,
            len,
            min: 1,
            max,
        }
        .into());
    }
    Ok(len)
}

fn map_decrypt_error(error: &age::DecryptError) -> Error {
    match error {
        age::DecryptError::NoMatchingKeys => ContainerError::NoMatchingIdentity,
        age::DecryptError::ExcessiveWork { .. } => ContainerError::ExcessiveWork,
        age::DecryptError::DecryptionFailed
        | age::DecryptError::InvalidMac
        | age::DecryptError::KeyDecryptionFailed => ContainerError::DecryptionFailed,
        _ => ContainerError::Malformed,
    }
    .into()
}
