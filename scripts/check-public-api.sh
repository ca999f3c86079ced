#!/usr/bin/env bash
# Lists the public API of every published library crate (all features on)
# and compares it with the listing checked in beside the crate,
# crates/<crate>/public-api.txt, so that an API change shows in review as a
# diff of that file. Fails on any difference.
#
# Usage: scripts/check-public-api.sh            check (CI)
#        scripts/check-public-api.sh --update   rewrite the listings
#
# Needs cargo-public-api (the version .ci/run installs) and the nightly
# toolchain: the listing is read from rustdoc's JSON output, whose format
# only nightly emits. Blanket impls (`impl<T> From<T> for T` and the like)
# are left out; derived and auto-trait impls stay in, since dropping `Clone`,
# `Send` or `Sync` changes what callers can do.
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

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
changed=()
for entry in "${crates[@]}"; do
    IFS=$'\t' read -r name dir <<<"$entry"
    listing="$dir/public-api.txt"
    echo "--- $name"
    cargo +nightly public-api --package "$name" --all-features --simplified \
        --color never >"$scratch/$name.txt"
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
