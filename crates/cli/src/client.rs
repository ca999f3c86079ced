//! The connection to the service: gRPC over mutual TLS, the person's
//! client certificate presented, the server's certificate checked against
//! the configured CA.

use std::time::Duration;

use shardkeep_grpc::MAX_MESSAGE_SIZE;
use shardkeep_grpc::proto::backup_service_client::BackupServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use zeroize::Zeroizing;

use crate::config::Server;
use crate::error::Error;
use crate::files;

/// Largest PEM file read (a certificate chain or a key).
const MAX_PEM_LEN: usize = 256 * 1024;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one call may take: a recovery at threshold self-tests with the
/// other parties, which takes a while.
const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The generated client, on a TLS channel.
pub(crate) type Client = BackupServiceClient<Channel>;

/// Connects to `server`.
///
/// # Errors
/// [`Error::ReadFile`] for the TLS files, [`Error::Unreachable`] when the
/// connection or the handshake fails.
pub(crate) async fn connect(server: &Server) -> Result<Client, Error> {
    let ca = files::read_capped(&server.ca, "CA certificate", MAX_PEM_LEN)?;
    let cert = files::read_capped(&server.cert, "client certificate", MAX_PEM_LEN)?;
    let key = Zeroizing::new(files::read_capped(&server.key, "client key", MAX_PEM_LEN)?);
    let unreachable = |detail: String| Error::Unreachable {
        url: server.url.clone(),
        detail,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(cert, key.as_slice()))
        .domain_name(server.tls_name.clone());
    let channel = Channel::from_shared(server.url.clone())
        .map_err(|error| unreachable(error.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .tls_config(tls)
        .map_err(|error| unreachable(error.to_string()))?
        .connect()
        .await
        .map_err(|error| unreachable(transport_detail(&error)))?;
    Ok(BackupServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE))
}

/// The transport error and its causes, one line.
fn transport_detail(error: &tonic::transport::Error) -> String {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}
