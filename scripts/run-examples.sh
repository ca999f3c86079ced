#!/usr/bin/env bash
# Runs every example, so that "examples compile and run" is checked, not
# hoped: the README's main job first, then each crate's own. Debug builds:
# the dependencies are already optimised by the dev profile.
set -euo pipefail
cd "$(dirname "$0")/.."

run() {
    echo "--- $*"
    cargo run --quiet --locked --all-features "$@"
}

run -p shardkeep-examples --example hybrid_backup
run -p shardkeep-wire --example length_prefixed
run -p shardkeep-sss-core --example robust_recovery
run -p shardkeep-envelope --example lifecycle
run -p shardkeep-keydata --example recovery_drill
run -p shardkeep-storage --example sqlite_default
run -p shardkeep-audit --example audit_log
run -p shardkeep-kms --example local_key_file

# The PKCS#11 example against a throwaway SoftHSM2 token of its own, run
# twice: the second run finds the signer the first one generated.
hsm=$(mktemp -d)
trap 'rm -rf "$hsm"' EXIT
mkdir "$hsm/tokens"
echo "directories.tokendir = $hsm/tokens" >"$hsm/softhsm2.conf"
export SOFTHSM2_CONF=$hsm/softhsm2.conf
softhsm2-util --init-token --free --label shardkeep-demo --so-pin 87654321 --pin 12345678 >/dev/null
export SHARDKEEP_PKCS11_TOKEN=shardkeep-demo SHARDKEEP_PKCS11_PIN=12345678
run -p shardkeep-kms --example softhsm
run -p shardkeep-kms --example softhsm
