//! One test per rejection rule: every bad input is a typed error, never a
//! wrong secret and never a panic.
// Both curves are exercised side by side.
#![cfg(all(feature = "secp256k1", feature = "ed25519"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_sss_core::{
    Commitments, Curve, Ed25519, Error, RejectReason, RejectedShare, SHARE_LEN, Secp256k1, Secret,
    Share, ShareIndex, Threshold, combine, combine_verified, split,
};
use subtle::ConstantTimeEq;

const SECP_ORDER: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
const SECP_G_X: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
const ED_G_X: &str = "216936d3cd6e53fec0a4e231fdd6dc5c692cc7609525a7b2c9562d608f25d51a";
const ED_G_Y: &str = "6666666666666666666666666666666666666666666666666666666666666658";

fn setup<C: Curve>(seed: u8, t: usize, n: usize) -> (Secret<C>, Commitments<C>, Vec<Share<C>>) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(t, n).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    (secret, commitments, shares)
}

fn copy<C: Curve>(share: &Share<C>) -> Share<C> {
    Share::from_bytes(share.to_bytes().as_slice()).unwrap()
}

fn pick<C: Curve>(shares: &[Share<C>], indices: &[usize]) -> Vec<Share<C>> {
    indices.iter().map(|&i| copy(&shares[i])).collect()
}

/// The share with its value changed by one bit.
fn tampered<C: Curve>(share: &Share<C>) -> Share<C> {
    let mut value = share.value_be_bytes();
    value[31] ^= 1;
    Share::from_parts(share.threshold(), share.index(), share.split_id(), &value).unwrap()
}

fn rejected(position: usize, index: u8, reason: RejectReason) -> RejectedShare {
    RejectedShare {
        position,
        index: ShareIndex::new(index),
        reason,
    }
}

fn arr32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

#[test]
fn too_few_shares() {
    let (_, commitments, shares) = setup::<Secp256k1>(1, 3, 5);
    assert_eq!(
        combine(pick(&shares, &[0, 4])).unwrap_err(),
        Error::TooFewShares { got: 2, needed: 3 }
    );
    assert_eq!(
        combine_verified(pick(&shares, &[1, 2]), &commitments).unwrap_err(),
        Error::TooFewShares { got: 2, needed: 3 }
    );
    assert_eq!(
        combine::<Secp256k1>(Vec::new()).unwrap_err(),
        Error::TooFewShares { got: 0, needed: 2 }
    );
}

#[test]
fn duplicate_index() {
    let (secret, commitments, shares) = setup::<Secp256k1>(2, 3, 5);
    let duplicate = pick(&shares, &[0, 2, 2]);
    assert_eq!(
        combine(duplicate).unwrap_err(),
        Error::DuplicateIndex(ShareIndex::new(3).unwrap())
    );
    // With commitments, two copies that both verify are one share: kept
    // once, nothing rejected.
    let recovery = combine_verified(pick(&shares, &[4, 0, 4, 1]), &commitments).unwrap();
    assert!(bool::from(recovery.secret().ct_eq(&secret)));
    assert!(recovery.rejected().is_empty());
    // Copies alone do not make up the threshold.
    assert_eq!(
        combine_verified(pick(&shares, &[4, 0, 4]), &commitments).unwrap_err(),
        Error::TooFewValidShares {
            rejected: vec![],
            valid: 2,
            needed: 3
        }
    );
}

#[test]
fn zero_index() {
    let (_, _, shares) = setup::<Secp256k1>(3, 3, 5);
    let mut bytes = shares[0].to_bytes();
    bytes[3] = 0;
    assert_eq!(
        Share::<Secp256k1>::from_bytes(bytes.as_slice()).unwrap_err(),
        Error::IndexOutOfRange { index: 0, n: 5 }
    );
}

#[test]
fn index_over_n() {
    let (_, _, shares) = setup::<Secp256k1>(4, 3, 5);
    let mut bytes = shares[0].to_bytes();
    bytes[3] = 6;
    assert_eq!(
        Share::<Secp256k1>::from_bytes(bytes.as_slice()).unwrap_err(),
        Error::IndexOutOfRange { index: 6, n: 5 }
    );
    let share = &shares[0];
    assert_eq!(
        Share::<Secp256k1>::from_parts(
            share.threshold(),
            ShareIndex::new(200).unwrap(),
            share.split_id(),
            &share.value_be_bytes()
        )
        .unwrap_err(),
        Error::IndexOutOfRange { index: 200, n: 5 }
    );
}

#[test]
fn invalid_threshold_in_encoding() {
    let (_, _, shares) = setup::<Secp256k1>(5, 3, 5);
    for (t, n) in [(1, 5), (6, 5), (0, 0)] {
        let mut bytes = shares[0].to_bytes();
        bytes[1] = t;
        bytes[2] = n;
        assert_eq!(
            Share::<Secp256k1>::from_bytes(bytes.as_slice()).unwrap_err(),
            Error::InvalidThreshold {
                t: t.into(),
                n: n.into()
            }
        );
    }
}

#[test]
fn mixed_splits() {
    // Same parameters, different splits of the same secret.
    let (_, commitments_a, a) = setup::<Secp256k1>(6, 3, 5);
    let (_, _, b) = setup::<Secp256k1>(7, 3, 5);
    let mut mixed = pick(&a, &[0, 1]);
    mixed.push(copy(&b[2]));
    assert_eq!(combine(mixed).unwrap_err(), Error::MixedSplits);
    let mut mixed = pick(&a, &[0, 1]);
    mixed.push(copy(&b[2]));
    // With commitments, only the foreign share is refused.
    assert_eq!(
        combine_verified(mixed, &commitments_a).unwrap_err(),
        Error::TooFewValidShares {
            rejected: vec![rejected(2, 3, RejectReason::WrongSplitId)],
            valid: 2,
            needed: 3
        }
    );
}

#[test]
fn mixed_parameters() {
    let (_, _, a) = setup::<Secp256k1>(8, 3, 5);
    let (_, _, b) = setup::<Secp256k1>(8, 3, 6);
    let (_, _, c) = setup::<Secp256k1>(8, 2, 5);
    for other in [&b, &c] {
        let mut mixed = pick(&a, &[0, 1]);
        mixed.push(copy(&other[2]));
        assert_eq!(combine(mixed).unwrap_err(), Error::MixedSplits);
    }
}

#[test]
fn shares_of_another_split_than_the_commitments() {
    let (_, commitments_a, _) = setup::<Secp256k1>(9, 3, 5);
    let (_, commitments_c, c) = setup::<Secp256k1>(10, 3, 5);
    assert_eq!(
        commitments_a.verify(&c[1]).unwrap_err(),
        Error::SplitIdMismatch {
            index: ShareIndex::new(2).unwrap()
        }
    );
    assert_eq!(
        combine_verified(pick(&c, &[0, 1, 2]), &commitments_a).unwrap_err(),
        Error::TooFewValidShares {
            rejected: (0..3u8)
                .map(|i| rejected(usize::from(i), i + 1, RejectReason::WrongSplitId))
                .collect(),
            valid: 0,
            needed: 3
        }
    );
    // Other parameters entirely.
    let (_, _, d) = setup::<Secp256k1>(11, 2, 5);
    assert_eq!(commitments_c.verify(&d[0]).unwrap_err(), Error::MixedSplits);
    let wrong_threshold = RejectReason::WrongThreshold { t: 2, n: 5 };
    assert_eq!(
        combine_verified(pick(&d, &[0, 1, 2]), &commitments_c).unwrap_err(),
        Error::TooFewValidShares {
            rejected: vec![
                rejected(0, 1, wrong_threshold),
                rejected(1, 2, wrong_threshold),
                rejected(2, 3, wrong_threshold),
            ],
            valid: 0,
            needed: 3
        }
    );
}

#[test]
fn split_id_field_is_checked_against_the_commitments() {
    // A share whose split id field was rewritten is refused by verify even if
    // its value is right.
    let (_, commitments, shares) = setup::<Secp256k1>(12, 3, 5);
    let mut bytes = shares[0].to_bytes();
    bytes[4] ^= 0x80;
    let forged = Share::<Secp256k1>::from_bytes(bytes.as_slice()).unwrap();
    assert_eq!(
        commitments.verify(&forged).unwrap_err(),
        Error::SplitIdMismatch {
            index: ShareIndex::new(1).unwrap()
        }
    );
}

#[test]
fn non_canonical_scalar() {
    let (_, _, shares) = setup::<Secp256k1>(13, 3, 5);
    let mut bytes = shares[0].to_bytes();
    bytes[36..].copy_from_slice(&arr32(SECP_ORDER));
    assert_eq!(
        Share::<Secp256k1>::from_bytes(bytes.as_slice()).unwrap_err(),
        Error::NonCanonicalScalar
    );
    assert_eq!(
        Secret::<Secp256k1>::from_be_bytes(&[0xff; 32]).unwrap_err(),
        Error::NonCanonicalScalar
    );
    // ed25519: l = 2^252 + 27742317777372353535851937790883648493.
    let ed_order = arr32("1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed");
    assert_eq!(
        Secret::<Ed25519>::from_be_bytes(&ed_order).unwrap_err(),
        Error::NonCanonicalScalar
    );
}

#[test]
fn zero_scalar() {
    let (_, _, shares) = setup::<Ed25519>(14, 3, 5);
    let mut bytes = shares[0].to_bytes();
    bytes[36..].fill(0);
    assert_eq!(
        Share::<Ed25519>::from_bytes(bytes.as_slice()).unwrap_err(),
        Error::ZeroScalar
    );
    assert_eq!(
        Secret::<Secp256k1>::from_be_bytes(&[0; 32]).unwrap_err(),
        Error::ZeroScalar
    );
}

#[test]
fn wrong_lengths() {
    let (_, commitments, shares) = setup::<Secp256k1>(15, 3, 5);
    let bytes = shares[0].to_bytes();
    assert_eq!(
        Share::<Secp256k1>::from_bytes(&bytes[..SHARE_LEN - 1]).unwrap_err(),
        Error::WrongLength {
            expected: SHARE_LEN,
            got: SHARE_LEN - 1
        }
    );
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(
        Share::<Secp256k1>::from_bytes(&long).unwrap_err(),
        Error::WrongLength {
            expected: SHARE_LEN,
            got: SHARE_LEN + 1
        }
    );
    let encoded = commitments.to_bytes();
    let threshold = commitments.threshold();
    assert_eq!(
        Commitments::<Secp256k1>::from_bytes(threshold, &encoded[..encoded.len() - 1]).unwrap_err(),
        Error::WrongLength {
            expected: 99,
            got: 98
        }
    );
    assert_eq!(
        Commitments::<Secp256k1>::from_bytes(threshold, &encoded[..66]).unwrap_err(),
        Error::CommitmentCount {
            expected: 3,
            got: 2
        }
    );
    let mut more = encoded.clone();
    more.extend_from_slice(&encoded[..33]);
    assert_eq!(
        Commitments::<Secp256k1>::from_bytes(threshold, &more).unwrap_err(),
        Error::CommitmentCount {
            expected: 3,
            got: 4
        }
    );
}

#[test]
fn curve_mismatch() {
    let (_, _, shares) = setup::<Secp256k1>(16, 3, 5);
    assert_eq!(
        Share::<Ed25519>::from_bytes(shares[0].to_bytes().as_slice()).unwrap_err(),
        Error::CurveMismatch {
            expected: shardkeep_sss_core::CurveId::Ed25519,
            got: 1
        }
    );
}

#[test]
fn bad_secp256k1_points() {
    let mut not_on_curve = [0u8; 33];
    not_on_curve[0] = 2;
    not_on_curve[32] = 5; // x = 5: x^3 + 7 is not a square mod p
    let mut x_above_p = [0xffu8; 33];
    x_above_p[0] = 2;
    let mut bad_prefix = [0u8; 33];
    bad_prefix[0] = 4;
    bad_prefix[1..].copy_from_slice(&arr32(SECP_G_X));
    for bytes in [not_on_curve, x_above_p, bad_prefix] {
        assert_eq!(
            Secp256k1::decode_point(&bytes).unwrap_err(),
            Error::InvalidPoint
        );
    }
    assert_eq!(
        Secp256k1::decode_point(&[0u8; 33]).unwrap_err(),
        Error::IdentityPoint
    );
    assert_eq!(
        Secp256k1::decode_point(&[2u8; 32]).unwrap_err(),
        Error::WrongLength {
            expected: 33,
            got: 32
        }
    );
    // Inside a commitment set, a bad point refuses the whole set.
    let (_, commitments, _) = setup::<Secp256k1>(17, 3, 5);
    let mut encoded = commitments.to_bytes();
    encoded[33..66].copy_from_slice(&not_on_curve);
    assert_eq!(
        Commitments::<Secp256k1>::from_bytes(commitments.threshold(), &encoded).unwrap_err(),
        Error::InvalidPoint
    );
}

#[test]
fn secp256k1_affine_points() {
    let g = Secp256k1::decode_point(&{
        let mut b = [2u8; 33];
        b[1..].copy_from_slice(&arr32(SECP_G_X));
        b
    })
    .unwrap();
    let y = arr32("483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8");
    assert_eq!(
        Secp256k1::point_from_affine_be(&arr32(SECP_G_X), &y).unwrap(),
        g
    );
    let mut y_off = y;
    y_off[31] ^= 1;
    assert_eq!(
        Secp256k1::point_from_affine_be(&arr32(SECP_G_X), &y_off).unwrap_err(),
        Error::InvalidPoint
    );
}

#[test]
fn small_order_and_torsion_ed25519_points_are_refused() {
    for (order_index, torsion) in EIGHT_TORSION.iter().enumerate() {
        let encoded = torsion.compress().to_bytes();
        let expected = if order_index == 0 {
            Error::IdentityPoint
        } else {
            Error::TorsionPoint
        };
        assert_eq!(Ed25519::decode_point(&encoded).unwrap_err(), expected);
        // A prime-order point plus a torsion component is refused too.
        if order_index > 0 {
            let mixed = (ED25519_BASEPOINT_POINT + torsion).compress().to_bytes();
            assert_eq!(
                Ed25519::decode_point(&mixed).unwrap_err(),
                Error::TorsionPoint
            );
        }
    }
    // In a commitment set.
    let (_, commitments, _) = setup::<Ed25519>(18, 2, 3);
    let mut encoded = commitments.to_bytes();
    encoded[32..].copy_from_slice(&EIGHT_TORSION[1].compress().to_bytes());
    assert_eq!(
        Commitments::<Ed25519>::from_bytes(commitments.threshold(), &encoded).unwrap_err(),
        Error::TorsionPoint
    );
}

#[test]
fn non_canonical_and_off_curve_ed25519_points() {
    // y = p (non-canonical encoding of y = 0) and y = 2^255 - 1.
    let mut y_is_p = arr32("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed");
    y_is_p.reverse();
    let all_ones = {
        let mut b = [0xffu8; 32];
        b[31] = 0x7f;
        b
    };
    // y = 2 is not the y of any curve point.
    let mut y_two = [0u8; 32];
    y_two[0] = 2;
    for bytes in [y_is_p, all_ones, y_two] {
        assert_eq!(
            Ed25519::decode_point(&bytes).unwrap_err(),
            Error::InvalidPoint
        );
    }
    // The identity with the sign bit set (x = 0 "negative") is non-canonical.
    let mut neg_identity = [0u8; 32];
    neg_identity[0] = 1;
    neg_identity[31] = 0x80;
    assert_eq!(
        Ed25519::decode_point(&neg_identity).unwrap_err(),
        Error::InvalidPoint
    );
}

#[test]
fn ed25519_affine_points() {
    let g = Ed25519::point_from_affine_be(&arr32(ED_G_X), &arr32(ED_G_Y)).unwrap();
    assert_eq!(g, ED25519_BASEPOINT_POINT);
    let mut x_off = arr32(ED_G_X);
    x_off[31] ^= 2;
    assert_eq!(
        Ed25519::point_from_affine_be(&x_off, &arr32(ED_G_Y)).unwrap_err(),
        Error::InvalidPoint
    );
    // The point of order 2 is (0, -1).
    let mut minus_one = arr32("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffec");
    assert_eq!(
        Ed25519::point_from_affine_be(&[0; 32], &minus_one).unwrap_err(),
        Error::TorsionPoint
    );
    minus_one[0] = 0xff; // y >= p
    assert_eq!(
        Ed25519::point_from_affine_be(&[0; 32], &minus_one).unwrap_err(),
        Error::InvalidPoint
    );
}

#[test]
fn tampered_share_is_caught_by_verify() {
    let (_, commitments, shares) = setup::<Secp256k1>(19, 3, 5);
    let bad = tampered(&shares[3]);
    assert_eq!(
        commitments.verify(&bad).unwrap_err(),
        Error::ShareVerification {
            index: ShareIndex::new(4).unwrap()
        }
    );
}

fn robust_combine_names_bad_shares<C: Curve>() {
    let (secret, commitments, shares) = setup::<C>(20, 3, 5);
    // Four shares, one tampered: recovered from the other three, culprit named.
    let mut four = pick(&shares, &[0, 1, 2]);
    four.insert(1, tampered(&shares[4]));
    let recovery = combine_verified(four, &commitments).unwrap();
    assert!(bool::from(recovery.secret().ct_eq(&secret)));
    assert_eq!(
        recovery.rejected(),
        [rejected(1, 5, RejectReason::FeldmanCheckFailed)]
    );

    // Plain combine of the same set silently yields a wrong secret; that is
    // why combine_verified exists.
    let mut four = pick(&shares, &[0, 1, 2]);
    four.push(tampered(&shares[4]));
    assert!(!bool::from(combine(four).unwrap().ct_eq(&secret)));

    // Two tampered out of four: too few good ones left, both named.
    let five = vec![
        copy(&shares[0]),
        tampered(&shares[1]),
        copy(&shares[2]),
        tampered(&shares[3]),
    ];
    assert_eq!(
        combine_verified(five, &commitments).unwrap_err(),
        Error::TooFewValidShares {
            rejected: vec![
                rejected(1, 2, RejectReason::FeldmanCheckFailed),
                rejected(3, 4, RejectReason::FeldmanCheckFailed),
            ],
            valid: 2,
            needed: 3
        }
    );
}

#[test]
fn robust_combine_names_bad_shares_secp256k1() {
    robust_combine_names_bad_shares::<Secp256k1>();
}

#[test]
fn robust_combine_names_bad_shares_ed25519() {
    robust_combine_names_bad_shares::<Ed25519>();
}

#[test]
fn debug_output_redacts_secrets() {
    let (secret, _, shares) = setup::<Secp256k1>(21, 3, 5);
    assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    let value_hex = hex::encode(shares[0].value_be_bytes().as_slice());
    let debug = format!("{:?}", shares[0]);
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(!debug.contains(&value_hex[..16]), "{debug}");
    let errors = format!("{:?}", combine(pick(&shares, &[0])).unwrap_err());
    assert!(!errors.contains(&value_hex[..16]));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

    /// Whatever decodes is the canonical encoding of its point: one point,
    /// one encoding (the decoders check bytes instead of re-encoding).
    #[test]
    fn decoded_points_are_canonical(bytes in proptest::array::uniform32(proptest::prelude::any::<u8>()), prefix in 0u8..=4) {
        if let Ok(point) = Ed25519::decode_point(&bytes) {
            proptest::prop_assert_eq!(point.compress().to_bytes(), bytes);
        }
        // Small-order y values with the sign bit flipped, and y >= p, must
        // never decode (they would be second encodings).
        let mut secp = [0u8; 33];
        secp[0] = prefix;
        secp[1..].copy_from_slice(&bytes);
        if let Ok(point) = Secp256k1::decode_point(&secp) {
            use group::GroupEncoding;
            let encoded = point.to_bytes();
            proptest::prop_assert_eq!(encoded.as_slice(), &secp[..]);
        }
    }

    /// Points of the group always decode from their encoding.
    #[test]
    fn encoded_points_decode(scalar_bytes in proptest::array::uniform32(proptest::prelude::any::<u8>())) {
        use group::GroupEncoding;
        let mut seed = scalar_bytes;
        seed[0] &= 0x0f;
        if let Ok(secret) = Secret::<Ed25519>::from_be_bytes(&seed) {
            let p = secret.public_point();
            proptest::prop_assert_eq!(Ed25519::decode_point(&p.to_bytes()).unwrap(), p);
        }
        if let Ok(secret) = Secret::<Secp256k1>::from_be_bytes(&scalar_bytes) {
            let p = secret.public_point();
            proptest::prop_assert_eq!(Secp256k1::decode_point(p.to_bytes().as_slice()).unwrap(), p);
        }
    }
}
