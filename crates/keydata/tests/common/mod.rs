//! Shared helpers of the integration tests: the tss-lib fixtures.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;

use shardkeep_keydata::{InProcessPeers, LocalPartySaveData};
use shardkeep_sss_core::Threshold;
use shardkeep_types::{KeyId, KeyVersion, NodeId, NodeVersion};
use zeroize::Zeroizing;

/// `test-vectors/keydata/`.
pub(crate) fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/keydata")
}

/// Which fixture set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Ecdsa,
    Eddsa,
}

impl Protocol {
    pub(crate) const ALL: [Self; 2] = [Self::Ecdsa, Self::Eddsa];

    pub(crate) fn dir(self) -> &'static str {
        match self {
            Self::Ecdsa => "ecdsa",
            Self::Eddsa => "eddsa",
        }
    }
}

/// The raw bytes of fixture `party` (0..5), in a wiped buffer.
pub(crate) fn fixture_bytes(protocol: Protocol, party: usize) -> Zeroizing<Vec<u8>> {
    let path = vectors_dir()
        .join("tss-lib")
        .join(protocol.dir())
        .join(format!("keygen_data_{party}.json"));
    Zeroizing::new(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Fixture `party`, parsed.
pub(crate) fn fixture(protocol: Protocol, party: usize) -> LocalPartySaveData {
    LocalPartySaveData::from_json(&fixture_bytes(protocol, party)).unwrap()
}

/// All five parties of a set.
pub(crate) fn all_parties(protocol: Protocol) -> Vec<LocalPartySaveData> {
    (0..PARTIES).map(|i| fixture(protocol, i)).collect()
}

/// The fixtures' group: tss-lib threshold (degree) 2 of 5, so 3 sign.
pub(crate) const PARTIES: usize = 5;
pub(crate) fn group_threshold() -> Threshold {
    Threshold::from_tss_lib(2, PARTIES).unwrap()
}

/// Removes JSON whitespace (the fixtures' strings contain none).
pub(crate) fn compact(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .copied()
        .filter(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        .collect()
}

/// Ids used across the tests.
pub(crate) fn keydata_id(node: &str) -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("key-1").unwrap(),
        node_id: NodeId::new(node).unwrap(),
        version: KeyVersion::new(1),
    }
}

/// Self-test peers for `party`: every other party of the set.
pub(crate) fn peers_of(parties: &[LocalPartySaveData], party: usize) -> InProcessPeers<'_> {
    InProcessPeers::new(
        parties
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != party)
            .map(|(_, p)| p),
    )
}
