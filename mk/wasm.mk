# WebAssembly and the npm package `keyseal` (src/wasm.rs, bindings/). Included by the Makefile.
# Every wasm step runs with scripts/wasm-env.sh in a subshell: rustup's wasm32 target when it is
# installed, else Debian's Rust with build-std; native builds never see those variables.
WASM_ENV := . scripts/wasm-env.sh &&

.PHONY: setup setup-wasm npm test-wasm test-wasm-node test-wasm-browser test-npm bench-js

## setup-wasm: the wasm toolchain, wasm-bindgen, wasm-pack, Chromium, npm dev tools (idempotent)
setup-wasm:
	@bash scripts/setup-wasm.sh

setup: setup-wasm

## npm: build the npm package into pkg/
npm: setup-wasm
	@bash scripts/build-npm.sh

## test-wasm: the Rust tests under wasm32 in Node and Chromium, then the JS tests against pkg/
test-wasm: test-wasm-node test-wasm-browser test-npm

test-wasm-node: setup-wasm
	@echo "==> wasm-pack test --node (Rust tests under wasm32 in Node)"
	$(WASM_ENV) wasm-pack --log-level warn test --node --mode no-install

test-wasm-browser: setup-wasm
	@echo "==> wasm-pack test --headless --chrome (Rust tests under wasm32 in Chromium)"
	$(WASM_ENV) CHROMEDRIVER=$${CHROMEDRIVER:-/usr/bin/chromedriver} \
	  wasm-pack --log-level warn test --headless --chrome --mode no-install

test-npm: npm
	@echo "==> node --test bindings/test (the packed npm package, CommonJS and ESM)"
	@bash scripts/test-npm.sh

## bench-js: the npm package against WebCrypto and node:crypto (figures in BENCHMARKS.md)
bench-js: npm
	node bindings/bench.mjs
