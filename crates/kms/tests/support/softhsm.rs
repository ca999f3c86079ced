//! The shared throwaway SoftHSM2 token (shardkeep-test-support's
//! `softhsm`, re-exported here), and what only this crate can add to it:
//! its configuration and the token opened with this crate's provider.
#![allow(dead_code)] // shared by the pkcs11 tests and the bench, each using a part

pub(crate) use shardkeep_test_support::softhsm::*;

use shardkeep_kms::{Pin, Pkcs11Config, Pkcs11Token};

/// The test token's configuration, with `pin`.
pub(crate) fn config(pin: &str) -> Pkcs11Config {
    Pkcs11Config::new(module(), TOKEN_LABEL, Pin::new(pin.to_owned()))
}

/// Opens the test token (in the child process).
pub(crate) fn open_token() -> Pkcs11Token {
    Pkcs11Token::open(config(USER_PIN)).expect("open the test token")
}
