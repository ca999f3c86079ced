//! Receipt decoding (structure, re-encoding round trip, verification) never
//! panics, and every parsed receipt re-encodes to its input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_envelope::fuzzing::receipt_decode(data));
