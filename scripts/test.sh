#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs the
# programs the tests run beside it (scripts/test-programs.sh), then
# `cargo test` over the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/test-programs.sh
source scripts/test-programs.sh
cargo test --workspace --all-features --locked "$@"
