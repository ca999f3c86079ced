//! Property tests: whatever the writers write, the reader reads back with the
//! same bounds; every truncation is refused; out-of-bound prefixes are
//! refused before anything is taken.
#![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

use proptest::prelude::*;
use shardkeep_wire::{FramingError, Reader, put_prefixed_u8, put_prefixed_u16, put_prefixed_u32};

/// One field of a record: its prefix width and its bytes.
#[derive(Debug, Clone)]
enum Field {
    U8Prefixed(Vec<u8>),
    U16Prefixed(Vec<u8>),
    U32Prefixed(Vec<u8>),
    Int(u64),
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=255).prop_map(Field::U8Prefixed),
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(Field::U16Prefixed),
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(Field::U32Prefixed),
        any::<u64>().prop_map(Field::Int),
    ]
}

fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        match f {
            Field::U8Prefixed(b) => put_prefixed_u8(&mut out, "f", b, usize::MAX).unwrap(),
            Field::U16Prefixed(b) => put_prefixed_u16(&mut out, "f", b, usize::MAX).unwrap(),
            Field::U32Prefixed(b) => put_prefixed_u32(&mut out, "f", b, usize::MAX).unwrap(),
            Field::Int(v) => out.extend_from_slice(&v.to_be_bytes()),
        }
    }
    out
}

/// Reads `fields`' shapes back from `bytes`, checking every value.
fn decode(bytes: &[u8], fields: &[Field]) -> Result<(), FramingError> {
    let mut r = Reader::new(bytes);
    for f in fields {
        match f {
            Field::U8Prefixed(b) => assert_eq!(r.prefixed_u8("f", 0, 255)?, b.as_slice()),
            Field::U16Prefixed(b) => assert_eq!(r.prefixed_u16("f", 0, 600)?, b.as_slice()),
            Field::U32Prefixed(b) => assert_eq!(r.prefixed_u32("f", 0, 600)?, b.as_slice()),
            Field::Int(v) => assert_eq!(r.u64("f")?, *v),
        }
    }
    r.finish("record")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn written_fields_read_back(fields in proptest::collection::vec(field(), 0..8)) {
        let bytes = encode(&fields);
        prop_assert_eq!(decode(&bytes, &fields), Ok(()));
    }

    #[test]
    fn every_truncation_is_refused(fields in proptest::collection::vec(field(), 1..8), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&fields);
        prop_assume!(!bytes.is_empty());
        let cut = cut.index(bytes.len());
        let refused = decode(&bytes[..cut], &fields).unwrap_err();
        prop_assert!(matches!(refused, FramingError::Truncated { .. }), "{refused:?}");
    }

    #[test]
    fn appended_bytes_are_refused(fields in proptest::collection::vec(field(), 0..8), extra in proptest::collection::vec(any::<u8>(), 1..16)) {
        let mut bytes = encode(&fields);
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(
            decode(&bytes, &fields),
            Err(FramingError::TrailingBytes { what: "record", len: extra.len() })
        );
    }

    #[test]
    fn out_of_bound_prefixes_are_refused_before_taking(len in 0usize..=255, min in 0usize..=255, max in 0usize..=255, body in proptest::collection::vec(any::<u8>(), 0..=255)) {
        let mut bytes = vec![u8::try_from(len).unwrap()];
        bytes.extend_from_slice(&body);
        let mut r = Reader::new(&bytes);
        let read = r.prefixed_u8("f", min, max);
        if len < min || len > max {
            prop_assert_eq!(read, Err(FramingError::LengthOutOfRange { field: "f", len, min, max }));
            // A failed read consumes nothing, not even the prefix.
            prop_assert_eq!(r.offset(), 0);
        } else if len > body.len() {
            prop_assert_eq!(read, Err(FramingError::Truncated { field: "f", needed: len - body.len() }));
            prop_assert_eq!(r.offset(), 0);
        } else {
            prop_assert_eq!(read.unwrap(), &body[..len]);
        }
    }

    #[test]
    fn writers_refuse_exactly_what_exceeds_the_cap(len in 0usize..700, cap in 0usize..700) {
        let bytes = vec![0x5a; len];
        let mut out = Vec::new();
        let written = put_prefixed_u16(&mut out, "f", &bytes, cap);
        if len > cap {
            prop_assert_eq!(written, Err(FramingError::LengthOutOfRange { field: "f", len, min: 0, max: cap }));
            prop_assert!(out.is_empty());
        } else {
            prop_assert_eq!(written, Ok(()));
            prop_assert_eq!(Reader::new(&out).prefixed_u16("f", 0, cap).unwrap(), bytes.as_slice());
        }
    }
}
