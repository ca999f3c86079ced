//! One party's side of the node self-test in its own process: what another
//! node's sidecar does, for tests that must hold one party's secret per
//! process. It loads ONE party's save data (tss-lib's keystore JSON, the
//! path given as its argument) and answers the self-test requests framed on
//! stdin (`shardkeep_test_support::peer_process`) with framed answers on
//! stdout, until stdin ends. Each answer carries nonce commitments or a
//! signature share; the party's `Xi` never leaves this process.
//!
//! Run by the tests (`tests/remote_peers.rs`), as
//! `self_test_peer <save-data.json>`.

use std::error::Error;
use std::io::{BufReader, BufWriter};

use shardkeep_keydata::{LocalPartySaveData, SelfTestResponder};
use shardkeep_test_support::peer_process::{read_request, write_answer};
use zeroize::Zeroizing;

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args_os()
        .nth(1)
        .ok_or("usage: self_test_peer <save-data.json>")?;
    // The file holds Xi: read it into a buffer wiped on drop.
    let json = Zeroizing::new(std::fs::read(&path)?);
    let data = LocalPartySaveData::from_json(&json)?;
    drop(json);
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
