//! The local key-file provider end to end, in a temporary directory (no
//! set-up needed): a store with a master KEK, one KEK per share slot, a data
//! key wrapped and unwrapped, a slot crypto-shredded, and an ed25519 signer
//! in a key file.
//!
//! Run: `cargo run -p shardkeep-kms --example local_key_file`
#![allow(clippy::print_stdout)] // an example talks to its reader

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_types::ShareIndex;
use shardkeep_types::{
    CustodyError, DataKey, KekId, KeyEncryptionKey, KeyId, KeyVersion, NodeId, ShareSlot, Signer,
    SignerId,
};
use subtle::ConstantTimeEq;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = LocalKeyStore::create(dir.path().join("kms"), KekId::new("master-2026")?)?;
    println!(
        "store {} (master key {})",
        store.dir().display(),
        store.master_id()
    );

    // One share slot: share 4 of node-a's share of group key wallet-7, v1.
    let slot = ShareSlot {
        key_id: KeyId::new("wallet-7")?,
        node_id: NodeId::new("node-a")?,
        version: KeyVersion::new(1),
        index: ShareIndex::new(4).ok_or("share index 0")?,
    };
    // A new KEK; its pin (KEK id and fingerprint) is what a service records
    // beside the share, and the only way to open or destroy the KEK later.
    let kek = store.create_slot_kek(&slot)?;
    let pin = kek.pin().clone();
    println!(
        "slot {slot} -> KEK {} (fingerprint {})",
        kek.kek_id(),
        hex::encode(pin.fingerprint)
    );

    let mut rng = ChaCha20Rng::try_from_rng(&mut rand::rngs::SysRng)?;
    let data_key = DataKey::generate(&mut rng);
    let wrapped = kek.wrap(&data_key)?;
    println!("wrapped a data key: {} bytes", wrapped.as_bytes().len());
    let unwrapped = store.open_slot_kek(&slot, &pin)?.unwrap(&wrapped)?;
    assert!(bool::from(unwrapped.ct_eq(&data_key)));
    println!("unwrapped it again");

    // Hard delete: the slot's KEK is destroyed, so its data key is gone.
    store.destroy_slot_kek(&slot, &pin)?;
    match kek.unwrap(&wrapped) {
        Err(CustodyError::KeyNotFound(id)) => {
            println!("after crypto-shredding: KEK {id} not found");
        }
        other => return Err(format!("slot still opens: {other:?}").into()),
    }

    let signer = KeyFileSigner::create(dir.path().join("audit.key"), SignerId::new("audit-1")?)?;
    let message = b"shardkeep/kms-example/v1 a message to sign";
    let signature = signer.sign(message)?;
    signer.verifying_key().verify_strict(message, &signature)?;
    println!(
        "signer {} signed; public key {}",
        signer.signer_id(),
        hex::encode(signer.verifying_key().as_bytes())
    );
    Ok(())
}
