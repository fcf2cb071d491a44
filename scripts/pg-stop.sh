#!/usr/bin/env bash
# Stops the throwaway cluster scripts/pg-start.sh started in DIR (fast shutdown), if running.
set -uo pipefail
dir="${1:?usage: pg-stop.sh DIR}"
[[ -d "$dir/data" ]] || exit 0
dir="$(cd "$dir" && pwd)"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -n1)"
[[ -n "$bindir" ]] || exit 0
if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
else
    "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
fi
echo "==> PostgreSQL in $dir stopped"
