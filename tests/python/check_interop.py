"""Checks keyseal's output with Python's `cryptography`, exactly as the Python module reads it.

Usage: python3 check_interop.py EXPORT.json   (made by `cargo run --example interop_export`)
Prints 'N passed, 0 failed' and exits non-zero on any mismatch.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENCRYPTED_PREFIX = "v2:"


def decrypt(ciphertext: str, key: bytes) -> str:
    # The seed module's decrypt, verbatim in behaviour.
    if ciphertext.startswith(ENCRYPTED_PREFIX):
        ciphertext = ciphertext[len(ENCRYPTED_PREFIX):]
    combined = base64.urlsafe_b64decode(ciphertext)
    if len(combined) < 28:
        raise ValueError("Encrypted data too short")
    return AESGCM(key).decrypt(combined[:12], combined[12:], None).decode("utf-8")


def main() -> int:
    data = json.load(open(sys.argv[1], encoding="utf-8"))
    passed = failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL: {what}", file=sys.stderr)

    for case in data["tokens"]:
        key = base64.urlsafe_b64decode(case["key_b64"])
        token = case["token"]
        check(token.startswith(ENCRYPTED_PREFIX), "token has the v2: prefix")
        check(base64.urlsafe_b64encode(base64.urlsafe_b64decode(token[3:])).decode() == token[3:],
              "token is canonical padded url-safe base64")
        check(decrypt(token, key) == case["plaintext"], "token decrypts in Python")
    for case in data["pool_keys"]:
        master = base64.urlsafe_b64decode(case["master_key_b64"])
        want = hashlib.pbkdf2_hmac("sha256", master, b"stargazer:api_key_pool", 100000, 32)
        check(base64.urlsafe_b64encode(want).decode() == case["pool_key_b64"], "pool key")
    for case in data["api_key_hashes"]:
        check(hashlib.sha256(case["api_key"].encode()).hexdigest() == case["sha256_hex"],
              "lookup hash")
    check(len(data["tokens"]) >= 7 and len(data["pool_keys"]) == 3, "export is complete")
    print(f"python interop: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
