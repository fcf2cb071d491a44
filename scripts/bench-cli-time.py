#!/usr/bin/env python3
"""`make bench-cli`'s timings: the wall time of single keyseal commands, process start
included, median and max of 15 runs each.

Usage: bench-cli-time.py KEYSEAL WORKDIR

WORKDIR is what scripts/bench-cli.sh prepared: key-4.json and key-12.json (`keys create --json`
output at bcrypt cost 4 and 12), token and pooltoken (`encrypt --user u42` and `--pool` output).
The store and master key come from the environment (KEYSEAL_DB, API_KEY_MASTER_KEY). Secrets
are given to keyseal on standard input, as users do. Exits 1 if a command's exit code is not
the expected one.
"""
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 15


def main(argv: list) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ks, work = argv[0], Path(argv[1])
    key4 = json.loads((work / "key-4.json").read_text())["key"]
    key12 = json.loads((work / "key-12.json").read_text())["key"]
    token = (work / "token").read_text().strip()
    pooltoken = (work / "pooltoken").read_text().strip()
    # (name, arguments or None for fresh ones each run, standard input)
    cases = [
        ("hash", ["hash"], "mhu_abc"),
        ("encrypt --user (existing user)", ["encrypt", "--user", "u42"], "sk-secret"),
        ("decrypt --user", ["decrypt", "--user", "u42"], token),
        ("encrypt --user (new user)", None, "sk-secret"),
        ("encrypt --pool (PBKDF2 100k)", ["encrypt", "--pool"], "sk-secret"),
        ("decrypt --pool", ["decrypt", "--pool"], pooltoken),
        ("keys verify, cost 4", ["keys", "verify"], key4),
        ("keys verify, cost 12", ["keys", "verify"], key12),
        ("keys verify, malformed", ["keys", "verify"], "garbage"),
        ("keys list --user", ["keys", "list", "--user", "u7"], ""),
        ("keys create, cost 4", None, ""),
        ("keys create, cost 12", None, ""),
        ("master-key generate", ["master-key", "generate"], ""),
    ]
    counter = 0

    def fresh_args(name: str) -> list:
        # Commands that create something get a new user each run.
        nonlocal counter
        counter += 1
        if name.startswith("encrypt --user (new"):
            return ["encrypt", "--user", f"new-{counter}"]
        cost = name.split()[-1]
        return ["--bcrypt-cost", cost, "keys", "create", "--user", f"c-{counter}", "--name", "n"]

    print(f"{'command':34} {'median':>9} {'max':>9}")
    for name, args, stdin in cases:
        times = []
        for _ in range(RUNS):
            a = args or fresh_args(name)
            t = time.perf_counter()
            p = subprocess.run([ks, *a], input=stdin.encode(), capture_output=True)
            times.append((time.perf_counter() - t) * 1000)
            if p.returncode != (1 if "malformed" in name else 0):
                print(f"{name}: exit {p.returncode}: {p.stderr.decode()}", file=sys.stderr)
                return 1
        print(f"{name:34} {statistics.median(times):7.1f}ms {max(times):7.1f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
