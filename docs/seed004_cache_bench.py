# Seed 004's validate_key() cache-hit path, without its database: dict lookup by raw key,
# time.time(), and the fire-and-forget asyncio.create_task(db.update_api_key_usage(...)).
import asyncio, time, secrets
async def update_api_key_usage(key_id):  # stand-in for the DB write it schedules
    return None
class M:
    def __init__(self): self._cache = {}
    async def validate_key(self, api_key):
        if not api_key or not api_key.startswith("mhu_"): return None
        cached = self._cache.get(api_key)
        if cached is not None:
            key_id, user_id, scopes, cached_at = cached
            if time.time() - cached_at < 300:
                try: asyncio.create_task(update_api_key_usage(key_id))
                except Exception: pass
                return {"key_id": key_id, "user_id": user_id, "scopes": scopes}
async def main():
    m = M(); k = "mhu_" + secrets.token_urlsafe(32)
    m._cache[k] = ("id", "user", "read write", time.time())
    for label, key, n in (("cached valid", k, 200_000), ("malformed", "Bearer nope", 1_000_000)):
        t = time.perf_counter()
        for _ in range(n): await m.validate_key(key)
        dt = time.perf_counter() - t
        await asyncio.sleep(0)
        print(f"seed 004 {label}: {n/dt:,.0f}/s ({dt/n*1e9:.0f} ns each)")
asyncio.run(main())
