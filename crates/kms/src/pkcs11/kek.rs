//! Per-slot KEKs inside the token: AES-256 keys that never leave it, used
//! only to wrap and unwrap data keys with `CKM_AES_KEY_WRAP` (RFC 3394).

use core::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use shardkeep_envelope::{
    CustodyError, DATA_KEY_LEN, DataKey, KekId, KeyEncryptionKey, ShareSlot, WrappedKey,
};
use zeroize::{Zeroize, Zeroizing};

use super::{Pkcs11Token, TokenInner, is_missing_object, lock, p11};
use crate::error::Error;
use crate::provider::{DestroyOutcome, SlotKekProvider};
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

/// The `CKA_LABEL` of a slot's KEK. Spelled out here rather than through
/// `ShareSlot`'s `Display`, which may change: a changed label would orphan
/// every KEK already in a token.
fn slot_label(slot: &ShareSlot) -> String {
    format!(
        "{LABEL_PREFIX}{}/{}/v{}/{}",
        slot.key_id.as_str(),
        slot.node_id.as_str(),
        slot.version.get(),
        slot.index.get()
    )
}

/// Finds a slot's KEK: a token AES key with the slot's label.
fn find_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// A slot KEK: a private token object that never leaves the token in
/// plaintext (sensitive, not extractable) and can only wrap and unwrap.
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

impl Pkcs11Token {
    /// The KEK id of `slot` in this provider (`p11-slot-` and 48 hex digits
    /// of a digest of the slot). Computed, never looked up.
    #[must_use]
    pub fn slot_kek_id(slot: &ShareSlot) -> KekId {
        slot_kek_id(KEK_ID_PREFIX, slot)
    }

    /// The KEK of `slot`, generated inside the token on first use. Safe
    /// against concurrent callers in this and other processes (see the
    /// crate documentation): all of them end up with the same single key.
    ///
    /// # Errors
    /// [`Error::UnsafeKeyObject`] when an existing object under the slot's
    /// label could leave the token, [`Error::DuplicateObjects`] when
    /// concurrent creators keep colliding, or [`Error::Pkcs11`].
    pub fn slot_kek(&self, slot: &ShareSlot) -> Result<Pkcs11SlotKek, Error> {
        let label = slot_label(slot);
        let template = kek_template(&label, slot);
        let handle = self.inner.find_or_create(
            &find_template(&label),
            &label,
            |s| s.generate_key(&Mechanism::AesKeyGen, &template),
            "C_GenerateKey",
        )?;
        self.kek_handle(slot, label, handle)
    }

    /// The KEK of `slot` if it exists; opening a share never creates one.
    ///
    /// # Errors
    /// [`Error::SlotKekNotFound`] when it was never created or has been
    /// destroyed, [`Error::DuplicateObjects`], [`Error::UnsafeKeyObject`],
    /// or [`Error::Pkcs11`].
    pub fn open_slot_kek(&self, slot: &ShareSlot) -> Result<Pkcs11SlotKek, Error> {
        let label = slot_label(slot);
        match self.inner.find_unique(&find_template(&label), &label)? {
            Some(handle) => self.kek_handle(slot, label, handle),
            None => Err(Error::SlotKekNotFound {
                slot: slot.clone(),
                kek_id: Self::slot_kek_id(slot),
            }),
        }
    }

    /// Destroys the KEK of `slot` inside the token (every object under its
    /// label), then checks that none is left. Every data key wrapped under
    /// it can no longer be unwrapped: crypto-shredding. Idempotent.
    ///
    /// # Errors
    /// [`Error::Pkcs11`], including when an object survives destruction.
    pub fn destroy_slot_kek(&self, slot: &ShareSlot) -> Result<DestroyOutcome, Error> {
        let label = slot_label(slot);
        let template = find_template(&label);
        let mut destroyed = false;
        for handle in self.inner.find(&template)? {
            destroyed |= self.inner.destroy(handle)?;
        }
        let left = self.inner.find(&template)?.len();
        if left != 0 {
            return Err(Error::Pkcs11 {
                function: "C_DestroyObject",
                reason: format!("{left} objects labelled {label:?} survived destruction"),
            });
        }
        Ok(if destroyed {
            DestroyOutcome::Destroyed
        } else {
            DestroyOutcome::AlreadyAbsent
        })
    }

    fn kek_handle(
        &self,
        slot: &ShareSlot,
        label: String,
        handle: ObjectHandle,
    ) -> Result<Pkcs11SlotKek, Error> {
        check_kek_object(&self.inner, handle, &label)?;
        Ok(Pkcs11SlotKek {
            token: Arc::clone(&self.inner),
            id: Self::slot_kek_id(slot),
            slot: slot.clone(),
            label,
            handle: Mutex::new(handle),
        })
    }
}

/// Refuses a KEK object that could leave the token or do more than wrap.
fn check_kek_object(token: &TokenInner, handle: ObjectHandle, label: &str) -> Result<(), Error> {
    let values = token
        .bool_attributes(
            handle,
            &[
                AttributeType::Extractable,
                AttributeType::Sensitive,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
            ],
        )
        .map_err(p11("C_GetAttributeValue"))?;
    let reason = match values.as_slice() {
        [Some(false), Some(true), Some(false), Some(false)] => return Ok(()),
        [extractable, ..] if *extractable != Some(false) => "CKA_EXTRACTABLE is not false",
        [_, sensitive, ..] if *sensitive != Some(true) => "CKA_SENSITIVE is not true",
        _ => "CKA_ENCRYPT or CKA_DECRYPT is not false",
    };
    Err(Error::UnsafeKeyObject {
        label: label.to_owned(),
        reason,
    })
}

impl SlotKekProvider for Pkcs11Token {
    fn slot_kek_id(&self, slot: &ShareSlot) -> KekId {
        Self::slot_kek_id(slot)
    }

    fn slot_kek(&self, slot: &ShareSlot) -> Result<Box<dyn KeyEncryptionKey>, Error> {
        Ok(Box::new(Pkcs11Token::slot_kek(self, slot)?))
    }

    fn open_slot_kek(&self, slot: &ShareSlot) -> Result<Box<dyn KeyEncryptionKey>, Error> {
        Ok(Box::new(Pkcs11Token::open_slot_kek(self, slot)?))
    }

    fn destroy_slot_kek(&self, slot: &ShareSlot) -> Result<DestroyOutcome, Error> {
        Pkcs11Token::destroy_slot_kek(self, slot)
    }
}

/// The KEK of one share slot inside a [`Pkcs11Token`].
///
/// Wrapped data keys are plain RFC 3394 output (40 bytes). Once the slot's
/// KEK is destroyed, by this or any other handle or process, wrap and unwrap
/// fail with [`CustodyError::KeyNotFound`]. The handle names the slot, not
/// one key object: if the slot's KEK is later created anew, the handle uses
/// the new key, under which data keys wrapped by the old one fail with
/// [`CustodyError::UnwrapFailed`].
pub struct Pkcs11SlotKek {
    token: Arc<TokenInner>,
    id: KekId,
    slot: ShareSlot,
    label: String,
    /// Re-resolved by label when the token invalidates it (see `with_kek`).
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
            .field("id", &self.id)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11SlotKek {
    /// The share slot this KEK belongs to.
    #[must_use]
    pub fn slot(&self) -> &ShareSlot {
        &self.slot
    }

    /// The KEK object's `CKA_LABEL`.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `op` with the KEK's object handle. Object handles can outlive
    /// their object's visibility: SoftHSM2 drops the handles of private
    /// objects when the application is logged out, and the provider logs
    /// in again; so on "invalid handle" the KEK is looked up once more by
    /// label. Not found then means destroyed.
    fn with_kek<T>(
        &self,
        op: impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<T, KekCallError> {
        let handle = *lock(&self.handle);
        match self.token.with_session(|s| op(s, handle)) {
            Err(e) if is_missing_object(&e) => {}
            other => return other.map_err(KekCallError::Call),
        }
        let found = self
            .token
            .find_unique(&find_template(&self.label), &self.label)
            .map_err(KekCallError::Lookup)?;
        let Some(found) = found else {
            return Err(KekCallError::Missing);
        };
        check_kek_object(&self.token, found, &self.label).map_err(KekCallError::Lookup)?;
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
            KekCallError::Missing => CustodyError::KeyNotFound(self.id.to_string()),
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
        &self.id
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
