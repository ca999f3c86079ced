//! The sign/aggregate part of the self-test: a two-round threshold Schnorr
//! signature with nonce commitments (FROST-style) over a quorum of the
//! group, checked against the group public key.
//!
//! Round 1: every quorum member draws two nonces `d, e` and commits to
//! `D = d*G, E = e*G`. Round 2: with the list of commitments `B` and the
//! message `m`, each member computes binding factors `rho_j = H("rho", Y, m,
//! B, id_j)`, the group commitment `R = sum D_j + rho_j*E_j`, the challenge
//! `c = H("challenge", R, Y, m)` and its share `z_i = d_i + rho_i*e_i +
//! lambda_i*x_i*c`. The coordinator checks each share against the member's
//! public share `BigXj` and the aggregate `z*G == R + c*Y`.
//!
//! Every hash is `SHA-512("shardkeep/self-test/v1" || label || parts)`
//! reduced modulo the group order, so the output is never a valid Ed25519
//! (`SHA-512(R || A || M)`) or BIP340 (`tagged_hash("BIP0340/challenge",
//! ...)`) signature under the live group key: the self-test cannot be used
//! as a signing oracle for the real key.
//!
//! Peers are reached through [`SelfTestPeers`]; a peer node answers with a
//! [`SelfTestResponder`] over its own save data. In production that is
//! [`RemotePeers`](crate::RemotePeers): each other quorum member's sidecar
//! answers encoded requests ([`SelfTestResponder::answer`]) with its own
//! `Xi`, which never leaves it. `InProcessPeers` (feature
//! `in-process-peers`) holds the responders in this process, every party's
//! `Xi` in one place: for tests only.

use core::fmt;

use ff::Field;
use group::{Group, GroupEncoding};
use sha2::{Digest, Sha512};
use shardkeep_sss_core::{Curve, CurveId, PartyId, lagrange_at_zero};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::peer_wire::{NonceCommitments, RequestKind, SignatureShares, request_kind};
use crate::save_data::{Inner, KeyShare, LocalPartySaveData};

/// Domain tag of every hash of the self-test signature.
pub const SELF_TEST_TAG: &[u8] = b"shardkeep/self-test/v1";

/// Round 1 request: commit to nonces for one signing session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    /// Random, unique per session.
    pub session_id: [u8; 32],
    /// The key's curve.
    pub curve: CurveId,
    /// The group public key, compressed; a peer refuses another key.
    pub group_public_key: Vec<u8>,
    /// `ShareID`s of the quorum, in `Ks` order (big-endian, minimal).
    pub quorum: Vec<Vec<u8>>,
    /// The coordinator's `ShareID` (it commits itself; peers answer for the
    /// other quorum members).
    pub coordinator: Vec<u8>,
}

/// A quorum member's round 1 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceCommitment {
    /// The member's `ShareID`.
    pub party_id: Vec<u8>,
    /// `D = d*G`, compressed.
    pub hiding: Vec<u8>,
    /// `E = e*G`, compressed.
    pub binding: Vec<u8>,
}

/// Round 2 request: sign `message` with the committed nonces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// The session of round 1.
    pub session_id: [u8; 32],
    /// The message, random per session.
    pub message: [u8; 32],
    /// Every quorum member's commitment, in quorum order.
    pub commitments: Vec<NonceCommitment>,
}

/// A quorum member's round 2 answer.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureShare {
    /// The member's `ShareID`.
    pub party_id: Vec<u8>,
    /// `z_i`, a 32-byte big-endian scalar.
    pub share: [u8; 32],
}

impl fmt::Debug for SignatureShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public once sent, but it says nothing useful in a log.
        f.debug_struct("SignatureShare")
            .field("party_id", &self.party_id)
            .finish_non_exhaustive()
    }
}

/// How the self-test reaches the other members of its quorum. A node
/// forwards the requests to its peers (each answering with its own
/// [`SelfTestResponder`]) over whatever transport it already has.
pub trait SelfTestPeers {
    /// Round 1: the commitments of every quorum member except the
    /// coordinator.
    ///
    /// # Errors
    /// [`Error::Peer`] when a peer cannot be reached or refuses.
    fn commit(&mut self, request: &CommitRequest) -> Result<Vec<NonceCommitment>>;

    /// Round 2: the signature shares of every quorum member except the
    /// coordinator.
    ///
    /// # Errors
    /// [`Error::Peer`] when a peer cannot be reached or refuses.
    fn sign(&mut self, request: &SignRequest) -> Result<Vec<SignatureShare>>;
}

/// Nonces between round 1 and round 2, wiped on drop.
struct Pending {
    session_id: [u8; 32],
    quorum: Vec<Vec<u8>>,
    hiding: Zeroizing<[u8; 32]>,
    binding: Zeroizing<[u8; 32]>,
    commitment: NonceCommitment,
}

/// One party's side of the self-test signature, over its own save data.
/// Holds at most one session's nonces, and uses them once.
pub struct SelfTestResponder<'a> {
    data: &'a LocalPartySaveData,
    pending: Option<Pending>,
}

impl<'a> SelfTestResponder<'a> {
    /// A responder for `data`.
    #[must_use]
    pub fn new(data: &'a LocalPartySaveData) -> Self {
        Self {
            data,
            pending: None,
        }
    }

    /// This party's `ShareID`.
    #[must_use]
    pub fn party_id(&self) -> &[u8] {
        self.data.share_id()
    }

    /// Round 1: draws fresh nonces (from the operating system) and commits
    /// to them, replacing any earlier session's nonces.
    ///
    /// # Errors
    /// [`Error::SelfTestProtocol`] for a request about another key or a
    /// quorum this party is not in or does not know;
    /// [`Error::RandomnessUnavailable`].
    pub fn commit(&mut self, request: &CommitRequest) -> Result<NonceCommitment> {
        self.pending = None;
        let pending = match &self.data.inner {
            Inner::Ecdsa(key, _) => commit_with(key, request)?,
            Inner::Eddsa(key) => commit_with(key, request)?,
        };
        let commitment = pending.commitment.clone();
        self.pending = Some(pending);
        Ok(commitment)
    }

    /// Round 2: signs with the nonces of `request`'s session, which are
    /// consumed whatever the outcome.
    ///
    /// # Errors
    /// [`Error::SelfTestProtocol`] without a matching round 1, or when the
    /// commitments do not match the quorum or this party's own commitment.
    pub fn sign(&mut self, request: &SignRequest) -> Result<SignatureShare> {
        let pending = self
            .pending
            .take()
            .ok_or(Error::SelfTestProtocol("no nonces committed"))?;
        if pending.session_id != request.session_id {
            return Err(Error::SelfTestProtocol("unknown session"));
        }
        let share = match &self.data.inner {
            Inner::Ecdsa(key, _) => sign_with(key, &pending, request)?,
            Inner::Eddsa(key) => sign_with(key, &pending, request)?,
        };
        Ok(SignatureShare {
            party_id: self.data.share_id().to_vec(),
            share: *share,
        })
    }

    /// Answers one encoded request, as a sidecar does for its node: a
    /// `shkp-stc` commit request with a `shkp-stn` list holding this
    /// party's commitment, a `shkp-sts` sign request with a `shkp-stz` list
    /// holding its signature share. The answer carries public values only;
    /// `Xi` and the nonces never leave this responder.
    ///
    /// # Errors
    /// [`Error::PeerMessage`] for bytes that are not a well-formed request;
    /// otherwise as [`SelfTestResponder::commit`] and
    /// [`SelfTestResponder::sign`].
    pub fn answer(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        match request_kind(request)? {
            RequestKind::Commit => {
                let request = CommitRequest::decode(request)?;
                let commitment = self.commit(&request)?;
                NonceCommitments {
                    session_id: request.session_id,
                    commitments: vec![commitment],
                }
                .encode()
            }
            RequestKind::Sign => {
                let request = SignRequest::decode(request)?;
                let share = self.sign(&request)?;
                SignatureShares {
                    session_id: request.session_id,
                    shares: vec![share],
                }
                .encode()
            }
        }
    }
}

impl fmt::Debug for SelfTestResponder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfTestResponder")
            .field("data", self.data)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}

/// Peers answering from save data held in this process: the other parties
/// of a test group.
///
/// For tests only (feature `in-process-peers`): it puts every other
/// party's `Xi` in the process running the self-test, enough to rebuild the
/// group key. A node uses [`RemotePeers`](crate::RemotePeers).
#[cfg(any(test, feature = "in-process-peers"))]
pub struct InProcessPeers<'a> {
    responders: Vec<SelfTestResponder<'a>>,
}

#[cfg(any(test, feature = "in-process-peers"))]
impl<'a> InProcessPeers<'a> {
    /// Peers answering for each of `parties`.
    pub fn new(parties: impl IntoIterator<Item = &'a LocalPartySaveData>) -> Self {
        Self {
            responders: parties.into_iter().map(SelfTestResponder::new).collect(),
        }
    }

    fn responder(&mut self, party_id: &[u8]) -> Result<&mut SelfTestResponder<'a>> {
        self.responders
            .iter_mut()
            .find(|r| r.party_id() == party_id)
            .ok_or_else(|| Error::Peer(format!("no peer holds party {}", hex::encode(party_id))))
    }

    fn others<'r>(
        request_quorum: &'r [Vec<u8>],
        coordinator: &'r [u8],
    ) -> impl Iterator<Item = &'r Vec<u8>> {
        request_quorum
            .iter()
            .filter(move |id| id.as_slice() != coordinator)
    }
}

#[cfg(any(test, feature = "in-process-peers"))]
impl SelfTestPeers for InProcessPeers<'_> {
    fn commit(&mut self, request: &CommitRequest) -> Result<Vec<NonceCommitment>> {
        Self::others(&request.quorum, &request.coordinator)
            .map(|id| self.responder(id)?.commit(request))
            .collect()
    }

    fn sign(&mut self, request: &SignRequest) -> Result<Vec<SignatureShare>> {
        // Exactly the responders that committed to this session answer.
        self.responders
            .iter_mut()
            .filter(|r| {
                r.pending
                    .as_ref()
                    .is_some_and(|p| p.session_id == request.session_id)
            })
            .map(|r| r.sign(request))
            .collect()
    }
}

#[cfg(any(test, feature = "in-process-peers"))]
impl fmt::Debug for InProcessPeers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessPeers")
            .field("parties", &self.responders.len())
            .finish()
    }
}

fn commit_with<C: Curve>(key: &KeyShare<C>, request: &CommitRequest) -> Result<Pending> {
    if request.curve != C::ID || request.group_public_key != key.group_key.compressed() {
        return Err(Error::SelfTestProtocol("request is for another key"));
    }
    quorum_ids(key, &request.quorum)?;
    if !request
        .quorum
        .iter()
        .any(|id| id.as_slice() == key.share_id.as_bytes())
    {
        return Err(Error::SelfTestProtocol("this party is not in the quorum"));
    }
    let mut hiding = random_nonzero::<C>()?;
    let mut binding = random_nonzero::<C>()?;
    let commitment = NonceCommitment {
        party_id: key.share_id.as_bytes().to_vec(),
        hiding: point_bytes::<C>(&C::mul_base(&hiding)),
        binding: point_bytes::<C>(&C::mul_base(&binding)),
    };
    let pending = Pending {
        session_id: request.session_id,
        quorum: request.quorum.clone(),
        hiding: C::scalar_to_be_bytes(&hiding),
        binding: C::scalar_to_be_bytes(&binding),
        commitment,
    };
    hiding.zeroize();
    binding.zeroize();
    Ok(pending)
}

fn sign_with<C: Curve>(
    key: &KeyShare<C>,
    pending: &Pending,
    request: &SignRequest,
) -> Result<Zeroizing<[u8; 32]>> {
    let ids: Vec<&[u8]> = request
        .commitments
        .iter()
        .map(|c| c.party_id.as_slice())
        .collect();
    if ids.len() != pending.quorum.len()
        || ids
            .iter()
            .zip(&pending.quorum)
            .any(|(a, b)| *a != b.as_slice())
    {
        return Err(Error::SelfTestProtocol(
            "commitments do not match the quorum",
        ));
    }
    let me = ids
        .iter()
        .position(|id| *id == key.share_id.as_bytes())
        .ok_or(Error::SelfTestProtocol("this party is not in the quorum"))?;
    if request.commitments[me] != pending.commitment {
        return Err(Error::SelfTestProtocol("own commitment altered"));
    }
    let session = Session::<C>::new(key, &request.message, &request.commitments)?;
    let scalar = |bytes: &Zeroizing<[u8; 32]>| {
        C::scalar_from_be_bytes(bytes).ok_or(Error::SelfTestProtocol("stored nonce invalid"))
    };
    let mut share = scalar(&pending.hiding)?;
    let mut binding_nonce = scalar(&pending.binding)?;
    share += binding_nonce * session.rho[me];
    share += session.lambda[me] * session.challenge * key.xi.expose_scalar();
    binding_nonce.zeroize();
    let out = C::scalar_to_be_bytes(&share);
    share.zeroize();
    Ok(out)
}

/// The public values of one signing session, as every member computes
/// them.
pub(crate) struct Session<C: Curve> {
    /// Positions of the quorum members in `Ks`.
    pub(crate) positions: Vec<usize>,
    pub(crate) hiding: Vec<C::Point>,
    pub(crate) binding: Vec<C::Point>,
    pub(crate) rho: Vec<C::Scalar>,
    pub(crate) lambda: Vec<C::Scalar>,
    pub(crate) group_commitment: C::Point,
    pub(crate) challenge: C::Scalar,
}

impl<C: Curve> Session<C> {
    pub(crate) fn new(
        key: &KeyShare<C>,
        message: &[u8; 32],
        commitments: &[NonceCommitment],
    ) -> Result<Self> {
        let ids: Vec<Vec<u8>> = commitments.iter().map(|c| c.party_id.clone()).collect();
        let (positions, parties) = quorum_ids(key, &ids)?;
        let decode = |bytes: &[u8]| {
            C::decode_point(bytes).map_err(|_| Error::SelfTestProtocol("invalid nonce commitment"))
        };
        let hiding = commitments
            .iter()
            .map(|c| decode(&c.hiding))
            .collect::<Result<Vec<_>>>()?;
        let binding = commitments
            .iter()
            .map(|c| decode(&c.binding))
            .collect::<Result<Vec<_>>>()?;

        let group_key = key.group_key.compressed();
        let mut encoded = Vec::with_capacity(commitments.len() * (32 + 2 * C::POINT_LEN));
        for ((party, d), e) in parties.iter().zip(&hiding).zip(&binding) {
            encoded.extend_from_slice(C::scalar_to_be_bytes(&party.to_scalar()).as_slice());
            encoded.extend_from_slice(d.to_bytes().as_ref());
            encoded.extend_from_slice(e.to_bytes().as_ref());
        }
        let rho = parties
            .iter()
            .map(|party| {
                let id = C::scalar_to_be_bytes(&party.to_scalar());
                hash_to_scalar::<C>(b"rho", &[&group_key, message, &encoded, id.as_slice()])
            })
            .collect::<Result<Vec<_>>>()?;
        let group_commitment = hiding
            .iter()
            .zip(&binding)
            .zip(&rho)
            .fold(C::Point::identity(), |acc, ((d, e), r)| acc + d + *e * r);
        let challenge = hash_to_scalar::<C>(
            b"challenge",
            &[group_commitment.to_bytes().as_ref(), &group_key, message],
        )?;
        let lambda = lagrange_at_zero::<C, _>(&parties)?;
        Ok(Self {
            positions,
            hiding,
            binding,
            rho,
            lambda,
            group_commitment,
            challenge,
        })
    }

    /// Whether member `j`'s share verifies against its public share:
    /// `z_j*G == D_j + rho_j*E_j + (c*lambda_j)*X_j`. Public values only.
    pub(crate) fn share_verifies(&self, key: &KeyShare<C>, j: usize, share: &C::Scalar) -> bool {
        let public_share = key.big_xj[self.positions[j]].point;
        let expected = self.hiding[j]
            + self.binding[j] * self.rho[j]
            + public_share * (self.challenge * self.lambda[j]);
        C::mul_base(share).ct_eq(&expected).into()
    }
}

/// Maps quorum `ShareID`s to positions in `Ks`: known, distinct, at least
/// two.
fn quorum_ids<C: Curve>(
    key: &KeyShare<C>,
    quorum: &[Vec<u8>],
) -> Result<(Vec<usize>, Vec<PartyId<C>>)> {
    if quorum.len() < 2 || quorum.len() > key.ks.len() {
        return Err(Error::SelfTestProtocol("quorum size out of range"));
    }
    let mut positions = Vec::with_capacity(quorum.len());
    for id in quorum {
        let at = key
            .ks
            .iter()
            .position(|k| k.as_bytes() == id.as_slice())
            .ok_or(Error::SelfTestProtocol("quorum member not in Ks"))?;
        if positions.contains(&at) {
            return Err(Error::SelfTestProtocol("quorum member repeated"));
        }
        positions.push(at);
    }
    let parties = positions
        .iter()
        .map(|&i| key.parties.as_slice()[i])
        .collect();
    Ok((positions, parties))
}

/// `SHA-512(tag || u8 len || label || (u32 len || part)*)` reduced modulo
/// the group order. Inputs are public (commitments, ids, the group key, the
/// message), so the variable-time reduction is fine.
fn hash_to_scalar<C: Curve>(label: &[u8], parts: &[&[u8]]) -> Result<C::Scalar> {
    let mut hasher = Sha512::new();
    hasher.update(SELF_TEST_TAG);
    hasher.update([u8::try_from(label.len()).unwrap_or(u8::MAX)]);
    hasher.update(label);
    for part in parts {
        hasher.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        hasher.update(part);
    }
    Ok(C::scalar_reduce_be_vartime(&hasher.finalize())?)
}

fn random_nonzero<C: Curve>() -> Result<C::Scalar> {
    loop {
        let scalar = C::Scalar::try_random(&mut rand::rngs::SysRng)
            .map_err(|_| Error::RandomnessUnavailable)?;
        if !bool::from(scalar.is_zero()) {
            return Ok(scalar);
        }
    }
}

pub(crate) fn point_bytes<C: Curve>(point: &C::Point) -> Vec<u8> {
    point.to_bytes().as_ref().to_vec()
}

pub(crate) fn random_bytes() -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    crate::codec::os_random(&mut out)?;
    Ok(out)
}
