//! The combine path of shardkeep-sss-core against bare vsss-rs and a
//! hand-written floor, on secp256k1, 3-of-5. One group, one run:
//! `cargo bench -p shardkeep-benches --bench sss_core_combine`.
//!
//! (a) shardkeep `combine` of 3 shares: interpolation only, no point operation
//! (b) bare vsss-rs `combine` of the same 3 shares
//! (c) floor: Lagrange at 0 over 3 scalars with one batched variable-time
//!     inversion (indices are public)
//! (d) shardkeep `combine_verified` (batch verification + combine + C0 check)
//! (d) the same with a fourth share whose value is forged: the batch check
//!     fails, every share is checked alone, the forged one is named
//! (e) bare vsss-rs `verify_share` x3 + `combine`
//! (f) split 3-of-5 with commitments, shardkeep and bare vsss-rs
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches: a panic is a setup bug

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use k256::{ProjectivePoint, Scalar};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_sss_core::{Secp256k1, Secret, Share, Threshold, combine, combine_verified, split};
use vsss_rs::{
    DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ReadableShareSet, Share as _,
    ValueGroup, feldman,
};

type VsssShare = DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;
type VsssVerifier = ValueGroup<ProjectivePoint>;

/// Lagrange at 0 over three public x with one variable-time inversion:
/// `lambda_i = P / (x_i * prod_{j != i} (x_j - x_i))`, `P = x_0 x_1 x_2`.
fn floor_interpolate(xs: [Scalar; 3], ys: [Scalar; 3]) -> Scalar {
    let d = [
        xs[0] * (xs[1] - xs[0]) * (xs[2] - xs[0]),
        xs[1] * (xs[0] - xs[1]) * (xs[2] - xs[1]),
        xs[2] * (xs[0] - xs[2]) * (xs[1] - xs[2]),
    ];
    let d01 = d[0] * d[1];
    let inv = (d01 * d[2]).invert_vartime().unwrap();
    let p = xs[0] * xs[1] * xs[2] * inv;
    let (inv2, inv01) = (p * d01, p * d[2]);
    let (inv0, inv1) = (inv01 * d[1], inv01 * d[0]);
    ys[0] * inv0 + ys[1] * inv1 + ys[2] * inv2
}

fn combine_path(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let threshold = Threshold::new(3, 5).unwrap();
    let secret = Secret::<Secp256k1>::random(&mut rng);
    let (commitments, shares) = split(&secret, threshold, &mut rng).unwrap().into_parts();
    let encoded: Vec<_> = shares[..3].iter().map(Share::to_bytes).collect();
    let three = || -> Vec<Share<Secp256k1>> {
        encoded
            .iter()
            .map(|b| Share::from_bytes(b.as_slice()).unwrap())
            .collect()
    };

    // The same shares and commitments as vsss-rs values.
    let vsss_shares: Vec<VsssShare> = shares[..3]
        .iter()
        .map(|s| {
            let x = Scalar::from(u64::from(s.index().get()));
            let y = Option::from(<Scalar as ff::PrimeField>::from_repr(
                (*s.value_be_bytes()).into(),
            ))
            .unwrap();
            VsssShare::with_identifier_and_value(IdentifierPrimeField(x), IdentifierPrimeField(y))
        })
        .collect();
    let mut vsss_verifiers = vec![ValueGroup(ProjectivePoint::GENERATOR)];
    vsss_verifiers.extend(commitments.points().iter().map(|p| ValueGroup(*p)));
    assert_eq!(vsss_shares.combine().unwrap().0, *secret.expose_scalar());

    let xs = [Scalar::from(1u64), Scalar::from(2u64), Scalar::from(3u64)];
    let ys = [
        vsss_shares[0].value().0,
        vsss_shares[1].value().0,
        vsss_shares[2].value().0,
    ];
    assert_eq!(floor_interpolate(xs, ys), *secret.expose_scalar());

    let mut group = c.benchmark_group("combine_path_secp256k1_3of5");
    group.bench_function("a_shardkeep_combine", |b| {
        b.iter_batched(
            three,
            |s| combine(black_box(s)).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("b_vsss_combine", |b| {
        b.iter(|| black_box(&vsss_shares).combine().unwrap());
    });
    group.bench_function("c_floor_one_inversion", |b| {
        b.iter(|| floor_interpolate(black_box(xs), black_box(ys)));
    });
    group.bench_function("d_shardkeep_combine_verified", |b| {
        b.iter_batched(
            three,
            |s| combine_verified(black_box(s), black_box(&commitments)).unwrap(),
            BatchSize::SmallInput,
        );
    });
    // Share 4 with one bit of its value flipped, handed in first.
    let mut forged = shares[3].to_bytes();
    forged[67] ^= 1;
    let three_and_forged = || -> Vec<Share<Secp256k1>> {
        let mut set = vec![Share::from_bytes(forged.as_slice()).unwrap()];
        set.extend(three());
        set
    };
    group.bench_function("d_shardkeep_combine_verified_one_forged", |b| {
        b.iter_batched(
            three_and_forged,
            |s| {
                let recovery = combine_verified(black_box(s), black_box(&commitments)).unwrap();
                assert_eq!(recovery.rejected().len(), 1);
                recovery
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("e_vsss_verify_x3_combine", |b| {
        b.iter(|| {
            for share in black_box(&vsss_shares) {
                vsss_verifiers.verify_share(share).unwrap();
            }
            black_box(&vsss_shares).combine().unwrap()
        });
    });
    group.bench_function("f_shardkeep_split_3of5", |b| {
        b.iter(|| split(black_box(&secret), threshold, &mut rng).unwrap());
    });
    let vsss_secret = IdentifierPrimeField(*secret.expose_scalar());
    group.bench_function("f_vsss_split_3of5", |b| {
        b.iter(|| {
            feldman::split_secret::<VsssShare, VsssVerifier>(
                3,
                5,
                black_box(&vsss_secret),
                None,
                &mut rng,
            )
            .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, combine_path);
criterion_main!(benches);
