#!/usr/bin/env bash
# Installs the wasm32 toolchain keyseal's npm package needs, idempotently: each step says what
# it found and installs only what is missing.
#  - Node and npm (they also read the pinned wasm-bindgen version, from `cargo metadata`).
#  - rustup with wasm32-unknown-unknown present: use it.
#  - otherwise: Debian's Rust 1.96 (rustc-web & co) + std source, built with build-std.
#  - wasm-bindgen-cli (exact version pinned in Cargo.toml) and wasm-pack via cargo install.
#  - chromium + chromium-driver for browser tests, npm dev tools under bindings/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"

say() { printf 'setup-wasm: %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_updated=0
apt_install() {
  local missing=()
  local p
  for p in "$@"; do
    if dpkg -s "$p" >/dev/null 2>&1 && dpkg -s "$p" | grep -q '^Status: install ok installed'; then
      say "apt package $p: present"
    else
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "ERROR: missing ${missing[*]} and no apt-get; install them by hand" >&2
    exit 1
  fi
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
}

# 0. Node and npm: they read Cargo.toml's pins here and run the npm dev tools (step 3).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
# The exact wasm-bindgen version pinned (with "=") in Cargo.toml; the CLI must match it.
WASM_BINDGEN_VERSION="$(node scripts/cargo-manifest.mjs pinned-version wasm-bindgen)"
say "wasm-bindgen pinned in Cargo.toml: $WASM_BINDGEN_VERSION"

# 1. Rust for wasm32
if command -v rustup >/dev/null 2>&1 &&
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "rustup has wasm32-unknown-unknown: using rustup's toolchain (no build-std)"
else
  say "rustup lacks wasm32-unknown-unknown: using Debian's Rust with build-std"
  apt_install rustc-web cargo-web rust-web-src rust-web-llvm lld-22
  say "$(/usr/bin/rustc --version) / $(/usr/bin/cargo --version)"
fi

# Browser tests
apt_install chromium chromium-driver

# 2. wasm-bindgen-cli (exact) and wasm-pack
have_bindgen="$("$CARGO_BIN/wasm-bindgen" --version 2>/dev/null || true)"
if [ "$have_bindgen" = "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "wasm-bindgen $WASM_BINDGEN_VERSION: present"
else
  # Not --locked: its lock file names an entry the registry mirror lacks, and then it fails.
  say "cargo install wasm-bindgen-cli --version $WASM_BINDGEN_VERSION (about 4 minutes)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
if [ -x "$CARGO_BIN/wasm-pack" ]; then
  say "wasm-pack: present ($("$CARGO_BIN/wasm-pack" --version))"
else
  say "cargo install --locked wasm-pack (about 5 minutes)"
  cargo install --locked wasm-pack
fi

# 3. npm dev tools (binaryen's wasm-opt: Debian's wasm-opt 108 breaks wasm-bindgen's externref
# table) and the tools of mk/www.mk (playwright-core, workerd, typescript), all pinned in
# package-lock.json.
# npm ci only when node_modules is missing or was installed from another package-lock.json.
stamp="bindings/node_modules/.keyseal-lock.sha256"
want="$(sha256sum bindings/package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "bindings/node_modules: up to date"
else
  say "npm ci in bindings/ (pinned dev tools: binaryen for wasm-opt, playwright-core, workerd, typescript)"
  (cd bindings && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
say "done"
