//! ed25519 signing keys generated and kept inside the token (`CKM_EDDSA`).

use core::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use shardkeep_types::{CustodyError, Signer, SignerId};

use super::{KEY_REQUIREMENTS, Pkcs11Token, Requirement, TokenInner, is_missing_object, lock, p11};
use crate::error::Error;

/// Prefix of signer labels; the signer id follows.
const LABEL_PREFIX: &str = "shardkeep/signer/v1/";
/// Domain tag of the signer objects' `CKA_ID`.
const SIGNER_ID_TAG: &[u8] = b"shardkeep/kms-signer-id/v1";
/// Domain tag of the message signed to prove that a private key belongs to
/// the expected public key. No shardkeep message begins with this tag, so
/// the signature is useless for anything else.
const SELF_TEST_TAG: &[u8] = b"shardkeep/kms-signer-self-test/v1";
/// `CKA_EC_PARAMS` for ed25519: the DER OID 1.3.101.112 (RFC 8410).
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// `CKA_EC_PARAMS` for ed25519 in the `PrintableString` form some tokens use.
const ED25519_CURVE_NAME: &[u8] = b"\x13\x0cedwards25519";

/// What a signing key must be, besides [`KEY_REQUIREMENTS`]: able to sign
/// and nothing else.
const SIGNER_REQUIREMENTS: [Requirement; 4] = [
    Requirement::new(AttributeType::Sign, true, "CKA_SIGN is not true"),
    Requirement::new(AttributeType::Decrypt, false, "CKA_DECRYPT is not false"),
    Requirement::new(AttributeType::Unwrap, false, "CKA_UNWRAP is not false"),
    Requirement::new(AttributeType::Derive, false, "CKA_DERIVE is not false"),
];

fn signer_label(id: &SignerId) -> String {
    format!("{LABEL_PREFIX}{id}")
}

fn signer_object_id(id: &SignerId) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(65);
    id.encode_prefixed(&mut encoded);
    Sha256::new()
        .chain_update(SIGNER_ID_TAG)
        .chain_update(&encoded)
        .finalize()
        .to_vec()
}

/// What may be a signer's private key: private token ed25519 keys with the
/// signer's `CKA_ID` (public objects are never considered).
fn private_key_candidates(id: &SignerId) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC_EDWARDS),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Id(signer_object_id(id)),
    ]
}

/// The candidates that meet every requirement: keys this provider could
/// have generated. Which one is the signer's is decided by its public key.
fn genuine_private_keys(token: &TokenInner, id: &SignerId) -> Result<Vec<ObjectHandle>, Error> {
    let mut genuine = Vec::new();
    for candidate in token.find(&private_key_candidates(id))? {
        let unmet = token
            .unmet(candidate, &KEY_REQUIREMENTS)
            .and_then(|unmet| match unmet {
                Some(reason) => Ok(Some(reason)),
                None => token.unmet(candidate, &SIGNER_REQUIREMENTS),
            });
        match unmet {
            Ok(None) => genuine.push(candidate),
            Ok(Some(_)) => {}
            Err(e) if is_missing_object(&e) => {}
            Err(e) => return Err(p11("C_GetAttributeValue")(e)),
        }
    }
    Ok(genuine)
}

/// The message a signer's key signs to prove it belongs to a public key.
fn self_test_message(id: &SignerId) -> Vec<u8> {
    let mut probe = Vec::with_capacity(SELF_TEST_TAG.len() + 65);
    probe.extend_from_slice(SELF_TEST_TAG);
    id.encode_prefixed(&mut probe);
    probe
}

fn eddsa() -> Mechanism<'static> {
    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
}

/// The private key of signer `id` whose signatures verify under
/// `expected`: the pinned key. Keys under the signer's name that fail the
/// requirements or sign for another public key are ignored.
fn find_pinned_private_key(
    token: &TokenInner,
    id: &SignerId,
    expected: &VerifyingKey,
) -> Result<ObjectHandle, Error> {
    let genuine = genuine_private_keys(token, id)?;
    if genuine.is_empty() {
        return Err(Error::SignerNotFound(id.clone()));
    }
    let probe = self_test_message(id);
    for candidate in genuine {
        match token.with_session(|s| s.sign(&eddsa(), candidate, &probe)) {
            Ok(bytes) => {
                let verifies = Signature::from_slice(&bytes)
                    .is_ok_and(|signature| expected.verify_strict(&probe, &signature).is_ok());
                if verifies {
                    return Ok(candidate);
                }
            }
            Err(e) if is_missing_object(&e) => {}
            Err(e) => return Err(p11("C_Sign")(e)),
        }
    }
    Err(Error::SignerPinMismatch(id.clone()))
}

/// The public key from `CKA_EC_POINT`: PKCS#11 specifies a DER OCTET
/// STRING (`04 20 || key`), but some tokens return the 32 raw bytes.
pub(crate) fn parse_ec_point(point: &[u8]) -> Result<VerifyingKey, Error> {
    let raw: &[u8] = match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        raw if raw.len() == 32 => raw,
        _ => return Err(Error::InvalidPublicKey),
    };
    let raw: &[u8; 32] = raw.try_into().map_err(|_| Error::InvalidPublicKey)?;
    VerifyingKey::from_bytes(raw).map_err(|_| Error::InvalidPublicKey)
}

impl Pkcs11Token {
    fn require_eddsa(&self) -> Result<(), Error> {
        self.inner.require_mechanism(
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            "CKM_EC_EDWARDS_KEY_PAIR_GEN",
            cryptoki::mechanism::MechanismInfo::generate_key_pair,
        )?;
        self.inner.require_mechanism(
            MechanismType::EDDSA,
            "CKM_EDDSA",
            cryptoki::mechanism::MechanismInfo::sign,
        )
    }

    /// Generates an ed25519 key pair inside the token (the private key
    /// sensitive, not extractable, not copyable, sign-only) for `id`. The
    /// returned signer's [`verifying_key`](Signer::verifying_key) is its
    /// pin: record it, and pass it to [`open_signer`](Self::open_signer).
    ///
    /// # Errors
    /// [`Error::SignerExists`] when the token already holds a private key
    /// that could be the signer's (objects planted without the PIN, or
    /// otherwise not meeting the requirements, do not count),
    /// [`Error::UnsafeKeyObject`] when the token ignored part of the
    /// template, [`Error::MechanismUnsupported`], or [`Error::Pkcs11`].
    pub fn generate_signer(&self, id: SignerId) -> Result<Pkcs11Signer, Error> {
        self.require_eddsa()?;
        let label = signer_label(&id);
        let _serialised = lock(&self.inner.create);
        if !genuine_private_keys(&self.inner, &id)?.is_empty() {
            return Err(Error::SignerExists(id));
        }
        let object_id = signer_object_id(&id);
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Derive(false),
            Attribute::Modifiable(false),
            Attribute::EcParams(ED25519_OID.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(object_id.clone()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Modifiable(false),
            Attribute::Copyable(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(object_id),
        ];
        let (public, private) = self
            .inner
            .with_session(|s| {
                s.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
            })
            .map_err(p11("C_GenerateKeyPair"))?;
        let withdraw = |error: Error| {
            // Nobody can have pinned the new pair yet; remove it. The first
            // error is the one worth reporting.
            drop(self.inner.destroy(public));
            drop(self.inner.destroy(private));
            error
        };
        let genuine = genuine_private_keys(&self.inner, &id).map_err(withdraw)?;
        if !genuine.contains(&private) {
            return Err(withdraw(Error::UnsafeKeyObject {
                label,
                reason: "the token generated a signing key without the attributes asked for",
            }));
        }
        // Another process generated the same signer concurrently: withdraw
        // ours rather than leave two keys under one name.
        if genuine.len() != 1 {
            return Err(withdraw(Error::SignerExists(id)));
        }
        let verifying_key = read_public_key(&self.inner, public).map_err(withdraw)?;
        let signer = Pkcs11Signer {
            token: Arc::clone(&self.inner),
            id,
            label,
            private: Mutex::new(private),
            verifying_key,
        };
        // Proves that the public key read belongs to the private key.
        signer
            .sign_checked(&self_test_message(&signer.id))
            .map_err(withdraw)?;
        Ok(signer)
    }

    /// Opens the ed25519 signer `id` by its pinned public key (as returned
    /// by [`generate_signer`](Self::generate_signer)): among the private
    /// token keys with the signer's `CKA_ID` that were generated in the
    /// token and can never leave it, the one whose signature of a self-test
    /// message verifies under `expected`. A key planted under the signer's
    /// label or id, with another public key, is never used.
    ///
    /// # Errors
    /// [`Error::SignerNotFound`] when no such key exists,
    /// [`Error::SignerPinMismatch`] when some do but none signs for
    /// `expected`, [`Error::MechanismUnsupported`], or [`Error::Pkcs11`].
    pub fn open_signer(
        &self,
        id: &SignerId,
        expected: &VerifyingKey,
    ) -> Result<Pkcs11Signer, Error> {
        self.require_eddsa()?;
        let private = find_pinned_private_key(&self.inner, id, expected)?;
        Ok(Pkcs11Signer {
            token: Arc::clone(&self.inner),
            id: id.clone(),
            label: signer_label(id),
            private: Mutex::new(private),
            verifying_key: *expected,
        })
    }
}

fn read_public_key(token: &TokenInner, public: ObjectHandle) -> Result<VerifyingKey, Error> {
    let attributes = token
        .with_session(|s| {
            s.get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
        })
        .map_err(p11("C_GetAttributeValue"))?;
    let mut params = None;
    let mut point = None;
    for attribute in attributes {
        match attribute {
            Attribute::EcParams(bytes) => params = Some(bytes),
            Attribute::EcPoint(bytes) => point = Some(bytes),
            _ => {}
        }
    }
    match params.as_deref() {
        Some(p) if p == ED25519_OID || p == ED25519_CURVE_NAME => {}
        _ => return Err(Error::InvalidPublicKey),
    }
    parse_ec_point(point.as_deref().ok_or(Error::InvalidPublicKey)?)
}

/// An ed25519 signer whose private key lives in a [`Pkcs11Token`].
///
/// Every signature is checked with `verify_strict` against the public key
/// before it is returned, so a faulty token cannot hand out a bad one.
pub struct Pkcs11Signer {
    token: Arc<TokenInner>,
    id: SignerId,
    label: String,
    /// Re-resolved by the pinned public key when the token invalidates it
    /// (handles of private objects die with a logout on SoftHSM2).
    private: Mutex<ObjectHandle>,
    verifying_key: VerifyingKey,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("verifying_key", &self.verifying_key)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Signer {
    /// The key objects' `CKA_LABEL`.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    fn sign_checked(&self, message: &[u8]) -> Result<Signature, Error> {
        let mechanism = eddsa();
        let sign_with = |private: ObjectHandle| {
            self.token
                .with_session(|s| s.sign(&mechanism, private, message))
        };
        let not_found = || Error::SignerNotFound(self.id.clone());
        let private = *lock(&self.private);
        let bytes = match sign_with(private) {
            Err(e) if is_missing_object(&e) => {
                let private = find_pinned_private_key(&self.token, &self.id, &self.verifying_key)
                    .map_err(|error| match error {
                    Error::SignerPinMismatch(_) => not_found(),
                    other => other,
                })?;
                *lock(&self.private) = private;
                sign_with(private)
            }
            other => other,
        }
        .map_err(|e| {
            if is_missing_object(&e) {
                not_found()
            } else {
                p11("C_Sign")(e)
            }
        })?;
        let signature = Signature::from_slice(&bytes).map_err(|_| Error::TokenSignatureInvalid)?;
        self.verifying_key
            .verify_strict(message, &signature)
            .map_err(|_| Error::TokenSignatureInvalid)?;
        Ok(signature)
    }
}

impl Signer for Pkcs11Signer {
    fn signer_id(&self) -> &SignerId {
        &self.id
    }

    fn verifying_key(&self) -> VerifyingKey {
        self.verifying_key
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, CustodyError> {
        Ok(self.sign_checked(message)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_accepts_der_and_raw_and_nothing_else() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key();
        let raw = key.to_bytes();
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(&raw);
        assert_eq!(parse_ec_point(&der).unwrap(), key);
        assert_eq!(parse_ec_point(&raw).unwrap(), key);
        for bad in [
            &der[..33],
            &[&der[..], &[0]].concat()[..],
            &[&[0x04, 0x21][..], &raw[..], &[0]].concat()[..],
            &[&[0x03, 0x20][..], &raw[..]].concat()[..],
            &raw[..31],
            &[][..],
        ] {
            assert!(matches!(parse_ec_point(bad), Err(Error::InvalidPublicKey)));
        }
    }

    #[test]
    fn labels_and_ids_are_distinct_per_signer() {
        let a = SignerId::new("audit-checkpoint").unwrap();
        let b = SignerId::new("envelope").unwrap();
        assert_eq!(signer_label(&a), "shardkeep/signer/v1/audit-checkpoint");
        assert_ne!(signer_object_id(&a), signer_object_id(&b));
    }
}
