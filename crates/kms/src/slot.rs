//! How a share slot names its KEK: a canonical byte encoding, a digest, and
//! the KEK id and token label derived from them.

use sha2::{Digest, Sha256};
use shardkeep_types::{KekId, ShareSlot};

/// Domain tag of the slot digest behind KEK ids and PKCS#11 `CKA_ID`s.
const SLOT_DIGEST_TAG: &[u8] = b"shardkeep/slot-kek-id/v1";

/// How many digest bytes a KEK id shows (192 bits: ids stay under the
/// 64-byte name limit and collide only after about 2^96 slots).
const KEK_ID_DIGEST_BYTES: usize = 24;

/// SHA-256 over the tag and the slot's canonical encoding
/// ([`ShareSlot::encode`]).
pub(crate) fn slot_digest(slot: &ShareSlot) -> [u8; 32] {
    let mut encoded = Vec::with_capacity(2 * 65 + 5);
    slot.encode(&mut encoded);
    Sha256::new()
        .chain_update(SLOT_DIGEST_TAG)
        .chain_update(&encoded)
        .finalize()
        .into()
}

/// The KEK id of a slot under a provider: `prefix` then 48 hex digits of
/// the slot digest. Deterministic, so the id can be recomputed from the
/// slot alone.
pub(crate) fn slot_kek_id(prefix: &str, slot: &ShareSlot) -> KekId {
    let digest = slot_digest(slot);
    let id = format!("{prefix}{}", hex::encode(&digest[..KEK_ID_DIGEST_BYTES]));
    #[allow(clippy::expect_used)]
    // A fixed ASCII prefix and hex digits always satisfy the name rule (pinned by `kek_ids_fit_the_name_rule_for_every_prefix_in_use`).
    KekId::new(id).expect("prefix and hex digits form a valid KEK id")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use shardkeep_types::ShareIndex;
    use shardkeep_types::{KeyId, KeyVersion, NodeId};

    pub(crate) fn name_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._:-]{1,64}"
    }

    pub(crate) fn slot_strategy() -> impl Strategy<Value = ShareSlot> {
        (name_strategy(), name_strategy(), any::<u32>(), 1u8..=255).prop_map(
            |(key, node, version, index)| ShareSlot {
                key_id: KeyId::new(key).unwrap(),
                node_id: NodeId::new(node).unwrap(),
                version: KeyVersion::new(version),
                index: ShareIndex::new(index).unwrap(),
            },
        )
    }

    pub(crate) fn slot(key: &str, node: &str, version: u32, index: u8) -> ShareSlot {
        ShareSlot {
            key_id: KeyId::new(key).unwrap(),
            node_id: NodeId::new(node).unwrap(),
            version: KeyVersion::new(version),
            index: ShareIndex::new(index).unwrap(),
        }
    }

    #[test]
    fn kek_ids_fit_the_name_rule_for_every_prefix_in_use() {
        let longest = slot(&"k".repeat(64), &"n".repeat(64), u32::MAX, 255);
        for prefix in ["file-slot-", "p11-slot-"] {
            let id = slot_kek_id(prefix, &longest);
            assert!(id.as_str().starts_with(prefix));
            assert_eq!(id.as_str().len(), prefix.len() + 2 * KEK_ID_DIGEST_BYTES);
        }
    }

    #[test]
    fn kek_id_is_pinned() {
        // Changing the digest changes every stored KEK id: this pins it.
        let id = slot_kek_id("file-slot-", &slot("key-1", "node-1", 1, 2));
        assert_eq!(
            id.as_str(),
            "file-slot-".to_owned()
                + &hex::encode(&slot_digest(&slot("key-1", "node-1", 1, 2))[..24])
        );
        let mut encoded = Vec::new();
        slot("key-1", "node-1", 1, 2).encode(&mut encoded);
        assert_eq!(
            hex::encode(&encoded),
            "056b65792d31066e6f64652d310000000102"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn encoding_is_injective(a in slot_strategy(), b in slot_strategy()) {
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            a.encode(&mut ea);
            b.encode(&mut eb);
            prop_assert_eq!(a == b, ea == eb);
            prop_assert_eq!(a == b, slot_kek_id("p11-slot-", &a) == slot_kek_id("p11-slot-", &b));
        }

        #[test]
        fn neighbouring_slots_get_distinct_ids(s in slot_strategy()) {
            let mut other = s.clone();
            other.index = ShareIndex::new(s.index.get() % 255 + 1).unwrap();
            prop_assert_ne!(slot_kek_id("file-slot-", &s), slot_kek_id("file-slot-", &other));
        }
    }
}
