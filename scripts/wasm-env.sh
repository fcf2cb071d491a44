# shellcheck shell=bash
# Environment for wasm32 build steps only. Source it in a subshell, never globally:
#   ( . scripts/wasm-env.sh && cargo build --target wasm32-unknown-unknown )
# If rustup already has the wasm32 target, nothing changes. Otherwise Debian's Rust
# (rustc-web, 1.96, installed by scripts/setup-wasm.sh) builds std from source (build-std).
if command -v rustup >/dev/null 2>&1 &&
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  KEYSEAL_WASM_TOOLCHAIN=rustup
else
  KEYSEAL_WASM_TOOLCHAIN=debian-build-std
  export PATH="/usr/bin:$PATH"
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
  export RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
fi
export KEYSEAL_WASM_TOOLCHAIN
# cargo-installed tools (wasm-bindgen, wasm-pack) live here; keep them reachable after
# /usr/bin was put first.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if [ "$KEYSEAL_WASM_TOOLCHAIN" = debian-build-std ]; then
  # /usr/bin must win over rustup's cargo/rustc proxies.
  export PATH="/usr/bin:$PATH"
fi
