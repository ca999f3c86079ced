//! `shardkeep_wire::Reader` driven by an input-chosen sequence of reads
//! (take, arrays, integers, length-prefixed fields with input-chosen bounds,
//! magic and version, finish), each checked against a model of the
//! documented behaviour: the exact bytes or error, never a read past the
//! end, nothing consumed by a failed read. Then the length-prefix writers:
//! what they accept reads back exactly, what they refuse leaves the output
//! untouched.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use shardkeep_wire::{FramingError, Reader, put_prefixed_u8, put_prefixed_u16, put_prefixed_u32};

/// Operations (or written fields) per input.
const MAX_STEPS: usize = 64;
/// Longest field the writer mode makes up: past the 2-byte prefix's 65 535,
/// so that every writer's own limit is reached.
const MAX_SYNTHETIC_FIELD: u32 = 70_000;

const FIELD: &str = "field";
const FORMAT: &str = "format";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    // Running out of input ends the run early; it is not a finding.
    let _ = if mode & 1 == 0 {
        drive_reader(&mut u)
    } else {
        write_then_read(&mut u)
    };
});

/// One of `n` choices, from one byte of input.
fn pick(u: &mut Unstructured<'_>, n: u8) -> Result<u8> {
    Ok(u.arbitrary::<u8>()? % n)
}

/// A length or bound: small, medium, large or the largest `usize`, so that
/// every comparison in the reader is reached.
fn bound(u: &mut Unstructured<'_>) -> Result<usize> {
    Ok(match pick(u, 4)? {
        0 => usize::from(u.arbitrary::<u8>()?),
        1 => usize::from(u.arbitrary::<u16>()?),
        2 => usize::try_from(u.arbitrary::<u32>()?).unwrap_or(usize::MAX),
        _ => usize::MAX,
    })
}

/// `input = len (u16) || buffer || operations`.
fn drive_reader(u: &mut Unstructured<'_>) -> Result<()> {
    let len = usize::from(u.arbitrary::<u16>()?).min(u.len());
    let buf = u.bytes(len)?;
    let mut reader = Reader::new(buf);
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        step(u, buf, &mut reader)?;
        // Never past the end, whatever happened.
        assert!(reader.offset() <= buf.len(), "offset past the end");
        assert_eq!(reader.remaining(), buf.len() - reader.offset());
    }
    let rest = &buf[reader.offset()..];
    let expected = if rest.is_empty() {
        Ok(())
    } else {
        Err(FramingError::TrailingBytes {
            what: FORMAT,
            len: rest.len(),
        })
    };
    assert_eq!(reader.finish(FORMAT), expected, "finish");
    Ok(())
}

/// One input-chosen read, checked against the model.
fn step(u: &mut Unstructured<'_>, buf: &[u8], reader: &mut Reader<'_>) -> Result<()> {
    let before = reader.offset();
    let rest = &buf[before..];
    match pick(u, 14)? {
        0 => {
            let len = bound(u)?;
            let got = reader.take(len, FIELD);
            check(reader, before, got, fixed(rest, len));
        }
        1 => array::<0>(reader, rest),
        2 => array::<1>(reader, rest),
        3 => array::<8>(reader, rest),
        4 => array::<32>(reader, rest),
        5 => {
            let expected = be(rest, 1);
            let got = reader.u8(FIELD).map(u64::from);
            check(reader, before, got, expected);
        }
        6 => {
            let expected = be(rest, 2);
            let got = reader.u16(FIELD).map(u64::from);
            check(reader, before, got, expected);
        }
        7 => {
            let expected = be(rest, 4);
            let got = reader.u32(FIELD).map(u64::from);
            check(reader, before, got, expected);
        }
        8 => {
            let expected = be(rest, 8);
            let got = reader.u64(FIELD);
            check(reader, before, got, expected);
        }
        9 => {
            let (min, max) = (bound(u)?, bound(u)?);
            let got = reader.prefixed_u8(FIELD, min, max);
            check(reader, before, got, prefixed(rest, 1, min, max));
        }
        10 => {
            let (min, max) = (bound(u)?, bound(u)?);
            let got = reader.prefixed_u16(FIELD, min, max);
            check(reader, before, got, prefixed(rest, 2, min, max));
        }
        11 => {
            let (min, max) = (bound(u)?, bound(u)?);
            let got = reader.prefixed_u32(FIELD, min, max);
            check(reader, before, got, prefixed(rest, 4, min, max));
        }
        12 => {
            // The magic and version ahead (so that success is reached), or
            // input-chosen ones, optionally with one bit changed.
            let mut magic = match rest.get(..8) {
                Some(ahead) if u.arbitrary::<bool>()? => {
                    let mut magic = [0u8; 8];
                    magic.copy_from_slice(ahead);
                    magic
                }
                _ => u.arbitrary::<[u8; 8]>()?,
            };
            if pick(u, 4)? == 0 {
                let bit = usize::from(pick(u, 64)?);
                magic[bit / 8] ^= 1 << (bit % 8);
            }
            let version = match rest.get(8) {
                Some(&ahead) if u.arbitrary::<bool>()? => ahead,
                _ => u.arbitrary::<u8>()?,
            };
            let got = reader.magic_and_version(FORMAT, &magic, version);
            check(reader, before, got, magic_and_version(rest, magic, version));
        }
        _ => {
            // `finish` consumes the reader: try it on a copy.
            let expected = if rest.is_empty() {
                Ok(())
            } else {
                Err(FramingError::TrailingBytes {
                    what: FORMAT,
                    len: rest.len(),
                })
            };
            assert_eq!(reader.clone().finish(FORMAT), expected, "finish");
        }
    }
    Ok(())
}

/// Checks a read against the model: the same value or the same error; a
/// success consumed exactly what the model says, a failure nothing.
fn check<T: PartialEq + core::fmt::Debug>(
    reader: &Reader<'_>,
    before: usize,
    got: core::result::Result<T, FramingError>,
    expected: Expected<T>,
) {
    match (got, expected) {
        (got, Ok((value, consumed))) => {
            assert_eq!(got, Ok(value), "read differs from the model");
            assert_eq!(
                reader.offset(),
                before + consumed,
                "consumed the wrong length"
            );
        }
        (got, Err(error)) => {
            assert_eq!(got, Err(error), "error differs from the model");
            assert_eq!(reader.offset(), before, "a failed read consumed input");
        }
    }
}

/// What the model expects: the value and how many bytes it consumes, or the
/// error.
type Expected<T> = core::result::Result<(T, usize), FramingError>;

fn array<const N: usize>(reader: &mut Reader<'_>, rest: &[u8]) {
    let before = reader.offset();
    let got = reader.array::<N>(FIELD).map(<[u8; N]>::as_slice);
    check(reader, before, got, fixed(rest, N));
}

/// The next `len` bytes.
fn fixed(rest: &[u8], len: usize) -> Expected<&[u8]> {
    match rest.get(..len) {
        Some(bytes) => Ok((bytes, len)),
        None => Err(FramingError::Truncated {
            field: FIELD,
            needed: len - rest.len(),
        }),
    }
}

/// A big-endian integer of `width` bytes.
fn be(rest: &[u8], width: usize) -> Expected<u64> {
    fixed(rest, width).map(|(bytes, consumed)| {
        let value = bytes
            .iter()
            .fold(0u64, |value, &byte| (value << 8) | u64::from(byte));
        (value, consumed)
    })
}

/// A field with a `width`-byte length prefix in `min..=max`: the bounds are
/// checked before the field is taken.
fn prefixed(rest: &[u8], width: usize, min: usize, max: usize) -> Expected<&[u8]> {
    let (declared, _) = be(rest, width)?;
    let len = usize::try_from(declared).unwrap_or(usize::MAX);
    if len < min || len > max {
        return Err(FramingError::LengthOutOfRange {
            field: FIELD,
            len,
            min,
            max,
        });
    }
    let (field, _) = fixed(&rest[width..], len)?;
    Ok((field, width + len))
}

fn magic_and_version(rest: &[u8], magic: [u8; 8], version: u8) -> Expected<()> {
    let truncated = |field, needed| FramingError::Truncated { field, needed };
    let found = rest
        .get(..8)
        .ok_or_else(|| truncated("magic", 8 - rest.len()))?;
    if found != magic {
        return Err(FramingError::BadMagic { format: FORMAT });
    }
    let &found = rest.get(8).ok_or_else(|| truncated("version", 1))?;
    if found != version {
        return Err(FramingError::UnsupportedVersion {
            format: FORMAT,
            version: found,
        });
    }
    Ok(((), 9))
}

/// Fields written with input-chosen prefix widths, lengths and caps; then
/// read back with the caps they were written under.
fn write_then_read(u: &mut Unstructured<'_>) -> Result<()> {
    let mut out = Vec::new();
    // (prefix width, the field, the cap it was written under)
    let mut written: Vec<(usize, Vec<u8>, usize)> = Vec::new();
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let width = [1, 2, 4][usize::from(pick(u, 3)?)];
        let field = if pick(u, 8)? == 0 {
            // Long fields, past what a prefix can say, made up cheaply.
            let len = u.int_in_range(0..=MAX_SYNTHETIC_FIELD)?;
            vec![u.arbitrary::<u8>()?; usize::try_from(len).unwrap_or(usize::MAX)]
        } else {
            let len = u.arbitrary_len::<u8>()?;
            u.bytes(len)?.to_vec()
        };
        let cap = bound(u)?;
        let before = out.clone();
        let (result, prefix_max) = match width {
            1 => (put_prefixed_u8(&mut out, FIELD, &field, cap), 0xff),
            2 => (put_prefixed_u16(&mut out, FIELD, &field, cap), 0xffff),
            _ => (put_prefixed_u32(&mut out, FIELD, &field, cap), 0xffff_ffff),
        };
        let limit = cap.min(prefix_max);
        if field.len() > limit {
            assert_eq!(
                result,
                Err(FramingError::LengthOutOfRange {
                    field: FIELD,
                    len: field.len(),
                    min: 0,
                    max: limit,
                }),
                "an over-long field was not refused as such"
            );
            assert_eq!(out, before, "a refused field was written");
        } else {
            assert_eq!(result, Ok(()), "a field within its cap was refused");
            let len = field.len().to_be_bytes();
            let mut expected = before;
            expected.extend_from_slice(&len[len.len() - width..]);
            expected.extend_from_slice(&field);
            assert_eq!(out, expected, "the writer wrote something else");
            written.push((width, field, cap));
        }
    }
    let mut reader = Reader::new(&out);
    for (width, field, cap) in &written {
        let got = match width {
            1 => reader.prefixed_u8(FIELD, field.len(), *cap),
            2 => reader.prefixed_u16(FIELD, field.len(), *cap),
            _ => reader.prefixed_u32(FIELD, 0, *cap),
        };
        assert_eq!(
            got,
            Ok(field.as_slice()),
            "a written field read back differently"
        );
    }
    assert_eq!(
        reader.finish(FORMAT),
        Ok(()),
        "bytes left after the written fields"
    );
    Ok(())
}
