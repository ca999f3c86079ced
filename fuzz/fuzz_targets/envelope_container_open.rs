//! Opening an age custodian container with a fixed identity, and decoding
//! raw container contents, never panic; both openers agree.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_envelope::fuzzing::container_open(data));
