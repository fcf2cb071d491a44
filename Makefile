# keyseal: `make test` is the one command CI runs (.ci/run). Every target installs what it
# needs first, skipping what is already there, and says what it is doing.
SHELL := /bin/bash
.DEFAULT_GOAL := test
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: test test-rust lint test-python-interop bench bench-issuance setup-python test-long

# The whole graph of `make test`, in one place. The fragments in mk/ define the targets named
# here (and their own helpers) but never add to `test`.
#   lint                  fmt and clippy (this file)
#   test-rust             every Rust test, Python interop inside it (this file); the
#                         PostgreSQL tests skip there (no server), test-postgres runs them
#   test-postgres         the PostgreSQL backend's tests on a throwaway server (mk/postgres.mk)
#   test-python-interop   keyseal's output checked by Python (this file)
#   test-wasm             Rust tests under wasm32 in Node and Chromium, the npm JS tests (mk/wasm.mk)
#   test-www              the demo page, the workerd example, the shipped types (mk/www.mk)
#   test-consumers        the packed package in bundlers, Bun and Deno (mk/www.mk)
#   test-fleet-smoke      the fleet benchmarks' harness, tiny, on a throwaway server (mk/fleet.mk)
## test: everything CI checks
test: lint test-rust test-postgres test-python-interop test-wasm test-www test-consumers test-fleet-smoke

lint:
	@echo "==> cargo fmt --check"
	$(CARGO) fmt --all -- --check
	@echo "==> cargo clippy (all targets, all features, warnings are errors)"
	$(CARGO) clippy --all-targets --all-features -- -D warnings

# The key store's Python interop test (tests/keystore_python.rs) runs inside `cargo test`:
# install python3's `cryptography` first, and make a missing Python a failure, not a skip.
test-rust: setup-python
test-rust: export KEYSEAL_REQUIRE_PYTHON = 1
test-rust:
	@echo "==> cargo test (all features)"
	$(CARGO) test --all-features

## test-long: the long runs left out of `make test` (kill -9 during 100 000-row rewraps)
test-long:
	@echo "==> kill -9 at random batches of 100 000-row rewraps (master keys, a column), then resume"
	KEYSEAL_LONG=1 $(CARGO) test --release --all-features --test keystore_rewrap_kill --test rewrap_kill

## setup-python: python3 with pyca/cryptography and bcrypt for the interop tests
setup-python:
	@bash scripts/setup-python.sh

test-python-interop: setup-python
	@echo "==> keyseal output checked by Python's cryptography (the other direction)"
	$(CARGO) run --quiet --example interop_export > target/interop-export.json
	python3 tests/python/check_interop.py target/interop-export.json

## bench: criterion benchmarks of the native crate (figures in BENCHMARKS.md)
bench:
	$(CARGO) bench --bench core

## bench-issuance: API key benchmarks (verify paths, first validation, floods, revocation)
bench-issuance:
	$(CARGO) bench --bench issuance

-include mk/*.mk
