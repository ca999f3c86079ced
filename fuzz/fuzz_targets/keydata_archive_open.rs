//! Sealed protocol archives (first byte even) and archive plaintexts sealed
//! then opened (odd): never panic; round trips hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_keydata::fuzzing::archive_open(data));
