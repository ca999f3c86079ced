//! `demo`: the whole procedure on this machine, every role its own process
//! or key. It starts a real `shardkeep serve` on loopback (mutual TLS,
//! certificates made at run time by `init service`, a temporary SQLite
//! database) for one ECDSA and one EdDSA node (the tss-lib fixtures'
//! party 0), and each other party of both groups as a `shardkeep sidecar`
//! process holding only its own keystore. The operator, the two approvers
//! (security, business owner) and the three custodians of each node act
//! through this binary's own subcommands, each a child process with its
//! own configuration and secrets file: deliveries with receipts, a drill
//! and a recovery per node.
//!
//! The security person registers everyone (`person register`, `entity
//! register`) and sets the policy over the same mutual TLS; the operator
//! backs each node up with `generate` from the keystore file the node
//! wrote. What this process does itself is only what the MPC nodes and
//! the machine's owner would: write each party's keystore file sealed
//! under its KEK, and pick the ports.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rand::TryRng as _;
use serde::Serialize;
use serde_json::{Value, json};
use shardkeep_backup::TssGroup;
use shardkeep_keydata::{KekKeystoreCodec, KeystoreCodec as _, LocalPartySaveData};
use shardkeep_types::{InMemoryKek, KekId, KeyId, KeyVersion, NodeId, NodeVersion};
use zeroize::Zeroizing;

use super::Context;
use crate::cli::DemoArgs;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Report, line};

/// The fixtures' group: five parties, polynomial degree 2 (3 sign).
const GROUP: TssGroup = TssGroup {
    tss_degree: 2,
    parties: 5,
};
/// Largest fixture read.
const MAX_FIXTURE_LEN: usize = 1024 * 1024;

/// One node of the demo: a curve's fixture group.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// The fixtures' directory and the names made from it.
    curve: &'static str,
    /// The group key's id.
    key: &'static str,
}

const NODES: [Node; 2] = [
    Node {
        curve: "ecdsa",
        key: "demo-wallet-secp256k1",
    },
    Node {
        curve: "eddsa",
        key: "demo-wallet-ed25519",
    },
];

/// One step as the report lists it.
#[derive(Debug, Serialize)]
struct Step {
    step: String,
    /// Who acted: a person's id, a server, or `setup` (this process).
    actor: String,
}

/// One node's drill.
#[derive(Debug, Serialize)]
struct Drill {
    key_id: String,
    node_id: String,
    state: String,
    success: bool,
    drill_report: String,
}

/// One node's recovery.
#[derive(Debug, Serialize)]
struct Recovery {
    key_id: String,
    node_id: String,
    state: String,
    success: bool,
    /// The keystore the service wrote (`.keydata.enc`).
    keystore: String,
    /// It opens under the node's keystore KEK, and is party 0's share of
    /// the group.
    keystore_is_party_0: bool,
}

/// One node's lifecycle after its recovery.
#[derive(Debug, Serialize)]
struct NodeLifecycle {
    key_id: String,
    /// The first custodian proved custody of their share.
    inventory_confirmed: bool,
    /// A hard delete was refused during the cooldown.
    hard_delete_waits: bool,
    /// Version 1's server shares soft-deleted on two approvals...
    soft_deleted: bool,
    /// ...and restored.
    rolled_back: bool,
    /// The version the re-split made (2).
    rotated_to: u64,
    /// When version 1's cooldown ends.
    previous_cooldown_until_unix: u64,
    drill_checklist_passed: bool,
}

/// What the demo did after the recoveries.
#[derive(Debug, Serialize)]
struct Lifecycle {
    nodes: Vec<NodeLifecycle>,
    /// Records in the audit export.
    audit_records: u64,
    /// The last sequence the compliance review covers.
    audit_reviewed_to: u64,
    /// The service stopped on SIGTERM with exit code 0 and served again.
    restarted_cleanly: bool,
    /// The witnessed checkpoint an export after the restart verified to
    /// offline (`audit verify`).
    audit_anchored_to: u64,
    policy_hash: String,
    /// The revoked business owner's next call was refused.
    revoked_refused: bool,
}

impl Lifecycle {
    fn passed(&self) -> bool {
        self.nodes.iter().all(|node| {
            node.inventory_confirmed
                && node.hard_delete_waits
                && node.soft_deleted
                && node.rolled_back
                && node.rotated_to == 2
                && node.drill_checklist_passed
        }) && self.audit_records > 0
            && self.audit_reviewed_to == self.audit_records
            && self.restarted_cleanly
            && self.audit_anchored_to > self.audit_records
            && self.revoked_refused
    }
}

/// `demo`.
#[derive(Debug, Serialize)]
struct DemoReport {
    command: &'static str,
    dir: String,
    kept: bool,
    servers: Vec<Value>,
    steps: Vec<Step>,
    drills: Vec<Drill>,
    recoveries: Vec<Recovery>,
    lifecycle: Lifecycle,
    exit_codes: Vec<(String, i32)>,
    passed: bool,
}

impl Report for DemoReport {
    fn human(&self, out: &mut String) {
        line!(out, "shardkeep demo in {}", self.dir);
        for step in &self.steps {
            line!(out, "  [{}] {}", step.actor, step.step);
        }
        for drill in &self.drills {
            line!(
                out,
                "drill of {}/{}: {} ({})",
                drill.key_id,
                drill.node_id,
                drill.state,
                if drill.success { "passed" } else { "FAILED" }
            );
            out.push_str(&drill.drill_report);
            if !drill.drill_report.ends_with('\n') {
                out.push('\n');
            }
        }
        for recovery in &self.recoveries {
            line!(
                out,
                "recovery of {}/{}: {} ({}); {} {}",
                recovery.key_id,
                recovery.node_id,
                recovery.state,
                if recovery.success { "passed" } else { "FAILED" },
                recovery.keystore,
                if recovery.keystore_is_party_0 {
                    "opens under node-0's KEK and is party 0's share"
                } else {
                    "is NOT party 0's share"
                }
            );
        }
        for node in &self.lifecycle.nodes {
            line!(
                out,
                "{}: custody proved {}; v1's server shares soft-deleted {} (hard delete waits for the cooldown {}), rolled back {}; re-split to v{} (v1 cools down until {}); drill checklist {}",
                node.key_id,
                yes_no(node.inventory_confirmed),
                yes_no(node.soft_deleted),
                yes_no(node.hard_delete_waits),
                yes_no(node.rolled_back),
                node.rotated_to,
                super::when(node.previous_cooldown_until_unix),
                if node.drill_checklist_passed {
                    "passed"
                } else {
                    "FAILED"
                }
            );
        }
        line!(
            out,
            "audit log: {} records exported, reviewed to {}; after a restart, verified offline to the checkpoint witnessed at {}; policy {}; the revoked business owner {}",
            self.lifecycle.audit_records,
            self.lifecycle.audit_reviewed_to,
            self.lifecycle.audit_anchored_to,
            self.lifecycle.policy_hash,
            if self.lifecycle.revoked_refused {
                "was refused"
            } else {
                "was ANSWERED"
            }
        );
        for (server, code) in &self.exit_codes {
            line!(out, "{server} stopped on SIGTERM with exit code {code}");
        }
        line!(
            out,
            "{}",
            if self.passed {
                "demo passed"
            } else {
                "demo FAILED"
            }
        );
    }
}

const fn yes_no(done: bool) -> &'static str {
    if done { "yes" } else { "NO" }
}

/// A failed step, as the error names it.
fn failed(step: &str, detail: impl core::fmt::Display) -> Error {
    Error::Demo {
        step: step.to_owned(),
        detail: detail.to_string(),
    }
}

/// The demo's directory, its child processes, and what it did.
struct Demo {
    dir: PathBuf,
    exe: PathBuf,
    passphrase: PathBuf,
    steps: Vec<Step>,
    servers: Vec<(String, Child)>,
    listening: Vec<Value>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        // A demo that failed half-way leaves no server behind.
        for (_, child) in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Demo {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `shardkeep --json [--config CONFIG] args...` as `actor`: its JSON
    /// report, or the failure of the step.
    fn cli(&mut self, actor: &str, config: Option<&str>, args: &[&str]) -> Result<Value, Error> {
        let step = args.iter().take(2).copied().collect::<Vec<_>>().join(" ");
        let mut command = Command::new(&self.exe);
        command
            .current_dir(&self.dir)
            .env("SHARDKEEP_PASSPHRASE_FILE", &self.passphrase)
            .env_remove("SHARDKEEP_CONFIG")
            .arg("--json");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| failed(&step, error))?;
        let value: Value = serde_json::from_slice(&output.stdout)
            .map_err(|_| failed(&step, "its output is not one JSON document"))?;
        if !output.status.success() {
            return Err(failed(
                &step,
                format!("{actor}: {}", value["error"]["message"]),
            ));
        }
        self.steps.push(Step {
            step: args.join(" ").replace(&*self.dir.to_string_lossy(), "."),
            actor: actor.to_owned(),
        });
        Ok(value)
    }

    /// `approve` of the request file `request` by each `(approver, role)`,
    /// each checking the hash the requester announced.
    fn approve(
        &mut self,
        approvers: &[(&str, &str)],
        request: &str,
        hash: &str,
    ) -> Result<(), Error> {
        for (approver, role) in approvers {
            self.cli(
                approver,
                Some(&format!("{approver}.json")),
                &[
                    "approve",
                    "--request",
                    request,
                    "--role",
                    role,
                    "--expect-hash",
                    hash,
                    "--yes",
                ],
            )?;
        }
        Ok(())
    }

    /// Starts `shardkeep --config CONFIG serve|sidecar`; its listening
    /// line.
    fn spawn(&mut self, name: &str, config: &str, command: &str) -> Result<Value, Error> {
        let step = format!("{command} {name}");
        let log = std::fs::File::create(self.path(&format!("{name}.log")))
            .map_err(|error| failed(&step, error))?;
        let mut child = Command::new(&self.exe)
            .current_dir(&self.dir)
            .arg("--config")
            .arg(config)
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|error| failed(&step, error))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|stdout| BufReader::new(stdout).read_line(&mut line));
        self.servers.push((name.to_owned(), child));
        if !matches!(read, Some(Ok(n)) if n > 0) {
            return Err(failed(
                &step,
                format!("it did not start: see {name}.log in the demo's directory"),
            ));
        }
        let listening: Value =
            serde_json::from_str(&line).map_err(|_| failed(&step, "no listening line"))?;
        self.steps.push(Step {
            step: format!("{command} listening on {}", listening["grpc"]),
            actor: name.to_owned(),
        });
        self.listening.push(listening.clone());
        Ok(listening)
    }

    /// SIGTERM to the server `name`; its exit code.
    fn stop_one(&mut self, name: &str) -> Result<i32, Error> {
        let position = self
            .servers
            .iter()
            .position(|(server, _)| server == name)
            .ok_or_else(|| failed(name, "no such server"))?;
        let (name, child) = self.servers.remove(position);
        let code = terminate(child);
        self.steps.push(Step {
            step: format!("stopped on SIGTERM with exit code {code}"),
            actor: name,
        });
        Ok(code)
    }

    /// SIGTERM to every server, and their exit codes.
    fn stop(&mut self) -> Vec<(String, i32)> {
        let mut codes = Vec::new();
        for (name, child) in self.servers.drain(..).rev() {
            codes.push((name, terminate(child)));
        }
        codes
    }

    /// Reads a JSON file of the demo's directory.
    fn read_json(&self, name: &str) -> Result<Value, Error> {
        let bytes = std::fs::read(self.path(name)).map_err(|error| failed(name, error))?;
        serde_json::from_slice(&bytes).map_err(|error| failed(name, error))
    }

    /// Writes a JSON file of the demo's directory.
    fn write_json(&self, name: &str, value: &Value) -> Result<(), Error> {
        let text = serde_json::to_vec_pretty(value).map_err(|error| failed(name, error))?;
        files::write_new(&self.path(name), &text, true, Access::Public)
    }

    /// Writes a fresh 32-byte KEK (64 hex digits, mode 0600).
    fn kek_file(&self, name: &str) -> Result<Zeroizing<[u8; 32]>, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::SysRng
            .try_fill_bytes(key.as_mut_slice())
            .map_err(|_| Error::Randomness)?;
        let text = Zeroizing::new(hex::encode(key.as_slice()));
        files::write_new(&self.path(name), text.as_bytes(), false, Access::OwnerOnly)?;
        Ok(key)
    }

    /// Writes `save_data` as a keystore file (`.keydata.enc`) for
    /// `version`, sealed under a fresh KEK written to `kek_file`: what an
    /// MPC node keeps on disk.
    fn seal_keystore(
        &self,
        keystore: &str,
        kek_file: &str,
        kek_id: &str,
        version: &NodeVersion,
        save_data: &[u8],
    ) -> Result<(), Error> {
        let key = self.kek_file(kek_file)?;
        self.seal_with(keystore, &key, kek_id, version, save_data)
    }

    /// As [`seal_keystore`](Self::seal_keystore), under the KEK `key`.
    fn seal_with(
        &self,
        keystore: &str,
        key: &[u8; 32],
        kek_id: &str,
        version: &NodeVersion,
        save_data: &[u8],
    ) -> Result<(), Error> {
        let codec = KekKeystoreCodec::new(InMemoryKek::from_bytes(
            KekId::new(kek_id).map_err(|_| failed(keystore, "not a KEK id"))?,
            key,
        ));
        let sealed = codec
            .encode(version, save_data)
            .map_err(|error| failed(keystore, error))?;
        files::write_new(&self.path(keystore), &sealed, false, Access::OwnerOnly)
    }
}

/// A custodian's container as `generate` reported it.
struct Container {
    index: u64,
    person: String,
    /// Where `generate` wrote it, relative to the demo's directory.
    file: String,
}

/// SIGTERM to `child` (a kill if that cannot be sent), and its exit code
/// (-1 for none).
fn terminate(mut child: Child) -> i32 {
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    if !matches!(term, Ok(status) if status.success()) {
        let _ = child.kill();
    }
    child
        .wait()
        .ok()
        .and_then(|status| status.code())
        .unwrap_or(-1)
}

/// A free loopback port (bound and released: the demo's servers take
/// them a moment later).
fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|error| failed("a free port", error))
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn text_field(value: &Value, field: &str) -> Result<String, Error> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| failed(field, "missing from a report"))
}

/// The client certificate `init service` issued `person`, as it reported
/// it.
fn client<'a>(service: &'a Value, person: &str) -> Result<&'a Value, Error> {
    service["clients"]
        .as_array()
        .and_then(|clients| clients.iter().find(|client| client["person"] == person))
        .ok_or_else(|| failed("init service", "a client certificate is missing"))
}

/// Version 1 of `node_id`'s share of `node`'s group key.
fn version_of(node: Node, node_id: &str) -> Result<NodeVersion, Error> {
    Ok(NodeVersion {
        key_id: KeyId::new(node.key).map_err(|_| failed(node.key, "not a key id"))?,
        node_id: NodeId::new(node_id).map_err(|_| failed(node_id, "not a node id"))?,
        version: KeyVersion::new(1),
    })
}

/// The fixtures' directory this build was made from.
fn default_fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../keydata/tests/data/tss-lib"
    ))
}

fn fixture(fixtures: &Path, node: Node, party: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    let path = fixtures
        .join(node.curve)
        .join(format!("keygen_data_{party}.json"));
    Ok(Zeroizing::new(files::read_capped(
        &path,
        "tss-lib fixture",
        MAX_FIXTURE_LEN,
    )?))
}

fn custodian_entities(node: Node) -> Vec<(String, String)> {
    (0..3)
        .map(|i| {
            let entity = format!("{}-cust-{i}", node.key);
            (format!("{entity}-contact"), entity)
        })
        .collect()
}

pub(super) async fn run(context: &Context, args: DemoArgs) -> Result<ExitCode, Error> {
    let kept = args.dir.is_some();
    let dir = match args.dir {
        Some(dir) => dir,
        None => {
            let mut suffix = [0u8; 8];
            rand::rngs::SysRng
                .try_fill_bytes(&mut suffix)
                .map_err(|_| Error::Randomness)?;
            std::env::temp_dir().join(format!("shardkeep-demo-{}", hex::encode(suffix)))
        }
    };
    if dir.exists() {
        return Err(Error::OutputExists(dir));
    }
    // It holds every person's secrets file and every KEK: its owner's
    // only.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).map_err(|source| Error::WriteFile {
        path: dir.clone(),
        source,
    })?;
    let dir = dir.canonicalize().map_err(|source| Error::ReadFile {
        path: dir.clone(),
        source,
    })?;
    let exe = std::env::current_exe().map_err(|error| failed("finding this program", error))?;
    let fixtures = args.fixtures.unwrap_or_else(default_fixtures);
    let mut demo = Demo {
        passphrase: dir.join("passphrase"),
        dir: dir.clone(),
        exe,
        steps: Vec::new(),
        servers: Vec::new(),
        listening: Vec::new(),
    };
    let outcome = procedure(&mut demo, &fixtures).await;
    let exit_codes = demo.stop();
    let servers = core::mem::take(&mut demo.listening);
    let steps = core::mem::take(&mut demo.steps);
    drop(demo);
    if !kept {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (drills, recoveries, lifecycle) = outcome?;
    let passed = lifecycle.passed()
        && drills.iter().all(|drill| drill.success)
        && recoveries
            .iter()
            .all(|recovery| recovery.success && recovery.keystore_is_party_0)
        && exit_codes.iter().all(|(_, code)| *code == 0);
    context.output.report(&DemoReport {
        command: "demo",
        dir: dir.display().to_string(),
        kept,
        servers,
        steps,
        drills,
        recoveries,
        lifecycle,
        exit_codes,
        passed,
    })?;
    Ok(if passed {
        ExitCode::Ok
    } else {
        ExitCode::VerificationFailed
    })
}

/// Every step, in order; the drills' and recoveries' outcomes.
#[allow(
    clippy::too_many_lines,
    reason = "the procedure reads top to bottom, one role's step after another"
)]
async fn procedure(
    demo: &mut Demo,
    fixtures: &Path,
) -> Result<(Vec<Drill>, Vec<Recovery>, Lifecycle), Error> {
    let mut passphrase = [0u8; 24];
    rand::rngs::SysRng
        .try_fill_bytes(&mut passphrase)
        .map_err(|_| Error::Randomness)?;
    let passphrase = Zeroizing::new(hex::encode(passphrase));
    files::write_new(
        &demo.passphrase,
        passphrase.as_bytes(),
        false,
        Access::OwnerOnly,
    )?;
    let grpc_port = free_port()?;
    let url = format!("https://localhost:{grpc_port}");
    let tls = |person: &str| {
        [
            "--server".to_owned(),
            url.clone(),
            "--ca".to_owned(),
            "svc/tls/ca.pem".to_owned(),
            "--cert".to_owned(),
            format!("svc/tls/client-{person}.pem"),
            "--client-key".to_owned(),
            format!("svc/tls/client-{person}.key.pem"),
        ]
    };

    // The security person's key, then the service with its CA and the
    // certificates of everyone who calls it.
    let mut args = vec!["init", "person", "--person", "sec-1"];
    let sec_tls = tls("sec-1");
    args.extend(strs(&sec_tls));
    let security = demo.cli("sec-1", Some("sec-1.json"), &args)?;
    let security_key = text_field(&security, "signing_key")?;
    let listen = format!("127.0.0.1:{grpc_port}");
    let service = demo.cli(
        "operator",
        None,
        &[
            "init",
            "service",
            "--dir",
            "svc",
            "--deployment",
            "demo",
            "--listen",
            &listen,
            "--tls-name",
            "localhost",
            "--client",
            "ops-1",
            "--client",
            "sec-1",
            "--client",
            "biz-1",
            "--client",
            "cmp-1",
            "--client",
            "node-0-server",
            "--bootstrap-security",
            "sec-1",
            "--bootstrap-approval-key",
            &security_key,
        ],
    )?;
    let signer_key = text_field(&service, "signer_key")?;
    let pinned = ["--service-signer", "backup-server-1", "--service-key"];
    let mut args = vec!["init", "person", "--person", "ops-1"];
    let ops_tls = tls("ops-1");
    args.extend(strs(&ops_tls));
    args.extend(pinned);
    args.push(&signer_key);
    demo.cli("ops-1", Some("ops-1.json"), &args)?;
    let mut args = vec!["init", "person", "--person", "biz-1"];
    let biz_tls = tls("biz-1");
    args.extend(strs(&biz_tls));
    let business = demo.cli("biz-1", Some("biz-1.json"), &args)?;
    let business_key = text_field(&business, "signing_key")?;
    let mut args = vec!["init", "person", "--person", "cmp-1"];
    let cmp_tls = tls("cmp-1");
    args.extend(strs(&cmp_tls));
    let compliance = demo.cli("cmp-1", Some("cmp-1.json"), &args)?;
    let compliance_key = text_field(&compliance, "signing_key")?;

    // Three custodians per node, offline, pinning the service key.
    let mut custodians = Vec::new();
    for node in NODES {
        for (person, entity) in custodian_entities(node) {
            let config = format!("{person}.json");
            let mut args = vec![
                "init",
                "person",
                "--person",
                &person,
                "--custodian",
                &entity,
            ];
            args.extend(pinned);
            args.push(&signer_key);
            let made = demo.cli(&person, Some(&config), &args)?;
            custodians.push((
                node.key,
                person.clone(),
                entity,
                text_field(&made, "signing_key")?,
                text_field(&made, "age_recipient")?,
            ));
        }
    }

    // The other parties: each a service of its own holding one keystore,
    // sealed under its own KEK, serving its half of the self-test; the
    // security person registers node-0's server there as an operator (its
    // client certificate calls their SelfTest).
    let sec_fingerprint = text_field(client(&service, "sec-1")?, "fingerprint")?;
    let node0_fingerprint = text_field(client(&service, "node-0-server")?, "fingerprint")?;
    let mut peers: Vec<(&str, Value)> = Vec::new();
    for node in NODES {
        for party in 1..usize::from(GROUP.parties) {
            let name = format!("side-{}-{party}", node.curve);
            let port = free_port()?.to_string();
            let listen = format!("127.0.0.1:{port}");
            let deployment = format!("demo-{}-{party}", node.curve);
            demo.cli(
                "setup",
                None,
                &[
                    "init",
                    "service",
                    "--dir",
                    &name,
                    "--deployment",
                    &deployment,
                    "--listen",
                    &listen,
                    "--bootstrap-security",
                    "sec-1",
                    "--bootstrap-approval-key",
                    &security_key,
                    "--bootstrap-tls-fingerprint",
                    &sec_fingerprint,
                ],
            )?;
            let node_id = format!("node-{party}");
            let kek_id = format!("{node_id}-keystore");
            // Sealed as is: this process never loads another party's
            // save data.
            demo.seal_keystore(
                &format!("{name}/party.keydata.enc"),
                &format!("{name}/keys/keystore.kek"),
                &kek_id,
                &version_of(node, &node_id)?,
                &fixture(fixtures, node, party)?,
            )?;
            let config_name = format!("{name}/service.json");
            let mut config = demo.read_json(&config_name)?;
            config["tls"] = json!({
                "server_cert": "../svc/tls/server.pem",
                "server_key": "../svc/tls/server.key.pem",
                "client_ca": "../svc/tls/ca.pem",
            });
            config["self_test"] = json!({
                "keystore": "party.keydata.enc",
                "kek": { "id": kek_id, "file": "keys/keystore.kek" },
                "key_id": node.key,
                "node_id": node_id,
                "key_version": 1,
            });
            demo.write_json(&config_name, &config)?;
            let listening = demo.spawn(&name, &config_name, "sidecar")?;
            let url = format!("https://localhost:{port}");
            let sec_there = format!("sec-1-at-{name}.json");
            let mut sec_config = demo.read_json("sec-1.json")?;
            sec_config["server"]["url"] = url.as_str().into();
            demo.write_json(&sec_there, &sec_config)?;
            demo.cli(
                "sec-1",
                Some(&sec_there),
                &[
                    "person",
                    "register",
                    "--person",
                    "node-0-server",
                    "--display-name",
                    "node-0's backup server",
                    "--role",
                    "operator",
                    "--tls-fingerprint",
                    &node0_fingerprint,
                ],
            )?;
            peers.push((
                node.key,
                json!({
                    "party_id": text_field(&listening, "self_test_party")?,
                    "url": url,
                }),
            ));
        }
    }

    // The service, reaching the sidecars as node-0's server.
    let mut config = demo.read_json("svc/service.json")?;
    std::fs::create_dir(demo.path("witness")).map_err(|error| failed("witness", error))?;
    let node_0_kek = demo.kek_file("svc/keys/node-0.kek")?;
    config["metrics_listen"] = "127.0.0.1:0".into();
    config["witness"] = "../witness/audit.witness".into();
    config["peer_tls"] = json!({
        "ca": "tls/ca.pem",
        "cert": "tls/client-node-0-server.pem",
        "key": "tls/client-node-0-server.key.pem",
    });
    config["nodes"] = NODES
        .iter()
        .map(|node| {
            json!({
                "key_id": node.key,
                "node_id": "node-0",
                "keystore_kek": { "id": "node-0-keystore", "file": "keys/node-0.kek" },
                "peers": peers
                    .iter()
                    .filter(|(key, _)| *key == node.key)
                    .map(|(_, peer)| peer.clone())
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    demo.write_json("svc/service.json", &config)?;
    demo.spawn("backup-server", "svc/service.json", "serve")?;

    // The registry and the policy, by the security person.
    let sec = |demo: &mut Demo, args: &[&str]| demo.cli("sec-1", Some("sec-1.json"), args);
    let ops_fingerprint = text_field(client(&service, "ops-1")?, "fingerprint")?;
    sec(
        demo,
        &[
            "person",
            "register",
            "--person",
            "ops-1",
            "--role",
            "operator",
            "--tls-fingerprint",
            &ops_fingerprint,
        ],
    )?;
    let biz_fingerprint = text_field(client(&service, "biz-1")?, "fingerprint")?;
    sec(
        demo,
        &[
            "person",
            "register",
            "--person",
            "biz-1",
            "--role",
            "business-owner",
            "--approval-key",
            &business_key,
            "--tls-fingerprint",
            &biz_fingerprint,
        ],
    )?;
    let cmp_fingerprint = text_field(client(&service, "cmp-1")?, "fingerprint")?;
    sec(
        demo,
        &[
            "person",
            "register",
            "--person",
            "cmp-1",
            "--role",
            "compliance",
            "--approval-key",
            &compliance_key,
            "--tls-fingerprint",
            &cmp_fingerprint,
        ],
    )?;
    for (_, person, entity, receipt_key, recipient) in &custodians {
        sec(
            demo,
            &[
                "person",
                "register",
                "--person",
                person,
                "--role",
                "custodian",
                "--receipt-key",
                receipt_key,
                "--age-recipient",
                recipient,
            ],
        )?;
        sec(
            demo,
            &[
                "entity",
                "register",
                "--entity",
                entity,
                "--contact",
                "the demo's vault desk",
                "--member",
                person,
            ],
        )?;
    }
    sec(
        demo,
        &[
            "policy",
            "set",
            "--threshold",
            "3",
            "--shares",
            "5",
            "--server-shares",
            "2",
            "--kek-provider",
            "local-key-file",
        ],
    )?;

    // Each node's keystore as the node wrote it (party 0, sealed under
    // node-0's keystore KEK), backed up by the operator.
    let mut generated = Vec::new();
    let mut party_0_ids = Vec::new();
    for node in NODES {
        let fixture = fixture(fixtures, node, 0)?;
        let data = LocalPartySaveData::from_json(&fixture)
            .map_err(|error| failed("the fixture", error))?;
        party_0_ids.push(data.share_id().to_vec());
        let source = format!("node-0-{}.keydata.enc", node.curve);
        demo.seal_with(
            &source,
            &node_0_kek,
            "node-0-keystore",
            &version_of(node, "node-0")?,
            &fixture,
        )?;
        let keystore = demo.path(&source).display().to_string();
        let mut args = vec![
            "generate",
            "--key",
            node.key,
            "--node",
            "node-0",
            "--key-version",
            "1",
            "--keystore",
            &keystore,
            "--tss-degree",
            "2",
            "--parties",
            "5",
            "--out-dir",
            ".",
        ];
        let named: Vec<String> = custodians
            .iter()
            .filter(|(key, ..)| *key == node.key)
            .map(|(_, person, entity, ..)| format!("{entity}={person}"))
            .collect();
        for custodian in &named {
            args.extend(["--custodian", custodian.as_str()]);
        }
        let made = demo.cli("ops-1", Some("ops-1.json"), &args)?;
        let containers = made["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|container| {
                Ok(Container {
                    index: container["index"]
                        .as_u64()
                        .ok_or_else(|| failed("generate", "a container has no index"))?,
                    person: text_field(container, "person")?,
                    file: text_field(container, "file")?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if containers.len() != named.len() {
            return Err(failed("generate", "a container is missing"));
        }
        generated.push((node, text_field(&made, "split_id")?, containers));
    }

    let status = demo.cli("ops-1", Some("ops-1.json"), &["status"])?;
    if status["versions"].as_array().map(Vec::len) != Some(NODES.len()) {
        return Err(failed("status", "the service does not list both versions"));
    }

    // Deliveries with receipts, then a drill from the external shares
    // alone, per node.
    let mut drills = Vec::new();
    std::fs::write(
        demo.path("risk-note.txt"),
        "Quarterly drill: rebuild node-0 in the sandbox from the custodians' shares.\n",
    )
    .map_err(|error| failed("risk note", error))?;
    for (node, split_id, containers) in &generated {
        for container in containers {
            let person = container.person.as_str();
            let index = container.index.to_string();
            let slot = [
                "--key",
                node.key,
                "--node",
                "node-0",
                "--key-version",
                "1",
                "--index",
                index.as_str(),
            ];
            let container_file = container.file.as_str();
            let receipt_file = format!("{person}.receipt");
            let mut args = vec!["deliver", "record", "--container", container_file];
            args.extend(slot);
            demo.cli("ops-1", Some("ops-1.json"), &args)?;
            demo.cli(
                person,
                Some(&format!("{person}.json")),
                &[
                    "receipt",
                    "sign",
                    "--container",
                    container_file,
                    "--out",
                    &receipt_file,
                ],
            )?;
            let mut args = vec!["deliver", "confirm", "--receipt", &receipt_file];
            args.extend(slot);
            demo.cli("ops-1", Some("ops-1.json"), &args)?;
        }
        let request_file = format!("{}.drill.request", node.key);
        let requested = demo.cli(
            "ops-1",
            Some("ops-1.json"),
            &[
                "drill",
                "request",
                "--key",
                node.key,
                "--node",
                "node-0",
                "--key-version",
                "1",
                "--split-id",
                split_id,
                "--ticket",
                "DRILL-1",
                "--risk-note",
                "risk-note.txt",
                "--out",
                &request_file,
            ],
        )?;
        let hash = text_field(&requested, "request_hash")?;
        demo.approve(&[("sec-1", "security")], &request_file, &hash)?;
        let descriptor = format!("{}.drill.descriptor", node.key);
        demo.cli(
            "ops-1",
            Some("ops-1.json"),
            &[
                "drill",
                "start",
                "--request",
                &request_file,
                "--out",
                &descriptor,
            ],
        )?;
        let submissions = submit_all(demo, containers, &descriptor, "drill")?;
        let mut args = vec!["drill", "shares", "--descriptor", descriptor.as_str()];
        args.extend(submissions.iter().map(String::as_str));
        let drilled = demo.cli("ops-1", Some("ops-1.json"), &args)?;
        drills.push(Drill {
            key_id: node.key.to_owned(),
            node_id: "node-0".to_owned(),
            state: text_field(&drilled, "state")?,
            success: drilled["success"] == true,
            drill_report: text_field(&drilled, "drill_report").unwrap_or_default(),
        });
    }

    // A recovery per node: the business owner and the security person
    // approve, the custodians submit, the service writes node-0's keystore
    // under the node's KEK after self-testing it with the sidecars.
    let codec = KekKeystoreCodec::new(InMemoryKek::from_bytes(
        KekId::new("node-0-keystore").map_err(|_| failed("recover", "KEK id"))?,
        &node_0_kek,
    ));
    let mut recoveries = Vec::new();
    for ((node, split_id, containers), party_0) in generated.iter().zip(&party_0_ids) {
        let target = demo.path(&format!("node-0-{}-keystore", node.curve));
        std::fs::create_dir(&target).map_err(|error| failed("recover", error))?;
        let target_text = target.display().to_string();
        let request_file = format!("{}.recover.request", node.key);
        let requested = demo.cli(
            "ops-1",
            Some("ops-1.json"),
            &[
                "recover",
                "request",
                "--key",
                node.key,
                "--node",
                "node-0",
                "--key-version",
                "1",
                "--split-id",
                split_id,
                "--target",
                &target_text,
                "--ticket",
                "INC-7",
                "--risk-note",
                "risk-note.txt",
                "--out",
                &request_file,
            ],
        )?;
        let hash = text_field(&requested, "request_hash")?;
        demo.approve(
            &[("biz-1", "business-owner"), ("sec-1", "security")],
            &request_file,
            &hash,
        )?;
        let descriptor = format!("{}.recover.descriptor", node.key);
        demo.cli(
            "ops-1",
            Some("ops-1.json"),
            &[
                "recover",
                "start",
                "--request",
                &request_file,
                "--out",
                &descriptor,
            ],
        )?;
        let submissions = submit_all(demo, containers, &descriptor, "recover")?;
        let mut args = vec!["recover", "shares", "--descriptor", descriptor.as_str()];
        args.extend(submissions.iter().map(String::as_str));
        let recovered = demo.cli("ops-1", Some("ops-1.json"), &args)?;
        let version = NodeVersion {
            key_id: KeyId::new(node.key).map_err(|_| failed("recover", "key id"))?,
            node_id: NodeId::new("node-0").map_err(|_| failed("recover", "node id"))?,
            version: KeyVersion::new(1),
        };
        let keystore = shardkeep_keydata::keystore_path(&target, &version);
        let keystore_is_party_0 = std::fs::read(&keystore)
            .ok()
            .and_then(|file| codec.decode(&version, &file).ok())
            .and_then(|json| LocalPartySaveData::from_json(&json).ok())
            // ShareIDs are public.
            .is_some_and(|data| data.share_id() == party_0.as_slice());
        recoveries.push(Recovery {
            key_id: node.key.to_owned(),
            node_id: "node-0".to_owned(),
            state: text_field(&recovered, "state")?,
            success: recovered["success"] == true,
            keystore: keystore
                .strip_prefix(&demo.dir)
                .unwrap_or(&keystore)
                .display()
                .to_string(),
            keystore_is_party_0,
        });
    }
    let lifecycle = lifecycle(demo, &generated, &signer_key)?;
    Ok((drills, recoveries, lifecycle))
}

/// After the recoveries, per node: version 1's server shares soft-deleted
/// on two approvals and rolled back, the node re-split to version 2 under
/// the same custodians, the drill's checklist; then the audit log
/// exported and reviewed; the service restarted, the log exported again
/// and verified offline against the witness (`signer_key` signs its
/// checkpoints); the policy shown, and the business owner revoked, their
/// next call refused.
fn lifecycle(
    demo: &mut Demo,
    generated: &[(Node, String, Vec<Container>)],
    signer_key: &str,
) -> Result<Lifecycle, Error> {
    let ops = |demo: &mut Demo, args: &[&str]| demo.cli("ops-1", Some("ops-1.json"), args);
    let mut nodes = Vec::new();
    for (node, split_id, containers) in generated {
        let version = ["--key", node.key, "--node", "node-0", "--key-version", "1"];
        // An inventory of the first custodian's share: challenged by the
        // operator, proved offline by the custodian, confirmed.
        let first = containers
            .first()
            .ok_or_else(|| failed("inventory", "no container"))?;
        let index = first.index.to_string();
        let challenge = format!("{}.inventory.challenge", node.key);
        let proof = format!("{}.inventory.proof", node.key);
        let mut args = vec!["inventory", "challenge"];
        args.extend(version);
        args.extend(["--index", &index, "--out", &challenge]);
        ops(demo, &args)?;
        demo.cli(
            &first.person,
            Some(&format!("{}.json", first.person)),
            &[
                "inventory",
                "prove",
                "--challenge",
                &challenge,
                "--container",
                &first.file,
                "--out",
                &proof,
            ],
        )?;
        let inventoried = ops(demo, &["inventory", "confirm", "--proof", &proof])?;

        let request = format!("{}.delete.request", node.key);
        let mut args = vec!["delete", "request"];
        args.extend(version);
        args.extend([
            "--split-id",
            split_id,
            "--slot",
            "1",
            "--slot",
            "2",
            "--ticket",
            "CHG-9",
            "--risk-note",
            "risk-note.txt",
            "--out",
            &request,
        ]);
        let requested = ops(demo, &args)?;
        let hash = text_field(&requested, "request_hash")?;
        demo.approve(
            &[("biz-1", "business-owner"), ("sec-1", "security")],
            &request,
            &hash,
        )?;
        let deleted = ops(demo, &["delete", "--request", &request])?;
        // The hard delete waits for the cooldown: refused now, no draft.
        let draft = format!("{}.zero-retention", node.key);
        let hard_delete_waits = match ops(
            demo,
            &["delete", "--hard", "--request", &request, "--draft", &draft],
        ) {
            Err(Error::Demo { detail, .. }) => {
                detail.contains("cooldown") && !demo.path(&draft).exists()
            }
            _ => false,
        };
        demo.steps.push(Step {
            step: format!(
                "delete --hard during the cooldown: {}",
                if hard_delete_waits {
                    "refused"
                } else {
                    "NOT REFUSED"
                }
            ),
            actor: "ops-1".to_owned(),
        });
        let mut args = vec!["rollback"];
        args.extend(version);
        args.extend(["--slot", "1", "--slot", "2"]);
        let rolled_back = ops(demo, &args)?;
        let listed = ops(demo, &["list", "--key", node.key])?;

        let out_dir = format!("{}-v2", node.curve);
        std::fs::create_dir(demo.path(&out_dir)).map_err(|error| failed("rotate", error))?;
        let keystore = demo
            .path(&format!("node-0-{}.keydata.enc", node.curve))
            .display()
            .to_string();
        let mut args = vec![
            "rotate",
            "--kind",
            "resplit",
            "--key",
            node.key,
            "--node",
            "node-0",
            "--key-version",
            "1",
            "--keystore",
            &keystore,
            "--tss-degree",
            "2",
            "--parties",
            "5",
            "--out-dir",
            &out_dir,
        ];
        let named: Vec<String> = containers
            .iter()
            .map(|container| {
                let entity = container.person.trim_end_matches("-contact");
                format!("{entity}={}", container.person)
            })
            .collect();
        for custodian in &named {
            args.extend(["--custodian", custodian.as_str()]);
        }
        let rotated = ops(demo, &args)?;

        let mut args = vec!["checklist"];
        args.extend(version);
        args.extend(["--kind", "drill"]);
        let checklist = demo.cli("cmp-1", Some("cmp-1.json"), &args)?;
        nodes.push(NodeLifecycle {
            key_id: node.key.to_owned(),
            inventory_confirmed: inventoried["custodian"].as_str()
                == first.person.strip_suffix("-contact"),
            hard_delete_waits,
            soft_deleted: deleted["slots"] == json!([1, 2]),
            rolled_back: rolled_back["slots"] == json!([1, 2])
                && !listed.to_string().contains("soft-deleted"),
            rotated_to: rotated["version"]["version"].as_u64().unwrap_or(0),
            previous_cooldown_until_unix: rotated["cooldown_until_unix"].as_u64().unwrap_or(0),
            drill_checklist_passed: checklist["passed"] == true,
        });
    }

    let export = demo.cli(
        "cmp-1",
        Some("cmp-1.json"),
        &["audit", "export", "--out", "audit.export"],
    )?;
    let review = demo.cli(
        "cmp-1",
        Some("cmp-1.json"),
        &[
            "audit",
            "review",
            "--export",
            "audit.export",
            "--findings",
            "every step of the demo is recorded",
        ],
    )?;
    // The service stops (its last audit checkpoint witnessed as it does)
    // and starts again on the same files; an export now is anchored by a
    // witnessed head, and verifies offline.
    let stopped_cleanly = demo.stop_one("backup-server")? == 0;
    demo.spawn("backup-server-restarted", "svc/service.json", "serve")?;
    demo.cli(
        "cmp-1",
        Some("cmp-1.json"),
        &["audit", "export", "--out", "audit-after-restart.export"],
    )?;
    let verified = demo.cli(
        "auditor",
        None,
        &[
            "audit",
            "verify",
            "--export",
            "audit-after-restart.export",
            "--witness",
            "witness/audit.witness",
            "--key",
            signer_key,
        ],
    )?;
    let policy = demo.cli("cmp-1", Some("cmp-1.json"), &["policy", "show"])?;
    demo.cli(
        "sec-1",
        Some("sec-1.json"),
        &[
            "person",
            "revoke",
            "--person",
            "biz-1",
            "--reason",
            "the demo is over",
        ],
    )?;
    let revoked_refused = demo
        .cli("biz-1", Some("biz-1.json"), &["policy", "show"])
        .is_err();
    demo.steps.push(Step {
        step: format!(
            "policy show after the revocation: {}",
            if revoked_refused {
                "refused"
            } else {
                "ANSWERED"
            }
        ),
        actor: "biz-1".to_owned(),
    });
    Ok(Lifecycle {
        nodes,
        audit_records: export["records"].as_u64().unwrap_or(0),
        audit_reviewed_to: review["last_sequence"].as_u64().unwrap_or(0),
        restarted_cleanly: stopped_cleanly,
        audit_anchored_to: verified["latest_checkpoint"].as_u64().unwrap_or(0),
        policy_hash: text_field(&policy, "hash")?,
        revoked_refused,
    })
}

/// Each custodian's share submitted offline to the session `descriptor`
/// describes; the submission files.
fn submit_all(
    demo: &mut Demo,
    containers: &[Container],
    descriptor: &str,
    operation: &str,
) -> Result<Vec<String>, Error> {
    let mut submissions = Vec::new();
    for container in containers {
        let person = container.person.as_str();
        let submission = format!("{person}.{operation}.submission");
        demo.cli(
            person,
            Some(&format!("{person}.json")),
            &[
                "recover",
                "submit",
                "--descriptor",
                descriptor,
                "--container",
                &container.file,
                "--out",
                &submission,
            ],
        )?;
        submissions.push(submission);
    }
    Ok(submissions)
}
