//! Proofs of possession: what a proof is bound to, the attacks each part of
//! the construction stops, and the known-answer vectors in
//! `tests/data/possession/` (`pass/` pins proofs byte for byte, `fail/` holds
//! one file per refusal with the error it must produce; the body of each is
//! the proof, the headers the statement it is checked against). The vectors
//! are regenerated here and compared with the files, so any drift in the
//! encoding, the hashes or the refusal rules fails this test.
//!
//! To rewrite the files after a deliberate format change, regenerate every
//! vector of the workspace (see `crates/test-support/README.md`):
//! `SHARDKEEP_REGENERATE_VECTORS=1 cargo test --workspace --all-features -- golden`
#![cfg(all(feature = "secp256k1", feature = "ed25519"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

use std::collections::HashSet;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use ff::Field;
use group::{Group, GroupEncoding};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use sha2::{Digest, Sha512};
use shardkeep_sss_core::{
    Commitments, Curve, CurveId, Ed25519, Error, INVENTORY_NONCE_TAG, INVENTORY_PROOF_TAG,
    MAX_INVENTORY_CONTEXT_LEN, PossessionProof, Secp256k1, Secret, Share, ShareIndex, Threshold,
    prove_possession, split, verify_possession,
};
use shardkeep_test_support::{GoldenDir, Vector, data_dir, read_dir};

const SECP_ORDER: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
const ED_ORDER: &str = "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed";
const SECP_FIELD: &str = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f";

// ------------------------------------------------------------ helpers ----

/// The inventory context, encoded as the module documentation suggests:
/// each field with a 2-byte big-endian length prefix, so the encoding is
/// injective.
#[derive(Clone)]
struct InventoryContext {
    server_nonce: [u8; 32],
    envelope_id: [u8; 16],
    custodian_id: Vec<u8>,
    container_hash: [u8; 32],
}

impl InventoryContext {
    fn sample(seed: u8) -> Self {
        Self {
            server_nonce: [seed; 32],
            envelope_id: [seed.wrapping_add(1); 16],
            custodian_id: b"custodian-berlin-2".to_vec(),
            container_hash: [seed.wrapping_add(2); 32],
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [
            &self.server_nonce[..],
            &self.envelope_id[..],
            &self.custodian_id[..],
            &self.container_hash[..],
        ] {
            out.extend_from_slice(&u16::try_from(field.len()).unwrap().to_be_bytes());
            out.extend_from_slice(field);
        }
        out
    }

    /// The context with one field changed, for each field in turn.
    fn each_field_changed(&self) -> Vec<(&'static str, Self)> {
        let mut nonce = self.clone();
        nonce.server_nonce[0] ^= 1;
        let mut envelope = self.clone();
        envelope.envelope_id[15] ^= 1;
        let mut custodian = self.clone();
        *custodian.custodian_id.last_mut().unwrap() ^= 1;
        let mut container = self.clone();
        container.container_hash[31] ^= 1;
        vec![
            ("server nonce", nonce),
            ("envelope id", envelope),
            ("custodian id", custodian),
            ("container hash", container),
        ]
    }
}

fn fixture<C: Curve>(seed: u8, t: usize, n: usize) -> (Commitments<C>, Vec<Share<C>>, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(t, n).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    (commitments, shares, rng)
}

fn index(i: u8) -> ShareIndex {
    ShareIndex::new(i).unwrap()
}

fn encode_points<C: Curve>(points: &[C::Point]) -> Vec<u8> {
    let mut out = Vec::new();
    for point in points {
        C::encode_point(point, &mut out);
    }
    out
}

/// `Y_i = sum_j C_j * i^j`, computed here independently of the crate.
fn public_share<C: Curve>(commitments: &Commitments<C>, index: ShareIndex) -> C::Point {
    let x = C::Scalar::from(u64::from(index.get()));
    let powers: Vec<C::Scalar> = std::iter::successors(Some(C::Scalar::ONE), |p| Some(*p * x))
        .take(commitments.points().len())
        .collect();
    C::multiscalar_mul_vartime(&powers, commitments.points())
}

/// Commitments of another split with the same public share at `index`: the
/// polynomial gains `A*(x - i)`, which vanishes at `i`.
fn twin_split<C: Curve>(commitments: &Commitments<C>, index: ShareIndex) -> Commitments<C> {
    let shift = C::mul_base(&C::Scalar::from(0x5eed_u64));
    let i = C::Scalar::from(u64::from(index.get()));
    let mut points = commitments.points().to_vec();
    points[0] -= shift * i;
    points[1] += shift;
    Commitments::from_bytes(commitments.threshold(), &encode_points::<C>(&points)).unwrap()
}

/// Proof bytes from raw parts, bypassing every check of the prover.
fn raw_proof(curve: u8, nonce_point: &[u8], response: &[u8]) -> Vec<u8> {
    let mut out = vec![curve];
    out.extend_from_slice(nonce_point);
    out.extend_from_slice(response);
    out
}

/// The same proof with `R` replaced.
fn with_nonce_point<C: Curve>(proof: &[u8], nonce_point: &[u8]) -> Vec<u8> {
    raw_proof(proof[0], nonce_point, &proof[1 + C::POINT_LEN..])
}

/// The same proof with `z` replaced.
fn with_response<C: Curve>(proof: &[u8], response: &[u8]) -> Vec<u8> {
    raw_proof(proof[0], &proof[1..=C::POINT_LEN], response)
}

/// Big-endian `a + b` on 32 bytes; `None` on overflow.
fn add_be(a: &[u8], b: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum.to_le_bytes()[0];
        carry = sum >> 8;
    }
    (carry == 0).then_some(out)
}

/// Decodes and verifies, as a verifier holding proof bytes does.
fn check<C: Curve>(
    proof: &[u8],
    commitments: &Commitments<C>,
    index: ShareIndex,
    context: &[u8],
) -> Result<(), Error> {
    verify_possession(
        &PossessionProof::<C>::from_bytes(proof)?,
        commitments,
        index,
        context,
    )
}

// ------------------------------------------------------- the forgery ----

/// The challenge exactly as the module documentation writes it:
/// `H_scalar(tag || curve || split id || index || Y_i || R || len(context)
/// || context)`, SHA-512 reduced modulo the order.
fn documented_challenge<C: Curve>(
    commitments: &Commitments<C>,
    index: ShareIndex,
    nonce_point: &[u8],
    context: &[u8],
) -> C::Scalar {
    let mut hasher = Sha512::new();
    hasher.update(INVENTORY_PROOF_TAG);
    hasher.update([C::ID.to_u8()]);
    hasher.update(commitments.split_id().as_bytes());
    hasher.update([index.get()]);
    hasher.update(public_share(commitments, index).to_bytes().as_ref());
    hasher.update(nonce_point);
    hasher.update(u32::try_from(context.len()).unwrap().to_be_bytes());
    hasher.update(context);
    C::scalar_reduce_be_vartime(&hasher.finalize()).unwrap()
}

/// A weak challenge, `e' = H(tag || curve || split id || index || Y_i ||
/// len(context) || context)`: everything the real one hashes except `R`.
fn weak_challenge<C: Curve>(
    commitments: &Commitments<C>,
    index: ShareIndex,
    context: &[u8],
) -> C::Scalar {
    documented_challenge(commitments, index, &[], context)
}

/// The verifier a weak challenge gives: `z*G == R + e'*Y_i`.
fn weak_verify<C: Curve>(
    nonce_point: &C::Point,
    response: &C::Scalar,
    commitments: &Commitments<C>,
    index: ShareIndex,
    context: &[u8],
) -> bool {
    let challenge = weak_challenge(commitments, index, context);
    C::mul_base(response) == *nonce_point + public_share(commitments, index) * challenge
}

/// Forges a proof knowing only public values: pick `z`, set
/// `R = z*G - e'*Y_i`. Returns `(R, z)` and the proof bytes.
fn forge_without_knowing_the_share<C: Curve>(
    commitments: &Commitments<C>,
    index: ShareIndex,
    context: &[u8],
    rng: &mut ChaCha20Rng,
) -> (C::Point, C::Scalar, Vec<u8>) {
    let response = C::Scalar::random(&mut *rng);
    let challenge = weak_challenge(commitments, index, context);
    let nonce_point = C::mul_base(&response) - public_share(commitments, index) * challenge;
    let bytes = raw_proof(
        C::ID.to_u8(),
        nonce_point.to_bytes().as_ref(),
        C::scalar_to_be_bytes(&response).as_slice(),
    );
    (nonce_point, response, bytes)
}

fn a_challenge_without_r_would_be_forgeable<C: Curve>(seed: u8) {
    // The forger has the commitments and the context, never a share.
    let (commitments, _, mut rng) = fixture::<C>(seed, 3, 5);
    let context = InventoryContext::sample(seed).encode();
    let at = index(3);
    let (nonce_point, response, bytes) =
        forge_without_knowing_the_share(&commitments, at, &context, &mut rng);
    assert!(
        weak_verify(&nonce_point, &response, &commitments, at, &context),
        "the weak verifier accepts the forgery"
    );
    // The forged proof is well formed: it fails only on the equation.
    let forged = PossessionProof::<C>::from_bytes(&bytes).unwrap();
    assert_eq!(
        verify_possession(&forged, &commitments, at, &context),
        Err(Error::PossessionProofRejected { index: at })
    );
}

#[test]
fn secp256k1_a_challenge_without_r_would_be_forgeable() {
    a_challenge_without_r_would_be_forgeable::<Secp256k1>(0x30);
}

#[test]
fn ed25519_a_challenge_without_r_would_be_forgeable() {
    a_challenge_without_r_would_be_forgeable::<Ed25519>(0x31);
}

// ----------------------------------------------------------- binding ----

/// Recomputes a proof from the documented formulas, with the random bytes
/// the prover drew (a copy of its rng), and compares byte for byte.
fn proofs_follow_the_documented_construction<C: Curve>(seed: u8) {
    let (commitments, shares, _) = fixture::<C>(seed, 3, 5);
    let share = &shares[4];
    let at = share.index();
    let context = InventoryContext::sample(seed).encode();
    let mut rng = ChaCha20Rng::from_seed([!seed; 32]);
    let mut hedge = [0u8; 32];
    ChaCha20Rng::from_seed([!seed; 32]).fill_bytes(&mut hedge);
    let proof = prove_possession(share, &commitments, &context, &mut rng)
        .unwrap()
        .to_bytes();

    let mut hasher = Sha512::new();
    hasher.update(INVENTORY_NONCE_TAG);
    hasher.update(share.value_be_bytes().as_slice());
    hasher.update([C::ID.to_u8()]);
    hasher.update(commitments.split_id().as_bytes());
    hasher.update([at.get()]);
    hasher.update(public_share(&commitments, at).to_bytes().as_ref());
    hasher.update(u32::try_from(context.len()).unwrap().to_be_bytes());
    hasher.update(&context);
    hasher.update(hedge);
    let nonce = C::scalar_reduce_be_vartime(&hasher.finalize()).unwrap();
    let nonce_point = C::mul_base(&nonce).to_bytes();
    let challenge = documented_challenge(&commitments, at, nonce_point.as_ref(), &context);
    let value = C::scalar_from_be_bytes(&share.value_be_bytes()).unwrap();
    let response = nonce + challenge * value;
    let expected = raw_proof(
        C::ID.to_u8(),
        nonce_point.as_ref(),
        C::scalar_to_be_bytes(&response).as_slice(),
    );
    assert_eq!(hex::encode(proof), hex::encode(expected));
}

#[test]
fn secp256k1_proofs_follow_the_documented_construction() {
    proofs_follow_the_documented_construction::<Secp256k1>(0x3b);
}

#[test]
fn ed25519_proofs_follow_the_documented_construction() {
    proofs_follow_the_documented_construction::<Ed25519>(0x3c);
}

fn a_proof_verifies_for_its_statement_only<C: Curve>(seed: u8) {
    let (commitments, shares, mut rng) = fixture::<C>(seed, 3, 5);
    let share = &shares[1];
    let at = share.index();
    let context = InventoryContext::sample(seed);
    let encoded = context.encode();
    let proof = prove_possession(share, &commitments, &encoded, &mut rng).unwrap();
    verify_possession(&proof, &commitments, at, &encoded).unwrap();
    let bytes = proof.to_bytes();
    assert_eq!(bytes.len(), PossessionProof::<C>::LEN);
    assert_eq!(PossessionProof::<C>::from_bytes(&bytes).unwrap(), proof);
    check(&bytes, &commitments, at, &encoded).unwrap();

    let rejected = Err(Error::PossessionProofRejected { index: at });
    for (field, changed) in context.each_field_changed() {
        assert_ne!(changed.encode(), encoded, "{field}");
        assert_eq!(
            verify_possession(&proof, &commitments, at, &changed.encode()),
            rejected,
            "{field}"
        );
    }
    for other in commitments.threshold().indices().filter(|i| *i != at) {
        assert_eq!(
            verify_possession(&proof, &commitments, other, &encoded),
            Err(Error::PossessionProofRejected { index: other })
        );
    }
    // Another split (other commitments)...
    let (other_split, _, _) = fixture::<C>(seed.wrapping_add(1), 3, 5);
    assert_eq!(
        verify_possession(&proof, &other_split, at, &encoded),
        rejected
    );
    // ...even one with the same public share at this index: only the split
    // id in the challenge tells them apart.
    let twin = twin_split(&commitments, at);
    assert_eq!(public_share(&twin, at), public_share(&commitments, at));
    assert_ne!(twin.split_id(), commitments.split_id());
    assert_eq!(verify_possession(&proof, &twin, at, &encoded), rejected);
    // The commitments the share agrees with do not change what it proves:
    // the verifier's are the reference.
    assert_eq!(share.split_id(), commitments.split_id());
}

#[test]
fn secp256k1_a_proof_verifies_for_its_statement_only() {
    a_proof_verifies_for_its_statement_only::<Secp256k1>(0x32);
}

#[test]
fn ed25519_a_proof_verifies_for_its_statement_only() {
    a_proof_verifies_for_its_statement_only::<Ed25519>(0x33);
}

#[test]
fn a_proof_on_one_curve_is_no_proof_on_the_other() {
    let context = InventoryContext::sample(0x34).encode();
    let (secp_commitments, secp_shares, mut rng) = fixture::<Secp256k1>(0x34, 3, 5);
    let secp = prove_possession(&secp_shares[0], &secp_commitments, &context, &mut rng)
        .unwrap()
        .to_bytes();
    let (ed_commitments, ed_shares, mut rng) = fixture::<Ed25519>(0x34, 3, 5);
    let ed = prove_possession(&ed_shares[0], &ed_commitments, &context, &mut rng)
        .unwrap()
        .to_bytes();
    assert_eq!(
        check(&secp, &ed_commitments, index(1), &context),
        Err(Error::WrongLength {
            expected: 65,
            got: 66
        })
    );
    assert_eq!(
        check(&ed, &secp_commitments, index(1), &context),
        Err(Error::WrongLength {
            expected: 66,
            got: 65
        })
    );
    // The curve byte is checked even where the lengths would agree.
    let mut relabelled = secp.clone();
    relabelled[0] = CurveId::Ed25519.to_u8();
    assert_eq!(
        PossessionProof::<Secp256k1>::from_bytes(&relabelled),
        Err(Error::CurveMismatch {
            expected: CurveId::Secp256k1,
            got: 2
        })
    );
}

fn nonces_never_repeat<C: Curve>(seed: u8) {
    let (commitments, shares, mut rng) = fixture::<C>(seed, 3, 5);
    let share = &shares[2];
    let first = InventoryContext::sample(seed).encode();
    let second = InventoryContext::sample(seed.wrapping_add(9)).encode();
    let mut other_rng = ChaCha20Rng::from_seed([seed.wrapping_add(1); 32]);
    let proofs = [
        prove_possession(share, &commitments, &first, &mut rng).unwrap(),
        prove_possession(share, &commitments, &second, &mut rng).unwrap(),
        // The same context again, with the next output of the same rng...
        prove_possession(share, &commitments, &first, &mut rng).unwrap(),
        // ...and with another rng.
        prove_possession(share, &commitments, &first, &mut other_rng).unwrap(),
    ];
    let nonce_points: HashSet<Vec<u8>> = proofs
        .iter()
        .map(|p| p.to_bytes()[1..=C::POINT_LEN].to_vec())
        .collect();
    assert_eq!(nonce_points.len(), proofs.len());
    for (proof, context) in proofs.iter().zip([&first, &second, &first, &first]) {
        verify_possession(proof, &commitments, share.index(), context).unwrap();
    }
}

#[test]
fn secp256k1_nonces_never_repeat() {
    nonces_never_repeat::<Secp256k1>(0x35);
}

#[test]
fn ed25519_nonces_never_repeat() {
    nonces_never_repeat::<Ed25519>(0x36);
}

// -------------------------------------------------------- refusals ----

fn prove_refuses_a_share_that_does_not_verify<C: Curve>(seed: u8) {
    let (commitments, shares, mut rng) = fixture::<C>(seed, 3, 5);
    let (_, foreign, _) = fixture::<C>(seed.wrapping_add(1), 3, 5);
    let (_, two_of_five, _) = fixture::<C>(seed.wrapping_add(2), 2, 5);
    let context = InventoryContext::sample(seed).encode();
    assert_eq!(
        prove_possession(&foreign[0], &commitments, &context, &mut rng).unwrap_err(),
        Error::SplitIdMismatch { index: index(1) }
    );
    assert_eq!(
        prove_possession(&two_of_five[0], &commitments, &context, &mut rng).unwrap_err(),
        Error::MixedSplits
    );
    // The right split id and index, a wrong value.
    let value = C::scalar_from_be_bytes(&shares[3].value_be_bytes()).unwrap();
    let wrong = Share::<C>::from_parts(
        commitments.threshold(),
        shares[3].index(),
        commitments.split_id(),
        &C::scalar_to_be_bytes(&(value + C::Scalar::ONE)),
    )
    .unwrap();
    assert_eq!(
        prove_possession(&wrong, &commitments, &context, &mut rng).unwrap_err(),
        Error::ShareVerification { index: index(4) }
    );
    let too_long = vec![0u8; MAX_INVENTORY_CONTEXT_LEN + 1];
    let expected = Error::ContextTooLong {
        len: MAX_INVENTORY_CONTEXT_LEN + 1,
        max: MAX_INVENTORY_CONTEXT_LEN,
    };
    assert_eq!(
        prove_possession(&shares[0], &commitments, &too_long, &mut rng).unwrap_err(),
        expected
    );
    let at_cap = vec![0u8; MAX_INVENTORY_CONTEXT_LEN];
    let proof = prove_possession(&shares[0], &commitments, &at_cap, &mut rng).unwrap();
    verify_possession(&proof, &commitments, index(1), &at_cap).unwrap();
    assert_eq!(
        verify_possession(&proof, &commitments, index(1), &too_long),
        Err(expected)
    );
    assert_eq!(
        verify_possession(&proof, &commitments, index(6), &at_cap),
        Err(Error::IndexOutOfRange { index: 6, n: 5 })
    );
}

#[test]
fn secp256k1_prove_refuses_a_share_that_does_not_verify() {
    prove_refuses_a_share_that_does_not_verify::<Secp256k1>(0x37);
}

#[test]
fn ed25519_prove_refuses_a_share_that_does_not_verify() {
    prove_refuses_a_share_that_does_not_verify::<Ed25519>(0x38);
}

/// 2-of-3 commitments whose public share at `index` is the identity while
/// neither commitment is: `C_1 = A`, `C_0 = -i*A`.
fn identity_at<C: Curve>(index: ShareIndex) -> Commitments<C> {
    let a = C::mul_base(&C::Scalar::from(0x1d_u64));
    let i = C::Scalar::from(u64::from(index.get()));
    Commitments::from_bytes(
        Threshold::new(2, 3).unwrap(),
        &encode_points::<C>(&[-(a * i), a]),
    )
    .unwrap()
}

fn an_identity_public_share_is_refused<C: Curve>(seed: u8) {
    let at = index(2);
    let commitments = identity_at::<C>(at);
    assert!(bool::from(public_share(&commitments, at).is_identity()));
    // With Y_i = 0 the equation reads z*G == R: anyone "proves" with R = z*G.
    let response = C::Scalar::random(&mut ChaCha20Rng::from_seed([seed; 32]));
    let bytes = raw_proof(
        C::ID.to_u8(),
        C::mul_base(&response).to_bytes().as_ref(),
        C::scalar_to_be_bytes(&response).as_slice(),
    );
    let context = InventoryContext::sample(seed).encode();
    assert_eq!(
        check(&bytes, &commitments, at, &context),
        Err(Error::IdentityPublicShare { index: at })
    );
    assert_eq!(
        check(&bytes, &commitments, index(1), &context),
        Err(Error::PossessionProofRejected { index: index(1) })
    );
}

#[test]
fn secp256k1_an_identity_public_share_is_refused() {
    an_identity_public_share_is_refused::<Secp256k1>(0x39);
}

#[test]
fn ed25519_an_identity_public_share_is_refused() {
    an_identity_public_share_is_refused::<Ed25519>(0x3a);
}

// -------------------------------------------------------- proptests ----

fn round_trip_and_bit_flips<C: Curve>(
    seed: [u8; 32],
    t: usize,
    extra: usize,
    pick: usize,
    context: &[u8],
) -> Result<(), TestCaseError> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(t, t + extra).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let share = &shares[pick % shares.len()];
    let at = share.index();
    let proof = prove_possession(share, &commitments, context, &mut rng).unwrap();
    let bytes = proof.to_bytes();
    prop_assert_eq!(bytes.len(), PossessionProof::<C>::LEN);
    prop_assert_eq!(&PossessionProof::<C>::from_bytes(&bytes).unwrap(), &proof);
    prop_assert!(check(&bytes, &commitments, at, context).is_ok());
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(
            check(&flipped, &commitments, at, context).is_err(),
            "bit {} of the proof",
            bit
        );
    }
    for bit in 0..context.len() * 8 {
        let mut flipped = context.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(
            verify_possession(&proof, &commitments, at, &flipped),
            Err(Error::PossessionProofRejected { index: at }),
            "bit {} of the context",
            bit
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn secp256k1_round_trip_and_bit_flips(
        seed in any::<[u8; 32]>(),
        t in 2usize..=5,
        extra in 0usize..=3,
        pick in any::<usize>(),
        context in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        round_trip_and_bit_flips::<Secp256k1>(seed, t, extra, pick, &context)?;
    }

    #[test]
    fn ed25519_round_trip_and_bit_flips(
        seed in any::<[u8; 32]>(),
        t in 2usize..=5,
        extra in 0usize..=3,
        pick in any::<usize>(),
        context in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        round_trip_and_bit_flips::<Ed25519>(seed, t, extra, pick, &context)?;
    }
}

// ---------------------------------------------------------- vectors ----

fn vector_dir(kind: &str) -> std::path::PathBuf {
    data_dir(env!("CARGO_MANIFEST_DIR"), "possession").join(kind)
}

/// Generates the vectors of `kind` (comparing them with the stored files,
/// or rewriting those), then reads back what is stored.
fn golden(kind: &str, vectors: impl IntoIterator<Item = (String, Vector)>) -> Vec<Vector> {
    let mut dir = GoldenDir::new(vector_dir(kind));
    for (name, vector) in vectors {
        dir.add(&name, &vector);
    }
    dir.finish().unwrap();
    read_dir(&vector_dir(kind)).unwrap()
}

/// Decodes a vector's commitments and checks its proof (the body) against
/// them.
fn check_vector<C: Curve>(v: &Vector) -> Result<(), Error> {
    let threshold = Threshold::new(v.value("t").unwrap(), v.value("n").unwrap()).unwrap();
    let commitments = Commitments::<C>::from_bytes(threshold, &v.hex_value("commitments").unwrap())
        .expect("vector commitments decode");
    check(
        v.body_bytes(),
        &commitments,
        index(v.value("index").unwrap()),
        &v.hex_value("context").unwrap(),
    )
}

fn check_on_its_curve(v: &Vector) -> Result<(), Error> {
    match v.get("curve").unwrap() {
        "secp256k1" => check_vector::<Secp256k1>(v),
        "ed25519" => check_vector::<Ed25519>(v),
        other => panic!("unknown curve {other}"),
    }
}

/// One proof and the statement it is checked against.
struct Case {
    curve: CurveId,
    t: u8,
    n: u8,
    commitments: Vec<u8>,
    index: u8,
    context: Vec<u8>,
    proof: Vec<u8>,
}

impl Case {
    /// The vector: the statement in the headers after `start`'s, the proof
    /// as the body.
    fn render(&self, start: Vector) -> Vector {
        start
            .header("curve", self.curve)
            .header("t", self.t)
            .header("n", self.n)
            .hex("commitments", &self.commitments)
            .header("index", self.index)
            .hex("context", &self.context)
            .body(self.proof.clone())
    }
}

/// The proof every vector starts from: seed -> `ChaCha20Rng`; secret,
/// 3-of-5 split, then a proof for share 2 with the sample context, all from
/// that rng.
fn base_case<C: Curve>(seed: u8) -> (Case, Commitments<C>) {
    let (commitments, shares, mut rng) = fixture::<C>(seed, 3, 5);
    let context = InventoryContext::sample(seed).encode();
    let proof = prove_possession(&shares[1], &commitments, &context, &mut rng).unwrap();
    let case = Case {
        curve: C::ID,
        t: 3,
        n: 5,
        commitments: commitments.to_bytes(),
        index: 2,
        context,
        proof: proof.to_bytes(),
    };
    (case, commitments)
}

const PASS_SEEDS: [(CurveId, u8); 2] = [(CurveId::Secp256k1, 0x40), (CurveId::Ed25519, 0x41)];

#[test]
fn golden_possession_pass_vectors() {
    let vectors = PASS_SEEDS
        .iter()
        .map(|&(curve, seed)| {
            let case = match curve {
                CurveId::Secp256k1 => base_case::<Secp256k1>(seed).0,
                CurveId::Ed25519 => base_case::<Ed25519>(seed).0,
            };
            let start = Vector::new("ok")
                .comment(format!(
                    "seed {seed:#04x} -> ChaCha20Rng; secret = Secret::random(rng); split(secret, 3-of-5, rng)"
                ))
                .comment("proof (the body) = prove_possession(share 2, commitments, context, rng)");
            (format!("{curve}_3of5"), case.render(start))
        });
    let stored = golden("pass", vectors);
    assert_eq!(stored.len(), PASS_SEEDS.len());
    for v in &stored {
        check_on_its_curve(v).unwrap();
        match v.get("curve").unwrap() {
            "secp256k1" => documented_equation_holds::<Secp256k1>(v),
            _ => documented_equation_holds::<Ed25519>(v),
        }
    }
}

/// `z*G == R + e*Y_i` with every value decoded and `e` hashed here, from
/// the documented layout, without the crate's verifier.
fn documented_equation_holds<C: Curve>(v: &Vector) {
    let commitments = Commitments::<C>::from_bytes(
        Threshold::new(3, 5).unwrap(),
        &v.hex_value("commitments").unwrap(),
    )
    .unwrap();
    let at = index(v.value("index").unwrap());
    let proof = v.body_bytes();
    assert_eq!(proof[0], C::ID.to_u8());
    let (nonce_point_bytes, response) = proof[1..].split_at(C::POINT_LEN);
    let nonce_point = C::decode_point(nonce_point_bytes).unwrap();
    let response = C::scalar_from_be_bytes(response.try_into().unwrap()).unwrap();
    let challenge = documented_challenge(
        &commitments,
        at,
        nonce_point_bytes,
        &v.hex_value("context").unwrap(),
    );
    assert_eq!(
        C::mul_base(&response),
        nonce_point + public_share(&commitments, at) * challenge
    );
}

/// The variant name of an error, as `fail/` files write it.
fn variant(error: &Error) -> String {
    let debug = format!("{error:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Failure cases shared by both curves, derived from the base proof.
fn common_fail_cases<C: Curve>(seed: u8) -> Vec<(String, Error, Case)> {
    let (base, commitments) = base_case::<C>(seed);
    let at = index(base.index);
    let rejected = Error::PossessionProofRejected { index: at };
    let variant_of = |proof: Vec<u8>| Case {
        proof,
        commitments: base.commitments.clone(),
        context: base.context.clone(),
        ..base
    };
    let mut changed_context = InventoryContext::sample(seed);
    changed_context.container_hash[31] ^= 1;
    let (_, _, forged) = forge_without_knowing_the_share(
        &commitments,
        at,
        &base.context,
        &mut ChaCha20Rng::from_seed([seed ^ 0xf0; 32]),
    );
    let order = hex::decode(match C::ID {
        CurveId::Secp256k1 => SECP_ORDER,
        CurveId::Ed25519 => ED_ORDER,
    })
    .unwrap();
    let mut trailing = base.proof.clone();
    trailing.push(0);
    let mut other_curve = base.proof.clone();
    other_curve[0] = match C::ID {
        CurveId::Secp256k1 => CurveId::Ed25519.to_u8(),
        CurveId::Ed25519 => CurveId::Secp256k1.to_u8(),
    };
    let identity_at_2 = identity_at::<C>(at);
    // With Y_i = 0, R = z*G satisfies the equation for any z.
    let identity_response = C::Scalar::from(7u64);
    let identity_proof = raw_proof(
        C::ID.to_u8(),
        C::mul_base(&identity_response).to_bytes().as_ref(),
        C::scalar_to_be_bytes(&identity_response).as_slice(),
    );

    let mut cases = vec![
        (
            "context_changed",
            rejected.clone(),
            Case {
                context: changed_context.encode(),
                ..variant_of(base.proof.clone())
            },
        ),
        (
            "other_index",
            Error::PossessionProofRejected { index: index(3) },
            Case {
                index: 3,
                ..variant_of(base.proof.clone())
            },
        ),
        (
            "other_split_same_public_share",
            rejected.clone(),
            Case {
                commitments: twin_split(&commitments, at).to_bytes(),
                ..variant_of(base.proof.clone())
            },
        ),
        (
            "forged_without_r_in_challenge",
            rejected.clone(),
            variant_of(forged),
        ),
        (
            "identity_public_share",
            Error::IdentityPublicShare { index: at },
            Case {
                t: 2,
                n: 3,
                commitments: identity_at_2.to_bytes(),
                ..variant_of(identity_proof)
            },
        ),
        (
            "index_above_n",
            Error::IndexOutOfRange { index: 6, n: 5 },
            Case {
                index: 6,
                ..variant_of(base.proof.clone())
            },
        ),
        (
            "z_is_the_order",
            Error::NonCanonicalScalar,
            variant_of(with_response::<C>(&base.proof, &order)),
        ),
        (
            "z_all_ones",
            Error::NonCanonicalScalar,
            variant_of(with_response::<C>(&base.proof, &[0xff; 32])),
        ),
        (
            "truncated",
            Error::WrongLength {
                expected: PossessionProof::<C>::LEN,
                got: PossessionProof::<C>::LEN - 1,
            },
            variant_of(base.proof[..base.proof.len() - 1].to_vec()),
        ),
        (
            "trailing_byte",
            Error::WrongLength {
                expected: PossessionProof::<C>::LEN,
                got: PossessionProof::<C>::LEN + 1,
            },
            variant_of(trailing),
        ),
        (
            "other_curve_byte",
            Error::CurveMismatch {
                expected: C::ID,
                got: other_curve[0],
            },
            variant_of(other_curve),
        ),
    ];
    // `z + order` is the same scalar written another way (the classic
    // Schnorr malleability); it fits in 32 bytes when `z` is small enough,
    // always on ed25519.
    if let Some(z_plus_order) = add_be(&base.proof[1 + C::POINT_LEN..], &order) {
        cases.push((
            "z_plus_order",
            Error::NonCanonicalScalar,
            variant_of(with_response::<C>(&base.proof, &z_plus_order)),
        ));
    }
    cases
        .into_iter()
        .map(|(name, error, case)| (format!("{}_{name}", C::ID), error, case))
        .collect()
}

/// Failure cases about the encoding of `R` on one curve.
fn nonce_point_fail_cases<C: Curve>(
    seed: u8,
    nonce_points: Vec<(&'static str, Error, Vec<u8>)>,
) -> Vec<(String, Error, Case)> {
    let (base, _) = base_case::<C>(seed);
    nonce_points
        .into_iter()
        .map(|(name, error, nonce_point)| {
            let case = Case {
                proof: with_nonce_point::<C>(&base.proof, &nonce_point),
                commitments: base.commitments.clone(),
                context: base.context.clone(),
                ..base
            };
            (format!("{}_r_{name}", C::ID), error, case)
        })
        .collect()
}

fn fail_cases() -> Vec<(String, Error, Case)> {
    let secp_seed = PASS_SEEDS[0].1;
    let ed_seed = PASS_SEEDS[1].1;
    let mut cases = common_fail_cases::<Secp256k1>(secp_seed);
    cases.extend(common_fail_cases::<Ed25519>(ed_seed));

    let secp_base = base_case::<Secp256k1>(secp_seed).0.proof;
    let secp_r = &secp_base[1..34];
    let mut negated = secp_r.to_vec();
    negated[0] ^= 1; // 02 <-> 03: the same x, the other y
    let with_tag = |tag: u8| {
        let mut r = secp_r.to_vec();
        r[0] = tag;
        r
    };
    let mut x_not_on_curve = vec![0u8; 33];
    x_not_on_curve[0] = 2;
    x_not_on_curve[32] = 5; // 5^3 + 7 is not a square modulo p
    let mut x_is_p = vec![2u8];
    x_is_p.extend(hex::decode(SECP_FIELD).unwrap());
    cases.extend(nonce_point_fail_cases::<Secp256k1>(
        secp_seed,
        vec![
            (
                "negated",
                Error::PossessionProofRejected { index: index(2) },
                negated,
            ),
            // k256 reads 33 zero bytes as the identity.
            ("identity", Error::IdentityPoint, vec![0u8; 33]),
            ("uncompressed_tag", Error::InvalidPoint, with_tag(4)),
            ("high_bit_tag", Error::InvalidPoint, with_tag(0x82)),
            ("not_on_curve", Error::InvalidPoint, x_not_on_curve),
            ("x_not_canonical", Error::InvalidPoint, x_is_p),
        ],
    ));

    let ed_base = base_case::<Ed25519>(ed_seed).0.proof;
    let mut ed_negated = ed_base[1..33].to_vec();
    ed_negated[31] ^= 0x80; // the sign of x: -R
    let compressed = |p: curve25519_dalek::EdwardsPoint| p.compress().to_bytes().to_vec();
    let mut identity_signed = compressed(EIGHT_TORSION[0]);
    identity_signed[31] |= 0x80;
    let mut order_two_signed = compressed(EIGHT_TORSION[4]);
    order_two_signed[31] |= 0x80;
    let mut y_is_p = vec![0xffu8; 32]; // p = 2^255 - 19, little-endian
    y_is_p[0] = 0xed;
    y_is_p[31] = 0x7f;
    let mut y_not_on_curve = vec![0u8; 32];
    y_not_on_curve[0] = 2; // y = 2: (y^2 - 1) / (d y^2 + 1) is not a square
    cases.extend(nonce_point_fail_cases::<Ed25519>(
        ed_seed,
        vec![
            (
                "negated",
                Error::PossessionProofRejected { index: index(2) },
                ed_negated,
            ),
            (
                "identity",
                Error::IdentityPoint,
                compressed(EIGHT_TORSION[0]),
            ),
            ("order_2", Error::TorsionPoint, compressed(EIGHT_TORSION[4])),
            ("order_4", Error::TorsionPoint, compressed(EIGHT_TORSION[2])),
            ("order_8", Error::TorsionPoint, compressed(EIGHT_TORSION[1])),
            (
                "mixed_order",
                Error::TorsionPoint,
                compressed(ED25519_BASEPOINT_POINT + EIGHT_TORSION[1]),
            ),
            ("identity_sign_bit", Error::InvalidPoint, identity_signed),
            ("order_2_sign_bit", Error::InvalidPoint, order_two_signed),
            ("y_not_canonical", Error::InvalidPoint, y_is_p),
            ("not_on_curve", Error::InvalidPoint, y_not_on_curve),
        ],
    ));
    cases
}

#[test]
fn golden_possession_fail_vectors() {
    let cases = fail_cases();
    let mut names = HashSet::new();
    for (name, error, case) in &cases {
        assert!(names.insert(name.clone()), "{name} twice");
        // The exact error, fields included.
        let built = case.render(Vector::new(variant(error)));
        let read = Vector::parse(name.as_str(), &built.to_bytes().unwrap()).unwrap();
        assert_eq!(check_on_its_curve(&read).as_ref(), Err(error), "{name}");
    }
    let stored = golden(
        "fail",
        cases
            .iter()
            .map(|(name, error, case)| (name.clone(), case.render(Vector::new(variant(error))))),
    );
    // Every stored file fails as it says.
    for v in &stored {
        let error = check_on_its_curve(v).expect_err("a fail vector must fail");
        assert_eq!(variant(&error), v.expect(), "{}", v.file());
    }
    assert_eq!(stored.len(), cases.len());
}
