"""
The replaced system's PostgreSQL API-key path, replicated for the side-by-side benchmark
(bench/fleet/compare.py). Its code, kept as it was, with two changes only, both marked
`BENCH:`: the bcrypt cost is read from the environment (the original called
`bcrypt.gensalt()`, i.e. cost 12; the comparison runs both systems at cost 4), and the
database URL is read when the pool is made rather than at import (one database per client
count). The admin functions (list, update, regenerate, delete) are not on the measured path
and are left out.
"""
import os
import secrets
from datetime import datetime, timezone
from typing import Optional

import asyncpg
import bcrypt

# BENCH: the original read DATABASE_URL once, at import, with a default URL.
# Connection pool
_pool: Optional[asyncpg.Pool] = None

# BENCH: the original used bcrypt.gensalt() (cost 12).
BCRYPT_ROUNDS = int(os.getenv("SEED002_BCRYPT_ROUNDS", "12"))


async def get_pool() -> asyncpg.Pool:
    """Get or create the connection pool"""
    global _pool
    if _pool is None:
        _pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=5)
    return _pool


async def close_pool():
    """Close the connection pool"""
    global _pool
    if _pool:
        await _pool.close()
        _pool = None


async def init_db():
    """Initialize the API clients table"""
    pool = await get_pool()
    async with pool.acquire() as conn:
        await conn.execute("""
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
        """)
        # Index for fast client_id lookups
        await conn.execute("""
            CREATE INDEX IF NOT EXISTS idx_api_clients_client_id
            ON api_clients(client_id)
        """)
        # Index for enabled status filtering
        await conn.execute("""
            CREATE INDEX IF NOT EXISTS idx_api_clients_enabled
            ON api_clients(enabled)
        """)


def generate_api_key() -> str:
    """Generate a new API key with 'eg_' prefix"""
    return f"eg_{secrets.token_hex(20)}"


def hash_api_key(api_key: str) -> str:
    """Hash an API key using bcrypt"""
    return bcrypt.hashpw(api_key.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()


def verify_api_key_hash(api_key: str, key_hash: str) -> bool:
    """Verify an API key against its hash"""
    return bcrypt.checkpw(api_key.encode(), key_hash.encode())


async def create_client(
    name: str,
    scopes: list[str] = None,
    rate_limit: int = 100,
    expires_at: datetime = None
) -> tuple[str, str]:
    """
    Create a new API client.
    Returns (client_id, api_key) - api_key is only returned once!
    """
    pool = await get_pool()
    client_id = f"client_{secrets.token_hex(8)}"
    api_key = generate_api_key()
    key_hash = hash_api_key(api_key)

    if scopes is None:
        scopes = ["chat", "history"]

    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO api_clients (client_id, api_key_hash, name, scopes, rate_limit, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            client_id, key_hash, name, scopes, rate_limit, expires_at
        )

    return client_id, api_key


async def get_client_by_api_key(api_key: str) -> Optional[dict]:
    """
    Look up a client by API key.
    Returns client info if key is valid and enabled, None otherwise.
    Updates last_used_at on successful lookup.
    """
    if not api_key or not api_key.startswith("eg_"):
        return None

    pool = await get_pool()
    async with pool.acquire() as conn:
        # Get all enabled clients and check each hash
        # (We can't query by hash directly since bcrypt salts are unique)
        rows = await conn.fetch(
            """SELECT id, client_id, api_key_hash, name, scopes, rate_limit, expires_at
               FROM api_clients
               WHERE enabled = TRUE"""
        )

        for row in rows:
            if verify_api_key_hash(api_key, row['api_key_hash']):
                # Check expiry
                if row['expires_at'] and row['expires_at'] < datetime.now(timezone.utc):
                    return None

                # Update last_used_at
                await conn.execute(
                    "UPDATE api_clients SET last_used_at = NOW() WHERE id = $1",
                    row['id']
                )

                return {
                    "id": row['id'],
                    "client_id": row['client_id'],
                    "name": row['name'],
                    "scopes": list(row['scopes']) if row['scopes'] else [],
                    "rate_limit": row['rate_limit']
                }

    return None
