//! How the binary formats (records, exports) use [`shardkeep_wire`]: its
//! errors are [`DecodeError::Framing`]; and the presence flag.

use shardkeep_wire::Reader;

use crate::error::DecodeError;

/// A presence flag: exactly 0 or 1.
pub(crate) fn read_flag(reader: &mut Reader<'_>, field: &'static str) -> Result<bool, DecodeError> {
    match reader.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(DecodeError::BadFlag(other)),
    }
}

#[cfg(test)]
mod tests {
    use shardkeep_wire::FramingError;

    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut reader = Reader::new(&[0, 1, 2, 3, 4]);
        assert_eq!(reader.u16("a").unwrap(), 1);
        assert_eq!(reader.offset(), 2);
        assert_eq!(
            reader.take(4, "b").map_err(DecodeError::from),
            Err(DecodeError::Framing(FramingError::Truncated {
                field: "b",
                needed: 1
            }))
        );
        // A failed read consumes nothing.
        assert_eq!(reader.offset(), 2);
        assert_eq!(
            reader.clone().finish("record").map_err(DecodeError::from),
            Err(DecodeError::Framing(FramingError::TrailingBytes {
                what: "record",
                len: 3
            }))
        );
        assert_eq!(read_flag(&mut reader, "flag"), Err(DecodeError::BadFlag(2)));
        assert!(matches!(
            reader.take(usize::MAX, "c").map_err(DecodeError::from),
            Err(DecodeError::Framing(FramingError::Truncated { .. }))
        ));
        assert_eq!(reader.u16("d").unwrap(), 0x0304);
        assert!(reader.clone().finish("record").is_ok());
        assert!(matches!(
            reader.u8("e").map_err(DecodeError::from),
            Err(DecodeError::Framing(FramingError::Truncated { .. }))
        ));
        assert!(matches!(
            Reader::new(&[0, 0, 0, 0])
                .prefixed_u32("record", 1, 8)
                .map_err(DecodeError::from),
            Err(DecodeError::Framing(FramingError::LengthOutOfRange { .. }))
        ));
    }
}
