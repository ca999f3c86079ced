//! A person's secrets on disk: their ed25519 signing key (the approval
//! key of an approver, the receipt key of a custodian) and, for a
//! custodian, their age X25519 identity; encrypted under a passphrase
//! (age, scrypt) and read with a passphrase typed at the terminal.
//!
//! The plaintext (`shkp-pks`, version 1) is
//! `magic (8) || version (1) || u8 len || person || seed (32) || u8 len ||
//! age identity (empty: none)`, parsed with length caps and no trailing
//! bytes; the file is that plaintext as an ASCII-armored age file with one
//! scrypt stanza.

use core::fmt;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::str::FromStr as _;

use age::secrecy::{ExposeSecret as _, SecretString};
use rand::TryRng as _;
use shardkeep_types::{ActorId, InMemorySigner, SignerId};
use shardkeep_wire::{Reader, put_prefixed_u8};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::files;

/// First bytes of the plaintext.
const SECRETS_MAGIC: &[u8; 8] = b"shkp-pks";
/// The plaintext format version this build writes and reads.
const SECRETS_VERSION: u8 = 1;
/// Longest name (actor ids are at most 64 bytes).
const MAX_NAME_LEN: usize = 64;
/// Longest age identity string (`AGE-SECRET-KEY-1` and 59 bech32
/// characters is 74).
const MAX_AGE_IDENTITY_LEN: usize = 128;
/// Longest plaintext.
const MAX_PLAINTEXT_LEN: usize = 8 + 1 + 1 + MAX_NAME_LEN + 32 + 1 + MAX_AGE_IDENTITY_LEN;
/// Largest secrets file read (armored age around the plaintext).
const MAX_SECRETS_FILE_LEN: usize = 4096;
/// The scrypt work factor (log2 N) a secrets file is written with, and the
/// largest one opened: a planted file asking for more work is refused
/// instead of tying the machine up.
const SCRYPT_WORK_FACTOR: u8 = 18;

/// The environment variable naming a file (or `/dev/fd/N`) to read the
/// passphrase from instead of the terminal.
pub(crate) const PASSPHRASE_FILE_ENV: &str = "SHARDKEEP_PASSPHRASE_FILE";
/// Longest passphrase read from a passphrase file.
const MAX_PASSPHRASE_LEN: usize = 1024;

/// A person's secrets, decrypted. Never printed (see `Debug`), wiped on
/// drop.
pub(crate) struct PersonSecrets {
    pub(crate) person: ActorId,
    seed: Zeroizing<[u8; 32]>,
    age_identity: Option<age::x25519::Identity>,
}

impl fmt::Debug for PersonSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonSecrets")
            .field("person", &self.person)
            .field("age_identity", &self.age_identity.is_some())
            .finish_non_exhaustive()
    }
}

impl PersonSecrets {
    /// Fresh secrets for `person`: a signing key, and an age identity when
    /// `custodian`.
    ///
    /// # Errors
    /// [`Error::Randomness`].
    pub(crate) fn generate(person: ActorId, custodian: bool) -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::SysRng
            .try_fill_bytes(seed.as_mut_slice())
            .map_err(|_| Error::Randomness)?;
        Ok(Self {
            person,
            seed,
            age_identity: custodian.then(age::x25519::Identity::generate),
        })
    }

    /// The person's signing key (approvals, receipts, inventory proofs,
    /// recovery submissions).
    pub(crate) fn signer(&self) -> Result<InMemorySigner, Error> {
        let id = SignerId::new(self.person.as_str()).map_err(|_| Error::SecretsInvalid {
            path: "(secrets)".into(),
            reason: "the person's name is not a signer id".to_owned(),
        })?;
        Ok(InMemorySigner::from_seed(id, &self.seed))
    }

    /// The custodian's age identity.
    pub(crate) fn age_identity(&self) -> Result<&age::x25519::Identity, Error> {
        self.age_identity
            .as_ref()
            .ok_or_else(|| Error::NotACustodian(self.person.to_string()))
    }

    /// The plaintext encoding.
    fn encode(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let bad = |_| Error::SecretsInvalid {
            path: "(new secrets)".into(),
            reason: "a field is over its cap".to_owned(),
        };
        let mut out = Zeroizing::new(Vec::with_capacity(MAX_PLAINTEXT_LEN));
        out.extend_from_slice(SECRETS_MAGIC);
        out.push(SECRETS_VERSION);
        put_prefixed_u8(
            &mut out,
            "person",
            self.person.as_str().as_bytes(),
            MAX_NAME_LEN,
        )
        .map_err(bad)?;
        out.extend_from_slice(self.seed.as_slice());
        let identity = self
            .age_identity
            .as_ref()
            .map(age::x25519::Identity::to_string);
        let identity_bytes = identity
            .as_ref()
            .map_or(&[][..], |identity| identity.expose_secret().as_bytes());
        put_prefixed_u8(
            &mut out,
            "age_identity",
            identity_bytes,
            MAX_AGE_IDENTITY_LEN,
        )
        .map_err(bad)?;
        Ok(out)
    }

    /// Parses [`PersonSecrets::encode`]'s output.
    fn decode(plain: &[u8]) -> Result<Self, String> {
        let mut reader = Reader::new(plain);
        reader
            .magic_and_version("person secrets", SECRETS_MAGIC, SECRETS_VERSION)
            .map_err(|error| error.to_string())?;
        let person = reader
            .prefixed_u8("person", 1, MAX_NAME_LEN)
            .map_err(|error| error.to_string())?;
        let person = core::str::from_utf8(person)
            .ok()
            .and_then(|name| ActorId::new(name).ok())
            .ok_or("the person is not a valid actor id")?;
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(reader.take(32, "seed").map_err(|error| error.to_string())?);
        let identity = reader
            .prefixed_u8("age_identity", 0, MAX_AGE_IDENTITY_LEN)
            .map_err(|error| error.to_string())?;
        let age_identity = if identity.is_empty() {
            None
        } else {
            let text =
                core::str::from_utf8(identity).map_err(|_| "the age identity is not text")?;
            Some(
                age::x25519::Identity::from_str(text)
                    .map_err(|_| "the age identity does not parse")?,
            )
        };
        reader
            .finish("person secrets")
            .map_err(|error| error.to_string())?;
        Ok(Self {
            person,
            seed,
            age_identity,
        })
    }

    /// The secrets file's bytes: the plaintext encrypted under
    /// `passphrase`, ASCII-armored.
    ///
    /// # Errors
    /// [`Error::SecretsInvalid`] (a field over its cap), [`Error::Local`]
    /// when age fails.
    pub(crate) fn seal(&self, passphrase: SecretString) -> Result<Vec<u8>, Error> {
        let plain = self.encode()?;
        let mut recipient = age::scrypt::Recipient::new(passphrase);
        recipient.set_work_factor(SCRYPT_WORK_FACTOR);
        let failed = || Error::Encrypt("the secrets file");
        let encryptor =
            age::Encryptor::with_recipients(core::iter::once(&recipient as &dyn age::Recipient))
                .map_err(|_| failed())?;
        let seal = || -> std::io::Result<Vec<u8>> {
            let armor =
                age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor)?;
            let mut writer = encryptor.wrap_output(armor)?;
            writer.write_all(&plain)?;
            writer.finish()?.finish()
        };
        seal().map_err(|_| failed())
    }

    /// Opens the secrets file at `path` with `passphrase`.
    ///
    /// # Errors
    /// [`Error::ReadFile`], [`Error::FileTooLarge`],
    /// [`Error::WrongPassphrase`], [`Error::SecretsInvalid`].
    pub(crate) fn open(path: &Path, passphrase: SecretString) -> Result<Self, Error> {
        let invalid = |reason: String| Error::SecretsInvalid {
            path: path.to_owned(),
            reason,
        };
        let bytes = files::read_capped(path, "secrets file", MAX_SECRETS_FILE_LEN)?;
        let decryptor = age::Decryptor::new(age::armor::ArmoredReader::new(bytes.as_slice()))
            .map_err(|_| invalid("not an age file".to_owned()))?;
        if !decryptor.is_scrypt() {
            return Err(invalid("not passphrase-encrypted".to_owned()));
        }
        let mut identity = age::scrypt::Identity::new(passphrase);
        identity.set_max_work_factor(SCRYPT_WORK_FACTOR);
        let stream = decryptor
            .decrypt(core::iter::once(&identity as &dyn age::Identity))
            .map_err(|error| match error {
                age::DecryptError::ExcessiveWork { .. } => {
                    invalid("its scrypt work factor is above this build's".to_owned())
                }
                _ => Error::WrongPassphrase(path.to_owned()),
            })?;
        // Room for one byte over the cap, allocated once: the plaintext is
        // never copied into a buffer that is freed unwiped.
        let mut plain = Zeroizing::new(Vec::with_capacity(MAX_PLAINTEXT_LEN + 1));
        let cap = u64::try_from(MAX_PLAINTEXT_LEN + 1).unwrap_or(u64::MAX);
        stream
            .take(cap)
            .read_to_end(&mut plain)
            .map_err(|_| Error::WrongPassphrase(path.to_owned()))?;
        if plain.len() > MAX_PLAINTEXT_LEN {
            return Err(invalid("its plaintext is over the cap".to_owned()));
        }
        Self::decode(&plain).map_err(invalid)
    }
}

/// Reads a passphrase: from the file [`PASSPHRASE_FILE_ENV`] names when it
/// is set (one trailing newline dropped), otherwise from the terminal
/// without echo, asking twice when `confirm`. Never from the command line:
/// argv is readable by every user of the machine and lands in shell
/// history.
///
/// # Errors
/// [`Error::Passphrase`], [`Error::PassphraseMismatch`].
pub(crate) fn read_passphrase(prompt: &str, confirm: bool) -> Result<SecretString, Error> {
    if let Some(path) = std::env::var_os(PASSPHRASE_FILE_ENV) {
        let bytes = Zeroizing::new(
            files::read_capped(Path::new(&path), "passphrase", MAX_PASSPHRASE_LEN)
                .map_err(|error| Error::Passphrase(error.to_string()))?,
        );
        let text = core::str::from_utf8(&bytes)
            .map_err(|_| Error::Passphrase("the passphrase file is not UTF-8".to_owned()))?;
        let text = text
            .strip_suffix('\n')
            .map_or(text, |text| text.strip_suffix('\r').unwrap_or(text));
        if text.is_empty() {
            return Err(Error::Passphrase("the passphrase file is empty".to_owned()));
        }
        return Ok(SecretString::from(text));
    }
    let first = Zeroizing::new(
        rpassword::prompt_password(prompt).map_err(|error| Error::Passphrase(error.to_string()))?,
    );
    if first.is_empty() {
        return Err(Error::Passphrase("the passphrase is empty".to_owned()));
    }
    if confirm {
        let second = Zeroizing::new(
            rpassword::prompt_password("Again: ")
                .map_err(|error| Error::Passphrase(error.to_string()))?,
        );
        // Both are the person's own input, compared once at the terminal.
        if *first != *second {
            return Err(Error::PassphraseMismatch);
        }
    }
    // Copied into an exact-size secret box; `first` is wiped on drop.
    Ok(SecretString::from(first.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(custodian: bool) -> PersonSecrets {
        PersonSecrets::generate(ActorId::new("cust-1-contact").unwrap(), custodian).unwrap()
    }

    #[test]
    fn secrets_round_trip_through_the_file_with_the_right_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.age");
        let original = secrets(true);
        let sealed = original.seal(SecretString::from("correct horse")).unwrap();
        std::fs::write(&path, &sealed).unwrap();
        let opened = PersonSecrets::open(&path, SecretString::from("correct horse")).unwrap();
        assert_eq!(opened.person, original.person);
        assert_eq!(*opened.seed, *original.seed);
        assert_eq!(
            opened.age_identity().unwrap().to_public().to_string(),
            original.age_identity().unwrap().to_public().to_string()
        );
        assert!(matches!(
            PersonSecrets::open(&path, SecretString::from("wrong horse")),
            Err(Error::WrongPassphrase(_))
        ));
    }

    #[test]
    fn the_plaintext_refuses_trailing_bytes_and_other_magic() {
        let plain = secrets(false).encode().unwrap();
        assert!(PersonSecrets::decode(&plain).is_ok());
        let mut longer = plain.to_vec();
        longer.push(0);
        assert!(PersonSecrets::decode(&longer).is_err());
        let mut other = plain.to_vec();
        other[0] ^= 1;
        assert!(PersonSecrets::decode(&other).is_err());
        assert!(PersonSecrets::decode(&plain[..plain.len() - 1]).is_err());
    }

    /// A fixed age identity, so the encoding is pinned.
    const IDENTITY: &str =
        "AGE-SECRET-KEY-1GQ9778VQXMMJVE8SK7J6VT8UJ4HDQAJUVSFCWCM02D8GEWQ72PVQ2Y5J33";

    fn fixed() -> PersonSecrets {
        PersonSecrets {
            person: ActorId::new("cust-1").unwrap(),
            seed: Zeroizing::new([0x42; 32]),
            age_identity: Some(age::x25519::Identity::from_str(IDENTITY).unwrap()),
        }
    }

    /// The plaintext format is pinned: a change to it fails here.
    #[test]
    fn golden_plaintext() {
        let expected = concat!(
            "73686b702d706b73", // magic "shkp-pks"
            "01",               // version
            "06",
            "637573742d31", // "cust-1"
            "4242424242424242424242424242424242424242424242424242424242424242",
            "4a", // 74 bytes of age identity follow
        );
        let encoded = hex::encode(fixed().encode().unwrap());
        let identity = hex::encode(IDENTITY.as_bytes());
        assert_eq!(encoded, format!("{expected}{identity}"));
        let decoded = PersonSecrets::decode(&hex::decode(&encoded).unwrap()).unwrap();
        assert_eq!(decoded.person.as_str(), "cust-1");
        assert_eq!(*decoded.seed, [0x42; 32]);
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the parser, and whatever it accepts
        /// encodes back to the same bytes (one encoding per value).
        #[test]
        fn the_parser_accepts_only_canonical_plaintexts(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..220)) {
            if let Ok(decoded) = PersonSecrets::decode(&bytes) {
                proptest::prop_assert_eq!(decoded.encode().unwrap().to_vec(), bytes);
            }
        }

        /// Every person and seed round-trips, with or without an identity.
        #[test]
        fn plaintexts_round_trip(name in "[a-z0-9.:_-]{1,64}", seed in proptest::prelude::any::<[u8; 32]>(), custodian in proptest::prelude::any::<bool>()) {
            let original = PersonSecrets {
                person: ActorId::new(name.as_str()).unwrap(),
                seed: Zeroizing::new(seed),
                age_identity: custodian.then(|| age::x25519::Identity::from_str(IDENTITY).unwrap()),
            };
            let decoded = PersonSecrets::decode(&original.encode().unwrap()).unwrap();
            proptest::prop_assert_eq!(decoded.person, original.person);
            proptest::prop_assert_eq!(*decoded.seed, seed);
            proptest::prop_assert_eq!(decoded.age_identity.is_some(), custodian);
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let secrets = secrets(true);
        let shown = format!("{secrets:?}");
        assert!(!shown.contains(&hex::encode(*secrets.seed)));
        assert!(!shown.contains("AGE-SECRET-KEY"));
    }
}
