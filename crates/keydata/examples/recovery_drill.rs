//! A recovery drill on real tss-lib keygen output (the ECDSA fixture of
//! party 0, in `tests/data/tss-lib/`), as the backup procedure
//! (`docs/procedure.md`) runs it:
//!
//! 1. generate: split `Xi` 3-of-5, seal the protocol archive, sign the
//!    envelopes (2 sealed for the server, 3 plain in custodian containers
//!    with a copy of the archive);
//! 2. forget the save data;
//! 3. recover from the 3 external containers alone, regenerate the save
//!    data, write `.keydata.enc` into a sandbox, load it back;
//! 4. self-test, with a sign/aggregate round with the other 4 parties.
//!
//! Run: `cargo run -p shardkeep-keydata --example recovery_drill`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an example: failures abort"
)]
#![allow(clippy::print_stdout, reason = "the example reports its steps")]

use std::path::{Path, PathBuf};
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
use shardkeep_types::{
    InMemoryKek, InMemorySigner, KekId, KeyId, KeyVersion, NodeId, NodeVersion, SignerId, Timestamp,
};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

fn fixture(party: usize) -> LocalPartySaveData {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tss-lib/ecdsa")
        .join(format!("keygen_data_{party}.json"));
    // The file holds Xi: read it into a buffer that is wiped on drop.
    let json = Zeroizing::new(std::fs::read(&path).unwrap());
    LocalPartySaveData::from_json(&json).unwrap()
}

fn main() {
    let started = Instant::now();
    let mut rng = rand::rngs::ChaCha20Rng::try_from_rng(&mut rand::rngs::SysRng).unwrap();
    let id = NodeVersion {
        key_id: KeyId::new("demo-key").unwrap(),
        node_id: NodeId::new("node-0").unwrap(),
        version: KeyVersion::new(1),
    };
    let signer = InMemorySigner::generate(SignerId::new("envelope-signer").unwrap(), &mut rng);
    let custodians: Vec<_> = (0..3).map(|_| age::x25519::Identity::generate()).collect();

    // 1. Generate.
    let (server_envelopes, containers) = {
        let data = fixture(0);
        println!("loaded {data:?}");
        let xi = data.secret_share::<Secp256k1>().unwrap();
        let (commitments, shares) = split(&xi, Threshold::new(3, 5).unwrap(), &mut rng)
            .unwrap()
            .into_parts();
        let archive = data.seal_archive(&id).unwrap();
        let params = EnvelopeParams {
            node_version: id.clone(),
            created_at: Timestamp::now(),
            binding: data.binding(&archive).unwrap(),
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
                let kek_id = KekId::new(format!("server-kek-{}", share.index())).unwrap();
                let kek = InMemoryKek::for_slot(kek_id, id.slot(share.index()), &mut rng);
                server.push(
                    params
                        .seal(&commitments, share, &signer, &kek, &mut rng)
                        .unwrap(),
                );
            } else {
                let envelope = params.plain(&commitments, share, &signer).unwrap();
                let custodian = &custodians[usize::from(share.index().get()) - 3];
                let recipients = ContainerRecipients::x25519(vec![custodian.to_public()]).unwrap();
                containers.push(
                    seal_container(&envelope, archive.as_bytes(), &recipients, Armor::Ascii)
                        .unwrap(),
                );
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
    trusted.add_signer(&signer).unwrap();
    let opened: Vec<_> = containers
        .iter()
        .zip(&custodians)
        .map(|(c, identity)| {
            open_container(
                c,
                ContainerIdentity::X25519(std::slice::from_ref(identity)),
                &trusted,
            )
            .unwrap()
        })
        .collect();
    let header = opened[0].envelope().header();
    let binding = header.binding().clone();
    let commitments = <&Commitments<Secp256k1>>::try_from(header.commitments())
        .unwrap()
        .clone();
    let archive = SealedArchive::from_bytes(opened[0].archive().to_vec()).unwrap();
    let shares: Vec<Share<Secp256k1>> = opened
        .into_iter()
        .map(|o| Share::try_from(o.into_parts().0.into_plain_share().unwrap()).unwrap())
        .collect();
    let xi = combine_verified(shares, &commitments)
        .unwrap()
        .into_secret();
    let recovered = regenerate(&xi, &archive, &binding, &id).unwrap();
    println!("recovered Xi from 3 external shares; regenerated the save data");

    let sandbox = tempfile::tempdir().unwrap();
    let codec = KekKeystoreCodec::new(InMemoryKek::generate(
        KekId::new("node-kek").unwrap(),
        &mut rng,
    ));
    let path = write_keystore(
        sandbox.path(),
        &id,
        &recovered,
        &codec,
        WriteMode::CreateNew,
    )
    .unwrap();
    let loaded = load_keystore(&path, &id, &codec).unwrap();
    println!(
        "wrote and loaded {}",
        path.file_name().unwrap().to_string_lossy()
    );
    assert!(
        bool::from(loaded.ct_eq(&fixture(0))),
        "the loaded save data differs from the original"
    );

    // 4. Self-test with the other parties as peers.
    let others: Vec<_> = (1..5).map(fixture).collect();
    let mut peers = InProcessPeers::new(&others);
    let report = loaded
        .self_test(Threshold::from_tss_lib(2, 5).unwrap(), &mut peers)
        .unwrap();
    print!("{report}");
    assert!(report.passed());
    println!("drill passed in {:?}", started.elapsed());
}
