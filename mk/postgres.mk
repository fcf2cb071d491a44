# PostgreSQL backend (feature `postgres`): its tests on a throwaway server. Included by the
# Makefile.
#
# scripts/pg-run.sh installs Debian's postgresql when missing (saying so), starts a cluster
# under $(PG_DIR) on a free port of 127.0.0.1, exports its URLs (KEYSEAL_PG_*) and
# KEYSEAL_REQUIRE_POSTGRES=1 (so a missing server fails instead of skipping), runs the
# command, and stops the server from a trap even when the tests fail.

PG_DIR ?= target/pg-test

.PHONY: test-postgres pg-start pg-stop demo-postgres
## test-postgres: the conformance suites and the backend's own tests against a throwaway PostgreSQL
test-postgres:
	@echo "==> PostgreSQL tests on a throwaway server ($(PG_DIR))"
	bash scripts/pg-run.sh $(PG_DIR) bash -c '$(CARGO) test --all-features --test conformance -- postgres:: && \
		$(CARGO) test --all-features --test cli_postgres --test cli_rewrap_postgres --test cli_copy --test fleet_processes && \
		$(CARGO) test --all-features --test cli_commands --test cli_keys_admin -- postgres'

## pg-start: start a throwaway PostgreSQL in target/pg (then: source target/pg/env)
pg-start:
	bash scripts/pg-start.sh target/pg

## pg-stop: stop the server pg-start started
pg-stop:
	bash scripts/pg-stop.sh target/pg

## demo-postgres: the README's demo session on a throwaway PostgreSQL (target/pg-demo), then `keyseal copy` to SQLite
demo-postgres:
	bash scripts/pg-run.sh target/pg-demo bash scripts/demo-postgres.sh

.PHONY: bench-postgres
## bench-postgres: the PostgreSQL backend's figures beside SQLite's (BENCHMARKS.md), on a throwaway server
bench-postgres:
	bash scripts/pg-run.sh $(PG_DIR) $(CARGO) bench --features postgres --bench postgres
