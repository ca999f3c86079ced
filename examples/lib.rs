//! End-to-end examples of the shardkeep crates; see the `[[example]]`
//! targets. This library is empty: it exists so that the examples have a
//! package.
