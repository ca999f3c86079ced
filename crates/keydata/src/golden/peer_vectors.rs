//! Vectors of the self-test's four peer messages (`peer_*`): built from the
//! tss-lib fixtures' public values (ids, group keys, public shares standing
//! in for nonce commitments) and fixed session ids, messages and shares.

use shardkeep_test_support::GoldenDir;

use super::{flip, set, vector};
use crate::peer_wire::{NonceCommitments, SignatureShares};
use crate::signing::{CommitRequest, NonceCommitment, SignRequest, SignatureShare};
use crate::test_support::fixture;

const SESSION_ID: [u8; 32] = *b"shardkeep self-test session 0001";
const MESSAGE: [u8; 32] = *b"shardkeep self-test message 0001";
const SHARE: [u8; 32] = [0x5a; 32];

fn commit_request(protocol: &str) -> CommitRequest {
    let coordinator = fixture(protocol, 0);
    CommitRequest {
        session_id: SESSION_ID,
        curve: coordinator.curve(),
        group_public_key: coordinator.group_public_key(),
        quorum: (0..3)
            .map(|i| fixture(protocol, i).share_id().to_vec())
            .collect(),
        coordinator: coordinator.share_id().to_vec(),
    }
}

/// Party `i`'s commitment: its public share and the group key stand in for
/// the nonce points (any valid points do).
fn commitment(protocol: &str, i: usize) -> NonceCommitment {
    let party = fixture(protocol, i);
    NonceCommitment {
        party_id: party.share_id().to_vec(),
        hiding: party.public_share().unwrap(),
        binding: party.group_public_key(),
    }
}

fn add(dir: &mut GoldenDir, name: &str, expect: &str, kind: &str, comment: &str, body: &[u8]) {
    let header = [
        ("expect", expect.to_owned()),
        ("message", kind.to_owned()),
        ("comment", comment.to_owned()),
    ];
    let folder = if expect == "ok" { "pass" } else { "fail" };
    dir.add(&format!("{folder}/peer_{name}"), &vector(&header, body));
}

pub(super) fn generate(dir: &mut GoldenDir) {
    let request = commit_request("ecdsa").encode().unwrap();
    add(
        dir,
        "commit_request_ecdsa",
        "ok",
        "commit-request",
        "ECDSA fixtures, quorum parties 0-2, coordinator party 0",
        &request,
    );
    add(
        dir,
        "commit_request_eddsa",
        "ok",
        "commit-request",
        "EdDSA fixtures, quorum parties 0-2, coordinator party 0",
        &commit_request("eddsa").encode().unwrap(),
    );
    let answer = NonceCommitments {
        session_id: SESSION_ID,
        commitments: vec![commitment("ecdsa", 1)],
    }
    .encode()
    .unwrap();
    add(
        dir,
        "nonce_commitments",
        "ok",
        "nonce-commitments",
        "ECDSA party 1's answer",
        &answer,
    );
    let sign = SignRequest {
        session_id: SESSION_ID,
        message: MESSAGE,
        commitments: (0..3).map(|i| commitment("ecdsa", i)).collect(),
    }
    .encode()
    .unwrap();
    add(
        dir,
        "sign_request",
        "ok",
        "sign-request",
        "ECDSA quorum parties 0-2",
        &sign,
    );
    let shares = SignatureShares {
        session_id: SESSION_ID,
        shares: vec![SignatureShare {
            party_id: fixture("ecdsa", 1).share_id().to_vec(),
            share: SHARE,
        }],
    }
    .encode()
    .unwrap();
    add(
        dir,
        "signature_shares",
        "ok",
        "signature-shares",
        "ECDSA party 1's answer",
        &shares,
    );

    // Offsets: magic 0..8, version 8, session id 9..41, then the fields.
    let quorum_count_at = 41 + 1 + 1 + 33;
    let mut trailing = shares.clone();
    trailing.push(0);
    let failures: Vec<(&str, &str, Vec<u8>, &str, &str)> = vec![
        (
            "commit_request_bad_magic",
            "commit-request",
            flip(&request, 7),
            "peer: Framing(BadMagic)",
            "last magic byte altered",
        ),
        (
            "commit_request_unsupported_version",
            "commit-request",
            set(&request, 8, &[2]),
            "peer: Framing(UnsupportedVersion)",
            "format version 2",
        ),
        (
            "commit_request_unknown_curve",
            "commit-request",
            set(&request, 41, &[3]),
            "peer: UnknownCurve",
            "curve byte 3",
        ),
        (
            "commit_request_group_key_too_short",
            "commit-request",
            set(&request, 42, &[31]),
            "peer: Framing(LengthOutOfRange)",
            "group key length 31",
        ),
        (
            "commit_request_quorum_of_one",
            "commit-request",
            set(&request, quorum_count_at, &[1]),
            "peer: Framing(LengthOutOfRange)",
            "quorum count 1 (a quorum has at least 2)",
        ),
        (
            "commit_request_truncated",
            "commit-request",
            request[..request.len() - 1].to_vec(),
            "peer: Framing(Truncated)",
            "last byte of the coordinator id cut",
        ),
        (
            "nonce_commitments_none",
            "nonce-commitments",
            set(&answer[..42], 41, &[0]),
            "peer: Framing(LengthOutOfRange)",
            "an empty list",
        ),
        (
            "sign_request_as_commit_request",
            "commit-request",
            sign,
            "peer: Framing(BadMagic)",
            "a sign request read as a commit request",
        ),
        (
            "signature_shares_trailing_byte",
            "signature-shares",
            trailing,
            "peer: Framing(TrailingBytes)",
            "one byte after the last share",
        ),
    ];
    for (name, kind, body, expect, comment) in failures {
        add(dir, name, expect, kind, comment, &body);
    }
}
