//! The commands, and what they share.

mod approve;
mod audit;
mod custody;
mod init;
mod query;
mod service;
mod session;
// Backup lifecycle, deletion, compliance and policy.
mod approval;
mod backup;
mod compliance;
mod deletion;
mod policy;
mod registry;
// The service as a process.
mod demo;
mod serve;

use std::path::{Path, PathBuf};

use serde::Serialize;
use shardkeep_grpc::proto;
use shardkeep_types::{KeyId, KeyVersion, NodeId, NodeVersion, Timestamp};

use crate::cli::{AuditCommand, Cli, Command, InitCommand, SlotArgs, VersionArgs};
use crate::config::Config;
use crate::error::{Error, ExitCode};
use crate::output::Output;
use crate::secrets::{PersonSecrets, read_passphrase};

/// What every command runs with.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) output: Output,
    pub(crate) config_path: PathBuf,
}

impl Context {
    /// The configuration file, loaded and checked.
    fn config(&self) -> Result<Config, Error> {
        Config::load(&self.config_path)
    }
}

/// Runs the parsed command line.
///
/// # Errors
/// The command's failure; the exit code on success tells a recovery or a
/// drill that failed at threshold (after its report was written).
pub(crate) fn run(cli: Cli) -> Result<ExitCode, Error> {
    let context = Context {
        output: Output::new(cli.json),
        config_path: cli.config,
    };
    match cli.command {
        Command::Init(InitCommand::Person(args)) => init::person(&context, args),
        Command::Init(InitCommand::Service(args)) => block_on(service::init(&context, args)),
        Command::Status(args) => block_on(query::status(&context, args)),
        Command::List(args) => block_on(query::list(&context, args)),
        Command::Deliver(command) => block_on(custody::deliver(&context, command)),
        Command::Receipt(command) => custody::receipt(&context, command),
        Command::Inventory(command) => block_on(custody::inventory(&context, command)),
        Command::Approve(args) => block_on(approve::run(&context, args)),
        Command::Recover(command) => block_on(session::recover(&context, command)),
        Command::Drill(command) => block_on(session::drill(&context, command)),
        Command::Audit(command @ AuditCommand::Verify { .. }) => audit::run(&context, command),
        // Backup lifecycle, deletion, compliance and policy.
        Command::Audit(command) => block_on(compliance::audit(&context, command)),
        Command::Generate(args) => block_on(backup::generate(&context, args)),
        Command::Rotate { kind, generate } => block_on(backup::rotate(&context, kind, generate)),
        Command::Delete(args) => block_on(deletion::run(&context, args)),
        Command::Rollback { version, slots } => {
            block_on(deletion::rollback(&context, &version, &slots))
        }
        Command::Checklist(args) => block_on(compliance::checklist(&context, args)),
        Command::Policy(command) => block_on(policy::run(&context, command)),
        Command::Person(command) => block_on(registry::person(&context, command)),
        Command::Entity(command) => block_on(registry::entity(&context, command)),
        // The service as a process.
        Command::Serve => serve::run(&context, serve::Role::Service),
        Command::Sidecar => serve::run(&context, serve::Role::Sidecar),
        Command::Demo(args) => block_on(demo::run(&context, args)),
    }
}

/// Runs `future` on a fresh single-threaded runtime.
fn block_on<F: Future<Output = Result<ExitCode, Error>>>(future: F) -> Result<ExitCode, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?
        .block_on(future)
}

/// Opens the person's secrets with a passphrase read from the terminal
/// (or the passphrase file), and checks they are the configured person's.
fn unlock(config: &Config) -> Result<PersonSecrets, Error> {
    let prompt = format!("Passphrase for {}: ", config.secrets.display());
    let secrets = PersonSecrets::open(&config.secrets, read_passphrase(&prompt, false)?)?;
    if secrets.person != config.person {
        return Err(Error::SecretsInvalid {
            path: config.secrets.clone(),
            reason: format!(
                "they are {}'s, the configuration is {}'s",
                secrets.person, config.person
            ),
        });
    }
    Ok(secrets)
}

/// A custodian's configuration and unlocked secrets: what the offline
/// commands act with.
struct CustodianTool {
    config: Config,
    secrets: PersonSecrets,
    signer: shardkeep_types::InMemorySigner,
}

impl CustodianTool {
    /// The configuration, checked to be a custodian's with a pinned
    /// service key (before any passphrase is asked).
    fn config(context: &Context) -> Result<Config, Error> {
        let config = context.config()?;
        config.custodian()?;
        config.service_signer()?;
        Ok(config)
    }

    /// Unlocks the custodian's secrets.
    fn unlock(config: Config) -> Result<Self, Error> {
        let secrets = unlock(&config)?;
        secrets.age_identity()?;
        let signer = secrets.signer()?;
        Ok(Self {
            config,
            secrets,
            signer,
        })
    }

    /// Their credentials as the backup crate acts with them.
    fn credentials(&self) -> Result<shardkeep_backup::CustodianCredentials<'_>, Error> {
        Ok(shardkeep_backup::CustodianCredentials {
            custodian: self.config.custodian()?,
            person: &self.config.person,
            identities: core::slice::from_ref(self.secrets.age_identity()?),
            receipt_signer: &self.signer,
        })
    }
}

/// A key version as the command line names it, checked.
fn node_version(args: &VersionArgs) -> Result<NodeVersion, Error> {
    if args.key_version == 0 {
        return Err(Error::Argument {
            flag: "key-version",
            reason: "versions start at 1".to_owned(),
        });
    }
    Ok(NodeVersion {
        key_id: KeyId::new(args.key.as_str()).map_err(|_| Error::Argument {
            flag: "key",
            reason: "not a valid key id".to_owned(),
        })?,
        node_id: NodeId::new(args.node.as_str()).map_err(|_| Error::Argument {
            flag: "node",
            reason: "not a valid node id".to_owned(),
        })?,
        version: KeyVersion::new(args.key_version),
    })
}

/// The wire form of a key version.
fn proto_version(version: &NodeVersion) -> proto::NodeVersion {
    proto::NodeVersion {
        key_id: version.key_id.as_str().to_owned(),
        node_id: version.node_id.as_str().to_owned(),
        version: version.version.get(),
    }
}

/// The wire form of a share slot named on the command line, checked.
fn proto_slot(args: &SlotArgs) -> Result<proto::ShareSlot, Error> {
    if args.index == 0 {
        return Err(Error::Argument {
            flag: "index",
            reason: "share indices start at 1".to_owned(),
        });
    }
    Ok(proto::ShareSlot {
        version: Some(proto_version(&node_version(&args.version)?)),
        index: args.index,
    })
}

/// 32 bytes given as 64 hex digits.
fn hex32(flag: &'static str, text: &str) -> Result<[u8; 32], Error> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(Error::Argument {
            flag,
            reason: "not 64 hex digits".to_owned(),
        })
}

/// 32 bytes from the service, or a malformed answer.
fn answer32(field: &'static str, bytes: &[u8]) -> Result<[u8; 32], Error> {
    bytes.try_into().map_err(|_| Error::BadAnswer(field))
}

/// A key version in reports.
#[derive(Debug, Clone, Serialize)]
struct VersionReport {
    key_id: String,
    node_id: String,
    version: u32,
}

impl VersionReport {
    fn of(version: &NodeVersion) -> Self {
        Self {
            key_id: version.key_id.as_str().to_owned(),
            node_id: version.node_id.as_str().to_owned(),
            version: version.version.get(),
        }
    }

    fn of_proto(version: Option<&proto::NodeVersion>) -> Self {
        version.map_or_else(
            || Self {
                key_id: String::new(),
                node_id: String::new(),
                version: 0,
            },
            |version| Self {
                key_id: version.key_id.clone(),
                node_id: version.node_id.clone(),
                version: version.version,
            },
        )
    }
}

impl core::fmt::Display for VersionReport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{} v{}", self.key_id, self.node_id, self.version)
    }
}

/// Seconds since the epoch, readably (empty for 0, "never").
fn when(unix_seconds: u64) -> String {
    if unix_seconds == 0 {
        return "-".to_owned();
    }
    Timestamp::from_unix_seconds(unix_seconds)
        .map_or_else(|_| unix_seconds.to_string(), |time| time.to_string())
}

/// A proto enum's name without its prefix, lower case with dashes:
/// `KEY_VERSION_STATE_ACTIVE` is `active`.
fn enum_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// A path as reports show it.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_lose_their_prefix() {
        assert_eq!(
            enum_name("KEY_VERSION_STATE_ACTIVE", "KEY_VERSION_STATE_"),
            "active"
        );
        assert_eq!(
            enum_name(
                "SHARE_REJECTION_REASON_NOT_THE_SLOTS_CUSTODIAN",
                "SHARE_REJECTION_REASON_"
            ),
            "not-the-slots-custodian"
        );
    }

    #[test]
    fn a_hash_must_be_64_hex_digits() {
        assert!(hex32("split-id", &"ab".repeat(32)).is_ok());
        assert!(hex32("split-id", &"ab".repeat(31)).is_err());
        assert!(hex32("split-id", "not hex").is_err());
    }
}
