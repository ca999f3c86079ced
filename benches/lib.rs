//! Criterion benchmarks for shardkeep; see the `[[bench]]` targets. This
//! library is empty: it exists so that the benchmarks have a package.
