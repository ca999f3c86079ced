//! The PKCS#11 provider against a SoftHSM2 token: a per-slot KEK generated
//! inside the token, a data key wrapped and unwrapped with
//! `CKM_AES_KEY_WRAP`, the slot crypto-shredded, and an ed25519 signer in the
//! token whose signatures verify with ed25519-dalek.
//!
//! Set-up (Debian: `apt-get install softhsm2`), with a token directory of
//! its own so that no system token is touched:
//!
//! ```sh
//! mkdir -p /tmp/shardkeep-hsm/tokens
//! echo 'directories.tokendir = /tmp/shardkeep-hsm/tokens' > /tmp/shardkeep-hsm/softhsm2.conf
//! export SOFTHSM2_CONF=/tmp/shardkeep-hsm/softhsm2.conf
//! softhsm2-util --init-token --free --label shardkeep-demo --so-pin 87654321 --pin 12345678
//! SHARDKEEP_PKCS11_TOKEN=shardkeep-demo SHARDKEEP_PKCS11_PIN=12345678 \
//!     cargo run -p shardkeep-kms --features pkcs11 --example softhsm
//! ```
//!
//! `SHARDKEEP_PKCS11_MODULE` overrides the module path (default: Debian's
//! `/usr/lib/softhsm/libsofthsm2.so`). The first run generates a signer and
//! prints its public key, which is the signer's pin; run it again with
//! `SHARDKEEP_SIGNER_PUBLIC_KEY=<that hex>` to open that signer by its pin.
#![allow(clippy::print_stdout, clippy::print_stderr)] // an example talks to its reader

use std::process::ExitCode;

use ed25519_dalek::VerifyingKey;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use shardkeep_kms::{DEBIAN_SOFTHSM2_MODULE, Error, Pin, Pkcs11Config, Pkcs11Token};
use shardkeep_types::ShareIndex;
use shardkeep_types::{
    CustodyError, DataKey, KeyEncryptionKey, KeyId, KeyVersion, NodeId, ShareSlot, Signer, SignerId,
};
use subtle::ConstantTimeEq;

const SET_UP: &str = "set SHARDKEEP_PKCS11_TOKEN and SHARDKEEP_PKCS11_PIN (and SOFTHSM2_CONF); \
                      the set-up steps are at the top of crates/kms/examples/softhsm.rs";

fn main() -> ExitCode {
    let (Ok(token_label), Ok(pin)) = (
        std::env::var("SHARDKEEP_PKCS11_TOKEN"),
        std::env::var("SHARDKEEP_PKCS11_PIN"),
    ) else {
        eprintln!("{SET_UP}");
        return ExitCode::from(2);
    };
    let module = std::env::var("SHARDKEEP_PKCS11_MODULE")
        .unwrap_or_else(|_| DEBIAN_SOFTHSM2_MODULE.to_owned());
    match run(Pkcs11Config::new(module, token_label, Pin::new(pin))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Pkcs11Config) -> Result<(), Box<dyn std::error::Error>> {
    let token = Pkcs11Token::open(config)?;
    println!("opened token {:?}", token.label());

    let slot = ShareSlot {
        key_id: KeyId::new("wallet-7")?,
        node_id: NodeId::new("node-a")?,
        version: KeyVersion::new(1),
        index: ShareIndex::new(4).ok_or("share index 0")?,
    };
    // A new KEK; its pin (KEK id and fingerprint) is what a service records
    // beside the share, and the only way to open or destroy the KEK later.
    let kek = token.create_slot_kek(&slot)?;
    let pin = kek.pin().clone();
    println!(
        "slot {slot} -> KEK {} (label {:?}, fingerprint {})",
        kek.kek_id(),
        kek.label(),
        hex::encode(pin.fingerprint)
    );

    let data_key = DataKey::generate(&mut ChaCha20Rng::try_from_rng(&mut rand::rngs::SysRng)?);
    let wrapped = kek.wrap(&data_key)?;
    println!(
        "wrapped a data key inside the token: {} bytes",
        wrapped.as_bytes().len()
    );
    let unwrapped = token.open_slot_kek(&slot, &pin)?.unwrap(&wrapped)?;
    assert!(bool::from(unwrapped.ct_eq(&data_key)));
    println!("unwrapped it again");

    let report = token.destroy_slot_kek(&slot, &pin)?;
    println!(
        "destroyed: {:?} ({} look-alikes under the slot's name left alone)",
        report.outcome, report.look_alikes
    );
    match kek.unwrap(&wrapped) {
        Err(CustodyError::KeyNotFound(id)) => {
            println!("after crypto-shredding: KEK {id} not found");
        }
        other => return Err(format!("slot still opens: {other:?}").into()),
    }

    let id = SignerId::new("example-signer")?;
    let signer = match std::env::var("SHARDKEEP_SIGNER_PUBLIC_KEY") {
        Ok(pinned) => {
            let pinned: [u8; 32] = hex::decode(pinned.trim())?
                .try_into()
                .map_err(|_| "SHARDKEEP_SIGNER_PUBLIC_KEY must be 32 bytes of hex")?;
            token.open_signer(&id, &VerifyingKey::from_bytes(&pinned)?)?
        }
        Err(_) => match token.generate_signer(id) {
            Err(Error::SignerExists(id)) => {
                return Err(format!(
                    "signer {id} exists: set SHARDKEEP_SIGNER_PUBLIC_KEY to the public key \
                     the run that generated it printed"
                )
                .into());
            }
            other => other?,
        },
    };
    let message = b"shardkeep/kms-example/v1 a message to sign";
    let signature = signer.sign(message)?;
    signer.verifying_key().verify_strict(message, &signature)?;
    println!(
        "token signer {} signed; public key {}",
        signer.signer_id(),
        hex::encode(signer.verifying_key().as_bytes())
    );
    Ok(())
}
