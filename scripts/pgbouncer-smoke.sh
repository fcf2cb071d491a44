#!/usr/bin/env bash
# The keyseal command line through PgBouncer in transaction mode: `keys create`, `verify`,
# `revoke` and a data key's encrypt/decrypt with KEYSEAL_DB = the pooler's URL. The schema is
# migrated over the direct URL first (as a deployment behind a transaction pooler does).
# Run by scripts/pgbouncer-run.sh (KEYSEAL_PG_* and KEYSEAL_PGBOUNCER_URL set).
#   scripts/pgbouncer-smoke.sh KEYSEAL_BINARY
set -euo pipefail
KS="${1:?usage: pgbouncer-smoke.sh KEYSEAL_BINARY}"
here="$(cd "$(dirname "$0")" && pwd)"
: "${KEYSEAL_PGBOUNCER_URL:?run through scripts/pgbouncer-run.sh}"
psql="$KEYSEAL_PG_BINDIR/psql"
[[ -x "$psql" ]] || psql="psql"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "pgbouncer-smoke: $*" >&2; exit 1; }

db="smoke_$$"
"$psql" -q "$KEYSEAL_PG_ADMIN_URL" -c "CREATE DATABASE $db"
trap '"$psql" -q "$KEYSEAL_PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; rm -rf "$work"' EXIT
KEYSEAL_DB="${KEYSEAL_PG_ADMIN_URL%/postgres}/$db" "$KS" db migrate >/dev/null
"$psql" -q "${KEYSEAL_PG_ADMIN_URL%/postgres}/$db" \
    -c "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO keyseal_app"

export KEYSEAL_DB="${KEYSEAL_PGBOUNCER_URL%/keyseal}/$db"
"$KS" master-key generate --out "$work/master.key" >/dev/null
created=$("$KS" keys create --user alice --name smoke --json)
key=$(python3 "$here/json-field.py" key <<<"$created")
key_id=$(python3 "$here/json-field.py" key_id <<<"$created")
"$KS" keys verify <<<"$key" | grep -q valid || fail "a new key does not verify through PgBouncer"
"$KS" keys list --user alice | grep -q "$key_id" || fail "the new key is not listed"
"$KS" keys revoke --user alice "$key_id" >/dev/null
verdict=$("$KS" keys verify --json <<<"$key" || true)
grep -q revoked <<<"$verdict" || fail "a revoked key is not refused as revoked: $verdict"
token=$(echo 'smoke-secret' | "$KS" --master-key-file "$work/master.key" encrypt --user alice)
plain=$("$KS" --master-key-file "$work/master.key" decrypt --user alice <<<"$token")
[[ "$plain" == smoke-secret ]] || fail "decrypt through PgBouncer gave something else"
echo "==> CLI through PgBouncer: keys create/verify/list/revoke and encrypt/decrypt passed"
