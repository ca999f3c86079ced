#!/usr/bin/env bash
# Checks what each crate links, with the features it is built with (cargo
# tree resolves features for the named package alone, as `cargo build -p`
# and `cargo install` do), and that the toolchain CI builds with is the
# declared minimum Rust version.
#
# - storage, audit and kms never link `age`: custodian containers are the
#   envelope crate's `containers` feature, which only the backup flow needs.
# - the audit crate's default build (what `cargo install shardkeep-audit`
#   builds, the verifier binary included) links no database driver and no
#   storage crate.
#
# Usage: scripts/check-dependency-trees.sh
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0

# forbid "<package> [cargo tree feature flags...]" "<crate>..."
forbid() {
    local spec=$1
    shift
    local -a args
    read -r -a args <<<"$spec"
    local package=${args[0]}
    local tree
    tree=$(cargo tree --locked -e normal --prefix none --format '{p}' -p "$package" "${args[@]:1}")
    for crate in "$@"; do
        if grep -q "^$crate v" <<<"$tree"; then
            echo "FAIL: cargo tree -e normal -p ${spec}: links $crate" >&2
            cargo tree --locked -e normal -p "$package" "${args[@]:1}" -i "$crate" >&2 || true
            failed=1
        else
            echo "ok: cargo tree -e normal -p ${spec}: no $crate"
        fi
    done
}

forbid "shardkeep-storage" age
forbid "shardkeep-storage --all-features" age
forbid "shardkeep-audit" age sqlx shardkeep-storage
forbid "shardkeep-audit --features storage" age sqlx
forbid "shardkeep-audit --all-features" age
forbid "shardkeep-kms" age
forbid "shardkeep-kms --all-features" age

# The minimum Rust version every crate declares is the toolchain CI pins
# and builds everything with, so the claim is tested, not hoped.
declared=$(cargo metadata --no-deps --format-version 1 --locked |
    jq -r '[.packages[].rust_version] | unique | join(" ")')
running=$(rustc --version | sed -n 's/^rustc \([0-9]*\.[0-9]*\)\..*/\1/p')
pinned=$(sed -n 's/^channel = "\([0-9]*\.[0-9]*\)\..*"/\1/p' rust-toolchain.toml)
if [ "$declared" != "$running" ] || [ "$declared" != "$pinned" ]; then
    echo "FAIL: rust-version ($declared) is not the toolchain CI builds with" \
        "(rustc $running, rust-toolchain.toml $pinned)" >&2
    failed=1
else
    echo "ok: rust-version $declared is the pinned toolchain CI builds with"
fi

exit "$failed"
