#!/usr/bin/env python3
"""Prints one top-level field of a JSON object (keyseal's --json output) for shell scripts.

Usage: json-field.py FIELD [FILE]   (standard input without FILE)

Exits 1 with a message when the input is not a JSON object holding FIELD. Reads only.
"""
import json
import sys


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    field = sys.argv[1]
    if len(sys.argv) == 3:
        with open(sys.argv[2], encoding="utf-8") as f:
            text = f.read()
    else:
        text = sys.stdin.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        print(f"json-field: not JSON: {e}", file=sys.stderr)
        return 1
    if not isinstance(value, dict) or field not in value:
        print(f"json-field: no field {field!r} in the input", file=sys.stderr)
        return 1
    value = value[field]
    print(value if isinstance(value, str) else json.dumps(value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
