//! Entry points of the cargo-fuzz targets in `fuzz/`, compiled only with
//! `--cfg fuzzing` (cargo-fuzz sets it); not part of the API. It parses
//! arbitrary bytes with every decoder of input the service or a custodian
//! receives, re-encodes what parses and asserts the round trip (one
//! encoding per value), so a panic is a finding.

use ed25519_dalek::VerifyingKey;

use crate::approval::{Approval, ApprovalRequest};
use crate::destruction::DestructionStatement;
use crate::inventory::{InventoryChallenge, InventoryProof};
use crate::policy::Policy;
use crate::session::{SessionDescriptor, decode_submission, encode_submission};
use crate::zero_retention::ZeroRetentionCertificate;

/// Target `backup_decode`: approval requests and approvals, inventory
/// challenges and proofs, policies, session descriptors (parsed, then
/// refused for their signature under a fixed key), recovery submissions'
/// plaintext, zero-retention certificates and destruction statements
/// (parsed without their signatures).
///
/// # Panics
/// When something decoded re-encodes differently.
pub fn decode(data: &[u8]) {
    if let Ok(request) = ApprovalRequest::decode(data) {
        assert_eq!(
            request.encode().as_deref().ok(),
            Some(data),
            "approval request"
        );
    }
    if let Ok(approval) = Approval::decode(data) {
        assert_eq!(approval.encode(), data, "approval");
    }
    if let Ok(challenge) = InventoryChallenge::decode(data) {
        assert_eq!(challenge.encode(), data, "inventory challenge");
    }
    if let Ok(proof) = InventoryProof::decode(data) {
        assert_eq!(
            proof.encode().as_deref().ok(),
            Some(data),
            "inventory proof"
        );
    }
    if let Ok(policy) = Policy::decode(data) {
        assert_eq!(policy.encode(), data, "policy");
    }
    // A key no fuzzer input is signed by: the parse runs, the signature
    // check refuses; only a panic matters.
    if let Ok(key) = VerifyingKey::from_bytes(&[0x5a; 32])
        && let Ok(descriptor) = SessionDescriptor::decode_verify(data, &key)
    {
        assert_eq!(descriptor.as_bytes(), data, "session descriptor");
    }
    if let Ok(certificate) = ZeroRetentionCertificate::decode(data) {
        assert_eq!(
            certificate.encode().as_deref().ok(),
            Some(data),
            "zero-retention certificate"
        );
    }
    if let Ok(statement) = DestructionStatement::decode(data) {
        assert_eq!(statement.encode(), data, "destruction statement");
    }
    if let Ok(submission) = decode_submission(data) {
        let encoded = encode_submission(
            &submission.session,
            &submission.custodian,
            &submission.contents,
            &submission.signature,
        );
        assert_eq!(
            encoded.as_deref().ok().map(|e| &e[..]),
            Some(data),
            "recovery submission"
        );
    }
}
