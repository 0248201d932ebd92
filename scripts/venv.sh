#!/usr/bin/env bash
# Usage: scripts/venv.sh VENV REQUIREMENTS LABEL
# Creates the virtualenv VENV (repository-relative) and installs the
# REQUIREMENTS file into it. Idempotent and quiet when there is nothing to
# do: pip runs only when the requirements file changed since the last
# successful install (its sha256 is kept in VENV/.requirements.sha256).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$1 REQ=$2 LABEL=$3
STAMP="$VENV/.requirements.sha256"

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "$LABEL: creating $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
fi
echo "$LABEL: installing $REQ into $VENV" >&2
rm -f "$STAMP"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
echo "$LABEL: done" >&2
