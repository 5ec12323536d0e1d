#!/usr/bin/env bash
# One-time set-up of aero-opt on a fresh Debian machine (called by `make demo` / `make test`).
# Idempotent: a stamp file records the hash of the inputs, so a second run returns in seconds.
# Every step names itself; the first failing step stops the set-up with its name.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.setup-stamp"
HASH=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

step() { echo "[setup] $*"; }
fail() { echo "[setup] FAILED at step: $CURRENT" >&2; exit 1; }
trap fail ERR

# debian_tool COMMAND WHAT PACKAGES... : install the Debian packages when COMMAND is missing and we are root with
# apt-get; otherwise say how (WHAT: what needs it).
debian_tool() {
    local cmd=$1 what=$2
    shift 2
    CURRENT="$cmd (apt-get install $*)"
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        step "installing $* from Debian ($what)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q "$@" >/dev/null
    else
        echo "[setup] $cmd not found ($what). Install it as root with:" >&2
        echo "[setup]     apt-get update && apt-get install -y $*" >&2
    fi
}

debian_tool simpleFoam "OpenFOAM v1912: only the CFD commands need it" openfoam openfoam-examples
debian_tool chromium "the test that opens report.html in a browser needs it" chromium

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && [ -x "$VENV/bin/aero-opt" ]; then
    step "already set up (.venv is current)"
    exit 0
fi

CURRENT="create virtual environment .venv with $PY"
[ -x "$VENV/bin/python" ] || { step "$CURRENT"; "$PY" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

CURRENT="install torch==2.13.0 (CPU wheel from local disk)"
step "$CURRENT"
"${PIP[@]}" "torch==2.13.0" setuptools wheel

CURRENT="install pinned dependencies from pyproject.toml"
step "$CURRENT"
DEPS=$("$VENV/bin/python" - <<'PYEOF'
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = [d for d in p["dependencies"] + p["optional-dependencies"]["test"] if not d.startswith(("torch==", "torch-spline-conv"))]
print("\n".join(deps))
PYEOF
)
mapfile -t DEPARR <<<"$DEPS"
"${PIP[@]}" "torch==2.13.0" "${DEPARR[@]}"

CURRENT="compile torch-spline-conv==1.2.2 (about 4 minutes the first time; cached afterwards)"
if [ "${AERO_OPT_NO_SPLINE_CONV:-0}" != 1 ] && ! "$VENV/bin/python" -c "import torch_spline_conv" >/dev/null 2>&1; then
    step "$CURRENT"
    "${PIP[@]}" --no-build-isolation "torch==2.13.0" "torch-spline-conv==1.2.2"
fi

CURRENT="install aero-opt itself (editable)"
step "$CURRENT"
"${PIP[@]}" --no-build-isolation --no-deps -e .

CURRENT="check that the surrogate's SplineConv imports and runs"
"$VENV/bin/python" -c "import torch; from surrogate.spline_conv import SplineConv; c=SplineConv(2,3); print(c)" >/dev/null

echo "$HASH" > "$STAMP"
step "done: .venv/bin/aero-opt is ready"
