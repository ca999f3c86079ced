//! `.keydata.enc` files (first byte even) and keystore plaintexts encoded
//! then decoded (odd): never panic; round trips hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_keydata::fuzzing::keystore_load(data));
