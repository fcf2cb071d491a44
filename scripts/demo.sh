#!/usr/bin/env bash
# `make demo`: a real keyseal session on an embedded default, in ./demo/.
# Builds the CLI, creates a master key file (0600) if absent and a SQLite store, then walks
# through issuing, verifying, rotating and revoking an API key, encrypting a secret with the
# user's data key, and shows what is at rest.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

step "Build the keyseal command line (cargo build --release --features cli)"
cargo build --quiet --release --features cli --bin keyseal
KS="$PWD/target/release/keyseal"
SCRIPTS="$PWD/scripts"

mkdir -p demo
cd demo
export KEYSEAL_DB="$PWD/keyseal.db"
if [ ! -f master.key ]; then
  step "Create a master key file (mode 0600)"
  show "keyseal master-key generate --out master.key"
  "$KS" master-key generate --out master.key
else
  step "Reuse the master key in demo/master.key"
fi
ls -l master.key
M=(--master-key-file master.key)

# The session itself, shared with `make demo-postgres`.
# shellcheck source=scripts/demo-session.sh
source "$SCRIPTS/demo-session.sh"

step "What is at rest in demo/keyseal.db: ciphertext and hashes only"
python3 "$SCRIPTS/demo-at-rest.py" "$KEYSEAL_DB" alice
echo
echo "Done. The store is demo/keyseal.db and the master key demo/master.key; run again to reuse them."
