"""Writes tests/vectors/v3/v3-vectors.json: `v3:` tokens made from the documented layout alone,
with pyca/cryptography, so that keyseal's Rust and JavaScript readers are checked against a
second implementation. Deterministic (seeded keys and nonces): running it again rewrites the
same file.

    token  = "v3:" + urlsafe_b64encode(header + nonce[12] + ciphertext + tag[16])
    header = b"\\x03" + key_version.to_bytes(4, "big")          (version >= 1)
    aad    = header + context encoding
    context encoding = len(parts).to_bytes(4, "big")
                       + for each part: len(part).to_bytes(4, "big") + part

Usage: python3 tests/python/make_v3_vectors.py [OUT.json]
"""
import base64
import json
import random
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEED = 3003
U32_MAX = 2**32 - 1


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def context_encoding(parts) -> bytes:
    out = len(parts).to_bytes(4, "big")
    for p in parts:
        out += len(p).to_bytes(4, "big") + p
    return out


def header(version: int, fmt: int = 3) -> bytes:
    return bytes([fmt]) + version.to_bytes(4, "big")


def seal(key: bytes, nonce: bytes, version: int, parts, plaintext: bytes, fmt: int = 3) -> str:
    h = header(version, fmt)
    sealed = AESGCM(key).encrypt(nonce, plaintext, h + context_encoding(parts))
    return "v3:" + b64(h + nonce + sealed)


def main() -> int:
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/v3/v3-vectors.json"
    rng = random.Random(SEED)
    rand = lambda n: bytes(rng.getrandbits(8) for _ in range(n))  # noqa: E731

    plaintexts = [
        b"",
        b"a",
        b"sk-live-" + b"0123456789abcdef" * 3 + b"01234567",  # a 64-byte secret
        "clé 🔑 ключ".encode(),
        bytes([0, 0xFF, 0xFE, 0x80, 0xC0]),  # not UTF-8: decrypt_bytes only
        bytes(rng.getrandbits(8) for _ in range(1000)),
    ]
    contexts = [
        [],
        [b""],
        [b"a:b", b"c"],
        [b"a", b"b:c"],
        [b"users", b"42", b"api_token"],
        [b"\x00\xff", b"", "ü".encode()],
        [b"x" * 300],  # longer than keyseal's on-stack AAD buffer
    ]
    versions = [1, 2, 255, 256, 65536, U32_MAX]

    tokens = []
    for i, pt in enumerate(plaintexts):
        for j, parts in enumerate(contexts):
            if (i + j) % 2 and pt:  # a spread of pairs, not every one
                continue
            version = versions[(i + j) % len(versions)]
            key = rand(32)
            nonce = rand(12)
            try:
                text = pt.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            tokens.append({
                "key_b64": b64(key),
                "key_version": version,
                "context_hex": [p.hex() for p in parts],
                "plaintext": text,
                "plaintext_hex": pt.hex(),
                "aad_hex": (header(version) + context_encoding(parts)).hex(),
                "token": seal(key, nonce, version, parts, pt),
            })

    key = rand(32)
    nonce = rand(12)
    row = [b"users", b"42", b"api_token"]
    good = seal(key, nonce, 7, row, b"sk-live-moved")
    raw = base64.urlsafe_b64decode(good[3:])

    def edited(at: int, value: int) -> str:
        b = bytearray(raw)
        b[at] = value
        return "v3:" + b64(bytes(b))

    rejected = []

    def reject(why, code, token, parts=row, k=key):
        rejected.append({"why": why, "code": code, "key_b64": b64(k),
                         "context_hex": [p.hex() for p in parts], "token": token})

    # The token itself, for a reader to check it is right before the edits are tried.
    tokens.append({"key_b64": b64(key), "key_version": 7, "context_hex": [p.hex() for p in row],
                   "plaintext": "sk-live-moved", "plaintext_hex": b"sk-live-moved".hex(),
                   "aad_hex": (header(7) + context_encoding(row)).hex(), "token": good})
    reject("key version edited 7 -> 8 in the header", "authentication", edited(4, 8))
    reject("key version edited 7 -> 6 in the header", "authentication", edited(4, 6))
    reject("moved to another row", "authentication", good, [b"users", b"43", b"api_token"])
    reject("moved to another column", "authentication", good, [b"users", b"42", b"refresh"])
    reject("given no context", "authentication", good, [])
    reject("context parts joined differently", "authentication", good,
           [b"users", b"42api_token"])
    reject("another key (another version's)", "authentication", good, row, rand(32))
    reject("a ciphertext bit flipped", "authentication", edited(17, raw[17] ^ 1))
    reject("a tag bit flipped", "authentication", edited(len(raw) - 1, raw[-1] ^ 0x80))
    reject("a nonce bit flipped", "authentication", edited(5, raw[5] ^ 1))
    reject("key version 0", "malformed", edited(4, 0))
    reject("format byte 0x02", "malformed", edited(0, 2))
    reject("format byte 0x04", "malformed", edited(0, 4))
    reject("truncated to 32 bytes", "malformed", "v3:" + b64(raw[:32]))
    reject("only a header", "malformed", "v3:" + b64(raw[:5]))
    reject("empty body", "malformed", "v3:")
    reject("prefix missing", "malformed", good[3:])
    reject("prefix v4:", "malformed", "v4:" + good[3:])
    reject("padding removed", "malformed", good.rstrip("="))
    reject("white space inside", "malformed", good[:10] + " " + good[10:])
    reject("standard alphabet", "malformed",
           "v3:" + base64.standard_b64encode(raw).decode()
           if b"+" in base64.standard_b64encode(raw) or b"/" in base64.standard_b64encode(raw)
           else "v3:" + b64(raw) + "+")
    ab_c = seal(key, rand(12), 1, [b"a:b", b"c"], b"s")
    reject("(\"a:b\",\"c\") read as (\"a\",\"b:c\")", "authentication", ab_c, [b"a", b"b:c"])
    none = seal(key, rand(12), 1, [], b"s")
    reject("no context read as one empty part", "authentication", none, [b""])

    doc = {
        "made_by": "tests/python/make_v3_vectors.py (pyca/cryptography, from the documented layout)",
        "seed": SEED,
        "layout": "v3: + base64url_padded(0x03 || u32be(version) || nonce[12] || ct || tag[16]); "
                  "aad = header || u32be(n) || (u32be(len) || part)*",
        "tokens": tokens,
        "rejected": rejected,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{out}: {len(tokens)} tokens, {len(rejected)} rejected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
