//! Every tss-lib fixture: byte-identical round trip, and a passing self-test
//! with the other fixture parties as peers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::{PARTIES, Protocol, all_parties, compact, fixture_bytes, group_threshold, peers_of};
use shardkeep_keydata::LocalPartySaveData;
use subtle::ConstantTimeEq;

#[test]
fn every_fixture_round_trips_byte_for_byte() {
    for protocol in Protocol::ALL {
        for party in 0..PARTIES {
            let original = fixture_bytes(protocol, party);
            let data = LocalPartySaveData::from_json(&original).unwrap();
            let written = data.to_json();
            assert_eq!(
                written.as_slice(),
                compact(&original).as_slice(),
                "{protocol:?} {party}"
            );
            let again = LocalPartySaveData::from_json(&written).unwrap();
            assert!(bool::from(again.ct_eq(&data)), "{protocol:?} {party}");
            assert_eq!(data.self_index().unwrap(), party);
        }
    }
}

#[test]
fn every_fixture_passes_its_self_test() {
    for protocol in Protocol::ALL {
        let parties = all_parties(protocol);
        for (i, data) in parties.iter().enumerate() {
            let mut peers = peers_of(&parties, i);
            let report = data.self_test(group_threshold(), &mut peers).unwrap();
            assert!(report.passed(), "{protocol:?} party {i}:\n{report}");
            println!("{protocol:?} party {i}:\n{report}");
        }
    }
}
