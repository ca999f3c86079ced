//! Changes of the approver set under a quorum of current approvers.
//!
//! The approver set is every person holding an approving role (security,
//! business owner). Registering a person with such a role, or giving or
//! taking one away, changes who can approve recoveries, deletions, policy
//! changes and the approver set itself: it needs an approved
//! [`ApprovalOperation::ApproverSetChange`] request whose change hash is
//! [`ApproverSetChange::hash`] of exactly that change, asked by the
//! security person who makes it and approved by a security person and a
//! second security person or business owner, neither the requester.
//!
//! Until the registry holds a quorum without the requester (at least two
//! other persons with an approving role, one of them security), nobody
//! could approve: the set is built as at the bootstrap, each change
//! audited as made without a quorum. Revoked persons count here with the
//! roles they had, so revoking approvers never reopens that phase; a
//! deployment whose remaining approvers cannot form a quorum cannot change
//! its approver set again.

use sha2::{Digest, Sha256};
use shardkeep_storage::{ApprovalOperation, ApprovalRequestHash, MAX_PAGE_ROWS, RegistryStore};
use shardkeep_types::{ActorId, FreeText};

use crate::approval::{ApprovalParams, MAX_APPROVAL_TICKET_LEN};
use crate::registry::{PersonKeys, PersonRegistration, Role, RoleSet};

/// The domain tag of [`ApproverSetChange::hash`].
pub const APPROVER_SET_CHANGE_TAG: &[u8] = b"shardkeep/approver-set-change/v1";

/// The roles that approve operations.
const APPROVING_ROLES: [Role; 2] = [Role::Security, Role::BusinessOwner];

/// A change of the approver set, as approvers approve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApproverSetChange<'a> {
    /// A person registered with an approving role: every field of the
    /// registration, keys included, is approved.
    Register(&'a PersonRegistration),
    /// A registered person's roles replaced: `from` (their roles now) to
    /// `to`.
    Roles {
        /// The person.
        person: &'a ActorId,
        /// Their roles before the change.
        from: RoleSet,
        /// Their roles after it.
        to: RoleSet,
    },
}

/// An approved approver-set change request: its hash, and the ticket and
/// risk note hash it was asked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeApproval {
    /// The request.
    pub request: ApprovalRequestHash,
    /// Its change ticket.
    pub ticket: FreeText<MAX_APPROVAL_TICKET_LEN>,
    /// The hash of its risk note.
    pub risk_note_hash: [u8; 32],
}

impl ApproverSetChange<'_> {
    /// Whether the change gives or takes an approving role.
    #[must_use]
    pub fn changes_approvers(&self) -> bool {
        match self {
            Self::Register(registration) => approving(registration.roles),
            Self::Roles { from, to, .. } => APPROVING_ROLES
                .iter()
                .any(|role| from.contains(*role) != to.contains(*role)),
        }
    }

    /// `SHA-256(APPROVER_SET_CHANGE_TAG || encoding)`, the change hash of
    /// its approval request. The encoding: a kind byte (1 register, 2
    /// roles), the person id (u64 big-endian length, bytes), then for a
    /// registration the roles' bits, the display name (u64 length, bytes)
    /// and each key as absent (0) or present (1, u64 length, bytes) in the
    /// order receipt key, approval key, age recipient, TLS fingerprint;
    /// for roles, the bits before and after.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(APPROVER_SET_CHANGE_TAG);
        match self {
            Self::Register(registration) => {
                hash.update([1]);
                update_bytes(&mut hash, registration.id.as_str().as_bytes());
                hash.update([registration.roles.bits()]);
                update_bytes(&mut hash, registration.display_name.as_str().as_bytes());
                update_keys(&mut hash, &registration.keys);
            }
            Self::Roles { person, from, to } => {
                hash.update([2]);
                update_bytes(&mut hash, person.as_str().as_bytes());
                hash.update([from.bits(), to.bits()]);
            }
        }
        hash.finalize().into()
    }

    /// The approval request parameters of exactly this change.
    #[must_use]
    pub fn approval_params(
        &self,
        ticket: FreeText<MAX_APPROVAL_TICKET_LEN>,
        risk_note_hash: [u8; 32],
    ) -> ApprovalParams {
        ApprovalParams {
            operation: ApprovalOperation::ApproverSetChange,
            subject: None,
            target: None,
            allow_server_shares: false,
            slots: Vec::new(),
            change_hash: Some(self.hash()),
            ticket,
            risk_note_hash,
        }
    }
}

/// Whether `roles` holds an approving role.
fn approving(roles: RoleSet) -> bool {
    APPROVING_ROLES.iter().any(|role| roles.contains(*role))
}

/// Length-prefixed bytes (a u64 big-endian length: every length fits).
fn update_bytes(hash: &mut Sha256, bytes: &[u8]) {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    hash.update(len.to_be_bytes());
    hash.update(bytes);
}

fn update_keys(hash: &mut Sha256, keys: &PersonKeys) {
    let fields: [Option<&[u8]>; 4] = [
        keys.receipt_key.as_ref().map(<[u8; 32]>::as_slice),
        keys.approval_key.as_ref().map(<[u8; 32]>::as_slice),
        keys.age_recipient.as_ref().map(String::as_bytes),
        keys.tls_fingerprint.as_ref().map(<[u8; 32]>::as_slice),
    ];
    for field in fields {
        match field {
            None => hash.update([0]),
            Some(bytes) => {
                hash.update([1]);
                update_bytes(hash, bytes);
            }
        }
    }
}

/// Whether the registry (revoked persons included, with the roles they
/// had) holds a quorum for an approver-set change without `requester`:
/// two persons with an approving role, one of them security.
pub(crate) async fn quorum_without<T: RegistryStore + Send>(
    tx: &mut T,
    requester: &ActorId,
) -> Result<bool, crate::Error> {
    let (mut security, mut approvers) = (0usize, 0usize);
    let mut after: Option<ActorId> = None;
    loop {
        let page = tx.persons(after.as_ref(), MAX_PAGE_ROWS).await?;
        for person in page.iter().filter(|person| person.id != *requester) {
            if person.roles.contains(Role::Security) {
                security += 1;
            }
            if approving(person.roles) {
                approvers += 1;
            }
        }
        if security >= 1 && approvers >= 2 {
            return Ok(true);
        }
        match page.last() {
            Some(last) if page.len() == MAX_PAGE_ROWS as usize => after = Some(last.id.clone()),
            _ => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(roles: &[Role], approval_key: u8) -> PersonRegistration {
        PersonRegistration {
            id: ActorId::new("sec-9").unwrap(),
            display_name: FreeText::new("sec 9").unwrap(),
            roles: roles.iter().copied().collect(),
            keys: PersonKeys {
                approval_key: Some([approval_key; 32]),
                ..PersonKeys::default()
            },
        }
    }

    #[test]
    fn the_hash_binds_every_field_of_the_change() {
        let base = registration(&[Role::Security], 1);
        let hash = ApproverSetChange::Register(&base).hash();
        let other_key = registration(&[Role::Security], 2);
        let other_roles = registration(&[Role::BusinessOwner], 1);
        let mut other_id = base.clone();
        other_id.id = ActorId::new("sec-8").unwrap();
        for other in [&other_key, &other_roles, &other_id] {
            assert_ne!(ApproverSetChange::Register(other).hash(), hash);
        }
        let person = ActorId::new("sec-9").unwrap();
        let grant = ApproverSetChange::Roles {
            person: &person,
            from: RoleSet::EMPTY,
            to: [Role::Security].into_iter().collect(),
        };
        let revoke = ApproverSetChange::Roles {
            person: &person,
            from: [Role::Security].into_iter().collect(),
            to: RoleSet::EMPTY,
        };
        assert_ne!(grant.hash(), revoke.hash());
        assert_ne!(grant.hash(), hash);
    }

    #[test]
    fn only_approving_roles_change_the_approver_set() {
        let person = ActorId::new("ops-9").unwrap();
        let operator: RoleSet = [Role::Operator].into_iter().collect();
        let auditor: RoleSet = [Role::Auditor, Role::Operator].into_iter().collect();
        let owner: RoleSet = [Role::BusinessOwner].into_iter().collect();
        let change = |from, to| ApproverSetChange::Roles {
            person: &person,
            from,
            to,
        };
        assert!(!change(operator, auditor).changes_approvers());
        assert!(change(operator, owner).changes_approvers());
        assert!(change(owner, operator).changes_approvers());
        assert!(
            !ApproverSetChange::Register(&registration(&[Role::Custodian], 3)).changes_approvers()
        );
        assert!(
            ApproverSetChange::Register(&registration(&[Role::BusinessOwner], 3))
                .changes_approvers()
        );
    }
}
