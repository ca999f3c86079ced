//! Audit record decoding never panics, and what decodes re-encodes to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_audit::fuzzing::record_decode(data));
