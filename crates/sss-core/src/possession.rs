//! Proofs of possession of a share: external inventory without
//! reconstruction.
//!
//! A custodian shows, from its container alone, that it still holds its
//! share `s_i`, without revealing it and without any reconstruction: a
//! Schnorr proof of knowledge of `s_i` for the public share
//! `Y_i = s_i*G = sum_j C_j * i^j`. `Y_i` is computed from the verifier's
//! pinned Feldman commitments, never from anything the custodian brings.
//!
//! ```text
//! statement = curve (1) || split_id (32) || index (1) || Y_i || len(context) (4, BE) || context
//! k = H_scalar("shardkeep/inventory-nonce/v1" || s_i (32, BE) || statement || 32 fresh random bytes)
//! R = k*G
//! e = H_scalar("shardkeep/inventory-proof/v1" || curve || split_id || index || Y_i || R || len(context) || context)
//! z = k + e*s_i
//! proof = curve (1) || R || z (32, BE)          verify: z*G == R + e*Y_i
//! ```
//!
//! `H_scalar` is SHA-512 of its input, read as a 512-bit big-endian integer
//! and reduced modulo the group order: the bias is below 2^-250, so `e` and
//! `k` are uniform for every purpose.
//!
//! - **R is in the challenge.** Without it anyone could forge: pick `z`, set
//!   `R = z*G - e*Y_i` (the tests build this forgery).
//! - **The nonce is hedged.** `k` depends on the share and the whole
//!   statement as well as on fresh randomness: a broken random generator
//!   still gives different statements different nonces (two proofs with one
//!   nonce reveal `s_i = (z1 - z2) / (e1 - e2)`), and a good one keeps
//!   the nonce unpredictable even to whoever chose the statement.
//! - **What it shows.** Whoever made the proof knew `s_i` when the context
//!   was fixed; the context (the caller's canonical, injective encoding of
//!   the server's single-use nonce, envelope id, custodian id and container
//!   hash) makes it fresh and names what it is about. It does not show the
//!   state of the container: a custodian that copied `s_i` elsewhere proves
//!   just as well.

use core::fmt;

use ff::{Field, PrimeField};
use group::{Group, GroupEncoding};
use rand_core::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::ShareIndex;
use crate::curve::{Curve, point_repr};
use crate::error::{Error, Result};
use crate::share::{Commitments, Share, SplitId};

/// Domain tag of the hedged nonce of a proof of possession.
pub const INVENTORY_NONCE_TAG: &[u8] = b"shardkeep/inventory-nonce/v1";

/// Domain tag of the challenge of a proof of possession.
pub const INVENTORY_PROOF_TAG: &[u8] = b"shardkeep/inventory-proof/v1";

/// Longest context a proof of possession binds, in bytes. An inventory
/// context (nonce, envelope id, custodian id, container hash) is a few
/// hundred bytes at most.
pub const MAX_INVENTORY_CONTEXT_LEN: usize = 4096;

/// Fresh random bytes mixed into each nonce.
const HEDGE_LEN: usize = 32;

/// A Schnorr proof of knowledge of a share value `s_i` for the public share
/// `Y_i = s_i*G` of a split, bound to a context. Public data.
///
/// Made by [`prove_possession`], checked by [`verify_possession`]. A value of
/// this type always holds a valid `R` (on the curve, not the identity, no
/// torsion) and a canonical `z`: [`PossessionProof::from_bytes`] refuses
/// anything else.
pub struct PossessionProof<C: Curve> {
    nonce_point: C::Point,
    /// The canonical encoding of `R`, kept because the challenge hashes it
    /// and re-encoding costs a field inversion.
    nonce_point_repr: <C::Point as GroupEncoding>::Repr,
    response: C::Scalar,
}

impl<C: Curve> PossessionProof<C> {
    /// Length of [`PossessionProof::to_bytes`]: curve byte, `R`, `z` (66
    /// bytes on secp256k1, 65 on ed25519).
    pub const LEN: usize = 1 + C::POINT_LEN + 32;

    /// Canonical encoding, [`PossessionProof::LEN`] bytes:
    /// `curve (1) || R (compressed point) || z (32, big-endian)`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(C::ID.to_u8());
        out.extend_from_slice(self.nonce_point_repr.as_ref());
        out.extend_from_slice(C::scalar_to_be_bytes(&self.response).as_slice());
        out
    }

    /// Decodes the encoding of [`PossessionProof::to_bytes`], accepting only
    /// the canonical one.
    ///
    /// # Errors
    /// [`Error::WrongLength`] unless exactly [`PossessionProof::LEN`] bytes,
    /// [`Error::CurveMismatch`] for another curve byte; for `R`,
    /// [`Error::InvalidPoint`] (not on the curve, or not canonically
    /// encoded), [`Error::IdentityPoint`] or [`Error::TorsionPoint`]
    /// (ed25519: small or mixed order); [`Error::NonCanonicalScalar`] when
    /// `z` is not below the group order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != Self::LEN {
            return Err(Error::WrongLength {
                expected: Self::LEN,
                got: bytes.len(),
            });
        }
        let (curve, rest) = bytes.split_at(1);
        if curve[0] != C::ID.to_u8() {
            return Err(Error::CurveMismatch {
                expected: C::ID,
                got: curve[0],
            });
        }
        let (nonce_point_bytes, response_bytes) = rest.split_at(C::POINT_LEN);
        let nonce_point = C::decode_point(nonce_point_bytes)?;
        let nonce_point_repr = point_repr::<C::Point>(nonce_point_bytes, C::POINT_LEN)?;
        let response_bytes: &[u8; 32] =
            response_bytes.try_into().map_err(|_| Error::WrongLength {
                expected: Self::LEN,
                got: bytes.len(),
            })?;
        let response = C::scalar_from_be_bytes(response_bytes).ok_or(Error::NonCanonicalScalar)?;
        Ok(Self {
            nonce_point,
            nonce_point_repr,
            response,
        })
    }
}

impl<C: Curve> Clone for PossessionProof<C> {
    fn clone(&self) -> Self {
        Self {
            nonce_point: self.nonce_point,
            nonce_point_repr: self.nonce_point_repr,
            response: self.response,
        }
    }
}

impl<C: Curve> PartialEq for PossessionProof<C> {
    fn eq(&self, other: &Self) -> bool {
        // Public values: a plain comparison of the encodings.
        self.to_bytes() == other.to_bytes()
    }
}

impl<C: Curve> Eq for PossessionProof<C> {}

impl<C: Curve> fmt::Debug for PossessionProof<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public data: printed in full.
        f.write_str("PossessionProof(")?;
        for byte in self.to_bytes() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// Proves possession of `share` for the split of `commitments`, bound to
/// `context`.
///
/// `context` is the caller's canonical, injective encoding of what the proof
/// is about (for inventory: the server's single-use nonce, the envelope id,
/// the custodian id and the container hash); it is hashed with a length
/// prefix. `rng` supplies 32 bytes that hedge the nonce (see the module
/// documentation): a faulty `rng` does not reveal the share.
///
/// The share is checked against the commitments first: a share that does
/// not verify gets its error here rather than a proof that never will.
/// Constant time in the share value and the nonce.
///
/// # Errors
/// From [`Commitments::verify`]: [`Error::MixedSplits`],
/// [`Error::SplitIdMismatch`] or [`Error::ShareVerification`];
/// [`Error::ContextTooLong`] beyond [`MAX_INVENTORY_CONTEXT_LEN`] bytes;
/// [`Error::ZeroScalar`] if the nonce hashes to zero (probability about
/// 2^-252).
pub fn prove_possession<C: Curve, R: CryptoRng + ?Sized>(
    share: &Share<C>,
    commitments: &Commitments<C>,
    context: &[u8],
    rng: &mut R,
) -> Result<PossessionProof<C>> {
    commitments.verify(share)?;
    let statement = Statement::new(commitments, share.index(), context)?;
    let mut hedge = Zeroizing::new([0u8; HEDGE_LEN]);
    rng.fill_bytes(hedge.as_mut_slice());
    let nonce = statement.hedged_nonce(share, &hedge);
    // Branching on this leaks only whether the nonce is zero.
    if bool::from(nonce.is_zero()) {
        return Err(Error::ZeroScalar);
    }
    Ok(statement.prove_with_nonce(share, &nonce))
}

/// Verifies a proof of possession of the share at `index` of the split of
/// `commitments` (the verifier's pinned ones), for `context`.
///
/// # Errors
/// [`Error::IndexOutOfRange`] for an index outside `1..=n`,
/// [`Error::ContextTooLong`] beyond [`MAX_INVENTORY_CONTEXT_LEN`] bytes,
/// [`Error::IdentityPublicShare`] when the commitments evaluate to the
/// identity at `index`, [`Error::PossessionProofRejected`] when the proof
/// does not verify for this statement.
pub fn verify_possession<C: Curve>(
    proof: &PossessionProof<C>,
    commitments: &Commitments<C>,
    index: ShareIndex,
    context: &[u8],
) -> Result<()> {
    let statement = Statement::new(commitments, index, context)?;
    let challenge = statement.challenge(proof.nonce_point_repr.as_ref());
    // Variable time is safe: the proof, the commitments, the index and the
    // context are all public.
    let expected_nonce_point = C::multiscalar_mul_vartime(
        &[proof.response, -challenge],
        &[C::Point::generator(), statement.public_share],
    );
    if expected_nonce_point == proof.nonce_point {
        Ok(())
    } else {
        Err(Error::PossessionProofRejected {
            index: statement.index,
        })
    }
}

/// What a proof is about: the public share of one index of one split, and
/// the context. Everything here is public.
struct Statement<'a, C: Curve> {
    split_id: SplitId,
    index: ShareIndex,
    public_share: C::Point,
    public_share_repr: <C::Point as GroupEncoding>::Repr,
    context: &'a [u8],
    context_len: [u8; 4],
}

impl<'a, C: Curve> Statement<'a, C> {
    fn new(commitments: &Commitments<C>, index: ShareIndex, context: &'a [u8]) -> Result<Self> {
        let index = commitments.threshold().share_index(index.get())?;
        let too_long = Error::ContextTooLong {
            len: context.len(),
            max: MAX_INVENTORY_CONTEXT_LEN,
        };
        if context.len() > MAX_INVENTORY_CONTEXT_LEN {
            return Err(too_long);
        }
        let context_len = u32::try_from(context.len()).map_err(|_| too_long)?;
        let public_share = commitments.evaluate_vartime(index.get());
        // Honest commitments never evaluate to the identity (that would make
        // the share zero); crafted ones could, and then any `R`, `z` with
        // `z*G == R` would "prove" possession.
        if bool::from(public_share.is_identity()) {
            return Err(Error::IdentityPublicShare { index });
        }
        Ok(Self {
            split_id: commitments.split_id(),
            index,
            public_share,
            public_share_repr: public_share.to_bytes(),
            context,
            context_len: context_len.to_be_bytes(),
        })
    }

    /// `curve || split_id || index || Y_i`: the fixed-width head shared by
    /// the nonce and the challenge.
    fn absorb_head(&self, hasher: &mut Sha512) {
        hasher.update([C::ID.to_u8()]);
        hasher.update(self.split_id.as_bytes());
        hasher.update([self.index.get()]);
        hasher.update(self.public_share_repr.as_ref());
    }

    /// `len(context) || context`, last in both hashes.
    fn absorb_context(&self, hasher: &mut Sha512) {
        hasher.update(self.context_len);
        hasher.update(self.context);
    }

    /// `k = H_scalar(nonce tag || s_i || statement || hedge)`. The hasher
    /// state is wiped on drop (sha2's `zeroize` feature).
    fn hedged_nonce(&self, share: &Share<C>, hedge: &[u8; HEDGE_LEN]) -> Zeroizing<C::Scalar> {
        let mut hasher = Sha512::new();
        hasher.update(INVENTORY_NONCE_TAG);
        hasher.update(share.value_be_bytes().as_slice());
        self.absorb_head(&mut hasher);
        self.absorb_context(&mut hasher);
        hasher.update(hedge);
        Zeroizing::new(scalar_from_hash::<C>(hasher))
    }

    /// `e = H_scalar(proof tag || curve || split_id || index || Y_i || R ||
    /// len(context) || context)`.
    fn challenge(&self, nonce_point: &[u8]) -> C::Scalar {
        let mut hasher = Sha512::new();
        hasher.update(INVENTORY_PROOF_TAG);
        self.absorb_head(&mut hasher);
        hasher.update(nonce_point);
        self.absorb_context(&mut hasher);
        scalar_from_hash::<C>(hasher)
    }

    /// `R = k*G`, `z = k + e*s_i`: one generator-table multiplication and
    /// field arithmetic, constant time in `k` and `s_i`. Every proof goes
    /// through here; the tests call it with a chosen nonce to show what a
    /// repeated one reveals.
    fn prove_with_nonce(&self, share: &Share<C>, nonce: &C::Scalar) -> PossessionProof<C> {
        let nonce_point = C::mul_base(nonce);
        let nonce_point_repr = nonce_point.to_bytes();
        let challenge = self.challenge(nonce_point_repr.as_ref());
        let mut blinded = challenge * share.value();
        let response = *nonce + blinded;
        blinded.zeroize();
        PossessionProof {
            nonce_point,
            nonce_point_repr,
            response,
        }
    }
}

/// Finishes a SHA-512 hash and reduces the 64-byte output, as a big-endian
/// integer, modulo the group order. The output buffer is wiped (it may be a
/// nonce).
fn scalar_from_hash<C: Curve>(hasher: Sha512) -> C::Scalar {
    let mut wide = Zeroizing::new([0u8; 64]);
    Digest::finalize_into(hasher, (&mut *wide).into());
    reduce_wide_be::<C>(&wide)
}

/// `wide mod order` by Horner's rule over four 128-bit limbs, in field
/// arithmetic only: constant time, so it serves secret input (the nonce).
fn reduce_wide_be<C: Curve>(wide: &[u8; 64]) -> C::Scalar {
    let two_pow_128 = C::Scalar::from_u128(1 << 127).double();
    let (limbs, _) = wide.as_chunks::<16>();
    limbs.iter().fold(C::Scalar::ZERO, |acc, limb| {
        acc * two_pow_128 + C::Scalar::from_u128(u128::from_be_bytes(*limb))
    })
}

// Every test runs on a curve; without one there is nothing to prove.
#[cfg(test)]
#[cfg(any(feature = "secp256k1", feature = "ed25519"))]
mod tests {
    use core::convert::Infallible;

    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;
    use subtle::ConstantTimeEq;

    use super::*;
    use crate::{Secret, Threshold, split};

    /// A generator stuck on one output: every call returns the same bytes.
    struct StuckRng([u8; 32]);

    impl rand_core::TryRng for StuckRng {
        type Error = Infallible;

        fn try_next_u32(&mut self) -> core::result::Result<u32, Infallible> {
            let mut bytes = [0u8; 4];
            self.try_fill_bytes(&mut bytes)?;
            Ok(u32::from_le_bytes(bytes))
        }

        fn try_next_u64(&mut self) -> core::result::Result<u64, Infallible> {
            let mut bytes = [0u8; 8];
            self.try_fill_bytes(&mut bytes)?;
            Ok(u64::from_le_bytes(bytes))
        }

        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> core::result::Result<(), Infallible> {
            for (out, byte) in dst.iter_mut().zip(self.0.iter().cycle()) {
                *out = *byte;
            }
            Ok(())
        }
    }

    impl rand_core::TryCryptoRng for StuckRng {}

    fn setup<C: Curve>(seed: u8) -> (Commitments<C>, Vec<Share<C>>) {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let secret = Secret::<C>::random(&mut rng);
        split(&secret, Threshold::new(3, 5).unwrap(), &mut rng)
            .unwrap()
            .into_parts()
    }

    /// The classic nonce-reuse attack: from `z1 = k + e1*s` and
    /// `z2 = k + e2*s`, `s = (z1 - z2) / (e1 - e2)`. Uses public values only
    /// (the proofs and their statements).
    fn extract_share<C: Curve>(
        statements: [&Statement<'_, C>; 2],
        proofs: [&PossessionProof<C>; 2],
    ) -> C::Scalar {
        let e1 = statements[0].challenge(proofs[0].nonce_point_repr.as_ref());
        let e2 = statements[1].challenge(proofs[1].nonce_point_repr.as_ref());
        let inverse = Option::<C::Scalar>::from((e1 - e2).invert()).unwrap();
        (proofs[0].response - proofs[1].response) * inverse
    }

    fn a_repeated_nonce_reveals_the_share<C: Curve>() {
        let (commitments, shares) = setup::<C>(1);
        let share = &shares[1];
        let first = Statement::new(&commitments, share.index(), b"inventory 1").unwrap();
        let second = Statement::new(&commitments, share.index(), b"inventory 2").unwrap();
        let nonce = C::Scalar::random(&mut ChaCha20Rng::from_seed([2; 32]));

        let proofs = [
            first.prove_with_nonce(share, &nonce),
            second.prove_with_nonce(share, &nonce),
        ];
        // Both proofs are valid and share R: a verifier sees nothing wrong...
        verify_possession(&proofs[0], &commitments, share.index(), b"inventory 1").unwrap();
        verify_possession(&proofs[1], &commitments, share.index(), b"inventory 2").unwrap();
        assert_eq!(proofs[0].nonce_point, proofs[1].nonce_point);
        // ...but anyone holding the two recovers the share.
        let recovered = extract_share([&first, &second], [&proofs[0], &proofs[1]]);
        assert!(bool::from(recovered.ct_eq(share.value())));
        assert_eq!(C::mul_base(&recovered), first.public_share);
    }

    fn a_stuck_rng_still_gives_each_context_its_own_nonce<C: Curve>() {
        let (commitments, shares) = setup::<C>(3);
        let share = &shares[4];
        let mut rng = StuckRng([0x5a; 32]);
        let contexts: [&[u8]; 2] = [b"inventory 1", b"inventory 2"];
        let proofs = contexts.map(|context| {
            let proof = prove_possession(share, &commitments, context, &mut rng).unwrap();
            verify_possession(&proof, &commitments, share.index(), context).unwrap();
            proof
        });
        assert_ne!(proofs[0].nonce_point, proofs[1].nonce_point);
        // The attack that works on a repeated nonce gets nowhere.
        let statements = contexts.map(|c| Statement::new(&commitments, share.index(), c).unwrap());
        let extracted = extract_share([&statements[0], &statements[1]], [&proofs[0], &proofs[1]]);
        assert!(!bool::from(extracted.ct_eq(share.value())));
        assert_ne!(C::mul_base(&extracted), statements[0].public_share);
        // One context twice gives the same proof again: nothing new to learn.
        let again = prove_possession(share, &commitments, contexts[0], &mut rng).unwrap();
        assert_eq!(again, proofs[0]);
    }

    fn the_nonce_depends_on_the_share_and_the_hedge<C: Curve>() {
        let (commitments, shares) = setup::<C>(4);
        let (other_commitments, other_shares) = setup::<C>(5);
        let statement = Statement::new(&commitments, shares[0].index(), b"inventory").unwrap();
        let hedge = [7u8; HEDGE_LEN];
        let nonce = statement.hedged_nonce(&shares[0], &hedge);
        // A share of another split with the same index, in this statement:
        // only `s_i` differs in the nonce's input.
        let other_split =
            Statement::new(&other_commitments, other_shares[0].index(), b"inventory").unwrap();
        assert_eq!(statement.index, other_split.index);
        assert_ne!(*nonce, *statement.hedged_nonce(&other_shares[0], &hedge));
        assert_ne!(
            *nonce,
            *statement.hedged_nonce(&shares[0], &[8u8; HEDGE_LEN])
        );
        assert_eq!(*nonce, *statement.hedged_nonce(&shares[0], &hedge));
    }

    fn reduction_agrees_with_the_curve<C: Curve>(wide: &[u8; 64]) {
        assert_eq!(
            reduce_wide_be::<C>(wide),
            C::scalar_reduce_be_vartime(wide).unwrap()
        );
    }

    #[cfg(feature = "secp256k1")]
    #[test]
    fn secp256k1_a_repeated_nonce_reveals_the_share() {
        a_repeated_nonce_reveals_the_share::<crate::Secp256k1>();
    }

    #[cfg(feature = "ed25519")]
    #[test]
    fn ed25519_a_repeated_nonce_reveals_the_share() {
        a_repeated_nonce_reveals_the_share::<crate::Ed25519>();
    }

    #[cfg(feature = "secp256k1")]
    #[test]
    fn secp256k1_a_stuck_rng_still_gives_each_context_its_own_nonce() {
        a_stuck_rng_still_gives_each_context_its_own_nonce::<crate::Secp256k1>();
    }

    #[cfg(feature = "ed25519")]
    #[test]
    fn ed25519_a_stuck_rng_still_gives_each_context_its_own_nonce() {
        a_stuck_rng_still_gives_each_context_its_own_nonce::<crate::Ed25519>();
    }

    #[cfg(feature = "secp256k1")]
    #[test]
    fn secp256k1_the_nonce_depends_on_the_share_and_the_hedge() {
        the_nonce_depends_on_the_share_and_the_hedge::<crate::Secp256k1>();
    }

    #[cfg(feature = "ed25519")]
    #[test]
    fn ed25519_the_nonce_depends_on_the_share_and_the_hedge() {
        the_nonce_depends_on_the_share_and_the_hedge::<crate::Ed25519>();
    }

    #[test]
    fn the_nonce_hash_state_is_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<Sha512>();
    }

    #[test]
    fn reduction_edge_cases() {
        let mut edges = vec![[0u8; 64], [0xff; 64]];
        for position in [0, 15, 16, 31, 32, 47, 48, 63] {
            let mut one_byte = [0u8; 64];
            one_byte[position] = 0x80;
            edges.push(one_byte);
        }
        for wide in &edges {
            #[cfg(feature = "secp256k1")]
            reduction_agrees_with_the_curve::<crate::Secp256k1>(wide);
            #[cfg(feature = "ed25519")]
            reduction_agrees_with_the_curve::<crate::Ed25519>(wide);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn reduction_is_the_wide_integer_modulo_the_order(
            wide in proptest::array::uniform::<_, 64>(any::<u8>())
        ) {
            #[cfg(feature = "secp256k1")]
            reduction_agrees_with_the_curve::<crate::Secp256k1>(&wide);
            #[cfg(feature = "ed25519")]
            reduction_agrees_with_the_curve::<crate::Ed25519>(&wide);
        }
    }
}
