//! `shardkeep-audit-verify EXPORT WITNESS PUBLIC-KEY-HEX`
//!
//! Verifies an exported audit log (the binary export of
//! `shardkeep_audit::export`) against a checkpoint witness file and the
//! checkpoint signer's ed25519 public key (64 hex digits). Needs no database.
//!
//! Exit status: 0 the log verifies; 1 it does not (the first finding is
//! printed); 2 usage, unreadable or malformed input.
#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on its streams.

use std::process::ExitCode;

use ed25519_dalek::VerifyingKey;
use shardkeep_audit::{Error, parse_export, read_witness, verify};

const USAGE: &str = "usage: shardkeep-audit-verify EXPORT WITNESS PUBLIC-KEY-HEX";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [export, witness, key] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let key = match parse_key(key) {
        Ok(key) => key,
        Err(message) => {
            eprintln!("public key: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rows = match std::fs::read(export)
        .map_err(Error::from)
        .and_then(|bytes| parse_export(&bytes))
    {
        Ok(rows) => rows,
        Err(error) => {
            eprintln!("{export}: {error}");
            return ExitCode::from(2);
        }
    };
    let checkpoints = match read_witness(witness) {
        Ok(checkpoints) => checkpoints,
        Err(error) => {
            eprintln!("{witness}: {error}");
            return ExitCode::from(2);
        }
    };
    match verify(&rows, &checkpoints, &key) {
        Ok(verified) => {
            println!(
                "ok: {} records, head {} {}, {} checkpoints (latest {}), {} records after the latest checkpoint",
                verified.records,
                verified.head.sequence,
                hex::encode(verified.head.hash),
                verified.checkpoints,
                verified
                    .latest_checkpoint
                    .map_or_else(|| "none".to_owned(), |sequence| sequence.to_string()),
                verified.unwitnessed
            );
            ExitCode::SUCCESS
        }
        Err(Error::Tampered(finding)) => {
            println!("TAMPERED: {finding}");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
    }
}

fn parse_key(text: &str) -> Result<VerifyingKey, &'static str> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| "expected 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not an ed25519 public key")
}
