//! Per-slot KEKs inside the token: AES-256 keys that never leave it, used
//! only to wrap and unwrap data keys with `CKM_AES_KEY_WRAP` (RFC 3394).

use core::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sha2::{Digest, Sha256};
use shardkeep_types::{
    CustodyError, DATA_KEY_LEN, DataKey, KekId, KeyEncryptionKey, ShareSlot, WrappedKey,
};
use zeroize::{Zeroize, Zeroizing};

use super::{KEY_REQUIREMENTS, Pkcs11Token, Requirement, TokenInner, is_missing_object, lock, p11};
use crate::error::Error;
use crate::provider::{
    DestroyOutcome, DestroyReport, FINGERPRINT_LEN, KekPin, ShredMethod, SlotKekProvider,
    fingerprint,
};
use crate::slot::{slot_digest, slot_kek_id};

/// Prefix of this provider's slot KEK ids.
const KEK_ID_PREFIX: &str = "p11-slot-";
/// Prefix of slot KEK labels; the slot follows as `key/node/vN/index`,
/// which is injective because names never contain `/`.
const LABEL_PREFIX: &str = "shardkeep/slot-kek/v1/";
/// RFC 3394 output for a 32-byte key: the key and an 8-byte integrity block.
const WRAPPED_LEN: usize = DATA_KEY_LEN + 8;
/// AES-256.
const KEK_LEN: u64 = 32;
/// Domain tag behind the fixed, public check key whose RFC 3394 wrap under
/// a KEK is that KEK's fingerprint check.
const CHECK_KEY_TAG: &[u8] = b"shardkeep/kek-check-key/v1";

/// What a slot KEK must be, besides [`KEY_REQUIREMENTS`]: destroyable (so a
/// hard delete cannot be refused), able to wrap and unwrap, and unable to
/// encrypt or decrypt (so it is no general-purpose cipher, and no check
/// value can be had from it but by wrapping).
const KEK_REQUIREMENTS: [Requirement; 5] = [
    Requirement::new(
        AttributeType::Destroyable,
        true,
        "CKA_DESTROYABLE is not true",
    ),
    Requirement::new(AttributeType::Wrap, true, "CKA_WRAP is not true"),
    Requirement::new(AttributeType::Unwrap, true, "CKA_UNWRAP is not true"),
    Requirement::new(AttributeType::Encrypt, false, "CKA_ENCRYPT is not false"),
    Requirement::new(AttributeType::Decrypt, false, "CKA_DECRYPT is not false"),
];

/// The `CKA_LABEL` of a slot's KEK. Spelled out here rather than through
/// `ShareSlot`'s `Display`, which may change. Informational only: keys are
/// found by `CKA_ID` and pin, never by label.
fn slot_label(slot: &ShareSlot) -> String {
    format!(
        "{LABEL_PREFIX}{}/{}/v{}/{}",
        slot.key_id.as_str(),
        slot.node_id.as_str(),
        slot.version.get(),
        slot.index.get()
    )
}

/// What may be a slot's KEK: private token AES keys with the slot's
/// `CKA_ID`. Public objects (which anyone can create without the PIN) are
/// never even considered.
fn candidates_template(slot: &ShareSlot) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Id(slot_digest(slot).to_vec()),
    ]
}

/// A slot KEK: a private token object that never leaves the token in
/// plaintext (sensitive, not extractable, not copyable) and can only wrap
/// and unwrap.
fn kek_template(label: &str, slot: &ShareSlot) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(KEK_LEN.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::Destroyable(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(slot_digest(slot).to_vec()),
    ]
}

/// A data key as a short-lived session object: readable (`CKA_SENSITIVE`
/// false, `CKA_EXTRACTABLE` true) because the envelope's AES-GCM-SIV runs in
/// this process, and destroyed right after use.
fn data_key_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

/// Attributes that may hold key bytes; wiped on drop.
struct WipedAttributes(Vec<Attribute>);

impl Drop for WipedAttributes {
    fn drop(&mut self) {
        for attribute in &mut self.0 {
            if let Attribute::Value(bytes) = attribute {
                bytes.zeroize();
            }
        }
    }
}

/// The fingerprint of the KEK object `kek`: a fixed, public check key
/// (`SHA-256("shardkeep/kek-check-key/v1")`) is imported as a session
/// object, wrapped under the KEK with `CKM_AES_KEY_WRAP` (deterministic:
/// RFC 3394 with its default IV) and destroyed; the 40-byte wrap is the
/// check hashed into the pin's fingerprint. Only wrapping is needed, so the
/// KEK never gets `CKA_ENCRYPT`; and only the hash leaves this function.
fn fingerprint_of(
    session: &Session,
    kek: ObjectHandle,
    kek_id: &KekId,
    slot: &ShareSlot,
) -> Result<[u8; FINGERPRINT_LEN], CkError> {
    let check_key: [u8; DATA_KEY_LEN] = Sha256::digest(CHECK_KEY_TAG).into();
    let mut template = data_key_template();
    template.push(Attribute::Value(check_key.to_vec()));
    let check = session.create_object(&template)?;
    let wrapped = session.wrap_key(&Mechanism::AesKeyWrap, kek, check);
    let destroyed = session.destroy_object(check);
    let wrapped = wrapped?;
    destroyed?;
    Ok(fingerprint(kek_id, slot, &wrapped))
}

/// The first requirement a slot KEK object does not meet.
fn unmet_kek_requirement(
    token: &TokenInner,
    object: ObjectHandle,
) -> Result<Option<&'static str>, CkError> {
    match token.unmet(object, &KEY_REQUIREMENTS)? {
        Some(reason) => Ok(Some(reason)),
        None => token.unmet(object, &KEK_REQUIREMENTS),
    }
}

/// What the token holds for a slot and a pin.
struct Search {
    /// Objects that are the pinned KEK: candidates (private, the slot's
    /// `CKA_ID`) that meet every requirement and whose fingerprint matches.
    /// One, normally; the key cannot be copied, but if it was, every copy
    /// is listed (and destroyed together).
    pinned: Vec<ObjectHandle>,
    /// Candidates that are not the pinned KEK.
    other_candidates: usize,
    /// Every token object under the slot's `CKA_ID` or label that is not
    /// the pinned KEK (candidates or not, public or private).
    look_alikes: usize,
}

/// Looks for the pinned KEK of `slot`, and counts what else carries the
/// slot's name.
fn search(token: &TokenInner, slot: &ShareSlot, pin: &KekPin) -> Result<Search, Error> {
    let candidates = token.find(&candidates_template(slot))?;
    let mut pinned = Vec::new();
    for &candidate in &candidates {
        let is_pinned = unmet_kek_requirement(token, candidate).and_then(|unmet| {
            if unmet.is_some() {
                return Ok(false);
            }
            let found = token.with_session(|s| fingerprint_of(s, candidate, &pin.kek_id, slot))?;
            Ok(pin.matches(&found))
        });
        match is_pinned {
            Ok(true) => pinned.push(candidate),
            Ok(false) => {}
            // Destroyed since it was found: neither pinned nor a look-alike.
            Err(e) if is_missing_object(&e) => {}
            Err(e) => return Err(p11("C_WrapKey")(e)),
        }
    }
    let mut others: Vec<ObjectHandle> = Vec::new();
    for name in [
        Attribute::Id(slot_digest(slot).to_vec()),
        Attribute::Label(slot_label(slot).into_bytes()),
    ] {
        for object in token.find(&[Attribute::Token(true), name])? {
            if !pinned.contains(&object) && !others.contains(&object) {
                others.push(object);
            }
        }
    }
    Ok(Search {
        other_candidates: candidates.len() - pinned.len(),
        pinned,
        look_alikes: others.len(),
    })
}

impl Pkcs11Token {
    /// The KEK id of `slot` in this provider (`p11-slot-` and 48 hex digits
    /// of a digest of the slot). Computed, never looked up.
    #[must_use]
    pub fn slot_kek_id(slot: &ShareSlot) -> KekId {
        slot_kek_id(KEK_ID_PREFIX, slot)
    }

    /// Generates a new KEK for `slot` inside the token and returns it;
    /// [`Pkcs11SlotKek::pin`] is what to record. Every call generates a new
    /// key (see [`SlotKekProvider::create_slot_kek`]); objects already under
    /// the slot's name are neither used nor touched.
    ///
    /// # Errors
    /// [`Error::UnsafeKeyObject`] when the token generated a key without the
    /// attributes asked for (it is destroyed again), or [`Error::Pkcs11`].
    pub fn create_slot_kek(&self, slot: &ShareSlot) -> Result<Pkcs11SlotKek, Error> {
        let label = slot_label(slot);
        let kek_id = Self::slot_kek_id(slot);
        let template = kek_template(&label, slot);
        let handle = self
            .inner
            .with_session(|s| s.generate_key(&Mechanism::AesKeyGen, &template))
            .map_err(p11("C_GenerateKey"))?;
        let checked = unmet_kek_requirement(&self.inner, handle)
            .map_err(p11("C_GetAttributeValue"))
            .and_then(|unmet| match unmet {
                Some(reason) => Err(Error::UnsafeKeyObject {
                    label: label.clone(),
                    reason,
                }),
                None => self
                    .inner
                    .with_session(|s| fingerprint_of(s, handle, &kek_id, slot))
                    .map_err(p11("C_WrapKey")),
            });
        let fingerprint = match checked {
            Ok(fingerprint) => fingerprint,
            Err(error) => {
                // Nobody can have pinned the new key yet; remove it. The
                // first error is the one worth reporting.
                drop(self.inner.destroy(handle));
                return Err(error);
            }
        };
        Ok(Pkcs11SlotKek {
            token: Arc::clone(&self.inner),
            pin: KekPin {
                kek_id,
                fingerprint,
            },
            slot: slot.clone(),
            label,
            handle: Mutex::new(handle),
        })
    }

    /// The pinned KEK of `slot`; opening a share never creates one. Only a
    /// private token AES key with the slot's `CKA_ID` that was generated in
    /// the token, is sensitive, non-extractable, not modifiable, not
    /// copyable, destroyable, wrap/unwrap-only and whose fingerprint matches
    /// the pin is accepted; anything else under the slot's name is ignored.
    ///
    /// # Errors
    /// [`Error::KekPinIdMismatch`] for a pin of another KEK id;
    /// [`Error::SlotKekNotFound`] when no private key has the slot's
    /// `CKA_ID`; [`Error::KekPinMismatch`] when some do but none is the
    /// pinned KEK; or [`Error::Pkcs11`].
    pub fn open_slot_kek(&self, slot: &ShareSlot, pin: &KekPin) -> Result<Pkcs11SlotKek, Error> {
        pin.check_id(slot, &Self::slot_kek_id(slot))?;
        let found = search(&self.inner, slot, pin)?;
        match found.pinned.first() {
            Some(&handle) => Ok(Pkcs11SlotKek {
                token: Arc::clone(&self.inner),
                pin: pin.clone(),
                slot: slot.clone(),
                label: slot_label(slot),
                handle: Mutex::new(handle),
            }),
            None if found.other_candidates > 0 => Err(Error::KekPinMismatch {
                slot: slot.clone(),
                kek_id: pin.kek_id.clone(),
            }),
            None => Err(Error::SlotKekNotFound {
                slot: slot.clone(),
                kek_id: pin.kek_id.clone(),
            }),
        }
    }

    /// Destroys the pinned KEK of `slot` inside the token, then searches
    /// again to confirm that it is gone. Every data key wrapped under it can
    /// no longer be unwrapped: crypto-shredding. Other objects under the
    /// slot's `CKA_ID` or label (planted, or left by an interrupted
    /// creation) are left alone, whether destroyable or not, and counted in
    /// the report. Idempotent.
    ///
    /// # Errors
    /// [`Error::KekPinIdMismatch`], [`Error::DestroyIncomplete`] when the
    /// pinned KEK is still found afterwards, or [`Error::Pkcs11`].
    pub fn destroy_slot_kek(&self, slot: &ShareSlot, pin: &KekPin) -> Result<DestroyReport, Error> {
        pin.check_id(slot, &Self::slot_kek_id(slot))?;
        let mut destroyed = false;
        for handle in search(&self.inner, slot, pin)?.pinned {
            destroyed |= self.inner.destroy(handle)?;
        }
        let after = search(&self.inner, slot, pin)?;
        if !after.pinned.is_empty() {
            return Err(Error::DestroyIncomplete {
                slot: slot.clone(),
                kek_id: pin.kek_id.clone(),
            });
        }
        Ok(DestroyReport {
            method: ShredMethod::HsmDestroy,
            outcome: if destroyed {
                DestroyOutcome::Destroyed
            } else {
                DestroyOutcome::AlreadyAbsent
            },
            look_alikes: after.look_alikes,
        })
    }
}

impl SlotKekProvider for Pkcs11Token {
    fn slot_kek_id(&self, slot: &ShareSlot) -> KekId {
        Self::slot_kek_id(slot)
    }

    fn create_slot_kek(
        &self,
        slot: &ShareSlot,
    ) -> Result<(Box<dyn KeyEncryptionKey>, KekPin), Error> {
        let kek = Pkcs11Token::create_slot_kek(self, slot)?;
        let pin = kek.pin().clone();
        Ok((Box::new(kek), pin))
    }

    fn open_slot_kek(
        &self,
        slot: &ShareSlot,
        pin: &KekPin,
    ) -> Result<Box<dyn KeyEncryptionKey>, Error> {
        Ok(Box::new(Pkcs11Token::open_slot_kek(self, slot, pin)?))
    }

    fn destroy_slot_kek(&self, slot: &ShareSlot, pin: &KekPin) -> Result<DestroyReport, Error> {
        Pkcs11Token::destroy_slot_kek(self, slot, pin)
    }
}

/// The pinned KEK of one share slot inside a [`Pkcs11Token`].
///
/// Wrapped data keys are plain RFC 3394 output (40 bytes). Once the KEK is
/// destroyed, by this or any other handle or process, wrap and unwrap fail
/// with [`CustodyError::KeyNotFound`]; a KEK created anew for the slot has
/// another pin and is never used by this handle.
pub struct Pkcs11SlotKek {
    token: Arc<TokenInner>,
    pin: KekPin,
    slot: ShareSlot,
    label: String,
    /// Re-resolved by pin when the token invalidates it (see `with_kek`).
    handle: Mutex<ObjectHandle>,
}

/// Why a call with the KEK failed.
enum KekCallError {
    /// The KEK is gone (destroyed).
    Missing,
    /// Looking the KEK up again failed.
    Lookup(Error),
    /// The call itself failed.
    Call(CkError),
}

impl fmt::Debug for Pkcs11SlotKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11SlotKek")
            .field("pin", &self.pin)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11SlotKek {
    /// The pin of this KEK: what to record, and what opens or destroys it.
    #[must_use]
    pub fn pin(&self) -> &KekPin {
        &self.pin
    }

    /// The KEK object's `CKA_LABEL` (informational: keys are never found
    /// by label).
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `op` with the KEK's object handle. Object handles can outlive
    /// their object's visibility: SoftHSM2 drops the handles of private
    /// objects when the application is logged out, and the provider logs
    /// in again; so on "invalid handle" the KEK is looked up once more by
    /// its pin. Not found then means destroyed.
    fn with_kek<T>(
        &self,
        op: impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<T, KekCallError> {
        let handle = *lock(&self.handle);
        match self.token.with_session(|s| op(s, handle)) {
            Err(e) if is_missing_object(&e) => {}
            other => return other.map_err(KekCallError::Call),
        }
        let found = search(&self.token, &self.slot, &self.pin).map_err(KekCallError::Lookup)?;
        let Some(&found) = found.pinned.first() else {
            return Err(KekCallError::Missing);
        };
        *lock(&self.handle) = found;
        self.token.with_session(|s| op(s, found)).map_err(|e| {
            if is_missing_object(&e) {
                KekCallError::Missing
            } else {
                KekCallError::Call(e)
            }
        })
    }

    fn custody_error(&self, function: &'static str, error: KekCallError) -> CustodyError {
        match error {
            KekCallError::Missing => CustodyError::KeyNotFound(self.pin.kek_id.to_string()),
            KekCallError::Lookup(error) => error.into(),
            KekCallError::Call(error) => {
                CustodyError::Provider(format!("PKCS#11 {function} failed: {error}"))
            }
        }
    }
}

/// Whether an unwrap failure means "wrong key or altered input". SoftHSM2
/// reports a failed RFC 3394 integrity check as `CKR_GENERAL_ERROR`; other
/// tokens use the `WRAPPED_KEY` / `ENCRYPTED_DATA` codes.
fn is_unwrap_rejection(error: &CkError) -> bool {
    matches!(
        error,
        CkError::Pkcs11(
            RvError::WrappedKeyInvalid
                | RvError::WrappedKeyLenRange
                | RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::GeneralError,
            Function::UnwrapKey
        )
    )
}

impl KeyEncryptionKey for Pkcs11SlotKek {
    fn kek_id(&self) -> &KekId {
        &self.pin.kek_id
    }

    fn slot(&self) -> Option<&ShareSlot> {
        Some(&self.slot)
    }

    fn wrap(&self, data_key: &DataKey) -> Result<WrappedKey, CustodyError> {
        let wrapped = self.with_kek(|s, kek| {
            let mut template = WipedAttributes(data_key_template());
            template
                .0
                .push(Attribute::Value(data_key.expose().to_vec()));
            let object = s.create_object(&template.0)?;
            drop(template);
            let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, object);
            let destroyed = s.destroy_object(object);
            let wrapped = wrapped?;
            destroyed?;
            Ok(wrapped)
        });
        match wrapped {
            Ok(bytes) => WrappedKey::new(bytes),
            Err(e) => Err(self.custody_error("C_WrapKey", e)),
        }
    }

    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, CustodyError> {
        if wrapped.as_bytes().len() != WRAPPED_LEN {
            return Err(CustodyError::UnwrapFailed);
        }
        let template = data_key_template();
        let value = self.with_kek(|s, kek| {
            let object =
                s.unwrap_key(&Mechanism::AesKeyWrap, kek, wrapped.as_bytes(), &template)?;
            let attributes = s
                .get_attributes(object, &[AttributeType::Value])
                .map(WipedAttributes);
            let destroyed = s.destroy_object(object);
            let attributes = attributes?;
            destroyed?;
            let value = attributes.0.iter().find_map(|a| match a {
                Attribute::Value(bytes) => Some(Zeroizing::new(bytes.clone())),
                _ => None,
            });
            Ok(value)
        });
        match value {
            Ok(Some(value)) => {
                let key: &[u8; DATA_KEY_LEN] = value
                    .as_slice()
                    .try_into()
                    .map_err(|_| CustodyError::UnwrapFailed)?;
                Ok(DataKey::from_bytes(key))
            }
            Ok(None) => Err(CustodyError::Provider(
                "PKCS#11 token did not return the unwrapped key's value".into(),
            )),
            Err(KekCallError::Call(e)) if is_unwrap_rejection(&e) => {
                Err(CustodyError::UnwrapFailed)
            }
            Err(e) => Err(self.custody_error("C_UnwrapKey", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rv_of;
    use super::*;
    use crate::slot::tests::slot;

    #[test]
    fn labels_spell_out_the_slot() {
        assert_eq!(
            slot_label(&slot("key-1", "node-1", 3, 2)),
            "shardkeep/slot-kek/v1/key-1/node-1/v3/2"
        );
    }

    #[test]
    fn unwrap_rejections_are_recognised_only_from_c_unwrapkey() {
        assert!(is_unwrap_rejection(&CkError::Pkcs11(
            RvError::GeneralError,
            Function::UnwrapKey
        )));
        assert!(!is_unwrap_rejection(&CkError::Pkcs11(
            RvError::GeneralError,
            Function::GetAttributeValue
        )));
        assert!(rv_of(&CkError::NotSupported).is_none());
    }
}
