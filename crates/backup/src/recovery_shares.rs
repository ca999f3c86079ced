//! Shares arriving in a recovery session, and the recovery at threshold.
//!
//! Each submission is checked on arrival, in order: it decrypts with the
//! session's one-time identity and names the session; the envelope inside
//! verifies under the service's signer (signature, checksum, share rules,
//! archive hash); the custodian it names is registered and active, and its
//! signature over (session id, envelope id, archive hash) verifies under
//! that person's registered receipt key, looked up now; the envelope is for
//! the session's key, node, version, curve and split, bound to its slot as
//! the stored split reference says, with the stored commitments; the share
//! passes the Feldman check against the commitments stored at generate
//! (never those the share brings); the custody map names this person for
//! this slot and envelope; no share of the index was accepted before. A
//! share that fails is rejected with its [`ShareRejection`], the others
//! stay. Server-held shares join only when the approved request allowed
//! it, and only as many as complete the threshold, each read recorded in
//! the access log and the audit log.
//!
//! At threshold the shares are combined (robustly: a share that does not
//! fit the stored commitments is set aside), the secret is checked against
//! the signed public share, the save data is regenerated from the sealed
//! protocol archive and written atomically as `.keydata.enc` in the
//! approved target, loaded back, compared, and self-tested with the peers;
//! then everything is wiped and the session is closed.

use core::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, VerifyingKey};
use shardkeep_audit::{EventType, Outcome};
use shardkeep_envelope::deps::age;
use shardkeep_envelope::{CurveCommitments, CurveShare, OpenedContainer, VerifiedEnvelope};
use shardkeep_keydata::{
    KeystoreCodec, LocalPartySaveData, SealedArchive, SelfTestPeers, SelfTestReport, WriteMode,
    load_keystore, regenerate, write_keystore,
};
use shardkeep_kms::KekPin;
use shardkeep_sss_core::{Commitments, Curve, Ed25519, Secp256k1, Share, combine_verified};
use shardkeep_storage::{
    ApprovalOperation, CustodyEntry, CustodyStore, DrillOutcome, DrillReport, DrillStore,
    PersonRecord, PersonState, RecoverySessionId, RecoverySessionOutcome, RecoverySessionStore,
    RegistryStore, SealedShareStore, ShareAccess, ShareAccessLog, SlotKekStore, Storage,
    Transaction,
};
use shardkeep_types::{ActorId, FreeText, Label, ShareIndex, Threshold};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::access::{RateCheck, RateKind};
use crate::error::Error;
use crate::recovery::{AcceptedShare, LiveSession};
use crate::reference::VerifiedSplit;
use crate::registry::Role;
use crate::service::BackupService;
use crate::session::{
    AgeDecryptFailure, MAX_SEALED_SUBMISSION_LEN, MAX_SUBMISSION_LEN, age_decrypt,
    decode_submission,
};

/// Most age stanzas a submission may carry (a custodian's tool writes one;
/// more cost the service an X25519 agreement each).
pub const MAX_SUBMISSION_STANZAS: usize = 4;

/// Most submissions one call of
/// [`submit_recovery_shares`](BackupService::submit_recovery_shares) takes.
pub const MAX_SUBMISSIONS_PER_CALL: usize = 16;

/// Why a submitted share was rejected. The other shares of the call stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShareRejection {
    /// The submission does not decrypt or does not decode (damaged, too
    /// long, or not a submission).
    Unreadable,
    /// It was encrypted to another session's recipient, or names another
    /// session.
    OtherSession,
    /// The envelope inside does not verify under the service's signer
    /// (signature, checksum, share rules, archive hash).
    EnvelopeInvalid,
    /// The custodian it names is not a registered, active person with a
    /// receipt key.
    UnknownCustodian,
    /// The custodian's signature does not verify under their registered
    /// receipt key.
    CustodianSignatureInvalid,
    /// The share is of another key.
    OtherKey,
    /// The share is of another node.
    OtherNode,
    /// The share is of another version.
    OtherVersion,
    /// The share is on another curve.
    OtherCurve,
    /// The share is of another split of the version.
    OtherSplit,
    /// The envelope is not bound to its slot as the stored split reference
    /// says (slot, binding, threshold or commitments).
    NotBoundToSlot,
    /// The share fails the Feldman check against the stored commitments.
    FeldmanCheckFailed,
    /// The custody map does not name this custodian and envelope for the
    /// share's slot (or the slot is not an external one).
    NotTheSlotsCustodian,
    /// A share of this index was already accepted.
    Duplicate,
    /// A server-held index, in a drill (drills use external shares only).
    ServerShareInDrill,
}

impl ShareRejection {
    /// Whether the custodian's signature was checked before this
    /// rejection: only then is the custodian the submission names known to
    /// have sent it (and the rejection counted against them; otherwise
    /// against the caller who handed it in).
    #[must_use]
    pub const fn custodian_authenticated(self) -> bool {
        !matches!(
            self,
            Self::Unreadable
                | Self::OtherSession
                | Self::EnvelopeInvalid
                | Self::UnknownCustodian
                | Self::CustodianSignatureInvalid
        )
    }

    /// The reason's name, as audited.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unreadable => "unreadable",
            Self::OtherSession => "other-session",
            Self::EnvelopeInvalid => "envelope-invalid",
            Self::UnknownCustodian => "unknown-custodian",
            Self::CustodianSignatureInvalid => "custodian-signature-invalid",
            Self::OtherKey => "other-key",
            Self::OtherNode => "other-node",
            Self::OtherVersion => "other-version",
            Self::OtherCurve => "other-curve",
            Self::OtherSplit => "other-split",
            Self::NotBoundToSlot => "not-bound-to-slot",
            Self::FeldmanCheckFailed => "feldman-check-failed",
            Self::NotTheSlotsCustodian => "not-the-slots-custodian",
            Self::Duplicate => "duplicate",
            Self::ServerShareInDrill => "server-share-in-drill",
        }
    }
}

impl fmt::Display for ShareRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One rejected submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedShare {
    /// Its position in the call that submitted it.
    pub position: usize,
    /// The custodian it names, once it decoded.
    pub custodian: Option<ActorId>,
    /// The share index its envelope claims, once it verified.
    pub index: Option<ShareIndex>,
    /// Why.
    pub reason: ShareRejection,
}

/// Where an accepted share came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareSource {
    /// A custodian's submission.
    Custodian(ActorId),
    /// The server's sealed share (read under its slot KEK).
    Server,
}

/// How a recovery session stands after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryOutcome {
    /// Below threshold: the session waits for more shares.
    Waiting,
    /// Recovered: the keystore was written, loaded and self-tested (see
    /// the report for the result).
    Recovered {
        /// The keystore file written.
        keystore: PathBuf,
        /// The self-test with the peers.
        self_test: SelfTestReport,
    },
    /// A drill ran: the keystore was written to a sandbox under a one-time
    /// KEK, loaded, self-tested and deleted.
    Drilled {
        /// The self-test with the peers.
        self_test: SelfTestReport,
        /// Whether the sandbox keystore and directory are gone.
        sandbox_deleted: bool,
        /// The drill report as stored (`shardkeep-drill-report-v1`).
        report: String,
    },
    /// The recovery failed at threshold (the session is closed).
    Failed {
        /// Why.
        reason: String,
    },
}

/// Where a recovery session's time went, measured in place (wall clock)
/// over its start and every submission call: an operator sees what a slow
/// recovery waited on, and [`own_work`](Self::own_work) is what none of
/// the steps covers (queries, audit records, descriptors, bookkeeping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryTimings {
    /// Decrypting the submissions (age, the session's identity).
    pub age_unwrap: Duration,
    /// Signature checks: the split reference at the start; for each
    /// share, its envelope's signature and checksum, the custodian's
    /// signature, the binding and Feldman (for a server share, opening its
    /// envelope under the slot KEK).
    pub checks: Duration,
    /// The session's one-time age identity and the signed descriptor.
    pub session_keys: Duration,
    /// The robust combine against the stored commitments.
    pub combine: Duration,
    /// Rebuilding the save data from `Xi` and the sealed archive.
    pub regenerate: Duration,
    /// Writing `.keydata.enc` atomically (encryption, file and directory
    /// fsyncs).
    pub keystore_write: Duration,
    /// Reading it back, decrypting, parsing and comparing it.
    pub keystore_load: Duration,
    /// The self-test with the other parties' sidecars.
    pub self_test: Duration,
    /// The database's durable commits.
    pub commits: Duration,
    /// The session's start and its submission calls, end to end.
    pub total: Duration,
}

impl RecoveryTimings {
    /// The total less every step above.
    #[must_use]
    pub fn own_work(&self) -> Duration {
        self.total.saturating_sub(
            self.age_unwrap
                + self.checks
                + self.session_keys
                + self.combine
                + self.regenerate
                + self.keystore_write
                + self.keystore_load
                + self.self_test
                + self.commits,
        )
    }

    fn add(&mut self, other: &Self) {
        self.age_unwrap += other.age_unwrap;
        self.checks += other.checks;
        self.session_keys += other.session_keys;
        self.combine += other.combine;
        self.regenerate += other.regenerate;
        self.keystore_write += other.keystore_write;
        self.keystore_load += other.keystore_load;
        self.self_test += other.self_test;
        self.commits += other.commits;
        self.total += other.total;
    }
}

/// Awaits `f`, adding the time it took to `into`.
pub(crate) async fn timed_async<T>(into: &mut Duration, f: impl Future<Output = T>) -> T {
    let clock = Instant::now();
    let value = f.await;
    *into += clock.elapsed();
    value
}

/// Runs `f`, adding the time it took to `into`.
pub(crate) fn timed<T>(into: &mut Duration, f: impl FnOnce() -> T) -> T {
    let clock = Instant::now();
    let value = f();
    *into += clock.elapsed();
    value
}

/// The answer to [`BackupService::submit_recovery_shares`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The session.
    pub session: RecoverySessionId,
    /// Shares needed (`t`).
    pub threshold: u8,
    /// The shares accepted so far (over every call), by index.
    pub received: Vec<(ShareIndex, ShareSource)>,
    /// The shares rejected so far (over every call), each with its reason.
    pub rejected: Vec<RejectedShare>,
    /// Where it stands.
    pub outcome: RecoveryOutcome,
    /// Where the session's time went so far.
    pub timings: RecoveryTimings,
}

impl RecoveryReport {
    /// Whether the recovery is done and its self-test passed.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        match &self.outcome {
            RecoveryOutcome::Recovered { self_test, .. } => self_test.passed(),
            RecoveryOutcome::Drilled {
                self_test,
                sandbox_deleted,
                ..
            } => self_test.passed() && *sandbox_deleted,
            RecoveryOutcome::Waiting | RecoveryOutcome::Failed { .. } => false,
        }
    }
}

/// What the recovery writes with and tests against, at threshold.
pub struct RecoveryTarget<'a> {
    /// The node's keystore codec (its keystore KEK).
    pub codec: &'a (dyn KeystoreCodec + Sync),
    /// The other parties, for the sign/aggregate self-test: in production
    /// [`RemotePeers`](shardkeep_keydata::RemotePeers) over the node's
    /// channel to the other nodes' sidecars, each answering with its own
    /// `Xi`. The recovery refuses to self-test while this process holds
    /// another party's secret of the group
    /// ([`Error::OtherPartySecretsLoaded`]).
    pub peers: &'a mut (dyn SelfTestPeers + Send),
}

impl fmt::Debug for RecoveryTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryTarget").finish_non_exhaustive()
    }
}

/// A submission that decrypted and whose envelope verified.
struct Opened {
    position: usize,
    custodian: ActorId,
    container: OpenedContainer,
    signature: [u8; 64],
}

/// A share that passed every check, waiting to be added to the session.
struct Checked {
    position: usize,
    source: ShareSource,
    index: ShareIndex,
    envelope_id: shardkeep_types::EnvelopeId,
    share: CurveShare,
    archive: Option<Vec<u8>>,
}

/// Decrypts a submission with the session's identity: a file for another
/// recipient is [`ShareRejection::OtherSession`], anything else that fails
/// is [`ShareRejection::Unreadable`].
fn decrypt(
    file: &[u8],
    identity: &age::x25519::Identity,
) -> Result<Zeroizing<Vec<u8>>, ShareRejection> {
    // Binary age only: the stanza count below reads the header's lines,
    // which armor would hide from it.
    if file.len() > MAX_SEALED_SUBMISSION_LEN || !file.starts_with(b"age-encryption.org/") {
        return Err(ShareRejection::Unreadable);
    }
    // Each stanza costs an X25519 agreement: a file with many is refused
    // before age tries them. The service encrypts to one recipient.
    let stanzas = file
        .split(|byte| *byte == b'\n')
        .skip(1)
        .take_while(|line| !line.starts_with(b"---"))
        .filter(|line| line.starts_with(b"-> "))
        .count();
    if stanzas > MAX_SUBMISSION_STANZAS {
        return Err(ShareRejection::Unreadable);
    }
    age_decrypt(file, identity, MAX_SUBMISSION_LEN).map_err(|failure| match failure {
        AgeDecryptFailure::NotForThisIdentity => ShareRejection::OtherSession,
        AgeDecryptFailure::Unreadable => ShareRejection::Unreadable,
    })
}

/// The envelope's binding to the session's split: key, node, version,
/// curve, split id, then the stored reference's slot, binding, threshold
/// and commitments.
fn check_binding(split: &VerifiedSplit, envelope: &VerifiedEnvelope) -> Result<(), ShareRejection> {
    let header = envelope.header();
    let ours = split.version();
    let theirs = header.node_version();
    // Public values: plain comparisons.
    if theirs.key_id != ours.key_id {
        return Err(ShareRejection::OtherKey);
    }
    if theirs.node_id != ours.node_id {
        return Err(ShareRejection::OtherNode);
    }
    if theirs.version != ours.version {
        return Err(ShareRejection::OtherVersion);
    }
    if header.curve() != split.binding().curve() {
        return Err(ShareRejection::OtherCurve);
    }
    if header.split_id().as_bytes() != split.split_id() {
        return Err(ShareRejection::OtherSplit);
    }
    split
        .check_envelope(envelope, header.index())
        .map_err(|_| ShareRejection::NotBoundToSlot)
}

/// The Feldman check of `share` against the stored commitments.
fn feldman(split: &VerifiedSplit, share: &CurveShare) -> Result<(), ShareRejection> {
    let verified = match (split.commitments(), share) {
        (CurveCommitments::Secp256k1(commitments), CurveShare::Secp256k1(share)) => {
            commitments.verify(share).is_ok()
        }
        (CurveCommitments::Ed25519(commitments), CurveShare::Ed25519(share)) => {
            commitments.verify(share).is_ok()
        }
        _ => false,
    };
    if verified {
        Ok(())
    } else {
        Err(ShareRejection::FeldmanCheckFailed)
    }
}

/// Combines the shares against the stored commitments and regenerates the
/// save data from the archive.
fn rebuild(
    shares: Vec<CurveShare>,
    split: &VerifiedSplit,
    archive: &SealedArchive,
    timings: &mut RecoveryTimings,
) -> Result<LocalPartySaveData, Error> {
    match split.commitments() {
        CurveCommitments::Secp256k1(commitments) => {
            rebuild_on::<Secp256k1>(shares, commitments, split, archive, timings)
        }
        CurveCommitments::Ed25519(commitments) => {
            rebuild_on::<Ed25519>(shares, commitments, split, archive, timings)
        }
    }
}

fn rebuild_on<C: Curve>(
    shares: Vec<CurveShare>,
    commitments: &Commitments<C>,
    split: &VerifiedSplit,
    archive: &SealedArchive,
    timings: &mut RecoveryTimings,
) -> Result<LocalPartySaveData, Error>
where
    Share<C>: TryFrom<CurveShare, Error = shardkeep_envelope::Error>,
{
    let shares = shares
        .into_iter()
        .map(Share::<C>::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    // Robust: a share that does not fit the commitments is set aside; the
    // secret is checked against C_0, the signed public share.
    let secret = timed(&mut timings.combine, || {
        combine_verified(shares, commitments)
    })?
    .into_secret();
    Ok(timed(&mut timings.regenerate, || {
        regenerate(&secret, archive, split.binding(), split.version())
    })?)
}

/// Creates a directory only its owner can enter (the drill's sandbox);
/// refuses one that exists.
/// The name every sandbox of `session`'s drill starts with.
fn sandbox_prefix(session: &RecoverySessionId) -> String {
    format!("shardkeep-drill-{session}-")
}

/// Removes what a drill of `session` left in the system's temporary
/// directory: a sandbox its process could not delete, because it was
/// killed (ciphertext under a one-time KEK that died with it, at most).
/// Called once the session is closed without completing, never while a
/// call is completing it. Returns how many were removed, and how many
/// could not be.
pub(crate) fn remove_drill_sandboxes(session: &RecoverySessionId) -> (usize, usize) {
    let prefix = sandbox_prefix(session);
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return (0, 0);
    };
    let (mut removed, mut left) = (0, 0);
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        // `remove_dir_all` never follows a symbolic link out of the
        // directory.
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => removed += 1,
            Err(_) => left += 1,
        }
    }
    (removed, left)
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| {
        Error::Keydata(shardkeep_keydata::Error::Io {
            op: "create the drill sandbox",
            path: dir.to_path_buf(),
            source,
        })
    })
}

/// Writes, loads back, compares and self-tests the regenerated save data.
fn install(
    data: &LocalPartySaveData,
    split: &VerifiedSplit,
    dir: &Path,
    group: Threshold,
    codec: &dyn KeystoreCodec,
    peers: &mut dyn SelfTestPeers,
    timings: &mut RecoveryTimings,
) -> Result<(PathBuf, SelfTestReport), Error> {
    let path = timed(&mut timings.keystore_write, || {
        write_keystore(dir, split.version(), data, codec, WriteMode::Replace)
    })?;
    let loaded = timed(&mut timings.keystore_load, || {
        let loaded = load_keystore(&path, split.version(), codec)?;
        if bool::from(loaded.ct_eq(data)) {
            Ok(loaded)
        } else {
            Err(Error::RecoveredKeystoreDiffers(split.version().clone()))
        }
    })?;
    let report = timed(&mut timings.self_test, || loaded.self_test(group, peers))?;
    Ok((path, report))
}

impl<S: Storage> BackupService<S> {
    /// Submits shares to a recovery session (an operator does it, with
    /// the custodians' submissions, see
    /// [`prepare_recovery_submission`](crate::prepare_recovery_submission)):
    /// one or several per call, over any number of calls. Each is checked
    /// on arrival (see the module documentation) and accepted or rejected
    /// with its reason; each is audited (`recover`), and rejections count
    /// towards the bad-share anomaly. When the approved request allowed
    /// server shares and they complete the threshold, as many as needed
    /// are read, each read recorded per slot in the access log and the
    /// audit log (`share-read`).
    ///
    /// At threshold the recovery runs: combine, check against the signed
    /// public share, regenerate, write `.keydata.enc` atomically into the
    /// approved target directory with `target.codec`, load it back, compare
    /// it, self-test it with `target.peers`; then the session's secrets are
    /// wiped and it is closed (completed, or failed), with an audit record.
    ///
    /// # Errors
    /// [`Error::TooManySubmissions`] (more than
    /// [`MAX_SUBMISSIONS_PER_CALL`]); the refusals of authorization
    /// (audited); [`Error::RateLimited`]
    /// (recovery attempts, share reads: recorded);
    /// [`Error::RecoverySessionUnknown`], [`Error::SessionOnOtherReplica`],
    /// [`Error::RecoverySessionClosed`], [`Error::RecoverySessionFinishing`],
    /// [`Error::RecoverySessionExpired`],
    /// [`Error::RecoverySessionLost`]; [`Error::OtherPartySecretsLoaded`]
    /// at threshold when this process holds another party's secret share
    /// of the group (the session keeps its shares); [`Error::Kms`] and
    /// [`Error::Envelope`] when a server share does not open; storage and
    /// audit errors. Bad shares are not errors: they are in the report.
    pub async fn submit_recovery_shares(
        &self,
        actor: &ActorId,
        session: &RecoverySessionId,
        submissions: &[Vec<u8>],
        mut target: RecoveryTarget<'_>,
    ) -> Result<RecoveryReport, Error> {
        if submissions.len() > MAX_SUBMISSIONS_PER_CALL {
            return Err(Error::TooManySubmissions {
                got: submissions.len(),
                max: MAX_SUBMISSIONS_PER_CALL,
            });
        }
        let clock = Instant::now();
        let mut timings = RecoveryTimings::default();
        // One write transaction from the caller's check to the arrivals'
        // audit records: the attempt's count, the session's activity and
        // the arrivals commit together (and a refusal commits the count).
        let tx = self.begin().await?;
        let (mut tx, _) = self
            .authorize_or_refuse(tx, actor, &[Role::Operator], None)
            .await?;
        if let RateCheck::Refused(error) = self
            .count_in(&mut tx, actor, RateKind::RecoveryAttempt)
            .await?
        {
            return Self::refuse_counted(tx, error).await;
        }
        if let Err(refused) = self.use_session_in(&mut tx, actor, session).await? {
            return Self::refuse_counted(tx, refused).await;
        }
        let (split, drill, opened, mut rejected) =
            self.open_submissions(session, submissions, &mut timings)?;
        // The version may have retired since the session started (its
        // rotation's cooldown ended): its shares are refused from then on.
        if let Some(error) = crate::rotation::unrecoverable(&mut tx, split.version()).await? {
            return Self::refuse_counted(tx, error).await;
        }
        let custody = tx.custody_map(split.version()).await?;
        let custodians: Vec<ActorId> = opened
            .iter()
            .map(|candidate| candidate.custodian.clone())
            .collect();
        let custodians = tx.persons_named(&custodians).await?;
        let mut checked = Vec::new();
        for candidate in opened {
            let position = candidate.position;
            let custodian = candidate.custodian.clone();
            match Self::check_submission(
                session,
                &split,
                drill,
                &custody,
                &custodians,
                candidate,
                &mut timings,
            )? {
                Ok(share) => checked.push(share),
                Err((index, reason)) => rejected.push(RejectedShare {
                    position,
                    custodian: Some(custodian),
                    index,
                    reason,
                }),
            }
        }
        let (accepted, duplicates) = self.accept(session, checked)?;
        rejected.extend(duplicates);
        // In the order they were submitted in, whichever check caught them.
        rejected.sort_by_key(|rejection| rejection.position);
        self.audit_arrivals_in(&mut tx, actor, &split, session, &accepted, &rejected)
            .await?;
        timed_async(&mut timings.commits, tx.commit()).await?;
        self.join_server_shares(actor, session, &split, &mut timings)
            .await?;
        timings.total = clock.elapsed();
        self.sessions().with(|sessions| {
            if let Some(live) = sessions.get_mut(session) {
                live.rejected.extend(rejected.iter().cloned());
                live.timings.add(&timings);
            }
        });
        self.finish_if_complete(actor, session, &split, &mut target)
            .await
    }

    /// Decrypts and decodes the submissions with the session's identity
    /// and verifies their envelopes (no storage needed).
    fn open_submissions(
        &self,
        session: &RecoverySessionId,
        submissions: &[Vec<u8>],
        timings: &mut RecoveryTimings,
    ) -> Result<(VerifiedSplit, bool, Vec<Opened>, Vec<RejectedShare>), Error> {
        let trusted = self.trusted_signers();
        self.sessions()
            .with(|sessions| {
                let live = sessions.get(session)?;
                let mut opened = Vec::new();
                let mut rejected = Vec::new();
                for (position, file) in submissions.iter().enumerate() {
                    let reject = |custodian, reason| RejectedShare {
                        position,
                        custodian,
                        index: None,
                        reason,
                    };
                    let plain =
                        match timed(&mut timings.age_unwrap, || decrypt(file, &live.identity)) {
                            Ok(plain) => plain,
                            Err(reason) => {
                                rejected.push(reject(None, reason));
                                continue;
                            }
                        };
                    let Ok(submission) = decode_submission(&plain) else {
                        rejected.push(reject(None, ShareRejection::Unreadable));
                        continue;
                    };
                    // Public ids: a plain comparison.
                    if submission.session != *session {
                        rejected.push(reject(
                            Some(submission.custodian),
                            ShareRejection::OtherSession,
                        ));
                        continue;
                    }
                    match timed(&mut timings.checks, || {
                        OpenedContainer::decode_verify(&submission.contents, trusted)
                    }) {
                        Ok(container) => opened.push(Opened {
                            position,
                            custodian: submission.custodian,
                            container,
                            signature: submission.signature,
                        }),
                        Err(_) => rejected.push(reject(
                            Some(submission.custodian),
                            ShareRejection::EnvelopeInvalid,
                        )),
                    }
                }
                let drill = live.operation == ApprovalOperation::Drill;
                Some((live.split.clone(), drill, opened, rejected))
            })
            .ok_or(Error::RecoverySessionLost(*session))
    }

    /// The checks that need the registry and the custody map (the
    /// submitters' person records, read once for the call).
    fn check_submission(
        session: &RecoverySessionId,
        split: &VerifiedSplit,
        drill: bool,
        custody: &[CustodyEntry],
        custodians: &[PersonRecord],
        candidate: Opened,
        timings: &mut RecoveryTimings,
    ) -> Result<Result<Checked, (Option<ShareIndex>, ShareRejection)>, Error> {
        let Some(person) = custodians
            .iter()
            .find(|person| person.id == candidate.custodian)
        else {
            return Ok(Err((None, ShareRejection::UnknownCustodian)));
        };
        let key = match (&person.state, person.keys.receipt_key) {
            (PersonState::Active, Some(key)) => VerifyingKey::from_bytes(&key).ok(),
            _ => None,
        };
        let Some(key) = key else {
            return Ok(Err((None, ShareRejection::UnknownCustodian)));
        };
        let envelope = candidate.container.envelope();
        let index = envelope.header().index();
        let archive_hash = shardkeep_envelope::archive_hash(candidate.container.archive());
        let message = crate::session::submission_message(session, &envelope.id(), &archive_hash);
        let signed = timed(&mut timings.checks, || {
            key.verify_strict(&message, &Signature::from_bytes(&candidate.signature))
        });
        if signed.is_err() {
            return Ok(Err((
                Some(index),
                ShareRejection::CustodianSignatureInvalid,
            )));
        }
        if drill && split.is_server_index(index) {
            return Ok(Err((Some(index), ShareRejection::ServerShareInDrill)));
        }
        if let Err(reason) = check_binding(split, envelope) {
            return Ok(Err((Some(index), reason)));
        }
        let slot = split.slot(index);
        // Public values: plain comparisons.
        let theirs = custody.iter().any(|entry| {
            entry.slot == slot
                && entry.person == candidate.custodian
                && entry.envelope_id == envelope.id()
        });
        if !theirs {
            return Ok(Err((Some(index), ShareRejection::NotTheSlotsCustodian)));
        }
        let envelope_id = envelope.id();
        let (envelope, archive) = candidate.container.into_parts();
        let Ok(share) = envelope.into_plain_share() else {
            return Ok(Err((Some(index), ShareRejection::EnvelopeInvalid)));
        };
        if let Err(reason) = timed(&mut timings.checks, || feldman(split, &share)) {
            return Ok(Err((Some(index), reason)));
        }
        Ok(Ok(Checked {
            position: candidate.position,
            source: ShareSource::Custodian(candidate.custodian),
            index,
            envelope_id,
            share,
            archive: Some(archive),
        }))
    }

    /// Adds checked shares to the session; a second share of an index is
    /// rejected as a duplicate. Returns the accepted ones (index, source,
    /// envelope id) and the duplicates.
    #[allow(clippy::type_complexity, reason = "a private pair of lists")]
    fn accept(
        &self,
        session: &RecoverySessionId,
        checked: Vec<Checked>,
    ) -> Result<
        (
            Vec<(ShareIndex, ShareSource, shardkeep_types::EnvelopeId)>,
            Vec<RejectedShare>,
        ),
        Error,
    > {
        self.sessions()
            .with(|sessions| {
                let live = sessions.get_mut(session)?;
                let mut accepted = Vec::new();
                let mut duplicates = Vec::new();
                for share in checked {
                    if live.received.iter().any(|held| held.index == share.index) {
                        duplicates.push(RejectedShare {
                            position: share.position,
                            custodian: match &share.source {
                                ShareSource::Custodian(person) => Some(person.clone()),
                                ShareSource::Server => None,
                            },
                            index: Some(share.index),
                            reason: ShareRejection::Duplicate,
                        });
                        continue;
                    }
                    if live.archive.is_none() {
                        live.archive = share.archive;
                    }
                    accepted.push((share.index, share.source.clone(), share.envelope_id));
                    live.received.push(AcceptedShare {
                        index: share.index,
                        source: share.source,
                        envelope_id: share.envelope_id,
                        share: share.share,
                    });
                }
                Some((accepted, duplicates))
            })
            .ok_or(Error::RecoverySessionLost(*session))
    }

    /// One audit record per share that arrived; rejections also count
    /// towards the bad-share anomaly of the custodian (or the caller).
    async fn audit_arrivals_in(
        &self,
        tx: &mut S::Transaction,
        actor: &ActorId,
        split: &VerifiedSplit,
        session: &RecoverySessionId,
        accepted: &[(ShareIndex, ShareSource, shardkeep_types::EnvelopeId)],
        rejected: &[RejectedShare],
    ) -> Result<(), Error> {
        for (index, source, envelope_id) in accepted {
            let mut record = self.record(EventType::Recover, actor, Some(split.version()));
            record.share_index = Some(*index);
            record.envelope_id = Some(*envelope_id.as_bytes());
            record.detail = Some(FreeText::sanitized(&format!(
                "session {session}: share {index} accepted from {}",
                match source {
                    ShareSource::Custodian(person) => person.as_str(),
                    ShareSource::Server => "the server",
                }
            ))?);
            Self::audit(tx, &record).await?;
        }
        for rejection in rejected {
            let mut record = self.record(EventType::Recover, actor, Some(split.version()));
            record.share_index = rejection.index;
            let from = rejection
                .custodian
                .as_ref()
                .map_or("an unknown sender", ActorId::as_str);
            record.outcome = Outcome::Failure {
                reason: FreeText::sanitized(&format!(
                    "session {session}: share rejected ({}) from {from}",
                    rejection.reason
                ))?,
            };
            Self::audit(tx, &record).await?;
            let person = match &rejection.custodian {
                Some(custodian) if rejection.reason.custodian_authenticated() => custodian,
                _ => actor,
            };
            let slot = rejection.index.map(|index| split.slot(index));
            let error = Error::ShareRejected(rejection.reason);
            self.count_rejection_in(tx, person, slot.as_ref(), RateKind::BadShare, &error)
                .await?;
        }
        Ok(())
    }

    /// A drill at threshold: recovers into a sandbox under a one-time
    /// keystore KEK, self-tests, deletes the sandbox, stores the drill
    /// report and audits `drill`.
    #[allow(
        clippy::too_many_arguments,
        reason = "private: the parts of one finished session"
    )]
    async fn finish_drill(
        &self,
        actor: &ActorId,
        session: &RecoverySessionId,
        split: &VerifiedSplit,
        live: LiveSession,
        group: Threshold,
        received: Vec<(ShareIndex, ShareSource)>,
        rejected: Vec<RejectedShare>,
        target: &mut RecoveryTarget<'_>,
        started: Instant,
    ) -> Result<RecoveryReport, Error> {
        let mut timings = live.timings;
        let t = split.threshold().t();
        let started_at = live.started_at;
        let mut used: Vec<(ShareIndex, shardkeep_types::EnvelopeId)> = live
            .received
            .iter()
            .map(|held| (held.index, held.envelope_id))
            .collect();
        used.sort_by_key(|(index, _)| *index);
        let kek_id = shardkeep_types::KekId::new(format!("drill-{session}"))?;
        let codec = shardkeep_keydata::KekKeystoreCodec::new(
            self.with_rng(|rng| shardkeep_types::InMemoryKek::generate(kek_id, rng)),
        );
        let sandbox = self.drill_sandbox(session)?;
        let mut steps: Vec<(&str, Duration)> = Vec::new();
        let result = (|| {
            let clock = Instant::now();
            let archive = live
                .archive
                .clone()
                .ok_or(Error::RecoveryWithoutArchive(*session))?;
            let archive = SealedArchive::from_bytes(archive)?;
            let shares: Vec<CurveShare> =
                live.received.into_iter().map(|held| held.share).collect();
            let data = rebuild(shares, split, &archive, &mut timings)?;
            steps.push(("combine and regenerate", clock.elapsed()));
            let clock = Instant::now();
            let written = install(
                &data,
                split,
                &sandbox,
                group,
                &codec,
                target.peers,
                &mut timings,
            );
            steps.push(("write, load and self-test", clock.elapsed()));
            written
        })();
        // The sandbox goes whatever happened; the report says whether it is
        // gone.
        let clock = Instant::now();
        let keystore = shardkeep_keydata::keystore_path(&sandbox, split.version());
        let _ = std::fs::remove_file(&keystore);
        let _ = std::fs::remove_dir(&sandbox);
        let sandbox_deleted = !keystore.exists() && !sandbox.exists();
        steps.push(("delete sandbox", clock.elapsed()));
        drop(codec);

        let (outcome, self_test, reason) = match result {
            Ok((_, self_test)) if self_test.passed() && sandbox_deleted => {
                (DrillOutcome::Passed, Some(self_test), None)
            }
            Ok((_, self_test)) => {
                let why = if self_test.passed() {
                    "the sandbox could not be deleted".to_owned()
                } else {
                    "the self-test failed".to_owned()
                };
                (
                    DrillOutcome::Failed {
                        reason: FreeText::sanitized(&why)?,
                    },
                    Some(self_test),
                    Some(why),
                )
            }
            Err(error) => {
                let why = error.to_string();
                (
                    DrillOutcome::Failed {
                        reason: FreeText::sanitized(&why)?,
                    },
                    None,
                    Some(why),
                )
            }
        };
        let mut text = String::from("shardkeep-drill-report-v1\n");
        let version = split.version();
        text.push_str(&format!(
            "session {session}\nversion {}/{}/v{}\nsplit {}\nresult {}\n",
            version.key_id,
            version.node_id,
            version.version.get(),
            hex::encode(split.split_id()),
            reason
                .as_deref()
                .map_or_else(|| "passed".to_owned(), |why| format!("failed: {why}")),
        ));
        for (index, envelope) in &used {
            text.push_str(&format!(
                "share {index} envelope {}\n",
                hex::encode(envelope.as_bytes())
            ));
        }
        for (step, took) in &steps {
            text.push_str(&format!("step {step}: {} ms\n", took.as_millis()));
        }
        text.push_str(&format!(
            "sandbox {}\n",
            if sandbox_deleted {
                "deleted"
            } else {
                "NOT deleted"
            }
        ));
        for rejection in &rejected {
            text.push_str(&format!(
                "anomaly: share rejected ({}) from {}\n",
                rejection.reason,
                rejection
                    .custodian
                    .as_ref()
                    .map_or("an unknown sender", ActorId::as_str)
            ));
        }
        let now = self.now();
        let mut tx = self.begin().await?;
        tx.close_recovery_session(
            session,
            now,
            if matches!(outcome, DrillOutcome::Passed) {
                RecoverySessionOutcome::Completed
            } else {
                RecoverySessionOutcome::Failed
            },
        )
        .await?;
        tx.record_drill(&DrillReport {
            target: version.clone(),
            started_at,
            finished_at: now,
            operator: actor.clone(),
            shares_used: used.iter().map(|(index, _)| *index).collect(),
            outcome: outcome.clone(),
            report: text.clone().into_bytes(),
        })
        .await?;
        let mut record = self.record(EventType::Drill, actor, Some(version));
        record.threshold = Some(split.threshold());
        record.detail = Some(FreeText::sanitized(&format!(
            "drill session {session}: shares {}; sandbox {}",
            used.iter()
                .map(|(index, _)| index.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if sandbox_deleted {
                "deleted"
            } else {
                "NOT deleted"
            },
        ))?);
        if let Some(why) = &reason {
            record.outcome = Outcome::Failure {
                reason: FreeText::sanitized(why)?,
            };
        }
        Self::audit(&mut tx, &record).await?;
        timed_async(&mut timings.commits, tx.commit()).await?;
        timings.total += started.elapsed();
        Ok(RecoveryReport {
            session: *session,
            threshold: t,
            received,
            rejected,
            outcome: match self_test {
                Some(self_test) => RecoveryOutcome::Drilled {
                    self_test,
                    sandbox_deleted,
                    report: text,
                },
                None => RecoveryOutcome::Failed {
                    reason: reason.unwrap_or_default(),
                },
            },
            timings,
        })
    }

    /// A fresh private directory for a drill's keystore, in the system's
    /// temporary directory, named after the session and random bytes (a
    /// name that exists is never reused).
    fn drill_sandbox(&self, session: &RecoverySessionId) -> Result<PathBuf, Error> {
        let mut attempts = 0;
        loop {
            let suffix: [u8; 8] = self.random_bytes();
            let dir = std::env::temp_dir().join(format!(
                "{}{}",
                sandbox_prefix(session),
                hex::encode(suffix)
            ));
            match create_private_dir(&dir) {
                Ok(()) => return Ok(dir),
                Err(_) if attempts < 7 => attempts += 1,
                Err(error) => return Err(error),
            }
        }
    }

    /// When the session allows server shares, holds the archive, and the
    /// server's shares complete the threshold: reads as many as needed,
    /// each read rate-limited and recorded (access log, `share-read`
    /// audit) before it is opened.
    async fn join_server_shares(
        &self,
        actor: &ActorId,
        session: &RecoverySessionId,
        split: &VerifiedSplit,
        timings: &mut RecoveryTimings,
    ) -> Result<(), Error> {
        let needed: Vec<ShareIndex> = self
            .sessions()
            .with(|sessions| {
                let live = sessions.get(session)?;
                let t = usize::from(split.threshold().t());
                if !live.allow_server_shares || live.archive.is_none() || live.received.len() >= t {
                    return Some(Vec::new());
                }
                let missing: Vec<ShareIndex> = (1..=split.server_shares())
                    .filter_map(ShareIndex::new)
                    .filter(|index| !live.received.iter().any(|held| held.index == *index))
                    .collect();
                let short = t - live.received.len();
                Some(if missing.len() >= short {
                    missing.into_iter().take(short).collect()
                } else {
                    Vec::new()
                })
            })
            .ok_or(Error::RecoverySessionLost(*session))?;
        for index in needed {
            let slot = split.slot(index);
            let now = self.now();
            let mut tx = self.begin().await?;
            if let RateCheck::Refused(error) =
                self.count_in(&mut tx, actor, RateKind::ShareRead).await?
            {
                return Self::refuse_counted(tx, error).await;
            }
            let kek = tx.slot_kek(&slot).await?;
            let sealed = tx.load_sealed_share(&slot).await?;
            tx.record_share_access(&ShareAccess {
                slot: slot.clone(),
                accessor: actor.clone(),
                purpose: Label::new("recover")?,
                at: now,
            })
            .await?;
            let envelope =
                VerifiedEnvelope::decode_verify(&sealed.envelope, self.trusted_signers())?;
            let mut record = self.record(EventType::ShareRead, actor, Some(split.version()));
            record.share_index = Some(index);
            record.envelope_id = Some(*envelope.id().as_bytes());
            record.detail = Some(FreeText::sanitized(&format!(
                "server share read for recovery session {session}"
            ))?);
            Self::audit(&mut tx, &record).await?;
            timed_async(&mut timings.commits, tx.commit()).await?;
            split.check_envelope(&envelope, index)?;
            let kek = kek.ok_or_else(|| Error::ServerShareUnavailable(slot.clone()))?;
            let pin = KekPin {
                kek_id: kek.kek_id,
                fingerprint: kek.fingerprint,
            };
            let kek = self.keks().open_slot_kek(&slot, &pin)?;
            let share = timed(&mut timings.checks, || envelope.open(kek.as_ref()))?;
            if timed(&mut timings.checks, || feldman(split, &share)).is_err() {
                return Err(Error::ServerShareUnavailable(slot));
            }
            let envelope_id = envelope.id();
            let (accepted, _) = self.accept(
                session,
                vec![Checked {
                    position: 0,
                    source: ShareSource::Server,
                    index,
                    envelope_id,
                    share,
                    archive: None,
                }],
            )?;
            let mut tx = self.begin().await?;
            self.audit_arrivals_in(&mut tx, actor, split, session, &accepted, &[])
                .await?;
            timed_async(&mut timings.commits, tx.commit()).await?;
        }
        Ok(())
    }

    /// At threshold: takes the session out of memory, recovers, installs
    /// and self-tests, closes and audits. Below it: the progress.
    async fn finish_if_complete(
        &self,
        actor: &ActorId,
        session: &RecoverySessionId,
        split: &VerifiedSplit,
        target: &mut RecoveryTarget<'_>,
    ) -> Result<RecoveryReport, Error> {
        let clock = Instant::now();
        let t = split.threshold().t();
        // The self-test needs this party's secret only; its peers answer
        // from their own nodes. Other parties' secrets of the same group in
        // this process (enough of them rebuild the group key) refuse the
        // start, and the session keeps its shares for a retry.
        let others = shardkeep_keydata::loaded_other_party_secrets(
            split.binding().group_public_key(),
            split.binding().party_id(),
        );
        let table = self.sessions();
        let taken = table
            .with(|sessions| {
                let live = sessions.get(session)?;
                let received: Vec<(ShareIndex, ShareSource)> = live
                    .received
                    .iter()
                    .map(|held| (held.index, held.source.clone()))
                    .collect();
                let rejected = live.rejected.clone();
                let timings = live.timings;
                if received.len() < usize::from(t) || others > 0 {
                    return Some((received, rejected, timings, None));
                }
                // The session leaves memory here: whatever happens next,
                // its secrets are wiped when `live` drops. It is finishing
                // until `_finishing` drops, after its close.
                let taken = table.take_to_finish(sessions, session)?;
                Some((received, rejected, timings, Some(taken)))
            })
            .ok_or(Error::RecoverySessionLost(*session))?;
        let (received, rejected, mut timings, taken) = taken;
        let Some((live, _finishing)) = taken else {
            if received.len() >= usize::from(t) {
                return Err(Error::OtherPartySecretsLoaded { others });
            }
            return Ok(RecoveryReport {
                session: *session,
                threshold: t,
                received,
                rejected,
                outcome: RecoveryOutcome::Waiting,
                timings,
            });
        };
        let group = live.group;
        if live.operation == ApprovalOperation::Drill {
            return self
                .finish_drill(
                    actor, session, split, live, group, received, rejected, target, clock,
                )
                .await;
        }
        let target_dir = PathBuf::from(&live.target);
        let result = (|| {
            let archive = live
                .archive
                .clone()
                .ok_or(Error::RecoveryWithoutArchive(*session))?;
            let archive = SealedArchive::from_bytes(archive)?;
            let shares: Vec<CurveShare> =
                live.received.into_iter().map(|held| held.share).collect();
            let data = rebuild(shares, split, &archive, &mut timings)?;
            install(
                &data,
                split,
                &target_dir,
                group,
                target.codec,
                target.peers,
                &mut timings,
            )
        })();
        let (outcome, closed, audit_outcome) = match result {
            Ok((keystore, self_test)) => {
                let passed = self_test.passed();
                let summary = format!(
                    "session {session}: recovered from shares {}, wrote {}, self-test {}",
                    received
                        .iter()
                        .map(|(index, _)| index.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    keystore.display(),
                    if passed { "passed" } else { "failed" },
                );
                (
                    RecoveryOutcome::Recovered {
                        keystore,
                        self_test,
                    },
                    if passed {
                        RecoverySessionOutcome::Completed
                    } else {
                        RecoverySessionOutcome::Failed
                    },
                    if passed { Ok(summary) } else { Err(summary) },
                )
            }
            Err(error) => {
                let reason = format!("session {session}: recovery failed: {error}");
                (
                    RecoveryOutcome::Failed {
                        reason: error.to_string(),
                    },
                    RecoverySessionOutcome::Failed,
                    Err(reason),
                )
            }
        };
        crate::pause::pause_point("recovery-session-close");
        let mut tx = self.begin().await?;
        tx.close_recovery_session(session, self.now(), closed)
            .await?;
        let mut record = self.record(EventType::Recover, actor, Some(split.version()));
        record.threshold = Some(split.threshold());
        record.target = Some(FreeText::sanitized(&target_dir.display().to_string())?);
        match audit_outcome {
            Ok(summary) => record.detail = Some(FreeText::sanitized(&summary)?),
            Err(reason) => {
                record.outcome = Outcome::Failure {
                    reason: FreeText::sanitized(&reason)?,
                };
            }
        }
        Self::audit(&mut tx, &record).await?;
        timed_async(&mut timings.commits, tx.commit()).await?;
        crate::pause::pause_point("recovery-session-closed");
        timings.total += clock.elapsed();
        Ok(RecoveryReport {
            session: *session,
            threshold: t,
            received,
            rejected,
            outcome,
            timings,
        })
    }
}
