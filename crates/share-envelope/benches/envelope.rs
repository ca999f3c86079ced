//! `decode_verify` + `open` of one server-sealed envelope and of one age X25519
//! custodian container on secp256k1 (3-of-5), with the primitives timed
//! alone on the exact inputs the library gives them, so that
//! `rest = total - (ed25519 + AES-GCM-SIV or age + points + Feldman)` is the
//! library's own parsing, hashing and bookkeeping.
//!
//! Run: `cargo bench -p shardkeep-envelope`
#![allow(clippy::unwrap_used, clippy::expect_used)] // Bench setup: a failed unwrap is a broken bench.

use std::hint::black_box;
use std::io::Read;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::Signature;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::internal::{EnvelopeView, envelope_view, parse_and_hash};
use shardkeep_envelope::{
    Armor, Binding, ContainerIdentity, ContainerRecipients, EncodedEnvelope, EnvelopeParams,
    OpenedContainer, TrustedSigners, VerifiedEnvelope, archive_hash, encode_container_contents,
    open_container, seal_container,
};
use shardkeep_sss_core::{Commitments, Curve, PartyId, Secp256k1, Secret, Share, Threshold, split};
use shardkeep_types::{
    InMemoryKek, InMemorySigner, KekId, KeyEncryptionKey, KeyId, KeyVersion, NodeId, NodeVersion,
    Signer, SignerId, Timestamp,
};

/// A sealed protocol archive of a plausible size for a 5-party ECDSA key.
const ARCHIVE_LEN: usize = 8 * 1024;

struct Fixture {
    trusted: TrustedSigners,
    signer_key: ed25519_dalek::VerifyingKey,
    kek: InMemoryKek,
    sealed: Vec<u8>,
    container: Vec<u8>,
    identity: age::x25519::Identity,
    plain: EncodedEnvelope,
    archive: Vec<u8>,
    share: Share<Secp256k1>,
    threshold: Threshold,
}

fn fixture() -> Fixture {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let secret = Secret::<Secp256k1>::random(&mut rng);
    let threshold = Threshold::new(3, 5).unwrap();
    let (commitments, mut shares) = split(&secret, threshold, &mut rng).unwrap().into_parts();
    let archive = vec![0xa5; ARCHIVE_LEN];
    let mut group = Vec::new();
    Secp256k1::encode_point(
        &Secret::<Secp256k1>::random(&mut rng).public_point(),
        &mut group,
    );
    let params = EnvelopeParams {
        node_version: NodeVersion {
            key_id: KeyId::new("key-0001").unwrap(),
            node_id: NodeId::new("node-a").unwrap(),
            version: KeyVersion::new(1),
        },
        created_at: Timestamp::from_unix_seconds(1_764_000_000).unwrap(),
        binding: Binding::new(
            Secp256k1::ID,
            group,
            vec![0x01, 0x5e, 0xa7],
            commitments.to_bytes()[..33].to_vec(),
            archive_hash(&archive),
        )
        .unwrap(),
    };
    let signer = InMemorySigner::generate(SignerId::new("server-1").unwrap(), &mut rng);
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&signer).unwrap();
    let slot = params.node_version.slot(shares[0].index());
    let kek = InMemoryKek::for_slot(KekId::new("kek-1").unwrap(), slot, &mut rng);
    let sealed = params
        .seal(&commitments, &shares[0], &signer, &kek, &mut rng)
        .unwrap()
        .into_bytes()
        .to_vec();
    let identity = age::x25519::Identity::generate();
    let plain = params.plain(&commitments, &shares[3], &signer).unwrap();
    let recipients = ContainerRecipients::x25519(vec![identity.to_public()]).unwrap();
    let container = seal_container(&plain, &archive, &recipients, Armor::Binary).unwrap();
    Fixture {
        trusted,
        signer_key: signer.verifying_key(),
        kek,
        sealed,
        container,
        identity,
        plain,
        archive,
        share: shares.swap_remove(0),
        threshold,
    }
}

/// The point work of `decode_verify`: the commitments (decoded, validated,
/// encoding cached), the group key, and the party id reduction. The public
/// share is byte-compared with the decoded `C_0`, not decoded again.
fn points(view: &EnvelopeView, threshold: Threshold) -> Commitments<Secp256k1> {
    let commitments = Commitments::<Secp256k1>::from_bytes(threshold, &view.commitments).unwrap();
    Secp256k1::decode_point(&view.group_public_key).unwrap();
    PartyId::<Secp256k1>::from_be_bytes(&view.party_id).unwrap();
    commitments
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let view = envelope_view(&f.sealed).unwrap();
    let signature = Signature::from_bytes(&view.signature);
    let commitments = points(&view, f.threshold);

    let mut g = c.benchmark_group("server_envelope_secp256k1");
    g.bench_function("total_decode_verify_open", |b| {
        b.iter(|| {
            let envelope =
                VerifiedEnvelope::decode_verify(black_box(&f.sealed), &f.trusted).unwrap();
            envelope.open(&f.kek).unwrap()
        });
    });
    g.bench_function("ed25519_verify_strict", |b| {
        b.iter(|| {
            f.signer_key
                .verify_strict(black_box(&view.message), &signature)
                .unwrap();
        });
    });
    g.bench_function("aes_gcm_siv_unwrap_and_open", |b| {
        let (nonce, ciphertext) = view.sealed_payload.split_at(12);
        let nonce = Nonce::from(<[u8; 12]>::try_from(nonce).unwrap());
        b.iter(|| {
            let data_key = f.kek.unwrap(view.wrapped_key.as_ref().unwrap()).unwrap();
            Aes256GcmSiv::new(data_key.expose().into())
                .decrypt(
                    &nonce,
                    Payload {
                        msg: black_box(ciphertext),
                        aad: &view.header,
                    },
                )
                .unwrap()
        });
    });
    g.bench_function("point_decoding", |b| {
        b.iter(|| points(black_box(&view), f.threshold));
    });
    g.bench_function("feldman_check", |b| {
        b.iter(|| commitments.verify(black_box(&f.share)).unwrap());
    });
    g.bench_function("rest_parse_checksum_id", |b| {
        b.iter(|| parse_and_hash(black_box(&f.sealed)).unwrap());
    });
    g.finish();

    let mut g = c.benchmark_group("custodian_container_secp256k1");
    let identities = std::slice::from_ref(&f.identity);
    g.bench_function("total_open_container", |b| {
        b.iter(|| {
            open_container(
                black_box(&f.container),
                ContainerIdentity::X25519(identities),
                &f.trusted,
            )
            .unwrap()
        });
    });
    g.bench_function("age_x25519_decrypt", |b| {
        b.iter(|| {
            let decryptor = age::Decryptor::new_buffered(black_box(&f.container[..])).unwrap();
            let mut out = Vec::with_capacity(f.container.len());
            decryptor
                .decrypt(std::iter::once(&f.identity as &dyn age::Identity))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            out
        });
    });
    let contents = encode_container_contents(&f.plain, &f.archive).unwrap();
    g.bench_function("contents_decode_verify_no_age", |b| {
        b.iter(|| OpenedContainer::decode_verify(black_box(&contents), &f.trusted).unwrap());
    });
    g.bench_function("archive_hash_8KiB", |b| {
        let archive = vec![0xa5; ARCHIVE_LEN];
        b.iter(|| archive_hash(black_box(&archive)));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
