//! The PKCS#11 HSM provider: one token, logged in once, with a pool of
//! sessions shared by every KEK and signer handed out.

mod kek;
mod signer;

use core::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{MechanismInfo, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rand::TryRng;
use zeroize::Zeroizing;

pub use kek::Pkcs11SlotKek;
pub use signer::Pkcs11Signer;

use crate::error::Error;

/// Where Debian's `softhsm2` package installs the SoftHSM2 PKCS#11 module.
pub const DEBIAN_SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Idle sessions kept open for reuse; more are opened under load and closed
/// when returned to a full pool.
const MAX_IDLE_SESSIONS: usize = 8;

/// How often a find-or-create retries when it meets a concurrent creator.
const MAX_CREATE_ATTEMPTS: u32 = 6;

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
    /// Serialises find-or-create within this process (other processes are
    /// handled by the create-then-check protocol).
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

    /// Token objects matching `template`.
    pub(crate) fn find(&self, template: &[Attribute]) -> Result<Vec<ObjectHandle>, Error> {
        self.with_session(|s| s.find_objects(template))
            .map_err(p11("C_FindObjects"))
    }

    /// The single object matching `template`, `None` when there is none.
    pub(crate) fn find_unique(
        &self,
        template: &[Attribute],
        label: &str,
    ) -> Result<Option<ObjectHandle>, Error> {
        match self.find(template)?.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            more => Err(Error::DuplicateObjects {
                label: label.to_owned(),
                count: more.len(),
            }),
        }
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

    /// Find-or-create under the create-then-check protocol: look; if absent,
    /// create, then look again; if anyone else's object appeared meanwhile,
    /// destroy ours and start over after a random pause. Every creator
    /// therefore ends up using the single surviving object, in this and in
    /// other processes, and no caller uses an object before it has checked
    /// that it is alone.
    pub(crate) fn find_or_create(
        &self,
        find_template: &[Attribute],
        label: &str,
        create: impl Fn(&Session) -> Result<ObjectHandle, CkError>,
        create_function: &'static str,
    ) -> Result<ObjectHandle, Error> {
        let _serialised = lock(&self.create);
        for attempt in 0..MAX_CREATE_ATTEMPTS {
            match self.find(find_template)?.as_slice() {
                [one] => return Ok(*one),
                [] => {}
                // A concurrent creator has not yet withdrawn its object.
                _ => {
                    pause(attempt)?;
                    continue;
                }
            }
            let mine = self.with_session(&create).map_err(p11(create_function))?;
            let found = self.find(find_template)?;
            if found == [mine] {
                return Ok(mine);
            }
            self.destroy(mine)?;
            pause(attempt)?;
        }
        let count = self.find(find_template)?.len();
        Err(Error::DuplicateObjects {
            label: label.to_owned(),
            count,
        })
    }
}

fn bool_value(attribute: &Attribute) -> Option<bool> {
    match attribute {
        Attribute::Extractable(v)
        | Attribute::Sensitive(v)
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

/// A random pause of up to 2^attempt * 8 ms, so that two creators racing
/// for the same label do not keep colliding.
fn pause(attempt: u32) -> Result<(), Error> {
    let mut jitter = [0u8; 2];
    rand::rngs::SysRng
        .try_fill_bytes(&mut jitter)
        .map_err(|_| Error::Randomness)?;
    let ceiling_ms = 8u64 << attempt.min(6);
    let ms = u64::from(u16::from_le_bytes(jitter)) % ceiling_ms + 1;
    std::thread::sleep(Duration::from_millis(ms));
    Ok(())
}
