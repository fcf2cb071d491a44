#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL and PgBouncer (transaction mode) in front of it:
# starts both in DIR, exports DIR/env (KEYSEAL_PG_* and KEYSEAL_PGBOUNCER_*) and
# KEYSEAL_REQUIRE_POSTGRES=1 and KEYSEAL_REQUIRE_PGBOUNCER=1, runs the command, and stops both from a trap even when the
# command fails.
#   scripts/pgbouncer-run.sh DIR COMMAND...
set -euo pipefail
dir="${1:?usage: pgbouncer-run.sh DIR COMMAND...}"
shift
here="$(cd "$(dirname "$0")" && pwd)"
trap 'bash "$here/pgbouncer-stop.sh" "$dir"; bash "$here/pg-stop.sh" "$dir"' EXIT
bash "$here/pg-start.sh" "$dir"
bash "$here/pgbouncer-start.sh" "$dir"
# shellcheck disable=SC1091
source "$dir/env"
export KEYSEAL_REQUIRE_POSTGRES=1 KEYSEAL_REQUIRE_PGBOUNCER=1
"$@"
