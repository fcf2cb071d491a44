# keyseal: `make test` is the one command CI runs (.ci/run). Every target installs what it
# needs first, skipping what is already there, and says what it is doing.
SHELL := /bin/bash
.DEFAULT_GOAL := test
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: test test-rust lint test-python-interop bench setup-python

## test: everything CI checks (lint, Rust tests, interop with Python, and the fragments' tests)
test: lint test-rust test-python-interop

lint:
	@echo "==> cargo fmt --check"
	$(CARGO) fmt --all -- --check
	@echo "==> cargo clippy (all targets, all features, warnings are errors)"
	$(CARGO) clippy --all-targets --all-features -- -D warnings

test-rust:
	@echo "==> cargo test (all features)"
	$(CARGO) test --all-features

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

-include mk/*.mk
