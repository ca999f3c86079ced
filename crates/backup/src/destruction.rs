//! Destruction statements: after a re-split, the custodian of each old
//! external share states, signed with its registered receipt key, that it
//! destroyed the old container of one slot.
//!
//! A re-split leaves the node's `Xi` as it was, so the old external shares
//! still recover it; a statement is the custodian's signed word, not a
//! proof (a custodian that kept a copy signs just as well). Status lists
//! the statements still outstanding per re-split version.
//!
//! Format `shkp-dst`, version 1: magic (8), version (1), the slot (key,
//! node, version, index), the envelope id (32), `name(custodian)`,
//! `name(person)`, `destroyed_at` (u64 ms), then an ed25519 signature (64)
//! over `"shardkeep/destruction-statement/v1" || every byte before it`.
//! Names are length-prefixed, every other field fixed-width: the encoding
//! is injective; decoding is capped and refuses trailing bytes.

use core::fmt;

use ed25519_dalek::{SIGNATURE_LENGTH, Signature, VerifyingKey};
use shardkeep_audit::EventType;
use shardkeep_storage::{
    CustodyStore, DestructionStatementRecord, DestructionStore, KeyVersionState, KeyVersionStore,
    MAX_PAGE_ROWS, StatusFilter, StatusStore, Storage, Transaction,
};
use shardkeep_types::{
    ActorId, CustodianId, EnvelopeId, FreeText, MAX_NAME_LEN, NodeVersion, ShareSlot, Signer,
    Timestamp,
};
use shardkeep_wire::{Reader, check_total_len};

use crate::error::Error;
use crate::reference::VerifiedSplit;
use crate::registry::{Role, active_entity, active_person};
use crate::service::BackupService;

/// First bytes of a destruction statement.
pub const DESTRUCTION_STATEMENT_MAGIC: &[u8; 8] = b"shkp-dst";
/// The destruction statement format version this build writes and reads.
pub const DESTRUCTION_STATEMENT_VERSION: u8 = 1;
/// Domain tag prefixed to a statement's signed bytes.
pub const DESTRUCTION_STATEMENT_TAG: &[u8] = b"shardkeep/destruction-statement/v1";

/// The longest encoded share slot: two names and their lengths, the
/// version, the index.
const MAX_SLOT_LEN: usize = 1 + MAX_NAME_LEN + 1 + MAX_NAME_LEN + 4 + 1;
/// Longest encoded [`DestructionStatement`], in bytes (checked before
/// parsing).
pub const MAX_DESTRUCTION_STATEMENT_LEN: usize =
    8 + 1 + MAX_SLOT_LEN + 32 + 1 + MAX_NAME_LEN + 1 + MAX_NAME_LEN + 8 + SIGNATURE_LENGTH;

// Every statement this crate accepts fits the column storage keeps it in.
const _: () =
    assert!(MAX_DESTRUCTION_STATEMENT_LEN <= shardkeep_storage::MAX_DESTRUCTION_STATEMENT_LEN);

/// A custodian's signed statement that it destroyed the container of one
/// external slot of an old version. Public data.
#[derive(Clone, PartialEq, Eq)]
pub struct DestructionStatement {
    /// The old version's external slot.
    pub slot: ShareSlot,
    /// The envelope the destroyed container held.
    pub envelope_id: EnvelopeId,
    /// The custodian entity.
    pub custodian: CustodianId,
    /// The person who signs for it with their registered receipt key.
    pub person: ActorId,
    /// When the container was destroyed.
    pub destroyed_at: Timestamp,
    /// Ed25519 over `DESTRUCTION_STATEMENT_TAG || signed bytes`.
    pub signature: [u8; SIGNATURE_LENGTH],
}

impl fmt::Debug for DestructionStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public values, printed in full.
        f.debug_struct("DestructionStatement")
            .field("slot", &self.slot)
            .field("envelope_id", &self.envelope_id)
            .field("custodian", &self.custodian)
            .field("person", &self.person)
            .field("destroyed_at", &self.destroyed_at)
            .field("signature", &hex::encode(self.signature))
            .finish()
    }
}

impl DestructionStatement {
    /// The bytes the signature covers: magic, version, slot, envelope id,
    /// `name(custodian)`, `name(person)`, `destroyed_at` (u64 ms).
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_DESTRUCTION_STATEMENT_LEN);
        out.extend_from_slice(DESTRUCTION_STATEMENT_MAGIC);
        out.push(DESTRUCTION_STATEMENT_VERSION);
        self.slot.encode(&mut out);
        out.extend_from_slice(self.envelope_id.as_bytes());
        self.custodian.encode_prefixed(&mut out);
        self.person.encode_prefixed(&mut out);
        out.extend_from_slice(&self.destroyed_at.as_unix_millis().to_be_bytes());
        out
    }

    /// The canonical encoding: the signed bytes, then the signature.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes [`DestructionStatement::encode`]'s output, refusing
    /// anything else. The signature is not checked here
    /// ([`DestructionStatement::verify_signature`] needs the registered
    /// key).
    ///
    /// # Errors
    /// [`Error::Framing`] (cap, magic, version, lengths, truncation,
    /// trailing bytes), [`Error::Types`] (a name, the share index, the
    /// time).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        check_total_len(
            "destruction statement",
            bytes.len(),
            MAX_DESTRUCTION_STATEMENT_LEN,
        )?;
        let mut reader = Reader::new(bytes);
        reader.magic_and_version(
            "destruction statement",
            DESTRUCTION_STATEMENT_MAGIC,
            DESTRUCTION_STATEMENT_VERSION,
        )?;
        let slot = ShareSlot::decode(&mut reader)?;
        let envelope_id = EnvelopeId::from_bytes(*reader.array::<32>("envelope_id")?);
        let custodian = CustodianId::decode_prefixed(&mut reader)?;
        let person = ActorId::decode_prefixed(&mut reader)?;
        let destroyed_at = Timestamp::from_unix_millis(reader.u64("destroyed_at")?)?;
        let signature = *reader.array::<SIGNATURE_LENGTH>("signature")?;
        reader.finish("destruction statement")?;
        Ok(Self {
            slot,
            envelope_id,
            custodian,
            person,
            destroyed_at,
            signature,
        })
    }

    /// Signs the statement with `signer` (the person's receipt key).
    ///
    /// # Errors
    /// [`Error::Signing`] when the signer fails.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), Error> {
        let message = tagged(&self.signed_bytes());
        self.signature = signer.sign(&message).map_err(Error::Signing)?.to_bytes();
        Ok(())
    }

    /// Checks the signature with `key` (ed25519 `verify_strict`).
    ///
    /// # Errors
    /// [`Error::DestructionSignatureInvalid`] naming the person.
    pub fn verify_signature(&self, key: &[u8; 32]) -> Result<(), Error> {
        let refused = || Error::DestructionSignatureInvalid(self.person.clone());
        let key = VerifyingKey::from_bytes(key).map_err(|_| refused())?;
        key.verify_strict(
            &tagged(&self.signed_bytes()),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| refused())
    }
}

/// `DESTRUCTION_STATEMENT_TAG || signed bytes`.
fn tagged(signed: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(DESTRUCTION_STATEMENT_TAG.len() + signed.len());
    message.extend_from_slice(DESTRUCTION_STATEMENT_TAG);
    message.extend_from_slice(signed);
    message
}

/// A container of a re-split version's old external share whose
/// destruction statement has not been recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutstandingDestruction {
    /// The old version's external slot.
    pub slot: ShareSlot,
    /// The custodian entity holding it.
    pub custodian: CustodianId,
    /// The person it was sealed to.
    pub person: ActorId,
    /// The envelope it holds.
    pub envelope_id: EnvelopeId,
}

impl<S: Storage> BackupService<S> {
    /// Records a custodian's destruction statement (the custodian person
    /// submits it, or an operator on their behalf). In one transaction:
    /// the statement's slot is an external slot of a retiring or retired
    /// version that was replaced by a re-split (a later version of the node
    /// with the same `Xi`); it names that slot's envelope, custodian and
    /// person; the custodian entity and the person are registered and
    /// active; the signature verifies under the person's receipt key; no
    /// statement is recorded for the slot yet. Stored and audited
    /// (`custody-update`); refusals too.
    ///
    /// # Errors
    /// [`Error::Framing`], [`Error::Types`] for bytes that do not decode;
    /// the refusals of authorization (audited);
    /// [`Error::DestructionNotResplit`]; [`Error::NotExternalSlot`];
    /// [`Error::DestructionMismatch`] naming the field;
    /// [`Error::UnknownEntity`], [`Error::EntityRevoked`],
    /// [`Error::UnknownPerson`], [`Error::PersonRevoked`],
    /// [`Error::MissingPersonKey`]; [`Error::DestructionSignatureInvalid`];
    /// [`Error::DestructionReplayed`]; storage and audit errors.
    pub async fn record_destruction_statement(
        &self,
        actor: &ActorId,
        statement: &[u8],
    ) -> Result<(), Error> {
        let statement = DestructionStatement::decode(statement)?;
        let version = statement.slot.node_version();
        let now = self.now();
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(
                tx,
                actor,
                &[Role::Custodian, Role::Operator],
                Some(&version),
            )
            .await?;
        if let Err(error) = self
            .check_destruction(&mut tx, actor, &statement, now)
            .await
        {
            if is_destruction_refusal(&error) {
                drop(tx);
                let tx = self.begin().await?;
                return self
                    .refuse_as(tx, EventType::CustodyUpdate, actor, Some(&version), error)
                    .await;
            }
            return Err(error);
        }
        let mut record = self.record(EventType::CustodyUpdate, actor, Some(&version));
        record.share_index = Some(statement.slot.index);
        record.envelope_id = Some(*statement.envelope_id.as_bytes());
        record.signature = Some(statement.signature);
        record.target = Some(FreeText::sanitized(statement.custodian.as_str())?);
        record.detail = Some(FreeText::sanitized(&format!(
            "destruction statement: {} destroyed the old container at {}",
            statement.person, statement.destroyed_at
        ))?);
        Self::audit(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn check_destruction(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        statement: &DestructionStatement,
        now: Timestamp,
    ) -> Result<(), Error> {
        let version = statement.slot.node_version();
        if !self.is_resplit_predecessor(tx, &version).await? {
            return Err(Error::DestructionNotResplit(version));
        }
        let entry = match tx.custody_entry(&statement.slot).await {
            Ok(entry) => entry,
            Err(shardkeep_storage::Error::CustodyEntryNotFound(_)) => {
                return Err(Error::NotExternalSlot(statement.slot.clone()));
            }
            Err(other) => return Err(other.into()),
        };
        let mismatch = |field| Error::DestructionMismatch {
            slot: statement.slot.clone(),
            field,
        };
        // Public ids: plain comparisons.
        if entry.envelope_id != statement.envelope_id {
            return Err(mismatch("envelope_id"));
        }
        if entry.custodian != statement.custodian {
            return Err(mismatch("custodian"));
        }
        if entry.person != statement.person {
            return Err(mismatch("person"));
        }
        // A custodian person submits only their own statement.
        if *actor != statement.person {
            let caller = active_person(tx, actor).await?;
            if !caller.roles.contains(Role::Operator) {
                return Err(mismatch("submitter"));
            }
        }
        active_entity(tx, &statement.custodian).await?;
        let person = active_person(tx, &statement.person).await?;
        let key = person
            .keys
            .receipt_key
            .ok_or_else(|| Error::MissingPersonKey {
                person: statement.person.clone(),
                key: "receipt key",
            })?;
        statement.verify_signature(&key)?;
        if statement.destroyed_at > now {
            return Err(mismatch("destroyed_at"));
        }
        match tx
            .record_destruction_statement(&DestructionStatementRecord {
                slot: statement.slot.clone(),
                envelope_id: statement.envelope_id,
                custodian: statement.custodian.clone(),
                person: statement.person.clone(),
                destroyed_at: statement.destroyed_at,
                recorded_at: now,
                statement: statement.encode(),
            })
            .await
        {
            Ok(()) => Ok(()),
            Err(shardkeep_storage::Error::DestructionStatementExists(slot)) => {
                Err(Error::DestructionReplayed(slot))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Whether `version` is retiring or retired and the node's next version
    /// holds the same `Xi` (its signed public share is the same): a
    /// version replaced by a re-split.
    async fn is_resplit_predecessor(
        &self,
        tx: &mut S::Transaction,
        version: &NodeVersion,
    ) -> Result<bool, Error> {
        let versions = tx.key_versions(&version.key_id, &version.node_id).await?;
        let Some(old) = versions.iter().find(|record| record.version == *version) else {
            return Ok(false);
        };
        if old.state == KeyVersionState::Active {
            return Ok(false);
        }
        let Some(next) = versions.iter().find(|record| record.version > *version) else {
            return Ok(false);
        };
        let old_reference = tx.split_reference(version).await?;
        let next_reference = tx.split_reference(&next.version).await?;
        let old_split = VerifiedSplit::verify(version, &old_reference, self.trusted_signers())?;
        let next_split =
            VerifiedSplit::verify(&next.version, &next_reference, self.trusted_signers())?;
        // Public points (Xi·G): a plain comparison.
        Ok(old_split.binding().public_share() == next_split.binding().public_share())
    }

    /// The old containers of `version`, if a re-split replaced it (it is
    /// retiring or retired), whose destruction statements are outstanding,
    /// by index; none for any other version.
    pub(crate) async fn outstanding_of(
        &self,
        tx: &mut S::Transaction,
        version: &NodeVersion,
    ) -> Result<Vec<OutstandingDestruction>, Error> {
        if !self.is_resplit_predecessor(tx, version).await? {
            return Ok(Vec::new());
        }
        let done = tx.destruction_statements(version).await?;
        Ok(tx
            .custody_map(version)
            .await?
            .into_iter()
            .filter(|entry| done.iter().all(|statement| statement.slot != entry.slot))
            .map(|entry| OutstandingDestruction {
                slot: entry.slot,
                custodian: entry.custodian,
                person: entry.person,
                envelope_id: entry.envelope_id,
            })
            .collect())
    }

    /// The old containers of re-split versions (retiring or retired) whose
    /// destruction statements are outstanding, by version and index (an
    /// operator or security person asks).
    ///
    /// # Errors
    /// The refusals of authorization (audited); storage errors.
    pub async fn outstanding_destructions(
        &self,
        actor: &ActorId,
    ) -> Result<Vec<OutstandingDestruction>, Error> {
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator, Role::Security], None)
            .await?;
        let filter = StatusFilter {
            include_retired: true,
            ..StatusFilter::default()
        };
        let mut after: Option<NodeVersion> = None;
        let mut outstanding = Vec::new();
        loop {
            let page = tx
                .status_page(&filter, after.as_ref(), MAX_PAGE_ROWS)
                .await?;
            for row in &page {
                outstanding.extend(self.outstanding_of(&mut tx, &row.version).await?);
            }
            match page.last() {
                Some(last) if page.len() == MAX_PAGE_ROWS as usize => {
                    after = Some(last.version.clone());
                }
                _ => break,
            }
        }
        tx.rollback().await?;
        Ok(outstanding)
    }
}

/// The refusals of a destruction statement that leave an audit trace.
fn is_destruction_refusal(error: &Error) -> bool {
    matches!(
        error,
        Error::DestructionNotResplit(_)
            | Error::NotExternalSlot(_)
            | Error::DestructionMismatch { .. }
            | Error::DestructionSignatureInvalid(_)
            | Error::DestructionReplayed(_)
            | Error::UnknownEntity(_)
            | Error::EntityRevoked(_)
            | Error::UnknownPerson(_)
            | Error::PersonRevoked(_)
            | Error::MissingPersonKey { .. }
    )
}

#[cfg(test)]
mod tests {
    use shardkeep_types::{InMemorySigner, KeyId, KeyVersion, NodeId, ShareIndex, SignerId};

    use super::*;

    fn signer() -> InMemorySigner {
        InMemorySigner::from_seed(SignerId::new("custodian-key").unwrap(), &[7; 32])
    }

    fn statement() -> DestructionStatement {
        let mut statement = DestructionStatement {
            slot: NodeVersion {
                key_id: KeyId::new("key-1").unwrap(),
                node_id: NodeId::new("node-a").unwrap(),
                version: KeyVersion::new(3),
            }
            .slot(ShareIndex::new(4).unwrap()),
            envelope_id: EnvelopeId::from_bytes([0x22; 32]),
            custodian: CustodianId::new("escrow-co").unwrap(),
            person: ActorId::new("alice@escrow").unwrap(),
            destroyed_at: Timestamp::from_unix_millis(1_800_000_000_000).unwrap(),
            signature: [0; SIGNATURE_LENGTH],
        };
        statement.sign(&signer()).unwrap();
        statement
    }

    /// The encoding is pinned: a change to the format fails here.
    #[test]
    fn golden_encoding() {
        let encoded = statement().encode();
        assert_eq!(
            hex::encode(statement().signed_bytes()),
            concat!(
                "73686b702d64737401",
                "056b65792d31",
                "066e6f64652d61",
                "00000003",
                "04",
                "2222222222222222222222222222222222222222222222222222222222222222",
                "09657363726f772d636f",
                "0c616c69636540657363726f77",
                "000001a3185c5000",
            )
        );
        assert_eq!(
            encoded.len(),
            statement().signed_bytes().len() + SIGNATURE_LENGTH
        );
    }

    #[test]
    fn the_cap_is_the_documented_one() {
        assert_eq!(
            MAX_DESTRUCTION_STATEMENT_LEN,
            9 + 135 + 32 + 65 + 65 + 8 + 64
        );
    }

    #[test]
    fn round_trip_and_signature() {
        let bytes = statement().encode();
        let decoded = DestructionStatement::decode(&bytes).unwrap();
        assert_eq!(decoded, statement());
        let key = signer().verifying_key().to_bytes();
        decoded.verify_signature(&key).unwrap();
        let other = InMemorySigner::from_seed(SignerId::new("other").unwrap(), &[8; 32]);
        assert!(matches!(
            decoded.verify_signature(&other.verifying_key().to_bytes()),
            Err(Error::DestructionSignatureInvalid(_))
        ));
        // Any changed byte fails the decoding or the signature.
        for offset in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[offset] ^= 0x01;
            let verified =
                DestructionStatement::decode(&changed).and_then(|s| s.verify_signature(&key));
            assert!(verified.is_err(), "offset {offset}");
        }
    }

    #[test]
    fn decoding_refuses_anything_but_the_canonical_encoding() {
        let bytes = statement().encode();
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(DestructionStatement::decode(&trailing).is_err());
        for cut in 0..bytes.len() {
            assert!(
                DestructionStatement::decode(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut version = bytes.clone();
        version[8] = 2;
        assert!(matches!(
            DestructionStatement::decode(&version),
            Err(Error::Framing(_))
        ));
        let oversized = vec![0; MAX_DESTRUCTION_STATEMENT_LEN + 1];
        assert!(matches!(
            DestructionStatement::decode(&oversized),
            Err(Error::Framing(_))
        ));
    }

    fn outcome(bytes: &[u8]) -> String {
        let key = signer().verifying_key().to_bytes();
        match DestructionStatement::decode(bytes).and_then(|s| s.verify_signature(&key)) {
            Ok(()) => "ok".to_owned(),
            Err(Error::DestructionSignatureInvalid(_)) => "signature_invalid".to_owned(),
            Err(Error::Framing(error)) => format!("framing {error}"),
            Err(other) => format!("error {other}"),
        }
    }

    /// The vectors of `tests/data/destruction/`, regenerated from fixed
    /// inputs and compared byte for byte; each stored body decodes with its
    /// expected outcome.
    #[test]
    fn golden_vectors() {
        use shardkeep_test_support::{GoldenDir, Vector, data_dir, read_dir};

        let dir = data_dir(env!("CARGO_MANIFEST_DIR"), "destruction");
        let bytes = statement().encode();
        let vector = |expect: &str, comment: &str, body: Vec<u8>| {
            Vector::new(expect)
                .comment(comment)
                .header("kind", "destruction_statement")
                .header("signer-id", "custodian-key")
                .hex("signer-seed", [7; 32])
                .hex("signer-public", signer().verifying_key().as_bytes())
                .header("slot", "key-1/node-a/v3 index 4")
                .hex("envelope-id", [0x22; 32])
                .header("custodian", "escrow-co")
                .header("person", "alice@escrow")
                .header("destroyed-at", 1_800_000_000_000_u64)
                .body(body)
        };
        let mut golden = GoldenDir::new(&dir);
        golden.add(
            "pass/destruction_statement",
            &vector("ok", "a signed destruction statement", bytes.clone()),
        );
        let mut bad_signature = bytes.clone();
        *bad_signature.last_mut().unwrap() ^= 0x01;
        golden.add(
            "fail/destruction_statement_bad_signature",
            &vector(
                "signature_invalid",
                "last signature byte changed",
                bad_signature,
            ),
        );
        let mut other_envelope = bytes.clone();
        other_envelope[9 + 6 + 7 + 4 + 1] ^= 0x01;
        golden.add(
            "fail/destruction_statement_other_envelope",
            &vector(
                "signature_invalid",
                "first envelope id byte changed, signature kept",
                other_envelope,
            ),
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        golden.add(
            "fail/destruction_statement_trailing_byte",
            &vector("framing trailing", "one byte after the signature", trailing),
        );
        let mut version = bytes;
        version[8] = 2;
        golden.add(
            "fail/destruction_statement_version_2",
            &vector("framing version", "format version 2", version),
        );
        golden.finish().unwrap();

        for sub in ["pass", "fail"] {
            for vector in read_dir(&dir.join(sub)).unwrap() {
                let got = outcome(vector.body_bytes());
                let expected = vector.expect();
                assert!(
                    got == expected
                        || (expected.starts_with("framing ")
                            && got.starts_with("framing ")
                            && got.to_lowercase().contains(&expected["framing ".len()..])),
                    "{}: expected {expected}, got {got}",
                    vector.file()
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_statement_round_trips(
            index in 1u8..=255,
            version in 0u32..=u32::MAX,
            envelope in proptest::array::uniform32(proptest::num::u8::ANY),
            millis in 0u64..=4_102_444_800_000,
            signature in proptest::collection::vec(proptest::num::u8::ANY, 64),
        ) {
            let statement = DestructionStatement {
                slot: NodeVersion {
                    key_id: KeyId::new("k").unwrap(),
                    node_id: NodeId::new("n").unwrap(),
                    version: KeyVersion::new(version),
                }
                .slot(ShareIndex::new(index).unwrap()),
                envelope_id: EnvelopeId::from_bytes(envelope),
                custodian: CustodianId::new("c").unwrap(),
                person: ActorId::new("p").unwrap(),
                destroyed_at: Timestamp::from_unix_millis(millis).unwrap(),
                signature: signature.try_into().unwrap(),
            };
            proptest::prop_assert_eq!(
                DestructionStatement::decode(&statement.encode()).unwrap(),
                statement
            );
        }
    }
}
