"""The Python module's key store speed (seed 000), for the figures beside keyseal's.

Usage: python3 tests/python/bench_keystore.py [DIR]   (DIR defaults to target/tmp)
Prints existing-user lookups/s and new (durable, Python's default sqlite3 settings) users/s.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_key_encryption as m  # noqa: E402


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "target/tmp"
    os.makedirs(base, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as d:
        db = os.path.join(d, "py.db")
        master = os.urandom(32)
        n_new = 300
        t = time.perf_counter()
        for i in range(n_new):
            m._get_or_create_user_key_sync(f"user-{i}", db, master)
        new_rate = n_new / (time.perf_counter() - t)
        n_get = 3000
        t = time.perf_counter()
        for i in range(n_get):
            m._get_or_create_user_key_sync(f"user-{i % n_new}", db, master)
        get_rate = n_get / (time.perf_counter() - t)
    print(f"python seed 000: existing user {get_rate:,.0f} lookups/s, new users {new_rate:,.0f}/s")


if __name__ == "__main__":
    main()
