//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Backs up threshold-MPC key shares with verifiable Shamir secret
/// sharing: the operator's client of the backup service (mutual TLS), the
/// approver's signing tool, and the custodian's offline tool.
#[derive(Debug, Parser)]
#[command(name = "shardkeep", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// Write one stable JSON document on standard output (the report, or
    /// {"error": ...}).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "SHARDKEEP_CONFIG",
        default_value = "shardkeep.json"
    )]
    pub(crate) config: PathBuf,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Make a person's secrets and configuration, or a service's keys,
    /// database and configuration.
    #[command(subcommand)]
    Init(InitCommand),
    /// Show the backup status of key versions (operator, security,
    /// compliance, auditor).
    Status(StatusArgs),
    /// List the server-held shares (metadata only).
    List(ListArgs),
    /// Record a container's delivery, or confirm it with the custodian's
    /// receipt (operator).
    #[command(subcommand)]
    Deliver(DeliverCommand),
    /// The custodian's receipt for a delivered container (offline).
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Inventory: challenge a custodian, prove custody (offline), confirm.
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Read an approval request, check its hash, sign and submit the
    /// approval (approver).
    Approve(ApproveArgs),
    /// Recover a node's key share: ask for approval, start the session,
    /// submit the custodians' shares; the custodian's submission (offline).
    #[command(subcommand)]
    Recover(RecoverCommand),
    /// Drill a recovery (external shares only, sandboxed, self-tested).
    #[command(subcommand)]
    Drill(DrillCommand),
    /// The audit log: verify an export offline; export it, review it.
    #[command(subcommand)]
    Audit(AuditCommand),
    // Backup lifecycle, deletion, compliance and policy.
    /// Back up a node's key share from its keystore file: split, seal the
    /// server's shares, write each custodian's container (operator).
    Generate(GenerateArgs),
    /// Replace a node's active version: a reshare or a re-split (operator).
    Rotate {
        /// Which kind of replacement.
        #[arg(long, value_enum)]
        kind: RotationKindArg,
        #[command(flatten)]
        generate: GenerateArgs,
    },
    /// Delete server shares on an approved request: ask for the approval,
    /// soft delete, or hard delete after the cooldown (operator).
    Delete(DeleteArgs),
    /// Restore soft-deleted server shares before their hard delete
    /// (operator, security; no approval).
    Rollback {
        #[command(flatten)]
        version: VersionArgs,
        /// A soft-deleted share index to restore (repeat).
        #[arg(long = "slot", required = true)]
        slots: Vec<u8>,
    },
    /// A version's procedure checklist, evaluated now (compliance,
    /// security, auditor).
    Checklist(ChecklistArgs),
    /// The split policy: show it, ask for approval of a change, set it.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The registry of persons: register one (asking for approval of a
    /// new approver), rotate their keys, revoke them (security).
    #[command(subcommand)]
    Person(PersonCommand),
    /// Custodian entities: register one with the persons acting for it,
    /// revoke one (security).
    #[command(subcommand)]
    Entity(EntityCommand),
    // ---- The service as a process (serve, sidecar, demo) ----
    /// Serve the backup service of a service configuration (`init
    /// service`) over mutual TLS, with its metrics port, until SIGTERM or
    /// SIGINT.
    Serve,
    /// Serve one party's half of the node self-test (the configuration's
    /// `self_test`) for another node's recovery, until SIGTERM or SIGINT.
    Sidecar,
    /// Run the whole procedure on this machine: a real service on loopback
    /// with mutual TLS, the other parties as sidecars, every role its own
    /// process; generate, deliver with receipts, drill both curves.
    Demo(DemoArgs),
}

/// `generate`, `rotate`: the backup `GenerateBackup` makes.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The key, node and version the keystore file was written for.
    #[command(flatten)]
    pub(crate) version: VersionArgs,
    /// The node's keystore file on the server (an absolute path).
    #[arg(long)]
    pub(crate) keystore: PathBuf,
    /// The tss-lib group's polynomial degree.
    #[arg(long)]
    pub(crate) tss_degree: u32,
    /// The tss-lib group's party count.
    #[arg(long)]
    pub(crate) parties: u32,
    /// An external custodian, ENTITY=PERSON, in slot order (repeat, one per
    /// external slot).
    #[arg(long = "custodian", required = true)]
    pub(crate) custodians: Vec<String>,
    /// ASCII-armor the containers.
    #[arg(long)]
    pub(crate) armor: bool,
    /// The directory each custodian's container is written to, as
    /// `<entity>.container` (no file there is overwritten).
    #[arg(long)]
    pub(crate) out_dir: PathBuf,
}

/// How `rotate` replaces a version.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum RotationKindArg {
    /// The MPC key was reshared: new save data.
    Reshare,
    /// The same save data split again (new custodians or policy).
    Resplit,
}

/// `delete`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct DeleteArgs {
    #[command(subcommand)]
    pub(crate) command: Option<DeleteCommand>,
    /// The approved deletion request (`delete request` wrote it).
    #[arg(long, required = true)]
    pub(crate) request: Option<PathBuf>,
    /// Destroy the soft-deleted shares after their cooldown
    /// (crypto-shredding) instead of soft-deleting them.
    #[arg(long, requires = "draft")]
    pub(crate) hard: bool,
    /// With --hard: where to write the zero-retention certificate draft.
    #[arg(long, requires = "hard")]
    pub(crate) draft: Option<PathBuf>,
}

/// `delete request`.
#[derive(Debug, Subcommand)]
pub(crate) enum DeleteCommand {
    /// Ask for approval of deleting server shares (operator).
    Request {
        #[command(flatten)]
        request: SessionRequestArgs,
        /// A server share index to delete (repeat; strictly increasing).
        #[arg(long = "slot", required = true)]
        slots: Vec<u8>,
    },
}

/// Which procedure a checklist covers.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ChecklistKindArg {
    /// The generation procedure.
    Generation,
    /// The drill procedure.
    Drill,
    /// The deletion procedure.
    Deletion,
}

/// `checklist`.
#[derive(Debug, Args)]
pub(crate) struct ChecklistArgs {
    #[command(flatten)]
    pub(crate) version: VersionArgs,
    /// Which procedure.
    #[arg(long, value_enum)]
    pub(crate) kind: ChecklistKindArg,
    /// Also write the report as one self-contained HTML page here.
    #[arg(long)]
    pub(crate) html: Option<PathBuf>,
    /// Also write the report as the service rendered it (JSON) here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// A split policy's settings.
#[derive(Debug, Args)]
pub(crate) struct PolicySettingsArgs {
    /// Shares needed to recover (t).
    #[arg(long)]
    pub(crate) threshold: u8,
    /// Shares made (n).
    #[arg(long)]
    pub(crate) shares: u8,
    /// Shares the server keeps (indices 1..=server-shares).
    #[arg(long)]
    pub(crate) server_shares: u8,
    /// The KEK provider wrapping the server shares (a label).
    #[arg(long)]
    pub(crate) kek_provider: String,
}

/// `policy ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// The policy in force and its hash (any registered person).
    Show,
    /// Ask for approval of a policy change (security).
    Request {
        #[command(flatten)]
        settings: PolicySettingsArgs,
        /// The change ticket.
        #[arg(long)]
        ticket: String,
        /// The risk note the approvers read (its SHA-256 is approved).
        #[arg(long)]
        risk_note: PathBuf,
        /// Where to write the approval request.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Set the policy: the first one directly, a change on its approved
    /// request (security).
    Set {
        #[command(flatten)]
        settings: PolicySettingsArgs,
        /// The approved policy-change request (`policy request` wrote it);
        /// none for the first policy.
        #[arg(long)]
        request: Option<PathBuf>,
    },
}

/// A role in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RoleArg {
    /// Runs generate, deliver, inspect, drills, recovery, rotation,
    /// deletion.
    Operator,
    /// Approves recovery, deletion, drills, policy and approver-set
    /// changes.
    Security,
    /// Assesses risk and authorises recovery and deletion.
    BusinessOwner,
    /// Reviews evidence, signs off deletions, reviews the audit log.
    Compliance,
    /// Acts for a custodian entity: holds an external share offline.
    Custodian,
    /// Reads evidence and reports, changes nothing.
    Auditor,
}

/// A person's public keys, each 64 hex digits but the age recipient.
#[derive(Debug, Args, Clone)]
pub(crate) struct PersonKeyArgs {
    /// Their receipt key (custodians: `init person` printed it
    /// as the signing key).
    #[arg(long)]
    pub(crate) receipt_key: Option<String>,
    /// Their approval key (approvers, compliance: `init person` printed it
    /// as the signing key).
    #[arg(long)]
    pub(crate) approval_key: Option<String>,
    /// Their age recipient, `age1...` (custodians).
    #[arg(long)]
    pub(crate) age_recipient: Option<String>,
    /// The SHA-256 of their client certificate, DER (anyone calling the
    /// service: `init service` printed it as fingerprint).
    #[arg(long)]
    pub(crate) tls_fingerprint: Option<String>,
}

/// A person's registration.
#[derive(Debug, Args, Clone)]
pub(crate) struct PersonArgs {
    /// The person's actor id.
    #[arg(long)]
    pub(crate) person: String,
    /// Their display name (default: their actor id).
    #[arg(long)]
    pub(crate) display_name: Option<String>,
    /// A role they hold (repeat).
    #[arg(long = "role", value_enum)]
    pub(crate) roles: Vec<RoleArg>,
    #[command(flatten)]
    pub(crate) keys: PersonKeyArgs,
}

/// `person ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PersonCommand {
    /// Register a person; one with an approving role (security, business
    /// owner) on an approved approver-set change once the registry holds
    /// a quorum of approvers (security).
    Register {
        #[command(flatten)]
        registration: PersonArgs,
        /// The approved approver-set change (`person request` wrote it).
        #[arg(long)]
        request: Option<PathBuf>,
    },
    /// Ask for approval of registering a new approver: every field of the
    /// registration is approved (security).
    Request {
        #[command(flatten)]
        registration: PersonArgs,
        /// The change ticket.
        #[arg(long)]
        ticket: String,
        /// The risk note the approvers read (its SHA-256 is approved).
        #[arg(long)]
        risk_note: PathBuf,
        /// Where to write the approval request.
        #[arg(long)]
        out: PathBuf,
        /// Where to write the registration the approvers check the request
        /// against (`approve --expect-registration`).
        #[arg(long)]
        registration_out: PathBuf,
        /// Replace existing output files.
        #[arg(long)]
        force: bool,
    },
    /// Replace a person's keys: give every key they keep, too (security).
    RotateKeys {
        /// The person.
        #[arg(long)]
        person: String,
        #[command(flatten)]
        keys: PersonKeyArgs,
    },
    /// Revoke a person, effective at their next request (security).
    Revoke {
        /// The person.
        #[arg(long)]
        person: String,
        /// Why (kept in the registry and the audit log).
        #[arg(long)]
        reason: String,
    },
}

/// `entity ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum EntityCommand {
    /// Register a custodian entity and the persons acting for it
    /// (security).
    Register {
        /// The entity's custodian id.
        #[arg(long)]
        entity: String,
        /// Its display name (default: its id).
        #[arg(long)]
        display_name: Option<String>,
        /// How to reach it.
        #[arg(long)]
        contact: String,
        /// A registered custodian person acting for it (repeat).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
    },
    /// Revoke a custodian entity: no new share goes to it (security).
    Revoke {
        /// The entity's custodian id.
        #[arg(long)]
        entity: String,
    },
}

/// `demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Work in this directory (made; must not exist) and keep it, with
    /// every configuration, file carried and server log; default: a
    /// fresh temporary directory, removed at the end.
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// The tss-lib fixtures (`ecdsa/` and `eddsa/` of `keygen_data_N.json`);
    /// default: the source tree's, `crates/keydata/tests/data/tss-lib`.
    #[arg(long)]
    pub(crate) fixtures: Option<PathBuf>,
}

/// `audit ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify an exported audit log against its witness's signed
    /// checkpoints (needs no configuration and no access to the service).
    Verify {
        /// The export.
        #[arg(long)]
        export: PathBuf,
        /// A witness file of signed checkpoints (repeat: they are merged).
        #[arg(long = "witness", required = true)]
        witnesses: Vec<PathBuf>,
        /// The checkpoint signer's ed25519 public key, 64 hex digits.
        #[arg(long)]
        key: String,
    },
    /// Export the audit log from the service to a file (auditor,
    /// compliance): what `audit verify` reads.
    Export {
        /// Where to write the export (never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// The first sequence number exported (1: all).
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
    /// Sign and submit a review of an exported log range (compliance).
    Review {
        /// The export reviewed (`audit export` wrote it; check it with
        /// `audit verify` first).
        #[arg(long)]
        export: PathBuf,
        /// The first sequence reviewed (default: the export's first).
        #[arg(long)]
        first: Option<u64>,
        /// The last sequence reviewed (default: the export's last).
        #[arg(long)]
        last: Option<u64>,
        /// The reviewer's findings (free text).
        #[arg(long)]
        findings: String,
    },
}

/// `init ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum InitCommand {
    /// A person's secrets (signing key; age identity for a custodian),
    /// encrypted under a new passphrase, and their configuration file
    /// (written at --config).
    Person(InitArgs),
    /// A service's signing key, local KEK store, SQLite database and
    /// configuration; a throwaway CA with server and client certificates if
    /// asked; the first security person registered.
    Service(InitServiceArgs),
}

/// `init service`.
#[derive(Debug, Args)]
pub(crate) struct InitServiceArgs {
    /// The service's directory (made; must not exist).
    #[arg(long)]
    pub(crate) dir: PathBuf,
    /// The deployment's name (approvals never cross deployments).
    #[arg(long, default_value = "default")]
    pub(crate) deployment: String,
    /// This replica's name.
    #[arg(long, default_value = "r1")]
    pub(crate) replica: String,
    /// The service's signer id (envelopes and session descriptors name
    /// it).
    #[arg(long, default_value = "backup-server-1")]
    pub(crate) signer_id: String,
    /// The address the service will listen on.
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub(crate) listen: String,
    /// Make a CA, and a server certificate for these names (repeat).
    #[arg(long = "tls-name")]
    pub(crate) tls_names: Vec<String>,
    /// Issue a client certificate of that CA for this person (repeat).
    #[arg(long = "client", requires = "tls_names")]
    pub(crate) clients: Vec<String>,
    /// Register this person as the first security person (registered by
    /// themselves: the bootstrap).
    #[arg(long, requires = "bootstrap_approval_key")]
    pub(crate) bootstrap_security: Option<String>,
    /// Their approval key, 64 hex digits (as `init person` printed it).
    #[arg(long, requires = "bootstrap_security")]
    pub(crate) bootstrap_approval_key: Option<String>,
    /// Their client certificate's SHA-256 (DER), 64 hex digits, when
    /// another CA issued it (a certificate this command issues them with
    /// --client is registered without it).
    #[arg(long, requires = "bootstrap_security")]
    pub(crate) bootstrap_tls_fingerprint: Option<String>,
}

/// `init person`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The person (their registered actor id).
    #[arg(long)]
    pub(crate) person: String,
    /// The custodian entity this person acts for: also makes their age
    /// identity.
    #[arg(long)]
    pub(crate) custodian: Option<String>,
    /// The service's address, `https://host:port`.
    #[arg(long, requires_all = ["ca", "cert", "client_key"])]
    pub(crate) server: Option<String>,
    /// The name the server's certificate carries (default: the address's
    /// host).
    #[arg(long, requires = "server")]
    pub(crate) tls_name: Option<String>,
    /// The CA certificate the server's certificate chains to (PEM).
    #[arg(long, requires = "server")]
    pub(crate) ca: Option<PathBuf>,
    /// This person's client certificate (PEM).
    #[arg(long, requires = "server")]
    pub(crate) cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "server")]
    pub(crate) client_key: Option<PathBuf>,
    /// The service's signer id (as its envelopes name it).
    #[arg(long, requires = "service_key")]
    pub(crate) service_signer: Option<String>,
    /// The service's ed25519 signing key, 64 hex digits (pinned).
    #[arg(long, requires = "service_signer")]
    pub(crate) service_key: Option<String>,
    /// Replace an existing configuration and secrets file.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Paging flags shared by `status` and `list`.
#[derive(Debug, Args)]
pub(crate) struct PageArgs {
    /// Rows per page (0: the service's default).
    #[arg(long, default_value_t = 0)]
    pub(crate) page_size: u32,
    /// Continue from this page token.
    #[arg(long, conflicts_with = "all")]
    pub(crate) page_token: Option<String>,
    /// Fetch every page.
    #[arg(long)]
    pub(crate) all: bool,
}

/// `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Only this group key.
    #[arg(long)]
    pub(crate) key: Option<String>,
    /// Only this node.
    #[arg(long)]
    pub(crate) node: Option<String>,
    /// Retired versions too.
    #[arg(long)]
    pub(crate) include_retired: bool,
    #[command(flatten)]
    pub(crate) page: PageArgs,
}

/// `list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this group key.
    #[arg(long)]
    pub(crate) key: Option<String>,
    /// Only this node.
    #[arg(long)]
    pub(crate) node: Option<String>,
    /// Only this version (needs --key and --node).
    #[arg(long, requires_all = ["key", "node"])]
    pub(crate) key_version: Option<u32>,
    #[command(flatten)]
    pub(crate) page: PageArgs,
}

/// One key version.
#[derive(Debug, Args, Clone)]
pub(crate) struct VersionArgs {
    /// The group key.
    #[arg(long)]
    pub(crate) key: String,
    /// The node.
    #[arg(long)]
    pub(crate) node: String,
    /// The version (from 1).
    #[arg(long)]
    pub(crate) key_version: u32,
}

/// One share slot.
#[derive(Debug, Args, Clone)]
pub(crate) struct SlotArgs {
    #[command(flatten)]
    pub(crate) version: VersionArgs,
    /// The share index (1 to n).
    #[arg(long)]
    pub(crate) index: u32,
}

/// `deliver ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DeliverCommand {
    /// Record that a custodian's container was handed over (or failed).
    Record {
        #[command(flatten)]
        slot: SlotArgs,
        /// The container as delivered.
        #[arg(long)]
        container: PathBuf,
        /// The delivery failed, for this reason.
        #[arg(long)]
        failed: Option<String>,
    },
    /// Confirm a delivery with the custodian's signed receipt.
    Confirm {
        #[command(flatten)]
        slot: SlotArgs,
        /// The receipt file the custodian made (`receipt sign`).
        #[arg(long)]
        receipt: PathBuf,
    },
}

/// `receipt ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ReceiptCommand {
    /// Open and verify a delivered container, and sign its receipt
    /// (custodian, offline).
    Sign {
        /// The container received.
        #[arg(long)]
        container: PathBuf,
        /// Where to write the receipt.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
}

/// `inventory ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum InventoryCommand {
    /// Issue a single-use challenge for an external slot's custodian
    /// (operator).
    Challenge {
        #[command(flatten)]
        slot: SlotArgs,
        /// Where to write the challenge.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Answer a challenge with a signed proof of custody (custodian,
    /// offline).
    Prove {
        /// The challenge file.
        #[arg(long)]
        challenge: PathBuf,
        /// The container held.
        #[arg(long)]
        container: PathBuf,
        /// Where to write the proof.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Submit a custodian's proof (operator).
    Confirm {
        /// The proof file.
        #[arg(long)]
        proof: PathBuf,
    },
}

/// The roles an approval is given in.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ApproverRole {
    /// A security person.
    Security,
    /// A business owner.
    BusinessOwner,
}

/// `approve`.
#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The approval request file (as `recover request` or `drill request`
    /// wrote it).
    #[arg(long)]
    pub(crate) request: PathBuf,
    /// The role to approve in.
    #[arg(long, value_enum)]
    pub(crate) role: ApproverRole,
    /// The request hash the requester announced (64 hex digits): refuse to
    /// sign a request whose recomputed hash differs.
    #[arg(long)]
    pub(crate) expect_hash: Option<String>,
    /// Sign without asking at the terminal.
    #[arg(long)]
    pub(crate) yes: bool,
    /// Also write the signed approval here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Do not submit (with --out: carry the approval by hand).
    #[arg(long, requires = "out")]
    pub(crate) no_submit: bool,
    /// A policy change's new policy as T/N/S/PROVIDER (e.g.
    /// `3/5/1/local-key-file`): needed to approve a policy change, whose
    /// request names only the policy's hash; refused unless it hashes to
    /// that.
    #[arg(long)]
    pub(crate) expect_policy: Option<String>,
    /// The registration file `person request` wrote: needed to approve an
    /// approver-set change, whose request names only the registration's
    /// hash; refused unless it hashes to that.
    #[arg(long, conflicts_with = "expect_policy")]
    pub(crate) expect_registration: Option<PathBuf>,
}

/// The parameters of a recovery or drill approval.
#[derive(Debug, Args)]
pub(crate) struct SessionRequestArgs {
    #[command(flatten)]
    pub(crate) version: VersionArgs,
    /// The version's split id (64 hex digits).
    #[arg(long)]
    pub(crate) split_id: String,
    /// The change or incident ticket.
    #[arg(long)]
    pub(crate) ticket: String,
    /// The risk note the approvers read (its SHA-256 is approved).
    #[arg(long)]
    pub(crate) risk_note: PathBuf,
    /// Where to write the approval request.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Starting an approved session.
#[derive(Debug, Args)]
pub(crate) struct SessionStartArgs {
    /// The approved request file.
    #[arg(long)]
    pub(crate) request: PathBuf,
    /// Where to write the session descriptor (handed to the custodians).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Submitting the custodians' shares to a session.
#[derive(Debug, Args)]
pub(crate) struct SessionSharesArgs {
    /// The session descriptor (`recover start` or `drill start` wrote it).
    #[arg(long)]
    pub(crate) descriptor: PathBuf,
    /// The custodians' submission files.
    #[arg(required = true)]
    pub(crate) submissions: Vec<PathBuf>,
}

/// `recover ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RecoverCommand {
    /// Ask for approval of a recovery (operator).
    Request {
        #[command(flatten)]
        request: SessionRequestArgs,
        /// The node's keystore directory the share is written to.
        #[arg(long)]
        target: String,
        /// Let the server-held shares join.
        #[arg(long)]
        allow_server_shares: bool,
    },
    /// Start the approved recovery (operator).
    Start(SessionStartArgs),
    /// Submit custodians' shares to a session (operator).
    Shares(SessionSharesArgs),
    /// Check a session descriptor and encrypt this custodian's share to it
    /// (custodian, offline).
    Submit {
        /// The session descriptor.
        #[arg(long)]
        descriptor: PathBuf,
        /// The container held.
        #[arg(long)]
        container: PathBuf,
        /// Where to write the submission.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
}

/// `drill ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DrillCommand {
    /// Ask a security person to approve a drill (operator).
    Request {
        #[command(flatten)]
        request: SessionRequestArgs,
    },
    /// Start the approved drill (operator).
    Start(SessionStartArgs),
    /// Submit custodians' shares to the drill (operator); prints the drill
    /// report at threshold.
    Shares(SessionSharesArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command's full name, e.g. `recover submit`.
    fn names(command: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            let name = format!("{prefix}{}", sub.get_name());
            if sub.has_subcommands() {
                names(sub, &format!("{name} "), out);
            } else {
                out.push(name);
            }
        }
    }

    #[test]
    fn the_readme_documents_every_command() {
        let readme = include_str!("../README.md");
        let mut all = Vec::new();
        names(&Cli::command(), "", &mut all);
        assert!(all.len() > 15, "{all:?}");
        for name in all {
            assert!(
                readme.contains(&format!("| `{name}")),
                "README lacks the row of `{name}`"
            );
        }
    }
}
