//! The anchor of the log: `checkpoint` signs the committed head (naming the
//! log and the signer), checks its own signature, always witnesses and never
//! trusts a row of the audited database; the verifier takes the witnessed
//! heads from outside that database. On SQLite with a witness file, and on
//! PostgreSQL with a witness database the service can only append to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Tests fail by panicking.

use std::path::Path;
use std::process::Command;

use ed25519_dalek::{Signature, VerifyingKey};
use shardkeep_audit::{
    AuditLogId, AuditRecord, Checkpoint, Error, EventType, FileWitness, Finding, PostgresWitness,
    Witness, append, checkpoint, export, parse_export, read_witness, verify,
};
use shardkeep_storage::test_support::{OWNER_ROLE, PostgresCluster, SERVICE_ROLE};
use shardkeep_storage::{
    AuditStore, PostgresStorage, SqliteStorage, Storage, StoredCheckpoint, Transaction,
};
use shardkeep_test_support::runtime::multi_thread as runtime;
use shardkeep_types::{
    ActorId, CustodyError, FreeText, InMemorySigner, Signer, SignerId, Timestamp,
};

fn signer() -> InMemorySigner {
    InMemorySigner::from_seed(SignerId::new("audit-checkpoints").unwrap(), &[5; 32])
}

fn record(name: &str, i: usize) -> AuditRecord {
    let mut record = AuditRecord::new(
        EventType::ShareRead,
        Timestamp::from_unix_millis(u64::try_from(i).unwrap()).unwrap(),
        ActorId::new(name).unwrap(),
    );
    record.detail = Some(FreeText::new(format!("{name} record {i}")).unwrap());
    record
}

async fn append_records<S: Storage>(storage: &S, name: &str, count: usize) {
    let mut tx = storage.begin().await.unwrap();
    for i in 0..count {
        append(&mut tx, &record(name, i)).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn sqlite(dir: &Path, name: &str) -> SqliteStorage {
    SqliteStorage::open(dir.join(name)).await.unwrap()
}

async fn exported<S: Storage>(storage: &S) -> shardkeep_audit::Export {
    let mut bytes = Vec::new();
    export(storage, &mut bytes).await.unwrap();
    parse_export(&bytes).unwrap()
}

/// Stores `bytes` as a checkpoint row at the head, as anyone with the
/// service's INSERT right can.
async fn plant_row<S: Storage>(storage: &S, bytes: Vec<u8>) {
    let mut tx = storage.begin().await.unwrap();
    let head = tx.audit_head().await.unwrap();
    tx.store_checkpoint(&StoredCheckpoint {
        sequence: head.sequence,
        head_hash: head.hash,
        checkpoint: bytes,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn checkpoint_never_returns_a_planted_row() {
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite(dir.path(), "a.db").await;
    append_records(&storage, "ops", 3).await;
    // A well-formed checkpoint of the head, signed by someone else.
    let intruder = InMemorySigner::from_seed(SignerId::new("audit-checkpoints").unwrap(), &[6; 32]);
    let mut read = storage.begin_read_only().await.unwrap();
    let (log_id, head) = (
        read.audit_log_id().await.unwrap(),
        read.audit_head().await.unwrap(),
    );
    drop(read);
    let planted = Checkpoint::sign(log_id, &head, Timestamp::EPOCH, &intruder).unwrap();
    plant_row(&storage, planted.to_line().into_bytes()).await;

    let mut witness = FileWitness::open(dir.path().join("witness")).unwrap();
    let made = checkpoint(&storage, &signer(), &mut witness, Timestamp::now())
        .await
        .unwrap();
    assert!(made.verifies(&signer().verifying_key()));
    assert_ne!(made, planted);
    assert_eq!((made.log_id, made.head()), (log_id, head));
    assert_eq!(
        read_witness(witness.path()).unwrap(),
        std::slice::from_ref(&made)
    );
    let mut read = storage.begin_read_only().await.unwrap();
    assert_eq!(
        read.latest_checkpoint().await.unwrap().unwrap().checkpoint,
        made.to_line().into_bytes()
    );
}

#[tokio::test]
async fn a_garbage_row_does_not_block_checkpointing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite(dir.path(), "a.db").await;
    append_records(&storage, "ops", 3).await;
    plant_row(&storage, b"garbage".to_vec()).await;
    let mut witness = FileWitness::open(dir.path().join("witness")).unwrap();
    let made = checkpoint(&storage, &signer(), &mut witness, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(made.sequence, 3);
    assert_eq!(read_witness(witness.path()).unwrap(), [made]);
}

#[tokio::test]
async fn every_checkpoint_is_witnessed_even_of_an_unmoved_head() {
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite(dir.path(), "a.db").await;
    let mut witness = FileWitness::open(dir.path().join("witness")).unwrap();
    // The empty log too: its head is sequence 0.
    let first = checkpoint(&storage, &signer(), &mut witness, Timestamp::EPOCH)
        .await
        .unwrap();
    assert_eq!(first.sequence, 0);
    append_records(&storage, "ops", 2).await;
    let mut made = vec![first];
    for millis in [1, 2] {
        let at = Timestamp::from_unix_millis(millis).unwrap();
        made.push(
            checkpoint(&storage, &signer(), &mut witness, at)
                .await
                .unwrap(),
        );
    }
    assert_eq!(read_witness(witness.path()).unwrap(), made);
    let verified = verify(&exported(&storage).await, &made, &signer().verifying_key()).unwrap();
    assert_eq!((verified.latest_checkpoint, verified.unwitnessed), (2, 0));
}

/// A signer (say a misconfigured HSM slot) whose signatures do not verify
/// under the public key it reports.
#[derive(Debug)]
struct MismatchedSigner {
    signs: InMemorySigner,
    reports: VerifyingKey,
}

impl Signer for MismatchedSigner {
    fn signer_id(&self) -> &SignerId {
        self.signs.signer_id()
    }

    fn verifying_key(&self) -> VerifyingKey {
        self.reports
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, CustodyError> {
        self.signs.sign(message)
    }
}

#[tokio::test]
async fn a_signature_that_does_not_verify_is_neither_witnessed_nor_stored() {
    let dir = tempfile::tempdir().unwrap();
    let storage = sqlite(dir.path(), "a.db").await;
    append_records(&storage, "ops", 1).await;
    let signer = MismatchedSigner {
        signs: signer(),
        reports: InMemorySigner::from_seed(SignerId::new("x").unwrap(), &[9; 32]).verifying_key(),
    };
    let mut witness = FileWitness::open(dir.path().join("witness")).unwrap();
    assert!(matches!(
        checkpoint(&storage, &signer, &mut witness, Timestamp::now()).await,
        Err(Error::CheckpointSignature)
    ));
    assert!(read_witness(witness.path()).unwrap().is_empty());
    let mut read = storage.begin_read_only().await.unwrap();
    assert_eq!(read.latest_checkpoint().await.unwrap(), None);
}

#[tokio::test]
async fn a_witness_of_another_log_with_the_same_records_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ours = sqlite(dir.path(), "ours.db").await;
    let theirs = sqlite(dir.path(), "theirs.db").await;
    // Same records, same chain hashes: only the log id tells them apart.
    append_records(&ours, "ops", 4).await;
    append_records(&theirs, "ops", 2).await;
    let mut their_witness = FileWitness::open(dir.path().join("their-witness")).unwrap();
    let their_head = checkpoint(&theirs, &signer(), &mut their_witness, Timestamp::now())
        .await
        .unwrap();
    let our_export = exported(&ours).await;
    assert_eq!(our_export.rows[1].hash, their_head.head_hash);
    assert_ne!(our_export.log_id, their_head.log_id);
    let theirs_read = their_witness.read(&our_export.log_id).await.unwrap();
    assert!(matches!(
        verify(&our_export, &theirs_read, &signer().verifying_key()),
        Err(Error::Tampered(Finding::OtherLog { line: 1, witnessed, exported }))
            if witnessed == their_head.log_id && exported == our_export.log_id
    ));
}

/// Two pools (two service replicas) append and checkpoint at once, each
/// through its own handle on one witness; returns how many checkpoints they
/// made.
async fn append_and_checkpoint_side_by_side<S, W>(replicas: Vec<(S, W)>, rounds: usize) -> usize
where
    S: Storage + Send + Sync + 'static,
    S::Transaction: Send,
    W: Witness + 'static,
{
    let tasks: Vec<_> = replicas
        .into_iter()
        .enumerate()
        .map(|(replica, (storage, mut witness))| {
            tokio::spawn(async move {
                let name = format!("replica.{replica}");
                for round in 0..rounds {
                    // Some rounds checkpoint a head that has not moved, so
                    // both replicas often sign the same head.
                    if round % 3 != 2 {
                        let mut tx = storage.begin().await.unwrap();
                        for i in 0..=round % 4 {
                            append(&mut tx, &record(&name, i)).await.unwrap();
                        }
                        tx.commit().await.unwrap();
                    }
                    checkpoint(&storage, &signer(), &mut witness, Timestamp::now())
                        .await
                        .unwrap();
                }
                rounds
            })
        })
        .collect();
    let mut made = 0;
    for task in tasks {
        made += task.await.unwrap();
    }
    made
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writers_checkpointing_side_by_side_keep_a_witness_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let witness_path = dir.path().join("witness");
    sqlite(dir.path(), "a.db").await.close().await;
    let mut replicas = Vec::new();
    for _ in 0..4 {
        replicas.push((
            sqlite(dir.path(), "a.db").await,
            FileWitness::open(&witness_path).unwrap(),
        ));
    }
    let made = append_and_checkpoint_side_by_side(replicas, 30).await;
    let storage = sqlite(dir.path(), "a.db").await;
    let witnessed = read_witness(&witness_path).unwrap();
    assert_eq!(witnessed.len(), made);
    let verified = verify(
        &exported(&storage).await,
        &witnessed,
        &signer().verifying_key(),
    )
    .unwrap();
    assert_eq!(
        verified.unwitnessed, 0,
        "the last checkpoint saw the final head"
    );
}

// ----- PostgreSQL: a witness the service can only append to -----

const WITNESS_OWNER: &str = "shardkeep_witness_owner";
const WITNESS_WRITER: &str = "shardkeep_witness_writer";
const WITNESS_READER: &str = "shardkeep_witness_reader";
const WITNESS_DB: &str = "shardkeep_witness";

/// Sets the witness database up the way the README says: its own database
/// and owner, a writer role for the service, a reader role for verifiers.
async fn witness_database(cluster: &PostgresCluster) {
    // The README's superuser steps (the cluster trusts local logins, so no
    // passwords), one statement at a time.
    for role in [WITNESS_OWNER, WITNESS_WRITER, WITNESS_READER] {
        cluster
            .psql("postgres", &format!("CREATE ROLE {role} LOGIN"))
            .unwrap();
    }
    for sql in [
        format!("CREATE DATABASE {WITNESS_DB} OWNER {WITNESS_OWNER}"),
        format!("REVOKE CONNECT ON DATABASE {WITNESS_DB} FROM PUBLIC"),
        format!("GRANT CONNECT ON DATABASE {WITNESS_DB} TO {WITNESS_WRITER}, {WITNESS_READER}"),
    ] {
        cluster.psql("postgres", &sql).unwrap();
    }
    let owner_url = cluster.url(WITNESS_OWNER, WITNESS_DB);
    PostgresWitness::install(&owner_url).await.unwrap();
    // Installing again changes nothing.
    PostgresWitness::install(&owner_url).await.unwrap();
    PostgresWitness::grant_writer(&owner_url, WITNESS_WRITER)
        .await
        .unwrap();
    PostgresWitness::grant_reader(&owner_url, WITNESS_READER)
        .await
        .unwrap();
}

fn verify_cli(export: &[u8], key: &VerifyingKey, witness_url: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export");
    std::fs::write(&path, export).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_shardkeep-audit-verify"))
        .args([
            "--key",
            &hex::encode(key.to_bytes()),
            "--witness-db",
            witness_url,
        ])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap(), text)
}

#[test]
fn postgres_witness_anchors_the_log_against_truncation() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    let writer_url = cluster.url(WITNESS_WRITER, WITNESS_DB);
    let reader_url = cluster.url(WITNESS_READER, WITNESS_DB);
    let (log_id, full_export) = runtime().block_on(async {
        witness_database(&cluster).await;
        let database = cluster.create_database("audited").await.unwrap();

        // Two replicas (two pools), each with its own witness connection,
        // appending and checkpointing at once.
        let mut replicas = Vec::new();
        for _ in 0..2 {
            replicas.push((
                PostgresStorage::connect(&database.service_url)
                    .await
                    .unwrap(),
                PostgresWitness::connect(&writer_url).await.unwrap(),
            ));
        }
        let made = append_and_checkpoint_side_by_side(replicas, 20).await;

        let storage = PostgresStorage::connect(&database.service_url)
            .await
            .unwrap();
        let exported = exported(&storage).await;
        let mut reader = PostgresWitness::connect(&reader_url).await.unwrap();
        let witnessed = reader.read(&exported.log_id).await.unwrap();
        assert_eq!(witnessed.len(), made);
        assert!(reader.read(&AuditLogId([0; 16])).await.unwrap().is_empty());
        let verified = verify(&exported, &witnessed, &signer().verifying_key()).unwrap();
        assert_eq!(verified.records, exported.rows.len() as u64);
        let mut bytes = Vec::new();
        export(&storage, &mut bytes).await.unwrap();
        storage.close().await;
        reader.close().await;
        (exported.log_id, bytes)
    });
    let key = signer().verifying_key();
    let (code, text) = verify_cli(&full_export, &key, &reader_url);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with(&format!("ok: log {log_id}")), "{text}");
    assert!(
        !text.contains(&reader_url),
        "the URL is never printed: {text}"
    );

    // The attack: someone with the audited database's owner role takes the
    // triggers away and cuts the log back behind its witnessed head.
    cluster
        .psql_as(
            OWNER_ROLE,
            "audited",
            "ALTER TABLE audit_log DISABLE TRIGGER USER; \
             DELETE FROM audit_log WHERE sequence > 10; \
             ALTER TABLE audit_log ENABLE TRIGGER USER",
        )
        .unwrap();
    let cut_export = runtime().block_on(async {
        let storage = PostgresStorage::connect(&cluster.url(SERVICE_ROLE, "audited"))
            .await
            .unwrap();
        let mut bytes = Vec::new();
        export(&storage, &mut bytes).await.unwrap();
        storage.close().await;
        bytes
    });
    let (code, text) = verify_cli(&cut_export, &key, &reader_url);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("NOT ANCHORED: log truncated: it ends at 10"),
        "{text}"
    );

    // ...and cannot cut the witness to match: not through the service's
    // writer role, not as the witness's owner, not from the audited side.
    let count = || {
        cluster
            .psql(WITNESS_DB, "SELECT count(*) FROM shardkeep_witness")
            .unwrap()
    };
    let before = count();
    for (role, sql, refusal) in [
        (
            WITNESS_WRITER,
            "DELETE FROM shardkeep_witness WHERE sequence > 10",
            "permission denied",
        ),
        (
            WITNESS_WRITER,
            "UPDATE shardkeep_witness SET sequence = 0",
            "permission denied",
        ),
        (
            WITNESS_WRITER,
            "TRUNCATE shardkeep_witness",
            "permission denied",
        ),
        (
            WITNESS_WRITER,
            "DROP TABLE shardkeep_witness",
            "must be owner",
        ),
        (
            WITNESS_WRITER,
            "ALTER TABLE shardkeep_witness DISABLE TRIGGER USER",
            "must be owner",
        ),
        (
            WITNESS_WRITER,
            "INSERT INTO shardkeep_witness (log_id, sequence, line, witnessed_at) \
             SELECT log_id, sequence, line, now() - interval '1 day' FROM shardkeep_witness LIMIT 1",
            "permission denied",
        ),
        (
            WITNESS_WRITER,
            "INSERT INTO shardkeep_witness (log_id, sequence, line) \
             SELECT log_id, sequence + 1, line FROM shardkeep_witness LIMIT 1",
            "check constraint",
        ),
        (
            WITNESS_READER,
            "INSERT INTO shardkeep_witness (log_id, sequence, line) \
             SELECT log_id, sequence, line FROM shardkeep_witness LIMIT 1",
            "permission denied",
        ),
        (
            SERVICE_ROLE,
            "SELECT count(*) FROM shardkeep_witness",
            "permission denied",
        ),
        (
            OWNER_ROLE,
            "SELECT count(*) FROM shardkeep_witness",
            "permission denied",
        ),
        (
            WITNESS_OWNER,
            "DELETE FROM shardkeep_witness",
            "append-only",
        ),
        (
            WITNESS_OWNER,
            "UPDATE shardkeep_witness SET line = line",
            "append-only",
        ),
        (WITNESS_OWNER, "TRUNCATE shardkeep_witness", "append-only"),
        (
            WITNESS_WRITER,
            "SELECT shardkeep_witness_grant_writer('shardkeep_service')",
            "permission denied",
        ),
    ] {
        let error = cluster
            .psql_as(role, WITNESS_DB, sql)
            .unwrap_err()
            .to_string();
        assert!(error.contains(refusal), "{role}: {sql}: {error}");
    }
    assert_eq!(count(), before);
}

#[test]
fn postgres_witness_refuses_what_is_not_set_up() {
    let cluster = PostgresCluster::start().expect("start a throwaway PostgreSQL cluster");
    cluster
        .psql(
            "postgres",
            &format!("CREATE DATABASE bare OWNER {OWNER_ROLE}"),
        )
        .unwrap();
    runtime().block_on(async {
        assert!(matches!(
            PostgresWitness::connect(&cluster.url(OWNER_ROLE, "bare")).await,
            Err(Error::WitnessNotInstalled)
        ));
        assert!(matches!(
            PostgresWitness::connect("postgres://nobody@127.0.0.1:1/none").await,
            Err(Error::WitnessDatabase { .. })
        ));
    });
}
