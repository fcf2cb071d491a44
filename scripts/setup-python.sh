#!/usr/bin/env bash
# Installs what the Python interop tests need, skipping what is present.
set -euo pipefail
need=()
python3 -c 'import cryptography' 2>/dev/null || need+=(cryptography)
python3 -c 'import bcrypt' 2>/dev/null || need+=(bcrypt)
# The egregore relay's driver: the import tests fill its table the way it does.
python3 -c 'import asyncpg' 2>/dev/null || need+=(asyncpg)
if [ ${#need[@]} -eq 0 ]; then
  echo "==> python3: cryptography, bcrypt and asyncpg already installed"
else
  echo "==> python3: installing ${need[*]} with pip"
  python3 -m pip install --quiet "${need[@]}"
fi
