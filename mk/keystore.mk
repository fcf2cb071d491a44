# Key store (feature `keystore`): its benchmarks. Included by the Makefile.

.PHONY: bench-keystore
## bench-keystore: key store benchmarks (criterion) and the Python module's figures beside them
bench-keystore: setup-python
	$(CARGO) bench --bench keystore
	python3 tests/python/bench_keystore.py target/tmp
