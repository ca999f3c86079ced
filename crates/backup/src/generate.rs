//! Generate (procedure step 1): a new key version of one node's share,
//! split, sealed and handed out.
//!
//! In one write transaction: the operator is authorized; the policy in
//! force, the group (registered on the node's first generate), the node's
//! versions, the custodians and the exposure rule are checked; `Xi` is
//! split with Feldman commitments; the protocol archive is sealed; every
//! envelope signs the binding; the server shares are sealed under slot KEKs
//! created now and pinned in storage; the external shares go into age
//! containers for their custodians' registered recipients; the key version,
//! its signed split reference, the sealed shares, the KEK pins, the custody
//! map and one `generate` audit record per share are written; commit. The
//! containers are returned for delivery only after the commit: if anything
//! fails they belong to no version, and the KEKs just created are destroyed
//! again with their pins.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use shardkeep_audit::EventType;
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{
    Armor, Binding, ContainerRecipients, EncodedEnvelope, EnvelopeParams, VerifiedEnvelope,
    seal_container,
};
use shardkeep_keydata::{KeystoreCodec, LocalPartySaveData, SealedArchive, load_keystore};
use shardkeep_kms::KekPin;
use shardkeep_sss_core::{Curve, CurveId, Ed25519, Secp256k1, split};
use shardkeep_storage::{
    CustodyEntry, CustodyStore, GroupRecord, GroupStore, KeyVersionState, KeyVersionStore,
    SealedShare, SealedShareStore, SlotKekRecord, SlotKekStore, SplitReference, Storage,
    Transaction,
};
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, KekId, KeyId, NodeId, NodeVersion, ShareIndex,
    ShareSlot, Threshold, Timestamp,
};

use crate::error::Error;
use crate::policy::{CurrentPolicy, NodeCustody, check_auditable, check_exposure};
use crate::reference::{SplitBinding, container_hash};
use crate::registry::{Role, active_entity, active_person, parse_age_recipient};
use crate::service::BackupService;

/// Where generate reads the node's save data from.
#[derive(Clone, Copy)]
pub enum SaveDataSource<'a> {
    /// The node's keystore file (`.keydata.enc`), through its codec.
    Keystore {
        /// The file.
        path: &'a Path,
        /// The key, node and version the file was written for (the codec
        /// refuses a file of another).
        written_for: &'a NodeVersion,
        /// The node's keystore codec.
        codec: &'a (dyn KeystoreCodec + Sync),
    },
    /// Save data the caller already loaded.
    Loaded(&'a LocalPartySaveData),
}

impl fmt::Debug for SaveDataSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keystore {
                path, written_for, ..
            } => f
                .debug_struct("SaveDataSource::Keystore")
                .field("path", path)
                .field("written_for", written_for)
                .finish_non_exhaustive(),
            Self::Loaded(data) => f.debug_tuple("SaveDataSource::Loaded").field(data).finish(),
        }
    }
}

/// The tss-lib parameters of the group key, which the save data does not
/// record: its signing threshold (the polynomial degree; `degree + 1`
/// parties sign) and its party count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TssGroup {
    /// tss-lib's `threshold`: the polynomial degree.
    pub tss_degree: u16,
    /// How many parties hold a share of the group key.
    pub parties: u16,
}

/// Who receives one external share: a registered custodian entity and the
/// member person whose age recipient the container is sealed to and whose
/// receipt key signs for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalCustodian {
    /// The custodian entity.
    pub entity: CustodianId,
    /// The person acting for it.
    pub person: ActorId,
}

/// What to generate.
#[derive(Debug)]
pub struct GenerateRequest<'a> {
    /// The group key.
    pub key_id: KeyId,
    /// The node whose share is backed up.
    pub node_id: NodeId,
    /// Where the node's save data comes from.
    pub save_data: SaveDataSource<'a>,
    /// The group's tss-lib parameters (registered on the first generate of
    /// the group key, checked on every later one).
    pub group: TssGroup,
    /// One custodian per external share, in share index order (the first
    /// gets index `server_shares + 1`).
    pub custodians: Vec<ExternalCustodian>,
    /// Binary or ASCII-armored containers.
    pub armor: Armor,
}

/// A server-held share of a generated version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerShare {
    /// Its index.
    pub index: ShareIndex,
    /// Its envelope id.
    pub envelope_id: EnvelopeId,
    /// Its slot's own KEK.
    pub kek_id: KekId,
}

/// An external share's custodian container, ready for delivery.
#[derive(Clone, PartialEq, Eq)]
pub struct CustodianContainer {
    /// The share index.
    pub index: ShareIndex,
    /// The custodian entity.
    pub custodian: CustodianId,
    /// The person it is sealed to.
    pub person: ActorId,
    /// The age recipient it is sealed to.
    pub recipient: String,
    /// The envelope inside.
    pub envelope_id: EnvelopeId,
    /// [`container_hash`](crate::container_hash) of `container`.
    pub container_hash: [u8; 32],
    /// The age file (binary or armored, as asked).
    pub container: Vec<u8>,
}

impl fmt::Debug for CustodianContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustodianContainer")
            .field("index", &self.index)
            .field("custodian", &self.custodian)
            .field("person", &self.person)
            .field("recipient", &self.recipient)
            .field("envelope_id", &self.envelope_id)
            .field("container_hash", &hex::encode(self.container_hash))
            .field("container_len", &self.container.len())
            .finish()
    }
}

/// What generate made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The new, active key version.
    pub version: NodeVersion,
    /// The split id (a hash of curve, t, n and the commitments).
    pub split_id: [u8; 32],
    /// t of n.
    pub threshold: Threshold,
    /// The hash of the policy it was made under.
    pub policy_hash: [u8; 32],
    /// The server-held shares.
    pub server_shares: Vec<ServerShare>,
    /// The custodian containers, by index, for delivery.
    pub containers: Vec<CustodianContainer>,
}

/// A save data read from the keystore or borrowed from the caller.
enum SaveData<'a> {
    Owned(Box<LocalPartySaveData>),
    Borrowed(&'a LocalPartySaveData),
}

impl SaveData<'_> {
    fn get(&self) -> &LocalPartySaveData {
        match self {
            Self::Owned(data) => data,
            Self::Borrowed(data) => data,
        }
    }
}

impl<'a> SaveDataSource<'a> {
    fn load(self) -> Result<SaveData<'a>, Error> {
        Ok(match self {
            Self::Keystore {
                path,
                written_for,
                codec,
            } => SaveData::Owned(Box::new(load_keystore(path, written_for, codec)?)),
            Self::Loaded(data) => SaveData::Borrowed(data),
        })
    }
}

/// One external custodian, resolved from the registry at use time.
struct Resolved {
    index: ShareIndex,
    entity: CustodianId,
    person: ActorId,
    recipient_text: String,
    recipient: age::x25519::Recipient,
}

/// Everything checked before anything is made.
struct Plan {
    version: NodeVersion,
    policy: CurrentPolicy,
    group: GroupRecord,
    register_group: bool,
    custodians: Vec<Resolved>,
    armor: Armor,
}

/// A sealed server share, made.
struct BuiltServerShare {
    slot: ShareSlot,
    envelope: EncodedEnvelope,
    signature: [u8; 64],
    pin: KekPin,
}

/// A custodian container, made.
struct BuiltContainer {
    slot: ShareSlot,
    entity: CustodianId,
    person: ActorId,
    recipient: String,
    envelope_id: EnvelopeId,
    signature: [u8; 64],
    container: Vec<u8>,
    container_hash: [u8; 32],
}

/// Everything made, ready to store.
struct Built {
    reference: SplitReference,
    threshold: Threshold,
    server: Vec<BuiltServerShare>,
    external: Vec<BuiltContainer>,
}

impl<S: Storage> BackupService<S> {
    /// Backs up one node's share (an operator does it): see the module
    /// documentation for the steps. Returns the new version and the
    /// containers to deliver.
    ///
    /// # Errors
    /// The refusals of authorization (audited); [`Error::Keydata`] when the
    /// keystore does not load; [`Error::NoPolicy`],
    /// [`Error::PolicyCorrupt`]; [`Error::InvalidGroup`],
    /// [`Error::GroupMismatch`]; [`Error::ActiveVersionExists`];
    /// [`Error::CustodianCount`], [`Error::DuplicateCustodian`],
    /// [`Error::DuplicateCustodianPerson`], [`Error::UnknownEntity`],
    /// [`Error::EntityRevoked`], [`Error::NotEntityMember`],
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingRole`], [`Error::MissingPersonKey`],
    /// [`Error::InvalidAgeRecipient`]; [`Error::Exposure`];
    /// [`Error::PublicShareMismatch`]; [`Error::Kms`], [`Error::Envelope`],
    /// [`Error::Sharing`], storage and audit errors; [`Error::KekCleanup`]
    /// when a failure leaves KEKs it created behind.
    pub async fn generate(
        &self,
        actor: &ActorId,
        request: GenerateRequest<'_>,
    ) -> Result<Generated, Error> {
        self.generate_version(actor, request, None).await
    }

    /// [`generate`](Self::generate), and for a rotation, first in the same
    /// transaction: the node's active version starts retiring
    /// ([`crate::rotation`]), so the new one can be the node's one active
    /// version; a failure anywhere leaves the old version active.
    pub(crate) async fn generate_version(
        &self,
        actor: &ActorId,
        request: GenerateRequest<'_>,
        rotation: Option<&mut crate::rotation::Rotation>,
    ) -> Result<Generated, Error> {
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator], None)
            .await?;
        let data = request.save_data.load()?;
        if let Some(rotation) = rotation {
            self.begin_rotation(&mut tx, actor, &request, data.get(), rotation, now)
                .await?;
        }
        let plan = make_plan(&mut tx, &request, data.get(), now).await?;

        // From the first KEK created on, a failure destroys the KEKs made.
        let mut created = Vec::new();
        let built = match self.build(&plan, data.get(), now, &mut created) {
            Ok(built) => built,
            Err(error) => return Err(self.destroy_created_keks(created, error)),
        };
        if let Err(error) = self.store(&mut tx, actor, &plan, &built, now).await {
            drop(tx);
            return Err(self.destroy_created_keks(created, error));
        }
        match tx.commit().await {
            Ok(()) => Ok(generated(&plan, built)),
            // A failed commit may still have committed (its acknowledgement
            // lost on the way back): destroying the KEKs then would shred
            // the stored shares. Look before destroying.
            Err(error) => match self.committed(&plan.version, &built.reference).await {
                Ok(true) => Ok(generated(&plan, built)),
                Ok(false) => Err(self.destroy_created_keks(created, error.into())),
                Err(_) => Err(Error::KekCleanup {
                    source: Box::new(error.into()),
                    undestroyed: created.into_iter().map(|(_, pin)| pin.kek_id).collect(),
                }),
            },
        }
    }

    /// Whether `version` was stored with exactly `reference` (a commit
    /// whose outcome is unknown).
    async fn committed(
        &self,
        version: &NodeVersion,
        reference: &SplitReference,
    ) -> Result<bool, Error> {
        let mut tx = self.begin_read_only().await?;
        match tx.split_reference(version).await {
            // Public values: a plain comparison.
            Ok(stored) => Ok(stored == *reference),
            Err(shardkeep_storage::Error::KeyVersionNotFound(_)) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Splits, seals and packs; creates the slot KEKs (recorded in
    /// `created` as they are made, so the caller can destroy them).
    fn build(
        &self,
        plan: &Plan,
        data: &LocalPartySaveData,
        now: Timestamp,
        created: &mut Vec<(ShareSlot, KekPin)>,
    ) -> Result<Built, Error> {
        let archive = data.seal_archive(&plan.version)?;
        let binding = data.binding(&archive)?;
        match data.curve() {
            CurveId::Secp256k1 => {
                self.build_on::<Secp256k1>(plan, data, &archive, &binding, now, created)
            }
            CurveId::Ed25519 => {
                self.build_on::<Ed25519>(plan, data, &archive, &binding, now, created)
            }
        }
    }

    fn build_on<C: Curve>(
        &self,
        plan: &Plan,
        data: &LocalPartySaveData,
        archive: &SealedArchive,
        binding: &Binding,
        now: Timestamp,
        created: &mut Vec<(ShareSlot, KekPin)>,
    ) -> Result<Built, Error> {
        let policy = &plan.policy.policy;
        let threshold = policy.threshold();
        let xi = data.secret_share::<C>()?;
        // Public points: a plain comparison.
        let mut public_share = Vec::with_capacity(C::POINT_LEN);
        C::encode_point(&xi.public_point(), &mut public_share);
        if public_share != data.public_share()? {
            return Err(Error::PublicShareMismatch(plan.version.node_id.clone()));
        }
        let split = self.with_rng(|rng| split(&xi, threshold, rng))?;
        drop(xi);
        let (commitments, shares) = split.into_parts();
        let split_id = *commitments.split_id().as_bytes();
        let params = EnvelopeParams {
            node_version: plan.version.clone(),
            created_at: now,
            binding: binding.clone(),
        };
        let signer = self.envelope_signer();
        let mut server = Vec::new();
        let mut external = Vec::new();
        for share in &shares {
            let index = share.index();
            let slot = plan.version.slot(index);
            if policy.is_server_index(index) {
                let (kek, pin) = self.keks().create_slot_kek(&slot)?;
                created.push((slot.clone(), pin.clone()));
                let envelope = self
                    .with_rng(|rng| params.seal(&commitments, share, signer, kek.as_ref(), rng))?;
                let signature = self.self_check(&envelope, &slot, binding)?;
                server.push(BuiltServerShare {
                    slot,
                    envelope,
                    signature,
                    pin,
                });
            } else {
                let custodian = plan
                    .custodians
                    .iter()
                    .find(|custodian| custodian.index == index)
                    .ok_or(Error::CustodianCount {
                        expected: policy.external_shares(),
                        got: plan.custodians.len(),
                    })?;
                let envelope = params.plain(&commitments, share, signer)?;
                let signature = self.self_check(&envelope, &slot, binding)?;
                let recipients = ContainerRecipients::x25519(vec![custodian.recipient.clone()])?;
                let container =
                    seal_container(&envelope, archive.as_bytes(), &recipients, plan.armor)?;
                external.push(BuiltContainer {
                    slot,
                    entity: custodian.entity.clone(),
                    person: custodian.person.clone(),
                    recipient: custodian.recipient_text.clone(),
                    envelope_id: envelope.id(),
                    signature,
                    container_hash: container_hash(&container),
                    container,
                });
            }
        }
        drop(shares);

        let reference = SplitReference {
            curve: C::ID.to_u8(),
            split_id,
            commitments: commitments.to_bytes(),
            binding: SplitBinding {
                version: plan.version.clone(),
                threshold,
                server_shares: policy.server_shares(),
                split_id,
                policy_hash: plan.policy.hash,
                binding: binding.clone(),
            }
            .sign(signer)?,
            policy_hash: plan.policy.hash,
            server_shares: policy.server_shares(),
        };
        Ok(Built {
            reference,
            threshold,
            server,
            external,
        })
    }

    /// Reads an envelope just made back as any later reader will (trusted
    /// signer, share rules, binding to its slot), before it is stored or
    /// handed out; returns its signature for the audit record.
    fn self_check(
        &self,
        envelope: &EncodedEnvelope,
        slot: &ShareSlot,
        binding: &Binding,
    ) -> Result<[u8; 64], Error> {
        let verified = VerifiedEnvelope::decode_verify_bound(
            envelope.as_bytes(),
            self.trusted_signers(),
            slot,
            binding,
        )?;
        Ok(*verified.signature())
    }

    /// Writes the version, its reference, the server shares and their KEK
    /// pins, the custody map and the audit records.
    async fn store(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        plan: &Plan,
        built: &Built,
        now: Timestamp,
    ) -> Result<(), Error> {
        if plan.register_group {
            tx.register_group(&plan.group).await?;
        }
        tx.create_key_version(&plan.version, built.threshold, &built.reference, actor, now)
            .await
            .map_err(|error| match error {
                shardkeep_storage::Error::ActiveVersionExists { .. } => {
                    Error::ActiveVersionExists(plan.version.clone())
                }
                other => other.into(),
            })?;
        for share in &built.server {
            tx.record_slot_kek(&SlotKekRecord {
                slot: share.slot.clone(),
                kek_id: share.pin.kek_id.clone(),
                fingerprint: share.pin.fingerprint,
                created_at: now,
                destroyed_at: None,
            })
            .await?;
            tx.store_sealed_share(&SealedShare {
                slot: share.slot.clone(),
                envelope: share.envelope.as_bytes().to_vec(),
                stored_at: now,
            })
            .await?;
        }
        for container in &built.external {
            tx.assign_custodian(&CustodyEntry {
                slot: container.slot.clone(),
                custodian: container.entity.clone(),
                person: container.person.clone(),
                recipient: container.recipient.clone(),
                envelope_id: container.envelope_id,
                container_hash: container.container_hash,
                updated_at: now,
                confirmed_at: None,
            })
            .await?;
        }

        let split = hex::encode(built.reference.split_id);
        let policy = hex::encode(plan.policy.hash);
        for share in &built.server {
            let mut record = self.record(EventType::Generate, actor, Some(&plan.version));
            record.share_index = Some(share.slot.index);
            record.envelope_id = Some(*share.envelope.id().as_bytes());
            record.signature = Some(share.signature);
            record.threshold = Some(built.threshold);
            record.target = Some(FreeText::sanitized("server")?);
            record.detail = Some(FreeText::sanitized(&format!(
                "split {split}; policy {policy}; sealed under slot KEK {} (fingerprint {})",
                share.pin.kek_id,
                hex::encode(share.pin.fingerprint)
            ))?);
            Self::audit(tx, &record).await?;
        }
        for container in &built.external {
            let mut record = self.record(EventType::Generate, actor, Some(&plan.version));
            record.share_index = Some(container.slot.index);
            record.envelope_id = Some(*container.envelope_id.as_bytes());
            record.signature = Some(container.signature);
            record.threshold = Some(built.threshold);
            record.target = Some(FreeText::sanitized(container.entity.as_str())?);
            record.detail = Some(FreeText::sanitized(&format!(
                "split {split}; policy {policy}; container for {} (age {}), container hash {}",
                container.person,
                container.recipient,
                hex::encode(container.container_hash)
            ))?);
            Self::audit(tx, &record).await?;
        }
        Ok(())
    }

    /// Destroys the KEKs a failed generate created. Returns `error` when
    /// all are gone, or [`Error::KekCleanup`] naming those left behind.
    fn destroy_created_keks(&self, created: Vec<(ShareSlot, KekPin)>, error: Error) -> Error {
        let undestroyed: Vec<KekId> = created
            .into_iter()
            .filter(|(slot, pin)| self.keks().destroy_slot_kek(slot, pin).is_err())
            .map(|(_, pin)| pin.kek_id)
            .collect();
        if undestroyed.is_empty() {
            error
        } else {
            Error::KekCleanup {
                source: Box::new(error),
                undestroyed,
            }
        }
    }
}

/// The checks before anything is made: policy, group, versions,
/// custodians, exposure.
async fn make_plan<T: Transaction>(
    tx: &mut T,
    request: &GenerateRequest<'_>,
    data: &LocalPartySaveData,
    now: Timestamp,
) -> Result<Plan, Error> {
    let policy = match tx.current_policy().await? {
        Some(record) => CurrentPolicy::from_record(record)?,
        None => return Err(Error::NoPolicy),
    };
    check_auditable(&policy.policy)?;
    let (group, register_group) = check_group(tx, request, data, now).await?;

    let versions = tx.key_versions(&request.key_id, &request.node_id).await?;
    if let Some(active) = versions
        .iter()
        .find(|record| record.state == KeyVersionState::Active)
    {
        return Err(Error::ActiveVersionExists(active.version.clone()));
    }
    let version = NodeVersion {
        key_id: request.key_id.clone(),
        node_id: request.node_id.clone(),
        version: tx
            .next_key_version(&request.key_id, &request.node_id)
            .await?,
    };

    let custodians = resolve_custodians(tx, &policy, &request.custodians).await?;
    check_group_exposure(tx, &group, &version, &policy, &custodians).await?;
    Ok(Plan {
        version,
        policy,
        group,
        register_group,
        custodians,
        armor: request.armor,
    })
}

/// The group as registered, or as it will be registered now; checked
/// against the request and the save data.
async fn check_group<T: Transaction>(
    tx: &mut T,
    request: &GenerateRequest<'_>,
    data: &LocalPartySaveData,
    now: Timestamp,
) -> Result<(GroupRecord, bool), Error> {
    let TssGroup {
        tss_degree,
        parties,
    } = request.group;
    if tss_degree == 0 || tss_degree >= parties || usize::from(parties) != data.party_count() {
        return Err(Error::InvalidGroup {
            key_id: request.key_id.clone(),
            tss_degree,
            parties,
            save_data_parties: data.party_count(),
        });
    }
    let given = GroupRecord {
        key_id: request.key_id.clone(),
        curve: data.curve().to_u8(),
        group_public_key: data.group_public_key(),
        tss_degree,
        parties,
        registered_at: now,
    };
    match tx.group(&request.key_id).await {
        Ok(stored) => {
            let mismatch = |field| Error::GroupMismatch {
                key_id: request.key_id.clone(),
                field,
            };
            // Public values: plain comparisons.
            if stored.curve != given.curve {
                return Err(mismatch("curve"));
            }
            if stored.group_public_key != given.group_public_key {
                return Err(mismatch("group public key"));
            }
            if stored.tss_degree != given.tss_degree {
                return Err(mismatch("tss-lib degree"));
            }
            if stored.parties != given.parties {
                return Err(mismatch("party count"));
            }
            Ok((stored, false))
        }
        Err(shardkeep_storage::Error::GroupNotFound(_)) => Ok((given, true)),
        Err(other) => Err(other.into()),
    }
}

/// The external custodians of the request, looked up now: distinct active
/// entities, each with an active member person holding the custodian role,
/// an age recipient and a receipt key; one per external index.
async fn resolve_custodians<T: Transaction>(
    tx: &mut T,
    policy: &CurrentPolicy,
    requested: &[ExternalCustodian],
) -> Result<Vec<Resolved>, Error> {
    let policy = &policy.policy;
    if requested.len() != usize::from(policy.external_shares()) {
        return Err(Error::CustodianCount {
            expected: policy.external_shares(),
            got: requested.len(),
        });
    }
    let mut entities = BTreeSet::new();
    let mut persons = BTreeSet::new();
    let mut resolved = Vec::with_capacity(requested.len());
    for (index, custodian) in policy.external_indices().zip(requested) {
        if !entities.insert(custodian.entity.clone()) {
            return Err(Error::DuplicateCustodian(custodian.entity.clone()));
        }
        if !persons.insert(custodian.person.clone()) {
            return Err(Error::DuplicateCustodianPerson(custodian.person.clone()));
        }
        let entity = active_entity(tx, &custodian.entity).await?;
        if !entity.members.contains(&custodian.person) {
            return Err(Error::NotEntityMember {
                person: custodian.person.clone(),
                entity: custodian.entity.clone(),
            });
        }
        let person = active_person(tx, &custodian.person).await?;
        if !person.roles.contains(Role::Custodian) {
            return Err(Error::MissingRole {
                person: person.id,
                role: Role::Custodian,
            });
        }
        let missing = |key| Error::MissingPersonKey {
            person: custodian.person.clone(),
            key,
        };
        if person.keys.receipt_key.is_none() {
            return Err(missing("receipt key"));
        }
        let recipient_text = person
            .keys
            .age_recipient
            .ok_or_else(|| missing("age recipient"))?;
        let recipient = parse_age_recipient(&custodian.person, &recipient_text)?;
        resolved.push(Resolved {
            index,
            entity: custodian.entity.clone(),
            person: custodian.person.clone(),
            recipient_text,
            recipient,
        });
    }
    Ok(resolved)
}

/// The exposure rule over the group key's active versions plus the one
/// being generated.
async fn check_group_exposure<T: Transaction>(
    tx: &mut T,
    group: &GroupRecord,
    version: &NodeVersion,
    policy: &CurrentPolicy,
    custodians: &[Resolved],
) -> Result<(), Error> {
    let mut nodes: BTreeMap<(NodeId, u32), NodeCustody> = BTreeMap::new();
    for row in exposure_rows_until_status_store(tx, &group.key_id).await? {
        let node = nodes
            .entry((row.node_id.clone(), row.version.get()))
            .or_insert_with(|| NodeCustody {
                node: row.node_id.clone(),
                t: row.t,
                server_shares: row.server_active,
                custodians: BTreeMap::new(),
            });
        let shares = node.custodians.entry(row.custodian).or_default();
        *shares = shares.saturating_add(row.shares);
    }
    nodes.insert(
        (version.node_id.clone(), version.version.get()),
        NodeCustody {
            node: version.node_id.clone(),
            t: policy.policy.threshold().t(),
            server_shares: policy.policy.server_shares(),
            custodians: custodians
                .iter()
                .map(|custodian| (custodian.entity.clone(), 1))
                .collect(),
        },
    );
    let nodes: Vec<NodeCustody> = nodes.into_values().collect();
    check_exposure(&group.key_id, group.tss_degree, &nodes)
}

/// The outcome handed to the caller after the commit.
fn generated(plan: &Plan, built: Built) -> Generated {
    Generated {
        version: plan.version.clone(),
        split_id: built.reference.split_id,
        threshold: built.threshold,
        policy_hash: plan.policy.hash,
        server_shares: built
            .server
            .iter()
            .map(|share| ServerShare {
                index: share.slot.index,
                envelope_id: share.envelope.id(),
                kek_id: share.pin.kek_id.clone(),
            })
            .collect(),
        containers: built
            .external
            .into_iter()
            .map(|container| CustodianContainer {
                index: container.slot.index,
                custodian: container.entity,
                person: container.person,
                recipient: container.recipient,
                envelope_id: container.envelope_id,
                container_hash: container.container_hash,
                container: container.container,
            })
            .collect(),
    }
}

// TEMPORARY, until storage's StatusStore lands: the exposure rows from the
// stores already there (server slots of the key, versions, custody maps).
async fn exposure_rows_until_status_store<T: Transaction>(
    tx: &mut T,
    key_id: &KeyId,
) -> Result<Vec<shardkeep_storage::ExposureRow>, Error> {
    let slots = tx
        .list_slots(&shardkeep_storage::SlotFilter {
            key_id: Some(key_id.clone()),
            ..shardkeep_storage::SlotFilter::default()
        })
        .await?;
    let mut versions: BTreeMap<NodeVersion, u8> = BTreeMap::new();
    for slot in &slots {
        let count = versions.entry(slot.slot.node_version()).or_default();
        if slot.state == shardkeep_storage::SlotState::Active {
            *count += 1;
        }
    }
    let mut rows = Vec::new();
    for (version, server_active) in versions {
        let record = tx.key_version(&version).await?;
        if record.state != KeyVersionState::Active {
            continue;
        }
        let mut per: BTreeMap<CustodianId, u8> = BTreeMap::new();
        for entry in tx.custody_map(&version).await? {
            *per.entry(entry.custodian).or_default() += 1;
        }
        for (custodian, shares) in per {
            rows.push(shardkeep_storage::ExposureRow {
                key_id: version.key_id.clone(),
                node_id: version.node_id.clone(),
                version: version.version,
                custodian,
                shares,
                server_active,
                t: record.threshold.t(),
            });
        }
    }
    Ok(rows)
}
