#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL: starts it in DIR, exports DIR/env and
# KEYSEAL_REQUIRE_POSTGRES=1 (a PostgreSQL test without a server then fails instead of
# skipping), runs the command, and stops the server even when the command fails.
#   scripts/pg-run.sh DIR COMMAND...
set -euo pipefail
dir="${1:?usage: pg-run.sh DIR COMMAND...}"
shift
here="$(cd "$(dirname "$0")" && pwd)"
trap 'bash "$here/pg-stop.sh" "$dir"' EXIT
bash "$here/pg-start.sh" "$dir"
# shellcheck disable=SC1091
source "$dir/env"
export KEYSEAL_REQUIRE_POSTGRES=1
"$@"
