#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine.
#
# The tests start what they need themselves (a throwaway PostgreSQL cluster,
# a temporary SoftHSM2 token, the age CLI for interop, headless Chromium to
# render the HTML checklist report and the status page, promtool to check
# and unit-test the alert rules); this script only makes sure the Debian
# packages that provide those programs are installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# program -> Debian package that provides it
declare -A needed=(
    [age]=age
    [softhsm2-util]=softhsm2
    [pkcs11-tool]=opensc
    [/usr/lib/postgresql/15/bin/initdb]=postgresql-15
    [chromium]=chromium
    [promtool]=prometheus
)
missing=()
for program in "${!needed[@]}"; do
    command -v "$program" >/dev/null 2>&1 || [ -x "$program" ] || missing+=("${needed[$program]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The rendered-report test skips itself without Chromium unless this is set.
export SHARDKEEP_REQUIRE_CHROMIUM=1
# The alert-rule tests skip themselves without promtool unless this is set.
export SHARDKEEP_REQUIRE_PROMTOOL=1
cargo test --workspace --all-features --locked "$@"
