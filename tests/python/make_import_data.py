"""Test data for `keyseal keys import`, made the way each system being replaced makes it.

Each system's own key generator and `bcrypt.hashpw` (at cost 4, for speed: the systems use
their default cost 12, and the cost is part of each hash), and its own storage:

- `jsonl DIR`: keys of the SQLite `user_api_keys` manager (`mhu_` + `secrets.token_urlsafe(32)`,
  the 8 characters after `mhu_` kept as `key_prefix`), exported as keyseal's JSONL;
- `keycloak DIR`: users of the Keycloak system (`mcpkey_live_` + `secrets.token_urlsafe(32)`,
  key ids `secrets.token_hex(8)`, attributes as arrays of strings, as the admin API gives them);
- `egregore URL DIR`: the egregore relay's `api_clients` table, created with its exact DDL
  on the PostgreSQL database at URL and filled by its own statements (through asyncpg, its
  driver) with `eg_` + `secrets.token_hex(20)` keys;
- `keycloak-many DIR N`: N Keycloak users of one key each, used one second apart;
- `change KIND DIR [URL]`: the upstream changes a cutover sees, made the system's way: one key
  disabled, one key's expiry moved into the past, one key deleted (and, for egregore, one key
  regenerated).

Every command writes DIR/keys.json: each key in clear with its state upstream, which `keys
verify` must answer after an import (`valid`, `expired`, `disabled` or `unknown`), and whether
the system stored a lookup beside its hash. The keys exist only in these test files.
"""

import asyncio
import json
import secrets
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt

COST = 4


def hashpw(key: str) -> str:
    return bcrypt.hashpw(key.encode(), bcrypt.gensalt(rounds=COST)).decode()


def now() -> datetime:
    return datetime.now(UTC)


def save(directory: Path, name: str, value) -> None:
    (directory / name).write_text(json.dumps(value, indent=1))


def load(directory: Path, name: str):
    return json.loads((directory / name).read_text())


# --- the SQLite manager (`mhu_` keys), as keyseal JSONL ----------------------------------


def mhu_key():
    """As `UserKeyManager.create_key`."""
    raw_key = "mhu_" + secrets.token_urlsafe(32)
    key_prefix = raw_key[len("mhu_") : len("mhu_") + 8]
    return raw_key, key_prefix, hashpw(raw_key)


def make_jsonl(directory: Path) -> None:
    lines, keys = [], []

    def add(name, expect, expires_at=None, enabled=True, lookup=True, source_id=True, **extra):
        raw_key, key_prefix, key_hash = mhu_key()
        line = {
            "user_id": str(uuid.uuid4()),
            "name": name,
            # That manager stores "read write" in one column; the export splits it.
            "scopes": "read write".split(),
            "tag": "mhu",
            "bcrypt_hash": key_hash,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "enabled": enabled,
            "created_at": now().isoformat(),
            "last_used_at": None,
            "rate_limit": None,
        }
        if lookup:
            line["lookup"] = key_prefix
        if source_id:
            line["source_id"] = str(uuid.uuid4())
        line.update(extra)
        lines.append(line)
        keys.append({"name": name, "key": raw_key, "expect": expect, "user_id": line["user_id"],
                     "lookup": lookup})

    add("Claude Desktop", "valid", expires_at=now() + timedelta(days=30))
    add("CI", "valid", rate_limit="100/min", last_used_at=now().isoformat())
    add("old laptop", "expired", expires_at=now() - timedelta(days=1))
    add("paused", "disabled", enabled=False)
    add("no lookup kept", "valid", lookup=False)
    add("no source id", "valid", source_id=False)
    (directory / "import.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    save(directory, "keys.json", keys)


def change_jsonl(directory: Path) -> None:
    path = directory / "import.jsonl"
    lines = [json.loads(l) for l in path.read_text().splitlines()]
    keys = load(directory, "keys.json")
    lines[0]["enabled"] = False
    keys[0]["expect"] = "disabled"
    lines[1]["expires_at"] = (now() - timedelta(hours=1)).isoformat()
    keys[1]["expect"] = "expired"
    del lines[4]
    keys[4]["expect"] = "unknown"
    path.write_text("".join(json.dumps(l) + "\n" for l in lines))
    save(directory, "keys.json", keys)


# --- the Keycloak system (`mcpkey_live_` keys in user attributes) -------------------------


def keycloak_key(attributes: dict, name: str, expires_days: int = 365):
    """As `APIKeyManager.create_api_key`, attributes stored the admin API's way (lists)."""
    api_key = "mcpkey_live_" + secrets.token_urlsafe(32)
    key_hash = hashpw(api_key)
    key_id = secrets.token_hex(8)
    created_at = now()
    expires_at = created_at + timedelta(days=expires_days)
    attributes.setdefault("apiKeys", []).append(f"key:{key_id}:{key_hash}")
    attributes[f"apiKey_{key_id}_name"] = [name]
    attributes[f"apiKey_{key_id}_created"] = [created_at.isoformat()]
    attributes[f"apiKey_{key_id}_expiresAt"] = [expires_at.isoformat()]
    attributes[f"apiKey_{key_id}_cacheHash"] = [secrets.token_hex(32)]
    return key_id, api_key


def make_keycloak(directory: Path) -> None:
    users, keys = [], []

    def user(username, enabled, *key_specs):
        attributes = {"department": ["research"]}
        for name, days, expect in key_specs:
            key_id, api_key = keycloak_key(attributes, name, days)
            keys.append(
                {"name": name, "key": api_key, "expect": expect, "key_id": key_id,
                 "user_id": f"user:{username}", "username": username, "lookup": False}
            )
        users.append(
            {
                "id": str(uuid.uuid4()),
                "createdTimestamp": int(now().timestamp() * 1000),
                "username": username,
                "enabled": enabled,
                "emailVerified": True,
                "email": f"{username}@example.com",
                "attributes": attributes,
            }
        )

    user("alice", True, ("Claude Desktop", 365, "valid"), ("old", -1, "expired"),
         ("laptop", 30, "valid"))
    user("bob", False, ("ci", 365, "disabled"))
    user("carol", True)
    user("dave", True, ("agent", 90, "valid"))
    # `validate_and_get_user` records the last use in the attributes.
    users[0]["attributes"][f"apiKey_{keys[0]['key_id']}_lastUsed"] = [now().isoformat()]
    save(directory, "users.json", users)
    save(directory, "keys.json", keys)


def make_keycloak_many(directory: Path, count: int) -> None:
    """`count` users of one key each, used one second apart (the last one most recently), for
    the upgrade at first use at scale: keys.json lists the keys in that order."""
    users, keys = [], []
    start = now() - timedelta(days=1)
    for i in range(count):
        attributes = {}
        key_id, api_key = keycloak_key(attributes, f"key {i}")
        attributes[f"apiKey_{key_id}_lastUsed"] = [(start + timedelta(seconds=i)).isoformat()]
        username = f"user{i:05d}"
        users.append({"id": str(uuid.uuid4()), "username": username, "enabled": True,
                      "attributes": attributes})
        keys.append({"key": api_key, "key_id": key_id, "user_id": f"user:{username}"})
    save(directory, "users.json", users)
    save(directory, "keys.json", keys)


def change_keycloak(directory: Path) -> None:
    users = load(directory, "users.json")
    keys = load(directory, "keys.json")
    by_name = {u["username"]: u for u in users}
    # An admin disables dave in Keycloak.
    by_name["dave"]["enabled"] = False
    keys[4]["expect"] = "disabled"
    # alice's first key's expiry is moved into the past.
    attrs = by_name["alice"]["attributes"]
    attrs[f"apiKey_{keys[0]['key_id']}_expiresAt"] = [(now() - timedelta(hours=1)).isoformat()]
    keys[0]["expect"] = "expired"
    # `revoke_api_key(alice, laptop)`: the entry and its metadata removed.
    key_id = keys[2]["key_id"]
    attrs["apiKeys"] = [k for k in attrs["apiKeys"] if not k.startswith(f"key:{key_id}:")]
    for what in ("name", "created", "expiresAt", "lastUsed", "cacheHash"):
        attrs.pop(f"apiKey_{key_id}_{what}", None)
    keys[2]["expect"] = "unknown"
    save(directory, "users.json", users)
    save(directory, "keys.json", keys)


# --- egregore (`api_clients` on PostgreSQL) -----------------------------------------------

INIT_DB = [
    """
            CREATE TABLE IF NOT EXISTS api_clients (
                id SERIAL PRIMARY KEY,
                client_id VARCHAR(64) UNIQUE NOT NULL,
                api_key_hash VARCHAR(128) NOT NULL,
                name VARCHAR(255),
                scopes TEXT[] DEFAULT ARRAY['chat', 'history'],
                rate_limit INT DEFAULT 100,
                enabled BOOLEAN DEFAULT TRUE,
                expires_at TIMESTAMPTZ,
                created_at TIMESTAMPTZ DEFAULT NOW(),
                last_used_at TIMESTAMPTZ
            )
        """,
    """
            CREATE INDEX IF NOT EXISTS idx_api_clients_client_id
            ON api_clients(client_id)
        """,
    """
            CREATE INDEX IF NOT EXISTS idx_api_clients_enabled
            ON api_clients(enabled)
        """,
]


async def create_client(conn, name, scopes=None, rate_limit=100, expires_at=None):
    """As egregore's `create_client`."""
    client_id = f"client_{secrets.token_hex(8)}"
    api_key = f"eg_{secrets.token_hex(20)}"
    key_hash = hashpw(api_key)
    if scopes is None:
        scopes = ["chat", "history"]
    await conn.execute(
        """INSERT INTO api_clients (client_id, api_key_hash, name, scopes, rate_limit, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
        client_id, key_hash, name, scopes, rate_limit, expires_at,
    )
    return client_id, api_key


async def make_egregore(url: str, directory: Path) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for statement in INIT_DB:
            await conn.execute(statement)
        keys = []
        specs = [
            ("Relay bot", None, 100, None, "valid"),
            ("Chat only", ["chat"], 30, now() + timedelta(days=30), "valid"),
            ("Expired", None, 100, now() - timedelta(days=1), "expired"),
            ("Soon disabled", None, 100, None, "disabled"),
            ("Nightly", ["history"], 10, None, "valid"),
        ]
        for name, scopes, rate_limit, expires_at, expect in specs:
            client_id, api_key = await create_client(conn, name, scopes, rate_limit, expires_at)
            keys.append({"name": name, "key": api_key, "expect": expect, "user_id": client_id,
                         "lookup": False})
        # `disable_client` (update_client with enabled=False).
        await conn.execute(
            "UPDATE api_clients SET enabled = $1 WHERE client_id = $2", False, keys[3]["user_id"]
        )
        # `get_client_by_api_key` records the last use.
        await conn.execute(
            "UPDATE api_clients SET last_used_at = NOW() WHERE client_id = $1", keys[0]["user_id"]
        )
        # A client made before the relay set names (the column allows NULL).
        client_id, api_key = await create_client(conn, None)
        keys.append({"name": client_id, "key": api_key, "expect": "valid", "user_id": client_id,
                     "lookup": False})
        save(directory, "keys.json", keys)
    finally:
        await conn.close()


async def change_egregore(url: str, directory: Path) -> None:
    import asyncpg

    keys = load(directory, "keys.json")
    conn = await asyncpg.connect(url)
    try:
        # disable_client
        await conn.execute(
            "UPDATE api_clients SET enabled = $1 WHERE client_id = $2", False, keys[0]["user_id"]
        )
        keys[0]["expect"] = "disabled"
        # update_client(expires_at=…)
        await conn.execute(
            "UPDATE api_clients SET expires_at = $1 WHERE client_id = $2",
            now() - timedelta(hours=1), keys[1]["user_id"],
        )
        keys[1]["expect"] = "expired"
        # delete_client
        await conn.execute("DELETE FROM api_clients WHERE client_id = $1", keys[4]["user_id"])
        keys[4]["expect"] = "unknown"
        # regenerate_api_key: a new key for the same client; the old one no longer works.
        new_key = f"eg_{secrets.token_hex(20)}"
        await conn.execute(
            "UPDATE api_clients SET api_key_hash = $1 WHERE client_id = $2",
            hashpw(new_key), keys[5]["user_id"],
        )
        keys[5]["expect"] = "unknown"
        keys.append({"name": keys[5]["name"], "key": new_key, "expect": "valid",
                     "user_id": keys[5]["user_id"], "lookup": False})
        save(directory, "keys.json", keys)
    finally:
        await conn.close()


def main(argv: list[str]) -> None:
    usage = ("usage: make_import_data.py (jsonl DIR | keycloak DIR | keycloak-many DIR N | "
             "egregore URL DIR | change KIND DIR [URL])")
    if len(argv) < 3:
        sys.exit(usage)
    command = argv[1]
    if command == "jsonl":
        make_jsonl(Path(argv[2]))
    elif command == "keycloak":
        make_keycloak(Path(argv[2]))
    elif command == "keycloak-many" and len(argv) == 4:
        make_keycloak_many(Path(argv[2]), int(argv[3]))
    elif command == "egregore" and len(argv) == 4:
        asyncio.run(make_egregore(argv[2], Path(argv[3])))
    elif command == "change" and argv[2] == "jsonl":
        change_jsonl(Path(argv[3]))
    elif command == "change" and argv[2] == "keycloak":
        change_keycloak(Path(argv[3]))
    elif command == "change" and argv[2] == "egregore" and len(argv) == 5:
        asyncio.run(change_egregore(argv[4], Path(argv[3])))
    else:
        sys.exit(usage)


if __name__ == "__main__":
    main(sys.argv)
