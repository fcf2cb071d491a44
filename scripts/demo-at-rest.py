#!/usr/bin/env python3
"""`make demo`'s last step: what a keyseal store holds at rest for one user (ciphertext and
hashes only), shortened to one line a row.

Usage: demo-at-rest.py STORE_DB USER_ID

Opens the store read-only and changes nothing.
"""
import sqlite3
import sys
from pathlib import Path


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path, user = sys.argv[1], sys.argv[2]
    # Read-only, so a wrong path is an error rather than a new empty database.
    try:
        db = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        db.execute("SELECT 1 FROM encryption_keys LIMIT 0")
    except sqlite3.Error as e:
        print(f"demo-at-rest: {path}: not a keyseal store: {e}", file=sys.stderr)
        return 1
    row = db.execute(
        "SELECT user_id, hex(encrypted_key), created_at FROM encryption_keys WHERE user_id = ?",
        (user,),
    ).fetchone()
    if row is None:
        print(f"encryption_keys: no row for {user}")
    else:
        print(
            f"encryption_keys: user_id={row[0]} encrypted_key={row[1][:48]}... "
            f"({len(row[1]) // 2} bytes: nonce, wrapped key, tag) created_at={row[2]}"
        )
    cols = [c[1] for c in db.execute("PRAGMA table_info(api_keys)")]
    shown_cols = ("key_id", "user_id", "name", "scopes", "hash", "revoked_at", "rotated_to")
    for r in db.execute("SELECT * FROM api_keys WHERE user_id = ?", (user,)):
        shown = {
            c: (v[:7] + "... (bcrypt, " + str(len(v)) + " chars)" if c == "hash" else v)
            for c, v in zip(cols, r)
        }
        print("api_keys: " + ", ".join(f"{c}={shown[c]}" for c in shown_cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
