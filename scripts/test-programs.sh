# Installs what the tests run beside the workspace, once, and exports where
# it is. Sourced by scripts/test.sh (and run alone by CI as its own step, so
# the install time is told apart from the tests'); idempotent.
#
# The tests start what they need themselves (a throwaway PostgreSQL cluster,
# a temporary SoftHSM2 token, the age CLI for interop, headless Chromium to
# render the HTML checklist report and the status page, promtool to check
# and unit-test the alert rules, a Python gRPC client); this only makes
# sure the Debian packages that provide those programs, and the Python
# packages of that client, are installed.

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
# The virtualenv module is Debian's python3-venv.
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A gRPC client in another language: Python's grpcio (stubs generated from
# the proto by grpcio-tools) and pyrage, in a virtualenv under the target
# directory, made once.
venv="$(realpath -m "${CARGO_TARGET_DIR:-target}")/python-venv"
if ! "$venv/bin/python" -c 'import grpc, grpc_tools, grpc_reflection, pyrage' 2>/dev/null; then
    echo "installing the Python client's packages in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        grpcio==1.85.3 grpcio-tools==1.85.1 grpcio-reflection==1.85.1 protobuf==7.36.2 pyrage==1.4.0
fi
export SHARDKEEP_PYTHON="$venv/bin/python"

# Tests that need one of the programs above skip themselves without it
# unless these are set.
export SHARDKEEP_REQUIRE_CHROMIUM=1
export SHARDKEEP_REQUIRE_PYTHON=1
export SHARDKEEP_REQUIRE_PROMTOOL=1
