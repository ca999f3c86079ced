//! The PKCS#11 HSM provider: one token, logged in once, with a pool of
//! sessions shared by every KEK and signer handed out.

mod kek;
mod signer;

use core::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{MechanismInfo, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

pub use kek::Pkcs11SlotKek;
pub use signer::Pkcs11Signer;

use crate::error::Error;

/// Where Debian's `softhsm2` package installs the SoftHSM2 PKCS#11 module.
pub const DEBIAN_SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Idle sessions kept open for reuse; more are opened under load and closed
/// when returned to a full pool.
const MAX_IDLE_SESSIONS: usize = 8;

/// A token user PIN: wiped on drop, redacted in `Debug`, never logged.
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Takes ownership of the PIN (no copy is made).
    #[must_use]
    pub fn new(pin: String) -> Self {
        Self(Zeroizing::new(pin))
    }

    /// The PIN in cryptoki's secret type (itself wiped on drop).
    fn auth(&self) -> AuthPin {
        AuthPin::new(self.0.as_str().into())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// How to reach a token.
#[derive(Debug)]
#[non_exhaustive]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library), e.g. [`DEBIAN_SOFTHSM2_MODULE`].
    pub module: PathBuf,
    /// The token's label (`softhsm2-util --init-token --label ...`).
    pub token_label: String,
    /// The user PIN.
    pub pin: Pin,
}

impl Pkcs11Config {
    /// A configuration.
    #[must_use]
    pub fn new(module: impl Into<PathBuf>, token_label: impl Into<String>, pin: Pin) -> Self {
        Self {
            module: module.into(),
            token_label: token_label.into(),
            pin,
        }
    }
}

/// A logged-in PKCS#11 token that holds one AES-256 KEK per share slot and
/// ed25519 signing keys.
///
/// `Send + Sync` and cheap to clone: PKCS#11 sessions are not thread-safe,
/// so each operation borrows a session of its own from a pool. The user
/// login is held by a dedicated session for as long as the token is open
/// (PKCS#11 login state is per application and ends when its last session
/// closes) and is renewed once if the token reports it lost.
///
/// The library is initialised (`C_Initialize`, OS locking) on first open and
/// never finalised, since other code in the process may share it.
#[derive(Clone)]
pub struct Pkcs11Token {
    inner: Arc<TokenInner>,
}

pub(crate) struct TokenInner {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    pin: Pin,
    /// Holds the login; only used to log in again.
    login: Mutex<Session>,
    idle: Mutex<Vec<Session>>,
    /// Serialises signer generation within this process (other processes
    /// are handled by the generate-then-check protocol).
    create: Mutex<()>,
}

impl fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("label", &self.inner.label)
            .field("slot", &self.inner.slot.id())
            .finish_non_exhaustive()
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The PKCS#11 return value of a failed call, if it was one.
pub(crate) fn rv_of(error: &CkError) -> Option<RvError> {
    match error {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Maps a cryptoki failure to [`Error::Pkcs11`] naming the function.
pub(crate) fn p11(function: &'static str) -> impl FnOnce(CkError) -> Error {
    move |error| Error::Pkcs11 {
        function,
        reason: error.to_string(),
    }
}

/// Whether an object handle no longer names an object (destroyed).
pub(crate) fn is_missing_object(error: &CkError) -> bool {
    matches!(
        rv_of(error),
        Some(
            RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
                | RvError::WrappingKeyHandleInvalid
                | RvError::UnwrappingKeyHandleInvalid
        )
    )
}

impl Pkcs11Token {
    /// Loads the module, finds the token by label, checks that it offers
    /// AES key generation and RFC 3394 key wrap, and logs in.
    ///
    /// # Errors
    /// [`Error::ModuleLoad`] (e.g. SoftHSM2 not installed),
    /// [`Error::TokenNotFound`], [`Error::TokenAmbiguous`],
    /// [`Error::MechanismUnsupported`], [`Error::PinIncorrect`],
    /// [`Error::PinLocked`], or [`Error::Pkcs11`].
    pub fn open(config: Pkcs11Config) -> Result<Self, Error> {
        let Pkcs11Config {
            module,
            token_label,
            pin,
        } = config;
        let ctx = Pkcs11::new(&module).map_err(|e| Error::ModuleLoad {
            path: module.clone(),
            reason: e.to_string(),
        })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Err(e) if rv_of(&e) != Some(RvError::CryptokiAlreadyInitialized) => {
                return Err(p11("C_Initialize")(e));
            }
            _ => {}
        }
        let mut matching = Vec::new();
        for slot in ctx
            .get_slots_with_initialized_token()
            .map_err(p11("C_GetSlotList"))?
        {
            let info = ctx.get_token_info(slot).map_err(p11("C_GetTokenInfo"))?;
            if info.label().trim_end() == token_label {
                matching.push(slot);
            }
        }
        let slot = match matching.as_slice() {
            [] => return Err(Error::TokenNotFound(token_label)),
            [slot] => *slot,
            more => {
                return Err(Error::TokenAmbiguous {
                    label: token_label,
                    count: more.len(),
                });
            }
        };
        require_mechanism(
            &ctx,
            slot,
            MechanismType::AES_KEY_GEN,
            "CKM_AES_KEY_GEN",
            MechanismInfo::generate,
        )?;
        require_mechanism(
            &ctx,
            slot,
            MechanismType::AES_KEY_WRAP,
            "CKM_AES_KEY_WRAP",
            |i| i.wrap() && i.unwrap(),
        )?;
        let login = ctx.open_rw_session(slot).map_err(p11("C_OpenSession"))?;
        log_in(&login, &pin)?;
        Ok(Self {
            inner: Arc::new(TokenInner {
                ctx,
                slot,
                label: token_label,
                pin,
                login: Mutex::new(login),
                idle: Mutex::new(Vec::new()),
                create: Mutex::new(()),
            }),
        })
    }

    /// The token's label.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.inner.label
    }
}

fn require_mechanism(
    ctx: &Pkcs11,
    slot: Slot,
    mechanism: MechanismType,
    name: &'static str,
    offers: impl FnOnce(&MechanismInfo) -> bool,
) -> Result<(), Error> {
    match ctx.get_mechanism_info(slot, mechanism) {
        Ok(info) if offers(&info) => Ok(()),
        Ok(_) => Err(Error::MechanismUnsupported(name)),
        Err(e) if rv_of(&e) == Some(RvError::MechanismInvalid) => {
            Err(Error::MechanismUnsupported(name))
        }
        Err(e) => Err(p11("C_GetMechanismInfo")(e)),
    }
}

fn log_in(session: &Session, pin: &Pin) -> Result<(), Error> {
    match session.login(UserType::User, Some(&pin.auth())) {
        Ok(()) => Ok(()),
        Err(e) => match rv_of(&e) {
            // Another handle in this process logged the application in.
            Some(RvError::UserAlreadyLoggedIn) => Ok(()),
            Some(RvError::PinIncorrect) => Err(Error::PinIncorrect),
            Some(RvError::PinLocked) => Err(Error::PinLocked),
            _ => Err(p11("C_Login")(e)),
        },
    }
}

impl TokenInner {
    pub(crate) fn require_mechanism(
        &self,
        mechanism: MechanismType,
        name: &'static str,
        offers: impl FnOnce(&MechanismInfo) -> bool,
    ) -> Result<(), Error> {
        require_mechanism(&self.ctx, self.slot, mechanism, name, offers)
    }

    /// Runs `op` on a pooled session. Retries once on a fresh session when
    /// the session was lost, and once after logging in again when the
    /// application was logged out (someone called `C_Logout`, or the token
    /// was reset); `op` must therefore have no effect when it fails with
    /// those errors (they are raised before any work is done).
    pub(crate) fn with_session<T>(
        &self,
        mut op: impl FnMut(&Session) -> Result<T, CkError>,
    ) -> Result<T, CkError> {
        let mut retried = false;
        loop {
            let session = match lock(&self.idle).pop() {
                Some(session) => session,
                None => self.ctx.open_rw_session(self.slot)?,
            };
            let result = op(&session);
            let rv = result.as_ref().err().and_then(rv_of);
            // A logged-out application cannot see private objects, so some
            // tokens (SoftHSM2) answer "invalid handle" rather than "not
            // logged in": ask the session before calling a key missing.
            let logged_out = match &result {
                Err(e) if rv == Some(RvError::UserNotLoggedIn) || is_missing_object(e) => {
                    session.get_session_info().is_ok_and(|info| {
                        matches!(
                            info.session_state(),
                            SessionState::RoPublic | SessionState::RwPublic
                        )
                    })
                }
                _ => false,
            };
            match rv {
                Some(RvError::SessionHandleInvalid | RvError::SessionClosed) if !retried => {
                    drop(session);
                }
                _ if logged_out && !retried => {
                    self.checkin(session);
                    self.log_in_again()?;
                }
                _ => {
                    self.checkin(session);
                    return result;
                }
            }
            retried = true;
        }
    }

    /// Logs the application in again on the login session, replacing that
    /// session first if the token no longer knows it (token reset).
    fn log_in_again(&self) -> Result<(), CkError> {
        let mut login = lock(&self.login);
        let attempt =
            |session: &Session| match session.login(UserType::User, Some(&self.pin.auth())) {
                Err(e) if rv_of(&e) == Some(RvError::UserAlreadyLoggedIn) => Ok(()),
                other => other,
            };
        match attempt(&login) {
            Err(e)
                if matches!(
                    rv_of(&e),
                    Some(RvError::SessionHandleInvalid | RvError::SessionClosed)
                ) =>
            {
                *login = self.ctx.open_rw_session(self.slot)?;
                attempt(&login)
            }
            other => other,
        }
    }

    fn checkin(&self, session: Session) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
    }

    /// Token objects matching `template`. A logged-out application sees
    /// public objects only, so an empty answer would pass a private key off
    /// as absent (and a hard delete as done): a search made while logged
    /// out counts as failed with `CKR_USER_NOT_LOGGED_IN`, which makes
    /// [`with_session`](Self::with_session) log in again and search again.
    pub(crate) fn find(&self, template: &[Attribute]) -> Result<Vec<ObjectHandle>, Error> {
        self.with_session(|s| {
            let found = s.find_objects(template)?;
            let state = s.get_session_info()?.session_state();
            if matches!(state, SessionState::RoPublic | SessionState::RwPublic) {
                return Err(CkError::Pkcs11(
                    RvError::UserNotLoggedIn,
                    Function::FindObjects,
                ));
            }
            Ok(found)
        })
        .map_err(p11("C_FindObjects"))
    }

    /// Destroys `object`; `Ok(false)` when it was already gone.
    pub(crate) fn destroy(&self, object: ObjectHandle) -> Result<bool, Error> {
        match self.with_session(|s| s.destroy_object(object)) {
            Ok(()) => Ok(true),
            Err(e) if is_missing_object(&e) => Ok(false),
            Err(e) => Err(p11("C_DestroyObject")(e)),
        }
    }

    /// Reads boolean attributes of `object`, in the order asked.
    pub(crate) fn bool_attributes(
        &self,
        object: ObjectHandle,
        types: &[AttributeType],
    ) -> Result<Vec<Option<bool>>, CkError> {
        let attributes = self.with_session(|s| s.get_attributes(object, types))?;
        Ok(types
            .iter()
            .map(|wanted| {
                attributes
                    .iter()
                    .find(|a| a.attribute_type() == *wanted)
                    .and_then(bool_value)
            })
            .collect())
    }

    /// The reason of the first requirement `object` does not meet, `None`
    /// when it meets them all. An attribute the token does not report
    /// fails its requirement.
    pub(crate) fn unmet(
        &self,
        object: ObjectHandle,
        requirements: &[Requirement],
    ) -> Result<Option<&'static str>, CkError> {
        let types: Vec<AttributeType> = requirements.iter().map(|r| r.attribute).collect();
        let values = self.bool_attributes(object, &types)?;
        Ok(requirements
            .iter()
            .zip(values)
            .find(|(requirement, value)| *value != Some(requirement.value))
            .map(|(requirement, _)| requirement.reason))
    }
}

/// A boolean attribute a key object must carry, with a given value, for
/// this provider to use it.
pub(crate) struct Requirement {
    pub(crate) attribute: AttributeType,
    pub(crate) value: bool,
    /// Why an object without it is refused.
    pub(crate) reason: &'static str,
}

impl Requirement {
    pub(crate) const fn new(attribute: AttributeType, value: bool, reason: &'static str) -> Self {
        Self {
            attribute,
            value,
            reason,
        }
    }
}

/// What every key this provider uses must be, whatever its kind: a private
/// token object (invisible without the PIN), generated inside the token
/// (`CKA_LOCAL`: its value was never known outside), sensitive and never
/// extractable since its creation, and frozen (not modifiable, not
/// copyable into an object with other attributes).
pub(crate) const KEY_REQUIREMENTS: [Requirement; 7] = [
    Requirement::new(AttributeType::Private, true, "CKA_PRIVATE is not true"),
    Requirement::new(
        AttributeType::Local,
        true,
        "CKA_LOCAL is not true (not generated in the token)",
    ),
    Requirement::new(
        AttributeType::AlwaysSensitive,
        true,
        "CKA_ALWAYS_SENSITIVE is not true",
    ),
    Requirement::new(
        AttributeType::NeverExtractable,
        true,
        "CKA_NEVER_EXTRACTABLE is not true",
    ),
    Requirement::new(
        AttributeType::Extractable,
        false,
        "CKA_EXTRACTABLE is not false",
    ),
    Requirement::new(
        AttributeType::Modifiable,
        false,
        "CKA_MODIFIABLE is not false",
    ),
    Requirement::new(AttributeType::Copyable, false, "CKA_COPYABLE is not false"),
];

fn bool_value(attribute: &Attribute) -> Option<bool> {
    match attribute {
        Attribute::Extractable(v)
        | Attribute::Sensitive(v)
        | Attribute::AlwaysSensitive(v)
        | Attribute::NeverExtractable(v)
        | Attribute::Local(v)
        | Attribute::Modifiable(v)
        | Attribute::Copyable(v)
        | Attribute::Destroyable(v)
        | Attribute::Derive(v)
        | Attribute::Encrypt(v)
        | Attribute::Decrypt(v)
        | Attribute::Wrap(v)
        | Attribute::Unwrap(v)
        | Attribute::Sign(v)
        | Attribute::Token(v)
        | Attribute::Private(v) => Some(*v),
        _ => None,
    }
}
