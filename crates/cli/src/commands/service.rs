//! `init service`: what a backup service starts from. Its envelope and
//! session signing key (the kms crate's key file), its local KEK store
//! (one KEK per server share slot under a master key file), its SQLite
//! database (schema made), its configuration file; if asked, a CA with a
//! server certificate and persons' client certificates; and the first
//! security person, registered by themselves (the registry's bootstrap).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{SeedableRng as _, TryRng as _};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use shardkeep_backup::{
    BackupService, PersonKeys, PersonRegistration, Role, RoleSet, ServiceConfig, ServiceParts,
    SystemClock,
};
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_storage::SqliteStorage;
use shardkeep_types::{ActorId, FreeText, KekId, Label, Signer as _, SignerId};
use zeroize::Zeroizing;

use super::{Context, hex32, shown};
use crate::cli::InitServiceArgs;
use crate::error::{Error, ExitCode};
use crate::files::{self, Access};
use crate::output::{Report, line};

/// The `format` field of a service configuration file.
pub(crate) const SERVICE_CONFIG_FORMAT: &str = "shardkeep-service-config-v1";
/// The master KEK's id in the local KEK store.
const MASTER_KEK: &str = "master-1";

/// A service's configuration file (paths relative to its directory): what
/// the service process starts from.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceConfigFile {
    pub(crate) format: String,
    pub(crate) deployment: String,
    pub(crate) replica: String,
    pub(crate) listen: String,
    pub(crate) database: PathBuf,
    pub(crate) kek_store: PathBuf,
    pub(crate) signer_key: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tls: Option<ServiceTlsFile>,
}

/// The server's TLS material.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceTlsFile {
    /// The server's certificate chain, PEM.
    pub(crate) server_cert: PathBuf,
    /// Its key, PEM.
    pub(crate) server_key: PathBuf,
    /// The CA client certificates must chain to, PEM.
    pub(crate) client_ca: PathBuf,
}

/// One client certificate issued.
#[derive(Debug, Serialize)]
struct ClientReport {
    person: String,
    cert: String,
    key: String,
    /// The SHA-256 of the certificate (DER): register it as the person's
    /// TLS fingerprint.
    fingerprint: String,
}

/// `init service`.
#[derive(Debug, Serialize)]
struct ServiceReport {
    command: &'static str,
    dir: String,
    config: String,
    deployment: String,
    /// The service's signer: pin it in every person's configuration.
    signer_id: String,
    signer_key: String,
    database: String,
    kek_store: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<String>,
    clients: Vec<ClientReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bootstrap_security: Option<String>,
}

impl Report for ServiceReport {
    fn human(&self, out: &mut String) {
        line!(
            out,
            "service of deployment {} made in {}",
            self.deployment,
            self.dir
        );
        line!(out, "configuration:   {}", self.config);
        line!(out, "database:        {}", self.database);
        line!(out, "KEK store:       {}", self.kek_store);
        line!(
            out,
            "service signer:  {} {} (pin it: init person --service-signer/--service-key)",
            self.signer_id,
            self.signer_key
        );
        if let Some(ca) = &self.ca {
            line!(
                out,
                "CA:              {ca} (its key sits beside it: move it offline)"
            );
        }
        for client in &self.clients {
            line!(
                out,
                "client {}: {} (fingerprint {})",
                client.person,
                client.cert,
                client.fingerprint
            );
        }
        if let Some(security) = &self.bootstrap_security {
            line!(out, "first security person registered: {security}");
        }
    }
}

pub(super) async fn init(context: &Context, args: InitServiceArgs) -> Result<ExitCode, Error> {
    let deployment = label("deployment", &args.deployment)?;
    let replica = label("replica", &args.replica)?;
    let signer_id = SignerId::new(args.signer_id.as_str()).map_err(|_| Error::Argument {
        flag: "signer-id",
        reason: "not a valid signer id".to_owned(),
    })?;
    let bootstrap = match (&args.bootstrap_security, &args.bootstrap_approval_key) {
        (Some(name), Some(key)) => Some((
            ActorId::new(name.as_str()).map_err(|_| Error::Argument {
                flag: "bootstrap-security",
                reason: "not a valid actor id".to_owned(),
            })?,
            hex32("bootstrap-approval-key", key)?,
        )),
        _ => None,
    };
    let bootstrap_fingerprint = args
        .bootstrap_tls_fingerprint
        .as_deref()
        .map(|text| hex32("bootstrap-tls-fingerprint", text))
        .transpose()?;
    if bootstrap_fingerprint.is_some()
        && args.clients.iter().any(|client| {
            bootstrap
                .as_ref()
                .is_some_and(|(security, _)| security.as_str() == client)
        })
    {
        return Err(Error::Argument {
            flag: "bootstrap-tls-fingerprint",
            reason: "this command issues their certificate (--client): give no other".to_owned(),
        });
    }
    for client in &args.clients {
        ActorId::new(client.as_str()).map_err(|_| Error::Argument {
            flag: "client",
            reason: format!("{client:?} is not a valid actor id"),
        })?;
    }

    let dir = &args.dir;
    if dir.exists() {
        return Err(Error::OutputExists(dir.clone()));
    }
    private_dir(dir)?;
    let keys_dir = dir.join("keys");
    private_dir(&keys_dir)?;
    let signer_path = keys_dir.join("service-signer.key");
    let signer = KeyFileSigner::create(&signer_path, signer_id.clone()).map_err(|error| {
        Error::ServiceInit {
            what: "the service's signer key file",
            detail: error.to_string(),
        }
    })?;
    let kek_dir = dir.join("kek-store");
    let keks = LocalKeyStore::create(&kek_dir, kek_id(MASTER_KEK)?).map_err(|error| {
        Error::ServiceInit {
            what: "the local KEK store",
            detail: error.to_string(),
        }
    })?;
    let database = dir.join("backup.sqlite");
    let storage = SqliteStorage::open(&database)
        .await
        .map_err(|error| Error::ServiceInit {
            what: "the SQLite database",
            detail: error.to_string(),
        })?;

    let (tls, ca, clients) = if args.tls_names.is_empty() {
        (None, None, Vec::new())
    } else {
        let (tls, ca, clients) = make_tls(dir, &args.tls_names, &args.clients)?;
        (Some(tls), Some(ca), clients)
    };

    let signer_key = hex::encode(signer.verifying_key().to_bytes());
    if let Some((security, approval_key)) = &bootstrap {
        let issued = clients
            .iter()
            .find(|client| client.person == security.as_str())
            .map(|client| hex32("client", &client.fingerprint))
            .transpose()?;
        let fingerprint = issued.or(bootstrap_fingerprint);
        register_bootstrap(
            storage,
            ServiceConfig::new(deployment.clone(), replica.clone()),
            Arc::new(keks),
            Arc::new(signer),
            PersonRegistration {
                id: security.clone(),
                display_name: FreeText::new(security.as_str()).map_err(|_| Error::Argument {
                    flag: "bootstrap-security",
                    reason: "not a valid display name".to_owned(),
                })?,
                roles: [Role::Security].into_iter().collect::<RoleSet>(),
                keys: PersonKeys {
                    approval_key: Some(*approval_key),
                    tls_fingerprint: fingerprint,
                    ..PersonKeys::default()
                },
            },
        )
        .await?;
    }

    let config = ServiceConfigFile {
        format: SERVICE_CONFIG_FORMAT.to_owned(),
        deployment: deployment.as_str().to_owned(),
        replica: replica.as_str().to_owned(),
        listen: args.listen.clone(),
        database: "backup.sqlite".into(),
        kek_store: "kek-store".into(),
        signer_key: "keys/service-signer.key".into(),
        tls,
    };
    let mut text = serde_json::to_string_pretty(&config)
        .map_err(|_| Error::Internal("the configuration does not serialize"))?;
    text.push('\n');
    let config_path = dir.join("service.json");
    files::write_new(&config_path, text.as_bytes(), false, Access::Public)?;
    context.output.report(&ServiceReport {
        command: "init service",
        dir: shown(dir),
        config: shown(&config_path),
        deployment: deployment.as_str().to_owned(),
        signer_id: signer_id.as_str().to_owned(),
        signer_key,
        database: shown(&database),
        kek_store: shown(&kek_dir),
        ca: ca.map(|path| shown(&path)),
        clients,
        bootstrap_security: bootstrap.map(|(security, _)| security.as_str().to_owned()),
    })?;
    Ok(ExitCode::Ok)
}

fn label(flag: &'static str, value: &str) -> Result<Label, Error> {
    Label::new(value).map_err(|_| Error::Argument {
        flag,
        reason: "not a valid label".to_owned(),
    })
}

fn kek_id(id: &str) -> Result<KekId, Error> {
    KekId::new(id).map_err(|_| Error::Internal("the master KEK id"))
}

/// A directory only its owner can enter (the key-directory checks of the
/// kms crate require it).
fn private_dir(path: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|source| Error::WriteFile {
        path: path.to_owned(),
        source,
    })
}

/// Registers the first security person through the backup procedure
/// (they register themselves: the bootstrap, audited as such).
async fn register_bootstrap(
    storage: SqliteStorage,
    config: ServiceConfig,
    keks: Arc<LocalKeyStore>,
    signer: Arc<KeyFileSigner>,
    registration: PersonRegistration,
) -> Result<(), Error> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::SysRng
        .try_fill_bytes(seed.as_mut_slice())
        .map_err(|_| Error::Randomness)?;
    let parts = ServiceParts::new(
        storage,
        config,
        keks,
        signer,
        Arc::new(SystemClock),
        Box::new(rand::rngs::ChaCha20Rng::from_seed(*seed)),
    );
    let service = BackupService::new(parts).map_err(Error::local("the backup service"))?;
    let security = registration.id.clone();
    service
        .register_person(&security, registration)
        .await
        .map_err(Error::local("registering the first security person"))?;
    Ok(())
}

/// The CA, the server's certificate for `names`, and each client's.
fn make_tls(
    dir: &Path,
    names: &[String],
    clients: &[String],
) -> Result<(ServiceTlsFile, PathBuf, Vec<ClientReport>), Error> {
    let tls_failed = |error: rcgen::Error| Error::ServiceInit {
        what: "the TLS certificates",
        detail: error.to_string(),
    };
    let tls_dir = dir.join("tls");
    private_dir(&tls_dir)?;
    let ca_key = KeyPair::generate().map_err(tls_failed)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_failed)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "shardkeep backup CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_failed)?;
    let ca_path = tls_dir.join("ca.pem");
    files::write_new(&ca_path, ca_cert.pem().as_bytes(), false, Access::Public)?;
    let ca_key_pem = Zeroizing::new(ca_key.serialize_pem());
    files::write_new(
        &tls_dir.join("ca.key.pem"),
        ca_key_pem.as_bytes(),
        false,
        Access::OwnerOnly,
    )?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let issue = |names: Vec<String>,
                 common_name: &str,
                 usage: ExtendedKeyUsagePurpose,
                 stem: &str|
     -> Result<(PathBuf, PathBuf, String), Error> {
        let key = KeyPair::generate().map_err(tls_failed)?;
        let mut params = CertificateParams::new(names).map_err(tls_failed)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).map_err(tls_failed)?;
        let cert_path = tls_dir.join(format!("{stem}.pem"));
        let key_path = tls_dir.join(format!("{stem}.key.pem"));
        files::write_new(&cert_path, cert.pem().as_bytes(), false, Access::Public)?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        files::write_new(&key_path, key_pem.as_bytes(), false, Access::OwnerOnly)?;
        // The fingerprint every TLS tool shows: plain SHA-256 of the DER.
        let fingerprint = hex::encode(Sha256::digest(cert.der()));
        Ok((cert_path, key_path, fingerprint))
    };
    let (server_cert, server_key, _) = issue(
        names.to_vec(),
        "shardkeep backup server",
        ExtendedKeyUsagePurpose::ServerAuth,
        "server",
    )?;
    let mut issued = Vec::with_capacity(clients.len());
    for person in clients {
        let (cert, key, fingerprint) = issue(
            Vec::new(),
            person,
            ExtendedKeyUsagePurpose::ClientAuth,
            &format!("client-{person}"),
        )?;
        issued.push(ClientReport {
            person: person.clone(),
            cert: shown(&cert),
            key: shown(&key),
            fingerprint,
        });
    }
    let relative = |path: &Path| {
        path.strip_prefix(dir)
            .map_or_else(|_| path.to_owned(), Path::to_path_buf)
    };
    Ok((
        ServiceTlsFile {
            server_cert: relative(&server_cert),
            server_key: relative(&server_key),
            client_ca: relative(&ca_path),
        },
        ca_path,
        issued,
    ))
}
