//! `shardkeep-audit-verify` - verifies an exported audit log against the
//! checkpoints of its witness, read from outside the audited database.
//! Needs no access to that database. See `--help`.
#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on its streams.

use std::process::ExitCode;

use ed25519_dalek::VerifyingKey;
use shardkeep_audit::{
    Checkpoint, Error, Finding, ReviewArchive, parse_export, read_witness, verify,
    verify_review_archive,
};
#[cfg(feature = "postgres-witness")]
use shardkeep_audit::{PostgresWitness, Witness};
use shardkeep_types::ActorId;

#[cfg(feature = "postgres-witness")]
const USAGE_AND_SOURCES: &str = "\
usage: shardkeep-audit-verify --key PUBLIC-KEY-HEX [--witness FILE]... [--witness-db URL]... EXPORT

Verifies EXPORT (written by shardkeep_audit::export) against the signed
checkpoints of its witness and the checkpoint signer's ed25519 public key
(64 hex digits). Give every witness you hold: witness files (--witness) and
PostgreSQL witness databases (--witness-db, connecting as a reader role; the
URL is never printed). Their checkpoints are merged: each must be of the
exported log and signed by the key, all must lie on the one chain, and the
log must reach the highest of them.
";

#[cfg(not(feature = "postgres-witness"))]
const USAGE_AND_SOURCES: &str = "\
usage: shardkeep-audit-verify --key PUBLIC-KEY-HEX [--witness FILE]... EXPORT

Verifies EXPORT (written by shardkeep_audit::export) against the signed
checkpoints of its witness and the checkpoint signer's ed25519 public key
(64 hex digits). Give every witness file you hold (--witness); their
checkpoints are merged: each must be of the exported log and signed by the
key, all must lie on the one chain, and the log must reach the highest of
them. This build reads no database: export the log's lines of a PostgreSQL
witness to a file as its reader role (see the crate's README), or use a
build with the postgres-witness feature, which reads it directly.
";

const REVIEW_USAGE: &str = "
usage: shardkeep-audit-verify review --key PUBLIC-KEY-HEX [--witness FILE]...
           --reviewer ACTOR-ID=PUBLIC-KEY-HEX... ARCHIVE

Verifies a review archive (written by the backup service's
archive_audit_review: the signed reviews of a range of the log and the
export of its records) offline: the range's records chain to the head the
reviewers signed, a witnessed checkpoint signed by --key names that head,
and at least two distinct reviewers' signatures verify under the keys given
with --reviewer (each reviewer's registered approval key).
";

const EXIT_STATUS: &str = "
exit status:
  0  the log verifies up to its head; the records after the highest
     witnessed checkpoint are reported as unwitnessed
  1  tampered: a record changed, removed, reordered, inserted, relinked or
     malformed; a rewrite behind a witnessed checkpoint; a fork in the
     witness; a checkpoint not signed by the key or of another log
  2  bad input: usage, an unreadable or malformed export or witness
     (a retired v1 checkpoint line included), a bad key, a witness database
     that cannot be read
  3  not anchored: no witness given or no checkpoint in it, or the log
     ends before a witnessed head (records were cut off); for a review
     archive, no witnessed checkpoint at the reviewed head
  (review) 1 also for a forged or altered review, a review of another
     range, a reviewer whose key was not given, fewer than two reviewers,
     records changed, dropped or rewritten, or a witnessed head that
     differs from the reviewed one
";

/// Exit status for a log that verifies.
const VERIFIED: u8 = 0;
/// Exit status for a tampered log.
const TAMPERED: u8 = 1;
/// Exit status for unusable input.
const BAD_INPUT: u8 = 2;
/// Exit status for a log with no witness, or shorter than a witnessed head.
const NOT_ANCHORED: u8 = 3;

/// What the command line asks for.
struct Request {
    key: VerifyingKey,
    /// `Some` for the `review` subcommand: the reviewers' keys.
    reviewers: Option<Vec<(ActorId, VerifyingKey)>>,
    witness_files: Vec<String>,
    #[cfg(feature = "postgres-witness")]
    witness_databases: Vec<String>,
    export: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let request = match parse_args(&args) {
        Ok(None) => {
            print!("{USAGE_AND_SOURCES}{REVIEW_USAGE}{EXIT_STATUS}");
            return ExitCode::from(VERIFIED);
        }
        Ok(Some(request)) => request,
        Err(message) => {
            eprintln!(
                "{message}\n{}",
                USAGE_AND_SOURCES.lines().next().unwrap_or_default()
            );
            return ExitCode::from(BAD_INPUT);
        }
    };
    ExitCode::from(run(&request))
}

/// The request, or `None` when help was asked for.
fn parse_args(args: &[String]) -> Result<Option<Request>, String> {
    let (mut reviewers, args) = match args.split_first() {
        Some((first, rest)) if first == "review" => (Some(Vec::new()), rest),
        _ => (None, args),
    };
    let mut key = None;
    let mut witness_files = Vec::new();
    #[cfg(feature = "postgres-witness")]
    let mut witness_databases = Vec::new();
    let mut export = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--key" => key = Some(parse_key(&value("--key")?)?),
            "--witness" => witness_files.push(value("--witness")?),
            "--reviewer" => match reviewers.as_mut() {
                Some(reviewers) => reviewers.push(parse_reviewer(&value("--reviewer")?)?),
                None => return Err("--reviewer is an option of the review subcommand".to_owned()),
            },
            #[cfg(feature = "postgres-witness")]
            "--witness-db" => witness_databases.push(value("--witness-db")?),
            #[cfg(not(feature = "postgres-witness"))]
            "--witness-db" => {
                return Err("--witness-db: this build reads no database (feature \
                            postgres-witness); export the witness lines to a file \
                            and pass it with --witness"
                    .to_owned());
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            path if export.is_none() => export = Some(path.to_owned()),
            _ => return Err("more than one export given".to_owned()),
        }
    }
    if reviewers.as_ref().is_some_and(Vec::is_empty) {
        return Err("review: give each reviewer's key with --reviewer".to_owned());
    }
    Ok(Some(Request {
        key: key.ok_or("--key is required")?,
        reviewers,
        witness_files,
        #[cfg(feature = "postgres-witness")]
        witness_databases,
        export: export.ok_or("no export given")?,
    }))
}

/// `ACTOR-ID=PUBLIC-KEY-HEX`.
fn parse_reviewer(text: &str) -> Result<(ActorId, VerifyingKey), String> {
    let (id, key) = text
        .split_once('=')
        .ok_or("--reviewer: expected ACTOR-ID=PUBLIC-KEY-HEX")?;
    let id = ActorId::new(id).map_err(|_| format!("--reviewer: invalid actor id {id:?}"))?;
    let key = parse_public_key(key).map_err(|why| format!("--reviewer {id}: {why}"))?;
    Ok((id, key))
}

fn parse_key(text: &str) -> Result<VerifyingKey, String> {
    parse_public_key(text).map_err(|why| format!("--key: {why}"))
}

fn parse_public_key(text: &str) -> Result<VerifyingKey, &'static str> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| "expected 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not an ed25519 public key")
}

fn run(request: &Request) -> u8 {
    if let Some(reviewers) = &request.reviewers {
        return run_review(request, reviewers);
    }
    let export = match std::fs::read(&request.export)
        .map_err(Error::from)
        .and_then(|bytes| parse_export(&bytes))
    {
        Ok(export) => export,
        Err(error) => {
            eprintln!("{}: {error}", request.export);
            return BAD_INPUT;
        }
    };
    let (witness, sources) = match read_witnesses(request, &export.log_id) {
        Ok(read) => read,
        Err(status) => return status,
    };
    if sources.is_empty() {
        eprintln!(
            "NOT ANCHORED: no witness given; an audit log verified against itself proves nothing"
        );
        return NOT_ANCHORED;
    }
    match verify(&export, &witness, &request.key) {
        Ok(verified) => {
            println!(
                "ok: log {}, {} records, head {} {}, {} witnessed checkpoints (highest {}), {} records after it unwitnessed",
                verified.log_id,
                verified.records,
                verified.head.sequence,
                hex::encode(verified.head.hash),
                verified.checkpoints,
                verified.latest_checkpoint,
                verified.unwitnessed
            );
            VERIFIED
        }
        Err(Error::Tampered(finding)) => {
            let status = match finding {
                Finding::NoWitness | Finding::Truncated { .. } => {
                    println!("NOT ANCHORED: {finding}");
                    NOT_ANCHORED
                }
                _ => {
                    println!("TAMPERED: {finding}");
                    TAMPERED
                }
            };
            if sources.len() > 1 {
                let mut first = 1;
                for (name, count) in &sources {
                    match count {
                        0 => println!("  no witness lines: {name}"),
                        _ => println!("  witness lines {first}..={}: {name}", first + count - 1),
                    }
                    first += count;
                }
            }
            status
        }
        Err(error) => {
            eprintln!("{error}");
            BAD_INPUT
        }
    }
}

/// A witness source's name and how many checkpoints it gave.
type Source = (String, usize);

/// Every source's checkpoints, merged in the order given, and each
/// source's name and count (to name a line in a finding); the exit status
/// when a source cannot be read.
fn read_witnesses(
    request: &Request,
    #[cfg_attr(not(feature = "postgres-witness"), allow(unused_variables))]
    log: &shardkeep_audit::AuditLogId,
) -> Result<(Vec<Checkpoint>, Vec<Source>), u8> {
    let mut witness: Vec<Checkpoint> = Vec::new();
    let mut sources: Vec<Source> = Vec::new();
    for path in &request.witness_files {
        match read_witness(path) {
            Ok(checkpoints) => {
                sources.push((path.clone(), checkpoints.len()));
                witness.extend(checkpoints);
            }
            Err(error) => {
                eprintln!("{path}: {error}");
                return Err(BAD_INPUT);
            }
        }
    }
    #[cfg(feature = "postgres-witness")]
    for (index, url) in request.witness_databases.iter().enumerate() {
        let name = format!("witness database #{}", index + 1);
        match read_witness_database(url, log) {
            Ok(checkpoints) => {
                sources.push((name, checkpoints.len()));
                witness.extend(checkpoints);
            }
            Err(error) => {
                eprintln!("{name}: {error}");
                return Err(BAD_INPUT);
            }
        }
    }
    Ok((witness, sources))
}

/// The `review` subcommand: verifies a review archive.
fn run_review(request: &Request, reviewers: &[(ActorId, VerifyingKey)]) -> u8 {
    let archive = match std::fs::read(&request.export)
        .map_err(Error::from)
        .and_then(|bytes| ReviewArchive::parse(&bytes))
    {
        Ok(archive) => archive,
        Err(error) => {
            eprintln!("{}: {error}", request.export);
            return BAD_INPUT;
        }
    };
    let (witness, _) = match read_witnesses(request, &archive.export.log_id) {
        Ok(read) => read,
        Err(status) => return status,
    };
    match verify_review_archive(&archive, &witness, &request.key, reviewers) {
        Ok(verified) => {
            let names: Vec<&str> = verified.reviewers.iter().map(ActorId::as_str).collect();
            println!(
                "ok: log {}, records {}..={} ({}), head {}, witnessed; reviewed by {}",
                verified.range.log_id,
                verified.range.first,
                verified.range.last,
                verified.records,
                hex::encode(verified.range.head_hash),
                names.join(", ")
            );
            VERIFIED
        }
        Err(Error::Tampered(finding @ Finding::RangeHeadUnwitnessed { .. })) => {
            println!("NOT ANCHORED: {finding}");
            NOT_ANCHORED
        }
        Err(Error::Tampered(finding)) => {
            println!("TAMPERED: {finding}");
            TAMPERED
        }
        Err(error) => {
            eprintln!("{error}");
            BAD_INPUT
        }
    }
}

/// Reads the checkpoints of `log` from a PostgreSQL witness.
#[cfg(feature = "postgres-witness")]
fn read_witness_database(
    url: &str,
    log: &shardkeep_audit::AuditLogId,
) -> Result<Vec<Checkpoint>, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut witness = PostgresWitness::connect(url).await?;
        let checkpoints = witness.read(log).await;
        witness.close().await;
        checkpoints
    })
}
