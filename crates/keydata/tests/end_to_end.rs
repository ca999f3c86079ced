//! The recovery drill of the backup procedure (`docs/procedure.md`), end to
//! end, on real tss-lib data: load a party's save data, split `Xi` 3-of-5,
//! seal the protocol archive, build signed envelopes (two sealed for the
//! server, three plain in custodian containers with a copy of the archive),
//! drop everything, recover from the three external containers alone,
//! regenerate, write `.keydata.enc`, load it, self-test and sign/aggregate
//! with the other fixture parties.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::{Protocol, all_parties, fixture, group_threshold, keydata_id, peers_of};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{
    Armor, Binding, ContainerIdentity, ContainerRecipients, EncodedEnvelope, EnvelopeParams,
    TrustedSigners, VerifiedEnvelope, open_container, seal_container,
};
use shardkeep_keydata::{
    Check, Error, KekKeystoreCodec, LocalPartySaveData, Outcome, SealedArchive, WriteMode,
    load_keystore, regenerate, write_keystore,
};
use shardkeep_sss_core::{
    Commitments, Curve, Ed25519, Secp256k1, Share, Threshold, combine_verified, split,
};
use shardkeep_types::{InMemoryKek, InMemorySigner, KekId, NodeVersion, SignerId, Timestamp};
use subtle::ConstantTimeEq;

/// What leaves the node at generate time.
struct Backup {
    server: Vec<EncodedEnvelope>,
    containers: Vec<Vec<u8>>,
    signer: InMemorySigner,
    /// One KEK per server share slot, in share order.
    server_keks: Vec<InMemoryKek>,
    custodians: Vec<age::x25519::Identity>,
}

fn generate<C: Curve>(data: &LocalPartySaveData, id: &NodeVersion) -> Backup {
    let mut rng =
        <rand::rngs::ChaCha20Rng as rand::SeedableRng>::try_from_rng(&mut rand::rngs::SysRng)
            .unwrap();
    let xi = data.secret_share::<C>().unwrap();
    let (commitments, shares) = split(&xi, Threshold::new(3, 5).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let archive = data.seal_archive(id).unwrap();
    let params = EnvelopeParams {
        node_version: id.clone(),
        created_at: Timestamp::now(),
        binding: data.binding(&archive).unwrap(),
    };
    let signer = InMemorySigner::generate(SignerId::new("envelope-signer").unwrap(), &mut rng);
    let mut server_keks = Vec::new();
    let custodians: Vec<_> = (0..3).map(|_| age::x25519::Identity::generate()).collect();
    let mut server = Vec::new();
    let mut containers = Vec::new();
    for share in &shares {
        if share.index().get() <= 2 {
            let kek_id = KekId::new(format!("server-kek-{}", share.index())).unwrap();
            let kek = InMemoryKek::for_slot(kek_id, id.slot(share.index()), &mut rng);
            server.push(
                params
                    .seal(&commitments, share, &signer, &kek, &mut rng)
                    .unwrap(),
            );
            server_keks.push(kek);
        } else {
            let envelope = params.plain(&commitments, share, &signer).unwrap();
            let recipient = custodians[usize::from(share.index().get()) - 3].to_public();
            let recipients = ContainerRecipients::x25519(vec![recipient]).unwrap();
            containers.push(
                seal_container(&envelope, archive.as_bytes(), &recipients, Armor::Ascii).unwrap(),
            );
        }
    }
    Backup {
        server,
        containers,
        signer,
        server_keks,
        custodians,
    }
}

/// Recovery from the external containers only (the quarterly drill).
fn recover_external<C: Curve>(backup: &Backup, id: &NodeVersion) -> LocalPartySaveData
where
    for<'a> &'a Commitments<C>:
        TryFrom<&'a shardkeep_envelope::CurveCommitments, Error = shardkeep_envelope::Error>,
    Share<C>: TryFrom<shardkeep_envelope::CurveShare, Error = shardkeep_envelope::Error>,
{
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&backup.signer).unwrap();
    let opened: Vec<_> = backup
        .containers
        .iter()
        .zip(&backup.custodians)
        .map(|(container, identity)| {
            open_container(
                container,
                ContainerIdentity::X25519(std::slice::from_ref(identity)),
                &trusted,
            )
            .unwrap()
        })
        .collect();
    let (envelopes, archives): (Vec<VerifiedEnvelope>, Vec<Vec<u8>>) = opened
        .into_iter()
        .map(shardkeep_envelope::OpenedContainer::into_parts)
        .unzip();
    let header = envelopes[0].header();
    let binding: Binding = header.binding().clone();
    let commitments: Commitments<C> = <&Commitments<C>>::try_from(header.commitments())
        .unwrap()
        .clone();
    for envelope in &envelopes {
        assert_eq!(envelope.header().split_id(), header.split_id());
        assert_eq!(envelope.header().binding(), &binding);
        assert_eq!(envelope.header().node_version(), id);
    }
    let archive = SealedArchive::from_bytes(archives[0].clone()).unwrap();
    let shares: Vec<Share<C>> = envelopes
        .into_iter()
        .map(|e| Share::<C>::try_from(e.into_plain_share().unwrap()).unwrap())
        .collect();
    let recovery = combine_verified(shares, &commitments).unwrap();
    assert!(recovery.rejected().is_empty());
    regenerate(recovery.secret(), &archive, &binding, id).unwrap()
}

fn drill<C: Curve>(protocol: Protocol, party: usize)
where
    for<'a> &'a Commitments<C>:
        TryFrom<&'a shardkeep_envelope::CurveCommitments, Error = shardkeep_envelope::Error>,
    Share<C>: TryFrom<shardkeep_envelope::CurveShare, Error = shardkeep_envelope::Error>,
{
    let id = keydata_id(&format!("node-{party}"));
    let backup = {
        let data = fixture(protocol, party);
        generate::<C>(&data, &id)
        // `data` (and with it Xi) is dropped here: nothing of it is kept.
    };
    assert_eq!((backup.server.len(), backup.containers.len()), (2, 3));

    let recovered = recover_external::<C>(&backup, &id);

    let sandbox = tempfile::tempdir().unwrap();
    let codec = KekKeystoreCodec::new(InMemoryKek::from_bytes(
        KekId::new("node-kek").unwrap(),
        &[7; 32],
    ));
    let path = write_keystore(
        sandbox.path(),
        &id,
        &recovered,
        &codec,
        WriteMode::CreateNew,
    )
    .unwrap();
    drop(recovered);
    let loaded = load_keystore(&path, &id, &codec).unwrap();

    let original = fixture(protocol, party);
    assert!(
        bool::from(loaded.ct_eq(&original)),
        "loaded data differs from the original"
    );
    assert_eq!(loaded.to_json().as_slice(), original.to_json().as_slice());

    let parties = all_parties(protocol);
    let mut peers = peers_of(&parties, party);
    let report = loaded.self_test(group_threshold(), &mut peers).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.outcome(Check::SignAggregate), Some(&Outcome::Passed));

    // A second drill into the same sandbox does not clobber the keystore.
    assert!(matches!(
        write_keystore(sandbox.path(), &id, &loaded, &codec, WriteMode::CreateNew),
        Err(Error::KeystoreExists { .. })
    ));
}

#[test]
fn ecdsa_drill_from_external_shares_alone() {
    drill::<Secp256k1>(Protocol::Ecdsa, 0);
}

#[test]
fn eddsa_drill_from_external_shares_alone() {
    drill::<Ed25519>(Protocol::Eddsa, 3);
}

#[test]
fn server_shares_open_with_the_server_kek_and_mix_with_external_ones() {
    let id = keydata_id("node-2");
    let data = fixture(Protocol::Ecdsa, 2);
    let backup = generate::<Secp256k1>(&data, &id);
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&backup.signer).unwrap();
    let server: Vec<VerifiedEnvelope> = backup
        .server
        .iter()
        .map(|e| VerifiedEnvelope::decode_verify(e.as_bytes(), &trusted).unwrap())
        .collect();
    let opened = open_container(
        &backup.containers[0],
        ContainerIdentity::X25519(&backup.custodians[..1]),
        &trusted,
    )
    .unwrap();
    let binding = opened.envelope().header().binding().clone();
    let commitments = <&Commitments<Secp256k1>>::try_from(opened.envelope().header().commitments())
        .unwrap()
        .clone();
    let archive = SealedArchive::from_bytes(opened.archive().to_vec()).unwrap();
    let mut shares: Vec<Share<Secp256k1>> = server
        .iter()
        .zip(&backup.server_keks)
        .map(|(e, kek)| Share::try_from(e.open(kek).unwrap()).unwrap())
        .collect();
    shares.push(Share::try_from(opened.into_parts().0.into_plain_share().unwrap()).unwrap());
    let xi = combine_verified(shares, &commitments)
        .unwrap()
        .into_secret();
    let recovered = regenerate(&xi, &archive, &binding, &id).unwrap();
    assert!(bool::from(recovered.ct_eq(&data)));

    // The same share and archive under another node's ids: refused, nothing built.
    assert!(matches!(
        regenerate(&xi, &archive, &binding, &keydata_id("node-3")),
        Err(Error::ArchiveOpenFailed)
    ));
    // Party 3's binding with party 2's recovered share: not this node's share.
    let other = fixture(Protocol::Ecdsa, 3);
    let other_archive = other.seal_archive(&keydata_id("node-3")).unwrap();
    assert!(matches!(
        regenerate(
            &xi,
            &other_archive,
            &other.binding(&other_archive).unwrap(),
            &keydata_id("node-3")
        ),
        Err(Error::NotThisNodesShare)
    ));
}
