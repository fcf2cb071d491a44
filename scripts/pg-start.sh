#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for keyseal's tests and benchmarks in DIR (under
# target/), and writes DIR/env with the variables the tests read:
#   KEYSEAL_PG_ADMIN_URL  superuser over TCP (creates a database per test)
#   KEYSEAL_PG_URL        the app role `keyseal_app` (rows only, no DDL) on database keyseal
#   KEYSEAL_PG_HOST/PORT  127.0.0.1 and the port; KEYSEAL_PG_SOCKET the unix socket folder
#   KEYSEAL_PG_CA         the CA certificate that signed the server's (for verify-full)
#   KEYSEAL_PG_DIR        DIR
# Installs Debian's postgresql when missing (saying so). Idempotent: a cluster already
# running in DIR is reused. Stop it with scripts/pg-stop.sh DIR.
set -euo pipefail

dir="${1:?usage: pg-start.sh DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

find_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if ! bindir="$(find_bindir)"; then
    echo "==> PostgreSQL is not installed: installing Debian's postgresql (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    bindir="$(find_bindir)" || { echo "pg-start: postgresql installed but no initdb found" >&2; exit 1; }
else
    echo "==> PostgreSQL found in $bindir"
fi
command -v openssl >/dev/null || {
    echo "==> openssl missing: installing it (apt-get)"
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
}

# initdb refuses root: the cluster belongs to the `postgres` user the package creates.
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

data="$dir/data"
if [[ -f "$dir/env" && -f "$data/postmaster.pid" ]] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "==> PostgreSQL already running in $dir"
    exit 0
fi

rm -rf "$data" "$dir/sock" "$dir/env"
mkdir -p "$data" "$dir/sock"
if [[ "$(id -u)" == 0 ]]; then
    chown postgres: "$dir" "$data" "$dir/sock"
    # The server must reach DIR through every parent folder.
    p="$dir"
    while [[ "$p" != / ]]; do
        chmod o+x "$p" 2>/dev/null || true
        p="$(dirname "$p")"
    done
fi

superpass="$(openssl rand -hex 16)"
apppass="$(openssl rand -hex 16)"
pwfile="$dir/superuser.pw"
echo "$superpass" >"$pwfile"
chmod 600 "$pwfile"
[[ "$(id -u)" == 0 ]] && chown postgres: "$pwfile"

echo "==> initdb $data"
as_pg "$bindir/initdb" -D "$data" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile" >"$dir/initdb.log"

# A CA and a server certificate it signs, for localhost and 127.0.0.1 (verify-full checks
# the name; a test connects as another name to see it refused).
(
    cd "$data"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=keyseal test CA" \
        -keyout ca.key -out ca.crt >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout server.key -out server.csr >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile san.ext -out server.crt >/dev/null 2>&1
    chmod 600 server.key ca.key
)
[[ "$(id -u)" == 0 ]] && chown postgres: "$data"/ca.* "$data"/server.* "$data"/san.ext
cp "$data/ca.crt" "$dir/ca.crt"
chmod 644 "$dir/ca.crt"

cat >>"$data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
max_connections = 300
fsync = on
synchronous_commit = on
CONF
# TCP: TLS or not, password (scram). Socket: trust (the folder is the server's).
cat >"$data/pg_hba.conf" <<HBA
local all all trust
hostssl all all 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
HBA

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
echo "==> starting PostgreSQL on 127.0.0.1:$port (socket folder $dir/sock)"
as_pg "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock" start >/dev/null

psql="$bindir/psql"
[[ -x "$psql" ]] || psql="psql"
as_pg "$psql" -q -h "$dir/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE keyseal_app LOGIN PASSWORD '$apppass';
CREATE DATABASE keyseal;
SQL

cat >"$dir/env" <<ENV
export KEYSEAL_PG_DIR='$dir'
export KEYSEAL_PG_HOST='127.0.0.1'
export KEYSEAL_PG_PORT='$port'
export KEYSEAL_PG_SOCKET='$dir/sock'
export KEYSEAL_PG_CA='$dir/ca.crt'
export KEYSEAL_PG_ADMIN_URL='postgres://postgres:$superpass@127.0.0.1:$port/postgres'
export KEYSEAL_PG_ADMIN_PASSWORD='$superpass'
export KEYSEAL_PG_APP_ROLE='keyseal_app'
export KEYSEAL_PG_APP_PASSWORD='$apppass'
export KEYSEAL_PG_URL='postgres://keyseal_app:$apppass@127.0.0.1:$port/keyseal'
export KEYSEAL_PG_BINDIR='$bindir'
ENV
chmod 600 "$dir/env"
echo "==> PostgreSQL ready: source $dir/env"
