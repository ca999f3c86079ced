#!/usr/bin/env bash
# Formatting and clippy for the fuzz code, which the workspace's own
# `cargo fmt --all` and `cargo clippy` never see: the fuzz targets are a
# workspace of their own (`fuzz/`, excluded from the main one), and the
# crates' `fuzzing` modules are compiled only with `--cfg fuzzing`.
#
# Clippy runs on the pinned toolchain (the lints CI enforces everywhere
# else; cargo-fuzz needs nightly only for its sanitizers), with
# `--cfg fuzzing`, in a target directory of its own under fuzz/target: the
# flag changes every crate's fingerprint, and keeping it apart leaves the
# other builds alone and makes a second run quick.
#
# Usage: scripts/check-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --manifest-path fuzz/Cargo.toml --all --check

export CARGO_TARGET_DIR=fuzz/target/check
export RUSTFLAGS='--cfg fuzzing'

# The fuzz targets, under the lints fuzz/Cargo.toml declares.
cargo clippy --manifest-path fuzz/Cargo.toml --locked --bins -- -D warnings

# The crates' `fuzzing` modules (src/fuzzing.rs), under the workspace's lints.
packages=()
for module in crates/*/src/fuzzing.rs; do
    manifest="${module%/src/fuzzing.rs}/Cargo.toml"
    packages+=(-p "$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n 1)")
done
cargo clippy --locked "${packages[@]}" --lib -- -D warnings
