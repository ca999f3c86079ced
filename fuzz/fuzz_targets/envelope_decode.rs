//! Envelope decoding (structure, re-encoding round trip, share rules,
//! `decode_verify`) never panics, and every parsed envelope re-encodes to
//! its input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_envelope::fuzzing::envelope_decode(data));
