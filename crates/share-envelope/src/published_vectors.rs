//! Published vectors against the primitives as this crate uses them:
//! Wycheproof AES-GCM-SIV (through `aead::open`/`aead::seal`), Wycheproof
//! Ed25519 and the CCTV Ed25519 edge cases (through `trust::verify_strict`
//! and the key admission of `TrustedSigners`). Unmodified copies live in
//! `tests/data/wycheproof/` and `tests/data/cctv-ed25519/`, each with its
//! licence (`tests/data/README.md` names their sources).

use std::path::PathBuf;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::aead;
use crate::trust::{TrustedSigners, admit_key, verify_strict};
use shardkeep_types::DataKey;
use shardkeep_types::SignerId;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// Only 256-bit keys and 96-bit nonces are used here (data keys are
/// AES-256; 128-bit-key groups exercise a key size this crate never uses).
#[test]
fn wycheproof_aes_gcm_siv_256() {
    let file = load("wycheproof/aes_gcm_siv_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for group in file["testGroups"].as_array().unwrap() {
        if group["keySize"] != 256 || group["ivSize"] != 96 {
            continue;
        }
        for case in group["tests"].as_array().unwrap() {
            let id = &case["tcId"];
            let key = DataKey::from_bytes(&bytes(&case["key"]).try_into().unwrap());
            let nonce: [u8; 12] = bytes(&case["iv"]).try_into().unwrap();
            let aad = bytes(&case["aad"]);
            let mut sealed = bytes(&case["ct"]);
            sealed.extend(bytes(&case["tag"]));
            let opened = aead::open(&key, &nonce, &aad, &sealed);
            match case["result"].as_str().unwrap() {
                "valid" => {
                    let msg = bytes(&case["msg"]);
                    assert_eq!(opened.unwrap().as_slice(), msg, "tcId {id}");
                    assert_eq!(
                        aead::seal(&key, &nonce, &aad, &msg).unwrap(),
                        sealed,
                        "tcId {id}"
                    );
                    valid += 1;
                }
                "invalid" => {
                    assert!(opened.is_err(), "tcId {id} must fail");
                    invalid += 1;
                }
                other => panic!("tcId {id}: unexpected result {other}"),
            }
        }
    }
    assert!(
        valid > 50 && invalid > 10,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn wycheproof_ed25519_verify_strict() {
    let file = load("wycheproof/ed25519_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for group in file["testGroups"].as_array().unwrap() {
        let pk: [u8; 32] = bytes(&group["publicKey"]["pk"]).try_into().unwrap();
        let key = VerifyingKey::from_bytes(&pk).unwrap();
        // Every Wycheproof key is an honest key: admitted to a trusted set.
        admit_key("wycheproof", &key).unwrap();
        for case in group["tests"].as_array().unwrap() {
            let id = &case["tcId"];
            let msg = bytes(&case["msg"]);
            let sig = bytes(&case["sig"]);
            // Signatures are read as exactly 64 bytes; any other length is
            // a format error before verification.
            let outcome = <[u8; 64]>::try_from(sig.as_slice())
                .ok()
                .map(|sig| verify_strict(&key, &msg, &sig).is_ok());
            match case["result"].as_str().unwrap() {
                "valid" => {
                    assert_eq!(outcome, Some(true), "tcId {id}");
                    valid += 1;
                }
                "invalid" => {
                    assert_ne!(outcome, Some(true), "tcId {id} must fail");
                    invalid += 1;
                }
                other => panic!("tcId {id}: unexpected result {other}"),
            }
        }
    }
    assert!(
        valid > 5 && invalid > 50,
        "{valid} valid, {invalid} invalid"
    );
}

/// CCTV's edge cases, decided per case from the flags:
///
/// - `verify_strict` must reject any vector flagged `low_order_A`,
///   `low_order_R`, `non_canonical_A`, `non_canonical_R` or
///   `low_order_residue` (small-order points and non-canonical encodings are
///   refused; it checks the cofactorless equation, so a residue never
///   verifies), and accept the rest (no flag, or only
///   `low_order_component_A` / `low_order_component_R`: the cofactorless
///   equation holds).
/// - As used, a key must also be admitted to [`TrustedSigners`], which
///   refuses keys with any torsion component or a non-canonical encoding:
///   so the pipeline accepts exactly the vectors `verify_strict` accepts
///   whose key is not flagged `low_order_component_A`.
#[test]
fn cctv_ed25519_edge_cases() {
    let file = load("cctv-ed25519/ed25519vectors.json");
    let (mut accepted, mut rejected) = (0, 0);
    for case in file.as_array().unwrap() {
        let number = &case["number"];
        let flags: Vec<&str> = case["flags"]
            .as_array()
            .map(|f| f.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        let has = |flag: &str| flags.contains(&flag);
        let strict_accepts = !(has("low_order_A")
            || has("low_order_R")
            || has("non_canonical_A")
            || has("non_canonical_R")
            || has("low_order_residue"));
        let pipeline_accepts = strict_accepts && !has("low_order_component_A");

        let pk: [u8; 32] = bytes(&case["key"]).try_into().unwrap();
        let sig: [u8; 64] = bytes(&case["sig"]).try_into().unwrap();
        let msg = case["msg"].as_str().unwrap().as_bytes();
        let strict =
            VerifyingKey::from_bytes(&pk).is_ok_and(|key| verify_strict(&key, msg, &sig).is_ok());
        assert_eq!(
            strict, strict_accepts,
            "case {number} {flags:?}: verify_strict"
        );

        let pipeline = VerifyingKey::from_bytes(&pk).is_ok_and(|key| {
            let mut trust = TrustedSigners::new();
            trust.add(SignerId::new("cctv").unwrap(), key).is_ok()
                && verify_strict(&key, msg, &sig).is_ok()
        });
        assert_eq!(
            pipeline, pipeline_accepts,
            "case {number} {flags:?}: as used"
        );
        if pipeline {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(
        accepted > 0 && rejected > 0,
        "{accepted} accepted, {rejected} rejected"
    );
}
