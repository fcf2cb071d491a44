#!/usr/bin/env bash
# `make bench-cli`: wall time of single keyseal commands on a store of 100 000 API keys and
# 100 000 users, and of migrating 100 000 rows (64-byte values, 1 000 users). Figures go in
# BENCHMARKS.md. Uses target/release/keyseal (make cli builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
KS="$PWD/target/release/keyseal"
W=$(mktemp -d /tmp/keyseal-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
export KEYSEAL_DB="$W/store.db"
"$KS" master-key generate --out "$W/master.key" >/dev/null
export API_KEY_MASTER_KEY
API_KEY_MASTER_KEY=$(cat "$W/master.key")

echo "==> migrate: 100 000 rows, 64-byte values, 1 000 users"
python3 - "$W/app.db" 1000 <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); users = int(sys.argv[2])
db.execute("CREATE TABLE credentials(id INTEGER PRIMARY KEY, owner TEXT, api_key TEXT)")
db.executemany("INSERT INTO credentials VALUES (?, ?, ?)",
               ((i, f"user-{i % users}", f"sk-live-{i:010d}-" + "x" * 45) for i in range(1, 100001)))
db.commit()
PY
start=$(date +%s.%N)
"$KS" migrate --data-db "$W/app.db" --table credentials --column api_key --id-column id --user-column owner --json
end=$(date +%s.%N)
printf 'migrate wall time: %.2f s\n' "$(echo "$end - $start" | bc)"

echo "==> filling the store: 100 000 users (migrate with one user per row) and 100 000 API keys"
python3 - "$W/users.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, owner TEXT, v TEXT)")
db.executemany("INSERT INTO t VALUES (?, ?, 'x')", ((i, f"u{i}") for i in range(100000)))
db.commit()
PY
"$KS" migrate --data-db "$W/users.db" --table t --column v --id-column id --user-column owner --batch 5000 --json >/dev/null
# One real API key per scheme, then 99 999 rows cloned from it with their own ids: the store's
# size is what matters here, and making 100 000 bcrypt hashes would take hours at cost 12.
for cost in 4 12; do
  KEYSEAL_BCRYPT_COST=$cost "$KS" keys create --user "bench-$cost" --name bench --json > "$W/key-$cost.json"
done
python3 - "$KEYSEAL_DB" <<'PY'
import random, sqlite3, string, sys
db = sqlite3.connect(sys.argv[1])
row = db.execute("SELECT * FROM api_keys WHERE user_id = 'bench-4'").fetchone()
cols = [c[1] for c in db.execute("PRAGMA table_info(api_keys)")]
alphabet = string.ascii_letters + string.digits
rows = []
for i in range(99998):
    r = dict(zip(cols, row)); r["row_id"] = None
    r["key_id"] = r["lookup"] = "".join(random.choices(alphabet, k=12))
    r["user_id"] = f"u{i % 20000}"
    rows.append(tuple(r[c] for c in cols))
db.executemany(f"INSERT OR IGNORE INTO api_keys VALUES ({','.join('?' * len(cols))})", rows)
db.commit()
print("api_keys rows:", db.execute("SELECT count(*) FROM api_keys").fetchone()[0],
      "users:", db.execute("SELECT count(*) FROM encryption_keys").fetchone()[0])
PY
KEY4=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$W/key-4.json")
KEY12=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$W/key-12.json")
ID4=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_id"])' "$W/key-4.json")
TOKEN=$(echo secret | "$KS" encrypt --user u42)
POOLTOKEN=$(echo secret | "$KS" encrypt --pool)

echo "==> single commands (median of 15 runs, wall time including process start)"
python3 - "$KS" "$KEY4" "$KEY12" "$ID4" "$TOKEN" "$POOLTOKEN" <<'PY'
import statistics, subprocess, sys, time
ks, key4, key12, id4, token, pooltoken = sys.argv[1:]
cases = [
    ("hash", ["hash"], "mhu_abc"),
    ("encrypt --user (existing user)", ["encrypt", "--user", "u42"], "sk-secret"),
    ("decrypt --user", ["decrypt", "--user", "u42"], token),
    ("encrypt --user (new user)", None, "sk-secret"),
    ("encrypt --pool (PBKDF2 100k)", ["encrypt", "--pool"], "sk-secret"),
    ("decrypt --pool", ["decrypt", "--pool"], pooltoken),
    ("keys verify, cost 4", ["keys", "verify"], key4),
    ("keys verify, cost 12", ["keys", "verify"], key12),
    ("keys verify, malformed", ["keys", "verify"], "garbage"),
    ("keys list --user", ["keys", "list", "--user", "u7"], ""),
    ("keys create, cost 4", None, ""),
    ("keys create, cost 12", None, ""),
    ("master-key generate", ["master-key", "generate"], ""),
]
counter = [0]
def args_for(name):
    counter[0] += 1
    if name.startswith("encrypt --user (new"):
        return ["encrypt", "--user", f"new-{counter[0]}"]
    if name.startswith("keys create"):
        cost = name.split()[-1]
        return ["--bcrypt-cost", cost, "keys", "create", "--user", f"c-{counter[0]}", "--name", "n"]
print(f"{'command':34} {'median':>9} {'max':>9}")
for name, args, stdin in cases:
    times = []
    for _ in range(15):
        a = args or args_for(name)
        t = time.perf_counter()
        p = subprocess.run([ks, *a], input=stdin.encode(), capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
        if p.returncode != (1 if "malformed" in name else 0):
            sys.exit(f"{name}: exit {p.returncode}: {p.stderr.decode()}")
    print(f"{name:34} {statistics.median(times):7.1f}ms {max(times):7.1f}ms")
PY
