#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod fsutil;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
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
pub use provider::{
    DestroyOutcome, DestroyReport, FINGERPRINT_LEN, KekPin, ShredMethod, SlotKekProvider,
};

#[cfg(test)]
mod tests {
    /// Keys live in this crate: the master and slot KEKs are expanded by
    /// AES-GCM-SIV and hashed into fingerprints. Wiping those states on drop
    /// must not depend on some other crate of the build enabling the
    /// `zeroize` features.
    #[test]
    fn hash_states_that_see_keys_are_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<sha2::Sha256>();
        // The AES key schedule and POLYVAL key inside each AES-GCM-SIV
        // instance (the master and slot KEKs are expanded into them).
        wiped_on_drop::<aes::Aes256>();
        // polyval's `zeroize` feature wipes it in `Drop` without the
        // marker trait, so the manifest is what shows it is on.
    }

    /// AES-GCM-SIV's and POLYVAL's `zeroize` features (wiping the keys
    /// they derive or hold) add no trait to check at compile time; check
    /// the manifest.
    #[test]
    fn the_manifest_enables_zeroize_for_crypto_that_sees_keys() {
        let manifest = include_str!("../Cargo.toml");
        for dependency in ["aes-gcm-siv", "aes", "polyval", "sha2"] {
            let line = manifest
                .lines()
                .find(|line| line.starts_with(&format!("{dependency} =")))
                .unwrap_or_default();
            assert!(
                line.contains("features = [\"zeroize\"]"),
                "{dependency} is used without its zeroize feature: {line:?}"
            );
        }
    }
}
