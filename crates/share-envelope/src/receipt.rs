//! Custodian receipts, the custodian set they are checked against, and the
//! delivery certificate they form.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use shardkeep_types::{
    CustodianId, EnvelopeId, FreeText, MAX_NAME_LEN, ShareIndex, Signer, Timestamp,
};
use shardkeep_wire::{Reader, check_total_len, put_prefixed_u8, put_prefixed_u16};

use crate::error::Error;
use crate::trust::{admit_key, sign_tagged, verify_tagged};

/// First bytes of every receipt.
pub const RECEIPT_MAGIC: &[u8; 8] = b"shkp-rcp";
/// The receipt format version this build writes and reads.
pub const RECEIPT_VERSION: u8 = 1;
/// Domain tag prefixed to the signed bytes for the ed25519 signature.
pub const RECEIPT_SIGNATURE_TAG: &[u8] = b"shardkeep/receipt/v1";
/// Longest failure reason, in bytes.
pub const MAX_FAILURE_REASON_LEN: usize = 256;
/// Longest receipt, in bytes (checked before parsing).
pub const MAX_RECEIPT_LEN: usize =
    8 + 1 + 1 + MAX_NAME_LEN + 32 + 1 + 2 + MAX_FAILURE_REASON_LEN + 8 + 64;

const STATUS_RECEIVED: u8 = 1;
const STATUS_FAILED: u8 = 2;

/// Why a delivery failed, as the custodian states it: 1 to
/// [`MAX_FAILURE_REASON_LEN`] bytes of UTF-8 free text (no control,
/// format, separator, private-use or unassigned character; see
/// [`FreeText`]), so it can be shown to an operator and stored in audit
/// records as is. [`FailureReason::new`] checks it;
/// [`FailureReason::sanitized`] makes one out of an error message.
pub type FailureReason = FreeText<MAX_FAILURE_REASON_LEN>;

/// What a custodian says about one envelope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReceiptStatus {
    /// The container arrived and opens.
    Received,
    /// It did not arrive, or does not open, for this reason.
    Failed(FailureReason),
}

/// A custodian's statement about one delivered envelope. Sign it with
/// [`Receipt::sign`]; check one with [`VerifiedReceipt::decode_verify`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// Who makes the statement.
    pub custodian_id: CustodianId,
    /// The envelope it is about.
    pub envelope_id: EnvelopeId,
    /// Received or failed.
    pub status: ReceiptStatus,
    /// When the custodian made it.
    pub timestamp: Timestamp,
}

impl Receipt {
    /// Encodes and signs the receipt with the custodian's key.
    ///
    /// # Errors
    /// [`Error::WeakKey`] when the signer's key would be refused on
    /// verification, [`Error::Custody`] when signing fails.
    pub fn sign(&self, signer: &dyn Signer) -> Result<Vec<u8>, Error> {
        admit_key(self.custodian_id.as_str(), &signer.verifying_key())?;
        let mut bytes = Vec::with_capacity(MAX_RECEIPT_LEN);
        self.encode_signed(&mut bytes)?;
        let signature = sign_tagged(signer, RECEIPT_SIGNATURE_TAG, &bytes)?;
        bytes.extend_from_slice(&signature);
        Ok(bytes)
    }

    pub(crate) fn encode_signed(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(RECEIPT_MAGIC);
        out.push(RECEIPT_VERSION);
        put_prefixed_u8(
            out,
            "custodian_id",
            self.custodian_id.as_str().as_bytes(),
            MAX_NAME_LEN,
        )?;
        out.extend_from_slice(self.envelope_id.as_bytes());
        match &self.status {
            ReceiptStatus::Received => {
                out.push(STATUS_RECEIVED);
                put_prefixed_u16(out, "failure_reason", &[], MAX_FAILURE_REASON_LEN)?;
            }
            ReceiptStatus::Failed(reason) => {
                out.push(STATUS_FAILED);
                put_prefixed_u16(
                    out,
                    "failure_reason",
                    reason.as_str().as_bytes(),
                    MAX_FAILURE_REASON_LEN,
                )?;
            }
        }
        out.extend_from_slice(&self.timestamp.as_unix_millis().to_be_bytes());
        Ok(())
    }

    /// Structural parse: the receipt, the signed bytes and the signature.
    pub(crate) fn parse(bytes: &[u8]) -> Result<(Self, &[u8], &[u8; 64]), Error> {
        check_total_len("receipt", bytes.len(), MAX_RECEIPT_LEN)?;
        let mut r = Reader::new(bytes);
        r.magic_and_version("receipt", RECEIPT_MAGIC, RECEIPT_VERSION)?;
        let custodian_id = CustodianId::decode_prefixed(&mut r)?;
        let envelope_id = EnvelopeId::from_bytes(*r.array("envelope_id")?);
        let status_byte = r.u8("status")?;
        let reason = r.prefixed_u16("failure_reason", 0, MAX_FAILURE_REASON_LEN)?;
        let status = match status_byte {
            STATUS_RECEIVED if reason.is_empty() => ReceiptStatus::Received,
            STATUS_RECEIVED => {
                return Err(Error::NonCanonical {
                    field: "failure_reason",
                });
            }
            STATUS_FAILED => ReceiptStatus::Failed(FailureReason::from_utf8(reason)?),
            other => return Err(Error::UnknownReceiptStatus(other)),
        };
        let timestamp = Timestamp::from_unix_millis(r.u64("timestamp")?)?;
        let signed_len = r.offset();
        let signature = r.array("signature")?;
        r.finish("receipt")?;
        Ok((
            Self {
                custodian_id,
                envelope_id,
                status,
                timestamp,
            },
            &bytes[..signed_len],
            signature,
        ))
    }
}

/// A receipt whose signature was verified with the registered key of the
/// custodian it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    receipt: Receipt,
    index: ShareIndex,
    key: [u8; 32],
    signature: [u8; 64],
}

impl VerifiedReceipt {
    /// Decodes a receipt and verifies it against `custodians`: the named
    /// custodian must be in the set and the ed25519 signature (strict) must
    /// verify under its registered key.
    ///
    /// # Errors
    /// [`Error::Framing`] (magic, version, cap, lengths, truncation,
    /// trailing bytes), [`Error::Types`] (custodian id, failure reason,
    /// timestamp), [`Error::UnknownReceiptStatus`], [`Error::NonCanonical`]
    /// (a reason on a "received" receipt), [`Error::UnknownCustodian`],
    /// [`Error::BadSignature`].
    pub fn decode_verify(bytes: &[u8], custodians: &CustodianSet) -> Result<Self, Error> {
        let (receipt, signed, signature) = Receipt::parse(bytes)?;
        let (index, custodian) = custodians
            .find(&receipt.custodian_id)
            .ok_or_else(|| Error::UnknownCustodian(receipt.custodian_id.clone()))?;
        verify_tagged(&custodian.key, RECEIPT_SIGNATURE_TAG, signed, signature)?;
        Ok(Self {
            receipt,
            index,
            key: custodian.key.to_bytes(),
            signature: *signature,
        })
    }

    /// The receipt.
    #[must_use]
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// The share index the custodian holds, per the set it was verified
    /// against.
    #[must_use]
    pub fn index(&self) -> ShareIndex {
        self.index
    }

    /// The custodian's verified ed25519 signature, e.g. for the audit
    /// record of the confirmation.
    #[must_use]
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

/// One external custodian: who, and the key its receipts are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Custodian {
    id: CustodianId,
    key: VerifyingKey,
}

impl Custodian {
    /// The custodian's id.
    #[must_use]
    pub fn id(&self) -> &CustodianId {
        &self.id
    }

    /// The registered receipt-signing key.
    #[must_use]
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// The mapping external share index -> custodian (id and registered
/// receipt key) for one key version. Custodians are distinct: no id and no
/// key appears twice. Storing it is the storage layer's job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustodianSet {
    by_index: BTreeMap<ShareIndex, Custodian>,
}

impl CustodianSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `index` to a custodian.
    ///
    /// # Errors
    /// [`Error::WeakKey`] for a weak, mixed-order or non-canonical key,
    /// [`Error::IndexAlreadyMapped`], [`Error::DuplicateCustodian`] or
    /// [`Error::DuplicateCustodianKey`] when the custodians would not be
    /// distinct.
    pub fn insert(
        &mut self,
        index: ShareIndex,
        id: CustodianId,
        key: VerifyingKey,
    ) -> Result<(), Error> {
        admit_key(id.as_str(), &key)?;
        if self.by_index.contains_key(&index) {
            return Err(Error::IndexAlreadyMapped(index));
        }
        if self.by_index.values().any(|c| c.id == id) {
            return Err(Error::DuplicateCustodian(id));
        }
        // Public keys: a plain comparison.
        if self.by_index.values().any(|c| c.key == key) {
            return Err(Error::DuplicateCustodianKey(id));
        }
        self.by_index.insert(index, Custodian { id, key });
        Ok(())
    }

    /// The custodian of `index`.
    #[must_use]
    pub fn get(&self, index: ShareIndex) -> Option<&Custodian> {
        self.by_index.get(&index)
    }

    /// The index and entry of custodian `id`.
    #[must_use]
    pub fn find(&self, id: &CustodianId) -> Option<(ShareIndex, &Custodian)> {
        self.by_index
            .iter()
            .find(|(_, c)| &c.id == id)
            .map(|(index, c)| (*index, c))
    }

    /// Every mapping, by index.
    pub fn iter(&self) -> impl Iterator<Item = (ShareIndex, &Custodian)> {
        self.by_index.iter().map(|(index, c)| (*index, c))
    }

    /// Number of custodians.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_index.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }
}

/// Where one external delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryState {
    /// No receipt from the mapped custodian for this envelope.
    Missing,
    /// The custodian's newest receipt says received.
    Received {
        /// When.
        at: Timestamp,
    },
    /// The custodian's newest receipt says failed.
    Failed {
        /// Why.
        reason: FailureReason,
        /// When.
        at: Timestamp,
    },
}

/// One external share index in a [`DeliveryCertificate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEntry {
    /// The external share index.
    pub index: ShareIndex,
    /// Its mapped custodian.
    pub custodian_id: CustodianId,
    /// The envelope delivered to it.
    pub envelope_id: EnvelopeId,
    /// What the custodian's receipts say.
    pub state: DeliveryState,
}

/// Why a verified receipt did not count towards a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredReason {
    /// Its custodian is not in this certificate's custodian set.
    UnknownCustodian,
    /// It was verified with another key than the one this set registers.
    KeyMismatch,
    /// It is about another envelope than the one delivered to its custodian
    /// (a replay from another delivery or version).
    OtherEnvelope,
}

/// A receipt left out of a certificate, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredReceipt {
    /// The custodian it names.
    pub custodian_id: CustodianId,
    /// The envelope it is about.
    pub envelope_id: EnvelopeId,
    /// Why it did not count.
    pub reason: IgnoredReason,
}

/// The delivery certificate of one key version: per external share index,
/// what its own mapped custodian's receipts say about the envelope delivered
/// to it.
///
/// **Which receipt wins.** A custodian may send several receipts about one
/// envelope over time (failed, then received after a re-send; or received,
/// then failed when a later inventory finds the container gone). The newest
/// by timestamp wins, because it is the custodian's current statement; on
/// equal timestamps "failed" wins, so a certificate never claims a delivery
/// the custodian contradicted at the same second. Receipts about other
/// envelopes (replays) and receipts verified against another custodian set
/// never count; they are listed in [`DeliveryCertificate::ignored`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCertificate {
    entries: Vec<DeliveryEntry>,
    ignored: Vec<IgnoredReceipt>,
}

impl DeliveryCertificate {
    /// Assembles the certificate from the custodian set, the envelope
    /// delivered to each external index, and verified receipts.
    ///
    /// # Errors
    /// [`Error::CustodianSetMismatch`] when `deliveries` and `custodians`
    /// cover different indices, [`Error::DuplicateDelivery`] when one
    /// envelope is listed twice.
    pub fn assemble(
        custodians: &CustodianSet,
        deliveries: &BTreeMap<ShareIndex, EnvelopeId>,
        receipts: &[VerifiedReceipt],
    ) -> Result<Self, Error> {
        for index in deliveries.keys() {
            if custodians.get(*index).is_none() {
                return Err(Error::CustodianSetMismatch(*index));
            }
        }
        for (index, _) in custodians.iter() {
            if !deliveries.contains_key(&index) {
                return Err(Error::CustodianSetMismatch(index));
            }
        }
        let mut seen = Vec::with_capacity(deliveries.len());
        for envelope_id in deliveries.values() {
            if seen.contains(envelope_id) {
                return Err(Error::DuplicateDelivery(*envelope_id));
            }
            seen.push(*envelope_id);
        }

        let mut newest: BTreeMap<ShareIndex, &Receipt> = BTreeMap::new();
        let mut ignored = Vec::new();
        for verified in receipts {
            let receipt = &verified.receipt;
            let ignore = |reason| IgnoredReceipt {
                custodian_id: receipt.custodian_id.clone(),
                envelope_id: receipt.envelope_id,
                reason,
            };
            let Some((index, custodian)) = custodians.find(&receipt.custodian_id) else {
                ignored.push(ignore(IgnoredReason::UnknownCustodian));
                continue;
            };
            if custodian.key.as_bytes() != &verified.key || index != verified.index {
                ignored.push(ignore(IgnoredReason::KeyMismatch));
                continue;
            }
            if deliveries.get(&index) != Some(&receipt.envelope_id) {
                ignored.push(ignore(IgnoredReason::OtherEnvelope));
                continue;
            }
            let wins = newest
                .get(&index)
                .is_none_or(|current| supersedes(receipt, current));
            if wins {
                newest.insert(index, receipt);
            }
        }

        // Both directions were checked above, so every delivery has its
        // custodian.
        let entries = deliveries
            .iter()
            .filter_map(|(index, envelope_id)| {
                let custodian = custodians.get(*index)?;
                Some(DeliveryEntry {
                    index: *index,
                    custodian_id: custodian.id.clone(),
                    envelope_id: *envelope_id,
                    state: match newest.get(index) {
                        None => DeliveryState::Missing,
                        Some(r) => match &r.status {
                            ReceiptStatus::Received => DeliveryState::Received { at: r.timestamp },
                            ReceiptStatus::Failed(reason) => DeliveryState::Failed {
                                reason: reason.clone(),
                                at: r.timestamp,
                            },
                        },
                    },
                })
            })
            .collect();
        Ok(Self { entries, ignored })
    }

    /// Complete: at least one external index, and every one has a
    /// "received" receipt from its own mapped custodian (distinct by
    /// construction of [`CustodianSet`]).
    #[must_use]
    pub fn is_complete(&self) -> bool {
        !self.entries.is_empty()
            && self
                .entries
                .iter()
                .all(|e| matches!(e.state, DeliveryState::Received { .. }))
    }

    /// Per external index, in index order.
    #[must_use]
    pub fn entries(&self) -> &[DeliveryEntry] {
        &self.entries
    }

    /// Receipts that did not count.
    #[must_use]
    pub fn ignored(&self) -> &[IgnoredReceipt] {
        &self.ignored
    }
}

/// Whether `candidate` replaces `current` as a custodian's statement: newer
/// wins; at the same second, "failed" wins.
fn supersedes(candidate: &Receipt, current: &Receipt) -> bool {
    match candidate.timestamp.cmp(&current.timestamp) {
        core::cmp::Ordering::Greater => true,
        core::cmp::Ordering::Less => false,
        core::cmp::Ordering::Equal => matches!(candidate.status, ReceiptStatus::Failed(_)),
    }
}
