//! Encodes a small record with length-prefixed fields, decodes it, and shows
//! the errors a truncated, over-long or padded input gets.
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use shardkeep_wire::{FramingError, Reader, put_prefixed_u8, put_prefixed_u16};

const MAX_NAME_LEN: usize = 64;
const MAX_NOTE_LEN: usize = 1024;

fn encode(name: &str, note: &str, counter: u32) -> Result<Vec<u8>, FramingError> {
    let mut out = vec![1];
    put_prefixed_u8(&mut out, "name", name.as_bytes(), MAX_NAME_LEN)?;
    put_prefixed_u16(&mut out, "note", note.as_bytes(), MAX_NOTE_LEN)?;
    out.extend_from_slice(&counter.to_be_bytes());
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<(String, String, u32), FramingError> {
    let mut r = Reader::new(bytes);
    let _version = r.u8("version")?;
    let name = r.prefixed_u8("name", 1, MAX_NAME_LEN)?;
    let note = r.prefixed_u16("note", 0, MAX_NOTE_LEN)?;
    let counter = r.u32("counter")?;
    r.finish("record")?;
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(note).into_owned(),
        counter,
    ))
}

fn main() -> Result<(), FramingError> {
    let bytes = encode("node-a", "rotated after drill", 7)?;
    println!("encoded {} bytes: {bytes:02x?}", bytes.len());
    println!("decoded: {:?}", decode(&bytes)?);

    println!("truncated: {:?}", decode(&bytes[..bytes.len() - 1]));
    let mut padded = bytes.clone();
    padded.push(0);
    println!("padded:    {:?}", decode(&padded));
    let mut bad_prefix = bytes;
    bad_prefix[1] = 200;
    println!("bad name length: {:?}", decode(&bad_prefix));
    println!(
        "name over its cap: {:?}",
        encode(&"n".repeat(MAX_NAME_LEN + 1), "", 0)
    );
    Ok(())
}
