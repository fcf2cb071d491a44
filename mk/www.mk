# The npm package where its users run it: the demo page (www/), an edge worker in
# workerd (bindings/worker/), the shipped TypeScript types, and the package in bundlers and other
# runtimes (bindings/consumers/). Included by the Makefile.
# Each target builds pkg/ first (`npm`, mk/wasm.mk), which also installs the pinned npm dev
# tools (playwright-core, workerd, typescript) with `npm ci` when bindings/package-lock.json changed.

.PHONY: www test-www test-www-browser test-www-worker test-www-types test-consumers

WWW_PORT ?= 8000

## www: serve the demo page on http://127.0.0.1:$(WWW_PORT)/ (www/ and pkg/; Ctrl-C stops it)
www: npm
	@node www/serve.mjs --port $(WWW_PORT)

## test-www: the demo page in headless Chromium, the worker in workerd, the types under tsc
test-www: test-www-browser test-www-worker test-www-types

test-www-browser: npm
	@echo "==> the demo page (www/) in headless Chromium, driven by playwright-core"
	node bindings/browser-test/demo.mjs

test-www-worker: npm
	@echo "==> the edge worker example (bindings/worker/) in workerd"
	node bindings/worker/test.mjs

test-www-types: npm
	@echo "==> tsc --noEmit --strict over a TypeScript consumer of the shipped types"
	@bash scripts/test-www-types.sh

## test-consumers: the package bundled by esbuild/webpack, run by Node, Chromium, Bun, Deno; tsc `using`
test-consumers: npm
	@echo "==> the npm package in esbuild/webpack bundles, Node, Chromium, Bun, Deno and tsc"
	@bash scripts/test-consumers.sh
