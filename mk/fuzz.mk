# Fuzzing (cargo-fuzz, libFuzzer + AddressSanitizer, nightly): `make fuzz`. Not part of
# `make test`, which replays the corpora on stable instead (tests/fuzz_replay.rs,
# tests/fuzz_master_key.rs). Figures and machine in BENCHMARKS.md ("Fuzzing").
#
#   make fuzz                          every target for FUZZ_SECONDS (default 60) each
#   make fuzz FUZZ_RUNS=10000000       the pure parsers to an execution count instead
#   make fuzz FUZZ_TARGETS=decrypt     some targets only
#   make fuzz FUZZ_KNOWN=stop          end a sequence at a defect already reported instead of
#                                      crashing (to explore past it; default: crash)
#   KEYSEAL_FUZZ_TRACE=1               the stateful bodies print each operation (triage)
#   make fuzz-cmin                     minimize the corpora before committing them
#   make fuzz-seed                     rewrite the seed inputs from the Python vectors

FUZZ_PARSERS ?= decrypt decrypt_v3 master_key api_key_format migrate_value_path migrate_value
FUZZ_STATEFUL ?= api_keys_ops keystore_ops
FUZZ_TARGETS ?= $(FUZZ_PARSERS) $(FUZZ_STATEFUL)
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?=
FUZZ_KNOWN ?= panic
FUZZ_LOGS ?= target/fuzz-logs

.PHONY: fuzz fuzz-setup fuzz-cmin fuzz-seed

## fuzz-setup: the nightly toolchain and cargo-fuzz, installed when missing
fuzz-setup:
	@if rustup toolchain list | grep -q '^nightly'; then \
		echo "==> rust nightly: present"; \
	else \
		echo "==> installing rust nightly (minimal profile) for cargo-fuzz"; \
		rustup toolchain install nightly --profile minimal; \
	fi
	@if $(CARGO) fuzz --version >/dev/null 2>&1; then \
		echo "==> cargo-fuzz: present ($$($(CARGO) fuzz --version))"; \
	else \
		echo "==> installing cargo-fuzz from crates.io"; \
		$(CARGO) install cargo-fuzz --locked; \
	fi

## fuzz: every fuzz target for FUZZ_SECONDS each (FUZZ_RUNS: parsers to a count instead)
fuzz: fuzz-setup
	@mkdir -p $(FUZZ_LOGS)
	@echo "==> machine: $$(nproc) cores, $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	@set -e; for t in $(FUZZ_TARGETS); do \
		case " $(FUZZ_STATEFUL) " in \
			*" $$t "*) limit="-max_total_time=$(FUZZ_SECONDS) -timeout=60"; known=$(FUZZ_KNOWN);; \
			*) if [ -n "$(FUZZ_RUNS)" ]; then limit="-runs=$(FUZZ_RUNS)"; \
			   else limit="-max_total_time=$(FUZZ_SECONDS)"; fi; \
			   limit="$$limit -max_len=1024"; known=$(FUZZ_KNOWN);; \
		esac; \
		echo "==> cargo +nightly fuzz run $$t -- $$limit (KEYSEAL_FUZZ_KNOWN=$$known)"; \
		KEYSEAL_FUZZ_KNOWN=$$known $(CARGO) +nightly fuzz run -O $$t -- $$limit \
			-print_final_stats=1 2>&1 | tee $(FUZZ_LOGS)/$$t.log | grep -E '^(Done|#[0-9]+.*DONE)|stat::number_of_executed_units|ERROR|panicked' || true; \
		if grep -qE 'ERROR: libFuzzer|panicked at' $(FUZZ_LOGS)/$$t.log; then \
			echo "!! $$t crashed: see $(FUZZ_LOGS)/$$t.log and fuzz/artifacts/$$t/"; exit 1; \
		fi; \
	done

## fuzz-cmin: minimize each corpus (keep the committed corpora small)
fuzz-cmin: fuzz-setup
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "==> cargo +nightly fuzz cmin $$t"; \
		KEYSEAL_FUZZ_KNOWN=stop $(CARGO) +nightly fuzz cmin -O $$t; \
	done

## fuzz-seed: the seed inputs, from the Python vectors
fuzz-seed:
	python3 fuzz/seed_corpus.py
