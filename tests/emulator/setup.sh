#!/usr/bin/env bash
# Creates or refreshes the Python virtualenv of Ferry's AWS emulator at
# <repo>/.cache/venv from tests/emulator/requirements.txt.
#
# The venv is rebuilt only when the requirements file's hash differs from the
# stamp written into the venv by the last successful install, so a warm run is
# a hash and a file comparison. Works from any working directory.
#
# Usage: tests/emulator/setup.sh        (prints the venv's python path at the end)
# Env:   FERRY_PYTHON   interpreter to build the venv with (default: python3.11,
#                       else python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.cache/venv"
requirements="$here/requirements.txt"
stamp="$venv/.ferry-requirements.sha256"

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

python="${FERRY_PYTHON:-}"
if [[ -z "$python" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then
        python=python3.11
    else
        python=python3
    fi
fi

echo "emulator venv: installing $requirements into $venv" >&2
mkdir -p "$repo/.cache"
rm -f "$stamp"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --requirement "$requirements" >&2
echo "$want" >"$stamp"
echo "$venv/bin/python"
