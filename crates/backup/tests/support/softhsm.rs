//! A throwaway SoftHSM2 token for tests and benches.
//!
//! The same file as the kms crate's `tests/support/softhsm.rs`: a
//! published crate's package must hold its own tests, and the shared
//! test-support crate depends on no crate of this workspace.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, in `C_Initialize`, and this
//! workspace forbids `unsafe` (which `std::env::set_var` needs in edition
//! 2024). So each test runs in a child process of its own test binary,
//! started with `SOFTHSM2_CONF` pointing at a fresh temporary token
//! directory that `softhsm2-util --init-token` has initialised. Every test
//! therefore gets its own token; nothing touches the system's tokens.
#![allow(dead_code)] // shared by the pkcs11 tests and the bench, each using a part

use std::path::PathBuf;
use std::process::{Command, Output};

use shardkeep_kms::{DEBIAN_SOFTHSM2_MODULE, Pin, Pkcs11Config, Pkcs11Token};

/// Overrides the module path (default: Debian's).
pub(crate) const MODULE_ENV: &str = "SHARDKEEP_PKCS11_MODULE";
/// Set in the child process: the token is ready.
const CHILD_ENV: &str = "SHARDKEEP_KMS_SOFTHSM_CHILD";
pub(crate) const TOKEN_LABEL: &str = "shardkeep-test";
pub(crate) const USER_PIN: &str = "test-user-pin-0000";
pub(crate) const SO_PIN: &str = "test-so-pin-0000";

/// The PKCS#11 module, or a panic that says what to install.
pub(crate) fn module() -> PathBuf {
    let module = std::env::var_os(MODULE_ENV)
        .map_or_else(|| PathBuf::from(DEBIAN_SOFTHSM2_MODULE), PathBuf::from);
    assert!(
        module.exists(),
        "SoftHSM2 PKCS#11 module not found at {}: install the Debian package `softhsm2` \
         (apt-get install softhsm2) or point {MODULE_ENV} at libsofthsm2.so",
        module.display()
    );
    module
}

pub(crate) fn config(pin: &str) -> Pkcs11Config {
    Pkcs11Config::new(module(), TOKEN_LABEL, Pin::new(pin.to_owned()))
}

/// Opens the test token (in the child process).
pub(crate) fn open_token() -> Pkcs11Token {
    Pkcs11Token::open(config(USER_PIN)).expect("open the test token")
}

/// Whether this process is a child with a token ready.
pub(crate) fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// A temporary SoftHSM2 configuration with one initialised token.
pub(crate) struct TokenDir {
    dir: tempfile::TempDir,
}

impl TokenDir {
    pub(crate) fn new() -> Self {
        module();
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

    pub(crate) fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// This executable, re-run with `args` against this token.
    pub(crate) fn command(&self, args: &[String]) -> Command {
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
pub(crate) fn run_test(path: &str, body: impl FnOnce()) {
    if in_child() {
        body();
        return;
    }
    // Test names exclude the crate name that `module_path!` starts with.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    let token = TokenDir::new();
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
