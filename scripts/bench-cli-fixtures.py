#!/usr/bin/env python3
"""Test data for `make bench-cli` (scripts/bench-cli.sh), written with Python's sqlite3.

Usage:
  bench-cli-fixtures.py credentials DB ROWS USERS
      a new table credentials(id, owner, api_key) in DB: ROWS rows of 64-byte plaintext values
      spread over USERS users (what `keyseal migrate` encrypts)
  bench-cli-fixtures.py users DB ROWS
      a new table t(id, owner, v) in DB: one user per row, so that migrating it creates ROWS
      users' data keys in the store
  bench-cli-fixtures.py clone-keys STORE USER COUNT
      COUNT rows added to STORE's api_keys, each a copy of USER's key with its own random id:
      a store of that size without hashing COUNT keys with bcrypt

The first two refuse a DB that already has the table (run them on a new file).
"""
import random
import sqlite3
import string
import sys


def credentials(path: str, rows: int, users: int) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE credentials(id INTEGER PRIMARY KEY, owner TEXT, api_key TEXT)")
    db.executemany(
        "INSERT INTO credentials VALUES (?, ?, ?)",
        ((i, f"user-{i % users}", f"sk-live-{i:010d}-" + "x" * 45) for i in range(1, rows + 1)),
    )
    db.commit()


def users(path: str, rows: int) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, owner TEXT, v TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?, 'x')", ((i, f"u{i}") for i in range(rows)))
    db.commit()


def clone_keys(store: str, user: str, count: int) -> None:
    db = sqlite3.connect(store)
    row = db.execute("SELECT * FROM api_keys WHERE user_id = ?", (user,)).fetchone()
    if row is None:
        sys.exit(f"bench-cli-fixtures: {store} has no API key of user {user}")
    cols = [c[1] for c in db.execute("PRAGMA table_info(api_keys)")]
    alphabet = string.ascii_letters + string.digits
    rows = []
    for i in range(count):
        r = dict(zip(cols, row))
        r["row_id"] = None
        r["key_id"] = r["lookup"] = "".join(random.choices(alphabet, k=12))
        r["user_id"] = f"u{i % 20000}"
        rows.append(tuple(r[c] for c in cols))
    marks = ",".join("?" * len(cols))
    db.executemany(f"INSERT OR IGNORE INTO api_keys VALUES ({marks})", rows)
    db.commit()
    print(
        "api_keys rows:", db.execute("SELECT count(*) FROM api_keys").fetchone()[0],
        "users:", db.execute("SELECT count(*) FROM encryption_keys").fetchone()[0],
    )


def main(argv: list) -> None:
    commands = {
        "credentials": (credentials, (str, int, int)),
        "users": (users, (str, int)),
        "clone-keys": (clone_keys, (str, str, int)),
    }
    if len(argv) < 1 or argv[0] not in commands:
        sys.exit(__doc__.strip())
    run, types = commands[argv[0]]
    if len(argv) - 1 != len(types):
        sys.exit(__doc__.strip())
    run(*(t(a) for t, a in zip(types, argv[1:])))


if __name__ == "__main__":
    main(sys.argv[1:])
