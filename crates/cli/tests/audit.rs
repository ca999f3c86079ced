//! `audit verify` on the served backup's own audit log: exported from its
//! database and checkpointed into a witness file by the audit crate, then
//! verified by the command; a changed byte, a checkpoint by another key
//! and a witness without checkpoints are each refused.
#![allow(clippy::unwrap_used)]

mod support;

use shardkeep_audit::FileWitness;
use shardkeep_test_support::tss_lib::Protocol;
use shardkeep_types::{InMemorySigner, Signer as _, SignerId, Timestamp};
use support::Served;

#[test]
fn the_served_log_verifies_and_tampering_is_found() {
    let served = Served::start();
    let operator = served.operator("ops-1");
    served.generate(&operator, Protocol::Eddsa);
    served.ok(&operator, &["status"]);

    let export = served.path("audit.export");
    let witness = served.path("audit.witness");
    let audit_signer = InMemorySigner::from_seed(SignerId::new("audit-1").unwrap(), &[0xa1; 32]);
    let records = served.runtime.block_on(async {
        let mut bytes = Vec::new();
        let records = shardkeep_audit::export(served.service.storage(), &mut bytes)
            .await
            .unwrap();
        std::fs::write(&export, bytes).unwrap();
        let mut file = FileWitness::open(&witness).unwrap();
        shardkeep_audit::checkpoint(
            served.service.storage(),
            &audit_signer,
            &mut file,
            Timestamp::now(),
        )
        .await
        .unwrap();
        records
    });
    assert!(records > 10, "{records} records");
    let key = hex::encode(audit_signer.verifying_key().to_bytes());
    let export_arg = export.display().to_string();
    let witness_arg = witness.display().to_string();
    let verify = |export: &str, witness: &str, key: &str| {
        served.run(
            &operator,
            &[
                "audit",
                "verify",
                "--export",
                export,
                "--witness",
                witness,
                "--key",
                key,
            ],
        )
    };

    let (code, verified) = verify(&export_arg, &witness_arg, &key);
    assert_eq!(code, 0, "{verified}");
    assert_eq!(verified["records"], records);
    assert_eq!(verified["head_sequence"], records);
    assert_eq!(verified["checkpoints"], 1);
    assert_eq!(verified["latest_checkpoint"], records);
    assert_eq!(verified["unwitnessed"], 0);

    // One byte of a record in the middle changed.
    let mut bytes = std::fs::read(&export).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let tampered = served.path_str("tampered.export");
    std::fs::write(&tampered, bytes).unwrap();
    let (code, refused) = verify(&tampered, &witness_arg, &key);
    assert_eq!(code, 3, "{refused}");
    assert!(
        ["audit-tampered", "audit-input"].contains(&refused["error"]["kind"].as_str().unwrap()),
        "{refused}"
    );

    // The checkpoint is not signed by the key given.
    let other = hex::encode(
        InMemorySigner::from_seed(SignerId::new("other").unwrap(), &[0xb2; 32])
            .verifying_key()
            .to_bytes(),
    );
    let (code, refused) = verify(&export_arg, &witness_arg, &other);
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "audit-tampered");

    // A witness without checkpoints anchors nothing.
    let empty = served.path_str("empty.witness");
    std::fs::write(&empty, "").unwrap();
    let (code, refused) = verify(&export_arg, &empty, &key);
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["error"]["kind"], "audit-not-anchored");
}
