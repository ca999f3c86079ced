//! Fixtures and JSON surgery for the unit tests. The fixtures themselves
//! are found through `shardkeep-test-support` (`tss_lib`), shared with the
//! integration tests, benches and examples.

use shardkeep_sss_core::Threshold;
use shardkeep_test_support::tss_lib::{self, Protocol};
use shardkeep_types::{KeyId, KeyVersion, NodeId, NodeVersion};
use zeroize::Zeroizing;

use crate::json::{self, Digits, Value};
use crate::save_data::LocalPartySaveData;
use crate::signing::InProcessPeers;

pub(crate) const PARTIES: usize = tss_lib::PARTIES;

/// The fixture group named `ecdsa` or `eddsa`.
pub(crate) fn protocol(name: &str) -> Protocol {
    match name {
        "ecdsa" => Protocol::Ecdsa,
        "eddsa" => Protocol::Eddsa,
        other => panic!("no fixture group {other}"),
    }
}

pub(crate) fn fixture_bytes(protocol: &str, party: usize) -> Zeroizing<Vec<u8>> {
    tss_lib::fixture_bytes(self::protocol(protocol), party).unwrap()
}

pub(crate) fn fixture(protocol: &str, party: usize) -> LocalPartySaveData {
    LocalPartySaveData::from_json(&fixture_bytes(protocol, party)).unwrap()
}

pub(crate) fn all_parties(protocol: &str) -> Vec<LocalPartySaveData> {
    (0..PARTIES).map(|i| fixture(protocol, i)).collect()
}

/// tss-lib threshold 2 of 5: 3 sign.
pub(crate) fn threshold() -> Threshold {
    Threshold::from_tss_lib(tss_lib::TSS_LIB_THRESHOLD, PARTIES).unwrap()
}

pub(crate) fn id(node: &str) -> NodeVersion {
    NodeVersion {
        key_id: KeyId::new("key-1").unwrap(),
        node_id: NodeId::new(node).unwrap(),
        version: KeyVersion::new(1),
    }
}

/// Peers for `party`: every other party of the set.
pub(crate) fn peers_of(parties: &[LocalPartySaveData], party: usize) -> InProcessPeers<'_> {
    InProcessPeers::new(
        parties
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != party)
            .map(|(_, p)| p),
    )
}

/// One step into a JSON value: a member name or an array index.
#[derive(Clone, Copy)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

pub(crate) fn at<'v>(value: &'v mut Value, path: &[Step<'_>]) -> &'v mut Value {
    path.iter().fold(value, |v, step| match (v, step) {
        (Value::Object(members), Step::Key(k)) => {
            &mut members.iter_mut().find(|(key, _)| key == k).unwrap().1
        }
        (Value::Array(items), Step::Index(i)) => &mut items[*i],
        _ => panic!("path does not fit"),
    })
}

pub(crate) fn copy(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Number(d) => Value::Number(Digits::from_canonical(Zeroizing::new(
            d.as_bytes().to_vec(),
        ))),
        Value::String(s) => Value::String(s.clone()),
        Value::Array(items) => Value::Array(items.iter().map(copy).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), copy(v))).collect()),
    }
}

/// Changes the last digit of a number by 5 (mod 10): another value of the
/// same length, and never one of five consecutive neighbours (the fixtures'
/// `Ks`).
pub(crate) fn bump(value: &mut Value) {
    let Value::Number(d) = value else {
        panic!("not a number")
    };
    let mut digits = d.as_bytes().to_vec();
    let last = digits.last_mut().unwrap();
    *last = b'0' + (*last - b'0' + 5) % 10;
    *value = Value::Number(Digits::from_canonical(Zeroizing::new(digits)));
}

/// The JSON tree of `data`, edited by `edit`, parsed again.
pub(crate) fn edited(
    data: &LocalPartySaveData,
    edit: impl FnOnce(&mut Value),
) -> crate::Result<LocalPartySaveData> {
    let mut value = json::parse(&data.to_json()).unwrap();
    edit(&mut value);
    LocalPartySaveData::from_json(&json::write(&value))
}

/// Removes top-level members.
pub(crate) fn without(value: &mut Value, keys: &[&str]) {
    let Value::Object(members) = value else {
        panic!("not an object")
    };
    members.retain(|(k, _)| !keys.contains(&k.as_str()));
}
