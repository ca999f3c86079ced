//! Known-answer vectors: `test-vectors/sss-core/pass/` pins the split (seed ->
//! secret, commitments, split id, shares) and the encodings;
//! `test-vectors/sss-core/fail/` holds one file per rejection rule with the
//! error it must produce. Both sets are regenerated here and compared with
//! the files, so any drift in encoding or arithmetic fails this test.
//!
//! To rewrite the files after a deliberate format change:
//! `SHARDKEEP_REGENERATE_VECTORS=1 cargo test -p shardkeep-sss-core --all-features --test vectors`
#![cfg(all(feature = "secp256k1", feature = "ed25519"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_sss_core::{
    Commitments, Curve, CurveId, Ed25519, Error, Secp256k1, Secret, Share, Threshold, combine,
    combine_verified, split,
};
use subtle::ConstantTimeEq;

fn vector_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-vectors/sss-core")
        .join(kind)
}

/// A vector file: `key: value` lines; `share` may repeat.
#[derive(Debug, Default)]
struct Vector {
    fields: BTreeMap<String, String>,
    shares: Vec<String>,
}

impl Vector {
    fn parse(text: &str) -> Self {
        let mut v = Self::default();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (key, value) = line.split_once(": ").expect("key: value");
            if key == "share" {
                v.shares.push(value.to_owned());
            } else {
                assert!(
                    v.fields.insert(key.to_owned(), value.to_owned()).is_none(),
                    "{key}"
                );
            }
        }
        v
    }

    fn get(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("missing {key}"))
    }

    fn bytes(&self, key: &str) -> Vec<u8> {
        hex::decode(self.get(key)).unwrap()
    }

    fn threshold(&self) -> Threshold {
        Threshold::new(
            self.get("t").parse().unwrap(),
            self.get("n").parse().unwrap(),
        )
        .unwrap()
    }
}

/// Writes `text` to `path` when regenerating, else asserts they agree.
fn check_or_write(path: &Path, text: &str) {
    if std::env::var_os("SHARDKEEP_REGENERATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    } else {
        let stored = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e} (regenerate the vectors?)", path.display()));
        assert_eq!(stored, text, "{} drifted from the code", path.display());
    }
}

// ---------------------------------------------------------------- pass ----

const PASS: [(&str, CurveId, usize, usize, u8); 4] = [
    ("secp256k1_3of5", CurveId::Secp256k1, 3, 5, 0x01),
    ("secp256k1_2of2", CurveId::Secp256k1, 2, 2, 0x02),
    ("ed25519_3of5", CurveId::Ed25519, 3, 5, 0x03),
    ("ed25519_4of7", CurveId::Ed25519, 4, 7, 0x04),
];

fn generate_pass<C: Curve>(t: usize, n: usize, seed: [u8; 32]) -> String {
    let mut rng = ChaCha20Rng::from_seed(seed);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(t, n).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let mut out = String::new();
    writeln!(
        out,
        "# seed -> ChaCha20Rng; secret = Secret::random(rng); split(secret, t-of-n, rng)"
    )
    .unwrap();
    writeln!(out, "curve: {}", C::ID).unwrap();
    writeln!(out, "t: {t}").unwrap();
    writeln!(out, "n: {n}").unwrap();
    writeln!(out, "seed: {}", hex::encode(seed)).unwrap();
    writeln!(
        out,
        "secret: {}",
        hex::encode(secret.to_be_bytes().as_slice())
    )
    .unwrap();
    writeln!(out, "split_id: {}", commitments.split_id()).unwrap();
    writeln!(out, "commitments: {}", hex::encode(commitments.to_bytes())).unwrap();
    for share in &shares {
        writeln!(out, "share: {}", hex::encode(share.to_bytes().as_slice())).unwrap();
    }
    out
}

/// Decodes a stored pass vector and checks it without the generator.
fn check_pass<C: Curve>(v: &Vector) {
    let threshold = v.threshold();
    let commitments = Commitments::<C>::from_bytes(threshold, &v.bytes("commitments")).unwrap();
    assert_eq!(commitments.split_id().to_string(), v.get("split_id"));
    assert_eq!(hex::encode(commitments.to_bytes()), v.get("commitments"));
    let secret = Secret::<C>::from_be_bytes(&v.bytes("secret").try_into().unwrap()).unwrap();
    assert!(bool::from(
        commitments.public_key().ct_eq(&secret.public_point())
    ));
    let decode = || -> Vec<Share<C>> {
        v.shares
            .iter()
            .map(|s| Share::from_bytes(&hex::decode(s).unwrap()).unwrap())
            .collect()
    };
    for share in decode() {
        commitments.verify(&share).unwrap();
        assert_eq!(share.split_id(), commitments.split_id());
    }
    assert_eq!(v.shares.len(), usize::from(threshold.n()));
    let last_t: Vec<Share<C>> = decode()
        .into_iter()
        .skip(usize::from(threshold.n() - threshold.t()))
        .collect();
    assert!(bool::from(combine(last_t).unwrap().ct_eq(&secret)));
    let recovery = combine_verified(decode(), &commitments).unwrap();
    assert!(bool::from(recovery.secret().ct_eq(&secret)));
}

#[test]
fn pass_vectors() {
    for (name, curve, t, n, seed_byte) in PASS {
        let path = vector_dir("pass").join(format!("{name}.txt"));
        let text = match curve {
            CurveId::Secp256k1 => generate_pass::<Secp256k1>(t, n, [seed_byte; 32]),
            CurveId::Ed25519 => generate_pass::<Ed25519>(t, n, [seed_byte; 32]),
        };
        check_or_write(&path, &text);
        let stored = Vector::parse(&std::fs::read_to_string(&path).unwrap());
        match curve {
            CurveId::Secp256k1 => check_pass::<Secp256k1>(&stored),
            CurveId::Ed25519 => check_pass::<Ed25519>(&stored),
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
}

impl FailCase {
    fn render(&self) -> String {
        let mut out = String::new();
        writeln!(out, "expect: {}", self.expect).unwrap();
        writeln!(out, "operation: {}", self.operation).unwrap();
        writeln!(out, "curve: {}", self.curve).unwrap();
        writeln!(out, "t: {}", self.t).unwrap();
        writeln!(out, "n: {}", self.n).unwrap();
        if let Some(c) = &self.commitments {
            writeln!(out, "commitments: {}", hex::encode(c)).unwrap();
        }
        for s in &self.shares {
            writeln!(out, "share: {}", hex::encode(s)).unwrap();
        }
        out
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
        case(
            "shares_of_another_split",
            "SplitIdMismatch",
            "combine_verified",
            CurveId::Secp256k1,
            Some(secp_c.clone()),
            secp_other.shares[..3].to_vec(),
        ),
        case(
            "tampered_share",
            "ShareVerification",
            "verify",
            CurveId::Secp256k1,
            Some(secp_c.clone()),
            vec![flip_value(&s[1])],
        ),
        case(
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
        ),
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

/// Runs the operation a fail vector names; returns the error it produced.
fn run_fail<C: Curve>(v: &Vector) -> Error {
    let shares = || -> Result<Vec<Share<C>>, Error> {
        v.shares
            .iter()
            .map(|s| Share::from_bytes(&hex::decode(s).unwrap()))
            .collect()
    };
    let commitments = || Commitments::<C>::from_bytes(v.threshold(), &v.bytes("commitments"));
    let result: Result<(), Error> = match v.get("operation") {
        "decode_share" => shares().map(drop),
        "decode_commitments" => commitments().map(drop),
        "verify" => commitments().unwrap().verify(&shares().unwrap()[0]),
        "combine" => combine(shares().unwrap()).map(drop),
        "combine_verified" => {
            combine_verified(shares().unwrap(), &commitments().unwrap()).map(drop)
        }
        other => panic!("unknown operation {other}"),
    };
    result.expect_err("a fail vector must fail")
}

#[test]
fn fail_vectors() {
    let cases = fail_cases();
    for case in &cases {
        check_or_write(
            &vector_dir("fail").join(format!("{}.txt", case.name)),
            &case.render(),
        );
    }
    // Every stored file (including any added by hand) fails as it says.
    let mut seen = 0;
    for entry in std::fs::read_dir(vector_dir("fail")).unwrap() {
        let path = entry.unwrap().path();
        let v = Vector::parse(&std::fs::read_to_string(&path).unwrap());
        let error = match v.get("curve") {
            "secp256k1" => run_fail::<Secp256k1>(&v),
            "ed25519" => run_fail::<Ed25519>(&v),
            other => panic!("unknown curve {other}"),
        };
        assert_eq!(
            variant(&error),
            v.get("expect"),
            "{}: {error}",
            path.display()
        );
        seen += 1;
    }
    assert_eq!(seen, cases.len(), "stray or missing files in fail/");
}
