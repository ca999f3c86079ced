//! Share and commitment decoding, verification and the combines, on both
//! curves, never panic on arbitrary input; the robust combine names every
//! share it leaves out, once, and never returns a secret off `C_0`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardkeep_sss_core::{
    Commitments, Curve, Ed25519, Error, RejectedShare, SHARE_LEN, Secp256k1, Share, Threshold,
    combine, combine_verified, combine_verified_encoded,
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
        let decoded = decode();
        let count = decoded.len();
        check_robust(combine_verified(decoded, commitments), commitments, count);
        let chunks: Vec<&[u8]> = share_bytes.chunks(SHARE_LEN).collect();
        check_robust(
            combine_verified_encoded(&chunks, commitments),
            commitments,
            chunks.len(),
        );
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

/// What the robust combine promises for any input of `count` shares.
fn check_robust<C: Curve>(
    result: Result<shardkeep_sss_core::Recovery<C>, Error>,
    commitments: &Commitments<C>,
    count: usize,
) {
    let t = usize::from(commitments.threshold().t());
    let named_once = |rejected: &[RejectedShare]| {
        rejected.windows(2).all(|w| w[0].position < w[1].position)
            && rejected.iter().all(|r| r.position < count)
    };
    match result {
        Ok(recovery) => {
            assert!(count >= t);
            assert!(named_once(recovery.rejected()));
            assert!(count - recovery.rejected().len() >= t);
            // Public points: a plain comparison.
            assert_eq!(recovery.secret().public_point(), *commitments.public_key());
        }
        Err(Error::TooFewShares { got, needed }) => assert!(got == count && needed == t && got < t),
        Err(Error::TooFewValidShares {
            rejected,
            valid,
            needed,
        }) => {
            assert!(named_once(&rejected) && needed == t && valid < t);
            assert!(valid + rejected.len() <= count);
        }
        Err(other) => panic!("unexpected error from the robust combine: {other:?}"),
    }
}
