//! Envelope round trips and tamper resistance through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a failed unwrap is a failed test.

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rand_core::Rng;
use sha2::{Digest, Sha256};
use shardkeep_envelope::{
    Binding, BindingField, CurveShare, ENVELOPE_CHECKSUM_TAG, EncodedEnvelope, EnvelopeParams,
    Error, PayloadKind, TrustedSigners, VerifiedEnvelope, archive_hash,
};
use shardkeep_sss_core::{
    Commitments, Curve, CurveId, Ed25519, Secp256k1, Secret, Share, Threshold, split,
};
use shardkeep_types::{
    InMemoryKek, InMemorySigner, KekId, KeyEncryptionKey, KeyId, KeyVersion, NodeId, NodeVersion,
    ShareSlot, Signer, SignerId, Timestamp,
};
use subtle::ConstantTimeEq;

struct Setup<C: Curve> {
    params: EnvelopeParams,
    commitments: Commitments<C>,
    shares: Vec<Share<C>>,
    signer: InMemorySigner,
    trusted: TrustedSigners,
    /// Key bytes of every slot's KEK (one KEK per slot, as in production).
    kek_key: [u8; 32],
    rng: ChaCha20Rng,
}

fn setup<C: Curve>(seed: u64, t: usize, n: usize) -> Setup<C> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let secret = Secret::<C>::random(&mut rng);
    let (commitments, shares) = split(&secret, Threshold::new(t, n).unwrap(), &mut rng)
        .unwrap()
        .into_parts();
    let mut group_key = Vec::new();
    C::encode_point(
        &Secret::<C>::random(&mut rng).public_point(),
        &mut group_key,
    );
    let binding = Binding::new(
        C::ID,
        group_key,
        vec![0x2a, u8::try_from(seed % 200).unwrap() + 1],
        commitments.to_bytes()[..C::POINT_LEN].to_vec(),
        archive_hash(b"archive"),
    )
    .unwrap();
    let signer = InMemorySigner::generate(SignerId::new("server-1").unwrap(), &mut rng);
    let mut trusted = TrustedSigners::new();
    trusted.add_signer(&signer).unwrap();
    let mut kek_key = [0u8; 32];
    rng.fill_bytes(&mut kek_key);
    Setup {
        params: EnvelopeParams {
            node_version: NodeVersion {
                key_id: KeyId::new(format!("key-{seed}")).unwrap(),
                node_id: NodeId::new("node:1").unwrap(),
                version: KeyVersion::new(u32::try_from(seed % 7).unwrap()),
            },
            // Any time up to 2^62 ms past 2023-11: within the i64 range.
            created_at: Timestamp::from_unix_seconds(1_700_000_000 + seed % (1 << 50)).unwrap(),
            binding,
        },
        commitments,
        shares,
        signer,
        trusted,
        kek_key,
        rng,
    }
}

impl<C: Curve> Setup<C> {
    /// The share slot of the share at `position`.
    fn slot(&self, position: usize) -> ShareSlot {
        self.params.node_version.slot(self.shares[position].index())
    }

    /// The KEK dedicated to `slot`.
    fn kek_for(&self, slot: &ShareSlot) -> InMemoryKek {
        let id = KekId::new(format!("kek-{}", slot.index)).unwrap();
        InMemoryKek::from_bytes_for_slot(id, slot.clone(), &self.kek_key)
    }

    fn envelope(&mut self, position: usize, kind: PayloadKind) -> EncodedEnvelope {
        let share = &self.shares[position];
        match kind {
            PayloadKind::Plain => self
                .params
                .plain(&self.commitments, share, &self.signer)
                .unwrap(),
            PayloadKind::Sealed => {
                let kek = self.kek_for(&self.slot(position));
                self.params
                    .seal(&self.commitments, share, &self.signer, &kek, &mut self.rng)
                    .unwrap()
            }
        }
    }

    /// Decodes and, for sealed envelopes, opens with the KEK of the slot
    /// the header names.
    fn decode_open(&self, bytes: &[u8]) -> Result<CurveShare, Error> {
        let envelope = VerifiedEnvelope::decode_verify(bytes, &self.trusted)?;
        match envelope.payload_kind() {
            PayloadKind::Sealed => envelope.open(&self.kek_for(&envelope.header().slot())),
            PayloadKind::Plain => envelope.into_plain_share(),
        }
    }
}

fn same_share<C: Curve>(got: CurveShare, want: &Share<C>) -> bool
where
    Share<C>: TryFrom<CurveShare, Error = Error>,
{
    let got = Share::<C>::try_from(got).unwrap();
    bool::from(got.ct_eq(want))
}

fn round_trip<C: Curve>(seed: u64, t: usize, n: usize, position: usize, kind: PayloadKind)
where
    Share<C>: TryFrom<CurveShare, Error = Error>,
{
    let mut s = setup::<C>(seed, t, n);
    let position = position % n;
    let encoded = s.envelope(position, kind);
    let envelope = VerifiedEnvelope::decode_verify(encoded.as_bytes(), &s.trusted).unwrap();
    let header = envelope.header();
    assert_eq!(envelope.id(), encoded.id());
    // The signature sits before the (sealed-only) wrap trailer.
    assert!(
        encoded
            .as_bytes()
            .windows(64)
            .any(|window| window == envelope.signature())
    );
    assert_eq!(header.node_version(), &s.params.node_version);
    assert_eq!(header.created_at(), s.params.created_at);
    assert_eq!(header.binding(), &s.params.binding);
    assert_eq!(header.curve(), C::ID);
    assert_eq!(header.threshold(), s.commitments.threshold());
    assert_eq!(header.index(), s.shares[position].index());
    assert_eq!(header.split_id(), s.commitments.split_id());
    assert_eq!(header.payload_kind(), kind);
    assert_eq!(envelope.signer_id().as_str(), "server-1");
    let share = s.decode_open(encoded.as_bytes()).unwrap();
    assert!(same_share(share, &s.shares[position]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn encode_decode_round_trip(
        seed in any::<u64>(),
        t in 2usize..6,
        extra in 0usize..4,
        position in 0usize..16,
        sealed in any::<bool>(),
        ed25519 in any::<bool>(),
    ) {
        let kind = if sealed { PayloadKind::Sealed } else { PayloadKind::Plain };
        if ed25519 {
            round_trip::<Ed25519>(seed, t, t + extra, position, kind);
        } else {
            round_trip::<Secp256k1>(seed, t, t + extra, position, kind);
        }
    }

    /// A flip anywhere is refused by decode_verify, or (only in the
    /// unsigned key-wrap trailer of a sealed envelope) by open.
    #[test]
    fn any_single_bit_flip_is_rejected(seed in any::<u64>(), sealed in any::<bool>(), bit in any::<prop::sample::Index>()) {
        let mut s = setup::<Secp256k1>(seed, 3, 5);
        let kind = if sealed { PayloadKind::Sealed } else { PayloadKind::Plain };
        let mut bytes = s.envelope(1, kind).into_bytes().to_vec();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(s.decode_open(&bytes).is_err());
    }

    #[test]
    fn any_truncation_is_rejected(seed in any::<u64>(), sealed in any::<bool>(), cut in any::<prop::sample::Index>()) {
        let mut s = setup::<Ed25519>(seed, 2, 3);
        let kind = if sealed { PayloadKind::Sealed } else { PayloadKind::Plain };
        let bytes = s.envelope(0, kind).into_bytes();
        let len = cut.index(bytes.len());
        prop_assert!(VerifiedEnvelope::decode_verify(&bytes[..len], &s.trusted).is_err());
    }

    /// Re-wrapping the data key under another KEK keeps the id, the signed
    /// bytes and the signature; only the new KEK opens it.
    #[test]
    fn rewrap_keeps_the_envelope_valid(seed in any::<u64>(), ed25519 in any::<bool>()) {
        if ed25519 { rewrap::<Ed25519>(seed) } else { rewrap::<Secp256k1>(seed) }
    }
}

fn rewrap<C: Curve>(seed: u64)
where
    Share<C>: TryFrom<CurveShare, Error = Error>,
{
    let mut s = setup::<C>(seed, 3, 5);
    let original = s.envelope(2, PayloadKind::Sealed);
    let verified = VerifiedEnvelope::decode_verify(original.as_bytes(), &s.trusted).unwrap();
    let slot = s.slot(2);
    let old_kek = s.kek_for(&slot);
    let new_kek = InMemoryKek::for_slot(KekId::new("kek-b").unwrap(), slot.clone(), &mut s.rng);
    let rewrapped = verified.rewrap(&old_kek, &new_kek).unwrap();
    assert_eq!(rewrapped.id(), original.id());
    let trailer = |e: &VerifiedEnvelope| {
        1 + e.kek_id().unwrap().as_str().len() + 2 + e.wrapped_key().unwrap().as_bytes().len()
    };
    let kept = original.as_bytes().len() - trailer(&verified);
    assert_eq!(rewrapped.as_bytes()[..kept], original.as_bytes()[..kept]);

    let again = VerifiedEnvelope::decode_verify(rewrapped.as_bytes(), &s.trusted).unwrap();
    assert_eq!(again.id(), original.id());
    assert_eq!(again.kek_id(), Some(new_kek.kek_id()));
    assert!(same_share(again.open(&new_kek).unwrap(), &s.shares[2]));
    assert!(matches!(
        again.open(&old_kek),
        Err(Error::KekMismatch { .. })
    ));
    // A KEK that does not hold the data key is refused before re-wrapping.
    let impostor = InMemoryKek::for_slot(KekId::new("kek-b").unwrap(), slot, &mut s.rng);
    assert!(matches!(
        again.rewrap(&impostor, &old_kek),
        Err(Error::Custody(shardkeep_types::CustodyError::UnwrapFailed))
    ));
}

/// Finding: re-wrapping strands server shares. A share of slot 2 re-wrapped
/// under slot 3's KEK survives the crypto-shredding of slot 2 (and dies with
/// slot 3): `rewrap` refuses a target KEK that is not dedicated to the
/// envelope's own slot, or bound to no slot.
#[test]
fn rewrap_refuses_a_kek_of_another_slot_or_of_none() {
    let mut s = setup::<Secp256k1>(21, 3, 5);
    let sealed = s.envelope(1, PayloadKind::Sealed);
    let verified = VerifiedEnvelope::decode_verify(sealed.as_bytes(), &s.trusted).unwrap();
    let own_slot = s.slot(1);
    let own_kek = s.kek_for(&own_slot);
    let other_kek = s.kek_for(&s.slot(2));
    match verified.rewrap(&own_kek, &other_kek) {
        Err(Error::KekNotForSlot { kek, slot }) => {
            assert_eq!(&kek, other_kek.kek_id());
            assert_eq!(slot, own_slot);
        }
        Ok(moved) => {
            // The attack succeeded: shred slot 2 (its KEK is gone) and the
            // share still opens, under slot 3's KEK.
            drop(own_kek);
            let moved = VerifiedEnvelope::decode_verify(moved.as_bytes(), &s.trusted).unwrap();
            let opens = moved.open(&other_kek).is_ok();
            panic!(
                "slot {own_slot}'s share was re-wrapped under slot {}'s KEK; \
                 after slot {own_slot}'s KEK is destroyed it still opens: {opens}",
                s.slot(2)
            );
        }
        Err(other) => panic!("unexpected {other:?}"),
    }
    let unbound = InMemoryKek::generate(KekId::new("kek-any").unwrap(), &mut s.rng);
    assert_eq!(
        verified.rewrap(&own_kek, &unbound).unwrap_err(),
        Error::KekNotForSlot {
            kek: unbound.kek_id().clone(),
            slot: own_slot.clone(),
        }
    );
    // The slot's own new KEK is accepted.
    let fresh = InMemoryKek::for_slot(KekId::new("kek-2-new").unwrap(), own_slot, &mut s.rng);
    verified.rewrap(&own_kek, &fresh).unwrap();
}

/// Sealing refuses a KEK for another slot, or bound to no slot: a server
/// share is born under its own slot's KEK.
#[test]
fn seal_refuses_a_kek_of_another_slot_or_of_none() {
    let mut s = setup::<Ed25519>(22, 3, 5);
    let other_kek = s.kek_for(&s.slot(1));
    let unbound = InMemoryKek::generate(KekId::new("kek-any").unwrap(), &mut s.rng);
    for kek in [&other_kek, &unbound] {
        let sealed = s
            .params
            .seal(&s.commitments, &s.shares[0], &s.signer, kek, &mut s.rng);
        assert_eq!(
            sealed.unwrap_err(),
            Error::KekNotForSlot {
                kek: kek.kek_id().clone(),
                slot: s.slot(0),
            }
        );
    }
}

/// Finding: binding was the caller's job. An envelope correctly signed by
/// the trusted signer, but for another key, node, version, index or
/// binding, is refused by `decode_verify_bound`, naming the field.
#[test]
fn decode_verify_bound_names_the_first_field_that_differs() {
    let mut s = setup::<Secp256k1>(31, 3, 5);
    let other = setup::<Secp256k1>(32, 3, 5);
    let encoded = s.envelope(1, PayloadKind::Sealed);
    let bytes = encoded.as_bytes();
    let slot = s.slot(1);
    let binding = s.params.binding.clone();
    let verified =
        VerifiedEnvelope::decode_verify_bound(bytes, &s.trusted, &slot, &binding).unwrap();
    assert_eq!(verified.id(), encoded.id());

    let with_slot = |edit: &dyn Fn(&mut ShareSlot)| {
        let mut slot = slot.clone();
        edit(&mut slot);
        slot
    };
    let b = &binding;
    let rebind = |group: &[u8], party: &[u8], public: &[u8], archive: [u8; 32]| {
        Binding::new(
            b.curve(),
            group.to_vec(),
            party.to_vec(),
            public.to_vec(),
            archive,
        )
        .unwrap()
    };
    let ob = &other.params.binding;
    let ed = setup::<Ed25519>(33, 3, 5);
    let cases = [
        (
            with_slot(&|s| s.key_id = KeyId::new("another-key").unwrap()),
            binding.clone(),
            BindingField::KeyId,
        ),
        (
            with_slot(&|s| s.node_id = NodeId::new("another-node").unwrap()),
            binding.clone(),
            BindingField::NodeId,
        ),
        (
            with_slot(&|s| s.version = KeyVersion::new(s.version.get() + 1)),
            binding.clone(),
            BindingField::Version,
        ),
        (s.slot(2), binding.clone(), BindingField::Index),
        (slot.clone(), ed.params.binding.clone(), BindingField::Curve),
        (
            slot.clone(),
            rebind(
                ob.group_public_key(),
                b.party_id(),
                b.public_share(),
                *b.archive_hash(),
            ),
            BindingField::GroupPublicKey,
        ),
        (
            slot.clone(),
            rebind(
                b.group_public_key(),
                &[0x77],
                b.public_share(),
                *b.archive_hash(),
            ),
            BindingField::PartyId,
        ),
        (
            slot.clone(),
            rebind(
                b.group_public_key(),
                b.party_id(),
                ob.public_share(),
                *b.archive_hash(),
            ),
            BindingField::PublicShare,
        ),
        (
            slot.clone(),
            rebind(
                b.group_public_key(),
                b.party_id(),
                b.public_share(),
                archive_hash(b"x"),
            ),
            BindingField::ArchiveHash,
        ),
    ];
    for (slot, binding, field) in cases {
        assert_eq!(
            VerifiedEnvelope::decode_verify_bound(bytes, &s.trusted, &slot, &binding).unwrap_err(),
            Error::BindingMismatch(field),
            "{field:?}"
        );
        assert_eq!(
            verified.check_bound_to(&slot, &binding),
            Err(Error::BindingMismatch(field))
        );
    }

    // The attack: the trusted signer's envelope for an unrelated group key
    // and node, handed in where this node's envelope is expected.
    let mut unrelated = other.params.clone();
    unrelated.node_version.node_id = NodeId::new("node:9").unwrap();
    let foreign = unrelated
        .plain(&other.commitments, &other.shares[1], &s.signer)
        .unwrap();
    VerifiedEnvelope::decode_verify(foreign.as_bytes(), &s.trusted).unwrap();
    assert_eq!(
        VerifiedEnvelope::decode_verify_bound(foreign.as_bytes(), &s.trusted, &slot, &binding)
            .unwrap_err(),
        Error::BindingMismatch(BindingField::KeyId)
    );
}

/// Finding: the signer id was outside the signature. An envelope signed as
/// `signer-a`, relabelled `signer-b` (checksum recomputed: it is not a
/// MAC), must not verify as `signer-b`'s even where `signer-b` is trusted
/// with the same key.
#[test]
fn relabelled_signer_id_does_not_verify() {
    let mut s = setup::<Secp256k1>(41, 3, 5);
    let signer = InMemorySigner::generate(SignerId::new("signer-a").unwrap(), &mut s.rng);
    s.signer = signer;
    let encoded = s.envelope(0, PayloadKind::Plain);
    let mut relabelled = encoded.as_bytes().to_vec();
    let at = relabelled
        .windows(8)
        .position(|w| w == b"signer-a")
        .unwrap();
    relabelled[at + 7] = b'b';
    let mut trusted = TrustedSigners::new();
    trusted
        .add(SignerId::new("signer-b").unwrap(), s.signer.verifying_key())
        .unwrap();
    let mut outcome = VerifiedEnvelope::decode_verify(&relabelled, &trusted);
    if matches!(outcome, Err(Error::ChecksumMismatch)) {
        // The checksum covers the signer id: recompute it, as anyone can.
        let end = at + 8;
        let checksum: [u8; 32] = Sha256::new()
            .chain_update(ENVELOPE_CHECKSUM_TAG)
            .chain_update(&relabelled[..end])
            .finalize()
            .into();
        relabelled[end..end + 32].copy_from_slice(&checksum);
        outcome = VerifiedEnvelope::decode_verify(&relabelled, &trusted);
    }
    match outcome {
        Err(error) => assert_eq!(error, Error::BadSignature),
        Ok(envelope) => panic!(
            "an envelope signed as signer-a verified as {}'s",
            envelope.signer_id()
        ),
    }
}

/// Exhaustive versions of the properties on one envelope of each kind.
#[test]
fn every_bit_flip_and_every_truncation_is_rejected() {
    let mut s = setup::<Secp256k1>(7, 3, 5);
    for kind in [PayloadKind::Plain, PayloadKind::Sealed] {
        let bytes = s.envelope(4, kind).into_bytes().to_vec();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(s.decode_open(&flipped).is_err(), "{kind:?} bit {bit}");
        }
        for len in 0..bytes.len() {
            assert!(
                s.decode_open(&bytes[..len]).is_err(),
                "{kind:?} cut at {len}"
            );
        }
        assert!(s.decode_open(&bytes).is_ok());
    }
}

#[test]
fn builder_refuses_what_decode_would_refuse() {
    let mut s = setup::<Secp256k1>(3, 3, 5);
    let other = setup::<Secp256k1>(4, 3, 5);
    // A share of another split.
    assert!(matches!(
        s.params.plain(&s.commitments, &other.shares[0], &s.signer),
        Err(Error::Share(_))
    ));
    // Commitments whose C0 is not the bound public share.
    let mut params = s.params.clone();
    params.binding = other.params.binding.clone();
    assert_eq!(
        params
            .plain(&s.commitments, &s.shares[0], &s.signer)
            .unwrap_err(),
        Error::PublicShareMismatch
    );
    // A binding on the other curve.
    let ed = setup::<Ed25519>(5, 3, 5);
    let mut params = s.params.clone();
    params.binding = ed.params.binding.clone();
    let kek = s.kek_for(&s.slot(0));
    assert_eq!(
        params
            .seal(&s.commitments, &s.shares[0], &s.signer, &kek, &mut s.rng)
            .unwrap_err(),
        Error::WrongCurve {
            expected: CurveId::Ed25519,
            got: CurveId::Secp256k1
        }
    );
}

#[test]
fn plain_and_sealed_refuse_the_other_operation() {
    let mut s = setup::<Secp256k1>(9, 2, 2);
    let plain = s.envelope(0, PayloadKind::Plain);
    let plain = VerifiedEnvelope::decode_verify(plain.as_bytes(), &s.trusted).unwrap();
    assert_eq!(plain.kek_id(), None);
    assert!(matches!(
        plain.open(&s.kek_for(&s.slot(0))),
        Err(Error::WrongPayloadKind {
            expected: PayloadKind::Sealed,
            ..
        })
    ));
    let sealed = s.envelope(1, PayloadKind::Sealed);
    let sealed = VerifiedEnvelope::decode_verify(sealed.as_bytes(), &s.trusted).unwrap();
    assert!(matches!(
        sealed.into_plain_share(),
        Err(Error::WrongPayloadKind {
            expected: PayloadKind::Plain,
            ..
        })
    ));
}

#[test]
fn debug_output_never_shows_the_share() {
    let mut s = setup::<Secp256k1>(11, 3, 5);
    let value = hex::encode(s.shares[0].value_be_bytes().as_slice());
    let encoded = s.envelope(0, PayloadKind::Plain);
    let verified = VerifiedEnvelope::decode_verify(encoded.as_bytes(), &s.trusted).unwrap();
    for text in [format!("{encoded:?}"), format!("{verified:?}")] {
        assert!(!text.contains(&value), "{text}");
    }
    let share = verified.into_plain_share().unwrap();
    assert!(format!("{share:?}").contains("redacted"));
}
