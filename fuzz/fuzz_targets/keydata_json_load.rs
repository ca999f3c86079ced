//! tss-lib `LocalPartySaveData` JSON: never panics; what parses writes back
//! to JSON that parses to equal data.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_keydata::fuzzing::json_load(data));
