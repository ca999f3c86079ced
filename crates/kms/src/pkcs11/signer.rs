//! ed25519 signing keys generated and kept inside the token (`CKM_EDDSA`).

use core::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use shardkeep_envelope::{CustodyError, Signer, SignerId};

use super::{Pkcs11Token, TokenInner, is_missing_object, lock, p11};
use crate::error::Error;

/// Prefix of signer labels; the signer id follows.
const LABEL_PREFIX: &str = "shardkeep/signer/v1/";
/// Domain tag of the signer objects' `CKA_ID`.
const SIGNER_ID_TAG: &[u8] = b"shardkeep/kms-signer-id/v1";
/// Domain tag of the message signed once on open to prove that the public
/// key read from the token matches its private key. No shardkeep message
/// begins with this tag, so the signature is useless for anything else.
const SELF_TEST_TAG: &[u8] = b"shardkeep/kms-signer-self-test/v1";
/// `CKA_EC_PARAMS` for ed25519: the DER OID 1.3.101.112 (RFC 8410).
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// `CKA_EC_PARAMS` for ed25519 in the `PrintableString` form some tokens use.
const ED25519_CURVE_NAME: &[u8] = b"\x13\x0cedwards25519";

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

fn key_template(class: ObjectClass, label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(class),
        Attribute::KeyType(KeyType::EC_EDWARDS),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
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
    /// sensitive and not extractable) labelled for `id`.
    ///
    /// # Errors
    /// [`Error::SignerExists`], [`Error::MechanismUnsupported`], or
    /// [`Error::Pkcs11`].
    pub fn generate_signer(&self, id: SignerId) -> Result<Pkcs11Signer, Error> {
        self.require_eddsa()?;
        let label = signer_label(&id);
        let label_only = [Attribute::Label(label.as_bytes().to_vec())];
        {
            let _serialised = lock(&self.inner.create);
            if !self.inner.find(&label_only)?.is_empty() {
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
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(object_id),
            ];
            let (public, private) = self
                .inner
                .with_session(|s| {
                    s.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
                })
                .map_err(p11("C_GenerateKeyPair"))?;
            // Another process generated the same signer concurrently:
            // withdraw ours rather than leave two keys under one name.
            if self.inner.find(&label_only)?.len() != 2 {
                self.inner.destroy(public)?;
                self.inner.destroy(private)?;
                return Err(Error::SignerExists(id));
            }
        }
        self.open_signer(&id)
    }

    /// Opens the ed25519 signer labelled for `id`: checks that its private
    /// key cannot leave the token, reads its public key from `CKA_EC_POINT`,
    /// and signs a self-test message to prove that the two belong together.
    ///
    /// # Errors
    /// [`Error::SignerNotFound`], [`Error::DuplicateObjects`],
    /// [`Error::UnsafeKeyObject`], [`Error::InvalidPublicKey`],
    /// [`Error::TokenSignatureInvalid`], or [`Error::Pkcs11`].
    pub fn open_signer(&self, id: &SignerId) -> Result<Pkcs11Signer, Error> {
        self.require_eddsa()?;
        let label = signer_label(id);
        let not_found = || Error::SignerNotFound(id.clone());
        let private = find_private_key(&self.inner, &label)?.ok_or_else(not_found)?;
        let public = self
            .inner
            .find_unique(&key_template(ObjectClass::PUBLIC_KEY, &label), &label)?
            .ok_or_else(not_found)?;
        let verifying_key = read_public_key(&self.inner, public)?;
        let signer = Pkcs11Signer {
            token: Arc::clone(&self.inner),
            id: id.clone(),
            label,
            private: Mutex::new(private),
            verifying_key,
        };
        let mut probe = Vec::with_capacity(SELF_TEST_TAG.len() + 65);
        probe.extend_from_slice(SELF_TEST_TAG);
        id.encode_prefixed(&mut probe);
        signer.sign_checked(&probe)?;
        Ok(signer)
    }
}

/// The private key labelled `label`, refused if it could leave the token.
fn find_private_key(token: &TokenInner, label: &str) -> Result<Option<ObjectHandle>, Error> {
    let Some(private) = token.find_unique(&key_template(ObjectClass::PRIVATE_KEY, label), label)?
    else {
        return Ok(None);
    };
    let flags = token
        .bool_attributes(
            private,
            &[AttributeType::Extractable, AttributeType::Sensitive],
        )
        .map_err(p11("C_GetAttributeValue"))?;
    if flags != [Some(false), Some(true)] {
        return Err(Error::UnsafeKeyObject {
            label: label.to_owned(),
            reason: "the private key is extractable or not sensitive",
        });
    }
    Ok(Some(private))
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
    /// Re-resolved by label when the token invalidates it (handles of
    /// private objects die with a logout on SoftHSM2).
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
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let sign_with = |private: ObjectHandle| {
            self.token
                .with_session(|s| s.sign(&mechanism, private, message))
        };
        let not_found = || Error::SignerNotFound(self.id.clone());
        let private = *lock(&self.private);
        let bytes = match sign_with(private) {
            Err(e) if is_missing_object(&e) => {
                let private = find_private_key(&self.token, &self.label)?.ok_or_else(not_found)?;
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
