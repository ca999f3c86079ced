//! The service: what it is made of, and the plumbing every operation
//! shares (time, randomness, transactions, who is asking, audit records).
//!
//! Every operation is one method that checks its policy itself, changes
//! state and appends its audit record in one storage transaction, and
//! returns a typed result. Refusals that must leave a trace (access denied,
//! rate limited) are recorded in a transaction of their own, since the
//! operation's transaction is rolled back.

use core::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use rand_core::CryptoRng;
use shardkeep_audit::{AuditRecord, EventType, Outcome, append};
use shardkeep_envelope::TrustedSigners;
use shardkeep_kms::SlotKekProvider;
use shardkeep_storage::{PersonRecord, PersonState, RegistryStore, Storage, Transaction};
use shardkeep_types::{ActorId, FreeText, NodeVersion, Signer, Timestamp};

use crate::clock::Clock;
use crate::config::ServiceConfig;
use crate::error::Error;
use crate::recovery::SessionTable;
use crate::registry::Role;

/// A cryptographically secure random number generator the service draws
/// from (nonces, data keys, challenges). Production: the operating
/// system's; tests: a seeded one.
pub type ServiceRng = Box<dyn CryptoRng + Send>;

/// Everything a [`BackupService`] is made of; every part is injected.
#[non_exhaustive]
pub struct ServiceParts<S> {
    /// Where the state and the audit log live (any backend).
    pub storage: S,
    /// Who this instance is, and the procedure's times and limits.
    pub config: ServiceConfig,
    /// The provider of one KEK per server share slot.
    pub keks: Arc<dyn SlotKekProvider>,
    /// Signs share envelopes.
    pub envelope_signer: Arc<dyn Signer>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Where randomness comes from.
    pub rng: ServiceRng,
}

impl<S> fmt::Debug for ServiceParts<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceParts")
            .field("config", &self.config)
            .field("envelope_signer", &self.envelope_signer)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<S> ServiceParts<S> {
    /// The parts; the remaining ones can be set on the value.
    pub fn new(
        storage: S,
        config: ServiceConfig,
        keks: Arc<dyn SlotKekProvider>,
        envelope_signer: Arc<dyn Signer>,
        clock: Arc<dyn Clock>,
        rng: ServiceRng,
    ) -> Self {
        Self {
            storage,
            config,
            keks,
            envelope_signer,
            clock,
            rng,
        }
    }
}

/// The backup procedure as a service: cheap to clone (the clones share one
/// state), safe to use from many tasks.
pub struct BackupService<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    storage: S,
    config: ServiceConfig,
    keks: Arc<dyn SlotKekProvider>,
    envelope_signer: Arc<dyn Signer>,
    trusted: TrustedSigners,
    clock: Arc<dyn Clock>,
    rng: Mutex<ServiceRng>,
    /// The recovery sessions this instance started (their secrets live
    /// here only).
    sessions: SessionTable,
}

impl<S> Clone for BackupService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for BackupService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupService")
            .field("deployment", &self.inner.config.deployment_id)
            .field("replica", &self.inner.config.replica_id)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> BackupService<S> {
    /// A service made of `parts`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`]; [`Error::Envelope`] when the envelope
    /// signer's key cannot be trusted (it is what every envelope this
    /// service reads must be signed by).
    pub fn new(parts: ServiceParts<S>) -> Result<Self, Error> {
        parts.config.validate()?;
        let mut trusted = TrustedSigners::new();
        trusted.add_signer(parts.envelope_signer.as_ref())?;
        Ok(Self {
            inner: Arc::new(Inner {
                storage: parts.storage,
                config: parts.config,
                keks: parts.keks,
                envelope_signer: parts.envelope_signer,
                trusted,
                clock: parts.clock,
                rng: Mutex::new(parts.rng),
                sessions: SessionTable::default(),
            }),
        })
    }

    /// The storage backend.
    #[must_use]
    pub fn storage(&self) -> &S {
        &self.inner.storage
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// The envelope signers this service trusts (its own).
    #[must_use]
    pub fn trusted_signers(&self) -> &TrustedSigners {
        &self.inner.trusted
    }

    pub(crate) fn keks(&self) -> &dyn SlotKekProvider {
        self.inner.keks.as_ref()
    }

    pub(crate) fn envelope_signer(&self) -> &dyn Signer {
        self.inner.envelope_signer.as_ref()
    }

    /// The recovery sessions held in this instance's memory.
    pub(crate) fn sessions(&self) -> &SessionTable {
        &self.inner.sessions
    }

    /// The current time, from the service's clock: what its audit records
    /// and checkpoints are stamped with.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Runs `f` with the service's random number generator. The lock is
    /// held for `f` only: never call it across an `.await`.
    pub(crate) fn with_rng<T>(&self, f: impl FnOnce(&mut dyn CryptoRng) -> T) -> T {
        // A panic while drawing random bytes leaves the generator usable.
        let mut rng = self
            .inner
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(rng.as_mut())
    }

    /// `N` fresh random bytes.
    pub(crate) fn random_bytes<const N: usize>(&self) -> [u8; N] {
        self.with_rng(|rng| {
            let mut bytes = [0u8; N];
            rng.fill_bytes(&mut bytes);
            bytes
        })
    }

    /// A write transaction.
    pub(crate) async fn begin(&self) -> Result<S::Transaction, Error> {
        Ok(self.inner.storage.begin().await?)
    }

    /// A read-only transaction.
    pub(crate) async fn begin_read_only(&self) -> Result<S::Transaction, Error> {
        Ok(self.inner.storage.begin_read_only().await?)
    }

    /// The person behind `actor`, looked up now (never cached: a
    /// revocation takes effect at once), who must be active and hold `role`.
    ///
    /// # Errors
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingRole`].
    pub(crate) async fn authorize<T: RegistryStore + Send>(
        tx: &mut T,
        actor: &ActorId,
        role: Role,
    ) -> Result<PersonRecord, Error> {
        let person = match tx.person(actor).await {
            Ok(person) => person,
            Err(shardkeep_storage::Error::PersonNotFound(_)) => {
                return Err(Error::UnknownPerson(actor.clone()));
            }
            Err(other) => return Err(other.into()),
        };
        if !matches!(person.state, PersonState::Active) {
            return Err(Error::PersonRevoked(actor.clone()));
        }
        if !person.roles.contains(role) {
            return Err(Error::MissingRole {
                person: actor.clone(),
                role,
            });
        }
        Ok(person)
    }

    /// An audit record of `event` by `actor`, now, about `version` if given.
    pub(crate) fn record(
        &self,
        event: EventType,
        actor: &ActorId,
        version: Option<&NodeVersion>,
    ) -> AuditRecord {
        let mut record = AuditRecord::new(event, self.now(), actor.clone());
        if let Some(version) = version {
            record.key_id = Some(version.key_id.clone());
            record.node_id = Some(version.node_id.clone());
            record.version = Some(version.version);
        }
        record
    }

    /// Appends `record` inside `tx`: it commits with the change it records.
    pub(crate) async fn audit<T: Transaction>(
        tx: &mut T,
        record: &AuditRecord,
    ) -> Result<(), Error> {
        append(tx, record).await?;
        Ok(())
    }

    /// Records a refusal that must leave a trace (access denied, rate
    /// limited) in a transaction of its own, and returns `error` for the
    /// caller. A failure to record is returned instead: a refusal that
    /// cannot be audited must not pass silently.
    pub(crate) async fn refuse<T>(
        &self,
        actor: &ActorId,
        version: Option<&NodeVersion>,
        error: Error,
    ) -> Result<T, Error> {
        let tx = self.begin().await?;
        self.refuse_as(tx, EventType::AccessDenied, actor, version, error)
            .await
    }

    /// Records the refusal `error` as a failed `event` by `actor` in `tx`,
    /// which commits with what it already holds (an attempt counted
    /// against a rate limit; it must hold nothing else), and returns
    /// `error`.
    pub(crate) async fn refuse_as<T>(
        &self,
        mut tx: S::Transaction,
        event: EventType,
        actor: &ActorId,
        version: Option<&NodeVersion>,
        error: Error,
    ) -> Result<T, Error> {
        let mut record = self.record(event, actor, version);
        record.outcome = Outcome::Failure {
            reason: FreeText::sanitized(&error.to_string())?,
        };
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Err(error)
    }

    /// Commits `tx` and returns `error`: what `tx` holds must stand
    /// although the operation is refused (an attempt counted against a
    /// rate limit, a lapsed session closed).
    pub(crate) async fn refuse_counted<T>(tx: S::Transaction, error: Error) -> Result<T, Error> {
        tx.commit().await?;
        Err(error)
    }
}
