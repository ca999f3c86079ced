//! A throwaway SoftHSM2 token for tests and benches (feature `softhsm`).
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, in `C_Initialize`, and this
//! workspace forbids `unsafe` (which `std::env::set_var` needs in edition
//! 2024). So each test runs in a child process of its own test binary,
//! started with `SOFTHSM2_CONF` pointing at a fresh temporary token
//! directory that `softhsm2-util --init-token` has initialised. Every test
//! therefore gets its own token; nothing touches the system's tokens.
//!
//! This module knows the token (its label and PINs) but no PKCS#11 API: the
//! crate depends on no crate of the workspace, so each caller opens the
//! token with its own provider.
#![allow(
    clippy::expect_used,
    reason = "test-only: a test without its token cannot run, and the panic is its failure"
)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Where Debian's `softhsm2` package installs the PKCS#11 module: the
/// default of [`module`] (the same path as shardkeep-kms's
/// `DEBIAN_SOFTHSM2_MODULE`, which its tests check).
pub const DEBIAN_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Overrides the module path (default: [`DEBIAN_MODULE`]).
pub const MODULE_ENV: &str = "SHARDKEEP_PKCS11_MODULE";
/// Set in the child process: the token is ready.
const CHILD_ENV: &str = "SHARDKEEP_KMS_SOFTHSM_CHILD";
/// The label of the test token.
pub const TOKEN_LABEL: &str = "shardkeep-test";
/// The test token's user PIN.
pub const USER_PIN: &str = "test-user-pin-0000";
/// The test token's security officer PIN.
pub const SO_PIN: &str = "test-so-pin-0000";

/// The PKCS#11 module: [`MODULE_ENV`] if set, else [`DEBIAN_MODULE`].
///
/// # Panics
/// When the module is not there, saying what to install.
#[must_use]
pub fn module() -> PathBuf {
    let module =
        std::env::var_os(MODULE_ENV).map_or_else(|| PathBuf::from(DEBIAN_MODULE), PathBuf::from);
    assert!(
        module.exists(),
        "SoftHSM2 PKCS#11 module not found at {}: install the Debian package `softhsm2` \
         (apt-get install softhsm2) or point {MODULE_ENV} at libsofthsm2.so",
        module.display()
    );
    module
}

/// Whether this process is a child with a token ready.
#[must_use]
pub fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// A temporary SoftHSM2 configuration with one initialised token, removed
/// when dropped.
#[derive(Debug)]
pub struct TokenDir {
    dir: tempfile::TempDir,
}

impl TokenDir {
    /// A fresh token directory and its configuration, the token
    /// initialised with [`TOKEN_LABEL`], [`SO_PIN`] and [`USER_PIN`].
    ///
    /// # Panics
    /// When the module or `softhsm2-util` is missing, or the token cannot
    /// be made.
    #[must_use]
    pub fn create() -> Self {
        let _ = module();
        let dir = tempfile::tempdir().expect("temporary token directory");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("create token directory");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("write softhsm2.conf");
        let token = Self { dir };
        let output = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", token.conf())
            .args(["--init-token", "--free", "--label", TOKEN_LABEL])
            .args(["--so-pin", SO_PIN, "--pin", USER_PIN])
            .output()
            .expect(
                "cannot run softhsm2-util: install the Debian package `softhsm2` \
                 (apt-get install softhsm2)",
            );
        assert!(
            output.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        token
    }

    /// The configuration file `SOFTHSM2_CONF` names.
    #[must_use]
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// This executable, re-run with `args` against this token.
    ///
    /// # Panics
    /// When the path of the running executable cannot be found.
    #[must_use]
    pub fn command(&self, args: &[String]) -> Command {
        let mut command = Command::new(std::env::current_exe().expect("current executable"));
        command
            .args(args)
            .env("SOFTHSM2_CONF", self.conf())
            .env(CHILD_ENV, "1");
        command
    }
}

/// Runs the test named `path` (`module_path!()::name`) in a child process
/// with a fresh token, and fails with the child's output if it fails. In the
/// child, runs `body`.
///
/// # Panics
/// When the token cannot be made, or the test fails in the child.
pub fn run_test(path: &str, body: impl FnOnce()) {
    if in_child() {
        body();
        return;
    }
    // Test names exclude the crate name that `module_path!` starts with.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    let token = TokenDir::create();
    let output: Output = token
        .command(&[
            name.to_owned(),
            "--exact".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
        ])
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} failed in its SoftHSM2 child process ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
}
