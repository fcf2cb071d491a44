"""keyseal beside the system it replaces, on the same PostgreSQL (make bench-fleet-compare).

For each count of enabled clients (10, 100, 1 000), on a fresh database each:
- seed 002 (seed002_api_keys.py: asyncpg + bcrypt, its own code): creates the clients one
  after the other with `create_client` (creates/s), then times `get_client_by_api_key` for
  valid keys (picked at random among the clients) and wrong keys (`eg_` + 40 random hex);
- keyseal (`fleet_node compare`): the same creates, then valid keys cached and uncached (a
  fresh `ApiKeys`; without, then with, a fast-verifier key), a wrong key with an unknown key
  id, and wrong secrets of real key ids (without, then with, the verifier key).
Both at the same bcrypt cost (4), over the same transport (FLEET_TRANSPORT: the unix socket,
or tcp), one caller at a time. Prints one table with the ratios (seed time / keyseal time;
keyseal creates/s / seed creates/s).

Run under scripts/pg-run.sh (it exports the throwaway server's KEYSEAL_PG_* variables).
"""
import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import time

import fleetlib
import seed002_api_keys as seed


def seed_samples(n):
    # Each verify runs up to n bcrypts: fewer samples for more clients (at least 20).
    return max(20, min(200, 10_000 // n))


async def seed_run(n, samples):
    await seed.close_pool()
    await seed.init_db()
    keys, create_s = [], []
    t_all = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        _, key = await seed.create_client(f"client {i}")
        create_s.append(time.perf_counter() - t)
        keys.append(key)
    creates_per_s = n / (time.perf_counter() - t_all)
    valid, wrong = [], []
    for _ in range(samples):
        key = random.choice(keys)
        t = time.perf_counter()
        found = await seed.get_client_by_api_key(key)
        valid.append(time.perf_counter() - t)
        assert found is not None, "seed 002 refused a valid key"
    for _ in range(samples):
        key = f"eg_{secrets.token_hex(20)}"
        t = time.perf_counter()
        found = await seed.get_client_by_api_key(key)
        wrong.append(time.perf_counter() - t)
        assert found is None, "seed 002 accepted a wrong key"
    await seed.close_pool()
    return {
        "creates_per_s": creates_per_s,
        "create": summary_us(create_s),
        "valid": summary_us(valid),
        "wrong": summary_us(wrong),
    }


def summary_us(seconds):
    s = sorted(x * 1e6 for x in seconds)
    return {"median_us": fleetlib.rank(s, 0.5), "p99_us": fleetlib.rank(s, 0.99), "samples": len(s)}


def keyseal_run(url, n, samples, cost):
    p = fleetlib.node("compare", url, "--clients", n, "--samples", samples, "--cost", cost)
    out, _ = p.communicate(timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"fleet_node compare failed (status {p.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


def fmt(us):
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.2f} µs"


def cell(s):
    return f"{fmt(s['median_us'])} / {fmt(s['p99_us'])} ({s['samples']})"


def ratio(x):
    return f"{x:,.0f}×" if x >= 100 else f"{x:.1f}×"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--cost", type=int, default=4)
    ap.add_argument("--keyseal-samples", type=int, default=1000)
    ap.add_argument("--seed-samples", type=int,
                    help="seed 002 verifications of each kind (default: 10 000 / clients, 20 to 200)")
    ap.add_argument("--json", help="also write the raw figures to this file")
    args = ap.parse_args()
    os.environ["SEED002_BCRYPT_ROUNDS"] = str(args.cost)
    seed.BCRYPT_ROUNDS = args.cost

    print("# keyseal beside seed 002 (asyncpg + bcrypt) on one PostgreSQL")
    print(f"- machine: {fleetlib.machine()}")
    print(f"- code: {fleetlib.git_head()}")
    raw = []
    for n in args.clients:
        url, version = fleetlib.fresh_database(f"fleet_seed002_{n}")
        if n == args.clients[0]:
            print(f"- server: {version.split(',')[0]}; both systems as {fleetlib.transport_text()}; "
                  f"one fresh database per system and client count; bcrypt cost {args.cost}; "
                  f"one caller at a time")
        os.environ["DATABASE_URL"] = url
        py = asyncio.run(seed_run(n, args.seed_samples or seed_samples(n)))
        url, _ = fleetlib.fresh_database(f"fleet_keyseal_{n}")
        ks = keyseal_run(url, n, args.keyseal_samples, args.cost)
        fleetlib.drop_databases([f"fleet_seed002_{n}", f"fleet_keyseal_{n}"])
        raw.append({"clients": n, "seed002": py, "keyseal": ks})
    print(f"- load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("Times: median / p99 (samples); p99 is the nearest rank, so the maximum below 100 samples.")
    print()
    print("| enabled clients | operation | seed 002 (Python) | keyseal | seed ÷ keyseal |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for r in raw:
        n, py, ks = r["clients"], r["seed002"], r["keyseal"]
        rows = [
            ("valid key, cached (keyseal)", py["valid"], ks["valid_cached"]),
            ("valid key, uncached (fresh `ApiKeys`): bcrypt", py["valid"], ks["valid_uncached"]),
            ("valid key, uncached, with a verifier key: HMAC", py["valid"], ks["valid_uncached_fast"]),
            ("wrong key, unknown key id", py["wrong"], ks["wrong_unknown_id"]),
            ("wrong secret of a real key id: bcrypt", py["wrong"], ks["wrong_secret_known_id"]),
            ("wrong secret of a real key id, with a verifier key: HMAC", py["wrong"], ks["wrong_secret_fast"]),
        ]
        for what, a, b in rows:
            print(f"| {n:,} | verify: {what} | {cell(a)} | {cell(b)} | "
                  f"{ratio(a['median_us'] / b['median_us'])} |")
        print(f"| {n:,} | creates/s, one caller (one create: median / p99) | "
              f"{py['creates_per_s']:,.0f} /s ({fmt(py['create']['median_us'])} / {fmt(py['create']['p99_us'])}) | "
              f"{ks['creates_per_s']:,.0f} /s ({fmt(ks['create']['median_us'])} / {fmt(ks['create']['p99_us'])}) | "
              f"keyseal {ratio(ks['creates_per_s'] / py['creates_per_s'])} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
