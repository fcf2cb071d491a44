#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the Python vectors
(tests/vectors/python/python-interop.json). Run from the repository root; `make fuzz-seed`."""
import base64, hashlib, json, os, random, zlib

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
vectors = json.load(open(os.path.join(root, "tests/vectors/python/python-interop.json")))
corpus = os.path.join(root, "fuzz", "corpus")
rng = random.Random(897)


def put(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# decrypt: 0x80 | n, the 32 key bytes, then the token (with and without v2:).
for t in vectors["tokens"] + vectors["rejected_tokens"]:
    if len(t["token"]) > 1000:
        continue  # the fuzzers run with -max_len=1024
    key = base64.urlsafe_b64decode(t["key_b64"])
    put("decrypt", b"\x80" + key + t["token"].encode())
    put("decrypt", b"\x81" + key + t["token"][3:].encode())

# decrypt_v3: the number of context parts, the 32 key bytes, each part as a length byte and
# its bytes, then the token; from the v3 vectors (tests/vectors/v3/v3-vectors.json).
v3 = json.load(open(os.path.join(root, "tests/vectors/v3/v3-vectors.json")))
for t in v3["tokens"] + v3["rejected"]:
    parts = [bytes.fromhex(p) for p in t["context_hex"]]
    if len(t["token"]) > 900 or len(parts) > 7 or any(len(p) > 255 for p in parts):
        continue  # the fuzzers run with -max_len=1024; the input format holds 7 parts of 255
    key = base64.urlsafe_b64decode(t["key_b64"])
    put("decrypt_v3", bytes([len(parts)]) + key + b"".join(bytes([len(p)]) + p for p in parts)
        + t["token"].encode())

# master_key: the values of API_KEY_MASTER_KEY the Python module was checked with.
for m in vectors["master_key_env"]:
    put("master_key", m["value"].encode())
for p in vectors["pool_keys"][:4]:
    put("master_key", p["master_key_b64"].encode())

# api_key_format: byte 0 picks the tag (0 = ks, 3 = mcpkey), then a position and a character,
# then the text; valid keys built here with zlib's CRC-32 and the lookup-hash vectors' keys.
B62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def checksum(crc):
    out = bytearray(6)
    for i in range(5, -1, -1):
        out[i] = B62[crc % 62]
        crc //= 62
    return bytes(out)


for tag_index, tag in [(0, b"ks"), (3, b"mcpkey")]:
    for env in [b"live", b"test"]:
        body = bytes(rng.choice(B62) for _ in range(55))
        head = tag + b"_" + env + b"_" + body
        key = head + checksum(zlib.crc32(head))
        put("api_key_format", bytes([tag_index, rng.randrange(256), rng.randrange(256)]) + key)
for h in vectors["api_key_hashes"]:
    put("api_key_format", b"\x03\x00\x00" + h["api_key"].encode())

# The others take structured input through `arbitrary`: random bytes are enough to start.
for target, n, size in [("migrate_value", 16, 200), ("api_keys_ops", 12, 300), ("keystore_ops", 12, 200)]:
    for _ in range(n):
        put(target, bytes(rng.randrange(256) for _ in range(rng.randrange(16, size))))
