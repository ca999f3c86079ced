//! Key-file parsing never panics, and whatever parses re-encodes to the
//! same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_kms::fuzzing::keyfile_parse(data));
