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
use std::io::{BufReader, BufWriter};
use std::path::Path;

use shardkeep_keydata::{
    LocalPartySaveData, PeerTransport, RemotePeers, SelfTestResponder, TransportError,
};
use shardkeep_sss_core::Threshold;
use shardkeep_test_support::peer_process::{PeerProcess, read_request, write_answer};
use shardkeep_test_support::tss_lib::{self, Protocol};
use zeroize::Zeroizing;

fn load(path: &Path) -> Result<LocalPartySaveData, Box<dyn Error>> {
    // The file holds Xi: read it into a buffer wiped on drop.
    let json = Zeroizing::new(std::fs::read(path)?);
    Ok(LocalPartySaveData::from_json(&json)?)
}

/// The peer: answers framed requests until stdin ends.
fn serve(path: &Path) -> Result<(), Box<dyn Error>> {
    let data = load(path)?;
    let mut responder = SelfTestResponder::new(&data);
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut output = BufWriter::new(std::io::stdout().lock());
    while let Some(request) = read_request(&mut input)? {
        match responder.answer(&request) {
            Ok(answer) => write_answer(&mut output, Ok(answer.as_slice()))?,
            // Refusals name what is wrong with the request, never a secret.
            Err(refusal) => write_answer(&mut output, Err(refusal.to_string().as_str()))?,
        }
    }
    Ok(())
}

/// Peer processes addressed by their party's `ShareID`.
struct Processes(Vec<(Vec<u8>, PeerProcess)>);

impl PeerTransport for Processes {
    fn exchange(&mut self, party_id: &[u8], request: &[u8]) -> Result<Vec<u8>, TransportError> {
        let (_, process) = self
            .0
            .iter_mut()
            .find(|(id, _)| id == party_id)
            .ok_or("no peer process for this party")?;
        Ok(process.exchange(request)?)
    }
}

/// The coordinator: party 0 self-tests with the other parties in their own
/// processes (this program, started as a peer).
fn demonstrate(protocol: Protocol) -> Result<(), Box<dyn Error>> {
    let me = std::env::current_exe()?;
    let data = load(&tss_lib::fixture_path(protocol, 0))?;
    let mut processes = Vec::new();
    for party in 1..tss_lib::PARTIES {
        let path = tss_lib::fixture_path(protocol, party);
        // Its ShareID (public, read from the file's text) addresses the
        // process; this process never loads that party's save data.
        let share_id = tss_lib::share_id(protocol, party)?;
        processes.push((share_id, PeerProcess::spawn(&me, [path])?));
    }
    let mut peers = RemotePeers::new(Processes(processes));
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
        Some(path) => serve(Path::new(&path)),
        None => {
            demonstrate(Protocol::Ecdsa)?;
            demonstrate(Protocol::Eddsa)
        }
    }
}
