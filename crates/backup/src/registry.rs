//! The registry of persons and custodian entities.
//!
//! Each person (approver, operator, custodian contact) has one record with
//! every key and identity they use; custodian entities list the persons who
//! act for them. Both must be registered and active before use, and every
//! check looks the person up at the time of use.
//!
//! Keys are checked when they are registered or rotated: ed25519 keys must
//! be keys an honest key generator makes (no small-order, mixed-order or
//! non-canonical encoding, the envelope crate's rule), one key serves one
//! purpose, and the age recipient must be a canonical X25519 recipient.
//! Storage refuses a key that is, or was in any key epoch, another person's.

use core::str::FromStr;

use ed25519_dalek::VerifyingKey;
use shardkeep_audit::EventType;
use shardkeep_envelope::TrustedSigners;
use shardkeep_envelope::deps::age;
pub use shardkeep_storage::{
    EntityRecord, EntityState, PersonKeys, PersonRecord, PersonState, Role, RoleSet,
};
use shardkeep_storage::{
    MAX_CONTACT_LEN, MAX_DISPLAY_NAME_LEN, MAX_ENTITY_MEMBERS, MAX_PAGE_ROWS,
    MAX_REVOCATION_REASON_LEN, PUBLIC_KEY_LEN, RegistryStore, Storage, Transaction,
};
use shardkeep_types::{ActorId, CustodianId, FreeText, SignerId};

use crate::approval_ops::{consume_approvals, is_approval_refusal};
use crate::approver_set::{ApproverSetChange, ChangeApproval, quorum_without};
use crate::error::Error;
use crate::service::BackupService;

/// A person to register: who, what they may do, and every key and identity
/// they use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRegistration {
    /// Their actor id (what they sign and authenticate as).
    pub id: ActorId,
    /// Their name, for people.
    pub display_name: FreeText<MAX_DISPLAY_NAME_LEN>,
    /// What they may do.
    pub roles: RoleSet,
    /// Their keys: receipt key, approval key, age recipient, mTLS
    /// certificate fingerprint (any may be absent until needed).
    pub keys: PersonKeys,
}

/// A custodian entity to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRegistration {
    /// Its custodian id.
    pub id: CustodianId,
    /// Its name, for people.
    pub display_name: FreeText<MAX_DISPLAY_NAME_LEN>,
    /// How to reach it.
    pub contact: FreeText<MAX_CONTACT_LEN>,
    /// The registered, active persons with the custodian role who act for
    /// it (any order; at least one, no person twice).
    pub members: Vec<ActorId>,
}

/// Checks a person's keys before they are registered or rotated in: each
/// ed25519 key is one an honest key generator makes (the envelope crate's
/// rule: not small order, no torsion component, canonical encoding), the
/// receipt and approval keys differ, and the age recipient is a canonical
/// X25519 recipient.
///
/// # Errors
/// [`Error::WeakKey`], [`Error::KeyReused`], [`Error::InvalidAgeRecipient`].
pub fn validate_person_keys(person: &ActorId, keys: &PersonKeys) -> Result<(), Error> {
    if let Some(key) = &keys.receipt_key {
        admit_ed25519_key(person, "receipt key", key)?;
    }
    if let Some(key) = &keys.approval_key {
        admit_ed25519_key(person, "approval key", key)?;
    }
    // Public keys: a plain comparison.
    if keys.receipt_key.is_some() && keys.receipt_key == keys.approval_key {
        return Err(Error::KeyReused(person.clone()));
    }
    if let Some(recipient) = &keys.age_recipient {
        parse_age_recipient(person, recipient)?;
    }
    Ok(())
}

/// The verifying key of a registered ed25519 key, admitted by the envelope
/// crate's rule (which every receipt and signer check also applies).
///
/// # Errors
/// [`Error::WeakKey`].
pub(crate) fn admit_ed25519_key(
    person: &ActorId,
    key: &'static str,
    bytes: &[u8; PUBLIC_KEY_LEN],
) -> Result<VerifyingKey, Error> {
    let weak = || Error::WeakKey {
        person: person.clone(),
        key,
    };
    let verifying = VerifyingKey::from_bytes(bytes).map_err(|_| weak())?;
    // The envelope crate's admission rule, applied by adding the key to an
    // empty trusted set under a placeholder id (actor ids may hold `@`,
    // which signer ids may not).
    let mut probe = TrustedSigners::new();
    match probe.add(SignerId::new("registry-key-check")?, verifying) {
        Ok(()) => Ok(verifying),
        Err(shardkeep_envelope::Error::WeakKey { .. }) => Err(weak()),
        Err(other) => Err(other.into()),
    }
}

/// Parses a registered age recipient: an X25519 recipient in its canonical
/// form (the one `age-keygen` prints), so that one recipient has one
/// spelling and the registry's "never another person's key" rule holds.
///
/// # Errors
/// [`Error::InvalidAgeRecipient`].
pub(crate) fn parse_age_recipient(
    person: &ActorId,
    recipient: &str,
) -> Result<age::x25519::Recipient, Error> {
    let invalid = || Error::InvalidAgeRecipient {
        person: person.clone(),
    };
    let parsed = age::x25519::Recipient::from_str(recipient).map_err(|_| invalid())?;
    if parsed.to_string() != recipient {
        return Err(invalid());
    }
    Ok(parsed)
}

/// Maps the storage refusals of registry writes to this crate's variants.
pub(crate) fn registry_error(error: shardkeep_storage::Error) -> Error {
    use shardkeep_storage::Error as Storage;
    match error {
        Storage::PersonNotFound(person) => Error::UnknownPerson(person),
        Storage::PersonRevoked(person) => Error::PersonRevoked(person),
        Storage::PersonExists(person) => Error::PersonExists(person),
        Storage::KeyInUse { kind } => Error::KeyInUse { kind },
        Storage::KeyRetired { kind } => Error::KeyRetired { kind },
        Storage::EntityNotFound(entity) => Error::UnknownEntity(entity),
        Storage::EntityExists(entity) => Error::EntityExists(entity),
        Storage::EntityRevoked(entity) => Error::EntityRevoked(entity),
        Storage::PersonInOtherEntity { person, entity } => {
            Error::PersonInOtherEntity { person, entity }
        }
        Storage::PersonNotMember { person, entity } => Error::NotEntityMember { person, entity },
        other => Error::Storage(other),
    }
}

/// A registered person, looked up now, who must be active.
///
/// # Errors
/// [`Error::UnknownPerson`], [`Error::PersonRevoked`].
pub(crate) async fn active_person<T: RegistryStore + Send>(
    tx: &mut T,
    id: &ActorId,
) -> Result<PersonRecord, Error> {
    let person = tx.person(id).await.map_err(registry_error)?;
    match person.state {
        PersonState::Active => Ok(person),
        PersonState::Revoked { .. } => Err(Error::PersonRevoked(id.clone())),
    }
}

/// A registered custodian entity, looked up now, which must be active.
///
/// # Errors
/// [`Error::UnknownEntity`], [`Error::EntityRevoked`].
pub(crate) async fn active_entity<T: RegistryStore + Send>(
    tx: &mut T,
    id: &CustodianId,
) -> Result<EntityRecord, Error> {
    let entity = tx.entity(id).await.map_err(registry_error)?;
    match entity.state {
        EntityState::Active => Ok(entity),
        EntityState::Revoked { .. } => Err(Error::EntityRevoked(id.clone())),
    }
}

/// Whether an active security person other than `except` is registered.
async fn another_security_person<T: RegistryStore + Send>(
    tx: &mut T,
    except: &ActorId,
) -> Result<bool, Error> {
    let mut after: Option<ActorId> = None;
    loop {
        let page = tx.persons(after.as_ref(), MAX_PAGE_ROWS).await?;
        let found = page.iter().any(|person| {
            person.id != *except
                && matches!(person.state, PersonState::Active)
                && person.roles.contains(Role::Security)
        });
        if found {
            return Ok(true);
        }
        match page.last() {
            Some(last) if page.len() == MAX_PAGE_ROWS as usize => after = Some(last.id.clone()),
            _ => return Ok(false),
        }
    }
}

impl<S: Storage> BackupService<S> {
    /// Authorizes `actor` for one of `roles` (the first that they hold) in
    /// `tx`. A refusal (unknown, revoked, missing role) rolls `tx` back and
    /// is audited as `access-denied` in a transaction of its own.
    ///
    /// # Errors
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingRole`] (naming the first role), storage errors.
    pub(crate) async fn authorize_or_refuse(
        &self,
        mut tx: S::Transaction,
        actor: &ActorId,
        roles: &[Role],
        version: Option<&shardkeep_types::NodeVersion>,
    ) -> Result<(S::Transaction, PersonRecord), Error> {
        let mut first_refusal = None;
        for role in roles {
            match Self::authorize(&mut tx, actor, *role).await {
                Ok(person) => return Ok((tx, person)),
                Err(error @ Error::MissingRole { .. }) => {
                    first_refusal.get_or_insert(error);
                }
                Err(error @ (Error::UnknownPerson(_) | Error::PersonRevoked(_))) => {
                    first_refusal = Some(error);
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        // The write lock must be released before the refusal is recorded.
        drop(tx);
        let error = first_refusal.unwrap_or_else(|| Error::UnknownPerson(actor.clone()));
        self.refuse(actor, version, error).await
    }

    /// Registers a person with every key and identity they use.
    ///
    /// A security person registers others. When the registry is empty, the
    /// first person registers themselves and must hold the security role
    /// (the bootstrap; its audit record says so). A person with an
    /// approving role (security, business owner) joins the approver set:
    /// once the registry holds a quorum of other approvers, that takes
    /// [`register_person_approved`](Self::register_person_approved).
    ///
    /// # Errors
    /// [`Error::BootstrapNotSelf`], [`Error::BootstrapWithoutSecurity`];
    /// the refusals of authorization (audited);
    /// [`Error::ApproverSetChangeUnapproved`] (audited); [`Error::WeakKey`],
    /// [`Error::KeyReused`], [`Error::InvalidAgeRecipient`];
    /// [`Error::PersonExists`], [`Error::KeyInUse`]; storage and audit
    /// errors.
    pub async fn register_person(
        &self,
        actor: &ActorId,
        registration: PersonRegistration,
    ) -> Result<PersonRecord, Error> {
        self.register(actor, registration, None).await
    }

    /// Registers a person with an approving role (security, business
    /// owner) under an approved approver-set change: as
    /// [`register_person`](Self::register_person), and the request
    /// `approval` names ([`ApproverSetChange::Register`] of exactly
    /// `registration`) is consumed in the same transaction.
    ///
    /// # Errors
    /// As [`register_person`](Self::register_person); the refusals of
    /// approval consumption ([`Error::ApprovalRequestUnknown`],
    /// [`Error::ApprovalReplayed`], [`Error::ApprovalExpired`],
    /// [`Error::ApprovalParametersMismatch`], [`Error::SelfApproval`],
    /// [`Error::ApproverRevoked`], [`Error::ApproverWrongRole`],
    /// [`Error::ApprovalMissing`]; audited as `register`).
    pub async fn register_person_approved(
        &self,
        actor: &ActorId,
        registration: PersonRegistration,
        approval: &ChangeApproval,
    ) -> Result<PersonRecord, Error> {
        self.register(actor, registration, Some(approval)).await
    }

    async fn register(
        &self,
        actor: &ActorId,
        registration: PersonRegistration,
        approval: Option<&ChangeApproval>,
    ) -> Result<PersonRecord, Error> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let bootstrap = tx.persons(None, 1).await?.is_empty();
        if bootstrap {
            if *actor != registration.id {
                return Err(Error::BootstrapNotSelf {
                    actor: actor.clone(),
                    person: registration.id,
                });
            }
            if !registration.roles.contains(Role::Security) {
                return Err(Error::BootstrapWithoutSecurity(registration.id));
            }
        } else {
            (tx, _) = self
                .authorize_or_refuse(tx, actor, &[Role::Security], None)
                .await?;
        }
        validate_person_keys(&registration.id, &registration.keys)?;
        let quorum = if bootstrap {
            None
        } else {
            let change = ApproverSetChange::Register(&registration);
            match self
                .approver_set_gate(&mut tx, actor, &change, &registration.id, approval, now)
                .await
            {
                Ok(quorum) => quorum,
                Err(error) if is_approval_refusal(&error) => {
                    drop(tx);
                    return self
                        .refuse_approval(actor, EventType::Register, error)
                        .await;
                }
                Err(other) => return Err(other),
            }
        };
        let person = PersonRecord {
            id: registration.id,
            display_name: registration.display_name,
            roles: registration.roles,
            keys: registration.keys,
            key_epoch: 1,
            state: PersonState::Active,
            registered_at: now,
            registered_by: actor.clone(),
        };
        tx.register_person(&person).await.map_err(registry_error)?;
        let mut record = self.record(EventType::Register, actor, None);
        record.target = Some(FreeText::sanitized(&format!("person {}", person.id))?);
        let roles: Vec<&str> = person.roles.iter().map(Role::name).collect();
        record.detail = Some(FreeText::sanitized(&format!(
            "{}roles: {}; keys: {}{}",
            if bootstrap {
                "bootstrap: the first security person, registered by themselves; "
            } else {
                ""
            },
            if roles.is_empty() {
                "none".to_owned()
            } else {
                roles.join(", ")
            },
            describe_keys(&person.keys),
            quorum
                .map(|quorum| format!("; {quorum}"))
                .unwrap_or_default(),
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(person)
    }

    /// Registers a custodian entity and the persons who act for it (each
    /// registered, active and holding the custodian role, and acting for no
    /// other active entity).
    ///
    /// # Errors
    /// The refusals of authorization (audited); [`Error::InvalidMembers`];
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingRole`] for a member; [`Error::EntityExists`],
    /// [`Error::PersonInOtherEntity`]; storage and audit errors.
    pub async fn register_entity(
        &self,
        actor: &ActorId,
        registration: EntityRegistration,
    ) -> Result<EntityRecord, Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Security], None)
            .await?;
        let mut members = registration.members;
        let listed = members.len();
        members.sort();
        members.dedup();
        let invalid = |why| Error::InvalidMembers {
            entity: registration.id.clone(),
            why,
        };
        if members.len() != listed {
            return Err(invalid("a person is listed twice"));
        }
        if members.is_empty() {
            return Err(invalid("an entity needs at least one person acting for it"));
        }
        if members.len() > MAX_ENTITY_MEMBERS {
            return Err(invalid("an entity has at most 64 persons acting for it"));
        }
        for member in &members {
            let person = active_person(&mut tx, member).await?;
            if !person.roles.contains(Role::Custodian) {
                return Err(Error::MissingRole {
                    person: member.clone(),
                    role: Role::Custodian,
                });
            }
        }
        let entity = EntityRecord {
            id: registration.id,
            display_name: registration.display_name,
            contact: registration.contact,
            members,
            state: EntityState::Active,
            registered_at: now,
        };
        tx.register_entity(&entity).await.map_err(registry_error)?;
        let mut record = self.record(EventType::Register, actor, None);
        record.target = Some(FreeText::sanitized(&format!("entity {}", entity.id))?);
        record.detail = Some(FreeText::sanitized(&format!(
            "members: {}",
            entity
                .members
                .iter()
                .map(ActorId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(entity)
    }

    /// Replaces a person's keys (a security person does it): a new key
    /// epoch starts now; the old keys stay in the person's history and can
    /// never be registered to anyone again. Returns the new epoch.
    ///
    /// # Errors
    /// The refusals of authorization (audited); [`Error::WeakKey`],
    /// [`Error::KeyReused`], [`Error::InvalidAgeRecipient`];
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::KeyInUse`], [`Error::KeyRetired`]; storage and audit
    /// errors.
    pub async fn rotate_person_keys(
        &self,
        actor: &ActorId,
        person: &ActorId,
        keys: PersonKeys,
    ) -> Result<u32, Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Security], None)
            .await?;
        validate_person_keys(person, &keys)?;
        active_person(&mut tx, person).await?;
        let epoch = tx
            .rotate_person_keys(person, &keys, now)
            .await
            .map_err(registry_error)?;
        let mut record = self.record(EventType::PersonKeys, actor, None);
        record.target = Some(FreeText::sanitized(&format!("person {person}"))?);
        record.detail = Some(FreeText::sanitized(&format!(
            "key epoch {epoch}; keys: {}",
            describe_keys(&keys)
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(epoch)
    }

    /// Replaces a person's roles. Another security person does it (nobody
    /// changes their own roles), and the last active security person keeps
    /// the role. Giving or taking an approving role (security, business
    /// owner) changes the approver set: once the registry holds a quorum of
    /// other approvers, that takes
    /// [`set_person_roles_approved`](Self::set_person_roles_approved).
    ///
    /// # Errors
    /// The refusals of authorization (audited); [`Error::OwnRolesChange`],
    /// [`Error::LastSecurityPerson`];
    /// [`Error::ApproverSetChangeUnapproved`] (audited);
    /// [`Error::UnknownPerson`],
    /// [`Error::PersonRevoked`]; storage and audit errors.
    pub async fn set_person_roles(
        &self,
        actor: &ActorId,
        person: &ActorId,
        roles: RoleSet,
    ) -> Result<(), Error> {
        self.change_roles(actor, person, roles, None).await
    }

    /// Replaces a person's roles, giving or taking an approving role, under
    /// an approved approver-set change: as
    /// [`set_person_roles`](Self::set_person_roles), and the request
    /// `approval` names ([`ApproverSetChange::Roles`] from the person's
    /// roles now to `roles`) is consumed in the same transaction.
    ///
    /// # Errors
    /// As [`set_person_roles`](Self::set_person_roles); the refusals of
    /// approval consumption (see
    /// [`register_person_approved`](Self::register_person_approved);
    /// audited as `roles`).
    pub async fn set_person_roles_approved(
        &self,
        actor: &ActorId,
        person: &ActorId,
        roles: RoleSet,
        approval: &ChangeApproval,
    ) -> Result<(), Error> {
        self.change_roles(actor, person, roles, Some(approval))
            .await
    }

    async fn change_roles(
        &self,
        actor: &ActorId,
        person: &ActorId,
        roles: RoleSet,
        approval: Option<&ChangeApproval>,
    ) -> Result<(), Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Security], None)
            .await?;
        if actor == person {
            return Err(Error::OwnRolesChange(person.clone()));
        }
        let current = active_person(&mut tx, person).await?;
        if current.roles.contains(Role::Security)
            && !roles.contains(Role::Security)
            && !another_security_person(&mut tx, person).await?
        {
            return Err(Error::LastSecurityPerson(person.clone()));
        }
        let change = ApproverSetChange::Roles {
            person,
            from: current.roles,
            to: roles,
        };
        let quorum = match self
            .approver_set_gate(&mut tx, actor, &change, person, approval, now)
            .await
        {
            Ok(quorum) => quorum,
            Err(error) if is_approval_refusal(&error) => {
                drop(tx);
                return self.refuse_approval(actor, EventType::Roles, error).await;
            }
            Err(other) => return Err(other),
        };
        tx.set_person_roles(person, roles, now)
            .await
            .map_err(registry_error)?;
        let mut record = self.record(EventType::Roles, actor, None);
        record.target = Some(FreeText::sanitized(&format!("person {person}"))?);
        record.detail = Some(FreeText::sanitized(&format!(
            "roles: {} (were: {}){}",
            role_list(roles),
            role_list(current.roles),
            quorum
                .map(|quorum| format!("; {quorum}"))
                .unwrap_or_default(),
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes a person, effective at once: every later check looks them
    /// up and refuses them. The last active security person cannot be
    /// revoked.
    ///
    /// # Errors
    /// The refusals of authorization (audited); [`Error::UnknownPerson`],
    /// [`Error::PersonRevoked`] (already revoked),
    /// [`Error::LastSecurityPerson`]; storage and audit errors.
    pub async fn revoke_person(
        &self,
        actor: &ActorId,
        person: &ActorId,
        reason: FreeText<MAX_REVOCATION_REASON_LEN>,
    ) -> Result<(), Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Security], None)
            .await?;
        let current = active_person(&mut tx, person).await?;
        if current.roles.contains(Role::Security)
            && !another_security_person(&mut tx, person).await?
        {
            return Err(Error::LastSecurityPerson(person.clone()));
        }
        tx.revoke_person(person, actor, &reason, now)
            .await
            .map_err(registry_error)?;
        let mut record = self.record(EventType::Revoke, actor, None);
        record.target = Some(FreeText::sanitized(&format!("person {person}"))?);
        record.detail = Some(FreeText::sanitized(reason.as_str())?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes a custodian entity: it receives no new share, its receipts
    /// no longer count, and its members may act for another entity.
    ///
    /// # Errors
    /// The refusals of authorization (audited); [`Error::UnknownEntity`],
    /// [`Error::EntityRevoked`] (already revoked); storage and audit
    /// errors.
    pub async fn revoke_entity(&self, actor: &ActorId, entity: &CustodianId) -> Result<(), Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Security], None)
            .await?;
        tx.revoke_entity(entity, actor, now)
            .await
            .map_err(registry_error)?;
        let mut record = self.record(EventType::Revoke, actor, None);
        record.target = Some(FreeText::sanitized(&format!("entity {entity}"))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl<S: Storage> BackupService<S> {
    /// The approver-set rule for `change` in its transaction: with
    /// `approval`, the request is consumed for exactly this change; without
    /// it, a change of the approver set is refused while the registry holds
    /// a quorum without `actor`. Returns what the audit record says of it:
    /// who approved, or that no quorum existed yet; `None` when the change
    /// leaves the approver set alone.
    async fn approver_set_gate(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        change: &ApproverSetChange<'_>,
        person: &ActorId,
        approval: Option<&ChangeApproval>,
        now: shardkeep_types::Timestamp,
    ) -> Result<Option<String>, Error> {
        if let Some(approval) = approval {
            let expected = change.approval_params(approval.ticket.clone(), approval.risk_note_hash);
            let deployment = self.config().deployment_id.clone();
            let (approvals, _) =
                consume_approvals(tx, &deployment, &approval.request, &expected, actor, now)
                    .await?;
            let approvers: Vec<String> = approvals
                .iter()
                .map(|approval| format!("{} ({})", approval.approver, approval.role))
                .collect();
            return Ok(Some(format!(
                "approver-set change: request {}, approved by {}",
                approval.request,
                approvers.join(", ")
            )));
        }
        if !change.changes_approvers() {
            return Ok(None);
        }
        if quorum_without(tx, actor).await? {
            return Err(Error::ApproverSetChangeUnapproved(person.clone()));
        }
        Ok(Some(
            "approver-set change without approvals: no quorum of other approvers registered yet"
                .to_owned(),
        ))
    }
}

/// The roles of a set, for audit details.
fn role_list(roles: RoleSet) -> String {
    let names: Vec<&str> = roles.iter().map(Role::name).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Which keys a person has, for audit details: the public keys themselves
/// (hex), so the audit log shows what was registered.
fn describe_keys(keys: &PersonKeys) -> String {
    let mut parts = Vec::new();
    if let Some(key) = &keys.receipt_key {
        parts.push(format!("receipt {}", hex::encode(key)));
    }
    if let Some(key) = &keys.approval_key {
        parts.push(format!("approval {}", hex::encode(key)));
    }
    if let Some(recipient) = &keys.age_recipient {
        parts.push(format!("age {recipient}"));
    }
    if let Some(fingerprint) = &keys.tls_fingerprint {
        parts.push(format!("tls {}", hex::encode(fingerprint)));
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;

    fn person() -> ActorId {
        ActorId::new("alice@example.com").unwrap()
    }

    fn key(seed: u8) -> [u8; 32] {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    }

    #[test]
    fn good_keys_pass() {
        let identity = age::x25519::Identity::generate();
        let keys = PersonKeys {
            receipt_key: Some(key(1)),
            approval_key: Some(key(2)),
            age_recipient: Some(identity.to_public().to_string()),
            tls_fingerprint: Some([9; 32]),
        };
        validate_person_keys(&person(), &keys).unwrap();
        validate_person_keys(&person(), &PersonKeys::default()).unwrap();
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_refused() {
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        // A non-canonical encoding: y = p (2^255 - 19), which is 0 mod p.
        let mut non_canonical = [0xff; 32];
        non_canonical[0] = 0xed;
        non_canonical[31] = 0x7f;
        for bad in [identity, non_canonical] {
            let keys = PersonKeys {
                receipt_key: Some(bad),
                ..PersonKeys::default()
            };
            assert!(matches!(
                validate_person_keys(&person(), &keys),
                Err(Error::WeakKey {
                    key: "receipt key",
                    ..
                })
            ));
            let keys = PersonKeys {
                approval_key: Some(bad),
                ..PersonKeys::default()
            };
            assert!(matches!(
                validate_person_keys(&person(), &keys),
                Err(Error::WeakKey {
                    key: "approval key",
                    ..
                })
            ));
        }
    }

    #[test]
    fn one_key_serves_one_purpose() {
        let keys = PersonKeys {
            receipt_key: Some(key(3)),
            approval_key: Some(key(3)),
            ..PersonKeys::default()
        };
        assert!(matches!(
            validate_person_keys(&person(), &keys),
            Err(Error::KeyReused(_))
        ));
    }

    #[test]
    fn age_recipients_must_be_canonical_x25519() {
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        for bad in [
            recipient.to_uppercase(),
            format!("{recipient} "),
            "age1".to_owned(),
            "ssh-ed25519 AAAA".to_owned(),
        ] {
            let keys = PersonKeys {
                age_recipient: Some(bad.clone()),
                ..PersonKeys::default()
            };
            assert!(
                matches!(
                    validate_person_keys(&person(), &keys),
                    Err(Error::InvalidAgeRecipient { .. })
                ),
                "{bad}"
            );
        }
    }
}
