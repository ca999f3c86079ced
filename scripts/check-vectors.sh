#!/usr/bin/env bash
# Regenerates every golden vector of the workspace and fails if that moved
# a byte of any committed vector or wrote a new file: every generator is
# deterministic (seeded ChaCha20Rngs, fixed keys, salts and nonces), so
# regenerating must reproduce the files under crates/*/tests/data exactly.
# A failure means a generator is not reproducible, or a format changed
# without its vectors being regenerated and committed.
#
# Usage: scripts/check-vectors.sh   (on a checkout with no uncommitted
# changes under crates/*/tests/data; leaves the regenerated files in place
# for `git diff`)
set -euo pipefail
cd "$(dirname "$0")/.."

# The one regenerate command (crates/test-support/README.md): every golden
# test has `golden` in its name.
SHARDKEEP_REGENERATE_VECTORS=1 cargo test --workspace --all-features --locked -- golden

vector_dirs=(crates/*/tests/data)
status=0
if ! git diff --exit-code --stat HEAD -- "${vector_dirs[@]}"; then
    echo "regenerating changed the committed vectors above" >&2
    status=1
fi
untracked=$(git ls-files --others --exclude-standard -- "${vector_dirs[@]}")
if [ -n "$untracked" ]; then
    echo "regenerating wrote vector files that are not committed:" >&2
    echo "$untracked" >&2
    status=1
fi
if [ "$status" -eq 0 ]; then
    echo "every golden vector regenerates byte for byte"
fi
exit "$status"
