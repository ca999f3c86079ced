//! The configuration file: who this person is, where their secrets are,
//! the service's pinned signing key and, for the commands that call the
//! service, its address and the mutual-TLS material.
//!
//! Format `shardkeep-cli-config-v1`, JSON (see the README). Relative paths
//! are relative to the configuration file's directory.

use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use shardkeep_envelope::TrustedSigners;
use shardkeep_types::{ActorId, CustodianId, SignerId};

use crate::error::Error;
use crate::files;

/// The `format` field of every configuration file this build reads.
pub(crate) const CONFIG_FORMAT: &str = "shardkeep-cli-config-v1";

/// Largest configuration file read, in bytes.
const MAX_CONFIG_LEN: usize = 64 * 1024;

/// The file as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Always [`CONFIG_FORMAT`].
    pub(crate) format: String,
    /// The person (their registered actor id).
    pub(crate) person: String,
    /// Their secrets file (age, passphrase-encrypted).
    pub(crate) secrets: PathBuf,
    /// The custodian entity they act for, if they are a custodian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) custodian: Option<String>,
    /// The service's envelope and session signing key, pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) service_signer: Option<ServiceSignerFile>,
    /// The service, for the commands that call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server: Option<ServerFile>,
}

/// The service's pinned signing key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceSignerFile {
    /// Its signer id (as envelopes name it).
    pub(crate) id: String,
    /// Its ed25519 public key, 64 hex digits.
    pub(crate) key: String,
}

/// Where the service is and how to reach it over mutual TLS.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerFile {
    /// `https://host:port`.
    pub(crate) url: String,
    /// The name the server's certificate must carry (default: the URL's
    /// host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tls_name: Option<String>,
    /// The CA certificate(s) the server's certificate chains to, PEM.
    pub(crate) ca: PathBuf,
    /// This person's client certificate, PEM (its fingerprint is
    /// registered to them).
    pub(crate) cert: PathBuf,
    /// Its private key, PEM.
    pub(crate) key: PathBuf,
}

/// The service's pinned signing key, parsed.
#[derive(Debug, Clone)]
pub(crate) struct ServiceSigner {
    pub(crate) id: SignerId,
    pub(crate) key: VerifyingKey,
}

impl ServiceSigner {
    /// The signer as envelope verification takes it.
    pub(crate) fn trusted(&self) -> Result<TrustedSigners, Error> {
        let mut trusted = TrustedSigners::new();
        trusted
            .add(self.id.clone(), self.key)
            .map_err(|error| Error::ServiceKey(error.to_string()))?;
        Ok(trusted)
    }
}

/// The service's address and TLS material, paths resolved.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub(crate) url: String,
    pub(crate) tls_name: String,
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// A loaded, checked configuration.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) path: PathBuf,
    pub(crate) person: ActorId,
    pub(crate) secrets: PathBuf,
    pub(crate) custodian: Option<CustodianId>,
    service_signer: Option<ServiceSigner>,
    server: Option<Server>,
}

impl Config {
    /// Reads and checks the configuration at `path`.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing, malformed or inconsistent file.
    pub(crate) fn load(path: &Path) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Config {
            path: path.to_owned(),
            reason,
        };
        let bytes =
            files::read_capped(path, "configuration file", MAX_CONFIG_LEN).map_err(|error| {
                match error {
                    Error::ReadFile { source, .. } => invalid(source.to_string()),
                    other => other,
                }
            })?;
        let file: ConfigFile =
            serde_json::from_slice(&bytes).map_err(|error| invalid(error.to_string()))?;
        if file.format != CONFIG_FORMAT {
            return Err(invalid(format!(
                "format is {:?}, this build reads {CONFIG_FORMAT:?}",
                file.format
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let person = ActorId::new(file.person.as_str())
            .map_err(|_| invalid("person: not a valid actor id".to_owned()))?;
        let custodian = file
            .custodian
            .map(|name| {
                CustodianId::new(name)
                    .map_err(|_| invalid("custodian: not a valid custodian id".to_owned()))
            })
            .transpose()?;
        let service_signer = file
            .service_signer
            .map(|signer| parse_service_signer(&signer.id, &signer.key).map_err(invalid))
            .transpose()?;
        let server = file.server.map(|server| {
            let tls_name = server
                .tls_name
                .unwrap_or_else(|| host_of(&server.url).to_owned());
            Server {
                url: server.url,
                tls_name,
                ca: base.join(server.ca),
                cert: base.join(server.cert),
                key: base.join(server.key),
            }
        });
        Ok(Self {
            path: path.to_owned(),
            person,
            secrets: base.join(file.secrets),
            custodian,
            service_signer,
            server,
        })
    }

    /// The pinned service key, which this command needs.
    ///
    /// # Errors
    /// [`Error::Config`] when the file names none.
    pub(crate) fn service_signer(&self) -> Result<&ServiceSigner, Error> {
        self.service_signer.as_ref().ok_or_else(|| Error::Config {
            path: self.path.clone(),
            reason: "no service_signer: this command checks the service's signature".to_owned(),
        })
    }

    /// The service's address, which this command needs.
    ///
    /// # Errors
    /// [`Error::Config`] when the file names none.
    pub(crate) fn server(&self) -> Result<&Server, Error> {
        self.server.as_ref().ok_or_else(|| Error::Config {
            path: self.path.clone(),
            reason: "no server: this command calls the service".to_owned(),
        })
    }

    /// The custodian entity, which this command needs.
    ///
    /// # Errors
    /// [`Error::Config`] when the file names none.
    pub(crate) fn custodian(&self) -> Result<&CustodianId, Error> {
        self.custodian.as_ref().ok_or_else(|| Error::Config {
            path: self.path.clone(),
            reason: "no custodian: this command acts for a custodian entity".to_owned(),
        })
    }
}

/// The signer id and hex key, checked.
pub(crate) fn parse_service_signer(id: &str, key: &str) -> Result<ServiceSigner, String> {
    let id = SignerId::new(id).map_err(|_| "service_signer.id: not a valid signer id")?;
    let bytes: [u8; 32] = hex::decode(key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("service_signer.key: not 64 hex digits")?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "service_signer.key: not an ed25519 public key")?;
    Ok(ServiceSigner { id, key })
}

/// The host of `https://host:port/...`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, _port)) => host,
        None => authority,
    }
}

// ---- The service configuration, as `serve` and `sidecar` read it ----

/// The `format` of a service configuration (`init service` writes it).
pub(crate) const SERVICE_FORMAT: &str = "shardkeep-service-config-v1";

/// A service configuration as `serve` reads it: what `init service`
/// writes, and the optional sections a host adds (README, "Service
/// configuration"). Every addition is optional, so a file `init service`
/// wrote is read as is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeConfigFile {
    pub(crate) format: String,
    pub(crate) deployment: String,
    pub(crate) replica: String,
    pub(crate) listen: String,
    /// A SQLite file, or a `postgres://` URL (replicas share it).
    pub(crate) database: String,
    pub(crate) kek_store: PathBuf,
    pub(crate) signer_key: PathBuf,
    #[serde(default)]
    pub(crate) tls: Option<ServeTlsFile>,
    /// The metrics and status HTTP port's address.
    #[serde(default)]
    pub(crate) metrics_listen: Option<String>,
    /// The audit checkpoints' witness file (outside the database's
    /// directory): with it, hard deletes are served.
    #[serde(default)]
    pub(crate) witness: Option<PathBuf>,
    /// Seconds between the audit checkpoints the service makes while its
    /// log grows (with a witness; one more as it stops); default 300.
    #[serde(default)]
    pub(crate) checkpoint_interval_seconds: Option<u64>,
    /// The client certificate this service presents to the other parties'
    /// sidecars, and the CA their certificates chain to.
    #[serde(default)]
    pub(crate) peer_tls: Option<PeerTlsFile>,
    /// The nodes this service recovers: their keystore KEK and the other
    /// parties' sidecars.
    #[serde(default)]
    pub(crate) nodes: Vec<NodeTargetFile>,
    /// The party this process answers the self-test for (`SelfTest`).
    #[serde(default)]
    pub(crate) self_test: Option<SelfTestFile>,
}

/// The server's TLS material.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeTlsFile {
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    pub(crate) client_ca: PathBuf,
}

/// The client side of the connections to other parties' sidecars.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeerTlsFile {
    /// The CA the sidecars' server certificates chain to, PEM.
    pub(crate) ca: PathBuf,
    /// This service's client certificate, PEM (registered at each sidecar
    /// to an operator).
    pub(crate) cert: PathBuf,
    /// Its key, PEM.
    pub(crate) key: PathBuf,
}

/// A keystore KEK: a file of 64 hex digits (mode 0600), and the KEK id
/// the keystore files name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KekFile {
    pub(crate) id: String,
    pub(crate) file: PathBuf,
}

/// One node this service writes recovered keystores for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeTargetFile {
    pub(crate) key_id: String,
    pub(crate) node_id: String,
    /// The node's keystore KEK.
    pub(crate) keystore_kek: KekFile,
    /// The other parties of the node's group, each by its `ShareID`.
    pub(crate) peers: Vec<PeerFile>,
}

/// Another party's sidecar.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeerFile {
    /// Its `ShareID`, hex (public).
    pub(crate) party_id: String,
    /// `https://host:port`.
    pub(crate) url: String,
    /// The name its certificate carries (default: the URL's host).
    #[serde(default)]
    pub(crate) tls_name: Option<String>,
}

/// The party whose half of the self-test this process serves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SelfTestFile {
    /// The party's keystore (`.keydata.enc`).
    pub(crate) keystore: PathBuf,
    /// The KEK it is encrypted under.
    pub(crate) kek: KekFile,
    /// The key version the keystore was written for.
    pub(crate) key_id: String,
    pub(crate) node_id: String,
    pub(crate) key_version: u32,
}

/// Where the service's data lives.
#[derive(Debug, Clone)]
pub(crate) enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

/// A service configuration, read and checked, paths resolved against its
/// directory.
#[derive(Debug)]
pub(crate) struct ServeConfig {
    pub(crate) path: PathBuf,
    pub(crate) file: ServeConfigFile,
    pub(crate) database: Database,
    base: PathBuf,
}

impl ServeConfig {
    /// Reads and checks the service configuration at `path`.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing, malformed or inconsistent file.
    pub(crate) fn load(path: &Path) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Config {
            path: path.to_owned(),
            reason,
        };
        let bytes =
            files::read_capped(path, "service configuration", MAX_CONFIG_LEN).map_err(|error| {
                match error {
                    Error::ReadFile { source, .. } => invalid(source.to_string()),
                    other => other,
                }
            })?;
        let file: ServeConfigFile =
            serde_json::from_slice(&bytes).map_err(|error| invalid(error.to_string()))?;
        if file.format != SERVICE_FORMAT {
            return Err(invalid(format!(
                "format is {:?}, this build reads {SERVICE_FORMAT:?}",
                file.format
            )));
        }
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        let database = if file.database.starts_with("postgres://")
            || file.database.starts_with("postgresql://")
        {
            Database::Postgres(file.database.clone())
        } else {
            Database::Sqlite(base.join(&file.database))
        };
        if let (Some(witness), Database::Sqlite(db)) = (&file.witness, &database) {
            // The witness anchors the log against whoever can rewrite the
            // database: not beside it.
            let witness_dir = base.join(witness);
            let witness_dir = witness_dir.parent().unwrap_or(Path::new("."));
            let db_dir = db.parent().unwrap_or(Path::new("."));
            if within(witness_dir, db_dir) {
                return Err(invalid(
                    "witness: must not be in the database's directory".to_owned(),
                ));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            database,
            base,
        })
    }

    /// A path of the file, resolved against its directory.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        self.base.join(path)
    }

    /// `reason` about this file, as an error.
    pub(crate) fn invalid(&self, reason: String) -> Error {
        Error::Config {
            path: self.path.clone(),
            reason,
        }
    }
}

/// Whether directory `inner` is `outer` or lies under it (canonically
/// when both exist).
fn within(inner: &Path, outer: &Path) -> bool {
    match (inner.canonicalize(), outer.canonicalize()) {
        (Ok(inner), Ok(outer)) => inner.starts_with(outer),
        _ => inner.starts_with(outer),
    }
}

/// The host of a URL, public to `serve` for its peers' TLS names.
pub(crate) fn url_host(url: &str) -> &str {
    host_of(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_name_defaults_to_the_urls_host() {
        assert_eq!(host_of("https://localhost:7443"), "localhost");
        assert_eq!(host_of("https://backup.example.com/"), "backup.example.com");
    }

    #[test]
    fn the_witness_must_live_outside_the_database_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("audit")).unwrap();
        let config = dir.path().join("service.json");
        let write = |witness: &str| {
            let text = format!(
                r#"{{"format":"{SERVICE_FORMAT}","deployment":"d","replica":"r1",
                "listen":"127.0.0.1:0","database":"backup.sqlite","kek_store":"k",
                "signer_key":"s","witness":"{witness}"}}"#
            );
            std::fs::write(&config, text).unwrap();
            ServeConfig::load(&config)
        };
        for inside in ["audit.witness", "audit/audit.witness", "./audit.witness"] {
            assert!(
                matches!(write(inside), Err(Error::Config { .. })),
                "{inside} is refused"
            );
        }
        let outside = write("../outside.witness").unwrap();
        assert!(matches!(outside.database, Database::Sqlite(_)));
    }

    #[test]
    fn a_service_key_must_be_an_ed25519_key_in_hex() {
        assert!(parse_service_signer("backup-server-1", "zz").is_err());
        assert!(parse_service_signer("backup-server-1", &"00".repeat(31)).is_err());
        let key = shardkeep_types::InMemorySigner::from_seed(SignerId::new("s").unwrap(), &[7; 32]);
        let hex = hex::encode(shardkeep_types::Signer::verifying_key(&key).to_bytes());
        let parsed = parse_service_signer("backup-server-1", &hex).unwrap();
        assert_eq!(parsed.id.as_str(), "backup-server-1");
    }
}
