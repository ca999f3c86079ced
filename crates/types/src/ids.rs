//! Key versions, share slots and envelope ids: the units that are stored,
//! sealed, rotated, shredded and audited.

use core::fmt;

use shardkeep_wire::Reader;

use crate::error::Error;
use crate::names::{KeyId, NodeId};
use crate::threshold::ShareIndex;

/// A key version: the rotation epoch of one `(key_id, node_id)`. Each
/// rotation produces a new split under the next version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyVersion(u32);

impl KeyVersion {
    /// Wraps a version number.
    #[must_use]
    pub const fn new(version: u32) -> Self {
        Self(version)
    }

    /// The version number.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The version after this one, `None` at `u32::MAX`.
    #[must_use]
    pub const fn next(self) -> Option<Self> {
        match self.0.checked_add(1) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// One rotation epoch of one node's share of one group key: the unit that
/// key versions, custody maps, drills, approvals, the protocol archive and
/// the keystore file refer to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeVersion {
    /// The group key.
    pub key_id: KeyId,
    /// The node whose share is backed up.
    pub node_id: NodeId,
    /// The rotation epoch.
    pub version: KeyVersion,
}

impl NodeVersion {
    /// Appends the canonical encoding: `u8 len || key_id || u8 len ||
    /// node_id || version (u32 big-endian)`. Injective, so it can go into
    /// AADs, KDF infos and digests as is.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.key_id.encode_prefixed(out);
        self.node_id.encode_prefixed(out);
        out.extend_from_slice(&self.version.get().to_be_bytes());
    }

    /// Reads what [`NodeVersion::encode`] writes.
    ///
    /// # Errors
    /// [`Error::Framing`] for a name length outside 1-64 or input cut short,
    /// [`Error::InvalidName`] for a byte outside a name's alphabet.
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(Self {
            key_id: KeyId::decode_prefixed(reader)?,
            node_id: NodeId::decode_prefixed(reader)?,
            version: KeyVersion::new(reader.u32("version")?),
        })
    }

    /// The share slot of `index` in this version.
    #[must_use]
    pub fn slot(&self, index: ShareIndex) -> ShareSlot {
        ShareSlot {
            key_id: self.key_id.clone(),
            node_id: self.node_id.clone(),
            version: self.version,
            index,
        }
    }
}

impl From<&ShareSlot> for NodeVersion {
    fn from(slot: &ShareSlot) -> Self {
        slot.node_version()
    }
}

impl fmt::Display for NodeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.key_id, self.node_id, self.version)
    }
}

/// One share slot: the unit that is stored, sealed under its own KEK,
/// soft-deleted, rolled back and hard-deleted (crypto-shredded).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShareSlot {
    /// The group key.
    pub key_id: KeyId,
    /// The node whose share was split.
    pub node_id: NodeId,
    /// The rotation epoch.
    pub version: KeyVersion,
    /// The backup share's index.
    pub index: ShareIndex,
}

impl ShareSlot {
    /// Appends the canonical encoding: the [`NodeVersion::encode`] fields,
    /// then the share index byte. Injective, like that one.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.key_id.encode_prefixed(out);
        self.node_id.encode_prefixed(out);
        out.extend_from_slice(&self.version.get().to_be_bytes());
        out.push(self.index.get());
    }

    /// Reads what [`ShareSlot::encode`] writes.
    ///
    /// # Errors
    /// As [`NodeVersion::decode`], and [`Error::ZeroShareIndex`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, Error> {
        let version = NodeVersion::decode(reader)?;
        let index = ShareIndex::new(reader.u8("index")?).ok_or(Error::ZeroShareIndex)?;
        Ok(version.slot(index))
    }

    /// The key version this slot belongs to.
    #[must_use]
    pub fn node_version(&self) -> NodeVersion {
        NodeVersion {
            key_id: self.key_id.clone(),
            node_id: self.node_id.clone(),
            version: self.version,
        }
    }
}

impl fmt::Display for ShareSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.key_id, self.node_id, self.version, self.index
        )
    }
}

/// The id of a share envelope, used in receipts, storage and audit records:
/// `SHA-256("shardkeep/envelope-id/v1" || signed bytes)`, computed by
/// `shardkeep-envelope`. The signed bytes (header, payload, signer id)
/// exclude the KEK id and the wrapped data key, so re-wrapping under a new
/// KEK keeps the id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvelopeId([u8; 32]);

impl EnvelopeId {
    /// Wraps 32 bytes (for example, read from storage or a receipt).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvelopeId({})", hex::encode(self.0))
    }
}

impl fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use shardkeep_wire::FramingError;

    use super::*;

    fn key_1_node_a_v3() -> NodeVersion {
        NodeVersion {
            key_id: KeyId::new("key-1").unwrap(),
            node_id: NodeId::new("node-a").unwrap(),
            version: KeyVersion::new(3),
        }
    }

    #[test]
    fn node_versions_and_slots_convert_both_ways() {
        let version = key_1_node_a_v3();
        let slot = version.slot(ShareIndex::new(2).unwrap());
        assert_eq!(slot.to_string(), "key-1/node-a/v3/2");
        assert_eq!(slot.node_version(), version);
        assert_eq!(NodeVersion::from(&slot), version);
        assert_eq!(version.to_string(), "key-1/node-a/v3");
    }

    #[test]
    fn canonical_encodings_are_pinned() {
        let version = key_1_node_a_v3();
        let mut encoded = Vec::new();
        version.encode(&mut encoded);
        assert_eq!(hex::encode(&encoded), "056b65792d31066e6f64652d6100000003");
        let mut slot = Vec::new();
        version.slot(ShareIndex::new(2).unwrap()).encode(&mut slot);
        assert_eq!(hex::encode(&slot), "056b65792d31066e6f64652d610000000302");
    }

    #[test]
    fn decoding_refuses_a_zero_index_and_short_input() {
        let mut slot = Vec::new();
        key_1_node_a_v3().encode(&mut slot);
        slot.push(0);
        assert_eq!(
            ShareSlot::decode(&mut Reader::new(&slot)),
            Err(Error::ZeroShareIndex)
        );
        assert_eq!(
            NodeVersion::decode(&mut Reader::new(&slot[..14])),
            Err(Error::Framing(FramingError::Truncated {
                field: "version",
                needed: 3
            }))
        );
    }

    #[test]
    fn key_versions_count_up_to_the_last() {
        assert_eq!(KeyVersion::new(1).next(), Some(KeyVersion::new(2)));
        assert_eq!(KeyVersion::new(u32::MAX).next(), None);
        assert_eq!(KeyVersion::new(7).to_string(), "v7");
    }

    #[test]
    fn envelope_ids_print_as_hex() {
        let id = EnvelopeId::from_bytes([0xab; 32]);
        assert_eq!(id.to_string(), "ab".repeat(32));
        assert_eq!(
            format!("{id:?}"),
            format!("EnvelopeId({})", "ab".repeat(32))
        );
        assert_eq!(id.as_bytes(), &[0xab; 32]);
    }

    fn arb_slot() -> impl Strategy<Value = ShareSlot> {
        (
            "[A-Za-z0-9._:-]{1,64}",
            "[A-Za-z0-9._:-]{1,64}",
            any::<u32>(),
            1..=u8::MAX,
        )
            .prop_map(|(key, node, version, index)| ShareSlot {
                key_id: KeyId::new(key).unwrap(),
                node_id: NodeId::new(node).unwrap(),
                version: KeyVersion::new(version),
                index: ShareIndex::new(index).unwrap(),
            })
    }

    proptest! {
        /// Both encodings round-trip, and a slot's encoding is its key
        /// version's and then the index byte.
        #[test]
        fn node_version_and_slot_encodings_round_trip(slot in arb_slot()) {
            let version = slot.node_version();
            let mut encoded_version = Vec::new();
            version.encode(&mut encoded_version);
            let mut reader = Reader::new(&encoded_version);
            prop_assert_eq!(NodeVersion::decode(&mut reader).unwrap(), version);
            prop_assert!(reader.finish("node version").is_ok());

            let mut encoded_slot = Vec::new();
            slot.encode(&mut encoded_slot);
            prop_assert_eq!(&encoded_slot[..encoded_version.len()], &encoded_version[..]);
            prop_assert_eq!(encoded_slot.len(), encoded_version.len() + 1);
            let mut reader = Reader::new(&encoded_slot);
            prop_assert_eq!(ShareSlot::decode(&mut reader).unwrap(), slot);
            prop_assert!(reader.finish("share slot").is_ok());
        }

        /// The encodings are injective: two different slots never encode
        /// alike (they go into AADs and KDF infos as is).
        #[test]
        fn slot_encodings_are_injective(a in arb_slot(), b in arb_slot()) {
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            a.encode(&mut ea);
            b.encode(&mut eb);
            prop_assert_eq!(a == b, ea == eb);
        }
    }
}
