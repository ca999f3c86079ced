#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod fsutil;
mod keyfile;
mod local;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod provider;
mod slot;
#[cfg(test)]
mod vectors;

pub use error::{Error, KeyFileError, KeyKind};
pub use keyfile::MAX_KEY_FILE_LEN;
pub use local::{KeyFileSigner, LocalKeyStore, LocalSlotKek};
#[cfg(feature = "pkcs11")]
pub use pkcs11::{
    DEBIAN_SOFTHSM2_MODULE, Pin, Pkcs11Config, Pkcs11Signer, Pkcs11SlotKek, Pkcs11Token,
};
pub use provider::{DestroyOutcome, SlotKekProvider};

/// Entry points for `cargo fuzz` (built with `--cfg fuzzing` only).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a key file; whatever parses must re-encode to the same bytes.
    pub fn keyfile_parse(data: &[u8]) {
        crate::keyfile::parse_and_reencode(data);
    }
}
