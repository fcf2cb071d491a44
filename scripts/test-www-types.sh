#!/usr/bin/env bash
# `tsc --noEmit --strict` over bindings/types-test/ (a small TypeScript consumer) against the
# types the npm package ships: pkg/ is packed with `npm pack` and installed into a scratch
# project, as a user gets it; checked with Node's resolution (ESM and CommonJS) and a bundler's
# (browser / Workers). Also checks that the shipped .d.ts files document every export with JSDoc
# and name the error codes. Build pkg/ first (`make npm`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf 'test-www-types: %s\n' "$*"; }

TSC="$ROOT/bindings/node_modules/.bin/tsc"
[ -f pkg/package.json ] || { say "ERROR: no pkg/; run make npm first" >&2; exit 1; }
[ -x "$TSC" ] || { say "ERROR: no $TSC; run make setup-wasm (npm ci in bindings/)" >&2; exit 1; }

APP="$ROOT/target/types-consumer"
rm -rf "$APP" && mkdir -p "$APP"
TARBALL="$(cd "$APP" && npm pack --silent "$ROOT/pkg" 2>/dev/null | tail -n1)"
printf '{ "name": "keyseal-types-consumer", "private": true, "type": "module" }\n' >"$APP/package.json"
(cd "$APP" && npm install --silent --no-audit --no-fund --offline "./$TARBALL" 2>/dev/null)
cp bindings/types-test/*.ts bindings/types-test/*.cts bindings/types-test/tsconfig*.json "$APP/"
for dts in "$APP/node_modules/keyseal/index.d.ts" "$APP/node_modules/keyseal/index.d.cts"; do
  node bindings/types-test/jsdoc-check.mjs "$dts"
done
cd "$APP"
say "$("$TSC" --version): node resolution (import and require)"
"$TSC" --noEmit --strict -p tsconfig.json
say "bundler resolution with the workerd condition"
"$TSC" --noEmit --strict -p tsconfig.bundler.json
say "PASSED"
