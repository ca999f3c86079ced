#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod reader;
mod writer;

pub use error::WireError;
pub use reader::Reader;
pub use writer::{put_prefixed_u8, put_prefixed_u16, put_prefixed_u32};
