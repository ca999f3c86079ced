//! tss-lib's big integers: decimal JSON numbers of at most 2048 bits.
//!
//! Conversion between decimal digits and binary never branches on, or
//! divides by, a digit or limb value: parsing is multiply-and-add on
//! fixed-width limbs, printing divides by 10^9 in place with crypto-bigint's
//! constant-time single-limb division and splits each chunk into digits by
//! multiplication. Only the number of digits (which the JSON text reveals
//! anyway) shapes the work. Secret values stay in wiped buffers throughout:
//! no intermediate value is freed unwiped (`tests/residue.rs` checks the
//! heap with a scanning allocator).

use core::fmt;

use crypto_bigint::{BoxedUint, Limb, NonZero, Reciprocal};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use crate::json::{Digits, MAX_DIGITS};

/// Widest integer accepted in a save data (Paillier N and Ñ are 2048 bits).
pub(crate) const INT_BITS: u32 = 2048;
const INT_BYTES: usize = 256;
/// 64-bit limbs of the parse accumulator: 10^617 < 2^2051, so one spare
/// limb above 2048 bits holds every accepted digit string.
const ACC_LIMBS: usize = INT_BYTES / 8 + 1;
/// Digits per chunk: 10^9 fits one limb on every target.
const CHUNK_DIGITS: usize = 9;
const CHUNK: u32 = 1_000_000_000;
/// [`CHUNK`] as a divisor (`NonZeroU32::MIN + (CHUNK - 1)` is how a const
/// gets a non-zero 10^9 without unwrapping).
const CHUNK_DIVISOR: NonZero<Limb> =
    NonZero::<Limb>::from_u32(core::num::NonZeroU32::MIN.saturating_add(CHUNK - 1));
/// Constant-time remainder by [`CHUNK`].
const CHUNK_RECIPROCAL: Reciprocal = Reciprocal::new(CHUNK_DIVISOR);

/// Why digits do not make an accepted integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntError {
    /// The value needs more than [`INT_BITS`] bits (or the limit of the field).
    TooLarge,
}

/// Parses canonical decimal digits (as produced by the JSON reader) into a
/// 2048-bit integer in a wiped buffer.
pub(crate) fn parse_decimal(digits: &Digits) -> Result<Zeroizing<BoxedUint>, IntError> {
    let digits = digits.as_bytes();
    if digits.len() > MAX_DIGITS {
        return Err(IntError::TooLarge);
    }
    let mut acc = Zeroizing::new([0u64; ACC_LIMBS]);
    // The first chunk takes the odd digits so that the others are full.
    let first = match digits.len() % CHUNK_DIGITS {
        0 => CHUNK_DIGITS.min(digits.len()),
        r => r,
    };
    let mut chunks = core::iter::once(&digits[..first]).chain(digits[first..].chunks(CHUNK_DIGITS));
    for chunk in &mut chunks {
        let mut value = 0u64;
        for d in chunk {
            value = value * 10 + u64::from(d.wrapping_sub(b'0'));
        }
        // The multiplier depends on the chunk length only (public).
        let multiplier = 10u64.pow(u32::try_from(chunk.len()).unwrap_or(0));
        let mut carry = u128::from(value);
        for limb in acc.iter_mut() {
            let product = u128::from(*limb) * u128::from(multiplier) + carry;
            // Keep the low half; the high half carries on.
            #[allow(clippy::cast_possible_truncation)] // truncation is the point
            let low = product as u64;
            *limb = low;
            carry = product >> 64;
        }
        value.zeroize();
    }
    // Capacity of the accumulator makes the carry out of the top limb zero.
    if acc[ACC_LIMBS - 1] != 0 {
        return Err(IntError::TooLarge);
    }
    let mut be = Zeroizing::new([0u8; INT_BYTES]);
    for (limb, out) in acc[..ACC_LIMBS - 1]
        .iter()
        .rev()
        .zip(be.chunks_exact_mut(8))
    {
        out.copy_from_slice(&limb.to_be_bytes());
    }
    BoxedUint::from_be_slice(be.as_slice(), INT_BITS)
        .map(Zeroizing::new)
        .map_err(|_| IntError::TooLarge)
}

/// Prints an integer as canonical decimal digits. The number of division
/// steps depends on the precision of `value` only.
///
/// The value is copied once, into a wiped buffer, and divided in place:
/// crypto-bigint's `div_rem_limb*` would return every quotient in a fresh
/// allocation, and each one replaced would be freed unwiped (the first of
/// them a plain copy of the secret).
pub(crate) fn format_decimal(value: &BoxedUint) -> Digits {
    // log10(2) < 0.30103: enough chunks for every value of this precision.
    let chunks = (value.bits_precision() as usize * 30_103).div_ceil(100_000 * CHUNK_DIGITS) + 1;
    let mut all = Zeroizing::new(vec![b'0'; chunks * CHUNK_DIGITS]);
    let mut rest = Zeroizing::new(value.clone());
    for slot in all.rchunks_exact_mut(CHUNK_DIGITS) {
        // Both constant time, neither allocates: the remainder is read
        // first, then the quotient replaces `rest` limb by limb.
        let remainder = rest.rem_limb_with_reciprocal(&CHUNK_RECIPROCAL);
        *rest /= CHUNK_DIVISOR;
        // A remainder below 10^9 fits in 32 bits on every target.
        let mut chunk = u32::try_from(remainder.0).unwrap_or(0);
        for digit in slot.iter_mut().rev() {
            let quotient = div10(chunk);
            *digit = b'0' + (chunk - quotient * 10).to_le_bytes()[0];
            chunk = quotient;
        }
    }
    let start = all.iter().position(|&d| d != b'0').unwrap_or(all.len() - 1);
    let mut out = Zeroizing::new(Vec::with_capacity(all.len() - start));
    out.extend_from_slice(&all[start..]);
    Digits::from_canonical(out)
}

/// `x / 10` by multiplication with the rounded reciprocal 2^35 / 10, exact
/// for every `u32` (no division instruction: its timing varies with the
/// operands on some processors).
fn div10(x: u32) -> u32 {
    let q = (u64::from(x) * 0xCCCC_CCCD) >> 35;
    // q < 2^32 / 10: the cast keeps every bit.
    #[allow(clippy::cast_possible_truncation)]
    let q = q as u32;
    q
}

/// A public non-negative integer (Paillier N, Ñ, h1, h2, party ids,
/// coordinates), as minimal big-endian bytes (`0` is empty).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PublicInt(Vec<u8>);

impl PublicInt {
    pub(crate) fn from_digits(digits: &Digits) -> Result<Self, IntError> {
        let value = parse_decimal(digits)?;
        Ok(Self::from_boxed(&value))
    }

    fn from_boxed(value: &BoxedUint) -> Self {
        // Public value: trimming in variable time is fine.
        Self(value.to_be_bytes_trimmed_vartime().into_vec())
    }

    pub(crate) fn from_be_slice(bytes: &[u8]) -> Self {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        Self(bytes[start..].to_vec())
    }

    pub(crate) fn to_digits(&self) -> Digits {
        if self.0.is_empty() {
            return Digits::from_canonical(Zeroizing::new(b"0".to_vec()));
        }
        // A public value: crypto-bigint's variable-time radix conversion
        // (divide and conquer, several times faster) is fine here.
        let text = BoxedUint::from_be_slice_vartime(&self.0).to_string_radix_vartime(10);
        Digits::from_canonical(Zeroizing::new(text.into_bytes()))
    }

    /// Minimal big-endian bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Left-pads to `N` bytes; `None` when the value is wider.
    pub(crate) fn to_fixed<const N: usize>(&self) -> Option<[u8; N]> {
        let mut out = [0u8; N];
        let start = N.checked_sub(self.0.len())?;
        out[start..].copy_from_slice(&self.0);
        Some(out)
    }

    /// The value at the 2048-bit working precision.
    pub(crate) fn to_boxed(&self) -> BoxedUint {
        // At most 256 bytes by construction (parsed under the 2048-bit cap).
        BoxedUint::from_be_slice(
            &self.to_fixed::<INT_BYTES>().unwrap_or([0; INT_BYTES]),
            INT_BITS,
        )
        .unwrap_or_else(|_| BoxedUint::zero_with_precision(INT_BITS))
    }
}

impl fmt::Debug for PublicInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("0x0")
        } else {
            write!(f, "0x{}", hex::encode(&self.0))
        }
    }
}

/// A secret non-negative integer (Paillier and Ñ primes, λ(N), φ(N), the
/// dlog witnesses Alpha and Beta) at the fixed 2048-bit precision, wiped on
/// drop, never printed, compared in constant time.
pub(crate) struct SecretInt(Zeroizing<BoxedUint>);

impl SecretInt {
    pub(crate) fn from_digits(digits: &Digits) -> Result<Self, IntError> {
        parse_decimal(digits).map(Self)
    }

    pub(crate) fn to_digits(&self) -> Digits {
        format_decimal(&self.0)
    }

    pub(crate) fn expose(&self) -> &BoxedUint {
        &self.0
    }
}

impl ConstantTimeEq for SecretInt {
    fn ct_eq(&self, other: &Self) -> Choice {
        // Both sides have the fixed 2048-bit precision.
        ConstantTimeEq::ct_eq(&*self.0, &*other.0)
    }
}

impl fmt::Debug for SecretInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretInt(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Value, parse};

    fn digits(s: &str) -> Digits {
        match parse(s.as_bytes()).unwrap() {
            Value::Number(d) => d,
            other => panic!("{other:?}"),
        }
    }

    fn text(d: &Digits) -> String {
        String::from_utf8(d.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn div10_is_exact() {
        for x in [0, 1, 9, 10, 99, 100, 999_999_999, u32::MAX - 1, u32::MAX]
            .into_iter()
            .chain((0..100_000u32).map(|i| i.wrapping_mul(2_654_435_761)))
        {
            assert_eq!(div10(x), x / 10, "{x}");
        }
    }

    #[test]
    fn decimal_round_trips_at_the_edges() {
        let max = "3".to_owned() + &"0".repeat(616); // 3e616 < 2^2048
        for s in [
            "0",
            "1",
            "9",
            "10",
            "999999999",
            "1000000000",
            "18446744073709551616",
            &max,
        ] {
            let value = parse_decimal(&digits(s)).unwrap();
            assert_eq!(text(&format_decimal(&value)), s);
            assert_eq!(
                text(&PublicInt::from_digits(&digits(s)).unwrap().to_digits()),
                s
            );
        }
    }

    #[test]
    fn the_2048_bit_cap_is_exact() {
        // 2^2048 - 1 passes, 2^2048 does not.
        let two_pow_2048 = BoxedUint::one_with_precision(INT_BITS + 64)
            .shl_vartime(INT_BITS)
            .unwrap();
        let max = two_pow_2048.wrapping_sub(BoxedUint::one_with_precision(INT_BITS + 64));
        let max_digits = format_decimal(&max);
        let parsed = parse_decimal(&max_digits).unwrap();
        assert_eq!(text(&format_decimal(&parsed)), text(&max_digits));
        assert_eq!(
            parse_decimal(&format_decimal(&two_pow_2048)).unwrap_err(),
            IntError::TooLarge
        );
        assert_eq!(
            parse_decimal(&digits(&"9".repeat(617))).unwrap_err(),
            IntError::TooLarge
        );
    }

    #[test]
    fn public_int_is_minimal_big_endian() {
        let v = PublicInt::from_digits(&digits("65536")).unwrap();
        assert_eq!(v.as_bytes(), &[1, 0, 0]);
        assert_eq!(v.to_fixed::<4>(), Some([0, 1, 0, 0]));
        assert_eq!(v.to_fixed::<2>(), None);
        assert!(
            PublicInt::from_digits(&digits("0"))
                .unwrap()
                .as_bytes()
                .is_empty()
        );
        assert_eq!(PublicInt::from_be_slice(&[0, 0, 7]).as_bytes(), &[7]);
        assert_eq!(format!("{v:?}"), "0x010000");
    }

    #[test]
    fn secret_int_is_redacted_and_compares_in_constant_time() {
        let a = SecretInt::from_digits(&digits("12345")).unwrap();
        let b = SecretInt::from_digits(&digits("12345")).unwrap();
        let c = SecretInt::from_digits(&digits("12346")).unwrap();
        assert!(bool::from(a.ct_eq(&b)));
        assert!(!bool::from(a.ct_eq(&c)));
        assert_eq!(format!("{a:?}"), "SecretInt(<redacted>)");
    }

    proptest::proptest! {
        #[test]
        fn any_value_below_the_cap_round_trips(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=256)) {
            let value = PublicInt::from_be_slice(&bytes);
            let printed = value.to_digits();
            proptest::prop_assert_eq!(PublicInt::from_digits(&printed).unwrap(), value.clone());
            let secret = SecretInt::from_digits(&printed).unwrap();
            proptest::prop_assert_eq!(text(&secret.to_digits()), text(&printed));
        }
    }
}
