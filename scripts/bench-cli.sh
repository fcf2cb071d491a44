#!/usr/bin/env bash
# `make bench-cli`: wall time of single keyseal commands on a store of 100 000 API keys and
# 100 000 users, and of migrating 100 000 rows (64-byte values, 1 000 users). Figures go in
# BENCHMARKS.md. Uses target/release/keyseal (make cli builds it). Works in a new temporary
# folder, removed at the end; KEYSEAL_BENCH_ROWS=N runs it at another size (a quick check).
set -euo pipefail
cd "$(dirname "$0")/.."
KS="$PWD/target/release/keyseal"
SCRIPTS="$PWD/scripts"
ROWS="${KEYSEAL_BENCH_ROWS:-100000}"
W=$(mktemp -d /tmp/keyseal-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
export KEYSEAL_DB="$W/store.db"
"$KS" master-key generate --out "$W/master.key" >/dev/null
export API_KEY_MASTER_KEY
API_KEY_MASTER_KEY=$(cat "$W/master.key")

echo "==> migrate: $ROWS rows, 64-byte values, 1 000 users"
python3 "$SCRIPTS/bench-cli-fixtures.py" credentials "$W/app.db" "$ROWS" 1000
start=$(date +%s.%N)
"$KS" migrate --data-db "$W/app.db" --table credentials --column api_key --id-column id --user-column owner --json
end=$(date +%s.%N)
printf 'migrate wall time: %.2f s\n' "$(echo "$end - $start" | bc)"

echo "==> filling the store: $ROWS users (migrate with one user per row) and $ROWS API keys"
python3 "$SCRIPTS/bench-cli-fixtures.py" users "$W/users.db" "$ROWS"
"$KS" migrate --data-db "$W/users.db" --table t --column v --id-column id --user-column owner --batch 5000 --json >/dev/null
# One real API key per scheme, then the rest cloned from it with their own ids: the store's
# size is what matters here, and making 100 000 bcrypt hashes would take hours at cost 12.
for cost in 4 12; do
  KEYSEAL_BCRYPT_COST=$cost "$KS" keys create --user "bench-$cost" --name bench --json > "$W/key-$cost.json"
done
python3 "$SCRIPTS/bench-cli-fixtures.py" clone-keys "$KEYSEAL_DB" bench-4 "$((ROWS - 2))"
echo secret | "$KS" encrypt --user u42 > "$W/token"
echo secret | "$KS" encrypt --pool > "$W/pooltoken"

echo "==> single commands (median of 15 runs, wall time including process start)"
python3 "$SCRIPTS/bench-cli-time.py" "$KS" "$W"
