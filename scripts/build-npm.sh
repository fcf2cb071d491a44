#!/usr/bin/env bash
# Builds the npm package `keyseal` into pkg/ (run scripts/setup-wasm.sh first; `make npm` does).
#   cargo (wasm32, release) -> wasm-bindgen twice (nodejs glue for require(), web glue for
#   browsers/workers/ESM; both emit the same .wasm) -> wasm-opt -O3 -> pkg/ with the entry files
#   written by bindings/npm/entries.mjs (one export list; the Node entry embeds the .wasm bytes),
#   the files kept in bindings/npm/ and a package.json carrying the crate's version.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/wasm-env.sh
. scripts/wasm-env.sh

say() { printf 'build-npm: %s\n' "$*"; }
OUT="$ROOT/pkg"
WORK="$ROOT/target/npm"
WASM_OPT="$ROOT/bindings/node_modules/.bin/wasm-opt"
# 128-bit SIMD (Node 16.4+, Chrome 91+, Firefox 89+, Safari 16.4+, workerd): LLVM vectorizes
# parts of the bitsliced AES and GHASH, about 10-20% faster (BENCHMARKS.md).
export RUSTFLAGS="${KEYSEAL_WASM_RUSTFLAGS:--C target-feature=+simd128}"
# Features Rust emits for wasm32; --all-features makes modules Node 20 refuses.
WASM_OPT_FLAGS=(-O3 --enable-reference-types --enable-bulk-memory --enable-multivalue
  --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-simd)

say "cargo build --release --target wasm32-unknown-unknown ($KEYSEAL_WASM_TOOLCHAIN, RUSTFLAGS=$RUSTFLAGS)"
cargo build --quiet --release --lib --target wasm32-unknown-unknown
RAW="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/wasm32-unknown-unknown/release/keyseal.wasm"

rm -rf "$WORK" && mkdir -p "$WORK"
say "wasm-bindgen $(wasm-bindgen --version | cut -d' ' -f2): nodejs and web glue"
wasm-bindgen --target nodejs --no-typescript --out-dir "$WORK/node" "$RAW"
# No default .wasm URL in the web glue: browser.mjs passes its own, so bundlers see one asset.
wasm-bindgen --target web --no-typescript --omit-default-module-path --out-dir "$WORK/web" "$RAW"
if ! cmp -s "$WORK/node/keyseal_bg.wasm" "$WORK/web/keyseal_bg.wasm"; then
  say "ERROR: the nodejs and web targets produced different .wasm files" >&2
  exit 1
fi

say "wasm-opt ${WASM_OPT_FLAGS[*]}"
"$WASM_OPT" "${WASM_OPT_FLAGS[@]}" "$WORK/web/keyseal_bg.wasm" -o "$WORK/keyseal_bg.wasm"

rm -rf "$OUT" && mkdir -p "$OUT"
cp "$WORK/keyseal_bg.wasm" "$OUT/"
cp "$WORK/web/keyseal.js" "$OUT/keyseal_web.js"
# index.cjs, index.mjs, browser.mjs, workerd.mjs, keyseal_node.cjs, keyseal_wasm.cjs
# (Not inside `say "$(...)"`: set -e must see it fail.)
entries_out="$(node bindings/npm/entries.mjs "$WORK" "$OUT")"
say "$entries_out"
for f in index.d.ts README.md; do
  cp "bindings/npm/$f" "$OUT/"
done
cp bindings/npm/index.d.ts "$OUT/index.d.cts"
VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
sed "s/\"version\": \"0.0.0\"/\"version\": \"$VERSION\"/" bindings/npm/package.json >"$OUT/package.json"

RAW_SIZE=$(wc -c <"$OUT/keyseal_bg.wasm")
GZ_SIZE=$(gzip -9c "$OUT/keyseal_bg.wasm" | wc -c)
say "pkg/ ready: keyseal $VERSION, keyseal_bg.wasm $RAW_SIZE bytes ($GZ_SIZE gzipped)"
if [ "$GZ_SIZE" -gt $((45 * 1024)) ]; then
  say "ERROR: keyseal_bg.wasm is over the 45 KiB gzipped budget" >&2
  exit 1
fi
