//! How this crate's formats (envelope, container contents, receipt) use
//! [`shardkeep_wire`]: its errors as this crate's [`Error`] variants, and
//! the whole-input cap checked before any parsing.

use shardkeep_wire::FramingError;

use crate::error::Error;

impl From<FramingError> for Error {
    fn from(error: FramingError) -> Self {
        match error {
            FramingError::Truncated { field, .. } => Self::Truncated { field },
            FramingError::LengthOutOfRange {
                field,
                len,
                min,
                max,
            } => Self::FieldLength {
                field,
                len,
                min,
                max,
            },
            FramingError::TrailingBytes { what, len } => Self::TrailingData { what, len },
            // A wire error this build does not know yet: still a refusal.
            _ => Self::NonCanonical { field: "input" },
        }
    }
}

/// Refuses input longer than `max` before any parsing.
pub(crate) fn check_total_len(what: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::TooLarge { what, len, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use shardkeep_wire::{Reader, put_prefixed_u8};

    use super::*;

    #[test]
    fn wire_errors_keep_their_variants() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a").map_err(Error::from), Ok(0x0102));
        assert_eq!(
            r.take(2, "b").map_err(Error::from),
            Err(Error::Truncated { field: "b" })
        );
        assert_eq!(
            Reader::new(&[1, 2]).finish("x").map_err(Error::from),
            Err(Error::TrailingData { what: "x", len: 2 })
        );
        assert_eq!(
            Reader::new(&[200, 0])
                .prefixed_u8("name", 1, 64)
                .map_err(Error::from),
            Err(Error::FieldLength {
                field: "name",
                len: 200,
                min: 1,
                max: 64
            })
        );
        assert_eq!(
            put_prefixed_u8(&mut Vec::new(), "long", &[0; 256], usize::MAX).map_err(Error::from),
            Err(Error::FieldLength {
                field: "long",
                len: 256,
                min: 0,
                max: 255
            })
        );
    }

    #[test]
    fn total_length_is_capped() {
        assert!(check_total_len("envelope", 10, 10).is_ok());
        assert_eq!(
            check_total_len("envelope", 11, 10),
            Err(Error::TooLarge {
                what: "envelope",
                len: 11,
                max: 10
            })
        );
    }
}
