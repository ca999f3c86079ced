//! Recovery sessions as custodians see them: the descriptor the service
//! signs (`shkp-rsd`), and the submission a custodian sends back
//! (`shkp-rsb`, age-encrypted to the session's one-time recipient).
//!
//! A custodian never encrypts anything for a session it has not checked:
//! [`prepare_recovery_submission`] verifies the descriptor under the pinned
//! service key, checks that the session has not ended and that it is for
//! the very share the custodian's container holds (key, node, version,
//! split), and only then opens the container and seals the submission: the
//! container's plain contents (envelope and sealed protocol archive) and
//! the custodian's signature, with its registered receipt key, over the
//! session id, the envelope id and the archive hash.

use core::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use ed25519_dalek::{SIGNATURE_LENGTH, Signature, VerifyingKey};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{
    MAX_CONTAINER_CONTENTS_LEN, MAX_CONTAINER_LEN, OpenedContainer, TrustedSigners,
};
use shardkeep_storage::{ApprovalOperation, ApprovalRequestHash, RecoverySessionId};
use shardkeep_types::{
    ActorId, EnvelopeId, FramingError, Label, MAX_NAME_LEN, NodeVersion, Signer, SignerId,
    Timestamp,
};
use shardkeep_wire::{Reader, check_total_len, put_prefixed_u8, put_prefixed_u32};
use zeroize::Zeroizing;

use crate::approval::role_code;
use crate::error::Error;
use crate::registry::Role;

/// The session descriptor's magic.
pub const SESSION_DESCRIPTOR_MAGIC: &[u8; 8] = b"shkp-rsd";
/// The session descriptor's format version.
pub const SESSION_DESCRIPTOR_VERSION: u8 = 1;
/// Domain tag of the session descriptor's signature.
pub const SESSION_DESCRIPTOR_TAG: &[u8] = b"shardkeep/recovery-session/v1";
/// Longest session descriptor, in bytes.
pub const MAX_SESSION_DESCRIPTOR_LEN: usize = 2048;
/// Most approvals a descriptor names.
pub const MAX_SESSION_APPROVALS: usize = 8;
/// Longest age recipient in a descriptor, in bytes (an X25519 recipient is
/// 62).
pub const MAX_SESSION_RECIPIENT_LEN: usize = 128;

/// The recovery submission's magic (the plaintext inside the age file).
pub const SUBMISSION_MAGIC: &[u8; 8] = b"shkp-rsb";
/// The recovery submission's format version.
pub const SUBMISSION_VERSION: u8 = 1;
/// Domain tag of the custodian's signature in a submission.
pub const SUBMISSION_SIGNATURE_TAG: &[u8] = b"shardkeep/recovery-submission/v1";
/// Longest submission plaintext, in bytes.
pub const MAX_SUBMISSION_LEN: usize =
    8 + 1 + 16 + 1 + MAX_NAME_LEN + 4 + MAX_CONTAINER_CONTENTS_LEN + 64;
/// Longest age-encrypted submission, in bytes.
pub const MAX_SEALED_SUBMISSION_LEN: usize = MAX_CONTAINER_LEN + 64 * 1024;

/// A recovery session as the service signed it: what custodians check
/// before they encrypt their share to it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionDescriptor {
    /// The session.
    pub session: RecoverySessionId,
    /// The deployment the session runs in.
    pub deployment: Label,
    /// Recover or drill.
    pub operation: ApprovalOperation,
    /// The key version recovered.
    pub version: NodeVersion,
    /// Its split id.
    pub split_id: [u8; 32],
    /// The session's one-time age X25519 recipient (`age1...`).
    pub recipient: String,
    /// When the session started.
    pub started_at: Timestamp,
    /// When it ends at the latest.
    pub expires_at: Timestamp,
    /// The approval request it consumed.
    pub request: ApprovalRequestHash,
    /// Who approved it, in which role.
    pub approvals: Vec<(ActorId, Role)>,
    /// The service key that signed it.
    pub signer: SignerId,
    bytes: Vec<u8>,
}

impl fmt::Debug for SessionDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionDescriptor")
            .field("session", &self.session)
            .field("deployment", &self.deployment)
            .field("operation", &self.operation)
            .field("version", &self.version)
            .field("split_id", &hex::encode(self.split_id))
            .field("recipient", &self.recipient)
            .field("started_at", &self.started_at)
            .field("expires_at", &self.expires_at)
            .field("request", &self.request)
            .field("approvals", &self.approvals)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// The fields of a descriptor before it is signed.
pub(crate) struct UnsignedDescriptor<'a> {
    pub(crate) session: RecoverySessionId,
    pub(crate) deployment: &'a Label,
    pub(crate) operation: ApprovalOperation,
    pub(crate) version: &'a NodeVersion,
    pub(crate) split_id: [u8; 32],
    pub(crate) recipient: String,
    pub(crate) started_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) request: ApprovalRequestHash,
    pub(crate) approvals: Vec<(ActorId, Role)>,
}

impl UnsignedDescriptor<'_> {
    /// Encodes and signs: magic, version, session id (16), deployment,
    /// operation, key id, node id, version, split id, recipient (one-byte
    /// length), start and end (unix ms, u64), request hash, approval count
    /// then each approver id and role byte, signer id; then the Ed25519
    /// signature over [`SESSION_DESCRIPTOR_TAG`] and every byte before it.
    pub(crate) fn sign(self, signer: &dyn Signer) -> Result<SessionDescriptor, Error> {
        let invalid = |why| Error::SessionDescriptorInvalid(why);
        if self.approvals.is_empty() || self.approvals.len() > MAX_SESSION_APPROVALS {
            return Err(invalid("approval count"));
        }
        if self.expires_at <= self.started_at {
            return Err(invalid("times"));
        }
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(SESSION_DESCRIPTOR_MAGIC);
        out.push(SESSION_DESCRIPTOR_VERSION);
        out.extend_from_slice(&self.session.0);
        self.deployment.encode_prefixed(&mut out);
        out.push(self.operation.code());
        self.version.encode(&mut out);
        out.extend_from_slice(&self.split_id);
        put_prefixed_u8(
            &mut out,
            "recipient",
            self.recipient.as_bytes(),
            MAX_SESSION_RECIPIENT_LEN,
        )?;
        out.extend_from_slice(&self.started_at.as_unix_millis().to_be_bytes());
        out.extend_from_slice(&self.expires_at.as_unix_millis().to_be_bytes());
        out.extend_from_slice(&self.request.0);
        // At most MAX_SESSION_APPROVALS (checked above): fits a byte.
        out.push(u8::try_from(self.approvals.len()).map_err(|_| invalid("approval count"))?);
        for (approver, role) in &self.approvals {
            approver.encode_prefixed(&mut out);
            out.push(role_code(*role));
        }
        signer.signer_id().encode_prefixed(&mut out);
        let signature = signer.sign(&tagged(&out)).map_err(Error::Signing)?;
        out.extend_from_slice(&signature.to_bytes());
        check_total_len("session descriptor", out.len(), MAX_SESSION_DESCRIPTOR_LEN)?;
        SessionDescriptor::decode_verify(&out, &signer.verifying_key())
    }
}

/// `tag || signed bytes`, the descriptor signature's message.
fn tagged(signed: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SESSION_DESCRIPTOR_TAG.len() + signed.len());
    message.extend_from_slice(SESSION_DESCRIPTOR_TAG);
    message.extend_from_slice(signed);
    message
}

impl From<FramingError> for DescriptorInvalid {
    fn from(_: FramingError) -> Self {
        Self("framing")
    }
}

impl From<shardkeep_types::Error> for DescriptorInvalid {
    fn from(_: shardkeep_types::Error) -> Self {
        Self("a name or time")
    }
}

/// Why a descriptor is refused (mapped to
/// [`Error::SessionDescriptorInvalid`]).
struct DescriptorInvalid(&'static str);

impl SessionDescriptor {
    /// Decodes a descriptor and verifies its signature under `service_key`
    /// (the service's key, pinned by the custodian: never one the
    /// descriptor names).
    ///
    /// # Errors
    /// [`Error::SessionDescriptorInvalid`] naming what failed (framing, a
    /// field, the signature).
    pub fn decode_verify(bytes: &[u8], service_key: &VerifyingKey) -> Result<Self, Error> {
        Self::decode_verify_inner(bytes, service_key)
            .map_err(|DescriptorInvalid(why)| Error::SessionDescriptorInvalid(why))
    }

    fn decode_verify_inner(
        bytes: &[u8],
        service_key: &VerifyingKey,
    ) -> Result<Self, DescriptorInvalid> {
        check_total_len(
            "session descriptor",
            bytes.len(),
            MAX_SESSION_DESCRIPTOR_LEN,
        )?;
        let mut r = Reader::new(bytes);
        r.magic_and_version(
            "session descriptor",
            SESSION_DESCRIPTOR_MAGIC,
            SESSION_DESCRIPTOR_VERSION,
        )?;
        let session = RecoverySessionId(*r.array::<16>("session id")?);
        let deployment = Label::decode_prefixed(&mut r)?;
        let operation = ApprovalOperation::from_code(r.u8("operation")?)
            .ok_or(DescriptorInvalid("operation"))?;
        let version = NodeVersion::decode(&mut r)?;
        let split_id = *r.array::<32>("split id")?;
        let recipient = r.prefixed_u8("recipient", 1, MAX_SESSION_RECIPIENT_LEN)?;
        let started_at = Timestamp::from_unix_millis(r.u64("started at")?)?;
        let expires_at = Timestamp::from_unix_millis(r.u64("expires at")?)?;
        let request = ApprovalRequestHash(*r.array::<32>("request hash")?);
        let count = usize::from(r.u8("approval count")?);
        if count == 0 || count > MAX_SESSION_APPROVALS {
            return Err(DescriptorInvalid("approval count"));
        }
        let mut approvals = Vec::with_capacity(count);
        for _ in 0..count {
            let approver = ActorId::decode_prefixed(&mut r)?;
            let role =
                crate::approval::role_from_code(r.u8("role")?).ok_or(DescriptorInvalid("role"))?;
            approvals.push((approver, role));
        }
        let signer = SignerId::from_bytes(r.prefixed_u8("signer id", 1, MAX_NAME_LEN)?)?;
        let signed_len = r.offset();
        let signature = Signature::from_bytes(r.array::<SIGNATURE_LENGTH>("signature")?);
        r.finish("session descriptor")?;
        service_key
            .verify_strict(&tagged(&bytes[..signed_len]), &signature)
            .map_err(|_| DescriptorInvalid("signature"))?;
        // Authenticated: now check the values.
        let recipient =
            core::str::from_utf8(recipient).map_err(|_| DescriptorInvalid("recipient"))?;
        let parsed = age::x25519::Recipient::from_str(recipient)
            .map_err(|_| DescriptorInvalid("recipient"))?;
        if parsed.to_string() != recipient {
            return Err(DescriptorInvalid("recipient"));
        }
        if expires_at <= started_at {
            return Err(DescriptorInvalid("times"));
        }
        if !matches!(
            operation,
            ApprovalOperation::Recover | ApprovalOperation::Drill
        ) {
            return Err(DescriptorInvalid("operation"));
        }
        Ok(Self {
            session,
            deployment,
            operation,
            version,
            split_id,
            recipient: recipient.to_owned(),
            started_at,
            expires_at,
            request,
            approvals,
            signer,
            bytes: bytes.to_vec(),
        })
    }

    /// The signed encoding (what custodians are handed).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The session's recipient, parsed (checked at decoding).
    fn age_recipient(&self) -> Result<age::x25519::Recipient, Error> {
        age::x25519::Recipient::from_str(&self.recipient)
            .map_err(|_| Error::SessionDescriptorInvalid("recipient"))
    }
}

/// The message a custodian signs for a submission:
/// [`SUBMISSION_SIGNATURE_TAG`] || session id || envelope id || archive
/// hash.
pub(crate) fn submission_message(
    session: &RecoverySessionId,
    envelope: &EnvelopeId,
    archive_hash: &[u8; 32],
) -> Vec<u8> {
    let mut message = Vec::with_capacity(SUBMISSION_SIGNATURE_TAG.len() + 16 + 32 + 32);
    message.extend_from_slice(SUBMISSION_SIGNATURE_TAG);
    message.extend_from_slice(&session.0);
    message.extend_from_slice(envelope.as_bytes());
    message.extend_from_slice(archive_hash);
    message
}

/// A decrypted submission, framing checked, nothing else yet: the service
/// checks the signature and the contents (see the recovery operation).
pub(crate) struct SubmissionPlain {
    pub(crate) session: RecoverySessionId,
    pub(crate) custodian: ActorId,
    /// The container contents (holds the share: wiped on drop).
    pub(crate) contents: Zeroizing<Vec<u8>>,
    pub(crate) signature: [u8; SIGNATURE_LENGTH],
}

/// Encodes a submission's plaintext: magic, version, session id (16), the
/// custodian person's id, the container contents (four-byte length), the
/// signature (64).
pub(crate) fn encode_submission(
    session: &RecoverySessionId,
    custodian: &ActorId,
    contents: &[u8],
    signature: &[u8; SIGNATURE_LENGTH],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut out = Zeroizing::new(Vec::with_capacity(contents.len() + 160));
    out.extend_from_slice(SUBMISSION_MAGIC);
    out.push(SUBMISSION_VERSION);
    out.extend_from_slice(&session.0);
    custodian.encode_prefixed(&mut out);
    put_prefixed_u32(&mut out, "contents", contents, MAX_CONTAINER_CONTENTS_LEN)?;
    out.extend_from_slice(signature);
    Ok(out)
}

/// Decodes a submission's plaintext ([`encode_submission`]'s layout).
pub(crate) fn decode_submission(bytes: &[u8]) -> Result<SubmissionPlain, Error> {
    check_total_len("recovery submission", bytes.len(), MAX_SUBMISSION_LEN)?;
    let mut r = Reader::new(bytes);
    r.magic_and_version("recovery submission", SUBMISSION_MAGIC, SUBMISSION_VERSION)?;
    let session = RecoverySessionId(*r.array::<16>("session id")?);
    let custodian = ActorId::decode_prefixed(&mut r)?;
    let contents = Zeroizing::new(
        r.prefixed_u32("contents", 1, MAX_CONTAINER_CONTENTS_LEN)?
            .to_vec(),
    );
    let signature = *r.array::<SIGNATURE_LENGTH>("signature")?;
    r.finish("recovery submission")?;
    Ok(SubmissionPlain {
        session,
        custodian,
        contents,
        signature,
    })
}

/// Why an age file did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgeDecryptFailure {
    /// Well formed, but for other recipients.
    NotForThisIdentity,
    /// Malformed, corrupt, or more plaintext than allowed.
    Unreadable,
}

/// Decrypts an age file (binary or armored) with `identity` into a buffer
/// wiped on drop, reading at most `max` bytes of plaintext.
pub(crate) fn age_decrypt(
    file: &[u8],
    identity: &age::x25519::Identity,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, AgeDecryptFailure> {
    age_decrypt_any(file, core::slice::from_ref(identity), max)
}

/// [`age_decrypt`] with any of `identities`.
fn age_decrypt_any(
    file: &[u8],
    identities: &[age::x25519::Identity],
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, AgeDecryptFailure> {
    use AgeDecryptFailure::{NotForThisIdentity, Unreadable};
    let decryptor =
        age::Decryptor::new(age::armor::ArmoredReader::new(file)).map_err(|_| Unreadable)?;
    let identities = identities.iter().map(|id| id as &dyn age::Identity);
    let mut stream = match decryptor.decrypt(identities) {
        Ok(stream) => stream,
        Err(age::DecryptError::NoMatchingKeys) => return Err(NotForThisIdentity),
        Err(_) => return Err(Unreadable),
    };
    let mut plain = Zeroizing::new(Vec::new());
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    (&mut stream)
        .take(limit)
        .read_to_end(&mut plain)
        .map_err(|_| Unreadable)?;
    if plain.len() > max {
        return Err(Unreadable);
    }
    Ok(plain)
}

/// The custodian's side of a recovery session (what the CLI wraps):
/// checks the session and answers with the share.
///
/// In order: `descriptor` decodes and verifies under `service_key` (the
/// service's envelope-signing key, pinned by the custodian); the session
/// has not ended at `now`; `container` opens with `identity` and its
/// envelope verifies under the same pinned key (signature, checksum,
/// Feldman against its own commitments, archive hash); the envelope is for
/// the descriptor's key, node, version and split. Only then is the
/// submission made: the container's plain contents and `receipt_key`'s
/// signature over (session id, envelope id, archive hash), encrypted to the
/// session's one-time recipient.
///
/// # Errors
/// [`Error::SessionDescriptorInvalid`], [`Error::SessionDescriptorExpired`],
/// [`Error::ContainerUnreadable`], [`Error::Envelope`] (the container's
/// envelope does not verify), [`Error::SessionDescriptorMismatch`]
/// (`key`, `node`, `version`, `split`), [`Error::Signing`].
pub fn prepare_recovery_submission(
    descriptor: &[u8],
    service_key: &VerifyingKey,
    now: Timestamp,
    container: &[u8],
    identity: &age::x25519::Identity,
    custodian: &ActorId,
    receipt_key: &dyn Signer,
) -> Result<Vec<u8>, Error> {
    let identities = core::slice::from_ref(identity);
    prepare_submission(
        descriptor,
        service_key,
        now,
        container,
        identities,
        custodian,
        receipt_key,
    )
}

/// [`prepare_recovery_submission`] opening the container with any of the
/// person's identities.
pub(crate) fn prepare_submission(
    descriptor: &[u8],
    service_key: &VerifyingKey,
    now: Timestamp,
    container: &[u8],
    identities: &[age::x25519::Identity],
    custodian: &ActorId,
    receipt_key: &dyn Signer,
) -> Result<Vec<u8>, Error> {
    let (descriptor, plain) = unsealed_submission(
        descriptor,
        service_key,
        now,
        container,
        identities,
        custodian,
        receipt_key,
    )?;
    seal_submission(&descriptor, &plain)
}

/// Every check of [`prepare_recovery_submission`] and the signed
/// submission it would encrypt: the verified descriptor and the plaintext.
pub(crate) fn unsealed_submission(
    descriptor: &[u8],
    service_key: &VerifyingKey,
    now: Timestamp,
    container: &[u8],
    identities: &[age::x25519::Identity],
    custodian: &ActorId,
    receipt_key: &dyn Signer,
) -> Result<(SessionDescriptor, Zeroizing<Vec<u8>>), Error> {
    let descriptor = SessionDescriptor::decode_verify(descriptor, service_key)?;
    if now >= descriptor.expires_at {
        return Err(Error::SessionDescriptorExpired(descriptor.expires_at));
    }
    check_total_len("container", container.len(), MAX_CONTAINER_LEN)?;
    let contents = age_decrypt_any(container, identities, MAX_CONTAINER_CONTENTS_LEN)
        .map_err(|_| Error::ContainerUnreadable)?;
    let mut trusted = TrustedSigners::new();
    trusted.add(descriptor.signer.clone(), *service_key)?;
    let opened = OpenedContainer::decode_verify(&contents, &trusted)?;
    let header = opened.envelope().header();
    let ours = header.node_version();
    // Public values: plain comparisons.
    let mismatch = |field| Err(Error::SessionDescriptorMismatch { field });
    if ours.key_id != descriptor.version.key_id {
        return mismatch("key");
    }
    if ours.node_id != descriptor.version.node_id {
        return mismatch("node");
    }
    if ours.version != descriptor.version.version {
        return mismatch("version");
    }
    if header.split_id().as_bytes() != &descriptor.split_id {
        return mismatch("split");
    }
    let archive_hash = shardkeep_envelope::archive_hash(opened.archive());
    let plain = sign_submission(
        &descriptor,
        &contents,
        &opened.envelope().id(),
        &archive_hash,
        custodian,
        receipt_key,
    )?;
    Ok((descriptor, plain))
}

/// The last step of [`prepare_recovery_submission`], for a tool that
/// opened and checked the container itself: signs (session id, `envelope`,
/// `archive_hash`) with `receipt_key` and encrypts the submission holding
/// `contents` (the container's plaintext) to the session's recipient.
/// Nothing here checks `contents`; the service checks every submission
/// again on arrival.
///
/// # Errors
/// [`Error::Signing`]; [`Error::Framing`] for contents over
/// `MAX_CONTAINER_CONTENTS_LEN`; [`Error::SessionDescriptorInvalid`] when
/// the recipient cannot be encrypted to.
pub fn seal_recovery_submission(
    descriptor: &SessionDescriptor,
    contents: &[u8],
    envelope: &EnvelopeId,
    archive_hash: &[u8; 32],
    custodian: &ActorId,
    receipt_key: &dyn Signer,
) -> Result<Vec<u8>, Error> {
    let plain = sign_submission(
        descriptor,
        contents,
        envelope,
        archive_hash,
        custodian,
        receipt_key,
    )?;
    seal_submission(descriptor, &plain)
}

/// The submission's plaintext: `contents` and `receipt_key`'s signature
/// over (session id, `envelope`, `archive_hash`).
fn sign_submission(
    descriptor: &SessionDescriptor,
    contents: &[u8],
    envelope: &EnvelopeId,
    archive_hash: &[u8; 32],
    custodian: &ActorId,
    receipt_key: &dyn Signer,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let message = submission_message(&descriptor.session, envelope, archive_hash);
    let signature = receipt_key.sign(&message).map_err(Error::Signing)?;
    encode_submission(
        &descriptor.session,
        custodian,
        contents,
        &signature.to_bytes(),
    )
}

/// Encrypts a submission's plaintext to the session's one-time recipient.
fn seal_submission(descriptor: &SessionDescriptor, plain: &[u8]) -> Result<Vec<u8>, Error> {
    let recipient = descriptor.age_recipient()?;
    let encryptor =
        age::Encryptor::with_recipients(core::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|_| Error::SessionDescriptorInvalid("recipient"))?;
    let seal = || -> std::io::Result<Vec<u8>> {
        let mut writer = encryptor.wrap_output(Vec::new())?;
        writer.write_all(plain)?;
        writer.finish()
    };
    seal().map_err(|_| Error::SessionDescriptorInvalid("recipient"))
}

#[cfg(test)]
mod tests {
    use shardkeep_types::{InMemorySigner, KeyId, KeyVersion, NodeId};

    use super::*;

    /// A fixed age identity, so the descriptor's recipient is pinned.
    const IDENTITY: &str =
        "AGE-SECRET-KEY-1GQ9778VQXMMJVE8SK7J6VT8UJ4HDQAJUVSFCWCM02D8GEWQ72PVQ2Y5J33";

    fn signer() -> InMemorySigner {
        InMemorySigner::from_seed(SignerId::new("backup-server-1").unwrap(), &[0x5e; 32])
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    fn version() -> NodeVersion {
        NodeVersion {
            key_id: KeyId::new("key-1").unwrap(),
            node_id: NodeId::new("node-a").unwrap(),
            version: KeyVersion::new(3),
        }
    }

    fn descriptor() -> SessionDescriptor {
        let identity = age::x25519::Identity::from_str(IDENTITY).unwrap();
        UnsignedDescriptor {
            session: RecoverySessionId([0xab; 16]),
            deployment: &Label::new("prod-eu").unwrap(),
            operation: ApprovalOperation::Recover,
            version: &version(),
            split_id: [0x11; 32],
            recipient: identity.to_public().to_string(),
            started_at: at(1_800_000_000_000),
            expires_at: at(1_800_000_900_000),
            request: ApprovalRequestHash([0x22; 32]),
            approvals: vec![
                (ActorId::new("biz-1").unwrap(), Role::BusinessOwner),
                (ActorId::new("sec-2").unwrap(), Role::Security),
            ],
        }
        .sign(&signer())
        .unwrap()
    }

    /// The encodings are pinned: a change to either format fails here.
    #[test]
    fn golden_encodings() {
        let descriptor = descriptor();
        let bytes = descriptor.as_bytes();
        let signed = bytes.len() - SIGNATURE_LENGTH;
        assert_eq!(
            hex::encode(&bytes[..signed]),
            concat!(
                "73686b702d72736401",
                "abababababababababababababababab",
                "0770726f642d6575",
                "01",
                "056b65792d31",
                "066e6f64652d61",
                "00000003",
                "1111111111111111111111111111111111111111111111111111111111111111",
                "3e",
                "6167653174377278796576327a33727738327374646c72726570796333396e76",
                "6e38366c353037387a716b6635756173647938366a703673767079377061",
                "000001a3185c5000",
                "000001a3186a0ba0",
                "2222222222222222222222222222222222222222222222222222222222222222",
                "02",
                "0562697a2d3103",
                "057365632d3202",
                "0f6261636b75702d7365727665722d31",
            )
        );
        let mut message = SESSION_DESCRIPTOR_TAG.to_vec();
        message.extend_from_slice(&bytes[..signed]);
        signer()
            .verifying_key()
            .verify_strict(
                &message,
                &Signature::from_bytes(bytes[signed..].try_into().unwrap()),
            )
            .unwrap();

        let plain = encode_submission(
            &RecoverySessionId([0xab; 16]),
            &ActorId::new("cust-0-contact").unwrap(),
            &[0xc0, 0xc1, 0xc2],
            &[0x55; 64],
        )
        .unwrap();
        assert_eq!(
            hex::encode(&*plain),
            concat!(
                "73686b702d72736201",
                "abababababababababababababababab",
                "0e637573742d302d636f6e74616374",
                "00000003",
                "c0c1c2",
                "55555555555555555555555555555555555555555555555555555555555555555555",
                "555555555555555555555555555555555555555555555555555555555555",
            )
        );
        assert_eq!(
            hex::encode(submission_message(
                &RecoverySessionId([0xab; 16]),
                &EnvelopeId::from_bytes([0x33; 32]),
                &[0x44; 32],
            )),
            concat!(
                "73686172646b6565702f7265636f766572792d7375626d697373696f6e2f7631",
                "abababababababababababababababab",
                "3333333333333333333333333333333333333333333333333333333333333333",
                "4444444444444444444444444444444444444444444444444444444444444444",
            )
        );
    }

    /// `signed` (a descriptor without its signature) signed again, so a
    /// defect gets past the signature to reach its rule.
    fn resign(signed: &[u8]) -> Vec<u8> {
        let mut out = signed.to_vec();
        out.extend_from_slice(&signer().sign(&tagged(signed)).unwrap().to_bytes());
        out
    }

    /// What decoding a vector's body gives, as its `expect` header says it.
    fn outcome(kind: &str, body: &[u8]) -> String {
        let result = match kind {
            "session_descriptor" => {
                SessionDescriptor::decode_verify(body, &signer().verifying_key()).map(drop)
            }
            "submission" => decode_submission(body).map(drop),
            other => panic!("unknown kind {other}"),
        };
        match result {
            Ok(()) => "ok".to_owned(),
            Err(Error::SessionDescriptorInvalid(why)) => format!("descriptor_invalid {why}"),
            Err(Error::Framing(error)) => format!("framing {error}"),
            Err(other) => format!("error {other}"),
        }
    }

    /// The vectors of `tests/data/recovery/`, regenerated from fixed inputs
    /// and compared byte for byte; each stored body decodes with its
    /// expected outcome.
    #[test]
    fn golden_vectors() {
        use shardkeep_test_support::{GoldenDir, Vector, data_dir, read_dir};

        let dir = data_dir(env!("CARGO_MANIFEST_DIR"), "recovery");
        let good = descriptor();
        let bytes = good.as_bytes().to_vec();
        let signed = &bytes[..bytes.len() - SIGNATURE_LENGTH];
        let descriptor_vector = |expect: &str, comment: &str, body: Vec<u8>| {
            Vector::new(expect)
                .comment(comment)
                .header("kind", "session_descriptor")
                .header("signer-id", "backup-server-1")
                .hex("signer-seed", [0x5e; 32])
                .hex("signer-public", signer().verifying_key().as_bytes())
                .header(
                    "age-identity",
                    "the fixed test identity of crates/backup/src/session.rs",
                )
                .header("session", hex::encode([0xab; 16]))
                .header("deployment", "prod-eu")
                .header("operation", "recover")
                .header("version", "key-1/node-a/v3")
                .hex("split-id", [0x11; 32])
                .header("started-at", 1_800_000_000_000_u64)
                .header("expires-at", 1_800_000_900_000_u64)
                .hex("request", [0x22; 32])
                .header("approvals", "biz-1 business-owner, sec-2 security")
                .body(body)
        };
        let mut golden = GoldenDir::new(&dir);
        golden.add(
            "pass/session_descriptor",
            &descriptor_vector("ok", "a recovery session descriptor", bytes.clone()),
        );
        let mut bad_signature = bytes.clone();
        *bad_signature.last_mut().unwrap() ^= 0x01;
        golden.add(
            "fail/session_descriptor_bad_signature",
            &descriptor_vector(
                "descriptor_invalid signature",
                "last signature byte changed",
                bad_signature,
            ),
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        golden.add(
            "fail/session_descriptor_trailing_byte",
            &descriptor_vector(
                "descriptor_invalid framing",
                "one byte after the signature",
                trailing,
            ),
        );
        // Re-signed, so that the rule behind the signature is reached.
        let operation_at = 9 + 16 + 8;
        let mut delete = signed.to_vec();
        delete[operation_at] = ApprovalOperation::Delete.code();
        golden.add(
            "fail/session_descriptor_delete_operation",
            &descriptor_vector(
                "descriptor_invalid operation",
                "operation delete (a session recovers or drills), re-signed",
                resign(&delete),
            ),
        );
        let mut unknown = signed.to_vec();
        unknown[operation_at] = 9;
        golden.add(
            "fail/session_descriptor_unknown_operation",
            &descriptor_vector(
                "descriptor_invalid operation",
                "operation byte 9, re-signed",
                resign(&unknown),
            ),
        );
        let recipient_at = signed
            .windows(4)
            .position(|window| window == b"age1")
            .unwrap();
        let mut recipient = signed.to_vec();
        recipient[recipient_at + 10] = b'b';
        golden.add(
            "fail/session_descriptor_bad_recipient",
            &descriptor_vector(
                "descriptor_invalid recipient",
                "a recipient character changed (bech32 checksum), re-signed",
                resign(&recipient),
            ),
        );

        let session = RecoverySessionId([0xab; 16]);
        let custodian = ActorId::new("cust-0-contact").unwrap();
        let plain = encode_submission(&session, &custodian, b"shkp-ctr stand-in", &[0x55; 64])
            .unwrap()
            .to_vec();
        let submission_vector = |expect: &str, comment: &str, body: Vec<u8>| {
            Vector::new(expect)
                .comment(comment)
                .header("kind", "submission")
                .header("session", hex::encode(session.0))
                .header("custodian", custodian.as_str())
                .header("contents", "the 17 ASCII bytes 'shkp-ctr stand-in'")
                .hex("signature", [0x55; 64])
                .body(body)
        };
        golden.add(
            "pass/submission",
            &submission_vector(
                "ok",
                "a submission plaintext (inside the age file)",
                plain.clone(),
            ),
        );
        let mut trailing = plain.clone();
        trailing.push(0);
        golden.add(
            "fail/submission_trailing_byte",
            &submission_vector("framing trailing", "one byte after the signature", trailing),
        );
        let mut version = plain;
        version[8] = 2;
        golden.add(
            "fail/submission_version_2",
            &submission_vector("framing version", "format version 2", version),
        );
        golden.finish().unwrap();

        for sub in ["pass", "fail"] {
            for vector in read_dir(&dir.join(sub)).unwrap() {
                let got = outcome(vector.get("kind").unwrap(), vector.body_bytes());
                let expected = vector.expect();
                assert!(
                    got == expected || got.starts_with(&format!("{expected} ")) || {
                        // Framing errors name their kind in their message.
                        expected.starts_with("framing ")
                            && got.starts_with("framing ")
                            && got.to_lowercase().contains(&expected["framing ".len()..])
                    },
                    "{}: expected {expected}, got {got}",
                    vector.file()
                );
            }
        }
    }

    #[test]
    fn descriptors_round_trip_and_refuse_any_change() {
        let descriptor = descriptor();
        let key = signer().verifying_key();
        assert_eq!(
            SessionDescriptor::decode_verify(descriptor.as_bytes(), &key).unwrap(),
            descriptor
        );
        let bytes = descriptor.as_bytes();
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(SessionDescriptor::decode_verify(&trailing, &key).is_err());
        for cut in 0..bytes.len() {
            assert!(
                SessionDescriptor::decode_verify(&bytes[..cut], &key).is_err(),
                "cut {cut}"
            );
        }
        for offset in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[offset] ^= 0x01;
            assert!(
                matches!(
                    SessionDescriptor::decode_verify(&changed, &key),
                    Err(Error::SessionDescriptorInvalid(_))
                ),
                "offset {offset}"
            );
        }
        let other = InMemorySigner::from_seed(SignerId::new("backup-server-1").unwrap(), &[1; 32]);
        assert!(matches!(
            SessionDescriptor::decode_verify(bytes, &other.verifying_key()),
            Err(Error::SessionDescriptorInvalid("signature"))
        ));
    }

    #[test]
    fn submissions_round_trip_and_refuse_trailing_bytes() {
        let session = RecoverySessionId([7; 16]);
        let custodian = ActorId::new("cust-1").unwrap();
        let plain = encode_submission(&session, &custodian, &[1, 2, 3, 4], &[9; 64]).unwrap();
        let decoded = decode_submission(&plain).unwrap();
        assert_eq!(decoded.session, session);
        assert_eq!(decoded.custodian, custodian);
        assert_eq!(&*decoded.contents, &[1, 2, 3, 4]);
        assert_eq!(decoded.signature, [9; 64]);
        let mut trailing = plain.to_vec();
        trailing.push(0);
        assert!(decode_submission(&trailing).is_err());
        for cut in 0..plain.len() {
            assert!(decode_submission(&plain[..cut]).is_err(), "cut {cut}");
        }
    }
}
