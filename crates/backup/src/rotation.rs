//! Rotation (procedure step 5): a node's share gets a new key version and
//! the old one retires.
//!
//! [`BackupService::rotate`] makes the new version exactly as generate does
//! (split, seal, hand out the containers for delivery and confirmation), in
//! one transaction that first moves the node's active version to
//! `retiring` with a cooldown of `ServiceConfig::cooldown` from now: the
//! database keeps one active version per node, and a failure anywhere
//! leaves the old version active and nothing of the new one. A retiring
//! version stays recoverable, by recovery and drill alike.
//!
//! [`BackupService::retire_due`] retires a retiring version once **both**
//! its cooldown has ended and the node's new version has a complete
//! delivery certificate (every custodian confirmed) for at least a cooldown
//! too: the old shares are never given up before the new ones are all in
//! custodians' hands and have been for the full cooldown. A retired
//! version is refused by recovery and drills with
//! [`Error::VersionRetired`], which names the node's current version, and
//! its server-held shares are soft-deleted with a cooldown before the hard
//! delete (procedure step 7).
//!
//! Two kinds of rotation, told apart by the node's public share `Xi·G`
//! (public: compared plainly): after a tss-lib **reshare** the node holds a
//! new `Xi`; a **re-split** splits the same `Xi` again. A re-split does not
//! answer a custodian compromise: the old external shares still recover
//! the same `Xi`. Only a reshare does.

use core::fmt;

use shardkeep_audit::EventType;
use shardkeep_keydata::LocalPartySaveData;
use shardkeep_storage::{
    KeyVersionState, KeyVersionStore, MAX_PAGE_ROWS, SealedShareStore, SlotDeletionStore,
    SlotFilter, SlotState, StatusFilter, Storage, Transaction,
};
use shardkeep_types::{ActorId, FreeText, NodeVersion, Timestamp};

use crate::error::Error;
use crate::generate::{GenerateRequest, Generated};
use crate::reference::VerifiedSplit;
use crate::registry::Role;
use crate::service::BackupService;

/// What changed in the node's share since its active version was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationKind {
    /// A tss-lib reshare gave the node a new secret share `Xi`: the old
    /// shares, wherever they are, no longer recover the node's share.
    Reshare,
    /// The same `Xi` is split again (a custodian or the policy changed):
    /// the old external shares still recover it until their custodians
    /// destroy them.
    Resplit,
}

impl RotationKind {
    /// The kind's name, for audit records and errors.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Reshare => "reshare",
            Self::Resplit => "re-split",
        }
    }
}

impl fmt::Display for RotationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rotation to make: its kind, and the generate request of the new
/// version (the node's current save data, custodians, armor).
#[derive(Debug)]
pub struct RotateRequest<'a> {
    /// A reshare or a re-split.
    pub kind: RotationKind,
    /// The new version's generate request; its key and node name the node
    /// whose active version is replaced.
    pub generate: GenerateRequest<'a>,
}

/// What a rotation made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The kind.
    pub kind: RotationKind,
    /// The version that was active and is now retiring.
    pub previous: NodeVersion,
    /// When its cooldown ends at the earliest (it retires only once the new
    /// version's delivery certificate has also been complete for a
    /// cooldown).
    pub cooldown_until: Timestamp,
    /// The new, active version and its containers for delivery.
    pub generated: Generated,
}

/// The rotation's state while generate runs: filled in by
/// [`BackupService::begin_rotation`].
#[derive(Debug)]
pub(crate) struct Rotation {
    kind: RotationKind,
    begun: Option<(NodeVersion, Timestamp)>,
}

impl<S: Storage> BackupService<S> {
    /// Rotates a node's share (an operator does it): see the module
    /// documentation. The new version is delivered and confirmed as a
    /// generated one ([`deliver`](Self::deliver),
    /// [`confirm`](Self::confirm)); the old one retires through
    /// [`retire_due`](Self::retire_due).
    ///
    /// # Errors
    /// The errors of [`generate`](Self::generate), except
    /// [`Error::ActiveVersionExists`]; [`Error::NothingToRotate`] when the
    /// node has no active version; [`Error::RotationInProgress`] while an
    /// earlier version of the node is still retiring;
    /// [`Error::RotationKindMismatch`] when the save data's `Xi` changed for
    /// a re-split or did not for a reshare; [`Error::SplitReferenceInvalid`]
    /// for the active version's reference.
    pub async fn rotate(
        &self,
        actor: &ActorId,
        request: RotateRequest<'_>,
    ) -> Result<Rotated, Error> {
        let mut rotation = Rotation {
            kind: request.kind,
            begun: None,
        };
        let generated = self
            .generate_version(actor, request.generate, Some(&mut rotation))
            .await?;
        let (previous, cooldown_until) = rotation.begun.ok_or(Error::NothingToRotate {
            key_id: generated.version.key_id.clone(),
            node_id: generated.version.node_id.clone(),
        })?;
        Ok(Rotated {
            kind: rotation.kind,
            previous,
            cooldown_until,
            generated,
        })
    }

    /// In generate's transaction, before the new version is planned: the
    /// node's active version (there must be one, and no earlier rotation
    /// still retiring) is checked against the kind and starts retiring;
    /// audited (`rotate`).
    pub(crate) async fn begin_rotation(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        request: &GenerateRequest<'_>,
        data: &LocalPartySaveData,
        rotation: &mut Rotation,
        now: Timestamp,
    ) -> Result<(), Error> {
        let versions = tx.key_versions(&request.key_id, &request.node_id).await?;
        if let Some(retiring) = versions
            .iter()
            .find(|record| matches!(record.state, KeyVersionState::Retiring { .. }))
        {
            return Err(Error::RotationInProgress(retiring.version.clone()));
        }
        let Some(active) = versions
            .into_iter()
            .find(|record| record.state == KeyVersionState::Active)
        else {
            return Err(Error::NothingToRotate {
                key_id: request.key_id.clone(),
                node_id: request.node_id.clone(),
            });
        };
        let previous = active.version;
        let reference = tx.split_reference(&previous).await?;
        let split = VerifiedSplit::verify(&previous, &reference, self.trusted_signers())?;
        // Public points (Xi·G): a plain comparison.
        let same_xi = split.binding().public_share() == data.public_share()?.as_slice();
        let fits = match rotation.kind {
            RotationKind::Reshare => !same_xi,
            RotationKind::Resplit => same_xi,
        };
        if !fits {
            return Err(Error::RotationKindMismatch {
                version: previous,
                kind: rotation.kind,
                same_xi,
            });
        }
        let cooldown_until =
            now.checked_add(self.config().cooldown)
                .ok_or(Error::InvalidConfig {
                    setting: "cooldown",
                    why: "reaches past the last representable time",
                })?;
        tx.begin_key_retirement(&previous, now, cooldown_until)
            .await?;
        let mut record = self.record(EventType::Rotate, actor, Some(&previous));
        record.detail = Some(FreeText::sanitized(&format!(
            "{}: retiring, cooldown until {cooldown_until}; split {} replaced by the next version",
            rotation.kind,
            hex::encode(split.split_id()),
        ))?);
        Self::audit(tx, &record).await?;
        rotation.begun = Some((previous, cooldown_until));
        Ok(())
    }

    /// Retires every retiring version that is due (an operator does it, or
    /// the service's own actor on a timer): its cooldown has ended, and the
    /// node's active version has had a complete delivery certificate for at
    /// least the configured cooldown. Each retirement is audited
    /// (`rotate`); all commit together. Returns the versions retired.
    ///
    /// # Errors
    /// The refusals of authorization (audited); storage and audit errors.
    pub async fn retire_due(&self, actor: &ActorId) -> Result<Vec<NodeVersion>, Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator], None)
            .await?;
        let mut retired = Vec::new();
        for (version, cooldown_until) in retiring_versions(&mut tx).await? {
            if now < cooldown_until {
                continue;
            }
            let Some((successor, certified_at)) = certified_successor(&mut tx, &version).await?
            else {
                continue;
            };
            let settled = certified_at
                .checked_add(self.config().cooldown)
                .is_some_and(|until| until <= now);
            if !settled {
                continue;
            }
            tx.retire_key_version(&version, now).await?;
            let mut record = self.record(EventType::Rotate, actor, Some(&version));
            record.detail = Some(FreeText::sanitized(&format!(
                "retired: cooldown ended {cooldown_until}; version {} certified {certified_at}",
                successor.version
            ))?);
            Self::audit(&mut tx, &record).await?;
            self.soft_delete_server_shares(&mut tx, actor, &version, now)
                .await?;
            retired.push(version);
        }
        tx.commit().await?;
        Ok(retired)
    }
}

impl<S: Storage> BackupService<S> {
    /// The next step of a retired version: its server-held shares are
    /// soft-deleted, each with a cooldown of `ServiceConfig::cooldown`
    /// before the hard delete (procedure step 7 destroys them and their
    /// slot KEKs); each is audited (`soft-delete`).
    async fn soft_delete_server_shares(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        version: &NodeVersion,
        now: Timestamp,
    ) -> Result<(), Error> {
        let cooldown_until =
            now.checked_add(self.config().cooldown)
                .ok_or(Error::InvalidConfig {
                    setting: "cooldown",
                    why: "reaches past the last representable time",
                })?;
        let slots = tx
            .list_slots(&SlotFilter {
                key_id: Some(version.key_id.clone()),
                node_id: Some(version.node_id.clone()),
                version: Some(version.version),
            })
            .await?;
        for summary in slots {
            if summary.state != SlotState::Active {
                continue;
            }
            tx.soft_delete_slot(&summary.slot, actor, now, cooldown_until)
                .await?;
            let mut record = self.record(EventType::SoftDelete, actor, Some(version));
            record.share_index = Some(summary.slot.index);
            record.envelope_id = Some(summary.envelope_id);
            record.detail = Some(FreeText::sanitized(&format!(
                "version retired: server share soft-deleted, hard delete not before {cooldown_until}"
            ))?);
            Self::audit(tx, &record).await?;
        }
        Ok(())
    }
}

/// Whether the shares of `version` may be used by a recovery or a drill:
/// `None` for an active or retiring version, the refusal
/// ([`Error::VersionRetired`], naming the node's current version) for a
/// retired one.
///
/// # Errors
/// Storage errors ([`Error::Storage`] with `KeyVersionNotFound` for an
/// unknown version).
pub(crate) async fn unrecoverable<T: KeyVersionStore + Send>(
    tx: &mut T,
    version: &NodeVersion,
) -> Result<Option<Error>, Error> {
    match tx.key_version(version).await?.state {
        KeyVersionState::Active | KeyVersionState::Retiring { .. } => Ok(None),
        KeyVersionState::Retired { .. } => {
            let current = tx
                .key_versions(&version.key_id, &version.node_id)
                .await?
                .into_iter()
                .find(|record| record.state == KeyVersionState::Active)
                .map(|record| record.version);
            Ok(Some(Error::VersionRetired {
                version: version.clone(),
                current,
            }))
        }
    }
}

/// Every retiring version with the end of its cooldown, in key, node and
/// version order.
async fn retiring_versions<T: Transaction>(
    tx: &mut T,
) -> Result<Vec<(NodeVersion, Timestamp)>, Error> {
    let filter = StatusFilter::default();
    let mut after: Option<NodeVersion> = None;
    let mut out = Vec::new();
    loop {
        let page = tx
            .status_page(&filter, after.as_ref(), MAX_PAGE_ROWS)
            .await?;
        for row in &page {
            if let KeyVersionState::Retiring { cooldown_until, .. } = row.state {
                out.push((row.version.clone(), cooldown_until));
            }
        }
        match page.last() {
            Some(last) if page.len() == MAX_PAGE_ROWS as usize => {
                after = Some(last.version.clone());
            }
            _ => return Ok(out),
        }
    }
}

/// The node's active version, newer than `version`, with the time its
/// delivery certificate became complete (its last confirmation); `None`
/// while any of its external shares is unconfirmed.
async fn certified_successor<T: Transaction>(
    tx: &mut T,
    version: &NodeVersion,
) -> Result<Option<(NodeVersion, Timestamp)>, Error> {
    let Some(successor) = tx
        .key_versions(&version.key_id, &version.node_id)
        .await?
        .into_iter()
        .find(|record| record.state == KeyVersionState::Active && record.version > *version)
    else {
        return Ok(None);
    };
    let mut certified_at: Option<Timestamp> = None;
    for entry in tx.custody_map(&successor.version).await? {
        let Some(confirmed_at) = entry.confirmed_at else {
            return Ok(None);
        };
        certified_at = Some(certified_at.map_or(confirmed_at, |at| at.max(confirmed_at)));
    }
    // A version without external shares is certified at its creation.
    Ok(Some((
        successor.version,
        certified_at.unwrap_or(successor.created_at),
    )))
}
