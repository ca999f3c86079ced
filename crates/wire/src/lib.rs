#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod framing;
mod reader;
mod writer;

pub use framing::{FramingError, check_total_len};
pub use reader::Reader;
pub use writer::{put_prefixed_u8, put_prefixed_u16, put_prefixed_u32};
