//! Known-answer vectors in `tests/data/`: `pass/` pins the split (seed ->
//! secret, commitments, split id, shares) and the encodings; `robust/` pins
//! recoveries from sets with forged shares (the secret, and every rejected
//! share with its reason); `fail/` holds one file per rejection rule with the
//! error it must produce (and, for a verified combine, every rejected share).
//! All sets are regenerated here and compared with the files, so any drift in
//! encoding, arithmetic or rejection rules fails this test. The vectors have
//! no body: every input is a header (`share:` once per share, in order).
//!
//! To rewrite the files after a deliberate format change, regenerate every
//! vector of the workspace (see `crates/test-support/README.md`):
//! `SHARDKEEP_REGENERATE_VECTORS=1 cargo test --workspace --all-features -- golden`
#![cfg(all(feature = "secp256k1", feature = "ed25519"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_sss_core::{
    Commitments, Curve, CurveId, Ed25519, Error, Recovery, RejectedShare, SHARE_LEN, Secp256k1,
    Secret, Share, Threshold, combine, combine_verified, combine_verified_encoded, split,
};
use shardkeep_test_support::{GoldenDir, Vector, data_dir, read_dir};
use subtle::ConstantTimeEq;

fn vector_dir(kind: &str) -> std::path::PathBuf {
    data_dir(env!("CARGO_MANIFEST_DIR"), kind)
}

fn threshold(v: &Vector) -> Threshold {
    Threshold::new(v.value("t").unwrap(), v.value("n").unwrap()).unwrap()
}

/// Generates every vector of `kind` (comparing them with the stored files,
/// or rewriting those), then reads back what is stored.
fn golden(kind: &str, vectors: impl IntoIterator<Item = (String, Vector)>) -> Vec<Vector> {
    let mut dir = GoldenDir::new(vector_dir(kind));
    for (name, vector) in vectors {
        dir.add(&name, &vector);
    }
    dir.finish().unwrap();
    read_dir(&vector_dir(kind)).unwrap()
}

// ---------------------------------------------------------------- pass ----

const PASS: [(&str, CurveId, usize, usize, u8); 4] = [
    ("secp256k1_3of5", CurveId::Secp256k1, 3, 5, 0x01),
    ("secp256k1_2of2", CurveId::Secp256k1, 2, 2, 0x02),
    ("ed25519_3of5", CurveId::Ed25519, 3, 5, 0x03),
    ("ed25519_4of7", CurveId::Ed25519, 4, 7, 0x04),
];

fn generate_pass<C: Curve>(t: usize, n: usize, seed: [u8; 32]) -> Vector {
    let mut rng = ChaCha20Rng::from_seed(seed);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(t, n).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let mut v = Vector::new("ok")
        .comment("seed -> ChaCha20Rng; secret = Secret::random(rng); split(secret, t-of-n, rng)")
        .header("curve", C::ID)
        .header("t", t)
        .header("n", n)
        .hex("seed", seed)
        .hex("secret", secret.to_be_bytes().as_slice())
        .header("split-id", commitments.split_id())
        .hex("commitments", commitments.to_bytes());
    for share in &shares {
        v = v.hex("share", share.to_bytes().as_slice());
    }
    v
}

/// Decodes a stored pass vector and checks it without the generator.
fn check_pass<C: Curve>(v: &Vector) {
    let threshold = threshold(v);
    let commitments =
        Commitments::<C>::from_bytes(threshold, &v.hex_value("commitments").unwrap()).unwrap();
    assert_eq!(
        commitments.split_id().to_string(),
        v.get("split-id").unwrap()
    );
    assert_eq!(
        hex::encode(commitments.to_bytes()),
        v.get("commitments").unwrap()
    );
    let secret = Secret::<C>::from_be_bytes(&v.hex_array("secret").unwrap()).unwrap();
    assert!(bool::from(
        commitments.public_key().ct_eq(&secret.public_point())
    ));
    let decode = || -> Vec<Share<C>> {
        v.hex_all("share")
            .unwrap()
            .iter()
            .map(|s| Share::from_bytes(s).unwrap())
            .collect()
    };
    for share in decode() {
        commitments.verify(&share).unwrap();
        assert_eq!(share.split_id(), commitments.split_id());
    }
    assert_eq!(v.all("share").count(), usize::from(threshold.n()));
    let last_t: Vec<Share<C>> = decode()
        .into_iter()
        .skip(usize::from(threshold.n() - threshold.t()))
        .collect();
    assert!(bool::from(combine(last_t).unwrap().ct_eq(&secret)));
    let recovery = combine_verified(decode(), &commitments).unwrap();
    assert!(bool::from(recovery.secret().ct_eq(&secret)));
}

#[test]
fn golden_pass_vectors() {
    let stored = golden(
        "pass",
        PASS.map(|(name, curve, t, n, seed_byte)| {
            let vector = match curve {
                CurveId::Secp256k1 => generate_pass::<Secp256k1>(t, n, [seed_byte; 32]),
                CurveId::Ed25519 => generate_pass::<Ed25519>(t, n, [seed_byte; 32]),
            };
            (name.to_owned(), vector)
        }),
    );
    assert_eq!(stored.len(), PASS.len());
    for v in &stored {
        match v.get("curve").unwrap() {
            "secp256k1" => check_pass::<Secp256k1>(v),
            "ed25519" => check_pass::<Ed25519>(v),
            other => panic!("{}: unknown curve {other}", v.file()),
        }
    }
}

// -------------------------------------------------------------- robust ----

/// Recoveries from sets with forged shares: name, curve, operation, seed.
const ROBUST: [(&str, CurveId, &str, u8); 2] = [
    (
        "secp256k1_3of5_forged_headers",
        CurveId::Secp256k1,
        "combine_verified",
        0x20,
    ),
    (
        "ed25519_3of5_undecodable",
        CurveId::Ed25519,
        "combine_verified_encoded",
        0x21,
    ),
];

fn generate_robust<C: Curve>(operation: &str, seed: [u8; 32]) -> Vector {
    let mut rng = ChaCha20Rng::from_seed(seed);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(3, 5).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let s: Vec<Vec<u8>> = shares.iter().map(|s| s.to_bytes().to_vec()).collect();
    let with = |share: &[u8], at: usize, byte: u8| {
        let mut v = share.to_vec();
        v[at] = byte;
        v
    };
    // Each share with the rejection the rules demand (`index reason`), or
    // `None` for a share that must be used.
    let set: Vec<(Vec<u8>, Option<&str>)> = if operation == "combine_verified" {
        vec![
            // Split id byte flipped, handed in first.
            (with(&s[4], 4, s[4][4] ^ 1), Some("5 WrongSplitId")),
            (s[0].clone(), None),
            (with(&s[3], 2, 6), Some("4 WrongThreshold { t: 3, n: 6 }")),
            (s[1].clone(), None),
            // Index 5's value under index 2, which a good share holds.
            (with(&s[4], 3, 2), Some("2 DuplicateIndex")),
            // A verified copy: kept once, not rejected.
            (s[0].clone(), None),
            (flip_value(&s[3]), Some("4 FeldmanCheckFailed")),
            (s[2].clone(), None),
        ]
    } else {
        let mut non_canonical = s[4].clone();
        non_canonical[36..].fill(0xff);
        vec![
            (
                with(&s[0], 0, CurveId::Secp256k1.to_u8()),
                Some("1 WrongCurve { got: 1 }"),
            ),
            (s[0].clone(), None),
            (with(&s[1], 3, 9), Some("9 IndexOutOfRange")),
            (s[1].clone(), None),
            (
                s[3][..SHARE_LEN - 1].to_vec(),
                Some("4 WrongLength { got: 67 }"),
            ),
            (non_canonical, Some("5 InvalidValue")),
            (s[3].clone(), None),
        ]
    };
    let mut v = Vector::new("ok")
        .comment("seed -> ChaCha20Rng; secret = Secret::random(rng); split(secret, 3-of-5, rng)")
        .comment("the operation recovers the secret from the shares, rejecting exactly these")
        .header("curve", C::ID)
        .header("t", 3)
        .header("n", 5)
        .header("operation", operation)
        .hex("seed", seed)
        .hex("secret", secret.to_be_bytes().as_slice())
        .hex("commitments", commitments.to_bytes());
    for (share, _) in &set {
        v = v.hex("share", share);
    }
    for (position, (_, rejection)) in set.iter().enumerate() {
        if let Some(rejection) = rejection {
            v = v.header("rejected", format!("{position} {rejection}"));
        }
    }
    v
}

/// Runs a stored robust vector: the secret is recovered, and exactly the
/// listed shares are rejected.
fn check_robust<C: Curve>(v: &Vector) {
    let recovery = run_verified::<C>(v).unwrap();
    let secret = Secret::<C>::from_be_bytes(&v.hex_array("secret").unwrap()).unwrap();
    assert!(bool::from(recovery.secret().ct_eq(&secret)));
    let rejected: Vec<String> = recovery.rejected().iter().map(render_rejected).collect();
    assert_eq!(rejected, v.all("rejected").collect::<Vec<_>>());
    assert!(!rejected.is_empty());
}

#[test]
fn golden_robust_vectors() {
    let stored = golden(
        "robust",
        ROBUST.map(|(name, curve, operation, seed_byte)| {
            let vector = match curve {
                CurveId::Secp256k1 => generate_robust::<Secp256k1>(operation, [seed_byte; 32]),
                CurveId::Ed25519 => generate_robust::<Ed25519>(operation, [seed_byte; 32]),
            };
            (name.to_owned(), vector)
        }),
    );
    assert_eq!(stored.len(), ROBUST.len());
    for v in &stored {
        match v.get("curve").unwrap() {
            "secp256k1" => check_robust::<Secp256k1>(v),
            "ed25519" => check_robust::<Ed25519>(v),
            other => panic!("{}: unknown curve {other}", v.file()),
        }
    }
}

// ---------------------------------------------------------------- fail ----

/// One failure case: which operation, the expected error variant, inputs.
struct FailCase {
    name: &'static str,
    expect: &'static str,
    operation: &'static str,
    curve: CurveId,
    t: usize,
    n: usize,
    commitments: Option<Vec<u8>>,
    shares: Vec<Vec<u8>>,
    /// For `TooFewValidShares`: every rejected share, as [`render_rejected`]
    /// writes it.
    rejected: Vec<&'static str>,
}

/// `position index reason`, the index `-` when the share claims none.
fn render_rejected(rejected: &RejectedShare) -> String {
    let index = rejected
        .index
        .map_or_else(|| "-".to_owned(), |i| i.to_string());
    format!("{} {index} {:?}", rejected.position, rejected.reason)
}

impl FailCase {
    fn render(&self) -> Vector {
        let mut v = Vector::new(self.expect)
            .header("operation", self.operation)
            .header("curve", self.curve)
            .header("t", self.t)
            .header("n", self.n);
        if let Some(c) = &self.commitments {
            v = v.hex("commitments", c);
        }
        for s in &self.shares {
            v = v.hex("share", s);
        }
        for r in &self.rejected {
            v = v.header("rejected", r);
        }
        v
    }
}

struct Fixture<C: Curve> {
    commitments: Commitments<C>,
    shares: Vec<Vec<u8>>,
}

fn fixture<C: Curve>(seed: u8, t: usize, n: usize) -> Fixture<C> {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(t, n).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    Fixture {
        commitments,
        shares: shares.iter().map(|s| s.to_bytes().to_vec()).collect(),
    }
}

fn flip_value(share: &[u8]) -> Vec<u8> {
    let mut s = share.to_vec();
    s[67] ^= 1;
    s
}

fn fail_cases() -> Vec<FailCase> {
    let secp = fixture::<Secp256k1>(0x10, 3, 5);
    let secp_other = fixture::<Secp256k1>(0x11, 3, 5);
    let secp_2of5 = fixture::<Secp256k1>(0x12, 2, 5);
    let ed = fixture::<Ed25519>(0x13, 3, 5);
    let secp_c = secp.commitments.to_bytes();
    let ed_c = ed.commitments.to_bytes();
    let s = &secp.shares;
    let case =
        |name, expect, operation, curve, commitments: Option<Vec<u8>>, shares: Vec<Vec<u8>>| {
            FailCase {
                name,
                expect,
                operation,
                curve,
                t: 3,
                n: 5,
                commitments,
                shares,
                rejected: vec![],
            }
        };
    let with = |share: &[u8], at: usize, bytes: &[u8]| {
        let mut v = share.to_vec();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    };
    let secp_order =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
    let mut not_on_curve = [0u8; 33];
    not_on_curve[0] = 2;
    not_on_curve[32] = 5;
    let replace_commitment = |all: &[u8], width: usize, which: usize, point: &[u8]| {
        let mut v = all.to_vec();
        v[which * width..(which + 1) * width].copy_from_slice(point);
        v
    };
    let small_order = EIGHT_TORSION[1].compress().to_bytes();
    let mixed_order = (ED25519_BASEPOINT_POINT + EIGHT_TORSION[2])
        .compress()
        .to_bytes();
    let mut ed_non_canonical = [0xffu8; 32];
    ed_non_canonical[0] = 0xed;
    ed_non_canonical[31] = 0x7f; // y = p: y = 0 written non-canonically

    vec![
        case(
            "too_few_shares",
            "TooFewShares",
            "combine",
            CurveId::Secp256k1,
            None,
            vec![s[0].clone(), s[3].clone()],
        ),
        case(
            "too_few_shares_verified",
            "TooFewShares",
            "combine_verified",
            CurveId::Secp256k1,
            Some(secp_c.clone()),
            vec![s[1].clone(), s[4].clone()],
        ),
        case(
            "zero_index",
            "IndexOutOfRange",
            "decode_share",
            CurveId::Secp256k1,
            None,
            vec![with(&s[0], 3, &[0])],
        ),
        case(
            "index_above_n",
            "IndexOutOfRange",
            "decode_share",
            CurveId::Secp256k1,
            None,
            vec![with(&s[0], 3, &[6])],
        ),
        case(
            "duplicate_index",
            "DuplicateIndex",
            "combine",
            CurveId::Secp256k1,
            None,
            vec![s[0].clone(), s[2].clone(), s[2].clone()],
        ),
        case(
            "mixed_splits",
            "MixedSplits",
            "combine",
            CurveId::Secp256k1,
            None,
            vec![s[0].clone(), s[1].clone(), secp_other.shares[2].clone()],
        ),
        case(
            "mixed_parameters",
            "MixedSplits",
            "combine",
            CurveId::Secp256k1,
            None,
            vec![s[0].clone(), s[1].clone(), secp_2of5.shares[2].clone()],
        ),
        FailCase {
            rejected: vec!["0 1 WrongSplitId", "1 2 WrongSplitId", "2 3 WrongSplitId"],
            ..case(
                "shares_of_another_split",
                "TooFewValidShares",
                "combine_verified",
                CurveId::Secp256k1,
                Some(secp_c.clone()),
                secp_other.shares[..3].to_vec(),
            )
        },
        // One good share, the others forged in their headers or as a copy
        // of the good one's index: each named, none trusted.
        FailCase {
            rejected: vec![
                "1 2 WrongSplitId",
                "2 3 WrongThreshold { t: 3, n: 6 }",
                "3 1 DuplicateIndex",
                "4 5 WrongThreshold { t: 2, n: 5 }",
            ],
            ..case(
                "forged_headers_leave_too_few",
                "TooFewValidShares",
                "combine_verified",
                CurveId::Secp256k1,
                Some(secp_c.clone()),
                vec![
                    s[0].clone(),
                    with(&s[1], 4, &[s[1][4] ^ 1]),
                    with(&s[2], 2, &[6]),
                    with(&s[3], 3, &[1]),
                    with(&s[4], 1, &[2]),
                ],
            )
        },
        // Encodings that do not decode under the commitments' parameters,
        // straight from the wire.
        FailCase {
            rejected: vec![
                "0 1 WrongCurve { got: 2 }",
                "1 - IndexOutOfRange",
                "2 6 IndexOutOfRange",
                "3 4 WrongLength { got: 67 }",
                "4 5 InvalidValue",
            ],
            ..case(
                "undecodable_encodings_leave_too_few",
                "TooFewValidShares",
                "combine_verified_encoded",
                CurveId::Secp256k1,
                Some(secp_c.clone()),
                vec![
                    with(&s[0], 0, &[2]),
                    with(&s[1], 3, &[0]),
                    with(&s[2], 3, &[6]),
                    s[3][..67].to_vec(),
                    with(&s[4], 36, &secp_order),
                    s[2].clone(),
                ],
            )
        },
        case(
            "tampered_share",
            "ShareVerification",
            "verify",
            CurveId::Secp256k1,
            Some(secp_c.clone()),
            vec![flip_value(&s[1])],
        ),
        FailCase {
            rejected: vec!["1 2 FeldmanCheckFailed", "3 4 FeldmanCheckFailed"],
            ..case(
                "too_many_bad_shares",
                "TooFewValidShares",
                "combine_verified",
                CurveId::Secp256k1,
                Some(secp_c.clone()),
                vec![
                    s[0].clone(),
                    flip_value(&s[1]),
                    s[2].clone(),
                    flip_value(&s[3]),
                ],
            )
        },
        case(
            "non_canonical_scalar",
            "NonCanonicalScalar",
            "decode_share",
            CurveId::Secp256k1,
            None,
            vec![with(&s[0], 36, &secp_order)],
        ),
        case(
            "zero_scalar",
            "ZeroScalar",
            "decode_share",
            CurveId::Secp256k1,
            None,
            vec![with(&s[0], 36, &[0; 32])],
        ),
        case(
            "share_truncated",
            "WrongLength",
            "decode_share",
            CurveId::Secp256k1,
            None,
            vec![s[0][..67].to_vec()],
        ),
        case(
            "share_trailing_byte",
            "WrongLength",
            "decode_share",
            CurveId::Secp256k1,
            None,
            vec![[s[0].as_slice(), &[0]].concat()],
        ),
        case(
            "share_on_other_curve",
            "CurveMismatch",
            "decode_share",
            CurveId::Ed25519,
            None,
            vec![s[0].clone()],
        ),
        case(
            "invalid_threshold",
            "InvalidThreshold",
            "decode_share",
            CurveId::Secp256k1,
            None,
            vec![with(&s[0], 1, &[6, 5])],
        ),
        case(
            "commitment_not_on_curve",
            "InvalidPoint",
            "decode_commitments",
            CurveId::Secp256k1,
            Some(replace_commitment(&secp_c, 33, 1, &not_on_curve)),
            vec![],
        ),
        case(
            "commitment_identity",
            "IdentityPoint",
            "decode_commitments",
            CurveId::Secp256k1,
            Some(replace_commitment(&secp_c, 33, 0, &[0; 33])),
            vec![],
        ),
        case(
            "commitment_count",
            "CommitmentCount",
            "decode_commitments",
            CurveId::Secp256k1,
            Some(secp_c[..66].to_vec()),
            vec![],
        ),
        case(
            "ed25519_small_order_commitment",
            "TorsionPoint",
            "decode_commitments",
            CurveId::Ed25519,
            Some(replace_commitment(&ed_c, 32, 2, &small_order)),
            vec![],
        ),
        case(
            "ed25519_mixed_order_commitment",
            "TorsionPoint",
            "decode_commitments",
            CurveId::Ed25519,
            Some(replace_commitment(&ed_c, 32, 0, &mixed_order)),
            vec![],
        ),
        case(
            "ed25519_non_canonical_point",
            "InvalidPoint",
            "decode_commitments",
            CurveId::Ed25519,
            Some(replace_commitment(&ed_c, 32, 1, &ed_non_canonical)),
            vec![],
        ),
        case(
            "ed25519_tampered_share",
            "ShareVerification",
            "verify",
            CurveId::Ed25519,
            Some(ed_c.clone()),
            vec![flip_value(&ed.shares[4])],
        ),
    ]
}

/// The variant name of an error, from its `Debug` form.
fn variant(error: &Error) -> String {
    format!("{error:?}")
        .split(['(', ' ', '{'])
        .next()
        .unwrap()
        .to_owned()
}

/// Runs the verified combine a vector names (`combine_verified` over decoded
/// shares, or `combine_verified_encoded` over the raw encodings).
fn run_verified<C: Curve>(v: &Vector) -> Result<Recovery<C>, Error> {
    let commitments =
        Commitments::<C>::from_bytes(threshold(v), &v.hex_value("commitments").unwrap()).unwrap();
    let encoded: Vec<Vec<u8>> = v.hex_all("share").unwrap();
    match v.get("operation").unwrap() {
        "combine_verified" => combine_verified(
            encoded
                .iter()
                .map(|bytes| Share::from_bytes(bytes).unwrap())
                .collect(),
            &commitments,
        ),
        "combine_verified_encoded" => combine_verified_encoded(&encoded, &commitments),
        other => panic!("not a verified combine: {other}"),
    }
}

/// Runs the operation a fail vector names; returns the error it produced.
fn run_fail<C: Curve>(v: &Vector) -> Error {
    let shares = || -> Result<Vec<Share<C>>, Error> {
        v.hex_all("share")
            .unwrap()
            .iter()
            .map(|s| Share::from_bytes(s))
            .collect()
    };
    let commitments =
        || Commitments::<C>::from_bytes(threshold(v), &v.hex_value("commitments").unwrap());
    let result: Result<(), Error> = match v.get("operation").unwrap() {
        "decode_share" => shares().map(drop),
        "decode_commitments" => commitments().map(drop),
        "verify" => commitments().unwrap().verify(&shares().unwrap()[0]),
        "combine" => combine(shares().unwrap()).map(drop),
        "combine_verified" | "combine_verified_encoded" => run_verified::<C>(v).map(drop),
        other => panic!("unknown operation {other}"),
    };
    result.expect_err("a fail vector must fail")
}

#[test]
fn golden_fail_vectors() {
    let cases = fail_cases();
    let stored = golden(
        "fail",
        cases
            .iter()
            .map(|case| (case.name.to_owned(), case.render())),
    );
    // Every stored file fails as it says.
    for v in &stored {
        let error = match v.get("curve").unwrap() {
            "secp256k1" => run_fail::<Secp256k1>(v),
            "ed25519" => run_fail::<Ed25519>(v),
            other => panic!("unknown curve {other}"),
        };
        assert_eq!(variant(&error), v.expect(), "{}: {error}", v.file());
        // A verified combine that gives up names every share it rejected.
        let rejected: Vec<String> = match &error {
            Error::TooFewValidShares { rejected, .. } => {
                rejected.iter().map(render_rejected).collect()
            }
            _ => Vec::new(),
        };
        assert_eq!(
            rejected,
            v.all("rejected").collect::<Vec<_>>(),
            "{}",
            v.file()
        );
    }
    assert_eq!(stored.len(), cases.len());
}
