//! The hybrid-mode lifecycle of one node's share, end to end in memory:
//! split 3-of-5, seal two server envelopes, put three custodian envelopes in
//! age containers, collect receipts into a delivery certificate, then
//! recover from the three external containers alone (a recovery drill).
//! These are the envelope crate's own calls; the backup service makes them
//! for an operator (`examples/hybrid_backup.rs`, on `shardkeep-backup`).
//!
//! Run: `cargo run -p shardkeep-envelope --example lifecycle`

use std::collections::BTreeMap;
use std::io::Write;

use rand::rngs::ChaCha20Rng;
use shardkeep_envelope::{
    Armor, Binding, ContainerIdentity, ContainerRecipients, CustodianSet, DeliveryCertificate,
    EnvelopeParams, Receipt, ReceiptStatus, TrustedSigners, VerifiedEnvelope, VerifiedReceipt,
    archive_hash, open_container, seal_container,
};
use shardkeep_sss_core::{Curve, Secp256k1, Secret, Share, Threshold, combine_verified, split};
use shardkeep_types::{
    CustodianId, InMemoryKek, InMemorySigner, KekId, KeyId, KeyVersion, NodeId, NodeVersion,
    Signer, SignerId, Timestamp,
};
use subtle::ConstantTimeEq;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::io::stdout().lock();
    let mut rng: ChaCha20Rng = rand::make_rng();

    // The node's MPC share Xi, its public share BigXj[self] = Xi*G, and the
    // sealed protocol archive (opaque here; keydata makes the real one).
    let xi = Secret::<Secp256k1>::random(&mut rng);
    let sealed_archive = b"sealed LocalPartySaveData without Xi".to_vec();
    let mut group_key = Vec::new();
    Secp256k1::encode_point(
        &Secret::<Secp256k1>::random(&mut rng).public_point(),
        &mut group_key,
    );
    let mut public_share = Vec::new();
    Secp256k1::encode_point(&xi.public_point(), &mut public_share);

    // 1. Generate: split 3-of-5 and bind every envelope to the node.
    let (commitments, shares) = split(&xi, Threshold::new(3, 5)?, &mut rng)?.into_parts();
    let params = EnvelopeParams {
        node_version: NodeVersion {
            key_id: KeyId::new("wallet-key-7")?,
            node_id: NodeId::new("mpc-node-2")?,
            version: KeyVersion::new(1),
        },
        created_at: Timestamp::now(),
        binding: Binding::new(
            Secp256k1::ID,
            group_key,
            vec![0x02, 0x9f],
            public_share,
            archive_hash(&sealed_archive),
        )?,
    };
    let server = InMemorySigner::generate(SignerId::new("backup-server-1")?, &mut rng);
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&server)?;

    // Two server envelopes, each under its own slot KEK.
    let keks: Vec<InMemoryKek> = shares[..2]
        .iter()
        .map(|share| {
            let slot = params.node_version.slot(share.index());
            KekId::new(format!("kek-slot-{}", share.index()))
                .map(|id| InMemoryKek::for_slot(id, slot, &mut rng))
        })
        .collect::<Result<_, shardkeep_types::Error>>()?;
    let mut server_envelopes = Vec::new();
    for (share, kek) in shares[..2].iter().zip(&keks) {
        server_envelopes.push(params.seal(&commitments, share, &server, kek, &mut rng)?);
    }

    // 2. Deliver: three custodian containers (age X25519, armored).
    let custodian_names = ["security-team", "independent-custodian", "cold-backup"];
    let mut custodians = CustodianSet::new();
    let mut containers = Vec::new();
    let mut deliveries = BTreeMap::new();
    let mut receipt_keys = Vec::new();
    for (share, name) in shares[2..].iter().zip(custodian_names) {
        let identity = age::x25519::Identity::generate();
        let receipt_key = InMemorySigner::generate(SignerId::new(name)?, &mut rng);
        custodians.insert(
            share.index(),
            CustodianId::new(name)?,
            receipt_key.verifying_key(),
        )?;
        let envelope = params.plain(&commitments, share, &server)?;
        deliveries.insert(share.index(), envelope.id());
        let recipients = ContainerRecipients::x25519(vec![identity.to_public()])?;
        containers.push((
            identity,
            seal_container(&envelope, &sealed_archive, &recipients, Armor::Ascii)?,
        ));
        receipt_keys.push(receipt_key);
    }
    writeln!(
        out,
        "sealed {} server envelopes and {} custodian containers",
        server_envelopes.len(),
        containers.len()
    )?;

    // Each custodian opens its container and signs a receipt.
    let mut receipts = Vec::new();
    for ((identity, container), key) in containers.iter().zip(&receipt_keys) {
        let opened = open_container(
            container,
            ContainerIdentity::X25519(std::slice::from_ref(identity)),
            &trusted,
        )?;
        let bytes = Receipt {
            custodian_id: CustodianId::new(key.signer_id().as_str())?,
            envelope_id: opened.envelope().id(),
            status: ReceiptStatus::Received,
            timestamp: Timestamp::now(),
        }
        .sign(key)?;
        receipts.push(VerifiedReceipt::decode_verify(&bytes, &custodians)?);
    }
    let certificate = DeliveryCertificate::assemble(&custodians, &deliveries, &receipts)?;
    writeln!(
        out,
        "delivery certificate complete: {}",
        certificate.is_complete()
    )?;

    // 3. Inspect: the server envelopes verify without secrets and open with their KEKs.
    for (bytes, kek) in server_envelopes.iter().zip(&keks) {
        let envelope = VerifiedEnvelope::decode_verify(bytes.as_bytes(), &trusted)?;
        let share: Share<Secp256k1> = envelope.open(kek)?.try_into()?;
        writeln!(
            out,
            "server share {} opens, envelope {}",
            share.index(),
            envelope.id()
        )?;
    }

    // 4. Drill: recover from the external containers only.
    let mut external = Vec::new();
    for (identity, container) in &containers {
        let opened = open_container(
            container,
            ContainerIdentity::X25519(std::slice::from_ref(identity)),
            &trusted,
        )?;
        let (envelope, archive) = opened.into_parts();
        assert_eq!(
            archive, sealed_archive,
            "the archive copy matches its signed hash"
        );
        external.push(Share::<Secp256k1>::try_from(envelope.into_plain_share()?)?);
    }
    let recovery = combine_verified(external, &commitments)?;
    let recovered = bool::from(recovery.secret().ct_eq(&xi));
    writeln!(out, "recovered Xi from external shares only: {recovered}")?;
    if !recovered {
        return Err("recovered secret differs".into());
    }
    Ok(())
}
