#!/usr/bin/env bash
# Starts PgBouncer in transaction mode in front of the throwaway cluster scripts/pg-start.sh
# runs in DIR, and appends to DIR/env:
#   KEYSEAL_PGBOUNCER_URL   the app role `keyseal_app` on database keyseal, through the pooler
#   KEYSEAL_PGBOUNCER_PORT  the pooler's port on 127.0.0.1 (any database name is forwarded)
# Installs Debian's pgbouncer when missing (saying so). Idempotent: a pooler already running
# for DIR is reused. Runs as the `postgres` user when started as root (PgBouncer refuses
# root). Clients authenticate with SCRAM against an auth file made from the app role's
# password (mode 0600, owned by the pooler's user). Stop it with scripts/pgbouncer-stop.sh DIR.
set -euo pipefail

dir="${1:?usage: pgbouncer-start.sh DIR (after scripts/pg-start.sh DIR)}"
dir="$(cd "$dir" && pwd)"
[[ -f "$dir/env" ]] || { echo "pgbouncer-start: no $dir/env: run scripts/pg-start.sh $dir first" >&2; exit 1; }
# shellcheck disable=SC1091
source "$dir/env"

if ! command -v pgbouncer >/dev/null && [[ ! -x /usr/sbin/pgbouncer ]]; then
    echo "==> PgBouncer is not installed: installing Debian's pgbouncer (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq pgbouncer >/dev/null
    # The package's own service is not needed: the tests run their own pooler.
else
    echo "==> PgBouncer found"
fi
bouncer="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

run="$dir/pgbouncer"
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

if [[ -f "$run/pgbouncer.pid" ]] && kill -0 "$(cat "$run/pgbouncer.pid")" 2>/dev/null \
    && grep -q KEYSEAL_PGBOUNCER_URL "$dir/env"; then
    echo "==> PgBouncer already running for $dir"
    exit 0
fi

rm -rf "$run"
mkdir -p "$run"
chmod 700 "$run"
# Plain text in the auth file: PgBouncer runs SCRAM with the client and logs in to the
# server with the same password.
printf '"%s" "%s"\n' "$KEYSEAL_PG_APP_ROLE" "$KEYSEAL_PG_APP_PASSWORD" >"$run/userlist.txt"
chmod 600 "$run/userlist.txt"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$run/pgbouncer.ini" <<INI
[databases]
; Any database name goes to the same server: each test makes a database of its own.
* = host=127.0.0.1 port=$KEYSEAL_PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $run/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 20
; Test databases come and go: idle server connections and pools are closed soon.
server_idle_timeout = 5
autodb_idle_timeout = 30
server_login_retry = 1
ignore_startup_parameters = extra_float_digits,options
logfile = $run/pgbouncer.log
pidfile = $run/pgbouncer.pid
INI
if [[ "$(id -u)" == 0 ]]; then
    chown -R postgres: "$run"
fi

echo "==> starting PgBouncer (transaction mode) on 127.0.0.1:$port in front of :$KEYSEAL_PG_PORT"
as_pg "$bouncer" -d -q "$run/pgbouncer.ini"
for _ in $(seq 1 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null && break
    sleep 0.1
done

url="postgres://$KEYSEAL_PG_APP_ROLE:$KEYSEAL_PG_APP_PASSWORD@127.0.0.1:$port/keyseal"
sed -i '/KEYSEAL_PGBOUNCER_/d' "$dir/env"
cat >>"$dir/env" <<ENV
export KEYSEAL_PGBOUNCER_PORT='$port'
export KEYSEAL_PGBOUNCER_URL='$url'
ENV
echo "==> PgBouncer ready: KEYSEAL_PGBOUNCER_URL in $dir/env"
