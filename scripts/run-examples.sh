#!/usr/bin/env bash
# Runs every example, so that "examples compile and run" is checked, not
# hoped: the workspace's own (the procedure as a library) first, then each
# crate's. One build with the test command's feature set (so it reuses that
# build), then the binaries are run directly. The README's main job,
# `shardkeep demo`, runs in the CLI's tests (crates/cli/tests/demo.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --all-features --examples --locked
examples=${CARGO_TARGET_DIR:-target}/debug/examples

run() {
    echo "--- $1"
    "$examples/$1"
}

# Every example file, so a new one is run without being listed here
# (`examples/lib.rs` is the package's library; the PKCS#11 example needs a
# token and runs below).
for source in examples/*.rs crates/*/examples/*.rs; do
    name=$(basename "$source" .rs)
    case $name in
    lib | softhsm) ;;
    *) run "$name" ;;
    esac
done

# The PKCS#11 example against a throwaway SoftHSM2 token of its own, run
# twice: the second run opens the signer the first one generated.
hsm=$(mktemp -d)
trap 'rm -rf "$hsm"' EXIT
mkdir "$hsm/tokens"
echo "directories.tokendir = $hsm/tokens" >"$hsm/softhsm2.conf"
export SOFTHSM2_CONF=$hsm/softhsm2.conf
softhsm2-util --init-token --free --label shardkeep-demo --so-pin 87654321 --pin 12345678 >/dev/null
export SHARDKEEP_PKCS11_TOKEN=shardkeep-demo SHARDKEEP_PKCS11_PIN=12345678
run softhsm | tee "$hsm/first-run"
# The second run opens the signer the first one generated, pinned by the
# public key it printed (a key is never found by its label alone).
SHARDKEEP_SIGNER_PUBLIC_KEY=$(sed -n 's/^token signer .* public key \([0-9a-f]\{64\}\)$/\1/p' "$hsm/first-run")
export SHARDKEEP_SIGNER_PUBLIC_KEY
[ -n "$SHARDKEEP_SIGNER_PUBLIC_KEY" ] || {
    echo "the softhsm example printed no signer public key" >&2
    exit 1
}
run softhsm
