#!/usr/bin/env bash
# The npm package in its users' toolchains (bindings/consumers/run.mjs): the packed pkg/ installed
# into a scratch project, bundled by esbuild and webpack (Node ESM and CommonJS, browsers), run by
# Node, headless Chromium, Bun and Deno, and `using` compiled by tsc. The tools are pinned dev
# dependencies in bindings/package.json (`make setup-wasm` installs them). Build pkg/ first
# (`make npm`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf 'test-consumers: %s\n' "$*"; }

[ -f pkg/package.json ] || { say "ERROR: no pkg/; run make npm first" >&2; exit 1; }
for tool in esbuild bun deno tsc; do
  [ -x "bindings/node_modules/.bin/$tool" ] ||
    { say "ERROR: no bindings/node_modules/.bin/$tool; run make setup-wasm" >&2; exit 1; }
done
say "node $(node --version), esbuild $(bindings/node_modules/.bin/esbuild --version)," \
  "bun $(bindings/node_modules/.bin/bun --version), $(bindings/node_modules/.bin/deno --version | head -n1)"
node --test-reporter=spec bindings/consumers/run.mjs
