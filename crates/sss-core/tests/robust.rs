//! The robust combine against malicious custodians: shares with forged
//! headers, forged values or forged copies of an existing index are named and
//! left out, and `t` honest shares still recover. The reference is always
//! the commitments the caller pinned, never a share.
// Both curves are exercised side by side.
#![cfg(all(feature = "secp256k1", feature = "ed25519"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

use std::collections::BTreeSet;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_sss_core::{
    Commitments, Curve, Ed25519, Error, Recovery, RejectReason, RejectedShare, SHARE_LEN,
    Secp256k1, Secret, Share, ShareIndex, Threshold, combine_verified, combine_verified_encoded,
    split,
};
use subtle::ConstantTimeEq;

fn setup<C: Curve>(seed: u8, t: usize, n: usize) -> (Secret<C>, Commitments<C>, Vec<Share<C>>) {
    setup_seeded(&[seed; 32], t, n)
}

fn setup_seeded<C: Curve>(
    seed: &[u8; 32],
    t: usize,
    n: usize,
) -> (Secret<C>, Commitments<C>, Vec<Share<C>>) {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(t, n).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    (secret, commitments, shares)
}

fn copy<C: Curve>(share: &Share<C>) -> Share<C> {
    Share::from_bytes(share.to_bytes().as_slice()).unwrap()
}

/// The share's encoding with byte `at` replaced by `f(byte)`, decoded again.
fn rewritten<C: Curve>(share: &Share<C>, at: usize, f: impl Fn(u8) -> u8) -> Share<C> {
    let mut bytes = share.to_bytes();
    bytes[at] = f(bytes[at]);
    Share::from_bytes(bytes.as_slice()).unwrap()
}

/// Honest shares 1..=3 of a 3-of-5 split with `bad` inserted at `position`.
fn three_honest_and<C: Curve>(
    shares: &[Share<C>],
    bad: Share<C>,
    position: usize,
) -> Vec<Share<C>> {
    let mut set: Vec<Share<C>> = shares[..3].iter().map(copy).collect();
    set.insert(position, bad);
    set
}

fn rejected(position: usize, index: u8, reason: RejectReason) -> RejectedShare {
    RejectedShare {
        position,
        index: ShareIndex::new(index),
        reason,
    }
}

fn one_forged_header_does_not_block_recovery<C: Curve>() {
    let (secret, commitments, shares) = setup::<C>(30, 3, 5);
    let forgeries = [
        (
            "split id byte flipped",
            rewritten(&shares[3], 4, |b| b ^ 1),
            4,
            RejectReason::WrongSplitId,
        ),
        (
            "last split id byte flipped",
            rewritten(&shares[3], 35, |b| b ^ 0x80),
            4,
            RejectReason::WrongSplitId,
        ),
        (
            "n rewritten",
            rewritten(&shares[3], 2, |_| 6),
            4,
            RejectReason::WrongThreshold { t: 3, n: 6 },
        ),
        (
            "t rewritten",
            rewritten(&shares[3], 1, |_| 4),
            4,
            RejectReason::WrongThreshold { t: 4, n: 5 },
        ),
        (
            "forged copy of index 2",
            rewritten(&shares[3], 3, |_| 2),
            2,
            RejectReason::DuplicateIndex,
        ),
        (
            "value of index 4 moved to index 5",
            rewritten(&shares[3], 3, |_| 5),
            5,
            RejectReason::FeldmanCheckFailed,
        ),
    ];
    for (what, forged, index, reason) in forgeries {
        for position in 0..=3 {
            let set = three_honest_and(&shares, copy(&forged), position);
            let recovery = combine_verified(set, &commitments)
                .unwrap_or_else(|e| panic!("{what} at {position}: {e:?}"));
            assert!(bool::from(recovery.secret().ct_eq(&secret)), "{what}");
            assert_eq!(
                recovery.rejected(),
                [rejected(position, index, reason)],
                "{what} at {position}"
            );
        }
    }
}

#[test]
fn one_forged_header_does_not_block_recovery_secp256k1() {
    one_forged_header_does_not_block_recovery::<Secp256k1>();
}

#[test]
fn one_forged_header_does_not_block_recovery_ed25519() {
    one_forged_header_does_not_block_recovery::<Ed25519>();
}

#[test]
fn forged_first_share_carrying_forged_commitments_is_rejected() {
    let (secret, pinned, shares) = setup::<Secp256k1>(31, 3, 5);
    // The attacker's own split: a share that verifies against the attacker's
    // commitments, handed in first.
    let (forged_secret, forged_commitments, forged_shares) = setup::<Secp256k1>(32, 3, 5);
    forged_commitments.verify(&forged_shares[4]).unwrap();
    let set = three_honest_and(&shares, copy(&forged_shares[4]), 0);
    let recovery = combine_verified(set, &pinned).unwrap();
    assert!(bool::from(recovery.secret().ct_eq(&secret)));
    assert!(!bool::from(recovery.secret().ct_eq(&forged_secret)));
    assert_eq!(
        recovery.rejected(),
        [rejected(0, 5, RejectReason::WrongSplitId)]
    );

    // The same share relabelled with the pinned split id: its value is off
    // the pinned polynomial.
    let mut bytes = forged_shares[4].to_bytes();
    bytes[4..36].copy_from_slice(pinned.split_id().as_bytes());
    let relabelled = Share::from_bytes(bytes.as_slice()).unwrap();
    let set = three_honest_and(&shares, relabelled, 0);
    let recovery = combine_verified(set, &pinned).unwrap();
    assert!(bool::from(recovery.secret().ct_eq(&secret)));
    assert_eq!(
        recovery.rejected(),
        [rejected(0, 5, RejectReason::FeldmanCheckFailed)]
    );

    // A whole forged set of t shares: nothing of it is used.
    let forged: Vec<_> = forged_shares[..3].iter().map(copy).collect();
    let error = combine_verified(forged, &pinned).unwrap_err();
    assert_eq!(
        error,
        Error::TooFewValidShares {
            rejected: (0..3u8)
                .map(|i| rejected(usize::from(i), i + 1, RejectReason::WrongSplitId))
                .collect(),
            valid: 0,
            needed: 3
        }
    );
}

#[test]
fn verified_copy_of_an_index_is_kept_once() {
    let (secret, commitments, shares) = setup::<Secp256k1>(33, 3, 5);
    let set = three_honest_and(&shares, copy(&shares[1]), 0);
    let recovery = combine_verified(set, &commitments).unwrap();
    assert!(bool::from(recovery.secret().ct_eq(&secret)));
    assert!(recovery.rejected().is_empty());
}

#[test]
fn forged_copy_is_rejected_whichever_comes_first() {
    let (secret, commitments, shares) = setup::<Ed25519>(34, 3, 5);
    let forged = rewritten(&shares[0], 3, |_| 2); // index 2 with index 1's value
    for (order, expected) in [
        (
            vec![
                copy(&forged),
                copy(&shares[1]),
                copy(&shares[2]),
                copy(&shares[0]),
            ],
            0,
        ),
        (
            vec![
                copy(&shares[1]),
                copy(&shares[2]),
                copy(&shares[0]),
                copy(&forged),
            ],
            3,
        ),
    ] {
        let recovery = combine_verified(order, &commitments).unwrap();
        assert!(bool::from(recovery.secret().ct_eq(&secret)));
        assert_eq!(
            recovery.rejected(),
            [rejected(expected, 2, RejectReason::DuplicateIndex)]
        );
    }
}

#[test]
fn too_few_good_shares_names_every_rejected_one() {
    let (_, commitments, shares) = setup::<Secp256k1>(35, 3, 5);
    let set = vec![
        copy(&shares[0]),
        rewritten(&shares[1], 10, |b| b ^ 4),
        rewritten(&shares[2], 2, |_| 7),
        rewritten(&shares[3], 3, |_| 1),
        copy(&shares[4]),
        rewritten(&shares[2], 67, |b| b ^ 1),
    ];
    let error = combine_verified(set, &commitments).unwrap_err();
    assert_eq!(
        error,
        Error::TooFewValidShares {
            rejected: vec![
                rejected(1, 2, RejectReason::WrongSplitId),
                rejected(2, 3, RejectReason::WrongThreshold { t: 3, n: 7 }),
                rejected(3, 1, RejectReason::DuplicateIndex),
                rejected(5, 3, RejectReason::FeldmanCheckFailed),
            ],
            valid: 2,
            needed: 3
        }
    );
    // The message names them too, and no share value.
    let message = error.to_string();
    assert!(message.contains("share #3 (index 1)"), "{message}");
    let value = hex::encode(shares[0].value_be_bytes().as_slice());
    assert!(!message.contains(&value[..16]));
}

#[test]
fn encoded_shares_with_undecodable_headers_are_rejected_one_by_one() {
    let (secret, commitments, shares) = setup::<Secp256k1>(36, 3, 5);
    let encode = |i: usize| shares[i].to_bytes().to_vec();
    let with = |i: usize, at: usize, byte: u8| {
        let mut bytes = encode(i);
        bytes[at] = byte;
        bytes
    };
    let secp_order =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
    let mut non_canonical = encode(3);
    non_canonical[36..].copy_from_slice(&secp_order);
    let encoded = vec![
        with(3, 0, 2),                     // ed25519 curve byte
        encode(0),                         // good
        with(3, 3, 0),                     // index zero
        with(3, 3, 6),                     // index above n
        encode(3)[..40].to_vec(),          // truncated
        encode(1),                         // good
        with(3, 1, 1),                     // t = 1: not even a valid threshold
        non_canonical,                     // value >= the group order
        with(3, 67, encode(3)[67] ^ 1),    // a valid value, but the wrong one
        with(3, 20, 0x55 ^ encode(3)[20]), // split id
        encode(4),                         // good
    ];
    let recovery = combine_verified_encoded(&encoded, &commitments).unwrap();
    assert!(bool::from(recovery.secret().ct_eq(&secret)));
    assert_eq!(
        recovery.rejected(),
        [
            rejected(0, 4, RejectReason::WrongCurve { got: 2 }),
            rejected(2, 0, RejectReason::IndexOutOfRange),
            rejected(3, 6, RejectReason::IndexOutOfRange),
            rejected(4, 4, RejectReason::WrongLength { got: 40 }),
            rejected(6, 4, RejectReason::WrongThreshold { t: 1, n: 5 }),
            rejected(7, 4, RejectReason::InvalidValue),
            rejected(8, 4, RejectReason::FeldmanCheckFailed),
            rejected(9, 4, RejectReason::WrongSplitId),
        ]
    );
    // Too short to carry an index at all.
    let short = [encode(0), encode(1), vec![1, 3, 5], encode(2)];
    let recovery = combine_verified_encoded(&short, &commitments).unwrap();
    assert_eq!(
        recovery.rejected(),
        [RejectedShare {
            position: 2,
            index: None,
            reason: RejectReason::WrongLength { got: 3 }
        }]
    );
}

// ------------------------------------------------------------ property ----

/// What a malicious custodian does to one share.
#[derive(Debug, Clone, Copy)]
enum Forgery {
    SplitIdByte { at: usize, xor: u8 },
    T { add: u8 },
    N { add: u8 },
    Index { add: u8 },
    ValueBit { bit: u8 },
    ExactCopy,
    ForeignSplit,
    Curve { add: u8 },
    Length { len: usize },
}

fn forgery() -> impl Strategy<Value = (Forgery, usize)> {
    let kind = prop_oneof![
        (0usize..32, 1u8..=255).prop_map(|(at, xor)| Forgery::SplitIdByte { at, xor }),
        (1u8..=255).prop_map(|add| Forgery::T { add }),
        (1u8..=255).prop_map(|add| Forgery::N { add }),
        (1u8..=255).prop_map(|add| Forgery::Index { add }),
        any::<u8>().prop_map(|bit| Forgery::ValueBit { bit }),
        Just(Forgery::ExactCopy),
        Just(Forgery::ForeignSplit),
        (1u8..=255).prop_map(|add| Forgery::Curve { add }),
        (0usize..2 * SHARE_LEN)
            .prop_filter("not the right length", |l| *l != SHARE_LEN)
            .prop_map(|len| Forgery::Length { len }),
    ];
    (kind, any::<usize>())
}

/// Applies `forgery` to the encoding of `source` (a share of the pinned
/// split); `foreign` is the same index's share of another split.
fn forge<C: Curve>(forgery: Forgery, source: &Share<C>, foreign: &Share<C>) -> Vec<u8> {
    let mut bytes = source.to_bytes().to_vec();
    match forgery {
        Forgery::SplitIdByte { at, xor } => bytes[4 + at] ^= xor,
        Forgery::T { add } => bytes[1] = bytes[1].wrapping_add(add),
        Forgery::N { add } => bytes[2] = bytes[2].wrapping_add(add),
        Forgery::Index { add } => bytes[3] = bytes[3].wrapping_add(add),
        Forgery::ValueBit { bit } => bytes[36 + usize::from(bit / 8)] ^= 1 << (bit % 8),
        Forgery::ExactCopy => {}
        Forgery::ForeignSplit => bytes = foreign.to_bytes().to_vec(),
        Forgery::Curve { add } => bytes[0] = bytes[0].wrapping_add(add),
        Forgery::Length { len } => bytes.resize(len, 0),
    }
    bytes
}

/// The rejection the specification demands for one forged encoding, or
/// `None` for a good share; `good` holds the indices of the good shares of
/// the whole input.
fn expected_reason<C: Curve>(
    forgery: Forgery,
    bytes: &[u8],
    threshold: Threshold,
    good: &BTreeSet<u8>,
) -> Option<RejectReason> {
    let off_polynomial = |index: u8| {
        if good.contains(&index) {
            RejectReason::DuplicateIndex
        } else {
            RejectReason::FeldmanCheckFailed
        }
    };
    Some(match forgery {
        Forgery::ExactCopy => return None,
        Forgery::SplitIdByte { .. } | Forgery::ForeignSplit => RejectReason::WrongSplitId,
        Forgery::T { .. } | Forgery::N { .. } => RejectReason::WrongThreshold {
            t: bytes[1],
            n: bytes[2],
        },
        Forgery::Curve { .. } => RejectReason::WrongCurve { got: bytes[0] },
        Forgery::Length { len } => RejectReason::WrongLength { got: len },
        Forgery::Index { .. } if threshold.share_index(bytes[3]).is_err() => {
            RejectReason::IndexOutOfRange
        }
        Forgery::ValueBit { .. } if Share::<C>::from_bytes(bytes).is_err() => {
            RejectReason::InvalidValue
        }
        Forgery::Index { .. } | Forgery::ValueBit { .. } => off_polynomial(bytes[3]),
    })
}

/// One encoded share handed in, and what was done to it (`None`: honest).
type Submission = (Vec<u8>, Option<Forgery>);

/// `t` (or `t - 1`) honest shares plus forged ones, shuffled: both combines
/// recover when `t` good shares are present and name exactly the forged
/// ones, with the reason the specification gives.
fn honest_shares_outvote_forgeries<C: Curve>(
    seed: [u8; 32],
    t: usize,
    extra: usize,
    short_one: bool,
    picks: &[usize],
    shuffle: &[u64],
    forgeries: &[(Forgery, usize)],
) -> Result<(), TestCaseError> {
    let n = t + extra;
    let (secret, commitments, shares) = setup_seeded::<C>(&seed, t, n);
    let mut other_seed = seed;
    other_seed[0] ^= 0xff;
    let (_, _, foreign) = setup_seeded::<C>(&other_seed, t, n);

    // A random subset of honest shares.
    let mut order: Vec<usize> = (0..n).collect();
    for (i, p) in picks.iter().enumerate().take(n) {
        order.swap(i, i + p % (n - i));
    }
    let honest = &order[..t - usize::from(short_one)];

    // The honest shares and the forged ones, then a shuffle.
    let mut input: Vec<Submission> = honest
        .iter()
        .map(|&i| (shares[i].to_bytes().to_vec(), None))
        .collect();
    for &(forgery, source) in forgeries {
        let source = source % n;
        input.push((
            forge(forgery, &shares[source], &foreign[source]),
            Some(forgery),
        ));
    }
    let mut keyed: Vec<(u64, Submission)> = shuffle.iter().copied().zip(input).collect();
    keyed.sort_by_key(|(key, _)| *key);
    let input: Vec<Submission> = keyed.into_iter().map(|(_, item)| item).collect();

    let threshold = commitments.threshold();
    let mut good: BTreeSet<u8> = honest.iter().map(|&i| shares[i].index().get()).collect();
    for (bytes, forgery) in &input {
        if matches!(forgery, Some(Forgery::ExactCopy)) {
            good.insert(bytes[3]);
        }
    }
    let expected: Vec<(usize, Option<RejectReason>)> = input
        .iter()
        .enumerate()
        .map(|(position, (bytes, forgery))| {
            let reason = forgery.and_then(|f| expected_reason::<C>(f, bytes, threshold, &good));
            (position, reason)
        })
        .collect();
    // The expected rejections, renumbered by `position_in_call` (`None`: the
    // share never reaches the call).
    let rejections = |position_in_call: &dyn Fn(usize) -> Option<usize>| -> Vec<RejectedShare> {
        expected
            .iter()
            .filter_map(|&(position, reason)| {
                Some(RejectedShare {
                    position: position_in_call(position)?,
                    index: input[position].0.get(3).copied().and_then(ShareIndex::new),
                    reason: reason?,
                })
            })
            .collect()
    };
    let check = |result: Result<Recovery<C>, Error>,
                 count: usize,
                 rejected: Vec<RejectedShare>|
     -> Result<(), TestCaseError> {
        if count < t {
            prop_assert_eq!(
                result.unwrap_err(),
                Error::TooFewShares {
                    got: count,
                    needed: t
                }
            );
        } else if good.len() >= t {
            let recovery = result.unwrap();
            prop_assert!(bool::from(recovery.secret().ct_eq(&secret)));
            prop_assert_eq!(recovery.rejected(), rejected.as_slice());
        } else {
            prop_assert_eq!(
                result.unwrap_err(),
                Error::TooFewValidShares {
                    rejected,
                    valid: good.len(),
                    needed: t
                }
            );
        }
        Ok(())
    };

    // Straight from the wire.
    let encoded: Vec<&[u8]> = input.iter().map(|(bytes, _)| bytes.as_slice()).collect();
    check(
        combine_verified_encoded(&encoded, &commitments),
        encoded.len(),
        rejections(&Some),
    )?;

    // Through `Share`: what does not decode never reaches the combine.
    let decodes: Vec<bool> = input
        .iter()
        .map(|(bytes, _)| Share::<C>::from_bytes(bytes).is_ok())
        .collect();
    let typed: Vec<Share<C>> = input
        .iter()
        .filter_map(|(bytes, _)| Share::from_bytes(bytes).ok())
        .collect();
    let count = typed.len();
    let typed_rejections =
        rejections(&|p| decodes[p].then(|| decodes[..p].iter().filter(|&&d| d).count()));
    check(
        combine_verified(typed, &commitments),
        count,
        typed_rejections,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn honest_shares_outvote_forgeries_secp256k1(
        seed in any::<[u8; 32]>(),
        t in 2usize..=5,
        extra in 0usize..=3,
        short_one in proptest::bool::weighted(0.2),
        picks in proptest::collection::vec(any::<usize>(), 8),
        shuffle in proptest::collection::vec(any::<u64>(), 16),
        forgeries in proptest::collection::vec(forgery(), 0..=8),
    ) {
        honest_shares_outvote_forgeries::<Secp256k1>(
            seed, t, extra, short_one, &picks, &shuffle, &forgeries,
        )?;
    }

    #[test]
    fn honest_shares_outvote_forgeries_ed25519(
        seed in any::<[u8; 32]>(),
        t in 2usize..=5,
        extra in 0usize..=3,
        short_one in proptest::bool::weighted(0.2),
        picks in proptest::collection::vec(any::<usize>(), 8),
        shuffle in proptest::collection::vec(any::<u64>(), 16),
        forgeries in proptest::collection::vec(forgery(), 0..=8),
    ) {
        honest_shares_outvote_forgeries::<Ed25519>(
            seed, t, extra, short_one, &picks, &shuffle, &forgeries,
        )?;
    }
}
