//! The server's side of mutual TLS.

use core::fmt;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// What the server presents and whom it lets connect: its certificate
/// chain and key, and the CA that issues client certificates. A client
/// without a certificate of that CA fails the handshake; a certificate of
/// that CA still names nobody until its fingerprint is registered to a
/// person (the CA says who may connect, the registry who is calling).
pub struct TlsIdentity {
    /// The server's certificate chain, PEM.
    pub server_chain_pem: Vec<u8>,
    /// The server's private key, PEM. Secret: never logged (see `Debug`).
    pub server_key_pem: zeroize::Zeroizing<Vec<u8>>,
    /// The CA certificates client certificates must chain to, PEM.
    pub client_ca_pem: Vec<u8>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// The tonic TLS configuration (rustls on ring): the server's identity,
    /// client certificates required and verified against the client CA.
    #[must_use]
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(
                &self.server_chain_pem,
                self.server_key_pem.as_slice(),
            ))
            .client_ca_root(Certificate::from_pem(&self.client_ca_pem))
            .client_auth_optional(false)
    }
}
