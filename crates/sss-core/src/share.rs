//! Shares, Feldman commitments, the split identity, and their canonical
//! byte encodings.

use core::fmt;

use ff::Field;
use group::Group;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::curve::Curve;
use crate::error::{Error, Result};
use shardkeep_types::{ShareIndex, Threshold};

use crate::ids::Hex;

/// Domain tag of [`SplitId`].
pub const SPLIT_ID_TAG: &[u8] = b"shardkeep/split-id/v1";

/// Length of [`Share::to_bytes`]: curve, t, n, index, split id, value.
pub const SHARE_LEN: usize = 4 + 32 + 32;

/// The identity of one split: `SHA-256("shardkeep/split-id/v1" || curve ||
/// t || n || C_0 || ... || C_{t-1})`, each commitment in its fixed-width
/// compressed encoding. Every share carries it; verification recomputes it
/// from the commitments, so shares of different splits or parameters never
/// combine.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SplitId([u8; 32]);

impl SplitId {
    /// Wraps 32 bytes read from the wire. Nothing is trusted until a
    /// commitment set that hashes to it is at hand.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SplitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SplitId({})", Hex(&self.0))
    }
}

impl fmt::Display for SplitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Hex(&self.0).fmt(f)
    }
}

/// One Shamir share: the polynomial's value at its [`ShareIndex`], with the
/// parameters and split it belongs to.
///
/// Secret: wiped on drop, compared in constant time, value redacted in
/// `Debug`, no `Clone`.
pub struct Share<C: Curve> {
    threshold: Threshold,
    index: ShareIndex,
    split_id: SplitId,
    value: C::Scalar,
}

impl<C: Curve> Share<C> {
    /// Assembles a share from its parts, as an envelope carries them.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] when `index > n`,
    /// [`Error::NonCanonicalScalar`] or [`Error::ZeroScalar`] for the value.
    pub fn from_parts(
        threshold: Threshold,
        index: ShareIndex,
        split_id: SplitId,
        value_be: &[u8; 32],
    ) -> Result<Self> {
        let index = threshold.share_index(index.get())?;
        let value = C::scalar_from_be_bytes(value_be).ok_or(Error::NonCanonicalScalar)?;
        Self::from_scalar(threshold, index, split_id, value)
    }

    pub(crate) fn from_scalar(
        threshold: Threshold,
        index: ShareIndex,
        split_id: SplitId,
        mut value: C::Scalar,
    ) -> Result<Self> {
        if bool::from(value.is_zero()) {
            return Err(Error::ZeroScalar);
        }
        let share = Self {
            threshold,
            index,
            split_id,
            value,
        };
        value.zeroize();
        Ok(share)
    }

    /// Decodes the [`SHARE_LEN`]-byte encoding of [`Share::to_bytes`].
    ///
    /// # Errors
    /// [`Error::WrongLength`], [`Error::CurveMismatch`],
    /// [`Error::InvalidThreshold`], [`Error::IndexOutOfRange`],
    /// [`Error::NonCanonicalScalar`] or [`Error::ZeroScalar`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; SHARE_LEN] = bytes.try_into().map_err(|_| Error::WrongLength {
            expected: SHARE_LEN,
            got: bytes.len(),
        })?;
        let (header, rest) = bytes.split_at(4);
        let (split_id, value) = rest.split_at(32);
        if header[0] != C::ID.to_u8() {
            return Err(Error::CurveMismatch {
                expected: C::ID,
                got: header[0],
            });
        }
        let threshold = Threshold::new(usize::from(header[1]), usize::from(header[2]))?;
        let index = threshold.share_index(header[3])?;
        let mut value_be = Zeroizing::new([0u8; 32]);
        value_be.copy_from_slice(value);
        let mut id = [0u8; 32];
        id.copy_from_slice(split_id);
        Self::from_parts(threshold, index, SplitId(id), &value_be)
    }

    /// Canonical encoding, [`SHARE_LEN`] bytes: `curve (1) || t (1) || n (1)
    /// || index (1) || split_id (32) || value (32, big-endian)`.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; SHARE_LEN]> {
        let mut out = Zeroizing::new([0u8; SHARE_LEN]);
        out[0] = C::ID.to_u8();
        out[1] = self.threshold.t();
        out[2] = self.threshold.n();
        out[3] = self.index.get();
        out[4..36].copy_from_slice(&self.split_id.0);
        out[36..].copy_from_slice(C::scalar_to_be_bytes(&self.value).as_slice());
        out
    }

    /// The share's x-coordinate.
    #[must_use]
    pub fn index(&self) -> ShareIndex {
        self.index
    }

    /// The `(t, n)` of its split.
    #[must_use]
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// The split it claims to belong to (checked by
    /// [`Commitments::verify`]).
    #[must_use]
    pub fn split_id(&self) -> SplitId {
        self.split_id
    }

    /// The share value, 32 big-endian bytes in a buffer wiped on drop.
    #[must_use]
    pub fn value_be_bytes(&self) -> Zeroizing<[u8; 32]> {
        C::scalar_to_be_bytes(&self.value)
    }

    pub(crate) fn value(&self) -> &C::Scalar {
        &self.value
    }
}

impl<C: Curve> ConstantTimeEq for Share<C> {
    fn ct_eq(&self, other: &Self) -> Choice {
        // Metadata is public; only the value comparison needs to be
        // constant time, but folding everything into one Choice is simplest.
        let meta = self.threshold == other.threshold
            && self.index == other.index
            && self.split_id == other.split_id;
        Choice::from(u8::from(meta)) & self.value.ct_eq(&other.value)
    }
}

impl<C: Curve> Drop for Share<C> {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl<C: Curve> ZeroizeOnDrop for Share<C> {}

impl<C: Curve> fmt::Debug for Share<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("curve", &C::ID)
            .field("threshold", &self.threshold)
            .field("index", &self.index)
            .field("split_id", &self.split_id)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// Feldman commitments `C_j = a_j * G` to the coefficients of a split's
/// polynomial; `C_0` is the public key of the secret (`secret * G`). Public.
///
/// The generator is never part of the value or its encoding: it is the
/// curve's standard base point, fixed by the code.
pub struct Commitments<C: Curve> {
    threshold: Threshold,
    points: Vec<C::Point>,
    /// The canonical encoding, kept because encoding a projective point costs
    /// a field inversion and the split id hashes it on every verification.
    encoded: Vec<u8>,
}

impl<C: Curve> Commitments<C> {
    pub(crate) fn from_points(threshold: Threshold, points: Vec<C::Point>) -> Result<Self> {
        if points.len() != usize::from(threshold.t()) {
            return Err(Error::CommitmentCount {
                expected: usize::from(threshold.t()),
                got: points.len(),
            });
        }
        if points.iter().any(|p| bool::from(p.is_identity())) {
            return Err(Error::IdentityPoint);
        }
        let mut encoded = Vec::with_capacity(points.len() * C::POINT_LEN);
        for p in &points {
            C::encode_point(p, &mut encoded);
        }
        Ok(Self {
            threshold,
            points,
            encoded,
        })
    }

    /// Decodes `t` concatenated compressed points ([`Curve::POINT_LEN`] bytes
    /// each), validating every one with [`Curve::decode_point`].
    ///
    /// # Errors
    /// [`Error::WrongLength`] when the length is not a multiple of the point
    /// size, [`Error::CommitmentCount`] when the count is not `t`, or the
    /// point's own error.
    pub fn from_bytes(threshold: Threshold, bytes: &[u8]) -> Result<Self> {
        let t = usize::from(threshold.t());
        if !bytes.len().is_multiple_of(C::POINT_LEN) {
            return Err(Error::WrongLength {
                expected: t * C::POINT_LEN,
                got: bytes.len(),
            });
        }
        let count = bytes.len() / C::POINT_LEN;
        if count != t {
            return Err(Error::CommitmentCount {
                expected: t,
                got: count,
            });
        }
        let points = bytes
            .chunks_exact(C::POINT_LEN)
            .map(C::decode_point)
            .collect::<Result<Vec<_>>>()?;
        // `decode_point` accepts canonical encodings only (and never the
        // identity), so the input is the encoding: keep it rather than pay a
        // field inversion per point to re-encode.
        Ok(Self {
            threshold,
            points,
            encoded: bytes.to_vec(),
        })
    }

    /// Canonical encoding: `C_0 || ... || C_{t-1}`, compressed points.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// The canonical encoding, borrowed.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The `(t, n)` of the split.
    #[must_use]
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// The commitments `C_0 .. C_{t-1}`.
    #[must_use]
    pub fn points(&self) -> &[C::Point] {
        &self.points
    }

    /// `C_0 = secret * G`: the public key the recovered secret must match
    /// (for an MPC share, the node's `BigXj[self]`).
    #[must_use]
    pub fn public_key(&self) -> &C::Point {
        // `from_points` guarantees exactly t >= 2 points.
        &self.points[0]
    }

    /// Computes the split id from the commitments (see [`SplitId`]).
    #[must_use]
    pub fn split_id(&self) -> SplitId {
        let mut hasher = Sha256::new();
        hasher.update(SPLIT_ID_TAG);
        hasher.update([C::ID.to_u8(), self.threshold.t(), self.threshold.n()]);
        hasher.update(&self.encoded);
        SplitId(hasher.finalize().into())
    }

    /// Verifies one share: same parameters, split id recomputed from these
    /// commitments, and the Feldman equation `value * G == sum C_j * index^j`.
    ///
    /// # Errors
    /// [`Error::MixedSplits`] for other parameters,
    /// [`Error::SplitIdMismatch`] for another split,
    /// [`Error::ShareVerification`] when the equation fails.
    pub fn verify(&self, share: &Share<C>) -> Result<()> {
        if share.threshold != self.threshold {
            return Err(Error::MixedSplits);
        }
        if share.split_id != self.split_id() {
            return Err(Error::SplitIdMismatch { index: share.index });
        }
        if self.feldman_holds(share) {
            Ok(())
        } else {
            Err(Error::ShareVerification { index: share.index })
        }
    }

    /// The Feldman equation alone. The secret side is one constant-time
    /// generator-table multiplication; the public side is evaluated in
    /// variable time.
    pub(crate) fn feldman_holds(&self, share: &Share<C>) -> bool {
        let lhs = C::mul_base(&share.value);
        let rhs = self.evaluate_vartime(share.index.get());
        lhs.ct_eq(&rhs).into()
    }

    /// `sum C_j * x^j` by Horner's rule. Variable time is safe: the
    /// commitments and the share index are public. Multiplying by an 8-bit
    /// index is a few doublings, far cheaper than a full scalar
    /// multiplication.
    pub(crate) fn evaluate_vartime(&self, x: u8) -> C::Point {
        let mut points = self.points.iter().rev();
        let mut acc = points.next().copied().unwrap_or_default();
        for c in points {
            acc = mul_small_vartime(&acc, x) + c;
        }
        acc
    }
}

/// `point * k` for a small public `k`, by double-and-add from the top bit.
fn mul_small_vartime<P: Group>(point: &P, k: u8) -> P {
    if k == 0 {
        return P::identity();
    }
    let mut acc = *point;
    for bit in (0..k.ilog2()).rev() {
        acc = acc.double();
        if (k >> bit) & 1 == 1 {
            acc += point;
        }
    }
    acc
}

impl<C: Curve> fmt::Debug for Commitments<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Commitments")
            .field("curve", &C::ID)
            .field("threshold", &self.threshold)
            .field("split_id", &self.split_id())
            .finish_non_exhaustive()
    }
}

impl<C: Curve> PartialEq for Commitments<C> {
    fn eq(&self, other: &Self) -> bool {
        // Public values: a plain comparison of the encodings.
        self.threshold == other.threshold && self.encoded == other.encoded
    }
}

impl<C: Curve> Eq for Commitments<C> {}

impl<C: Curve> Clone for Commitments<C> {
    fn clone(&self) -> Self {
        Self {
            threshold: self.threshold,
            points: self.points.clone(),
            encoded: self.encoded.clone(),
        }
    }
}
