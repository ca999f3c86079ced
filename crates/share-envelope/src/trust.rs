//! Who may sign envelopes, and the strict ed25519 signing and verification
//! every signed format of this crate goes through.

use std::collections::BTreeMap;

use ed25519_dalek::{SIGNATURE_LENGTH, Signature, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::Error;
use shardkeep_types::Signer;
use shardkeep_types::SignerId;

/// The envelope signers a caller trusts: [`SignerId`] -> ed25519 verifying
/// key. Passed to [`decode_verify`](crate::VerifiedEnvelope::decode_verify);
/// storing and distributing it is the caller's job.
///
/// Weak keys (small order), keys with a torsion component and non-canonical
/// encodings are refused when added, so no signature can verify under a key
/// that an honest signer could not have produced.
///
/// One id, one key: neither an id nor a key is added twice. (The envelope
/// also signs its signer id since format v2, so a relabelled envelope does
/// not verify either way.)
#[derive(Debug, Clone, Default)]
pub struct TrustedSigners {
    keys: BTreeMap<SignerId, VerifyingKey>,
}

impl TrustedSigners {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` for envelopes signed as `id`.
    ///
    /// # Errors
    /// [`Error::WeakKey`] for an unacceptable key, [`Error::DuplicateSigner`]
    /// when `id` is already trusted, [`Error::DuplicateSignerKey`] when
    /// `key` is already trusted under another id.
    pub fn add(&mut self, id: SignerId, key: VerifyingKey) -> Result<(), Error> {
        admit_key(id.as_str(), &key)?;
        if self.keys.contains_key(&id) {
            return Err(Error::DuplicateSigner(id));
        }
        // Public keys: a plain comparison.
        if self.keys.values().any(|trusted| *trusted == key) {
            return Err(Error::DuplicateSignerKey(id));
        }
        self.keys.insert(id, key);
        Ok(())
    }

    /// Trusts a [`Signer`]'s own id and verifying key.
    ///
    /// # Errors
    /// As [`TrustedSigners::add`].
    pub fn add_signer(&mut self, signer: &dyn Signer) -> Result<(), Error> {
        self.add(signer.signer_id().clone(), signer.verifying_key())
    }

    /// The key trusted for `id`.
    #[must_use]
    pub fn get(&self, id: &SignerId) -> Option<&VerifyingKey> {
        self.keys.get(id)
    }

    /// Number of trusted signers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no signer is trusted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Refuses keys no honest signer produces: small order (`is_weak`), a
/// torsion component, or a non-canonical encoding. `verify_strict` already
/// refuses small-order keys; the other two checks close the mixed-order and
/// alternative-encoding cases, so each key has one accepted encoding.
///
/// Variable time: verifying keys are public.
pub(crate) fn admit_key(owner: &str, key: &VerifyingKey) -> Result<(), Error> {
    let point = key.to_edwards();
    if key.is_weak() || !point.is_torsion_free() || point.compress().as_bytes() != key.as_bytes() {
        return Err(Error::WeakKey {
            what: owner.to_owned(),
        });
    }
    Ok(())
}

/// `tag || body` in a buffer wiped on drop (a plain envelope's body holds
/// the share value).
fn tagged(tag: &[u8], body: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut message = Zeroizing::new(Vec::with_capacity(tag.len() + body.len()));
    message.extend_from_slice(tag);
    message.extend_from_slice(body);
    message
}

/// Signs `tag || body`.
pub(crate) fn sign_tagged(
    signer: &dyn Signer,
    tag: &[u8],
    body: &[u8],
) -> Result<[u8; SIGNATURE_LENGTH], Error> {
    Ok(signer.sign(&tagged(tag, body))?.to_bytes())
}

/// Verifies a signature over `tag || body` with `verify_strict`.
pub(crate) fn verify_tagged(
    key: &VerifyingKey,
    tag: &[u8],
    body: &[u8],
    signature: &[u8; SIGNATURE_LENGTH],
) -> Result<(), Error> {
    verify_strict(key, &tagged(tag, body), signature)
}

/// The signature primitive as this crate uses it: ed25519-dalek's
/// `verify_strict` (RFC 8032 with canonical `S`, refusing small-order `A`
/// and `R` and non-canonical `R`).
pub(crate) fn verify_strict(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; SIGNATURE_LENGTH],
) -> Result<(), Error> {
    let signature = Signature::from_bytes(signature);
    key.verify_strict(message, &signature)
        .map_err(|_| Error::BadSignature)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;
    use shardkeep_types::InMemorySigner;

    #[test]
    fn refuses_weak_torsion_and_duplicate_keys() {
        let mut set = TrustedSigners::new();
        let id = SignerId::new("server-1").unwrap();
        // The identity point: small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert!(matches!(
            set.add(id.clone(), weak),
            Err(Error::WeakKey { .. })
        ));
        // A good key plus an order-8 point: mixed order, not weak per dalek.
        let good = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let torsion = torsion_point();
        let mixed =
            VerifyingKey::from_bytes((good.to_edwards() + torsion).compress().as_bytes()).unwrap();
        assert!(!mixed.is_weak());
        assert!(matches!(
            set.add(id.clone(), mixed),
            Err(Error::WeakKey { .. })
        ));
        set.add(id.clone(), good).unwrap();
        assert_eq!(set.add(id.clone(), good), Err(Error::DuplicateSigner(id)));
        assert_eq!(set.len(), 1);
    }

    /// Finding: one key under two ids made one envelope verify under both.
    #[test]
    fn one_key_is_trusted_under_one_id_only() {
        let mut set = TrustedSigners::new();
        let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
        set.add(SignerId::new("server-1").unwrap(), key).unwrap();
        let second = SignerId::new("drill-1").unwrap();
        assert_eq!(
            set.add(second.clone(), key),
            Err(Error::DuplicateSignerKey(second))
        );
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn signs_and_verifies_with_the_tag() {
        let signer = InMemorySigner::generate(
            SignerId::new("s").unwrap(),
            &mut ChaCha20Rng::from_seed([1; 32]),
        );
        let sig = sign_tagged(&signer, b"tag/v1", b"body").unwrap();
        let key = signer.verifying_key();
        verify_tagged(&key, b"tag/v1", b"body", &sig).unwrap();
        assert_eq!(
            verify_tagged(&key, b"tag/v2", b"body", &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(verify_strict(&key, b"body", &sig), Err(Error::BadSignature));
    }

    /// An order-8 point (from the CCTV list of low-order encodings).
    fn torsion_point() -> shardkeep_sss_core::curves::curve25519_dalek::EdwardsPoint {
        let bytes: [u8; 32] =
            hex::decode("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
                .unwrap()
                .try_into()
                .unwrap();
        shardkeep_sss_core::curves::curve25519_dalek::edwards::CompressedEdwardsY(bytes)
            .decompress()
            .unwrap()
    }
}
