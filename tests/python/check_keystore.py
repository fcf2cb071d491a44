"""Checks a key store written by keyseal with the Python module (seed 000).

Usage: check_keystore.py DB EXPECTED_JSON

EXPECTED_JSON holds {"master_key_b64": ..., "user_keys_hex": {user_id: hex, ...},
"tokens": {user_id: "v2:..."}}. For every user, the Python module must return the same data
key from DB and decrypt the user's token (made by keyseal) to "secret of <user_id>". Then the
Python module creates one new user in the same (WAL) file, and the script prints
{"python_user": id, "key_hex": hex, "token": ...} on stdout for the Rust side to check.
Exits non-zero with a message on any mismatch.
"""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_key_encryption as m  # noqa: E402


def main() -> int:
    db, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    master = base64.urlsafe_b64decode(expected["master_key_b64"])
    failures = []
    for user_id, key_hex in expected["user_keys_hex"].items():
        got = m._get_or_create_user_key_sync(user_id, db, master)
        if got.hex() != key_hex:
            failures.append(f"{user_id!r}: python read {got.hex()}, keyseal made {key_hex}")
            continue
        token = expected["tokens"][user_id]
        plain = m.decrypt(token, got)
        if plain != f"secret of {user_id}":
            failures.append(f"{user_id!r}: token decrypted to {plain!r}")
    if failures:
        for line in failures:
            print("MISMATCH", line, file=sys.stderr)
        return 1
    new_user = "created-by-python"
    key = m._get_or_create_user_key_sync(new_user, db, master)
    print(json.dumps({
        "python_user": new_user,
        "key_hex": key.hex(),
        "token": m.encrypt(f"secret of {new_user}", key),
    }))
    print(f"checked {len(expected['user_keys_hex'])} keyseal users with Python", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
