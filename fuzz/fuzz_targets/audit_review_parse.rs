//! Audit review and review archive parsing never panics, and what parses
//! re-encodes to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_audit::fuzzing::review_parse(data));
