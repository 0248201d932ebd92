#!/usr/bin/env bash
# Sets up what `make bench` needs: the sqlite3 CLI, a Go toolchain (the load
# generator in bench/loadgen uses the standard library only) and the
# virtualenv .venv-bench with bench/requirements.txt (opentelemetry-proto for
# the payloads, arize-phoenix for the comparison). Idempotent and quiet when
# there is nothing to do: pip runs only when bench/requirements.txt changed
# since the last successful install (sha256 in .venv-bench/.requirements.sha256).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

pkgs=(sqlite3 python3-venv)
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || pkgs+=(golang-go)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps-bench: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

VENV=.venv-bench
REQ=bench/requirements.txt
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "deps-bench: creating $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
fi
echo "deps-bench: installing $REQ into $VENV (arize-phoenix is large: a minute or two)" >&2
rm -f "$STAMP"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
echo "deps-bench: done" >&2
