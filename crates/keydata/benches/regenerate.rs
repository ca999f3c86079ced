//! Recovery of one ECDSA party, stage by stage: regenerate the save data
//! from its recovered share, sealed archive and binding; write the
//! `.keydata.enc` atomically; load it; self-test with the other parties.
//! The parts of the stages are measured too, to show where the time goes.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use shardkeep_keydata::{
    InProcessPeers, KekKeystoreCodec, LocalPartySaveData, WriteMode, keystore_path, load_keystore,
    regenerate, write_keystore,
};
use shardkeep_sss_core::{Secp256k1, Threshold};
use shardkeep_test_support::tss_lib::{self, Protocol};
use shardkeep_types::{InMemoryKek, KekId, KeyId, KeyVersion, NodeId, NodeVersion};

fn fixture(protocol: Protocol, party: usize) -> LocalPartySaveData {
    LocalPartySaveData::from_json(&tss_lib::fixture_bytes(protocol, party).unwrap()).unwrap()
}

fn id() -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("key-1").unwrap(),
        node_id: NodeId::new("node-0").unwrap(),
        version: KeyVersion::new(1),
    }
}

fn recovery(c: &mut Criterion) {
    let parties: Vec<_> = (0..tss_lib::PARTIES)
        .map(|i| fixture(Protocol::Ecdsa, i))
        .collect();
    let eddsa: Vec<_> = (0..tss_lib::PARTIES)
        .map(|i| fixture(Protocol::Eddsa, i))
        .collect();
    let data = &parties[0];
    let id = id();
    let xi = data.secret_share::<Secp256k1>().unwrap();
    let archive = data.seal_archive(&id).unwrap();
    let binding = data.binding(&archive).unwrap();
    let threshold = Threshold::from_tss_lib(tss_lib::TSS_LIB_THRESHOLD, tss_lib::PARTIES).unwrap();
    let codec = KekKeystoreCodec::new(InMemoryKek::from_bytes(
        KekId::new("kek-1").unwrap(),
        &[1; 32],
    ));
    let dir = tempfile::tempdir().unwrap();
    let json = data.to_json();
    write_keystore(dir.path(), &id, data, &codec, WriteMode::CreateNew).unwrap();
    let path = keystore_path(dir.path(), &id);

    let mut group = c.benchmark_group("ecdsa_recovery");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));

    group.bench_function("1_regenerate", |b| {
        b.iter(|| regenerate(&xi, &archive, &binding, &id).unwrap());
    });
    group.bench_function("2_write_keystore", |b| {
        b.iter(|| write_keystore(dir.path(), &id, data, &codec, WriteMode::Replace).unwrap());
    });
    group.bench_function("3_load_keystore", |b| {
        b.iter(|| load_keystore(&path, &id, &codec).unwrap());
    });
    group.bench_function("4_self_test", |b| {
        b.iter(|| {
            let mut peers = InProcessPeers::new(&parties[1..]);
            let report = data.self_test(threshold, &mut peers).unwrap();
            assert!(report.passed());
        });
    });
    group.bench_function("all_stages", |b| {
        b.iter(|| {
            let regenerated = regenerate(&xi, &archive, &binding, &id).unwrap();
            let path =
                write_keystore(dir.path(), &id, &regenerated, &codec, WriteMode::Replace).unwrap();
            let loaded = load_keystore(&path, &id, &codec).unwrap();
            let mut peers = InProcessPeers::new(&parties[1..]);
            assert!(loaded.self_test(threshold, &mut peers).unwrap().passed());
        });
    });
    group.finish();

    // Parts of the stages.
    let mut parts = c.benchmark_group("ecdsa_parts");
    parts
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    parts.bench_function("parse_json", |b| {
        b.iter(|| LocalPartySaveData::from_json(black_box(&json)).unwrap());
    });
    parts.bench_function("write_json", |b| b.iter(|| black_box(data).to_json()));
    parts.bench_function("seal_archive", |b| {
        b.iter(|| data.seal_archive(&id).unwrap());
    });
    parts.bench_function("write_keystore_without_fsync_baseline", |b| {
        // The codec alone (JSON + AES-GCM-SIV + KEK wrap), no file.
        b.iter(|| shardkeep_keydata::KeystoreCodec::encode(&codec, &id, &json).unwrap());
    });
    // The same party without the fields the Paillier / Ntilde checks need:
    // the difference to 4_self_test is the constant-time big-integer work.
    let without_paillier = {
        let text = String::from_utf8(json.to_vec()).unwrap();
        let cut = |s: &str, from: &str, to: &str| {
            let a = s.find(from).unwrap();
            let b = a + s[a..].find(to).unwrap();
            format!("{}{}", &s[..a], &s[b..])
        };
        let text = cut(&text, ",\"Alpha\":", ",\"Xi\":");
        let text = cut(&text, ",\"P\":", "},\"NTildei\"");
        LocalPartySaveData::from_json(text.as_bytes()).unwrap()
    };
    parts.bench_function("self_test_without_paillier_checks", |b| {
        b.iter(|| {
            let mut peers = InProcessPeers::new(&parties[1..]);
            assert!(
                without_paillier
                    .self_test(threshold, &mut peers)
                    .unwrap()
                    .passed()
            );
        });
    });
    parts.bench_function("self_test_eddsa", |b| {
        b.iter(|| {
            let mut peers = InProcessPeers::new(&eddsa[1..]);
            assert!(eddsa[0].self_test(threshold, &mut peers).unwrap().passed());
        });
    });
    parts.finish();
}

criterion_group!(benches, recovery);
criterion_main!(benches);
