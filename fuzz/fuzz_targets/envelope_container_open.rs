//! Opening an age custodian container with a fixed identity, and decoding raw container contents, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_envelope::fuzzing::fuzz_container_open(data));
