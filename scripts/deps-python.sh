#!/usr/bin/env bash
# Creates the test virtualenv .venv at the repository root and installs
# tests/requirements.txt into it. Idempotent and quiet when there is nothing
# to do: pip runs only when the requirements file changed since the last
# successful install (its sha256 is kept in .venv/.requirements.sha256).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
REQ=tests/requirements.txt
STAMP="$VENV/.requirements.sha256"

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "deps-python: creating $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
fi
echo "deps-python: installing $REQ into $VENV" >&2
rm -f "$STAMP"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
echo "deps-python: done" >&2
