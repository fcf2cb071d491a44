#!/usr/bin/env bash
# Stops the PgBouncer scripts/pgbouncer-start.sh started for DIR, if running.
set -uo pipefail
dir="${1:?usage: pgbouncer-stop.sh DIR}"
pidfile="$dir/pgbouncer/pgbouncer.pid"
[[ -f "$pidfile" ]] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "==> PgBouncer for $dir stopped"
fi
