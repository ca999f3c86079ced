//! Split an ed25519 secret 3-of-5, tamper with one share's value and forge
//! another's header, and watch the verified combine name both and still
//! recover from the others.
//!
//! `cargo run -p shardkeep-sss-core --features ed25519 --example robust_recovery`
#![allow(clippy::print_stdout)] // an example reports to its operator

use rand::rngs::ChaCha20Rng;
use rand::{SeedableRng, TryRng, rngs::SysRng};
use shardkeep_sss_core::{Ed25519, Error, Secret, Share, Threshold, combine_verified, split};
use subtle::ConstantTimeEq;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut seed = [0u8; 32];
    SysRng.try_fill_bytes(&mut seed)?;
    let mut rng = ChaCha20Rng::from_seed(seed);

    let secret = Secret::<Ed25519>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(3, 5)?, &mut rng)?.into_parts();

    // Share 2 arrives with one bit flipped.
    let mut value = shares[1].value_be_bytes();
    value[31] ^= 1;
    let bad = Share::from_parts(
        shares[1].threshold(),
        shares[1].index(),
        shares[1].split_id(),
        &value,
    )?;
    match commitments.verify(&bad) {
        Err(Error::ShareVerification { index }) => println!("verify: share {index} is bad"),
        other => return Err(format!("tampering went unnoticed: {other:?}").into()),
    }

    // Share 1 arrives with its split id rewritten: the commitments the
    // caller pinned are the reference, so only this share is refused.
    let mut forged = shares[0].to_bytes();
    forged[4] ^= 0x80;
    let forged = Share::from_bytes(forged.as_slice())?;

    let mut submitted = vec![forged, bad];
    submitted.extend(shares.into_iter().skip(2)); // indices 3, 4, 5
    let recovery = combine_verified(submitted, &commitments)?;
    for rejected in recovery.rejected() {
        println!("rejected {rejected}");
    }
    println!(
        "recovered from the 3 good shares, matches: {}",
        bool::from(recovery.secret().ct_eq(&secret))
    );
    Ok(())
}
