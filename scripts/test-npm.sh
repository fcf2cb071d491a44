#!/usr/bin/env bash
# Runs the JS tests (bindings/test/, Node's built-in runner) against pkg/ as a user gets it:
# `npm pack` (so only what package.json's `files` lists), installed into a scratch project.
# Build pkg/ first (`make npm`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf 'test-npm: %s\n' "$*"; }

[ -f pkg/package.json ] || { say "ERROR: no pkg/; run make npm first" >&2; exit 1; }
APP="$ROOT/target/npm-consumer"
rm -rf "$APP" && mkdir -p "$APP/test"
say "npm pack pkg/"
TARBALL="$(cd "$APP" && npm pack --silent "$ROOT/pkg")"
say "packed $(tar -tzf "$APP/$TARBALL" | sed 's|^package/||' | sort | tr '\n' ' ')"
printf '{ "name": "keyseal-consumer", "private": true }\n' >"$APP/package.json"
(cd "$APP" && npm install --silent --no-audit --no-fund --offline "./$TARBALL")
cp bindings/test/*.cjs bindings/test/*.mjs "$APP/test/"
say "node --test ($(node --version))"
cd "$APP"
# The tests' own dev dependencies (fast-check) come from bindings/node_modules (npm ci by
# scripts/setup-wasm.sh), not from the package, which has none.
NODE_PATH="$ROOT/bindings/node_modules" \
  KEYSEAL_VECTORS="$ROOT/tests/vectors/python/python-interop.json" \
  node --test --test-reporter=spec test/*.test.cjs test/*.test.mjs
