//! Share and commitment decoding, verification and both combines, on both
//! curves, never panic on arbitrary input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardkeep_sss_core::{
    Commitments, Curve, Ed25519, SHARE_LEN, Secp256k1, Share, Threshold, combine,
    combine_verified,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        exercise::<Secp256k1>(rest);
    } else {
        exercise::<Ed25519>(rest);
    }
});

/// Input: `t || n || commitments_len || commitments || shares (SHARE_LEN each)`.
fn exercise<C: Curve>(data: &[u8]) {
    let [t, n, commitments_len, rest @ ..] = data else {
        return;
    };
    let Ok(threshold) = Threshold::new(usize::from(*t), usize::from(*n)) else {
        return;
    };
    let split_at = usize::from(*commitments_len).min(rest.len());
    let (commitment_bytes, share_bytes) = rest.split_at(split_at);
    let commitments = Commitments::<C>::from_bytes(threshold, commitment_bytes);

    let decode = || {
        share_bytes
            .chunks(SHARE_LEN)
            .filter_map(|chunk| Share::<C>::from_bytes(chunk).ok())
            .collect::<Vec<_>>()
    };
    if let Ok(commitments) = &commitments {
        for share in decode() {
            let _ = commitments.verify(&share);
        }
        let _ = combine_verified(decode(), commitments);
        // Round trip: what decodes re-encodes to the same bytes.
        let again = Commitments::<C>::from_bytes(threshold, &commitments.to_bytes());
        assert!(again.is_ok_and(|c| &c == commitments));
    }
    for share in decode() {
        let bytes = share.to_bytes();
        let again = Share::<C>::from_bytes(bytes.as_slice()).expect("re-encoded share decodes");
        assert_eq!(again.to_bytes().as_slice(), bytes.as_slice());
    }
    let _ = combine(decode());
}
