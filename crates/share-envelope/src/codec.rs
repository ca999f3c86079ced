//! The byte-level reader and writer shared by every format of this crate
//! (envelope, container contents, receipt), after rustls's `codec.rs`.
//!
//! Integers are fixed-width big-endian. A length prefix is read, checked
//! against the field's declared bounds, and only then are the bytes taken:
//! nothing is allocated from an unchecked length. Readers borrow the input;
//! [`Reader::finish`] refuses trailing bytes.

use crate::error::Error;

/// A cursor over borrowed input.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, offset: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The next `len` bytes, or [`Error::Truncated`] naming `field`.
    pub(crate) fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], Error> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or(Error::Truncated { field })?;
        let bytes = &self.buf[self.offset..end];
        self.offset = end;
        Ok(bytes)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn take_array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<&'a [u8; N], Error> {
        self.take(N, field)?
            .try_into()
            .map_err(|_| Error::Truncated { field })
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, Error> {
        Ok(self.take_array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(*self.take_array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(*self.take_array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(*self.take_array(field)?))
    }

    /// A field with a one-byte length prefix in `min..=max`.
    pub(crate) fn prefixed_u8(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], Error> {
        let len = usize::from(self.u8(field)?);
        self.bounded(field, len, min, max)
    }

    /// A field with a two-byte length prefix in `min..=max`.
    pub(crate) fn prefixed_u16(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], Error> {
        let len = usize::from(self.u16(field)?);
        self.bounded(field, len, min, max)
    }

    fn bounded(
        &mut self,
        field: &'static str,
        len: usize,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], Error> {
        if len < min || len > max {
            return Err(Error::FieldLength {
                field,
                len,
                min,
                max,
            });
        }
        self.take(len, field)
    }

    /// Succeeds only when every byte was consumed.
    pub(crate) fn finish(self, what: &'static str) -> Result<(), Error> {
        match self.buf.len() - self.offset {
            0 => Ok(()),
            len => Err(Error::TrailingData { what, len }),
        }
    }
}

/// Appends a field with a one-byte length prefix.
pub(crate) fn put_prefixed_u8(
    out: &mut Vec<u8>,
    field: &'static str,
    bytes: &[u8],
) -> Result<(), Error> {
    let len = u8::try_from(bytes.len()).map_err(|_| Error::FieldLength {
        field,
        len: bytes.len(),
        min: 0,
        max: usize::from(u8::MAX),
    })?;
    out.push(len);
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends a field with a two-byte length prefix.
pub(crate) fn put_prefixed_u16(
    out: &mut Vec<u8>,
    field: &'static str,
    bytes: &[u8],
) -> Result<(), Error> {
    let len = u16::try_from(bytes.len()).map_err(|_| Error::FieldLength {
        field,
        len: bytes.len(),
        min: 0,
        max: usize::from(u16::MAX),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends a field with a four-byte length prefix.
pub(crate) fn put_prefixed_u32(
    out: &mut Vec<u8>,
    field: &'static str,
    bytes: &[u8],
) -> Result<(), Error> {
    let len = u32::try_from(bytes.len()).map_err(|_| Error::FieldLength {
        field,
        len: bytes.len(),
        min: 0,
        max: usize::try_from(u32::MAX).unwrap_or(usize::MAX),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Refuses input longer than `max` before any parsing.
pub(crate) fn check_total_len(what: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::TooLarge { what, len, max });
    }
    Ok(())
}

/// Lower-case hex of public bytes, for `Debug` and `Display`.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_refuses_short_input_and_finish_refuses_leftovers() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a").unwrap(), 0x0102);
        assert_eq!(r.take(2, "b"), Err(Error::Truncated { field: "b" }));
        assert_eq!(
            Reader::new(&[1, 2]).finish("x"),
            Err(Error::TrailingData { what: "x", len: 2 })
        );
        let mut r = Reader::new(&[1, 2]);
        r.take(2, "all").unwrap();
        assert_eq!(r.offset(), 2);
        r.finish("x").unwrap();
    }

    #[test]
    fn length_prefix_is_bounded_before_taking() {
        // Declares 200 bytes but only 1 follows: the bound check fires first.
        let mut r = Reader::new(&[200, 0]);
        assert_eq!(
            r.prefixed_u8("name", 1, 64),
            Err(Error::FieldLength {
                field: "name",
                len: 200,
                min: 1,
                max: 64
            })
        );
        let mut r = Reader::new(&[0, 0, 0]);
        assert!(matches!(
            r.prefixed_u16("blob", 1, 10),
            Err(Error::FieldLength { len: 0, .. })
        ));
        let mut r = Reader::new(&[0, 2, 7, 8]);
        assert_eq!(r.prefixed_u16("two", 1, 2).unwrap(), &[7, 8]);
    }

    #[test]
    fn writers_round_trip_through_the_reader() {
        let mut out = Vec::new();
        put_prefixed_u8(&mut out, "a", b"xy").unwrap();
        put_prefixed_u16(&mut out, "b", b"z").unwrap();
        put_prefixed_u32(&mut out, "c", b"").unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.prefixed_u8("a", 0, 2).unwrap(), b"xy");
        assert_eq!(r.prefixed_u16("b", 0, 2).unwrap(), b"z");
        assert_eq!(r.take(4, "c").unwrap(), &[0, 0, 0, 0]);
        r.finish("all").unwrap();
        assert!(put_prefixed_u8(&mut out, "long", &[0; 256]).is_err());
    }
}
