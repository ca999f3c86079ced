//! The self-test's four messages on the wire, for a node that reaches its
//! peers' sidecars over a network: a coordinator sends a [`CommitRequest`]
//! (`shkp-stc`) and a [`SignRequest`] (`shkp-sts`); a peer answers with
//! [`NonceCommitments`] (`shkp-stn`) and [`SignatureShares`] (`shkp-stz`).
//!
//! Each message is a magic, a version byte (1), the session id, then its
//! fields; party ids carry a one-byte length (1..=64), points a one-byte
//! length (32 or 33), lists a one-byte count. A message is at most
//! [`MAX_SELF_TEST_MESSAGE_LEN`] bytes, checked before parsing, and nothing
//! may follow its last field. These checks are about framing only: what a
//! message means (the right key, party, session, points on the curve) is
//! checked by the [`SelfTestResponder`](crate::SelfTestResponder) and by
//! [`RemotePeers`](crate::RemotePeers).
//!
//! Every value on the wire is public: nonce commitments, the message, ids,
//! and signature shares (masked by the one-time nonces). No message carries
//! `Xi` or a nonce.

use shardkeep_sss_core::CurveId;
use shardkeep_types::MAX_NAME_LEN;
use shardkeep_wire::{FramingError, Reader, check_total_len, put_prefixed_u8};

use crate::error::{Error, FormatError, Result};
use crate::signing::{CommitRequest, NonceCommitment, SignRequest, SignatureShare};

/// Magic of a round 1 request.
pub const COMMIT_REQUEST_MAGIC: &[u8; 8] = b"shkp-stc";
/// Magic of a round 1 answer.
pub const NONCE_COMMITMENTS_MAGIC: &[u8; 8] = b"shkp-stn";
/// Magic of a round 2 request.
pub const SIGN_REQUEST_MAGIC: &[u8; 8] = b"shkp-sts";
/// Magic of a round 2 answer.
pub const SIGNATURE_SHARES_MAGIC: &[u8; 8] = b"shkp-stz";
/// Format version of the four messages.
pub const SELF_TEST_WIRE_VERSION: u8 = 1;
/// Cap on any of the four messages: a sign request for the largest group a
/// save data holds (255 parties, 64-byte ids, 33-byte points) fits well
/// below it.
pub const MAX_SELF_TEST_MESSAGE_LEN: usize = 64 * 1024;

/// Party ids (`ShareID`s): as in a save data, 1 to 64 bytes.
const MAX_PARTY_ID_LEN: usize = MAX_NAME_LEN;
/// A compressed point: 32 bytes (ed25519) or 33 (secp256k1).
const MIN_POINT_LEN: usize = 32;
const MAX_POINT_LEN: usize = 33;
/// Parties in a save data (`Ks` is at most 255 entries).
const MAX_PARTIES: usize = 255;

const COMMIT_REQUEST: &str = "self-test commit request";
const NONCE_COMMITMENTS: &str = "self-test nonce commitments";
const SIGN_REQUEST: &str = "self-test sign request";
const SIGNATURE_SHARES: &str = "self-test signature shares";

/// A peer's round 1 answer: its commitment for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceCommitments {
    /// The session of the request answered.
    pub session_id: [u8; 32],
    /// The commitments (a sidecar answers with its own party's only).
    pub commitments: Vec<NonceCommitment>,
}

/// A peer's round 2 answer: its signature share for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureShares {
    /// The session of the request answered.
    pub session_id: [u8; 32],
    /// The shares (a sidecar answers with its own party's only).
    pub shares: Vec<SignatureShare>,
}

/// Which of the four messages bytes are, by their magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Commit,
    Sign,
}

/// The kind of a request, by its magic.
pub(crate) fn request_kind(bytes: &[u8]) -> Result<RequestKind> {
    check("self-test request", bytes)?;
    match bytes.get(..8) {
        Some(magic) if magic == COMMIT_REQUEST_MAGIC => Ok(RequestKind::Commit),
        Some(magic) if magic == SIGN_REQUEST_MAGIC => Ok(RequestKind::Sign),
        _ => Err(framing(FramingError::BadMagic {
            format: "self-test request",
        })),
    }
}

fn framing(error: FramingError) -> Error {
    Error::PeerMessage(FormatError::Framing(error))
}

fn check(format: &'static str, bytes: &[u8]) -> Result<()> {
    check_total_len(format, bytes.len(), MAX_SELF_TEST_MESSAGE_LEN).map_err(framing)
}

fn header(magic: [u8; 8], session_id: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&magic);
    out.push(SELF_TEST_WIRE_VERSION);
    out.extend_from_slice(session_id);
    out
}

fn open<'a>(
    format: &'static str,
    magic: [u8; 8],
    bytes: &'a [u8],
) -> Result<(Reader<'a>, [u8; 32])> {
    check(format, bytes)?;
    let mut reader = Reader::new(bytes);
    reader
        .magic_and_version(format, &magic, SELF_TEST_WIRE_VERSION)
        .map_err(framing)?;
    let session_id = *reader.array::<32>("session_id").map_err(framing)?;
    Ok((reader, session_id))
}

fn put_id(out: &mut Vec<u8>, field: &'static str, id: &[u8]) -> Result<()> {
    if id.is_empty() {
        return Err(framing(FramingError::LengthOutOfRange {
            field,
            len: 0,
            min: 1,
            max: MAX_PARTY_ID_LEN,
        }));
    }
    put_prefixed_u8(out, field, id, MAX_PARTY_ID_LEN).map_err(framing)
}

fn read_id(reader: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>> {
    Ok(reader
        .prefixed_u8(field, 1, MAX_PARTY_ID_LEN)
        .map_err(framing)?
        .to_vec())
}

fn put_point(out: &mut Vec<u8>, field: &'static str, point: &[u8]) -> Result<()> {
    if point.len() < MIN_POINT_LEN {
        return Err(framing(FramingError::LengthOutOfRange {
            field,
            len: point.len(),
            min: MIN_POINT_LEN,
            max: MAX_POINT_LEN,
        }));
    }
    put_prefixed_u8(out, field, point, MAX_POINT_LEN).map_err(framing)
}

fn read_point(reader: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>> {
    Ok(reader
        .prefixed_u8(field, MIN_POINT_LEN, MAX_POINT_LEN)
        .map_err(framing)?
        .to_vec())
}

fn put_count(out: &mut Vec<u8>, field: &'static str, count: usize, min: usize) -> Result<()> {
    match u8::try_from(count) {
        Ok(byte) if count >= min => {
            out.push(byte);
            Ok(())
        }
        _ => Err(framing(FramingError::LengthOutOfRange {
            field,
            len: count,
            min,
            max: MAX_PARTIES,
        })),
    }
}

fn read_count(reader: &mut Reader<'_>, field: &'static str, min: usize) -> Result<usize> {
    let count = usize::from(reader.u8(field).map_err(framing)?);
    if count < min {
        return Err(framing(FramingError::LengthOutOfRange {
            field,
            len: count,
            min,
            max: MAX_PARTIES,
        }));
    }
    Ok(count)
}

fn put_commitments(out: &mut Vec<u8>, commitments: &[NonceCommitment]) -> Result<()> {
    put_count(out, "commitment count", commitments.len(), 1)?;
    for commitment in commitments {
        put_id(out, "party_id", &commitment.party_id)?;
        put_point(out, "hiding", &commitment.hiding)?;
        put_point(out, "binding", &commitment.binding)?;
    }
    Ok(())
}

fn read_commitments(reader: &mut Reader<'_>) -> Result<Vec<NonceCommitment>> {
    let count = read_count(reader, "commitment count", 1)?;
    (0..count)
        .map(|_| {
            Ok(NonceCommitment {
                party_id: read_id(reader, "party_id")?,
                hiding: read_point(reader, "hiding")?,
                binding: read_point(reader, "binding")?,
            })
        })
        .collect()
}

impl CommitRequest {
    /// The `shkp-stc` encoding.
    ///
    /// # Errors
    /// [`Error::PeerMessage`] when a field is out of its range (an empty or
    /// over-long id, a quorum of fewer than 2 or more than 255, a group key
    /// of another length than a point's).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = header(*COMMIT_REQUEST_MAGIC, &self.session_id);
        out.push(self.curve.to_u8());
        put_point(&mut out, "group_public_key", &self.group_public_key)?;
        put_count(&mut out, "quorum count", self.quorum.len(), 2)?;
        for id in &self.quorum {
            put_id(&mut out, "quorum member", id)?;
        }
        put_id(&mut out, "coordinator", &self.coordinator)?;
        Ok(out)
    }

    /// Parses a `shkp-stc` message.
    ///
    /// # Errors
    /// [`Error::PeerMessage`]: over the cap, wrong magic or version, a field
    /// out of range, an unknown curve byte, cut short, or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (mut reader, session_id) = open(COMMIT_REQUEST, *COMMIT_REQUEST_MAGIC, bytes)?;
        let curve_byte = reader.u8("curve").map_err(framing)?;
        let curve = CurveId::from_u8(curve_byte)
            .map_err(|_| Error::PeerMessage(FormatError::UnknownCurve(curve_byte)))?;
        let group_public_key = read_point(&mut reader, "group_public_key")?;
        let count = read_count(&mut reader, "quorum count", 2)?;
        let quorum = (0..count)
            .map(|_| read_id(&mut reader, "quorum member"))
            .collect::<Result<Vec<_>>>()?;
        let coordinator = read_id(&mut reader, "coordinator")?;
        reader.finish(COMMIT_REQUEST).map_err(framing)?;
        Ok(Self {
            session_id,
            curve,
            group_public_key,
            quorum,
            coordinator,
        })
    }
}

impl NonceCommitments {
    /// The `shkp-stn` encoding.
    ///
    /// # Errors
    /// [`Error::PeerMessage`] when a field is out of its range (no
    /// commitment or more than 255, an empty or over-long id, a point of
    /// another length).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = header(*NONCE_COMMITMENTS_MAGIC, &self.session_id);
        put_commitments(&mut out, &self.commitments)?;
        Ok(out)
    }

    /// Parses a `shkp-stn` message.
    ///
    /// # Errors
    /// As [`CommitRequest::decode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (mut reader, session_id) = open(NONCE_COMMITMENTS, *NONCE_COMMITMENTS_MAGIC, bytes)?;
        let commitments = read_commitments(&mut reader)?;
        reader.finish(NONCE_COMMITMENTS).map_err(framing)?;
        Ok(Self {
            session_id,
            commitments,
        })
    }
}

impl SignRequest {
    /// The `shkp-sts` encoding.
    ///
    /// # Errors
    /// As [`NonceCommitments::encode`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = header(*SIGN_REQUEST_MAGIC, &self.session_id);
        out.extend_from_slice(&self.message);
        put_commitments(&mut out, &self.commitments)?;
        Ok(out)
    }

    /// Parses a `shkp-sts` message.
    ///
    /// # Errors
    /// As [`CommitRequest::decode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (mut reader, session_id) = open(SIGN_REQUEST, *SIGN_REQUEST_MAGIC, bytes)?;
        let message = *reader.array::<32>("message").map_err(framing)?;
        let commitments = read_commitments(&mut reader)?;
        reader.finish(SIGN_REQUEST).map_err(framing)?;
        Ok(Self {
            session_id,
            message,
            commitments,
        })
    }
}

impl SignatureShares {
    /// The `shkp-stz` encoding.
    ///
    /// # Errors
    /// [`Error::PeerMessage`] when a field is out of its range (no share or
    /// more than 255, an empty or over-long id).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = header(*SIGNATURE_SHARES_MAGIC, &self.session_id);
        put_count(&mut out, "share count", self.shares.len(), 1)?;
        for share in &self.shares {
            put_id(&mut out, "party_id", &share.party_id)?;
            out.extend_from_slice(&share.share);
        }
        Ok(out)
    }

    /// Parses a `shkp-stz` message.
    ///
    /// # Errors
    /// As [`CommitRequest::decode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (mut reader, session_id) = open(SIGNATURE_SHARES, *SIGNATURE_SHARES_MAGIC, bytes)?;
        let count = read_count(&mut reader, "share count", 1)?;
        let shares = (0..count)
            .map(|_| {
                Ok(SignatureShare {
                    party_id: read_id(&mut reader, "party_id")?,
                    share: *reader.array::<32>("share").map_err(framing)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        reader.finish(SIGNATURE_SHARES).map_err(framing)?;
        Ok(Self { session_id, shares })
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::signing::SelfTestResponder;
    use crate::test_support::fixture;

    fn id() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 1..=MAX_PARTY_ID_LEN)
    }

    fn point() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), MIN_POINT_LEN..=MAX_POINT_LEN)
    }

    fn commitment() -> impl Strategy<Value = NonceCommitment> {
        (id(), point(), point()).prop_map(|(party_id, hiding, binding)| NonceCommitment {
            party_id,
            hiding,
            binding,
        })
    }

    fn curve() -> impl Strategy<Value = CurveId> {
        prop_oneof![Just(CurveId::Secp256k1), Just(CurveId::Ed25519)]
    }

    proptest! {
        #[test]
        fn commit_requests_round_trip(
            session_id in any::<[u8; 32]>(),
            curve in curve(),
            group_public_key in point(),
            quorum in vec(id(), 2..=12),
            coordinator in id(),
        ) {
            let request = CommitRequest { session_id, curve, group_public_key, quorum, coordinator };
            let bytes = request.encode().unwrap();
            prop_assert_eq!(CommitRequest::decode(&bytes).unwrap(), request);
        }

        #[test]
        fn nonce_commitments_round_trip(
            session_id in any::<[u8; 32]>(),
            commitments in vec(commitment(), 1..=12),
        ) {
            let answer = NonceCommitments { session_id, commitments };
            let bytes = answer.encode().unwrap();
            prop_assert_eq!(NonceCommitments::decode(&bytes).unwrap(), answer);
        }

        #[test]
        fn sign_requests_round_trip(
            session_id in any::<[u8; 32]>(),
            message in any::<[u8; 32]>(),
            commitments in vec(commitment(), 1..=12),
        ) {
            let request = SignRequest { session_id, message, commitments };
            let bytes = request.encode().unwrap();
            prop_assert_eq!(SignRequest::decode(&bytes).unwrap(), request);
        }

        #[test]
        fn signature_shares_round_trip(
            session_id in any::<[u8; 32]>(),
            shares in vec((id(), any::<[u8; 32]>()), 1..=12),
        ) {
            let answer = SignatureShares {
                session_id,
                shares: shares
                    .into_iter()
                    .map(|(party_id, share)| SignatureShare { party_id, share })
                    .collect(),
            };
            let bytes = answer.encode().unwrap();
            let decoded = SignatureShares::decode(&bytes).unwrap();
            prop_assert_eq!(decoded, answer);
        }

        /// No prefix of a message decodes, and no message with a byte
        /// appended.
        #[test]
        fn cut_or_extended_messages_are_refused(
            session_id in any::<[u8; 32]>(),
            commitments in vec(commitment(), 1..=4),
            cut in any::<prop::sample::Index>(),
            extra in any::<u8>(),
        ) {
            let bytes = NonceCommitments { session_id, commitments }.encode().unwrap();
            let cut = cut.index(bytes.len());
            prop_assert!(NonceCommitments::decode(&bytes[..cut]).is_err());
            let mut longer = bytes.clone();
            longer.push(extra);
            let refused = matches!(
                NonceCommitments::decode(&longer),
                Err(Error::PeerMessage(FormatError::Framing(FramingError::TrailingBytes { .. })))
            );
            prop_assert!(refused);
        }
    }

    #[test]
    fn out_of_range_fields_are_not_encoded() {
        let request = |quorum: Vec<Vec<u8>>, coordinator: Vec<u8>, key_len: usize| CommitRequest {
            session_id: [1; 32],
            curve: CurveId::Ed25519,
            group_public_key: vec![9; key_len],
            quorum,
            coordinator,
        };
        let out_of_range = |r: Result<Vec<u8>>| {
            matches!(
                r,
                Err(Error::PeerMessage(FormatError::Framing(
                    FramingError::LengthOutOfRange { .. }
                )))
            )
        };
        assert!(
            request(vec![vec![1], vec![2]], vec![1], 32)
                .encode()
                .is_ok()
        );
        assert!(out_of_range(request(vec![vec![1]], vec![1], 32).encode()));
        assert!(out_of_range(
            request(vec![vec![1]; 256], vec![1], 32).encode()
        ));
        assert!(out_of_range(
            request(vec![vec![1], vec![]], vec![1], 32).encode()
        ));
        assert!(out_of_range(
            request(vec![vec![1], vec![2; 65]], vec![1], 32).encode()
        ));
        assert!(out_of_range(
            request(vec![vec![1], vec![2]], vec![], 32).encode()
        ));
        assert!(out_of_range(
            request(vec![vec![1], vec![2]], vec![1], 31).encode()
        ));
        assert!(out_of_range(
            request(vec![vec![1], vec![2]], vec![1], 34).encode()
        ));
        assert!(out_of_range(
            SignatureShares {
                session_id: [0; 32],
                shares: Vec::new()
            }
            .encode()
        ));
    }

    #[test]
    fn messages_over_the_cap_are_refused_before_parsing() {
        let mut bytes = COMMIT_REQUEST_MAGIC.to_vec();
        bytes.resize(MAX_SELF_TEST_MESSAGE_LEN + 1, 0);
        for result in [
            CommitRequest::decode(&bytes).map(|_| ()),
            SignRequest::decode(&bytes).map(|_| ()),
            NonceCommitments::decode(&bytes).map(|_| ()),
            SignatureShares::decode(&bytes).map(|_| ()),
        ] {
            assert!(matches!(
                result,
                Err(Error::PeerMessage(FormatError::Framing(
                    FramingError::TooLarge { .. }
                )))
            ));
        }
        let data = fixture("eddsa", 1);
        let mut responder = SelfTestResponder::new(&data);
        assert!(matches!(
            responder.answer(&bytes),
            Err(Error::PeerMessage(FormatError::Framing(
                FramingError::TooLarge { .. }
            )))
        ));
    }

    #[test]
    fn a_responder_answers_a_request_of_each_round_and_refuses_an_answer() {
        for protocol in ["ecdsa", "eddsa"] {
            let coordinator = fixture(protocol, 0);
            let peer = fixture(protocol, 1);
            let mut responder = SelfTestResponder::new(&peer);
            let request = CommitRequest {
                session_id: [7; 32],
                curve: coordinator.curve(),
                group_public_key: coordinator.group_public_key(),
                quorum: vec![coordinator.share_id().to_vec(), peer.share_id().to_vec()],
                coordinator: coordinator.share_id().to_vec(),
            };
            let answer =
                NonceCommitments::decode(&responder.answer(&request.encode().unwrap()).unwrap())
                    .unwrap();
            assert_eq!(answer.session_id, [7; 32]);
            assert_eq!(answer.commitments.len(), 1);
            assert_eq!(answer.commitments[0].party_id, peer.share_id());

            let mut own = SelfTestResponder::new(&coordinator);
            let mine = own.commit(&request).unwrap();
            let sign = SignRequest {
                session_id: [7; 32],
                message: [8; 32],
                commitments: vec![mine, answer.commitments[0].clone()],
            };
            let shares =
                SignatureShares::decode(&responder.answer(&sign.encode().unwrap()).unwrap())
                    .unwrap();
            assert_eq!(shares.session_id, [7; 32]);
            assert_eq!(shares.shares.len(), 1);
            assert_eq!(shares.shares[0].party_id, peer.share_id());
            // The nonces are spent: the same request again is refused.
            assert!(matches!(
                responder.answer(&sign.encode().unwrap()),
                Err(Error::SelfTestProtocol("no nonces committed"))
            ));
            // An answer is not a request.
            assert!(matches!(
                responder.answer(&NonceCommitments::encode(&answer).unwrap()),
                Err(Error::PeerMessage(FormatError::Framing(
                    FramingError::BadMagic { .. }
                )))
            ));
        }
    }
}
