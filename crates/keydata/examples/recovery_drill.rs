//! A recovery drill on real tss-lib keygen output (the ECDSA fixture of
//! party 0, in `tests/data/tss-lib/`), as the backup procedure
//! (`docs/procedure.md`) runs it, with this crate's API and the envelope
//! crate's below it (the backup service's side of steps 1 to 3 is
//! `examples/hybrid_backup.rs`, on `shardkeep-backup`):
//!
//! 1. generate: split `Xi` 3-of-5, seal the protocol archive, sign the
//!    envelopes (2 sealed for the server, 3 plain in custodian containers
//!    with a copy of the archive);
//! 2. forget the save data;
//! 3. recover from the 3 external containers alone, regenerate the save
//!    data, write `.keydata.enc` into a sandbox, load it back;
//! 4. self-test, with a sign/aggregate round with the other 4 parties (held
//!    in this process: the test-only feature `in-process-peers`; a node asks
//!    the other nodes through `RemotePeers`).
//!
//! Run: `cargo run -p shardkeep-keydata --features in-process-peers --example recovery_drill`
#![allow(clippy::print_stdout, reason = "the example reports its steps")]

use std::error::Error;
use std::time::Instant;

use rand::SeedableRng;
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{
    Armor, ContainerIdentity, ContainerRecipients, EnvelopeParams, TrustedSigners, open_container,
    seal_container,
};
use shardkeep_keydata::{
    InProcessPeers, KekKeystoreCodec, LocalPartySaveData, SealedArchive, WriteMode, load_keystore,
    regenerate, write_keystore,
};
use shardkeep_sss_core::{Commitments, Secp256k1, Share, Threshold, combine_verified, split};
use shardkeep_test_support::tss_lib::{self, Protocol};
use shardkeep_types::{
    InMemoryKek, InMemorySigner, KekId, KeyId, KeyVersion, NodeId, NodeVersion, SignerId, Timestamp,
};
use subtle::ConstantTimeEq;

/// Party `party` of the ECDSA fixture group (the file holds `Xi`: it is
/// read into a buffer wiped on drop).
fn fixture(party: usize) -> Result<LocalPartySaveData, Box<dyn Error>> {
    let json = tss_lib::fixture_bytes(Protocol::Ecdsa, party)?;
    Ok(LocalPartySaveData::from_json(&json)?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let mut rng = rand::rngs::ChaCha20Rng::try_from_rng(&mut rand::rngs::SysRng)?;
    let id = NodeVersion {
        key_id: KeyId::new("demo-key")?,
        node_id: NodeId::new("node-0")?,
        version: KeyVersion::new(1),
    };
    let signer = InMemorySigner::generate(SignerId::new("envelope-signer")?, &mut rng);
    let custodians: Vec<_> = (0..3).map(|_| age::x25519::Identity::generate()).collect();

    // 1. Generate.
    let (server_envelopes, containers) = {
        let data = fixture(0)?;
        println!("loaded {data:?}");
        let xi = data.secret_share::<Secp256k1>()?;
        let (commitments, shares) = split(&xi, Threshold::new(3, 5)?, &mut rng)?.into_parts();
        let archive = data.seal_archive(&id)?;
        let params = EnvelopeParams {
            node_version: id.clone(),
            created_at: Timestamp::now(),
            binding: data.binding(&archive)?,
        };
        println!(
            "split Xi 3-of-5; sealed archive: {} bytes",
            archive.as_bytes().len()
        );
        let mut server = Vec::new();
        let mut containers = Vec::new();
        for share in &shares {
            if share.index().get() <= 2 {
                // Each server share under its own slot's KEK.
                let kek_id = KekId::new(format!("server-kek-{}", share.index()))?;
                let kek = InMemoryKek::for_slot(kek_id, id.slot(share.index()), &mut rng);
                server.push(params.seal(&commitments, share, &signer, &kek, &mut rng)?);
            } else {
                let envelope = params.plain(&commitments, share, &signer)?;
                let custodian = custodians
                    .get(usize::from(share.index().get()) - 3)
                    .ok_or("one custodian per external share")?;
                let recipients = ContainerRecipients::x25519(vec![custodian.to_public()])?;
                containers.push(seal_container(
                    &envelope,
                    archive.as_bytes(),
                    &recipients,
                    Armor::Ascii,
                )?);
            }
        }
        (server, containers)
        // 2. `data`, `xi` and the shares are wiped here.
    };
    println!(
        "generated {} server envelopes and {} custodian containers; save data forgotten",
        server_envelopes.len(),
        containers.len()
    );

    // 3. Recover from the external containers only.
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&signer)?;
    let mut opened = Vec::new();
    for (container, identity) in containers.iter().zip(&custodians) {
        let identity = ContainerIdentity::X25519(std::slice::from_ref(identity));
        opened.push(open_container(container, identity, &trusted)?);
    }
    let first = opened.first().ok_or("no custodian container")?;
    let header = first.envelope().header();
    let binding = header.binding().clone();
    let commitments = <&Commitments<Secp256k1>>::try_from(header.commitments())?.clone();
    let archive = SealedArchive::from_bytes(first.archive().to_vec())?;
    let mut shares = Vec::new();
    for container in opened {
        let (envelope, _archive) = container.into_parts();
        shares.push(Share::<Secp256k1>::try_from(envelope.into_plain_share()?)?);
    }
    let xi = combine_verified(shares, &commitments)?.into_secret();
    let recovered = regenerate(&xi, &archive, &binding, &id)?;
    println!("recovered Xi from 3 external shares; regenerated the save data");

    let sandbox = tempfile::tempdir()?;
    let codec = KekKeystoreCodec::new(InMemoryKek::generate(KekId::new("node-kek")?, &mut rng));
    let path = write_keystore(
        sandbox.path(),
        &id,
        &recovered,
        &codec,
        WriteMode::CreateNew,
    )?;
    let loaded = load_keystore(&path, &id, &codec)?;
    println!("wrote and loaded {}", path.display());
    if !bool::from(loaded.ct_eq(&fixture(0)?)) {
        return Err("the loaded save data differs from the original".into());
    }

    // 4. Self-test with the other parties as peers.
    let others = (1..tss_lib::PARTIES)
        .map(fixture)
        .collect::<Result<Vec<_>, _>>()?;
    let mut peers = InProcessPeers::new(&others);
    let group = Threshold::from_tss_lib(tss_lib::TSS_LIB_THRESHOLD, tss_lib::PARTIES)?;
    let report = loaded.self_test(group, &mut peers)?;
    print!("{report}");
    if !report.passed() {
        return Err("the self-test failed".into());
    }
    println!("drill passed in {:?}", started.elapsed());
    Ok(())
}
