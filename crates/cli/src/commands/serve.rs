//! `serve` and `sidecar`: the backup service as a process. It opens the
//! configured storage (SQLite, or PostgreSQL for replicas), the local KEK
//! store and the service signer, builds the procedure with the configured
//! nodes' recovery targets (their keystore KEK, the other parties'
//! sidecars over mutual TLS), witnesses audit checkpoints in a file outside
//! the database's directory, serves gRPC over mutual TLS and the metrics
//! and status port side by side, logs to standard error, and stops
//! gracefully on SIGTERM or SIGINT.
//!
//! A sidecar is the same process serving one party's half of the node
//! self-test (`SelfTest`) from that party's keystore: it is a service of
//! its own, whose registry authenticates the recovering server's client
//! certificate as an operator.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::{SeedableRng as _, TryRng as _};
use serde::Serialize;
use shardkeep_audit::FileWitness;
use shardkeep_backup::{BackupService, ServiceConfig, ServiceParts, SystemClock};
use shardkeep_grpc::http::{HttpState, serve_http};
use shardkeep_grpc::proto::backup_service_client::BackupServiceClient;
use shardkeep_grpc::{
    GrpcPeerTransport, GrpcService, MAX_MESSAGE_SIZE, RecoveryTargets, SelfTestSidecar,
    ServerConfig, TlsIdentity, serve_on,
};
use shardkeep_keydata::{
    KekKeystoreCodec, KeystoreCodec, LocalPartySaveData, RemotePeers, SelfTestPeers,
};
use shardkeep_kms::{KeyFileSigner, LocalKeyStore};
use shardkeep_storage::{PostgresStorage, SqliteStorage, Storage};
use shardkeep_types::{InMemoryKek, KekId, KeyId, KeyVersion, Label, NodeId, NodeVersion};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

use super::Context;
use crate::config::{Database, KekFile, ServeConfig, url_host};
use crate::error::{Error, ExitCode};
use crate::files;

/// Largest PEM file read (a certificate chain or a key).
const MAX_PEM_LEN: usize = 256 * 1024;
/// Largest keystore KEK file: 64 hex digits and a line end.
const MAX_KEK_FILE_LEN: usize = 128;
/// Largest keystore file (`.keydata.enc`).
const MAX_KEYSTORE_LEN: usize = 4 * 1024 * 1024;
/// How long connecting to another party's sidecar may take.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one self-test exchange may take.
const PEER_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Which of the two commands runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// `serve`: the backup service (a sidecar too when configured).
    Service,
    /// `sidecar`: the configuration must name a self-test party.
    Sidecar,
}

/// The one line written on standard output once both ports listen.
#[derive(Debug, Serialize)]
struct Listening {
    command: &'static str,
    grpc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<String>,
    /// The `ShareID` (hex) of the party whose self-test this serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    self_test_party: Option<String>,
    recovery_nodes: Vec<String>,
}

/// `serve` or `sidecar`: runs until SIGTERM or SIGINT.
pub(super) fn run(context: &Context, role: Role) -> Result<ExitCode, Error> {
    let config = ServeConfig::load(&context.config_path)?;
    if role == Role::Sidecar && config.file.self_test.is_none() {
        return Err(
            config.invalid("no self_test: a sidecar serves one party's self-test".to_owned())
        );
    }
    // Logs go to standard error; a second subscriber (none here) would be
    // the embedder's choice, so a failure to install is not fatal.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let command = match role {
        Role::Service => "serve",
        Role::Sidecar => "sidecar",
    };
    runtime.block_on(async {
        match config.database.clone() {
            Database::Sqlite(path) => {
                let storage = SqliteStorage::open(&path)
                    .await
                    .map_err(|error| serve_error("the SQLite database", &error))?;
                host(&config, storage, command).await
            }
            Database::Postgres(url) => {
                let storage = PostgresStorage::connect(&url)
                    .await
                    .map_err(|error| serve_error("the PostgreSQL database", &error))?;
                host(&config, storage, command).await
            }
        }
    })
}

fn serve_error(what: &'static str, error: &dyn core::fmt::Display) -> Error {
    Error::Serve {
        what,
        detail: error.to_string(),
    }
}

/// Builds the service over `storage` and serves it until a stop signal.
async fn host<S: Storage + Send + Sync + 'static>(
    config: &ServeConfig,
    storage: S,
    command: &'static str,
) -> Result<ExitCode, Error> {
    let file = &config.file;
    let label = |field: &str, value: &str| {
        Label::new(value).map_err(|_| config.invalid(format!("{field}: not a valid label")))
    };
    let service_config = ServiceConfig::new(
        label("deployment", &file.deployment)?,
        label("replica", &file.replica)?,
    );
    let keks = LocalKeyStore::open(config.resolve(&file.kek_store))
        .map_err(|error| serve_error("the local KEK store", &error))?;
    let signer = Arc::new(
        KeyFileSigner::open(config.resolve(&file.signer_key))
            .map_err(|error| serve_error("the service's signer key file", &error))?,
    );
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::SysRng
        .try_fill_bytes(seed.as_mut_slice())
        .map_err(|_| Error::Randomness)?;
    let parts = ServiceParts::new(
        storage,
        service_config,
        Arc::new(keks),
        signer.clone(),
        Arc::new(SystemClock),
        Box::new(rand::rngs::ChaCha20Rng::from_seed(*seed)),
    );
    let backup = BackupService::new(parts).map_err(Error::local("the backup service"))?;

    let targets = ConfiguredTargets::load(config)?;
    let recovery_nodes = targets.names();
    let mut grpc = GrpcService::new(backup.clone(), Arc::new(targets));
    if let Some(witness) = &file.witness {
        let witness = FileWitness::open(config.resolve(witness))
            .map_err(|error| serve_error("the audit witness file", &error))?;
        grpc = grpc.with_checkpoints(signer, witness);
    }
    let mut self_test_party = None;
    if let Some(self_test) = &file.self_test {
        let version = node_version(
            config,
            &self_test.key_id,
            &self_test.node_id,
            self_test.key_version,
        )?;
        let codec = keystore_codec(config, &self_test.kek)?;
        let keystore = files::read_capped(
            &config.resolve(&self_test.keystore),
            "keystore",
            MAX_KEYSTORE_LEN,
        )?;
        let json = codec
            .decode(&version, &keystore)
            .map_err(|error| serve_error("the self-test party's keystore", &error))?;
        let data = LocalPartySaveData::from_json(&json)
            .map_err(|error| serve_error("the self-test party's save data", &error))?;
        let sidecar = SelfTestSidecar::spawn(data)
            .map_err(|error| serve_error("the self-test sidecar", &error))?;
        self_test_party = Some(hex::encode(sidecar.party_id()));
        grpc = grpc.with_self_test_sidecar(sidecar);
    }

    let tls = tls_identity(config)?;
    let grpc_listener = bind(config, "listen", &file.listen).await?;
    let grpc_addr = local_addr(&grpc_listener)?;
    let metrics_listener = match &file.metrics_listen {
        Some(address) => Some(bind(config, "metrics_listen", address).await?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().map(local_addr).transpose()?;

    let (stop, stopped) = watch::channel(false);
    let signals = tokio::spawn(StopSignals::listen()?.stop(stop));
    let on_stop = |mut stopped: watch::Receiver<bool>| async move {
        // An error means the sender is gone: stop too.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let mut server_config = ServerConfig::new(grpc_addr, tls);
    if let Some(seconds) = file.checkpoint_interval_seconds {
        if seconds == 0 {
            return Err(config.invalid(
                "checkpoint_interval_seconds: at least 1 (leave it out for the default)".to_owned(),
            ));
        }
        server_config.checkpoint_interval = Some(Duration::from_secs(seconds));
    }
    let metrics = metrics_listener.map(|listener| {
        let state = HttpState::new(backup.clone());
        // The gRPC calls are counted into the metrics port's registry.
        server_config.request_metrics = Some(state.request_metrics_layer());
        tokio::spawn(serve_http(listener, state, on_stop(stopped.clone())))
    });
    announce(&Listening {
        command,
        grpc: grpc_addr.to_string(),
        metrics: metrics_addr.map(|addr| addr.to_string()),
        self_test_party,
        recovery_nodes,
    })?;
    tracing::info!(grpc = %grpc_addr, metrics = ?metrics_addr, "listening");
    let served = serve_on(grpc_listener, server_config, grpc, on_stop(stopped)).await;
    signals.abort();
    if let Some(metrics) = metrics {
        match metrics.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(serve_error("the metrics port", &error)),
            Err(_) => return Err(Error::Internal("the metrics port's task failed")),
        }
    }
    served.map_err(|error| serve_error("the gRPC server", &error))?;
    tracing::info!("stopped");
    Ok(ExitCode::Ok)
}

/// SIGTERM and SIGINT, listened for from the moment this is made (before
/// the listening line, so a signal sent right after it is not lost to the
/// default action).
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> Result<Self, Error> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind| {
                signal(kind)
                    .map_err(|error| serve_error("listening for SIGTERM and SIGINT", &error))
            };
            Ok(Self {
                term: listen(SignalKind::terminate())?,
                int: listen(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for one, then tells every server to stop.
    async fn stop(mut self, stop: watch::Sender<bool>) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = self.int.recv() => tracing::info!("SIGINT: stopping"),
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            tracing::error!("cannot listen for Ctrl-C: stopping");
        }
        let _ = stop.send(true);
    }
}

/// Writes the listening line (one JSON object) on standard output.
fn announce(listening: &Listening) -> Result<(), Error> {
    let mut line = serde_json::to_string(listening)
        .map_err(|_| Error::Internal("the listening line does not serialize"))?;
    line.push('\n');
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|source| Error::WriteFile {
            path: "standard output".into(),
            source,
        })
}

async fn bind(config: &ServeConfig, field: &str, address: &str) -> Result<TcpListener, Error> {
    let addr: SocketAddr = address
        .parse()
        .map_err(|_| config.invalid(format!("{field}: not an address (host:port)")))?;
    TcpListener::bind(addr)
        .await
        .map_err(|error| serve_error("a listener", &error))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, Error> {
    listener
        .local_addr()
        .map_err(|error| serve_error("a listener's address", &error))
}

/// The server's mutual-TLS identity (a service is never served without).
fn tls_identity(config: &ServeConfig) -> Result<TlsIdentity, Error> {
    let tls = config.file.tls.as_ref().ok_or_else(|| {
        config.invalid("no tls: the service is served over mutual TLS only".to_owned())
    })?;
    Ok(TlsIdentity {
        server_chain_pem: files::read_capped(
            &config.resolve(&tls.server_cert),
            "server certificate",
            MAX_PEM_LEN,
        )?,
        server_key_pem: Zeroizing::new(files::read_capped(
            &config.resolve(&tls.server_key),
            "server key",
            MAX_PEM_LEN,
        )?),
        client_ca_pem: files::read_capped(
            &config.resolve(&tls.client_ca),
            "client CA certificate",
            MAX_PEM_LEN,
        )?,
    })
}

fn node_version(
    config: &ServeConfig,
    key_id: &str,
    node_id: &str,
    version: u32,
) -> Result<NodeVersion, Error> {
    Ok(NodeVersion {
        key_id: KeyId::new(key_id)
            .map_err(|_| config.invalid(format!("{key_id:?} is not a valid key id")))?,
        node_id: NodeId::new(node_id)
            .map_err(|_| config.invalid(format!("{node_id:?} is not a valid node id")))?,
        version: KeyVersion::new(version),
    })
}

/// A keystore codec under the KEK in `kek`'s file: 64 hex digits, readable
/// by its owner only.
fn keystore_codec(
    config: &ServeConfig,
    kek: &KekFile,
) -> Result<KekKeystoreCodec<InMemoryKek>, Error> {
    let path = config.resolve(&kek.file);
    owner_only(config, &path)?;
    let text = Zeroizing::new(files::read_capped(
        &path,
        "keystore KEK file",
        MAX_KEK_FILE_LEN,
    )?);
    let digits = text.trim_ascii();
    let mut key = Zeroizing::new([0u8; 32]);
    // Decoded in place into a wiped buffer; the error names the file only.
    hex::decode_to_slice(digits, key.as_mut_slice()).map_err(|_| {
        config.invalid(format!(
            "{}: a keystore KEK file holds 64 hex digits",
            path.display()
        ))
    })?;
    let id = KekId::new(kek.id.as_str())
        .map_err(|_| config.invalid(format!("{:?} is not a valid KEK id", kek.id)))?;
    Ok(KekKeystoreCodec::new(InMemoryKek::from_bytes(id, &key)))
}

/// Refuses a secret file others can read.
fn owner_only(config: &ServeConfig, path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let metadata = std::fs::metadata(path).map_err(|source| Error::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(config.invalid(format!(
                "{}: a KEK file must be readable by its owner only (mode 0600)",
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = (config, path);
    Ok(())
}

/// One configured node: its keystore codec, and a channel to each other
/// party's sidecar (connected on first use).
struct NodeTarget {
    codec: Arc<KekKeystoreCodec<InMemoryKek>>,
    peers: Vec<(Vec<u8>, Channel)>,
}

/// The nodes of the configuration, as the gRPC service asks for them.
struct ConfiguredTargets {
    runtime: tokio::runtime::Handle,
    nodes: BTreeMap<(KeyId, NodeId), NodeTarget>,
}

impl ConfiguredTargets {
    /// Reads every node's KEK and prepares its peers' channels (they
    /// connect when a recovery first self-tests).
    fn load(config: &ServeConfig) -> Result<Self, Error> {
        let mut nodes = BTreeMap::new();
        let peer_tls = match &config.file.peer_tls {
            Some(peer_tls) => Some(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(files::read_capped(
                        &config.resolve(&peer_tls.ca),
                        "peers' CA certificate",
                        MAX_PEM_LEN,
                    )?))
                    .identity(Identity::from_pem(
                        files::read_capped(
                            &config.resolve(&peer_tls.cert),
                            "peer client certificate",
                            MAX_PEM_LEN,
                        )?,
                        Zeroizing::new(files::read_capped(
                            &config.resolve(&peer_tls.key),
                            "peer client key",
                            MAX_PEM_LEN,
                        )?)
                        .as_slice(),
                    )),
            ),
            None => None,
        };
        for node in &config.file.nodes {
            let version = node_version(config, &node.key_id, &node.node_id, 1)?;
            let codec = Arc::new(keystore_codec(config, &node.keystore_kek)?);
            let mut peers = Vec::with_capacity(node.peers.len());
            for peer in &node.peers {
                let tls = peer_tls.clone().ok_or_else(|| {
                    config.invalid("nodes: peers need peer_tls (the client certificate)".to_owned())
                })?;
                let party = hex::decode(&peer.party_id)
                    .map_err(|_| config.invalid("peers: party_id is not hex".to_owned()))?;
                let tls_name = peer
                    .tls_name
                    .clone()
                    .unwrap_or_else(|| url_host(&peer.url).to_owned());
                let channel = Endpoint::from_shared(peer.url.clone())
                    .and_then(|endpoint| {
                        endpoint
                            .connect_timeout(PEER_CONNECT_TIMEOUT)
                            .timeout(PEER_CALL_TIMEOUT)
                            .tls_config(tls.domain_name(tls_name))
                    })
                    .map_err(|error| config.invalid(format!("peers: {}: {error}", peer.url)))?
                    .connect_lazy();
                peers.push((party, channel));
            }
            if nodes
                .insert(
                    (version.key_id, version.node_id),
                    NodeTarget { codec, peers },
                )
                .is_some()
            {
                return Err(
                    config.invalid(format!("nodes: {}/{} twice", node.key_id, node.node_id))
                );
            }
        }
        Ok(Self {
            runtime: tokio::runtime::Handle::current(),
            nodes,
        })
    }

    fn names(&self) -> Vec<String> {
        self.nodes
            .keys()
            .map(|(key, node)| format!("{}/{}", key.as_str(), node.as_str()))
            .collect()
    }

    fn node(&self, version: &NodeVersion) -> Result<&NodeTarget, shardkeep_grpc::Error> {
        self.nodes
            .get(&(version.key_id.clone(), version.node_id.clone()))
            .ok_or_else(|| shardkeep_grpc::Error::NoRecoveryTarget(version.clone()))
    }
}

impl RecoveryTargets for ConfiguredTargets {
    fn codec(
        &self,
        version: &NodeVersion,
    ) -> Result<Arc<dyn KeystoreCodec + Send + Sync>, shardkeep_grpc::Error> {
        Ok(self.node(version)?.codec.clone())
    }

    fn peers(
        &self,
        version: &NodeVersion,
    ) -> Result<Box<dyn SelfTestPeers + Send>, shardkeep_grpc::Error> {
        let clients = self.node(version)?.peers.iter().map(|(party, channel)| {
            (
                party.clone(),
                BackupServiceClient::new(channel.clone())
                    .max_decoding_message_size(MAX_MESSAGE_SIZE)
                    .max_encoding_message_size(MAX_MESSAGE_SIZE),
            )
        });
        Ok(Box::new(RemotePeers::new(GrpcPeerTransport::new(
            self.runtime.clone(),
            clients,
        ))))
    }
}
