# The `keyseal` command line (feature `cli`). Included by the Makefile.
.PHONY: demo cli bench-cli

## cli: build the keyseal binary (target/release/keyseal)
cli:
	$(CARGO) build --release --features cli --bin keyseal

## demo: a real session in ./demo/ (master key file, store, API keys, encryption)
demo:
	@bash scripts/demo.sh

## bench-cli: wall time of single commands on a store of 100 000 keys, and a 100 000-row migration
bench-cli: cli
	@bash scripts/bench-cli.sh
