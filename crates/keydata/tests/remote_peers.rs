//! The self-test with the other quorum members in their own processes: the
//! coordinator holds its own save data only, and each peer is the
//! `self_test_peer` example loading one party's save data, reached through
//! [`RemotePeers`] over a [`PeerTransport`] of child processes. Both curves,
//! with the tss-lib fixtures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::{PARTIES, Protocol, fixture, group_threshold};
use shardkeep_keydata::{Check, Error, Outcome, PeerTransport, RemotePeers, SelfTestPeers};
use shardkeep_test_support::peer_process::{PeerProcessError, PeerProcesses, example_path};
use shardkeep_test_support::tss_lib::{fixture_path, share_id};

/// Starts a peer process for each of `parties` of `protocol`'s fixtures.
fn start(
    protocol: Protocol,
    parties: impl IntoIterator<Item = usize>,
) -> RemotePeers<impl PeerTransport> {
    start_as(protocol, protocol, parties)
}

/// Peer processes loading `loaded`'s fixtures, addressed by the `ShareID`s
/// of the same parties of `addressed`'s.
fn start_as(
    addressed: Protocol,
    loaded: Protocol,
    parties: impl IntoIterator<Item = usize>,
) -> RemotePeers<impl PeerTransport> {
    let program = example_path("self_test_peer").unwrap();
    let peers = parties.into_iter().map(|party| {
        (
            share_id(addressed, party).unwrap(),
            &program,
            [fixture_path(loaded, party)],
        )
    });
    let mut processes = PeerProcesses::spawn_each(peers).unwrap();
    RemotePeers::new(move |party: &[u8], request: &[u8]| Ok(processes.exchange(party, request)?))
}

#[test]
fn the_self_test_passes_with_each_peer_in_its_own_process() {
    for protocol in [Protocol::Ecdsa, Protocol::Eddsa] {
        for coordinator in [0, 3] {
            let data = fixture(protocol, coordinator);
            let others = (0..PARTIES).filter(|&p| p != coordinator);
            let mut peers = start(protocol, others);
            let report = data.self_test(group_threshold(), &mut peers).unwrap();
            assert!(
                report.passed(),
                "{protocol:?} party {coordinator}: {report}"
            );
            assert_eq!(report.outcome(Check::SignAggregate), Some(&Outcome::Passed));
        }
    }
}

#[test]
fn the_share_ids_read_from_the_fixture_text_are_the_parsed_ones() {
    for protocol in [Protocol::Ecdsa, Protocol::Eddsa] {
        for party in 0..PARTIES {
            assert_eq!(
                share_id(protocol, party).unwrap(),
                fixture(protocol, party).share_id()
            );
        }
    }
}

#[test]
fn a_peer_holding_another_key_refuses_and_the_signature_fails() {
    // The coordinator is an EdDSA party; its peers hold ECDSA parties.
    let data = fixture(Protocol::Eddsa, 0);
    let mut peers = start_as(Protocol::Eddsa, Protocol::Ecdsa, 1..PARTIES);
    let report = data.self_test(group_threshold(), &mut peers).unwrap();
    let outcome = report.outcome(Check::SignAggregate).unwrap();
    assert!(
        matches!(outcome, Outcome::Failed(why) if why.contains("request is for another key")),
        "{outcome:?}"
    );
}

#[test]
fn a_missing_peer_process_is_a_transport_error() {
    let data = fixture(Protocol::Ecdsa, 0);
    // Party 1 completes party 0's quorum, but has no process.
    let mut peers = start(Protocol::Ecdsa, 2..PARTIES);
    let request = shardkeep_keydata::CommitRequest {
        session_id: [1; 32],
        curve: data.curve(),
        group_public_key: data.group_public_key(),
        quorum: [0, 1, 2]
            .map(|p| share_id(Protocol::Ecdsa, p).unwrap())
            .to_vec(),
        coordinator: data.share_id().to_vec(),
    };
    let Err(Error::PeerExchange { source, .. }) = peers.commit(&request) else {
        panic!("a commit without party 1's process went through");
    };
    assert!(matches!(
        source.downcast_ref::<PeerProcessError>(),
        Some(PeerProcessError::NoProcessForParty(_))
    ));
}
