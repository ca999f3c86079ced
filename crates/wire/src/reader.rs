//! A cursor over borrowed input.

use crate::framing::FramingError;

/// Reads borrowed input front to back.
///
/// Integers are fixed-width big-endian. Every read checks the remaining
/// length first and consumes nothing when it fails; a length prefix is
/// checked against the field's bounds before its bytes are taken.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    offset: usize,
}

/// Shows the position only: the input may hold secrets (key files,
/// keystores), so its bytes are never printed.
impl core::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reader")
            .field("offset", &self.offset)
            .field("len", &self.buf.len())
            .finish()
    }
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, offset: 0 }
    }

    /// Bytes consumed so far.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes not yet consumed.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        self.buf.len() - self.offset
    }

    /// The next `len` bytes.
    ///
    /// # Errors
    /// [`FramingError::Truncated`] naming `field` when fewer remain.
    pub fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], FramingError> {
        let remaining = self.remaining();
        if len > remaining {
            return Err(FramingError::Truncated {
                field,
                needed: len - remaining,
            });
        }
        let (taken, _) = self.buf[self.offset..].split_at(len);
        self.offset += len;
        Ok(taken)
    }

    /// The next `N` bytes as an array.
    ///
    /// # Errors
    /// [`FramingError::Truncated`] naming `field` when fewer remain.
    pub fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<&'a [u8; N], FramingError> {
        let bytes = self.take(N, field)?;
        // `take` returned exactly N bytes.
        bytes
            .try_into()
            .map_err(|_| FramingError::Truncated { field, needed: N })
    }

    /// One byte.
    ///
    /// # Errors
    /// [`FramingError::Truncated`] at the end of the input.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, FramingError> {
        let [byte] = *self.array(field)?;
        Ok(byte)
    }

    /// A big-endian `u16`.
    ///
    /// # Errors
    /// [`FramingError::Truncated`] when fewer than 2 bytes remain.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, FramingError> {
        Ok(u16::from_be_bytes(*self.array(field)?))
    }

    /// A big-endian `u32`.
    ///
    /// # Errors
    /// [`FramingError::Truncated`] when fewer than 4 bytes remain.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, FramingError> {
        Ok(u32::from_be_bytes(*self.array(field)?))
    }

    /// A big-endian `u64`.
    ///
    /// # Errors
    /// [`FramingError::Truncated`] when fewer than 8 bytes remain.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, FramingError> {
        Ok(u64::from_be_bytes(*self.array(field)?))
    }

    /// A field with a one-byte length prefix in `min..=max`. When it fails,
    /// nothing is consumed, not even the prefix.
    ///
    /// # Errors
    /// [`FramingError::LengthOutOfRange`] when the declared length is outside
    /// the bounds (checked before any of the field is taken),
    /// [`FramingError::Truncated`] when the prefix or the field is cut short.
    pub fn prefixed_u8(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], FramingError> {
        self.all_or_nothing(|r| {
            let len = usize::from(r.u8(field)?);
            r.bounded(field, len, min, max)
        })
    }

    /// A field with a two-byte big-endian length prefix in `min..=max`.
    ///
    /// # Errors
    /// As [`Reader::prefixed_u8`].
    pub fn prefixed_u16(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], FramingError> {
        self.all_or_nothing(|r| {
            let len = usize::from(r.u16(field)?);
            r.bounded(field, len, min, max)
        })
    }

    /// A field with a four-byte big-endian length prefix in `min..=max`.
    ///
    /// # Errors
    /// As [`Reader::prefixed_u8`].
    pub fn prefixed_u32(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], FramingError> {
        self.all_or_nothing(|r| {
            // A length beyond the address space is beyond any bound.
            let len = usize::try_from(r.u32(field)?).unwrap_or(usize::MAX);
            r.bounded(field, len, min, max)
        })
    }

    /// Runs a read of several parts (a prefix then its field, a magic then
    /// its version) on a copy, and moves on only when all of it succeeds:
    /// a failed read consumes nothing.
    fn all_or_nothing<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, FramingError>,
    ) -> Result<T, FramingError> {
        let mut ahead = self.clone();
        let value = read(&mut ahead)?;
        *self = ahead;
        Ok(value)
    }

    fn bounded(
        &mut self,
        field: &'static str,
        len: usize,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], FramingError> {
        if len < min || len > max {
            return Err(FramingError::LengthOutOfRange {
                field,
                len,
                min,
                max,
            });
        }
        self.take(len, field)
    }

    /// Reads the 8-byte magic and the version byte that open every
    /// shardkeep binary format, and checks them: the magic first (input that
    /// is not this format is refused as such, whatever its version byte),
    /// then the version. `format` names the format for the error.
    ///
    /// # Errors
    /// [`FramingError::Truncated`] when fewer than 9 bytes remain (nothing is
    /// consumed), [`FramingError::BadMagic`], or
    /// [`FramingError::UnsupportedVersion`] with the version byte found.
    pub fn magic_and_version(
        &mut self,
        format: &'static str,
        magic: &[u8; 8],
        version: u8,
    ) -> Result<(), FramingError> {
        self.all_or_nothing(|r| {
            if r.array::<8>("magic")? != magic {
                return Err(FramingError::BadMagic { format });
            }
            match r.u8("version")? {
                found if found == version => Ok(()),
                found => Err(FramingError::UnsupportedVersion {
                    format,
                    version: found,
                }),
            }
        })
    }

    /// Succeeds only when every byte was consumed; `what` names the format
    /// (or section) for the error.
    ///
    /// # Errors
    /// [`FramingError::TrailingBytes`] with the number of bytes left.
    pub fn finish(self, what: &'static str) -> Result<(), FramingError> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(FramingError::TrailingBytes { what, len }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_big_endian_and_refuses_short_input() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 0x0203);
        assert_eq!(r.u32("c").unwrap(), 0x0405_0607);
        assert_eq!(r.u64("d").unwrap(), 0x0809_0a0b_0c0d_0e0f);
        assert_eq!(r.offset(), 15);
        assert_eq!(r.remaining(), 0);
        assert_eq!(
            r.u8("e"),
            Err(FramingError::Truncated {
                field: "e",
                needed: 1
            })
        );
        r.finish("all").unwrap();
    }

    #[test]
    fn a_failed_read_consumes_nothing() {
        let mut r = Reader::new(&[0, 1, 2, 3, 4]);
        assert_eq!(r.u16("a").unwrap(), 1);
        assert_eq!(
            r.take(4, "b"),
            Err(FramingError::Truncated {
                field: "b",
                needed: 1
            })
        );
        assert_eq!(r.offset(), 2);
        assert_eq!(
            r.take(usize::MAX, "huge"),
            Err(FramingError::Truncated {
                field: "huge",
                needed: usize::MAX - 3
            })
        );
        assert!(matches!(
            r.u64("c"),
            Err(FramingError::Truncated { needed: 5, .. })
        ));
        assert_eq!(r.offset(), 2);
        assert_eq!(r.array::<3>("rest").unwrap(), &[2, 3, 4]);
        assert_eq!(r.take(0, "empty").unwrap(), &[] as &[u8]);
        r.finish("all").unwrap();
    }

    #[test]
    fn debug_shows_the_position_not_the_bytes() {
        let mut r = Reader::new(&[0xde, 0xad, 0xbe, 0xef]);
        r.u8("a").unwrap();
        assert_eq!(format!("{r:?}"), "Reader { offset: 1, len: 4 }");
    }

    #[test]
    fn magic_and_version_are_checked_in_order() {
        const MAGIC: &[u8; 8] = b"shkp-tst";
        let mut good = MAGIC.to_vec();
        good.extend_from_slice(&[3, 0xaa]);
        let mut r = Reader::new(&good);
        assert_eq!(r.magic_and_version("test", MAGIC, 3), Ok(()));
        assert_eq!(r.offset(), 9);
        assert_eq!(r.u8("rest").unwrap(), 0xaa);

        let mut r = Reader::new(&good);
        assert_eq!(
            r.magic_and_version("test", MAGIC, 2),
            Err(FramingError::UnsupportedVersion {
                format: "test",
                version: 3
            })
        );
        assert_eq!(r.offset(), 0, "a refused header consumes nothing");

        let mut other = good.clone();
        other[7] ^= 1;
        // A wrong magic is reported as such, whatever the version says.
        other[8] = 9;
        assert_eq!(
            Reader::new(&other).magic_and_version("test", MAGIC, 3),
            Err(FramingError::BadMagic { format: "test" })
        );
        assert_eq!(
            Reader::new(&good[..5]).magic_and_version("test", MAGIC, 3),
            Err(FramingError::Truncated {
                field: "magic",
                needed: 3
            })
        );
        assert_eq!(
            Reader::new(&good[..8]).magic_and_version("test", MAGIC, 3),
            Err(FramingError::Truncated {
                field: "version",
                needed: 1
            })
        );
    }

    #[test]
    fn finish_refuses_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.u8("a").unwrap();
        assert_eq!(
            r.finish("record"),
            Err(FramingError::TrailingBytes {
                what: "record",
                len: 2
            })
        );
        assert_eq!(
            Reader::new(&[]).finish("empty"),
            Ok(()),
            "empty input with nothing expected is complete"
        );
    }

    /// A length-prefixed read that fails (length out of bounds, or the
    /// field cut short) leaves the reader where it was, like every other
    /// read: the prefix is not consumed either.
    #[test]
    fn a_refused_length_prefix_consumes_nothing() {
        let mut r = Reader::new(&[7, 200, 0, 0, 0, 1, 9]);
        r.u8("lead").unwrap();
        assert!(matches!(
            r.prefixed_u8("out of bounds", 1, 64),
            Err(FramingError::LengthOutOfRange { len: 200, .. })
        ));
        assert_eq!(r.offset(), 1);
        // Declares 0xc800 bytes; 4 follow.
        assert_eq!(
            r.prefixed_u16("cut short", 0, usize::MAX),
            Err(FramingError::Truncated {
                field: "cut short",
                needed: 0xc800 - 4
            })
        );
        assert_eq!(r.offset(), 1);
        // Declares 0xc800_0000 bytes; 2 follow.
        assert_eq!(
            r.prefixed_u32("cut short", 0, usize::MAX),
            Err(FramingError::Truncated {
                field: "cut short",
                needed: 0xc800_0000 - 2
            })
        );
        assert_eq!(r.offset(), 1);
        // Still readable from where the refused reads started.
        assert_eq!(r.u8("next").unwrap(), 200);
        assert_eq!(r.prefixed_u32("nine", 1, 1).unwrap(), &[9]);
        r.finish("all").unwrap();
    }

    #[test]
    fn length_prefix_is_bounded_before_taking() {
        // Declares 200 bytes but only 1 follows: the bound check fires first,
        // and nothing is consumed.
        let mut r = Reader::new(&[200, 0]);
        assert_eq!(
            r.prefixed_u8("name", 1, 64),
            Err(FramingError::LengthOutOfRange {
                field: "name",
                len: 200,
                min: 1,
                max: 64
            })
        );
        assert_eq!(r.offset(), 0);
        let mut r = Reader::new(&[0, 0, 0]);
        assert!(matches!(
            r.prefixed_u16("blob", 1, 10),
            Err(FramingError::LengthOutOfRange { len: 0, .. })
        ));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            r.prefixed_u32("body", 1, 1 << 20),
            Err(FramingError::LengthOutOfRange {
                len: 0xffff_ffff,
                ..
            })
        ));
        // In bounds but cut short.
        let mut r = Reader::new(&[0, 3, 7, 8]);
        assert_eq!(
            r.prefixed_u16("two", 1, 3),
            Err(FramingError::Truncated {
                field: "two",
                needed: 1
            })
        );
        let mut r = Reader::new(&[0, 2, 7, 8]);
        assert_eq!(r.prefixed_u16("two", 1, 2).unwrap(), &[7, 8]);
        let mut r = Reader::new(&[0, 0, 0, 1, 9]);
        assert_eq!(r.prefixed_u32("one", 0, 1).unwrap(), &[9]);
        // A prefix that is itself cut short names the field.
        assert_eq!(
            Reader::new(&[0]).prefixed_u16("len", 0, 1),
            Err(FramingError::Truncated {
                field: "len",
                needed: 1
            })
        );
    }
}
