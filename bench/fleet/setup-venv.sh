#!/usr/bin/env bash
# The Python side of the fleet benchmarks: a venv (default target/fleet-venv) holding asyncpg
# and bcrypt, the two packages the replaced system used. Idempotent: an existing venv that
# already imports both is reused without touching the network; otherwise it is made (or
# completed) with pip. Prints the venv's python on the last line.
#   bench/fleet/setup-venv.sh [VENV_DIR]
set -euo pipefail
venv="${1:-target/fleet-venv}"
py="$venv/bin/python"
if [[ -x "$py" ]] && "$py" -c 'import asyncpg, bcrypt' 2>/dev/null; then
    echo "==> $venv: asyncpg and bcrypt already installed (nothing to do)" >&2
else
    if [[ ! -x "$py" ]]; then
        echo "==> creating the venv $venv (python3 -m venv)" >&2
        if ! python3 -m venv "$venv" >&2; then
            # Debian's python3 ships venv's pip bootstrap separately.
            rm -rf "$venv"
            if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
                echo "==> python3 -m venv failed: installing Debian's python3-venv (apt-get)" >&2
                export DEBIAN_FRONTEND=noninteractive
                apt-get update -qq >&2
                apt-get install -y -qq python3-venv >&2
                python3 -m venv "$venv" >&2
            else
                echo "setup-venv: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
                exit 1
            fi
        fi
    fi
    echo "==> $venv: installing asyncpg and bcrypt with pip" >&2
    "$py" -m pip install --quiet --disable-pip-version-check asyncpg bcrypt >&2
fi
echo "$py"
