//! Proofs of possession of a share (external inventory), on both curves,
//! 3-of-5, a 150-byte context:
//! `cargo bench -p shardkeep-benches --bench inventory_proof`.
//!
//! - `prove`: Feldman check of the share, hedged nonce, `R = k*G`, `z`
//! - `verify`: public share from the commitments, challenge, `z*G == R + e*Y_i`
//! - `decode_and_verify`: the same from the proof's bytes (point decoding
//!   and its checks included), as a verifier receives it
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches: a panic is a setup bug

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_sss_core::{
    Curve, Ed25519, PossessionProof, Secp256k1, Secret, Threshold, prove_possession, split,
    verify_possession,
};

fn bench_curve<C: Curve>(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(3, 5).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let share = &shares[2];
    let context = [0x5a_u8; 150];
    let proof = prove_possession(share, &commitments, &context, &mut rng).unwrap();
    let bytes = proof.to_bytes();
    verify_possession(&proof, &commitments, share.index(), &context).unwrap();

    let mut group = c.benchmark_group(format!("inventory_proof_{}_3of5", C::ID));
    group.bench_function("prove", |b| {
        b.iter(|| prove_possession(share, &commitments, black_box(&context), &mut rng).unwrap());
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            verify_possession(black_box(&proof), &commitments, share.index(), &context).unwrap();
        });
    });
    group.bench_function("decode_and_verify", |b| {
        b.iter(|| {
            let decoded = PossessionProof::<C>::from_bytes(black_box(&bytes)).unwrap();
            verify_possession(&decoded, &commitments, share.index(), &context).unwrap();
        });
    });
    group.finish();
}

fn inventory_proof(c: &mut Criterion) {
    bench_curve::<Secp256k1>(c);
    bench_curve::<Ed25519>(c);
}

criterion_group!(benches, inventory_proof);
criterion_main!(benches);
