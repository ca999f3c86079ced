//! Entry points of the cargo-fuzz targets in `fuzz/`, compiled only with
//! `--cfg fuzzing` (cargo-fuzz sets it); not part of the API. One function
//! per target: it parses arbitrary bytes, re-encodes what parses and
//! asserts the round trip, so a panic is a finding.

use crate::keyfile::KeyFile;

/// Target `kms_keyfile_parse`: whatever parses re-encodes to the same
/// bytes (one encoding per key file).
///
/// # Panics
/// When a parsed key file re-encodes differently.
pub fn keyfile_parse(data: &[u8]) {
    if let Ok(file) = KeyFile::parse(data) {
        assert_eq!(
            file.encode().as_slice(),
            data,
            "key file re-encodes differently"
        );
    }
}
