//! Fixed keys of the golden vectors and the fuzz targets. Compiled only for
//! tests and fuzzing (`cfg(any(test, fuzzing))`), never into a library or
//! binary that ships: `scripts/check-release-artifacts.sh` greps the
//! release artefacts for these bytes and fails if they are there.
//!
//! The seeds are printable and distinctive on purpose, so that a leak is
//! found by a byte search without false positives.

/// Seed of the envelope signing key of the golden vectors, which the fuzz
/// targets trust (so the vectors serve as seed corpus).
pub(crate) const FUZZ_SIGNER_SEED: [u8; 32] = *b"shardkeep fuzz signer seed 00001";
/// The signer id of the golden vectors and the fuzz targets.
pub(crate) const FUZZ_SIGNER_ID: &str = "server-signer-1";
/// Seed of the receipt key of the golden vectors' custodian, which the fuzz
/// targets register.
pub(crate) const FUZZ_CUSTODIAN_SEED: [u8; 32] = *b"shardkeep fuzz custodian seed 01";
/// The custodian of the golden vectors and the fuzz targets, at share
/// index 4.
pub(crate) const FUZZ_CUSTODIAN_ID: &str = "custodian-a";
/// The X25519 identity of the golden container vectors and the container
/// fuzz target (a throwaway key; its recipient is
/// `age14kvhregdypuq89epl8x9lscjjfjmf8eyye69vev9dmjzfy0c04estv9kp8`).
#[cfg(feature = "containers")]
pub(crate) const FUZZ_AGE_IDENTITY: &str =
    "AGE-SECRET-KEY-1KJMS7CKLKSM0WE6248TCS29HTPLYU9AD80NPDNG8EJ7YZMLD6QLQ3LF27R";
