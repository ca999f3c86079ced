//! Shared helpers of the integration tests: the tss-lib fixtures (found
//! through `shardkeep-test-support`), parsed, and the ids and peers the
//! tests use.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset"
)]

use std::path::PathBuf;

use shardkeep_keydata::{
    LocalPartySaveData, PeerTransport, RemotePeers, SelfTestResponder, TransportError,
};
use shardkeep_sss_core::Threshold;
use shardkeep_test_support::tss_lib::{self, TSS_LIB_THRESHOLD};
pub(crate) use shardkeep_test_support::tss_lib::{PARTIES, Protocol, compact};
use shardkeep_types::{KeyId, KeyVersion, NodeId, NodeVersion};
use zeroize::Zeroizing;

/// `tests/data/`: the vectors, and the fixtures under `tss-lib/`.
pub(crate) fn vectors_dir() -> PathBuf {
    shardkeep_test_support::data_dir(env!("CARGO_MANIFEST_DIR"), "")
}

/// The raw bytes of fixture `party` (0..5), in a wiped buffer.
pub(crate) fn fixture_bytes(protocol: Protocol, party: usize) -> Zeroizing<Vec<u8>> {
    tss_lib::fixture_bytes(protocol, party).unwrap()
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
pub(crate) fn group_threshold() -> Threshold {
    Threshold::from_tss_lib(TSS_LIB_THRESHOLD, PARTIES).unwrap()
}

/// Ids used across the tests.
pub(crate) fn keydata_id(node: &str) -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("key-1").unwrap(),
        node_id: NodeId::new(node).unwrap(),
        version: KeyVersion::new(1),
    }
}

/// Each party's sidecar answering encoded self-test requests from its own
/// save data, in this process (the tests hold every party of the fixture
/// group; `tests/remote_peers.rs` runs them in their own processes).
pub(crate) struct Sidecars<'a> {
    responders: Vec<SelfTestResponder<'a>>,
}

impl PeerTransport for Sidecars<'_> {
    fn exchange(&mut self, party_id: &[u8], request: &[u8]) -> Result<Vec<u8>, TransportError> {
        let responder = self
            .responders
            .iter_mut()
            .find(|r| r.party_id() == party_id)
            .ok_or("no sidecar for this party")?;
        Ok(responder.answer(request)?)
    }
}

/// Self-test peers for `party`: every other party of the set, reached
/// through the encoded messages.
pub(crate) fn peers_of(parties: &[LocalPartySaveData], party: usize) -> RemotePeers<Sidecars<'_>> {
    RemotePeers::new(Sidecars {
        responders: parties
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != party)
            .map(|(_, p)| SelfTestResponder::new(p))
            .collect(),
    })
}
