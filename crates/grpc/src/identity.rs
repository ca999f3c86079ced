//! Who is calling: the client certificate's SHA-256 fingerprint, mapped
//! to a registered person on every request.

use core::fmt;

use sha2::{Digest, Sha256};
use shardkeep_storage::{PersonState, RegistryStore, Role, RoleSet, Storage, Transaction};
use shardkeep_types::ActorId;

use crate::error::Error;

/// The SHA-256 of a certificate's DER encoding: what the registry records
/// as a person's TLS fingerprint. Public (a certificate is).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertificateFingerprint(pub [u8; 32]);

impl CertificateFingerprint {
    /// The fingerprint of the DER-encoded certificate `der`.
    #[must_use]
    pub fn of_der(der: &[u8]) -> Self {
        // The plain SHA-256 of the DER, without a domain tag: this is the
        // fingerprint every TLS tool shows (`openssl x509 -fingerprint
        // -sha256`), which is what a person registers.
        Self(Sha256::digest(der).into())
    }
}

impl fmt::Debug for CertificateFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateFingerprint({})", hex::encode(self.0))
    }
}

impl fmt::Display for CertificateFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The caller of one request: the active person whose current keys carry
/// the client certificate's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The person.
    pub actor: ActorId,
    /// The certificate they called with.
    pub fingerprint: CertificateFingerprint,
    /// Their roles, as registered when the request came in.
    pub roles: RoleSet,
}

impl Caller {
    /// Refuses a caller who holds none of `roles` (`needs` names them).
    ///
    /// # Errors
    /// [`Error::MissingRole`].
    pub(crate) fn require_any(&self, roles: &[Role], needs: &'static str) -> Result<(), Error> {
        if roles.iter().any(|role| self.roles.contains(*role)) {
            Ok(())
        } else {
            Err(Error::MissingRole {
                person: self.actor.clone(),
                needs,
            })
        }
    }
}

/// The fingerprint of the leaf of `chain` (the client's own certificate).
///
/// # Errors
/// [`Error::NoClientCertificate`] when there is none.
pub(crate) fn leaf_fingerprint<C: AsRef<[u8]>>(
    chain: Option<&[C]>,
) -> Result<CertificateFingerprint, Error> {
    let leaf = chain
        .and_then(<[C]>::first)
        .ok_or(Error::NoClientCertificate)?;
    Ok(CertificateFingerprint::of_der(leaf.as_ref()))
}

/// The active person `fingerprint` names, read now from `storage` (never
/// cached: a revocation or a key rotation takes effect at the next
/// request, also on a connection already open). The procedure's operation
/// then authorizes that person again in its own transaction, with their
/// roles.
///
/// # Errors
/// [`Error::UnknownCertificate`], [`Error::PersonRevoked`],
/// [`Error::Storage`].
pub(crate) async fn resolve<S: Storage>(
    storage: &S,
    fingerprint: CertificateFingerprint,
) -> Result<Caller, Error> {
    let mut tx = storage.begin_read_only().await?;
    let found = tx.person_by_tls_fingerprint(&fingerprint.0).await;
    // A read-only transaction: nothing to keep; a failed rollback changes
    // nothing the lookup returned.
    let _ = tx.rollback().await;
    let person = found?.ok_or_else(|| Error::UnknownCertificate {
        fingerprint: fingerprint.to_string(),
    })?;
    if !matches!(person.state, PersonState::Active) {
        return Err(Error::PersonRevoked(person.id));
    }
    Ok(Caller {
        actor: person.id,
        fingerprint,
        roles: person.roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_chain_or_an_empty_chain_is_no_certificate() {
        assert!(matches!(
            leaf_fingerprint::<Vec<u8>>(None),
            Err(Error::NoClientCertificate)
        ));
        assert!(matches!(
            leaf_fingerprint::<Vec<u8>>(Some(&[])),
            Err(Error::NoClientCertificate)
        ));
    }

    #[test]
    fn the_leaf_is_fingerprinted_not_the_issuer() {
        let chain = vec![b"leaf".to_vec(), b"issuer".to_vec()];
        let fingerprint = leaf_fingerprint(Some(&chain)).unwrap();
        assert_eq!(fingerprint.0, <[u8; 32]>::from(Sha256::digest(b"leaf")));
    }
}
