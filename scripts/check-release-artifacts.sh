#!/usr/bin/env bash
# Builds the workspace's shipped artefacts (libraries, binaries, examples,
# every feature) and fails if any of them carries fixed test key material:
# the seeds and age identity the fuzz targets and golden vectors use, or any
# age X25519 secret key at all; or a fuzz helper (a crate's `fuzzing`
# module). Such code belongs in `#[cfg(test)]` or `#[cfg(fuzzing)]` builds
# only; this check keeps it out of what ships.
#
# It scans the dev-profile build of exactly what a release build compiles
# (no `cfg(test)`, no `cfg(fuzzing)`): the workspace's code has no
# `cfg(debug_assertions)` (checked below), so the two compile the same
# source, and an unoptimised build keeps at least everything an optimised
# one does (no dead code dropped, no constants folded away). It reuses the
# test command's build, where a release build would optimise every crate
# again (minutes on 2 cores).
#
# Usage: scripts/check-release-artifacts.sh   (needs jq: Debian package jq)
set -euo pipefail

cd "$(dirname "$0")/.."

if grep -rlE 'debug_assertions' --include='*.rs' crates examples benches; then
    echo "code under cfg(debug_assertions) compiles differently in release:" >&2
    echo "scan a release build instead (cargo build --release)" >&2
    exit 2
fi

# Exactly the artefacts this build produces (fresh or rebuilt), from cargo's
# JSON messages: rlibs, static and shared libraries, and executables
# (binaries, examples). Build scripts are build-time tools and left out;
# stale files of earlier builds in target/ are not looked at.
messages="$(mktemp)"
trap 'rm -f "$messages"' EXIT
cargo build --workspace --all-features --locked --lib --bins --examples \
    --message-format=json-render-diagnostics >"$messages"
mapfile -t artefacts < <(
    jq -r 'select(.reason == "compiler-artifact")
        | select(.target.kind != ["custom-build"])
        | (.filenames[] | select(test("\\.(rlib|a|so)$"))), (.executable // empty)' \
        "$messages" | sort -u
)
if ((${#artefacts[@]} == 0)); then
    echo "the build reported no artefacts" >&2
    exit 2
fi

# Each needle: "name|scope|PCRE" (bytes, C locale); scope "all" scans every
# artefact, "workspace" only this workspace's own rlibs. The fixture seeds
# (crates/share-envelope/src/fixtures.rs) are printable and distinctive, so
# they are searched everywhere; the older fixture seeds, 32 equal bytes,
# occur by chance in third-party tables (typenum, linux-raw-sys, ...), so
# they are searched in our own rlibs only. The symbol names catch the
# fixtures even where the compiler turned a seed into code.
needles=(
    'envelope fixture signer seed|all|shardkeep fuzz signer seed 00001'
    'envelope fixture custodian seed|all|shardkeep fuzz custodian seed 01'
    'an age X25519 secret key|all|AGE-SECRET-KEY-1[0-9A-Z]{58}'
    'envelope fixture names|all|FUZZ_(SIGNER_SEED|CUSTODIAN_SEED|AGE_IDENTITY)'
    'former envelope fuzz signer seed [7; 32]|workspace|\x07{32}'
    'former envelope fuzz custodian seed [8; 32]|workspace|\x08{32}'
    'a fuzz helper (symbol of a shardkeep_*::fuzzing function)|all|shardkeep_[a-z_]+7fuzzing[0-9]'
)

found=0
for needle in "${needles[@]}"; do
    IFS='|' read -r name scope pattern <<<"$needle"
    files=("${artefacts[@]}")
    if [[ "$scope" == workspace ]]; then
        files=()
        for file in "${artefacts[@]}"; do
            [[ "$(basename "$file")" == libshardkeep_*.rlib ]] && files+=("$file")
        done
    fi
    ((${#files[@]})) || continue
    while IFS= read -r -d '' file; do
        echo "FOUND $name in $file" >&2
        found=1
    done < <(LC_ALL=C grep -lZaP -- "$pattern" "${files[@]}" || true)
done

if ((found)); then
    echo "shipped artefacts carry fixed test key material (see above)" >&2
    exit 1
fi
echo "scanned ${#artefacts[@]} artefacts: no fixed test key material"
