//! A whole recovery over gRPC on SQLite: the operator asks for approval,
//! two approvers approve over their own certificates, the operator starts
//! the session on the consumed approvals, hands the signed descriptor to the custodians,
//! and submits their encrypted, signed shares; a forged submission is
//! rejected with the one opaque reason; at threshold the keystore is
//! written, loaded back and self-tested with the other parties' sidecars
//! (keydata's `self_test_peer` example, one process per party).
//! `cargo test --workspace` builds the example; a narrowed run adds
//! `-p shardkeep-keydata --example self_test_peer`.
// The helpers below run only inside tests: a failure there is the test's.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{
    FixtureParty0, Served, SessionOrder, TestCustodian, approved_request, party0_codec, save_data,
    wire_version,
};
use shardkeep_backup::{Generated, Role, SessionDescriptor};
use shardkeep_envelope::deps::age::secrecy::ExposeSecret;
use shardkeep_grpc::proto::{
    self, RecoverMpcShareRequest, RecoveryState, RequestApprovalRequest, ShareRejectionReason,
    SubmitApprovalRequest,
};
use shardkeep_keydata::{KekKeystoreCodec, keystore_path, load_keystore};
use shardkeep_types::{InMemoryKek, Signer};
use subtle::ConstantTimeEq;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_runs_over_grpc_from_three_custodians_one_forgery_rejected_opaquely() {
    let codec = Arc::new(party0_codec());
    let served = Served::start(Arc::new(FixtureParty0 {
        codec: codec.clone(),
    }))
    .await;
    recover(&served, &codec).await;
}

/// The whole recovery of party 0's share through `served`, checked
/// against `codec`'s keystore; returns the backup and its custodians.
async fn recover(
    served: &Served,
    codec: &KekKeystoreCodec<InMemoryKek>,
) -> (Generated, Vec<TestCustodian>) {
    let (generated, custodians) = served.generate_hybrid("wallet").await;
    let keystore_dir = served.dir.path().join("keystore");
    std::fs::create_dir_all(&keystore_dir).unwrap();
    let order = SessionOrder::recovery(&generated, &keystore_dir, "INC-42");
    let mut client = served.operator_client().await;

    // The operator asks for approval of exactly this recovery; a business
    // owner and a second security person approve, each over their own
    // certificate.
    let asked = client
        .request_approval(RequestApprovalRequest {
            params: Some(order.approval_params()),
        })
        .await
        .unwrap()
        .into_inner();
    for (i, (name, role)) in [("biz-1", Role::BusinessOwner), ("sec-2", Role::Security)]
        .into_iter()
        .enumerate()
    {
        let mut approver = served.register_approver(name, role).await;
        // Nobody submits another's approval.
        let relayed = client
            .submit_approval(SubmitApprovalRequest {
                approval: approver.sign(&asked.request),
            })
            .await
            .unwrap_err();
        assert_eq!(relayed.code(), tonic::Code::PermissionDenied);
        let state = approver.approve(&asked.request).await;
        assert_eq!(state.request_hash, asked.request_hash);
        assert_eq!(state.approvals.len(), i + 1);
        assert_eq!(state.satisfied, i == 1);
    }

    let started = client
        .start_recovery(order.start_recovery(asked.request_hash.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.threshold, 3);
    let descriptor =
        SessionDescriptor::decode_verify(&started.descriptor, &served.signer.verifying_key())
            .unwrap();
    assert_eq!(
        descriptor.session.0.as_slice(),
        started.session_id.as_slice()
    );
    assert_eq!(descriptor.version, generated.version);
    assert_eq!(
        descriptor.expires_at.as_unix_seconds(),
        started.expires_at_unix
    );

    // The approvals are spent: the same request starts nothing again.
    let replayed = client
        .start_recovery(order.start_recovery(asked.request_hash.clone()))
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), tonic::Code::FailedPrecondition);

    let shares = served.submissions(&custodians, &generated, &started.descriptor);
    // A forgery: custodian 1's submission with one byte flipped (it no
    // longer decrypts).
    let mut forged = shares[1].clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;

    let first = client
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id.clone(),
            share_data: vec![forged, shares[0].clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.success);
    assert_eq!(first.state(), RecoveryState::Waiting);
    assert_eq!((first.shares_received, first.threshold), (1, 3));
    assert_eq!(first.rejected.len(), 1);
    assert_eq!(first.rejected[0].position, 0);
    assert_eq!(first.rejected[0].reason(), ShareRejectionReason::Unreadable);
    assert_eq!(
        first.rejected[0].index, 0,
        "no index for an unauthenticated share"
    );

    let done = client
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id.clone(),
            share_data: vec![shares[1].clone(), shares[2].clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state(), RecoveryState::Recovered);
    assert!(done.success);
    assert_eq!((done.shares_received, done.threshold), (3, 3));
    let external: Vec<u32> = generated
        .containers
        .iter()
        .map(|container| u32::from(container.index.get()))
        .collect();
    assert_eq!(done.received_indices, external);

    // The keystore written is party 0's share, under node 0's codec.
    let loaded = load_keystore(
        &keystore_path(&keystore_dir, &generated.version),
        &generated.version,
        codec,
    )
    .unwrap();
    assert!(bool::from(loaded.ct_eq(&save_data(0))));

    // The session is closed: another submission is refused.
    let closed = client
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id,
            share_data: vec![shares[0].clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(closed.code(), tonic::Code::FailedPrecondition);
    (generated, custodians)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_runs_over_grpc_on_a_security_approval_and_writes_no_keystore() {
    let served = Served::start(Arc::new(FixtureParty0 {
        codec: Arc::new(party0_codec()),
    }))
    .await;
    let (generated, custodians) = served.generate_hybrid("wallet").await;
    let keystore_dir = served.dir.path().join("keystore");
    std::fs::create_dir_all(&keystore_dir).unwrap();
    let order = SessionOrder::drill(&generated, "DRILL-7", 0x66);
    let mut client = served.operator_client().await;
    // One security approval satisfies a drill (`approved_request` checks).
    let approval_request_hash = approved_request(
        &mut client,
        order.approval_params(),
        [&mut served.register_approver("sec-2", Role::Security).await],
    )
    .await;

    let started = client
        .start_drill(order.start_drill(approval_request_hash))
        .await
        .unwrap()
        .into_inner();
    let descriptor =
        SessionDescriptor::decode_verify(&started.descriptor, &served.signer.verifying_key())
            .unwrap();
    assert_eq!(
        descriptor.operation,
        shardkeep_backup::ApprovalOperation::Drill
    );

    let shares = served.submissions(&custodians, &generated, &started.descriptor);
    let drilled = client
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id,
            share_data: shares,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drilled.state(), RecoveryState::Drilled);
    assert!(drilled.success);
    assert!(
        drilled
            .drill_report
            .starts_with("shardkeep-drill-report-v1\n"),
        "{}",
        drilled.drill_report
    );
    assert!(drilled.drill_report.contains("sandbox deleted"));
    // Nothing was written into the node's keystore directory.
    assert_eq!(std::fs::read_dir(&keystore_dir).unwrap().count(), 0);
}

/// Everything this binary's tests log, at every level and target (the
/// service's spans and events, tonic's, h2's, hyper's), as text.
fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
    .clone()
}

struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Base64 of `bytes` with `alphabet`, padded or not.
fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if pad {
            out.extend(std::iter::repeat_n('=', 3 - chunk.len()));
        }
    }
    out
}

/// `bytes` as a big-endian unsigned integer, in decimal (how tss-lib's
/// JSON writes `Xi`).
fn decimal(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.to_vec();
    let mut digits = Vec::new();
    while number.iter().any(|&byte| byte != 0) {
        let mut remainder = 0u32;
        for byte in &mut number {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = u8::try_from(value / 10).unwrap();
            remainder = value % 10;
        }
        digits.push(char::from(b'0' + u8::try_from(remainder).unwrap()));
    }
    digits.iter().rev().collect()
}

/// Every form of `secret` a log line could carry it in (decimal only for
/// a number-sized secret: a key, a scalar).
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let debug_list = format!("{:?}", &secret[..secret.len().min(12)]);
    let mut forms = vec![
        secret.to_vec(),
        hex::encode(secret).into_bytes(),
        hex::encode_upper(secret).into_bytes(),
        base64(secret, STANDARD, true).into_bytes(),
        base64(secret, STANDARD, false).into_bytes(),
        base64(secret, URL_SAFE, false).into_bytes(),
        // `{:?}` of a byte slice: "[12, 200, ...".
        debug_list.trim_end_matches(']').as_bytes().to_vec(),
    ];
    if secret.len() <= 64 {
        forms.push(decimal(secret).into_bytes());
    }
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The names of the `needles` (each at least 8 bytes) found in
/// `haystack`, in one pass over it: candidates by their first 8 bytes,
/// then compared whole.
fn found<'a>(haystack: &[u8], needles: &'a [(String, Vec<u8>)]) -> Vec<&'a str> {
    let mut by_prefix: std::collections::HashMap<&[u8], Vec<&(String, Vec<u8>)>> =
        std::collections::HashMap::new();
    for needle in needles {
        assert!(needle.1.len() >= 8, "{} is too short to search", needle.0);
        by_prefix.entry(&needle.1[..8]).or_default().push(needle);
    }
    let mut hits = Vec::new();
    for start in 0..haystack.len().saturating_sub(7) {
        if let Some(candidates) = by_prefix.get(&haystack[start..start + 8]) {
            for (name, needle) in candidates {
                if haystack[start..].starts_with(needle) {
                    hits.push(name.as_str());
                }
            }
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_of_a_whole_recovery_hold_no_secret_in_any_form() {
    let logs = captured_logs();
    let codec = Arc::new(party0_codec());
    let served = Served::start(Arc::new(FixtureParty0 {
        codec: codec.clone(),
    }))
    .await;
    let (generated, custodians) = recover(&served, &codec).await;

    // The secrets of the run: party 0's Xi, each custodian's share archive
    // (opened with their identity), each custodian's age identity, the
    // service signer's seed.
    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    let xi = save_data(0)
        .secret_share::<shardkeep_sss_core::Secp256k1>()
        .unwrap()
        .to_be_bytes();
    secrets.push(("Xi".into(), xi.to_vec()));
    secrets.push(("Xi, first half".into(), xi[..16].to_vec()));
    for (custodian, container) in custodians.iter().zip(&generated.containers) {
        let opened = shardkeep_envelope::open_x25519_container(
            &container.container,
            std::slice::from_ref(&custodian.identity),
            served.service.trusted_signers(),
        )
        .unwrap();
        let archive = opened.archive().to_vec();
        secrets.push((
            format!("share archive {}", container.index),
            archive.clone(),
        ));
        for (i, window) in archive.chunks(24).enumerate() {
            if window.len() == 24 {
                secrets.push((
                    format!("share archive {} part {i}", container.index),
                    window.to_vec(),
                ));
            }
        }
        secrets.push((
            format!("age identity of {}", custodian.entity),
            custodian
                .identity
                .to_string()
                .expose_secret()
                .as_bytes()
                .to_vec(),
        ));
    }
    secrets.push(("service signer seed".into(), vec![0x5e; 32]));

    let logs = logs.lock().unwrap().clone();
    // The capture works: the recovery's calls are there, with their caller.
    let text = String::from_utf8_lossy(&logs);
    assert!(text.contains("RecoverMPCShare"), "no RPC was logged");
    assert!(
        text.contains("person=ops-1") || text.contains("person=\"ops-1\""),
        "{text}"
    );
    assert!(text.contains("rpc served"));
    assert!(
        !contains(&logs, b"AGE-SECRET-KEY-1"),
        "an age identity is in the logs"
    );
    let needles: Vec<(String, Vec<u8>)> = secrets
        .iter()
        .flat_map(|(name, secret)| {
            forms(secret)
                .into_iter()
                .enumerate()
                .map(move |(form, bytes)| (format!("{name} (form {form})"), bytes))
        })
        .collect();
    let hits = found(&logs, &needles);
    assert!(hits.is_empty(), "secrets in the logs: {hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_over_grpc_after_receipts_and_a_drill_soft_deletes_rolls_back_and_hard_deletes() {
    let witness_dir = tempfile::tempdir().unwrap();
    let witness_path = witness_dir.path().join("witness");
    let witness = shardkeep_audit::FileWitness::open(&witness_path).unwrap();
    let audit_signer = Arc::new(shardkeep_types::InMemorySigner::from_seed(
        shardkeep_types::SignerId::new("audit-1").unwrap(),
        &[0xa5; 32],
    ));
    let served = Served::start_with(
        Arc::new(FixtureParty0 {
            codec: Arc::new(party0_codec()),
        }),
        move |grpc| grpc.with_checkpoints(audit_signer, witness),
    )
    .await;
    let (generated, custodians) = served.generate_hybrid("wallet").await;
    let version = wire_version(&generated.version);
    let slot = |index: u32| proto::ShareSlot {
        version: Some(version.clone()),
        index,
    };
    let mut operator = served.operator_client().await;
    let mut security = served.register_approver("sec-2", Role::Security).await;
    let mut business = served.register_approver("biz-1", Role::BusinessOwner).await;

    // Every custodian confirms their container by receipt.
    let now = shardkeep_backup::Clock::now(served.clock.as_ref());
    for (container, custodian) in generated.containers.iter().zip(&custodians) {
        let index = u32::from(container.index.get());
        operator
            .record_delivery(proto::RecordDeliveryRequest {
                slot: Some(slot(index)),
                container_hash: container.container_hash.to_vec(),
                failure_reason: String::new(),
            })
            .await
            .unwrap();
        let receipt = shardkeep_envelope::Receipt {
            custodian_id: custodian.entity.clone(),
            envelope_id: container.envelope_id,
            status: shardkeep_envelope::ReceiptStatus::Received,
            timestamp: now,
        }
        .sign(&custodian.receipt_key)
        .unwrap();
        operator
            .confirm_receipt(proto::ConfirmReceiptRequest {
                slot: Some(slot(index)),
                receipt,
            })
            .await
            .unwrap();
    }

    // A drill from the custodians' shares passes.
    let drill = SessionOrder::drill(&generated, "DRILL-1", 0x61);
    let drill_hash =
        approved_request(&mut operator, drill.approval_params(), [&mut security]).await;
    let started = operator
        .start_drill(drill.start_drill(drill_hash))
        .await
        .unwrap()
        .into_inner();
    let shares = served.submissions(&custodians, &generated, &started.descriptor);
    let drilled = operator
        .recover_mpc_share(RecoverMpcShareRequest {
            session_id: started.session_id,
            share_data: shares,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drilled.state(), RecoveryState::Drilled);

    let delete_params = |ticket: &str| proto::ApprovalParams {
        operation: proto::ApprovalOperation::Delete.into(),
        version: Some(version.clone()),
        split_id: generated.split_id.to_vec(),
        slots: vec![1, 2],
        ticket: ticket.into(),
        risk_note_hash: vec![0x64; 32],
        ..proto::ApprovalParams::default()
    };
    let soft_delete = |hash: Vec<u8>, ticket: &str| proto::SoftDeleteSharesRequest {
        version: Some(version.clone()),
        slots: vec![1, 2],
        approval_request_hash: hash,
        ticket: ticket.into(),
        risk_note_hash: vec![0x64; 32],
    };
    let states = |listing: proto::ListBackupSharesResponse| -> Vec<proto::SlotState> {
        listing
            .shares
            .iter()
            .map(proto::ServerShare::state)
            .collect()
    };

    // Soft delete, then roll back.
    let first = approved_request(
        &mut operator,
        delete_params("CHG-1"),
        [&mut business, &mut security],
    )
    .await;
    let deleted = operator
        .soft_delete_shares(soft_delete(first, "CHG-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.cooldown_until_unix > deleted.at_unix);
    let listing = operator
        .list_backup_shares(proto::ListBackupSharesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(states(listing), [proto::SlotState::SoftDeleted; 2]);
    operator
        .rollback_deletion(proto::RollbackDeletionRequest {
            version: Some(version.clone()),
            slots: vec![1, 2],
        })
        .await
        .unwrap();
    let listing = operator
        .list_backup_shares(proto::ListBackupSharesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(states(listing), [proto::SlotState::Active; 2]);

    // Soft delete again, on a new approval; the hard delete waits for the
    // cooldown.
    let second = approved_request(
        &mut operator,
        delete_params("CHG-2"),
        [&mut business, &mut security],
    )
    .await;
    let deleted = operator
        .soft_delete_shares(soft_delete(second.clone(), "CHG-2"))
        .await
        .unwrap()
        .into_inner();
    let hard_delete = proto::HardDeleteSharesRequest {
        version: Some(version.clone()),
        approval_request_hash: second,
    };
    let early = operator
        .hard_delete_shares(hard_delete.clone())
        .await
        .unwrap_err();
    assert_eq!(early.code(), tonic::Code::FailedPrecondition, "{early:?}");
    served.clock.set(
        shardkeep_types::Timestamp::from_unix_seconds(deleted.cooldown_until_unix + 1).unwrap(),
    );
    let draft = operator
        .hard_delete_shares(hard_delete)
        .await
        .unwrap()
        .into_inner();
    assert!(!draft.zero_retention_draft.is_empty());
    let listing = operator
        .list_backup_shares(proto::ListBackupSharesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(states(listing), [proto::SlotState::HardDeleted; 2]);
    // The checkpoint was witnessed.
    assert_eq!(
        shardkeep_audit::read_witness(&witness_path).unwrap().len(),
        1
    );
}
