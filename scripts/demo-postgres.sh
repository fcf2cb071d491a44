#!/usr/bin/env bash
# `make demo-postgres`: the README's demo session on a throwaway PostgreSQL, run by
# scripts/pg-run.sh (which starts the server in target/pg-demo and stops it afterwards).
# Shows the set-up a deployment does: `keyseal db migrate` with a role that may create
# tables, the grants for the servers' role (rows only), a URL without password (the password
# from PGPASSWORD), the refusal of a password on the command line, the session itself, and
# `keyseal copy` of the whole store into a SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

step "Build the keyseal command line (cargo build --release --features cli,postgres)"
cargo build --quiet --release --features cli,postgres --bin keyseal
KS="$PWD/target/release/keyseal"
SCRIPTS="$PWD/scripts"
psql="$KEYSEAL_PG_BINDIR/psql"
[[ -x "$psql" ]] || psql="psql"
host="$KEYSEAL_PG_HOST:$KEYSEAL_PG_PORT"

rm -rf demo-postgres
mkdir -p demo-postgres
cd demo-postgres
"$KS" master-key generate --out master.key >/dev/null
M=(--master-key-file master.key)

step "Create the tables with a role that may (the superuser here), URL in KEYSEAL_DB"
show "KEYSEAL_DB='postgres://postgres:***@$host/keyseal?sslmode=require' keyseal db migrate"
KEYSEAL_DB="postgres://postgres:$KEYSEAL_PG_ADMIN_PASSWORD@$host/keyseal?sslmode=require" \
    "$KS" db migrate

step "Let the servers' role read and write rows, nothing more"
grants="GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO keyseal_app;"
show "psql -c \"$grants\""
PGPASSWORD="$KEYSEAL_PG_ADMIN_PASSWORD" "$psql" -q \
    "postgres://postgres@$host/keyseal?sslmode=require" -c "$grants"

step "A password on the command line is refused (others can read argv)"
show "keyseal --db 'postgres://keyseal_app:hunter2@$host/keyseal' keys list --user alice"
set +e
"$KS" --db "postgres://keyseal_app:hunter2@$host/keyseal" keys list --user alice
echo "(exit code $?)"
set -e

step "The servers' role: the URL without password, the password from PGPASSWORD"
export KEYSEAL_DB="postgres://keyseal_app@$host/keyseal?sslmode=require"
export PGPASSWORD="$KEYSEAL_PG_APP_PASSWORD"
show "export KEYSEAL_DB='$KEYSEAL_DB' PGPASSWORD=***"

# shellcheck source=scripts/demo-session.sh
source "$SCRIPTS/demo-session.sh"

step "Copy the whole store into a SQLite file, verified; the key still verifies there"
show "keyseal copy --to copy.db"
"$KS" "${M[@]}" copy --to copy.db
show "keyseal --db copy.db keys verify <<< new key"
"$KS" --db copy.db keys verify <<<"$NEW_KEY"

step "What is at rest in PostgreSQL: ciphertext and hashes only"
show "psql -c 'SELECT user_id, length(encrypted_key) FROM encryption_keys; SELECT key_id, left(hash, 7) …'"
"$psql" "$KEYSEAL_DB" -c "SELECT user_id, length(encrypted_key) AS wrapped_bytes, created_at FROM encryption_keys" \
    -c "SELECT key_id, user_id, left(hash, 7) || '…' AS bcrypt_hash, revoked_at IS NOT NULL AS revoked FROM api_keys"
echo
echo "Done. The server stops now; the SQLite copy stays in demo-postgres/copy.db."
