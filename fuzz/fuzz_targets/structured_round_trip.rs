//! The whole share life cycle from fuzzer-chosen parameters (curve, `t`,
//! `n`, names, version, time, binding, secret and seeds): split; each share
//! sealed under its slot's in-memory KEK or made plain; `decode_verify` and
//! `decode_verify_bound`; open (and re-wrap); `combine_verified` on an
//! input-chosen subset. The secret comes back, envelope ids are stable
//! (encoding, decoding, re-encoding, re-wrapping), and every single-bit
//! flip of an encoded envelope is refused.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::arbitrary::{self, Unstructured};
use libfuzzer_sys::fuzz_target;
use rand::{SeedableRng, rngs::ChaCha20Rng};
use shardkeep_envelope::{
    Binding, BindingField, CurveCommitments, CurveShare, EncodedEnvelope, EnvelopeParams, Error,
    PayloadKind, TrustedSigners, VerifiedEnvelope, archive_hash,
};
use shardkeep_sss_core::{
    Commitments, Curve, Ed25519, Secp256k1, Secret, Share, Threshold, combine_verified, split,
};
use shardkeep_types::{
    CustodyError, DataKey, InMemoryKek, InMemorySigner, KekId, KeyEncryptionKey, KeyId, KeyVersion,
    NodeId, NodeVersion, ShareIndex, ShareSlot, SignerId, Timestamp, WrappedKey,
};

/// Largest `n`: every envelope is decoded and opened, and one has every bit
/// flipped, so runs stay short enough to explore the parameters.
const MAX_N: u8 = 8;
/// Longest tss-lib party id made: any shorter value is below both group
/// orders, so the binding accepts it once its leading zeros are gone.
const MAX_PARTY_ID_LEN: usize = 31;
/// The name alphabet (`[A-Za-z0-9._:-]`).
const NAME_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    // Every choice reads what input is left and takes zeros past its end, so
    // even a short input runs the whole life cycle.
    let _ = match u.arbitrary::<bool>() {
        Ok(false) => round_trip::<Secp256k1>(&mut u),
        Ok(true) => round_trip::<Ed25519>(&mut u),
        Err(error) => Err(error),
    };
});

/// A slot-bound [`InMemoryKek`] whose wrapping nonces come from a counter
/// instead of the operating system, so that every run is reproducible.
#[derive(Debug)]
struct CountedKek {
    inner: InMemoryKek,
    nonces: AtomicU64,
}

impl CountedKek {
    fn for_slot(id: &str, slot: ShareSlot, rng: &mut ChaCha20Rng) -> Self {
        let id = KekId::new(id).expect("valid KEK id");
        Self {
            inner: InMemoryKek::for_slot(id, slot, rng),
            nonces: AtomicU64::new(0),
        }
    }
}

impl KeyEncryptionKey for CountedKek {
    fn kek_id(&self) -> &KekId {
        self.inner.kek_id()
    }

    fn slot(&self) -> Option<&ShareSlot> {
        self.inner.slot()
    }

    fn wrap(&self, data_key: &DataKey) -> Result<WrappedKey, CustodyError> {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.nonces.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        self.inner.wrap_with_nonce(data_key, nonce)
    }

    fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, CustodyError> {
        self.inner.unwrap(wrapped)
    }
}

/// One of `n` (at most 256) choices, from one byte of input.
fn pick(u: &mut Unstructured<'_>, n: usize) -> arbitrary::Result<usize> {
    Ok(usize::from(u.arbitrary::<u8>()?) % n)
}

/// A name of 1 to 64 characters of the name alphabet.
fn name(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let len = 1 + pick(u, 64)?;
    (0..len)
        .map(|_| Ok(char::from(NAME_ALPHABET[pick(u, NAME_ALPHABET.len())?])))
        .collect()
}

fn encoded_point<C: Curve>(point: &C::Point) -> Vec<u8> {
    let mut out = Vec::with_capacity(C::POINT_LEN);
    C::encode_point(point, &mut out);
    out
}

/// Everything one run needs besides the split.
struct Setup {
    params: EnvelopeParams,
    signer: InMemorySigner,
    trusted: TrustedSigners,
}

fn setup<C: Curve>(
    u: &mut Unstructured<'_>,
    rng: &mut ChaCha20Rng,
    secret: &Secret<C>,
) -> arbitrary::Result<Setup> {
    let node_version = NodeVersion {
        key_id: KeyId::new(name(u)?).expect("valid key id"),
        node_id: NodeId::new(name(u)?).expect("valid node id"),
        version: KeyVersion::new(u.arbitrary()?),
    };
    // Whole seconds up to `i64::MAX` milliseconds; a later time is folded
    // into that range (2^53 seconds is below it).
    let seconds: u64 = u.arbitrary()?;
    let created_at = Timestamp::from_unix_seconds(seconds)
        .or_else(|_| Timestamp::from_unix_seconds(seconds >> 11))
        .expect("time within range");
    let mut party_id = vec![0; 1 + pick(u, MAX_PARTY_ID_LEN)?];
    u.fill_buffer(&mut party_id)?;
    let leading_zeros = party_id.iter().take_while(|&&byte| byte == 0).count();
    party_id.drain(..leading_zeros);
    if party_id.is_empty() {
        party_id.push(1);
    }
    let mut archive = vec![0; pick(u, 65)?];
    u.fill_buffer(&mut archive)?;
    let binding = Binding::new(
        C::ID,
        encoded_point::<C>(&Secret::<C>::random(rng).public_point()),
        party_id,
        encoded_point::<C>(&secret.public_point()),
        archive_hash(&archive),
    )
    .expect("valid binding");
    let signer = InMemorySigner::generate(SignerId::new(name(u)?).expect("valid signer id"), rng);
    let mut trusted = TrustedSigners::new();
    trusted
        .add_signer(&signer)
        .expect("fresh signer is trusted");
    Ok(Setup {
        params: EnvelopeParams {
            node_version,
            created_at,
            binding,
        },
        signer,
        trusted,
    })
}

fn round_trip<C: Curve>(u: &mut Unstructured<'_>) -> arbitrary::Result<()>
where
    Share<C>: TryFrom<CurveShare, Error = Error>,
    for<'a> &'a Commitments<C>: TryFrom<&'a CurveCommitments, Error = Error>,
{
    let n = u.int_in_range(2..=MAX_N)?;
    let t = u.int_in_range(2..=n)?;
    let threshold = Threshold::new(usize::from(t), usize::from(n)).expect("2 <= t <= n");
    let mut rng = ChaCha20Rng::from_seed(u.arbitrary()?);
    // Most 32-byte strings are ed25519 scalars out of range: draw those.
    let secret =
        Secret::<C>::from_be_bytes(&u.arbitrary()?).unwrap_or_else(|_| Secret::random(&mut rng));
    let Setup {
        params,
        signer,
        trusted,
    } = setup::<C>(u, &mut rng, &secret)?;
    let (commitments, shares) = split(&secret, threshold, &mut rng)
        .expect("split")
        .into_parts();
    let sealed_mask: u8 = u.arbitrary()?;

    let mut recovered = Vec::with_capacity(shares.len());
    // Every envelope, with the KEK of the sealed ones.
    let mut envelopes: Vec<(EncodedEnvelope, Option<CountedKek>)> =
        Vec::with_capacity(shares.len());
    for (position, share) in shares.iter().enumerate() {
        let slot = params.node_version.slot(share.index());
        if sealed_mask >> position & 1 == 1 {
            let kek = CountedKek::for_slot(&format!("kek-{position}"), slot.clone(), &mut rng);
            let encoded = params
                .seal(&commitments, share, &signer, &kek, &mut rng)
                .expect("seal");
            assert_eq!(encoded.kind(), PayloadKind::Sealed);
            let verified = decode(&encoded, &trusted, &params, &slot);
            let opened: Share<C> = verified
                .open(&kek)
                .expect("open")
                .try_into()
                .expect("curve");
            assert_eq!(opened.to_bytes(), share.to_bytes(), "opened share differs");
            recovered.push(opened);
            check_rewrap(&verified, &kek, &trusted, &slot, &mut rng);
            envelopes.push((encoded, Some(kek)));
        } else {
            let encoded = params.plain(&commitments, share, &signer).expect("plain");
            assert_eq!(encoded.kind(), PayloadKind::Plain);
            let again = params.plain(&commitments, share, &signer).expect("plain");
            assert_eq!(
                again.as_bytes(),
                encoded.as_bytes(),
                "plain encoding is not deterministic"
            );
            assert_eq!(again.id(), encoded.id());
            let verified = decode(&encoded, &trusted, &params, &slot);
            let opened: Share<C> = verified
                .into_plain_share()
                .expect("plain share")
                .try_into()
                .expect("curve");
            assert_eq!(opened.to_bytes(), share.to_bytes(), "plain share differs");
            recovered.push(opened);
            envelopes.push((encoded, None));
        }
    }

    // The commitments a recovering party has: those of a verified envelope.
    let (reference, _) = &envelopes[pick(u, envelopes.len())?];
    let header_commitments = VerifiedEnvelope::decode_verify(reference.as_bytes(), &trusted)
        .expect("decode_verify")
        .header()
        .commitments()
        .clone();
    let signed_commitments: &Commitments<C> = (&header_commitments).try_into().expect("curve");
    assert_eq!(
        signed_commitments, &commitments,
        "signed commitments differ"
    );
    combine_subset(u, recovered, signed_commitments, &secret, t)?;

    // Every bit of one envelope (each flip is a full decode): the input
    // picks which.
    let (encoded, kek) = &envelopes[pick(u, envelopes.len())?];
    every_bit_flip_is_refused(encoded, &trusted, kek.as_ref());
    Ok(())
}

/// `decode_verify` and `decode_verify_bound` accept the envelope with the id
/// it was made with, and the bound check refuses another slot.
fn decode(
    encoded: &EncodedEnvelope,
    trusted: &TrustedSigners,
    params: &EnvelopeParams,
    slot: &ShareSlot,
) -> VerifiedEnvelope {
    let verified =
        VerifiedEnvelope::decode_verify(encoded.as_bytes(), trusted).expect("decode_verify");
    assert_eq!(verified.id(), encoded.id(), "decoded id differs");
    assert_eq!(verified.payload_kind(), encoded.kind());
    assert_eq!(&verified.header().slot(), slot);
    assert_eq!(verified.header().binding(), &params.binding);
    let bound =
        VerifiedEnvelope::decode_verify_bound(encoded.as_bytes(), trusted, slot, &params.binding)
            .expect("decode_verify_bound");
    assert_eq!(bound.id(), encoded.id(), "bound id differs");
    let mut elsewhere = slot.clone();
    elsewhere.index = ShareIndex::new(if slot.index.get() == 1 { 2 } else { 1 }).expect("non-zero");
    assert_eq!(
        VerifiedEnvelope::decode_verify_bound(
            encoded.as_bytes(),
            trusted,
            &elsewhere,
            &params.binding
        )
        .map(|envelope| envelope.id()),
        Err(Error::BindingMismatch(BindingField::Index)),
        "an envelope verified bound to another share index"
    );
    verified
}

/// Re-wrapping under the slot's next KEK keeps the id and the signature;
/// the new KEK opens it, the old one no longer does.
fn check_rewrap(
    verified: &VerifiedEnvelope,
    kek: &CountedKek,
    trusted: &TrustedSigners,
    slot: &ShareSlot,
    rng: &mut ChaCha20Rng,
) {
    let next = CountedKek::for_slot(
        &format!("{}-next", kek.kek_id().as_str()),
        slot.clone(),
        rng,
    );
    let rewrapped = verified.rewrap(kek, &next).expect("rewrap");
    assert_eq!(rewrapped.id(), verified.id(), "rewrap changed the id");
    let again =
        VerifiedEnvelope::decode_verify(rewrapped.as_bytes(), trusted).expect("decode rewrapped");
    assert_eq!(again.id(), verified.id());
    let (Ok(old), Ok(new)) = (verified.open(kek), again.open(&next)) else {
        panic!("a re-wrapped envelope did not open under its new KEK");
    };
    assert_eq!(old.index(), new.index());
    assert!(
        matches!(again.open(kek), Err(Error::KekMismatch { .. })),
        "the old KEK opened a re-wrapped envelope"
    );
}

/// Combines an input-chosen subset (and order) of the recovered shares.
fn combine_subset<C: Curve>(
    u: &mut Unstructured<'_>,
    mut recovered: Vec<Share<C>>,
    commitments: &Commitments<C>,
    secret: &Secret<C>,
    t: u8,
) -> arbitrary::Result<()> {
    let keep: u8 = u.arbitrary()?;
    let rotate = pick(u, recovered.len())?;
    recovered.rotate_left(rotate);
    let subset: Vec<Share<C>> = recovered
        .into_iter()
        .enumerate()
        .filter(|(position, _)| keep >> position & 1 == 1)
        .map(|(_, share)| share)
        .collect();
    let count = subset.len();
    match combine_verified(subset, commitments) {
        Ok(recovery) => {
            assert!(count >= usize::from(t), "combined from fewer than t shares");
            assert!(recovery.rejected().is_empty(), "a valid share was rejected");
            assert_eq!(
                recovery.secret().to_be_bytes(),
                secret.to_be_bytes(),
                "the secret did not come back"
            );
        }
        Err(shardkeep_sss_core::Error::TooFewShares { got, needed }) => {
            assert_eq!((got, needed), (count, usize::from(t)));
            assert!(count < usize::from(t), "refused t or more valid shares");
        }
        Err(other) => panic!("combining valid shares failed: {other:?}"),
    }
    Ok(())
}

/// No single-bit flip of `encoded` is accepted, except in a sealed
/// envelope's unsigned key-wrap trailer: that leaves the id as it was, and
/// the KEK refuses it.
fn every_bit_flip_is_refused(
    encoded: &EncodedEnvelope,
    trusted: &TrustedSigners,
    kek: Option<&CountedKek>,
) {
    let mut bytes = encoded.as_bytes().to_vec();
    for bit in 0..bytes.len() * 8 {
        let (at, mask) = (bit / 8, 1u8 << (bit % 8));
        bytes[at] ^= mask;
        if let Ok(envelope) = VerifiedEnvelope::decode_verify(&bytes, trusted) {
            assert_eq!(envelope.id(), encoded.id(), "a flipped bit changed the id");
            let kek = kek.expect("a plain envelope verified with a flipped bit");
            assert!(envelope.open(kek).is_err(), "a flipped bit opened");
        }
        bytes[at] ^= mask;
    }
}
