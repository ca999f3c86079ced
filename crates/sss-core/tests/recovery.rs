//! Every t-subset recovers; random larger parameters recover from sampled
//! subsets; verified combine agrees with plain combine.
// Both curves are exercised side by side.
#![cfg(all(feature = "secp256k1", feature = "ed25519"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_sss_core::{
    Commitments, Curve, Ed25519, Secp256k1, Secret, Share, Threshold, combine, combine_verified,
    split,
};
use subtle::ConstantTimeEq;

/// Re-decodes shares so that a consuming combine can be run many times.
fn copies<C: Curve>(shares: &[Share<C>], pick: &[usize]) -> Vec<Share<C>> {
    pick.iter()
        .map(|&i| Share::from_bytes(shares[i].to_bytes().as_slice()).unwrap())
        .collect()
}

/// All `k`-element subsets of `0..n`, in lexicographic order.
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    (0..1u32 << n)
        .filter(|mask| mask.count_ones() as usize == k)
        .map(|mask| (0..n).filter(|i| mask >> i & 1 == 1).collect())
        .collect()
}

fn every_subset_recovers<C: Curve>() {
    let mut rng = ChaCha20Rng::from_seed([0x5a; 32]);
    let mut checked = 0;
    for n in 2..=7 {
        for t in 2..=n {
            let secret = Secret::<C>::random(&mut rng);
            let threshold = Threshold::new(t, n).unwrap();
            let (commitments, shares) = split(&secret, threshold, &mut rng).unwrap().into_parts();
            assert_eq!(commitments.points().len(), t);
            assert!(bool::from(
                commitments.public_key().ct_eq(&secret.public_point())
            ));
            for share in &shares {
                commitments.verify(share).unwrap();
            }
            // Exactly t shares, and every larger set too.
            for k in t..=n {
                for subset in subsets(n, k) {
                    let plain = combine(copies(&shares, &subset)).unwrap();
                    assert!(bool::from(plain.ct_eq(&secret)), "{t}-of-{n} {subset:?}");
                    let verified =
                        combine_verified(copies(&shares, &subset), &commitments).unwrap();
                    assert!(bool::from(verified.secret().ct_eq(&secret)));
                    assert!(verified.rejected().is_empty());
                    checked += 1;
                }
            }
            // Never fewer.
            for subset in subsets(n, t - 1) {
                assert!(combine(copies(&shares, &subset)).is_err());
            }
        }
    }
    // sum over n = 2..=7, t = 2..=n, k = t..=n of C(n, k): the loops ran in full.
    assert_eq!(checked, 522);
}

#[test]
fn every_subset_recovers_secp256k1() {
    every_subset_recovers::<Secp256k1>();
}

#[test]
fn every_subset_recovers_ed25519() {
    every_subset_recovers::<Ed25519>();
}

/// Recovery from a random subset of random size >= t, for larger parameters.
fn sampled_subset_recovers<C: Curve>(seed: [u8; 32], t: usize, extra: usize, picks: &[usize]) {
    let n = t + extra;
    let mut rng = ChaCha20Rng::from_seed(seed);
    let secret = Secret::<C>::random(&mut rng);
    let threshold = Threshold::new(t, n).unwrap();
    let (commitments, shares) = split(&secret, threshold, &mut rng).unwrap().into_parts();
    // Deterministic distinct subset of size t..=n from the picks.
    let mut order: Vec<usize> = (0..n).collect();
    for (i, p) in picks.iter().enumerate().take(n) {
        order.swap(i, i + p % (n - i));
    }
    let size = t + picks.first().copied().unwrap_or(0) % (extra + 1);
    let subset = &order[..size];
    let recovered = combine(copies(&shares, subset)).unwrap();
    assert!(bool::from(recovered.ct_eq(&secret)));
    let verified = combine_verified(copies(&shares, subset), &commitments).unwrap();
    assert!(bool::from(verified.secret().ct_eq(&secret)));
    // And one fewer than t never recovers.
    assert!(combine(copies(&shares, &subset[..t - 1])).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sampled_subsets_recover_secp256k1(
        seed in any::<[u8; 32]>(),
        t in 2usize..=40,
        extra in 0usize..=30,
        picks in proptest::collection::vec(any::<usize>(), 70),
    ) {
        sampled_subset_recovers::<Secp256k1>(seed, t, extra, &picks);
    }

    #[test]
    fn sampled_subsets_recover_ed25519(
        seed in any::<[u8; 32]>(),
        t in 2usize..=40,
        extra in 0usize..=30,
        picks in proptest::collection::vec(any::<usize>(), 70),
    ) {
        sampled_subset_recovers::<Ed25519>(seed, t, extra, &picks);
    }

    /// Share and commitment encodings round-trip exactly.
    #[test]
    fn encodings_round_trip(seed in any::<[u8; 32]>(), t in 2usize..=8, extra in 0usize..=4) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let threshold = Threshold::new(t, t + extra).unwrap();
        let secret = Secret::<Ed25519>::random(&mut rng);
        let (commitments, shares) = split(&secret, threshold, &mut rng).unwrap().into_parts();
        let bytes = commitments.to_bytes();
        let decoded = Commitments::<Ed25519>::from_bytes(threshold, &bytes).unwrap();
        prop_assert_eq!(&decoded, &commitments);
        prop_assert_eq!(decoded.split_id(), commitments.split_id());
        for share in &shares {
            let again = Share::<Ed25519>::from_bytes(share.to_bytes().as_slice()).unwrap();
            prop_assert!(bool::from(again.ct_eq(share)));
            prop_assert_eq!(again.split_id(), commitments.split_id());
        }
        let secret_bytes = secret.to_be_bytes();
        let again = Secret::<Ed25519>::from_be_bytes(&secret_bytes).unwrap();
        prop_assert!(bool::from(again.ct_eq(&secret)));
    }

    /// The largest parameters work end to end.
    #[test]
    fn full_width_split(seed in any::<[u8; 32]>()) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let threshold = Threshold::new(255, 255).unwrap();
        let secret = Secret::<Secp256k1>::random(&mut rng);
        let (commitments, shares) = split(&secret, threshold, &mut rng).unwrap().into_parts();
        let recovered = combine_verified(shares, &commitments).unwrap();
        prop_assert!(bool::from(recovered.secret().ct_eq(&secret)));
    }
}
