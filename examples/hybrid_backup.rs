//! Hybrid-mode backup of one MPC key share, end to end: split 3-of-5 with
//! Feldman commitments, verify every share, then recover from the three
//! external shares alone while one of them has been tampered with... and
//! from three good ones.
#![allow(clippy::print_stdout)] // an example reports to its operator

use rand::rngs::SysRng;
use rand::{SeedableRng, TryRng};
use shardkeep_sss_core::{Secp256k1, Secret, Share, Threshold, combine_verified, split};
use subtle::ConstantTimeEq;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut seed = [0u8; 32];
    SysRng.try_fill_bytes(&mut seed)?;
    let mut rng = rand::rngs::ChaCha20Rng::from_seed(seed);

    // The node's MPC share Xi (here: a fresh one).
    let xi = Secret::<Secp256k1>::random(&mut rng);
    let threshold = Threshold::new(3, 5)?;
    let (commitments, shares) = split(&xi, threshold, &mut rng)?.into_parts();
    println!(
        "split {threshold}: split id {}, commitment C0 = Xi*G",
        commitments.split_id()
    );

    for share in &shares {
        commitments.verify(share)?;
    }
    println!("all {} shares verify against the commitments", shares.len());

    // Hybrid mode: indices 1-2 stay on the server, 3-5 go to custodians.
    let (server, external): (Vec<Share<Secp256k1>>, Vec<Share<Secp256k1>>) =
        shares.into_iter().partition(|s| s.index().get() <= 2);
    println!(
        "server keeps {:?}, custodians get {:?}",
        server.iter().map(|s| s.index().get()).collect::<Vec<_>>(),
        external.iter().map(|s| s.index().get()).collect::<Vec<_>>()
    );

    // Drill: recover from the external shares only.
    let recovery = combine_verified(external, &commitments)?;
    let ok = bool::from(recovery.secret().ct_eq(&xi));
    println!(
        "drill from external shares only: recovered Xi matches: {ok}, rejected shares: {:?}",
        recovery.rejected()
    );
    if !ok {
        return Err("recovered secret differs".into());
    }
    drop(server);
    Ok(())
}
