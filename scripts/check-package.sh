#!/usr/bin/env bash
# Checks that every publishable crate (`publish` unset) packages and builds
# as it would be published:
#
# - `cargo package` of all of them at once: cargo builds each packaged
#   crate (its library and binaries, from the .crate's files alone, with the
#   manifest as published) against the other packaged crates, so a file left
#   out of the package (a README the docs include, a migrations directory)
#   or a dependency that only the workspace's unified features provide fails
#   here. The packaged tests are not built: the test-only path
#   dev-dependencies (shardkeep-test-support, shardkeep-residue-alloc) have
#   no version and are dropped from published manifests.
# - each crate's package lists every tracked file of its `tests/data/`: the
#   golden vectors ship with the crate that owns the format.
# - tests, benches, examples, sources and the README's code (doctests) of
#   those crates never reach a file outside the crate: they find their data
#   through `env!("CARGO_MANIFEST_DIR")`, which in a package is the unpacked
#   crate. A grep for paths that climb out (`../..`, `"/../`).
#
# Usage: scripts/check-package.sh   (needs jq; leaves the .crate files in
# target/package)
set -euo pipefail
cd "$(dirname "$0")/.."

# "name<TAB>manifest directory (relative)" of every publishable crate.
root=$(pwd)
mapfile -t crates < <(
    cargo metadata --no-deps --format-version 1 --locked |
        jq -r --arg root "$root/" '.packages[]
            | select(.publish == null)
            | [.name, (.manifest_path | rtrimstr("/Cargo.toml") | ltrimstr($root))] | @tsv'
)
if ((${#crates[@]} == 0)); then
    echo "no publishable crate found" >&2
    exit 2
fi
packages=()
for entry in "${crates[@]}"; do
    packages+=(-p "${entry%%$'\t'*}")
done

# A packaged manifest carries no [profile], so the verify build compiles
# the dependencies again, unoptimised, in the workspace's target directory:
# quicker than with the workspace's opt-level 3 (its features differ per
# crate, so little of the test build would be reused anyway).
# The verify step builds each crate against the others through a local
# registry under target/package. cargo unpacks a registry crate once per
# name and version and never again, so an earlier run's unpacked copy of
# one of these crates (same name, same version, older code) would be
# compiled instead of this tree's. No other registry has crates of these
# names: remove such copies first.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
for entry in "${crates[@]}"; do
    name=${entry%%$'\t'*}
    rm -rf "$cargo_home"/registry/src/*/"$name"-[0-9]* "$cargo_home"/registry/cache/*/"$name"-[0-9]*.crate
done

cargo package --locked "${packages[@]}"

failed=0
for entry in "${crates[@]}"; do
    IFS=$'\t' read -r name dir <<<"$entry"
    [ -d "$dir/tests/data" ] || continue
    listed=$(cargo package --locked --list -p "$name" | LC_ALL=C sort)
    missing=$(git ls-files -- "$dir/tests/data" | sed "s|^$dir/||" | LC_ALL=C sort |
        LC_ALL=C comm -23 - <(echo "$listed"))
    if [ -n "$missing" ]; then
        echo "FAIL: $name: the package leaves out tracked files of tests/data:" >&2
        echo "$missing" >&2
        failed=1
    else
        echo "ok: $name: the package ships tests/data ($(git ls-files -- "$dir/tests/data" | wc -l) files)"
    fi
done

climbs='\.\./\.\.|"/\.\./'
for entry in "${crates[@]}"; do
    IFS=$'\t' read -r name dir <<<"$entry"
    sources=()
    for sub in src tests benches examples; do
        [ -d "$dir/$sub" ] && sources+=("$dir/$sub")
    done
    hits=$(grep -rnE --include='*.rs' -- "$climbs" "${sources[@]}" || true)
    # The README is the crate's documentation: only its code blocks run
    # (as doctests); its links are rendered, never read as files.
    if [ -f "$dir/README.md" ]; then
        readme=$(awk '/^[[:space:]]*```/ { code = !code; next } code { print FILENAME ":" FNR ":" $0 }' \
            "$dir/README.md" | grep -E -- "$climbs" || true)
        hits+=${readme:+$'\n'$readme}
    fi
    if [ -n "$hits" ]; then
        echo "FAIL: $name reaches outside the crate (use env!(\"CARGO_MANIFEST_DIR\")):" >&2
        echo "$hits" >&2
        failed=1
    else
        echo "ok: $name: no path climbs out of the crate"
    fi
done

exit "$failed"
