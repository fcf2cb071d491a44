"""What the Python module makes of base64 text: the oracle for keyseal's base64 property tests.

Reads one JSON object per line on standard input and writes one answer per line:
- {"kind": "decode", "text": T} -> {"bytes": standard base64 of urlsafe_b64decode(T),
  "len": its length} or {"error": "..."} when Python raises;
- {"kind": "token", "text": T, "key": K} -> {"plaintext": ...} or {"error": CODE}, the seed
  module's `decrypt(T, urlsafe_b64decode(K))`, with keyseal's error codes;
- {"kind": "master", "text": T} -> {"key": standard base64} or {"key": null}, the seed
  module's `resolve_master_key` with API_KEY_MASTER_KEY = T.
"""
import base64
import binascii
import json
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENCRYPTED_PREFIX = "v2:"


def decrypt(ciphertext: str, key: bytes) -> str:
    # The seed module's decrypt, verbatim in behaviour.
    if ciphertext.startswith(ENCRYPTED_PREFIX):
        ciphertext = ciphertext[len(ENCRYPTED_PREFIX):]
    combined = base64.urlsafe_b64decode(ciphertext)
    if len(combined) < 28:
        raise ValueError("Encrypted data too short")
    nonce = combined[:12]
    ct = combined[12:]
    return AESGCM(key).decrypt(nonce, ct, None).decode("utf-8")


def resolve_master_key(value: str):
    # The seed module's resolve_master_key, with the variable's value passed in.
    key_b64 = value.strip()
    if not key_b64:
        return None
    try:
        key = base64.urlsafe_b64decode(key_b64)
        if len(key) == 32:
            return key
        return None
    except Exception:  # noqa: BLE001 - the seed module catches everything here too
        return None


def answer(case: dict) -> dict:
    text = case["text"]
    if case["kind"] == "decode":
        try:
            decoded = base64.urlsafe_b64decode(text)
            return {"bytes": base64.b64encode(decoded).decode(), "len": len(decoded)}
        except (binascii.Error, ValueError) as err:
            return {"error": type(err).__name__}
    if case["kind"] == "token":
        key = base64.urlsafe_b64decode(case["key"])
        try:
            return {"plaintext": decrypt(text, key)}
        except UnicodeDecodeError:
            return {"error": "not_utf8"}
        except InvalidTag:
            return {"error": "authentication"}
        except (binascii.Error, ValueError):
            return {"error": "malformed"}
    if case["kind"] == "master":
        key = resolve_master_key(text)
        return {"key": None if key is None else base64.b64encode(key).decode()}
    raise SystemExit(f"unknown kind {case['kind']!r}")


def main() -> None:
    out = sys.stdout
    for line in sys.stdin:
        out.write(json.dumps(answer(json.loads(line))) + "\n")


if __name__ == "__main__":
    main()
