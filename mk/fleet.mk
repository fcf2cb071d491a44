# Fleet benchmarks on PostgreSQL (BENCHMARKS.md, "Fleet on PostgreSQL"). Included by the
# Makefile. Each target builds examples/fleet_node.rs (release), makes or reuses the venv
# target/fleet-venv with asyncpg and bcrypt (pip, idempotent: an existing venv that imports
# both is left alone), and runs the Python driver under scripts/pg-run.sh (a throwaway
# cluster in $(FLEET_PG_DIR), stopped afterwards). Each prints the configuration it ran with.

FLEET_PG_DIR ?= target/pg-fleet
FLEET_VENV ?= target/fleet-venv
# Revocation latency: fleet sizes, runs per size, pause between two verifications (µs).
FLEET_PROCS ?= 2 4
FLEET_RUNS ?= 20
FLEET_PACE_US ?= 1000
# Side by side with the replaced system: enabled client counts.
FLEET_CLIENTS ?= 10 100 1000
# How every measured process reaches the server: socket (unix socket) or tcp (127.0.0.1, TLS).
FLEET_TRANSPORT ?= socket

FLEET_PY = $(FLEET_VENV)/bin/python

.PHONY: bench-fleet bench-fleet-latency bench-fleet-compare fleet-setup

fleet-setup:
	@bash bench/fleet/setup-venv.sh $(FLEET_VENV) >/dev/null
	@echo "==> building examples/fleet_node.rs (release, feature postgres)"
	$(CARGO) build --release --features postgres --example fleet_node

## bench-fleet: revocation latency (2 and 4 processes) and keyseal beside seed 002, one throwaway PostgreSQL
bench-fleet: fleet-setup
	FLEET_TRANSPORT=$(FLEET_TRANSPORT) bash scripts/pg-run.sh $(FLEET_PG_DIR) bash -c '$(FLEET_PY) bench/fleet/latency.py \
		--procs $(FLEET_PROCS) --runs $(FLEET_RUNS) --pace-us $(FLEET_PACE_US) && \
		$(FLEET_PY) bench/fleet/compare.py --clients $(FLEET_CLIENTS)'

## bench-fleet-latency: revocation latency only (re-run it after a change-feed change)
bench-fleet-latency: fleet-setup
	FLEET_TRANSPORT=$(FLEET_TRANSPORT) bash scripts/pg-run.sh $(FLEET_PG_DIR) $(FLEET_PY) bench/fleet/latency.py \
		--procs $(FLEET_PROCS) --runs $(FLEET_RUNS) --pace-us $(FLEET_PACE_US)

## bench-fleet-compare: keyseal beside seed 002 (asyncpg + bcrypt) at 10, 100, 1 000 clients
bench-fleet-compare: fleet-setup
	FLEET_TRANSPORT=$(FLEET_TRANSPORT) bash scripts/pg-run.sh $(FLEET_PG_DIR) $(FLEET_PY) bench/fleet/compare.py --clients $(FLEET_CLIENTS)

# The smoke version inside `make test` (under 30 s once built): 3 revocations with 2 processes,
# 10 clients side by side, few samples. It checks that the harness still runs and that every
# answer is the expected one (each process refuses the revoked key as `revoked`, the valid
# keys are valid, the wrong ones refused), not the timing targets: CI machines vary. It uses
# the debug build of the example that `cargo test --all-features` has already made.
.PHONY: test-fleet-smoke
## test-fleet-smoke: the fleet benchmarks, tiny (harness check, no timing targets)
test-fleet-smoke:
	@bash bench/fleet/setup-venv.sh $(FLEET_VENV) >/dev/null
	$(CARGO) build --all-features --example fleet_node
	FLEET_NODE=target/debug/examples/fleet_node bash scripts/pg-run.sh target/pg-fleet-smoke bash -c \
		'$(FLEET_PY) bench/fleet/latency.py --procs 2 --runs 3 && \
		$(FLEET_PY) bench/fleet/compare.py --clients 10 --seed-samples 20 --keyseal-samples 100'

# The long version (part of `make test-long`): 200 revocations with 2 and with 4 processes,
# failing when the targets are missed (median <= 50 ms, max <= 1 s).
.PHONY: test-fleet-long
## test-fleet-long: revocation latency over 200 runs with 2 and 4 processes, targets required
test-fleet-long: fleet-setup
	FLEET_TRANSPORT=$(FLEET_TRANSPORT) bash scripts/pg-run.sh $(FLEET_PG_DIR) $(FLEET_PY) bench/fleet/latency.py \
		--procs 2 4 --runs 200 --pace-us $(FLEET_PACE_US) --require-targets

test-long: test-fleet-long

# Rate limits across a fleet (BENCHMARKS.md, "Rate limits across a fleet"): four processes
# (tests/fleet_limits.rs, children of the test binary) hammer one key limited to 100/min for
# two calendar minutes, on SQLite and on a throwaway PostgreSQL; each prints the successes of
# every minute and the lease writes per admitted request, and fails past 90 %..110 %. The
# debug build `cargo test --all-features` made: the processes wait on the limit, not the CPU.
.PHONY: bench-fleet-limits test-fleet-limits-long
## bench-fleet-limits: 4 processes x 2 minutes on a 100/min key, SQLite and PostgreSQL (successes per minute, store writes per admitted request)
bench-fleet-limits test-fleet-limits-long:
	bash scripts/pg-run.sh target/pg-fleet-limits bash -c 'KEYSEAL_LONG=1 $(CARGO) test \
		--all-features --test fleet_limits -- --nocapture --test-threads=1 long_'

test-long: test-fleet-limits-long
