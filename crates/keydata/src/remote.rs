//! The production [`SelfTestPeers`]: the other quorum members' sidecars,
//! reached through a [`PeerTransport`] with the encoded messages of
//! [`peer_wire`](crate::peer_wire).
//!
//! Each sidecar answers with its own [`SelfTestResponder`](crate::SelfTestResponder)
//! over its own save data: it sends nonce commitments and a signature
//! share, never its `Xi`, so the node running the self-test holds one
//! party's secret, its own. Every answer is checked before the coordinator
//! uses it: the session, the party it is for (the one asked, once), and
//! that its points and scalar are well formed on the key's curve.

use core::fmt;

use shardkeep_sss_core::{Curve, CurveId, Ed25519, Secp256k1};

use crate::error::{Error, Result};
use crate::peer_wire::{NonceCommitments, SignatureShares};
use crate::signing::{CommitRequest, NonceCommitment, SelfTestPeers, SignRequest, SignatureShare};

/// Why a transport could not deliver a request or bring back an answer.
pub type TransportError = Box<dyn std::error::Error + Send + Sync>;

/// Carries one encoded self-test request to the sidecar of a party and
/// brings back its encoded answer. A node implements it over the channel it
/// already has to its peers (the service's RPC); it need not understand the
/// bytes.
pub trait PeerTransport {
    /// Sends `request` to the sidecar holding the party whose `ShareID` is
    /// `party_id` (big-endian, minimal) and returns that sidecar's answer.
    ///
    /// # Errors
    /// Whatever keeps the request from the peer or its answer from the
    /// caller (unreachable, timed out, refused).
    fn exchange(
        &mut self,
        party_id: &[u8],
        request: &[u8],
    ) -> core::result::Result<Vec<u8>, TransportError>;
}

/// A closure is a transport: `RemotePeers::new(move |party: &[u8], request:
/// &[u8]| ...)` sends each request through the closure, as `tower`'s
/// `service_fn` makes a service of one. The parameters need their types
/// written out, so that the closure takes any lifetime of the two slices.
///
/// ```
/// use shardkeep_keydata::{RemotePeers, TransportError};
///
/// let peers = RemotePeers::new(
///     |_party: &[u8], _request: &[u8]| -> Result<Vec<u8>, TransportError> {
///         Err("no sidecar reachable".into())
///     },
/// );
/// # drop(peers);
/// ```
impl<F> PeerTransport for F
where
    F: FnMut(&[u8], &[u8]) -> core::result::Result<Vec<u8>, TransportError>,
{
    fn exchange(
        &mut self,
        party_id: &[u8],
        request: &[u8],
    ) -> core::result::Result<Vec<u8>, TransportError> {
        self(party_id, request)
    }
}

/// What round 1 left for round 2: the session and the members that
/// committed to it.
struct Round1 {
    session_id: [u8; 32],
    curve: CurveId,
    members: Vec<Vec<u8>>,
}

/// [`SelfTestPeers`] over a [`PeerTransport`]: sends each quorum member but
/// the coordinator the encoded request and checks its answer.
pub struct RemotePeers<T> {
    transport: T,
    round1: Option<Round1>,
}

impl<T: PeerTransport> RemotePeers<T> {
    /// Peers reached through `transport`.
    #[must_use]
    pub const fn new(transport: T) -> Self {
        Self {
            transport,
            round1: None,
        }
    }

    /// The transport back.
    #[must_use]
    pub fn into_inner(self) -> T {
        self.transport
    }

    fn exchange(&mut self, party_id: &[u8], request: &[u8]) -> Result<Vec<u8>> {
        self.transport
            .exchange(party_id, request)
            .map_err(|source| Error::PeerExchange {
                party: hex::encode(party_id),
                source,
            })
    }
}

impl<T> fmt::Debug for RemotePeers<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemotePeers")
            .field("in_session", &self.round1.is_some())
            .finish_non_exhaustive()
    }
}

/// The one entry of an answer, which must be `party_id`'s.
fn only_entry<E>(party_id: &[u8], entries: Vec<E>, id_of: impl Fn(&E) -> &[u8]) -> Result<E> {
    let party = || hex::encode(party_id);
    if let Some(other) = entries.iter().find(|&e| id_of(e) != party_id) {
        return Err(Error::PeerWrongParty {
            asked: party(),
            answered: hex::encode(id_of(other)),
        });
    }
    let count = entries.len();
    let mut entries = entries.into_iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Ok(entry),
        _ => Err(Error::PeerAnsweredTwice {
            party: party(),
            count,
        }),
    }
}

fn check_session(party_id: &[u8], expected: &[u8; 32], got: &[u8; 32]) -> Result<()> {
    // Session ids are public random values.
    if expected == got {
        Ok(())
    } else {
        Err(Error::PeerWrongSession {
            party: hex::encode(party_id),
        })
    }
}

fn invalid(party_id: &[u8], problem: &'static str) -> Error {
    Error::PeerInvalidAnswer {
        party: hex::encode(party_id),
        problem,
    }
}

fn points_valid<C: Curve>(commitment: &NonceCommitment) -> bool {
    C::decode_point(&commitment.hiding).is_ok() && C::decode_point(&commitment.binding).is_ok()
}

fn scalar_valid<C: Curve>(share: &SignatureShare) -> bool {
    C::scalar_from_be_bytes(&share.share).is_some()
}

impl<T: PeerTransport> SelfTestPeers for RemotePeers<T> {
    fn commit(&mut self, request: &CommitRequest) -> Result<Vec<NonceCommitment>> {
        self.round1 = None;
        let encoded = request.encode()?;
        let members: Vec<Vec<u8>> = request
            .quorum
            .iter()
            .filter(|id| **id != request.coordinator)
            .cloned()
            .collect();
        let mut commitments = Vec::with_capacity(members.len());
        for party_id in &members {
            let answer = NonceCommitments::decode(&self.exchange(party_id, &encoded)?)?;
            check_session(party_id, &request.session_id, &answer.session_id)?;
            let commitment = only_entry(party_id, answer.commitments, |c| &c.party_id)?;
            let valid = match request.curve {
                CurveId::Secp256k1 => points_valid::<Secp256k1>(&commitment),
                CurveId::Ed25519 => points_valid::<Ed25519>(&commitment),
            };
            if !valid {
                return Err(invalid(party_id, "nonce commitment is not a valid point"));
            }
            commitments.push(commitment);
        }
        self.round1 = Some(Round1 {
            session_id: request.session_id,
            curve: request.curve,
            members,
        });
        Ok(commitments)
    }

    fn sign(&mut self, request: &SignRequest) -> Result<Vec<SignatureShare>> {
        // Round 2 goes to exactly the members that committed in round 1,
        // once: the session is spent whatever the outcome.
        let round1 = self
            .round1
            .take()
            .ok_or(Error::SelfTestProtocol("no nonces committed"))?;
        if round1.session_id != request.session_id {
            return Err(Error::SelfTestProtocol("unknown session"));
        }
        let encoded = request.encode()?;
        let mut shares = Vec::with_capacity(round1.members.len());
        for party_id in &round1.members {
            let answer = SignatureShares::decode(&self.exchange(party_id, &encoded)?)?;
            check_session(party_id, &request.session_id, &answer.session_id)?;
            let share = only_entry(party_id, answer.shares, |s| &s.party_id)?;
            let valid = match round1.curve {
                CurveId::Secp256k1 => scalar_valid::<Secp256k1>(&share),
                CurveId::Ed25519 => scalar_valid::<Ed25519>(&share),
            };
            if !valid {
                return Err(invalid(party_id, "signature share is not below the order"));
            }
            shares.push(share);
        }
        Ok(shares)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_wire::{NonceCommitments, SignatureShares};
    use crate::save_data::LocalPartySaveData;
    use crate::selftest::{Check, Outcome};
    use crate::signing::SelfTestResponder;
    use crate::test_support::{all_parties, threshold};

    /// Rewrites an answer (given the request) on its way back.
    type Tamper<'a> = Box<dyn FnMut(&[u8], Vec<u8>) -> Vec<u8> + 'a>;

    /// Each party's responder answering encoded requests, as its sidecar
    /// does; `tamper` may rewrite an answer on its way back.
    struct Sidecars<'a> {
        responders: Vec<SelfTestResponder<'a>>,
        asked: Vec<Vec<u8>>,
        tamper: Tamper<'a>,
    }

    impl<'a> Sidecars<'a> {
        fn new(parties: &'a [LocalPartySaveData], except: usize) -> Self {
            Self {
                responders: parties
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != except)
                    .map(|(_, p)| SelfTestResponder::new(p))
                    .collect(),
                asked: Vec::new(),
                tamper: Box::new(|_, answer| answer),
            }
        }

        fn tampering(mut self, tamper: impl FnMut(&[u8], Vec<u8>) -> Vec<u8> + 'a) -> Self {
            self.tamper = Box::new(tamper);
            self
        }
    }

    impl PeerTransport for Sidecars<'_> {
        fn exchange(
            &mut self,
            party_id: &[u8],
            request: &[u8],
        ) -> core::result::Result<Vec<u8>, TransportError> {
            self.asked.push(party_id.to_vec());
            let responder = self
                .responders
                .iter_mut()
                .find(|r| r.party_id() == party_id)
                .ok_or("no sidecar for this party")?;
            let answer = responder.answer(request)?;
            Ok((self.tamper)(request, answer))
        }
    }

    fn sign_outcome(
        parties: &[LocalPartySaveData],
        peers: &mut RemotePeers<Sidecars<'_>>,
    ) -> Outcome {
        let report = parties[0].self_test(threshold(), peers).unwrap();
        report.outcome(Check::SignAggregate).unwrap().clone()
    }

    #[test]
    fn the_self_test_passes_with_remote_sidecars_on_both_curves() {
        for protocol in ["ecdsa", "eddsa"] {
            let parties = all_parties(protocol);
            let mut peers = RemotePeers::new(Sidecars::new(&parties, 0));
            let report = parties[0].self_test(threshold(), &mut peers).unwrap();
            assert!(report.passed(), "{protocol}: {report}");
            // Parties 1 and 2 complete the quorum of 3: each asked once per round.
            let ids = |i: usize| parties[i].share_id().to_vec();
            assert_eq!(
                peers.into_inner().asked,
                vec![ids(1), ids(2), ids(1), ids(2)]
            );
        }
    }

    /// Runs round 1 through `peers` directly, for the typed errors.
    fn commit_request(parties: &[LocalPartySaveData]) -> CommitRequest {
        CommitRequest {
            session_id: [3; 32],
            curve: parties[0].curve(),
            group_public_key: parties[0].group_public_key(),
            quorum: (0..3).map(|i| parties[i].share_id().to_vec()).collect(),
            coordinator: parties[0].share_id().to_vec(),
        }
    }

    fn rewrite_commitments(answer: &[u8], edit: impl FnOnce(&mut NonceCommitments)) -> Vec<u8> {
        let mut decoded = NonceCommitments::decode(answer).unwrap();
        edit(&mut decoded);
        decoded.encode().unwrap()
    }

    #[test]
    fn a_peer_answering_for_another_party_is_refused() {
        let parties = all_parties("ecdsa");
        let impostor = parties[3].share_id().to_vec();
        let mut peers = RemotePeers::new(Sidecars::new(&parties, 0).tampering(|_, answer| {
            rewrite_commitments(&answer, |a| a.commitments[0].party_id.clone_from(&impostor))
        }));
        let error = peers.commit(&commit_request(&parties)).unwrap_err();
        assert!(
            matches!(&error, Error::PeerWrongParty { asked, answered }
                if *asked == hex::encode(parties[1].share_id())
                    && *answered == hex::encode(parties[3].share_id())),
            "{error}"
        );
        // And the coordinator's self-test fails its signature with that reason.
        let outcome = sign_outcome(&parties, &mut peers);
        assert!(
            matches!(&outcome, Outcome::Failed(why) if why.contains("answered for party")),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_peer_answering_twice_is_refused() {
        let parties = all_parties("eddsa");
        let mut peers = RemotePeers::new(Sidecars::new(&parties, 0).tampering(|_, answer| {
            rewrite_commitments(&answer, |a| {
                let again = a.commitments[0].clone();
                a.commitments.push(again);
            })
        }));
        assert!(matches!(
            peers.commit(&commit_request(&parties)),
            Err(Error::PeerAnsweredTwice { count: 2, .. })
        ));
    }

    #[test]
    fn a_peer_answering_for_another_session_is_refused() {
        let parties = all_parties("ecdsa");
        let mut peers = RemotePeers::new(
            Sidecars::new(&parties, 0)
                .tampering(|_, answer| rewrite_commitments(&answer, |a| a.session_id[0] ^= 1)),
        );
        assert!(matches!(
            peers.commit(&commit_request(&parties)),
            Err(Error::PeerWrongSession { .. })
        ));
    }

    #[test]
    fn a_commitment_off_the_curve_is_refused() {
        for protocol in ["ecdsa", "eddsa"] {
            let parties = all_parties(protocol);
            let mut peers = RemotePeers::new(Sidecars::new(&parties, 0).tampering(|_, answer| {
                // 0xff.. is neither a secp256k1 x-coordinate nor a canonical ed25519 y.
                rewrite_commitments(&answer, |a| {
                    let len = a.commitments[0].binding.len();
                    a.commitments[0].binding = vec![0xff; len];
                })
            }));
            assert!(
                matches!(
                    peers.commit(&commit_request(&parties)),
                    Err(Error::PeerInvalidAnswer { .. })
                ),
                "{protocol}"
            );
        }
    }

    #[test]
    fn a_share_not_below_the_order_is_refused_and_the_session_is_spent() {
        let parties = all_parties("ecdsa");
        let mut peers =
            RemotePeers::new(Sidecars::new(&parties, 0).tampering(|request, answer| {
                if request.starts_with(crate::peer_wire::SIGN_REQUEST_MAGIC) {
                    let mut decoded = SignatureShares::decode(&answer).unwrap();
                    decoded.shares[0].share = [0xff; 32];
                    decoded.encode().unwrap()
                } else {
                    answer
                }
            }));
        let request = commit_request(&parties);
        let mut commitments = peers.commit(&request).unwrap();
        let mut own = SelfTestResponder::new(&parties[0]);
        commitments.insert(0, own.commit(&request).unwrap());
        let sign = SignRequest {
            session_id: request.session_id,
            message: [4; 32],
            commitments,
        };
        assert!(matches!(
            peers.sign(&sign),
            Err(Error::PeerInvalidAnswer { .. })
        ));
        assert!(matches!(
            peers.sign(&sign),
            Err(Error::SelfTestProtocol("no nonces committed"))
        ));
    }

    #[test]
    fn a_closure_is_a_transport() {
        let parties = all_parties("ecdsa");
        let mut responders: Vec<_> = parties[1..].iter().map(SelfTestResponder::new).collect();
        let mut asked = Vec::new();
        let mut peers = RemotePeers::new(|party: &[u8], request: &[u8]| {
            asked.push(party.to_vec());
            let responder = responders
                .iter_mut()
                .find(|r| r.party_id() == party)
                .ok_or("no sidecar for this party")?;
            Ok(responder.answer(request)?)
        });
        let report = parties[0].self_test(threshold(), &mut peers).unwrap();
        assert_eq!(
            report.outcome(Check::SignAggregate),
            Some(&Outcome::Passed),
            "{report}"
        );
        drop(peers);
        // Both rounds went through the closure, to the quorum's two others.
        assert_eq!(asked.len(), 4);
        assert!(
            asked
                .iter()
                .all(|id| id.as_slice() != parties[0].share_id())
        );

        // Its error is the transport's, typed by `RemotePeers`.
        let mut unreachable = RemotePeers::new(
            |_: &[u8], _: &[u8]| -> core::result::Result<Vec<u8>, TransportError> {
                Err("link down".into())
            },
        );
        assert!(matches!(
            unreachable.commit(&commit_request(&parties)),
            Err(Error::PeerExchange { source, .. }) if source.to_string() == "link down"
        ));
    }

    #[test]
    fn an_unreachable_peer_and_a_garbled_answer_are_typed_errors() {
        let parties = all_parties("eddsa");
        // Only parties 3 and 4 have sidecars: party 1 is unreachable.
        let mut peers = RemotePeers::new(Sidecars::new(&parties[2..], 0));
        assert!(matches!(
            peers.commit(&commit_request(&parties)),
            Err(Error::PeerExchange { .. })
        ));
        let mut garbled =
            RemotePeers::new(Sidecars::new(&parties, 0).tampering(|_, mut answer| {
                answer.push(0);
                answer
            }));
        assert!(matches!(
            garbled.commit(&commit_request(&parties)),
            Err(Error::PeerMessage(_))
        ));
    }
}
