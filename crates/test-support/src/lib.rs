#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod golden;
pub mod peer_process;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "softhsm")]
pub mod softhsm;
pub mod tss_lib;
pub mod vector;

pub use golden::{
    GoldenDir, GoldenError, REGENERATE_COMMAND, REGENERATE_VAR, data_dir, regenerating,
    write_atomically,
};
pub use vector::{Problem, Vector, VectorError, read_dir};
