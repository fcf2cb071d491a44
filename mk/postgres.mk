# PostgreSQL backend (feature `postgres`): its tests on a throwaway server. Included by the
# Makefile.
#
# scripts/pg-run.sh installs Debian's postgresql when missing (saying so), starts a cluster
# under $(PG_DIR) on a free port of 127.0.0.1, exports its URLs (KEYSEAL_PG_*) and
# KEYSEAL_REQUIRE_POSTGRES=1 (so a missing server fails instead of skipping), runs the
# command, and stops the server from a trap even when the tests fail.

PG_DIR ?= target/pg-test

.PHONY: test-postgres pg-start pg-stop
## test-postgres: the conformance suites and the backend's own tests against a throwaway PostgreSQL
test-postgres:
	@echo "==> PostgreSQL tests on a throwaway server ($(PG_DIR))"
	bash scripts/pg-run.sh $(PG_DIR) $(CARGO) test --all-features --test conformance -- postgres::

## pg-start: start a throwaway PostgreSQL in target/pg (then: source target/pg/env)
pg-start:
	bash scripts/pg-start.sh target/pg

## pg-stop: stop the server pg-start started
pg-stop:
	bash scripts/pg-stop.sh target/pg

.PHONY: bench-postgres
## bench-postgres: the PostgreSQL backend's figures beside SQLite's (BENCHMARKS.md), on a throwaway server
bench-postgres:
	bash scripts/pg-run.sh $(PG_DIR) $(CARGO) bench --features postgres --bench postgres
