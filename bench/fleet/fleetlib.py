"""Shared pieces of the fleet benchmarks (latency.py, compare.py): the throwaway server's
URLs, fresh databases, the fleet_node processes, statistics and the run's description."""
import asyncio
import math
import os
import platform
import select
import subprocess
import time
from datetime import datetime, timezone

import asyncpg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The release build by default; FLEET_NODE picks another (the smoke test uses the debug one
# that `cargo test --all-features` already built).
NODE = os.environ.get("FLEET_NODE") or os.path.join(ROOT, "target", "release", "examples", "fleet_node")


def socket_url(database):
    """The superuser over the server's unix socket folder (trust: no password)."""
    sock = os.environ.get("KEYSEAL_PG_SOCKET")
    port = os.environ.get("KEYSEAL_PG_PORT")
    if not sock or not port:
        raise SystemExit(
            "KEYSEAL_PG_SOCKET / KEYSEAL_PG_PORT are not set: run through scripts/pg-run.sh "
            "(make bench-fleet)"
        )
    return f"postgresql://postgres@/{database}?host={sock}&port={port}"


def fleet_url(database):
    """The URL the measured processes use, by FLEET_TRANSPORT: `socket` (the default: the
    superuser over the unix socket folder) or `tcp` (the superuser over 127.0.0.1 with its
    password: TLS, as both drivers prefer it when the server offers it)."""
    transport = os.environ.get("FLEET_TRANSPORT", "socket")
    if transport == "socket":
        return socket_url(database)
    if transport == "tcp":
        password = os.environ["KEYSEAL_PG_ADMIN_PASSWORD"]
        return f"postgresql://postgres:{password}@127.0.0.1:{os.environ['KEYSEAL_PG_PORT']}/{database}"
    raise SystemExit(f"FLEET_TRANSPORT={transport}: socket or tcp")


def transport_text():
    """The transport, as the reports print it (never the password)."""
    if os.environ.get("FLEET_TRANSPORT", "socket") == "tcp":
        return "the superuser over TCP to 127.0.0.1 (TLS: sslmode prefer, password)"
    return f"the superuser over the unix socket {socket_url('DB')}"


async def _fresh(name):
    conn = await asyncpg.connect(socket_url("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        return await conn.fetchval("SELECT version()")
    finally:
        await conn.close()


def fresh_database(name):
    """Drops and creates database `name` (over the socket); returns (the URL the measured
    processes use for it, the server's version text)."""
    version = asyncio.run(_fresh(name))
    return fleet_url(name), version


async def _drop(names):
    conn = await asyncpg.connect(socket_url("postgres"))
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def drop_databases(names):
    asyncio.run(_drop(names))


def node(mode, url, *args):
    """A fleet_node process; the URL goes in its environment, never on its command line."""
    if not os.access(NODE, os.X_OK):
        raise SystemExit(f"{NODE} missing: cargo build --release --features postgres --example fleet_node")
    env = dict(os.environ, KEYSEAL_FLEET_URL=url)
    return subprocess.Popen(
        [NODE, mode, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        bufsize=0,
    )


class Lines:
    """Reads a child's standard output line by line with a deadline (select on the pipe)."""

    def __init__(self, proc):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def read(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line from pid {self.proc.pid} within {timeout} s")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise EOFError(f"pid {self.proc.pid} ended (status {self.proc.wait()})")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def send(proc, line):
    proc.stdin.write(line.encode() + b"\n")
    proc.stdin.flush()


def stop(procs):
    """Closes their input (they exit at end of input), then kills what is still running."""
    for p in procs:
        try:
            p.stdin.close()
        except OSError:
            pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def rank(sorted_values, p):
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values), max(1, math.ceil(p * len(sorted_values))))
    return sorted_values[i - 1]


def git_head():
    try:
        head = subprocess.run(
            ["git", "-C", ROOT, "log", "-1", "--format=%h %s"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + (" (uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def machine():
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, {platform.node()} "
        f"({os.cpu_count()} CPUs, Linux {platform.release()}), load average {load}"
    )
