#!/usr/bin/env bash
# Formatting and clippy for the fuzz code, which the workspace's own
# `cargo fmt --all` and `cargo clippy` never see: the fuzz targets are a
# workspace of their own (`fuzz/`, excluded from the main one), and the
# crates' `fuzzing` modules are compiled only with `--cfg fuzzing`.
#
# Both clippy runs use the pinned toolchain (the lints CI enforces
# everywhere else; cargo-fuzz needs nightly only for its sanitizers) and
# the workspace's target directory, so they reuse the dependencies that
# `cargo clippy` of the workspace already checked instead of checking them
# all again (RUSTFLAGS would change every crate's fingerprint):
#
# - the crates' `fuzzing` modules (src/fuzzing.rs): `--cfg fuzzing` after
#   `--` reaches clippy-driver, which compiles the workspace's own crates
#   only, under the workspace's lints;
# - the fuzz targets written out in fuzz/fuzz_targets (public API only).
#   The others are one line calling a `fuzzing` module function (checked
#   above); they need `--cfg fuzzing` in the crates, and the fuzz smoke
#   build compiles them.
#
# Usage: scripts/check-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --manifest-path fuzz/Cargo.toml --all --check

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

packages=()
for module in crates/*/src/fuzzing.rs; do
    manifest="${module%/src/fuzzing.rs}/Cargo.toml"
    packages+=(-p "$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n 1)")
done
cargo clippy --locked "${packages[@]}" --lib -- --cfg fuzzing -D warnings

bins=()
for target in fuzz/fuzz_targets/*.rs; do
    grep -q 'fuzzing::' "$target" || bins+=(--bin "$(basename "$target" .rs)")
done
cargo clippy --manifest-path fuzz/Cargo.toml --locked "${bins[@]}" -- -D warnings
