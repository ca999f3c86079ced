//! The four self-test peer messages (a sidecar reads requests, the
//! coordinator reads other nodes' answers: both cross a trust boundary).
//! Decoding never panics, and whatever decodes re-encodes to exactly its
//! input: one encoding per message.
#![no_main]

use shardkeep_keydata::{CommitRequest, NonceCommitments, SignRequest, SignatureShares};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(message) = CommitRequest::decode(data) {
        assert_eq!(
            message.encode().expect("a decoded commit request encodes"),
            data
        );
    }
    if let Ok(message) = NonceCommitments::decode(data) {
        assert_eq!(message.encode().expect("decoded commitments encode"), data);
    }
    if let Ok(message) = SignRequest::decode(data) {
        assert_eq!(
            message.encode().expect("a decoded sign request encodes"),
            data
        );
    }
    if let Ok(message) = SignatureShares::decode(data) {
        assert_eq!(
            message.encode().expect("decoded signature shares encode"),
            data
        );
    }
});
