# The README's demo session, sourced by scripts/demo.sh (SQLite) and
# scripts/demo-postgres.sh (PostgreSQL): issue, verify, rotate, revoke an API key, then encrypt
# and decrypt a secret with alice's data key. Expects KS (the binary), SCRIPTS, M (the master
# key flags), step and show, and the store in KEYSEAL_DB.

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
