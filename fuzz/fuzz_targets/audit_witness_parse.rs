//! Witness parsing never panics, and what parses prints back to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_audit::fuzzing::witness_parse(data));
