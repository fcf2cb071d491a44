"""One step of the Python module (seed 000) on a key store shared with keyseal, for the
master keyring interop test.

Usage: keyring_step.py DB MASTER_B64 USER [USER ...]

For each USER, gets (or creates, as Python does) the user's data key with the Python module
under the given master key, and prints {"keys": {user: hex}, "tokens": {user: v2 token of
"secret of <user>"}, "pool_hex": hex} on stdout. Exits non-zero with a message when a key does
not unwrap (the module raises).
"""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_key_encryption as m  # noqa: E402


def main() -> int:
    db, master_b64, users = sys.argv[1], sys.argv[2], sys.argv[3:]
    master = base64.urlsafe_b64decode(master_b64)
    keys, tokens = {}, {}
    for user in users:
        try:
            key = m._get_or_create_user_key_sync(user, db, master)
        except Exception as e:  # the module raises InvalidTag and others
            print(f"user {user!r}: {type(e).__name__}", file=sys.stderr)
            return 1
        keys[user] = key.hex()
        tokens[user] = m.encrypt(f"secret of {user}", key)
    print(json.dumps({"keys": keys, "tokens": tokens, "pool_hex": m.get_pool_key(master).hex()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
