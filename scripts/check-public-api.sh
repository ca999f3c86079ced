#!/usr/bin/env bash
# Lists the public API of every published library crate (all features on)
# and compares it with the listing checked in beside the crate,
# crates/<crate>/public-api.txt, so that an API change shows in review as a
# diff of that file. Fails on any difference.
#
# Usage: scripts/check-public-api.sh            check (CI)
#        scripts/check-public-api.sh --update   rewrite the listings
#
# Needs cargo-public-api (the version pinned below, which .ci/run installs).
# The listing is read from rustdoc's JSON output, an unstable rustdoc
# option, and each cargo-public-api release reads one format version. The
# stable toolchain's rustdoc writes the same format as the image's nightly
# (57), so the JSON comes from stable with the unstable option unlocked
# for the rustdoc processes only (a wrapper that sets RUSTC_BOOTSTRAP=1 for
# them, never for rustc): the dependencies are then the ones the clippy
# and `cargo doc` steps already checked, where nightly would check them all
# again (four minutes on 2 cores). The script refuses JSON of any other
# format. Blanket impls (`impl<T> From<T> for T` and the like)
# are left out; derived and auto-trait impls stay in, since dropping `Clone`,
# `Send` or `Sync` changes what callers can do.
#
# One `cargo doc` over the workspace writes the JSON of all the crates, so
# the dependencies are checked once, with the features of the crates
# together (`cargo public-api -p` would build each crate on its own,
# checking the dependencies again per crate). A crate's listing could
# differ from its own build only through a feature of a dependency that
# another crate turns on and that changes what the crate re-exports; the
# listings were the same both ways when this was written.
set -euo pipefail
cd "$(dirname "$0")/.."

update=false
case "${1:-}" in
--update) update=true ;;
"") ;;
*)
    echo "usage: $0 [--update]" >&2
    exit 2
    ;;
esac

# The library crates that may be published (`publish` unset), from cargo's
# own view of the workspace, as "name<TAB>manifest directory".
mapfile -t crates < <(
    cargo metadata --no-deps --format-version 1 --locked |
        jq -r '.packages[]
            | select(.publish == null)
            | select(any(.targets[]; .kind | index("lib")))
            | [.name, (.manifest_path | rtrimstr("/Cargo.toml"))] | @tsv'
)
if ((${#crates[@]} == 0)); then
    echo "no publishable library crate found" >&2
    exit 2
fi

# cargo-public-api 0.52.0 reads rustdoc JSON format 57 (its rustdoc-types
# 0.57), the format of the pinned stable toolchain (1.95) and of the
# image's nightly (1.97.0-nightly, 2026-05). Another toolchain whose rustdoc
# writes another format, or another cargo-public-api, needs both pins moved together
# (and .ci/run's CARGO_PUBLIC_API_VERSION), then the listings regenerated.
public_api_version=0.52.0
rustdoc_json_format=57
installed=$(cargo public-api --version)
if [ "$installed" != "cargo-public-api $public_api_version" ]; then
    echo "found $installed, need cargo-public-api $public_api_version:" >&2
    echo "    cargo install --locked cargo-public-api@$public_api_version" >&2
    exit 2
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
rustdoc="$(rustc --print sysroot)/bin/rustdoc"
printf '#!/bin/sh\nRUSTC_BOOTSTRAP=1 exec "%s" "$@"\n' "$rustdoc" >"$scratch/rustdoc-json"
chmod +x "$scratch/rustdoc-json"
# The whole workspace, as `cargo doc` in CI: the same features, so the
# same dependency checks.
RUSTDOC="$scratch/rustdoc-json" RUSTDOCFLAGS="-Z unstable-options --output-format json" \
    cargo doc --locked --no-deps --all-features --workspace
changed=()
for entry in "${crates[@]}"; do
    IFS=$'\t' read -r name dir <<<"$entry"
    listing="$dir/public-api.txt"
    json="${CARGO_TARGET_DIR:-target}/doc/${name//-/_}.json"
    echo "--- $name"
    format=$(jq '.format_version' "$json")
    if [ "$format" != "$rustdoc_json_format" ]; then
        echo "$json: rustdoc JSON format $format; cargo-public-api" \
            "$public_api_version reads format $rustdoc_json_format (see the pins above)" >&2
        exit 2
    fi
    cargo public-api --rustdoc-json "$json" --simplified --color never >"$scratch/$name.txt"
    if $update; then
        cp "$scratch/$name.txt" "$listing"
    elif ! diff -u --label "$listing (checked in)" --label "$listing (this tree)" \
        "$listing" "$scratch/$name.txt"; then
        changed+=("$listing")
    fi
done

if ((${#changed[@]})); then
    cat >&2 <<EOF
The public API differs from the checked-in listing of: ${changed[*]}
(diff above: - checked in, + this tree). If the change is intended, update
the listings and commit them with the change:

    bash scripts/check-public-api.sh --update
EOF
    exit 1
fi
$update && echo "listings written" || echo "public API unchanged (${#crates[@]} crates)"
