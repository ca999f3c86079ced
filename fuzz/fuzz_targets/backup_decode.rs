//! Every decoder of input the backup service or a custodian receives
//! (approval requests and approvals, inventory challenges and proofs,
//! policies, session descriptors, recovery submissions) never panics, and
//! whatever decodes re-encodes to its input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeep_backup::fuzzing::decode(data));
