# PostgreSQL backend (feature `postgres`): its tests on a throwaway server. Included by the
# Makefile.
#
# scripts/pg-run.sh installs Debian's postgresql when missing (saying so), starts a cluster
# under $(PG_DIR) on a free port of 127.0.0.1, exports its URLs (KEYSEAL_PG_*) and
# KEYSEAL_REQUIRE_POSTGRES=1 (so a missing server fails instead of skipping), runs the
# command, and stops the server from a trap even when the tests fail. scripts/pgbouncer-run.sh
# does the same and also starts Debian's PgBouncer (installed when missing) in transaction
# mode in front of it (KEYSEAL_PGBOUNCER_URL): the conformance suites run a second time
# through it (postgres::pgbouncer::), and so does a CLI smoke test.

PG_DIR ?= target/pg-test

.PHONY: test-postgres pg-start pg-stop demo-postgres
# The import tests make their data with the old systems' Python code (setup-python).
## test-postgres: the conformance suites and the backend's own tests against a throwaway PostgreSQL
test-postgres: setup-python
	@echo "==> PostgreSQL tests on a throwaway server ($(PG_DIR)), directly and through PgBouncer"
	bash scripts/pgbouncer-run.sh $(PG_DIR) bash -c '$(CARGO) test --all-features --test conformance -- postgres:: && \
		$(CARGO) test --all-features --test cli_postgres --test cli_rewrap_postgres --test cli_copy --test fleet_processes && \
		$(CARGO) test --all-features --test cli_import_postgres && \
		$(CARGO) test --all-features --test cli_import -- postgres && \
		$(CARGO) test --all-features --test cli_commands --test cli_keys_admin -- postgres && \
		$(CARGO) test --all-features --test pg_faults && \
		$(CARGO) build --all-features --bin keyseal && bash scripts/pgbouncer-smoke.sh target/debug/keyseal'

.PHONY: test-pg-faults-long
## test-pg-faults-long: the PostgreSQL crash test in a loop (20 crashes and restarts; part of test-long)
test-pg-faults-long:
	KEYSEAL_PG_FAULTS=1 KEYSEAL_PG_FAULTS_KILLS=20 \
		$(CARGO) test --release --all-features --test pg_faults -- --nocapture crash_mid_flight

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

.PHONY: bench-cold-start
## bench-cold-start: a new process serving 10 000 keys at cost 12, with and without the fast verifier, SQLite then PostgreSQL (the store is made once under target/cold-start/: ~10 000 bcrypts)
bench-cold-start:
	nice -n 19 $(CARGO) bench --bench cold_start -- prepare
	$(CARGO) bench --bench cold_start
	bash scripts/pg-run.sh $(PG_DIR) $(CARGO) bench --features postgres --bench cold_start -- postgres

# `make test-long` runs the long crash loop too.
test-long: test-pg-faults-long
