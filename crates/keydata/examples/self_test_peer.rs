//! One party's side of the node self-test in its own process: what another
//! node's sidecar does, for tests that must hold one party's secret per
//! process.
//!
//! With a path (`self_test_peer <save-data.json>`) it is a peer: it loads
//! ONE party's save data (tss-lib's keystore JSON) and answers the self-test
//! requests framed on stdin (`shardkeep_test_support::peer_process`) with
//! framed answers on stdout, until stdin ends. Each answer carries nonce
//! commitments or a signature share; the party's `Xi` never leaves the
//! process. The tests (`tests/remote_peers.rs`) start it that way.
//!
//! Without arguments it shows the whole exchange: it loads party 0 of the
//! ECDSA and EdDSA fixtures, starts itself as a peer process for each other
//! party, and runs party 0's self-test through `RemotePeers`.
//!
//! Run: `cargo run -p shardkeep-keydata --example self_test_peer`
#![allow(clippy::print_stdout, reason = "the demonstration reports its result")]

use std::error::Error;
use std::path::Path;

use shardkeep_keydata::{LocalPartySaveData, RemotePeers, SelfTestResponder};
use shardkeep_sss_core::Threshold;
use shardkeep_test_support::peer_process::{PeerProcesses, serve};
use shardkeep_test_support::tss_lib::{self, Protocol};
use zeroize::Zeroizing;

fn load(path: &Path) -> Result<LocalPartySaveData, Box<dyn Error>> {
    // The file holds Xi: read it into a buffer wiped on drop.
    let json = Zeroizing::new(std::fs::read(path)?);
    Ok(LocalPartySaveData::from_json(&json)?)
}

/// The peer: answers framed requests until stdin ends. Refusals name what
/// is wrong with the request, never a secret.
fn peer(path: &Path) -> Result<(), Box<dyn Error>> {
    let data = load(path)?;
    let mut responder = SelfTestResponder::new(&data);
    Ok(serve(|request| responder.answer(request))?)
}

/// The coordinator: party 0 self-tests with the other parties in their own
/// processes (this program, started as a peer).
fn demonstrate(protocol: Protocol) -> Result<(), Box<dyn Error>> {
    let me = std::env::current_exe()?;
    let data = load(&tss_lib::fixture_path(protocol, 0))?;
    // Each party's ShareID (public, read from the file's text) addresses its
    // process; this process never loads that party's save data.
    let others = (1..tss_lib::PARTIES).map(|party| {
        let share_id = tss_lib::share_id(protocol, party)?;
        Ok((share_id, &me, [tss_lib::fixture_path(protocol, party)]))
    });
    let mut processes =
        PeerProcesses::spawn_each(others.collect::<Result<Vec<_>, Box<dyn Error>>>()?)?;
    let mut peers =
        RemotePeers::new(|party: &[u8], request: &[u8]| Ok(processes.exchange(party, request)?));
    let group = Threshold::from_tss_lib(tss_lib::TSS_LIB_THRESHOLD, tss_lib::PARTIES)?;
    let report = data.self_test(group, &mut peers)?;
    println!("{protocol:?} party 0, peers in their own processes:");
    print!("{report}");
    if report.passed() {
        Ok(())
    } else {
        Err("the self-test failed".into())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    match std::env::args_os().nth(1) {
        Some(path) => peer(Path::new(&path)),
        None => {
            demonstrate(Protocol::Ecdsa)?;
            demonstrate(Protocol::Eddsa)
        }
    }
}
