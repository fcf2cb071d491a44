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

step "Issue an API key for alice (shown once, stored only as a bcrypt hash)"
show "keyseal keys create --user alice --name ci-deploy --scope read --scope write --expires-in 30d --json"
created=$("$KS" keys create --user alice --name ci-deploy --scope read --scope write --expires-in 30d --json)
echo "$created"
KEY=$(python3 "$SCRIPTS/json-field.py" key <<<"$created")
KEY_ID=$(python3 "$SCRIPTS/json-field.py" key_id <<<"$created")

step "Verify it (the key goes on stdin, never in argv)"
show "keyseal keys verify --json <<< \"\$KEY\""
"$KS" keys verify --json <<<"$KEY"

step "Rotate it with a one-hour grace period: both keys verify"
show "keyseal keys rotate --user alice $KEY_ID --grace 1h --json"
rotated=$("$KS" keys rotate --user alice "$KEY_ID" --grace 1h --json)
echo "$rotated"
NEW_KEY=$(python3 "$SCRIPTS/json-field.py" key <<<"$rotated")
show "keyseal keys verify <<< old key";  "$KS" keys verify <<<"$KEY"
show "keyseal keys verify <<< new key";  "$KS" keys verify <<<"$NEW_KEY"

step "Revoke the old key: it is refused at once"
show "keyseal keys revoke --user alice $KEY_ID"
"$KS" keys revoke --user alice "$KEY_ID"
show "keyseal keys verify --json <<< old key"
set +e
"$KS" keys verify --json <<<"$KEY"
echo "(exit code $?)"
set -e
show "keyseal keys list --user alice"
"$KS" keys list --user alice

step "Encrypt a secret with alice's data key, and decrypt it"
show "echo 'sk-proj-openai-0123456789' | keyseal encrypt --user alice"
TOKEN=$(echo 'sk-proj-openai-0123456789' | "$KS" "${M[@]}" encrypt --user alice)
echo "$TOKEN"
show "keyseal decrypt --user alice <<< \"\$TOKEN\""
"$KS" "${M[@]}" decrypt --user alice <<<"$TOKEN"

step "What is at rest in demo/keyseal.db: ciphertext and hashes only"
python3 "$SCRIPTS/demo-at-rest.py" "$KEYSEAL_DB" alice
echo
echo "Done. The store is demo/keyseal.db and the master key demo/master.key; run again to reuse them."
