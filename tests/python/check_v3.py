"""Reads `v3:` tokens with pyca/cryptography from the documented byte layout alone (no keyseal
code): a second, independent reader of the format.

    token  = "v3:" + base64url_padded(header || nonce[12] || ciphertext || tag[16])
    header = 0x03 || key_version (u32 big-endian, >= 1)
    aad    = header || u32be(number of parts) || for each part: u32be(len) || part

Usage: python3 check_v3.py FILE.json [FILE.json ...]
Each file has "tokens" (key_b64, key_version, context_hex, plaintext_hex, token) that must
decrypt, and may have "rejected" (key_b64, context_hex, token, code) that must be refused as
`code` says. Prints 'N passed, 0 failed' and exits non-zero on any mismatch.
"""
import base64
import binascii
import json
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v3:"


class Malformed(Exception):
    pass


def context_encoding(parts) -> bytes:
    out = len(parts).to_bytes(4, "big")
    for p in parts:
        out += len(p).to_bytes(4, "big") + p
    return out


def strict_b64(text: str) -> bytes:
    # Canonical url-safe padded base64 only: decoding and encoding again must give the text.
    try:
        raw = base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise Malformed(f"not base64: {e}") from e
    if base64.urlsafe_b64encode(raw).decode() != text:
        raise Malformed("not canonical url-safe padded base64")
    return raw


def token_format(token: str) -> int:
    """The key version a v3 token names."""
    if not token.startswith(PREFIX):
        raise Malformed("no v3: prefix")
    raw = strict_b64(token[len(PREFIX):])
    if len(raw) < 5 + 12 + 16:
        raise Malformed("shorter than header, nonce and tag")
    if raw[0] != 0x03:
        raise Malformed("format byte is not 0x03")
    version = int.from_bytes(raw[1:5], "big")
    if version == 0:
        raise Malformed("key version 0")
    return version


def decrypt(token: str, key: bytes, parts) -> bytes:
    token_format(token)
    raw = strict_b64(token[len(PREFIX):])
    header, nonce, sealed = raw[:5], raw[5:17], raw[17:]
    return AESGCM(key).decrypt(nonce, sealed, header + context_encoding(parts))


def main() -> int:
    passed = failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL: {what}", file=sys.stderr)

    for path in sys.argv[1:]:
        data = json.load(open(path, encoding="utf-8"))
        check(len(data["tokens"]) > 0, f"{path}: has tokens")
        for case in data["tokens"]:
            key = base64.urlsafe_b64decode(case["key_b64"])
            parts = [bytes.fromhex(p) for p in case["context_hex"]]
            token = case["token"]
            try:
                check(token_format(token) == case["key_version"], f"{token}: key version")
                plain = decrypt(token, key, parts)
                check(plain.hex() == case["plaintext_hex"], f"{token}: plaintext")
            except (Malformed, InvalidTag) as e:
                check(False, f"{token}: refused: {e!r}")
        for case in data.get("rejected", []):
            key = base64.urlsafe_b64decode(case["key_b64"])
            parts = [bytes.fromhex(p) for p in case["context_hex"]]
            try:
                decrypt(case["token"], key, parts)
                got = "ok"
            except Malformed:
                got = "malformed"
            except InvalidTag:
                got = "authentication"
            check(got == case["code"], f"{case['why']}: {got}, want {case['code']}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
