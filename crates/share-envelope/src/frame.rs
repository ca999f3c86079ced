//! The unauthenticated frame of a sealed (server) envelope: what storage
//! checks a row's columns against, without any key.

use shardkeep_types::{EnvelopeId, KekId, ShareSlot, Threshold, WrappedKey};

use crate::envelope::{PayloadKind, RawEnvelope};
use crate::error::Error;

/// The unauthenticated structure of a sealed (server) envelope: enough for
/// storage to check a row's columns against the bytes it stores. No
/// signature is checked here; readers still call
/// [`decode_verify`](crate::VerifiedEnvelope::decode_verify).
///
/// [`SealedEnvelopeFrame::parse`] runs the structural checks of
/// `decode_verify` (length cap, magic, version, every length prefix against
/// its cap, names, curve and payload-kind bytes, `created_at`, no truncated
/// or trailing bytes), the checksum, and the index rule (`2 <= t <= n`,
/// index in `1..=n`), so that [`SealedEnvelopeFrame::slot`] is a real share
/// slot. It decodes no point and needs no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEnvelopeFrame {
    id: EnvelopeId,
    slot: ShareSlot,
    kek_id: KekId,
    wrapped_key: WrappedKey,
}

impl SealedEnvelopeFrame {
    /// Parses a sealed envelope's frame.
    ///
    /// # Errors
    /// The structural errors of
    /// [`decode_verify`](crate::VerifiedEnvelope::decode_verify)
    /// ([`Error::Framing`], [`Error::Types`], [`Error::UnknownCurve`],
    /// [`Error::UnknownPayloadKind`]), [`Error::ChecksumMismatch`],
    /// [`Error::Share`] for a threshold or index out of range, and
    /// [`Error::WrongPayloadKind`] for a plain envelope.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let raw = RawEnvelope::parse(bytes)?;
        raw.check_checksum()?;
        let threshold = Threshold::new(usize::from(raw.t), usize::from(raw.n))?;
        let index = threshold.share_index(raw.index)?;
        let id = raw.id();
        let slot = raw.node_version.slot(index);
        let Some((kek_id, wrapped_key)) = raw.wrap else {
            return Err(Error::WrongPayloadKind {
                expected: PayloadKind::Sealed,
                got: raw.kind,
            });
        };
        Ok(Self {
            id,
            slot,
            kek_id,
            wrapped_key,
        })
    }

    /// The envelope id: `SHA-256("shardkeep/envelope-id/v1" || signed
    /// bytes)`, as [`VerifiedEnvelope::id`](crate::VerifiedEnvelope::id)
    /// reports it once verified.
    #[must_use]
    pub fn id(&self) -> EnvelopeId {
        self.id
    }

    /// Key, node, version and share index, from the header.
    #[must_use]
    pub fn slot(&self) -> ShareSlot {
        self.slot.clone()
    }

    /// The KEK that wraps the data key (unsigned trailer).
    #[must_use]
    pub fn kek_id(&self) -> &KekId {
        &self.kek_id
    }

    /// The wrapped data key (unsigned trailer).
    #[must_use]
    pub fn wrapped_key(&self) -> &WrappedKey {
        &self.wrapped_key
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;
    use shardkeep_sss_core::{Curve, Secp256k1, Secret, split};

    use super::*;
    use crate::binding::{Binding, archive_hash};
    use crate::envelope::{EncodedEnvelope, EnvelopeParams, VerifiedEnvelope};
    use crate::trust::TrustedSigners;
    use shardkeep_types::{InMemoryKek, InMemorySigner, KeyEncryptionKey};
    use shardkeep_types::{KeyId, KeyVersion, NodeId, NodeVersion, SignerId, Timestamp};

    /// A sealed envelope of share 2 and a plain one of share 3 (3-of-5), the
    /// KEK and the trust set.
    fn envelopes() -> (
        EncodedEnvelope,
        EncodedEnvelope,
        InMemoryKek,
        TrustedSigners,
    ) {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let secret = Secret::<Secp256k1>::random(&mut rng);
        let (commitments, shares) = split(&secret, Threshold::new(3, 5).unwrap(), &mut rng)
            .unwrap()
            .into_parts();
        let c0 = commitments.to_bytes()[..Secp256k1::POINT_LEN].to_vec();
        let params = EnvelopeParams {
            node_version: NodeVersion {
                key_id: KeyId::new("key-1").unwrap(),
                node_id: NodeId::new("node-a").unwrap(),
                version: KeyVersion::new(4),
            },
            created_at: Timestamp::from_unix_seconds(1_764_000_000).unwrap(),
            binding: Binding::new(
                Secp256k1::ID,
                c0.clone(),
                vec![9],
                c0,
                archive_hash(b"archive"),
            )
            .unwrap(),
        };
        let signer = InMemorySigner::generate(SignerId::new("server-1").unwrap(), &mut rng);
        let slot = params.node_version.slot(shares[1].index());
        let kek = InMemoryKek::for_slot(KekId::new("kek-2").unwrap(), slot, &mut rng);
        let sealed = params
            .seal(&commitments, &shares[1], &signer, &kek, &mut rng)
            .unwrap();
        let plain = params.plain(&commitments, &shares[2], &signer).unwrap();
        let mut trusted = TrustedSigners::new();
        trusted.add_signer(&signer).unwrap();
        (sealed, plain, kek, trusted)
    }

    #[test]
    fn frame_agrees_with_the_verified_envelope() {
        let (sealed, _, kek, trusted) = envelopes();
        let frame = SealedEnvelopeFrame::parse(sealed.as_bytes()).unwrap();
        let verified = VerifiedEnvelope::decode_verify(sealed.as_bytes(), &trusted).unwrap();
        assert_eq!(frame.id(), sealed.id());
        assert_eq!(frame.id(), verified.id());
        assert_eq!(frame.slot(), verified.header().slot());
        assert_eq!(frame.slot().to_string(), "key-1/node-a/v4/2");
        assert_eq!(frame.kek_id(), kek.kek_id());
        assert_eq!(Some(frame.kek_id()), verified.kek_id());
        assert_eq!(Some(frame.wrapped_key()), verified.wrapped_key());
    }

    #[test]
    fn frame_refuses_plain_corrupt_and_trailing_input() {
        let (sealed, plain, _, _) = envelopes();
        assert_eq!(
            SealedEnvelopeFrame::parse(plain.as_bytes()),
            Err(Error::WrongPayloadKind {
                expected: PayloadKind::Sealed,
                got: PayloadKind::Plain,
            })
        );
        let mut trailing = sealed.as_bytes().to_vec();
        trailing.push(0);
        assert!(matches!(
            SealedEnvelopeFrame::parse(&trailing),
            Err(Error::Framing(
                shardkeep_types::FramingError::TrailingBytes { .. }
            ))
        ));
        let bytes = sealed.as_bytes();
        for len in 0..bytes.len() {
            assert!(
                SealedEnvelopeFrame::parse(&bytes[..len]).is_err(),
                "cut at {len}"
            );
        }
        // A flipped bit of the signed bytes (here in created_at).
        let mut flipped = bytes.to_vec();
        let created_at = 8 + 1 + 1 + 5 + 1 + 6 + 1 + 4 + 3 + 32;
        flipped[created_at + 7] ^= 1;
        assert_eq!(
            SealedEnvelopeFrame::parse(&flipped),
            Err(Error::ChecksumMismatch)
        );
    }
}
