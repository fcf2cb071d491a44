# Key store (feature `keystore`): extra steps for `make test` and the key store benchmarks.

# The key store's Python interop test (tests/keystore_python.rs) runs inside `cargo test`: install
# python3's `cryptography` first, and make a missing Python a failure rather than a skip.
test-rust: setup-python
test-rust: export KEYSEAL_REQUIRE_PYTHON = 1

.PHONY: bench-keystore
## bench-keystore: key store benchmarks (criterion) and the Python module's figures beside them
bench-keystore: setup-python
	$(CARGO) bench --bench keystore
	python3 tests/python/bench_keystore.py target/tmp
