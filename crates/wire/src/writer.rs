//! Appending length-prefixed fields.
//!
//! Each writer refuses a value longer than its prefix can state or than the
//! caller's cap, with [`FramingError::LengthOutOfRange`]: it never panics and
//! never writes a truncated length.

use crate::framing::FramingError;

/// Appends `bytes` with a one-byte length prefix.
///
/// `max` is the field's cap; the prefix caps it at 255 too (pass
/// `usize::MAX` for the prefix's own limit).
///
/// # Errors
/// [`FramingError::LengthOutOfRange`] when `bytes` is longer than the cap.
pub fn put_prefixed_u8(
    out: &mut Vec<u8>,
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<(), FramingError> {
    let len: u8 = prefix(field, bytes.len(), max, usize::from(u8::MAX))?;
    out.push(len);
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends `bytes` with a two-byte big-endian length prefix.
///
/// `max` is the field's cap; the prefix caps it at 65 535 too.
///
/// # Errors
/// [`FramingError::LengthOutOfRange`] when `bytes` is longer than the cap.
pub fn put_prefixed_u16(
    out: &mut Vec<u8>,
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<(), FramingError> {
    let len: u16 = prefix(field, bytes.len(), max, usize::from(u16::MAX))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends `bytes` with a four-byte big-endian length prefix.
///
/// `max` is the field's cap; the prefix caps it at `u32::MAX` too.
///
/// # Errors
/// [`FramingError::LengthOutOfRange`] when `bytes` is longer than the cap.
pub fn put_prefixed_u32(
    out: &mut Vec<u8>,
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<(), FramingError> {
    // On a 16-bit target every slice length fits a u32 prefix.
    let len: u32 = prefix(
        field,
        bytes.len(),
        max,
        usize::try_from(u32::MAX).unwrap_or(usize::MAX),
    )?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// `len` as a prefix of type `P`, refused above `max` or above `prefix_max`
/// (what `P` holds); the error reports the tighter of the two limits.
fn prefix<P: TryFrom<usize>>(
    field: &'static str,
    len: usize,
    max: usize,
    prefix_max: usize,
) -> Result<P, FramingError> {
    let limit = max.min(prefix_max);
    let refused = FramingError::LengthOutOfRange {
        field,
        len,
        min: 0,
        max: limit,
    };
    if len > limit {
        return Err(refused);
    }
    P::try_from(len).map_err(|_| refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::Reader;

    #[test]
    fn writers_round_trip_through_the_reader() {
        let mut out = Vec::new();
        put_prefixed_u8(&mut out, "a", b"xy", usize::MAX).unwrap();
        put_prefixed_u16(&mut out, "b", b"z", usize::MAX).unwrap();
        put_prefixed_u32(&mut out, "c", b"", usize::MAX).unwrap();
        assert_eq!(out, [2, b'x', b'y', 0, 1, b'z', 0, 0, 0, 0]);
        let mut r = Reader::new(&out);
        assert_eq!(r.prefixed_u8("a", 0, 2).unwrap(), b"xy");
        assert_eq!(r.prefixed_u16("b", 0, 2).unwrap(), b"z");
        assert_eq!(r.prefixed_u32("c", 0, 0).unwrap(), b"");
        r.finish("all").unwrap();
    }

    #[test]
    fn writers_refuse_values_beyond_the_prefix_or_the_cap() {
        let mut out = vec![9];
        assert_eq!(
            put_prefixed_u8(&mut out, "long", &[0; 256], usize::MAX),
            Err(FramingError::LengthOutOfRange {
                field: "long",
                len: 256,
                min: 0,
                max: 255
            })
        );
        assert_eq!(
            put_prefixed_u16(&mut out, "long", &[0; 65_536], usize::MAX),
            Err(FramingError::LengthOutOfRange {
                field: "long",
                len: 65_536,
                min: 0,
                max: 65_535
            })
        );
        assert_eq!(
            put_prefixed_u16(&mut out, "capped", &[0; 513], 512),
            Err(FramingError::LengthOutOfRange {
                field: "capped",
                len: 513,
                min: 0,
                max: 512
            })
        );
        assert!(put_prefixed_u32(&mut out, "capped", &[0; 5], 4).is_err());
        // Nothing was written by the refused calls.
        assert_eq!(out, [9]);
        put_prefixed_u8(&mut out, "full", &[1; 255], usize::MAX).unwrap();
        put_prefixed_u16(&mut out, "at cap", &[2; 512], 512).unwrap();
        assert_eq!(out.len(), 1 + 1 + 255 + 2 + 512);
    }
}
