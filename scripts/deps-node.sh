#!/usr/bin/env bash
# Installs the UI's npm packages into web/node_modules from
# web/package-lock.json, and Node.js/npm from Debian when they are missing.
# Idempotent and quiet: `npm ci` runs only when the lock file changed since
# the last successful install (its sha256 is kept in
# web/node_modules/.lock.sha256), so a build needs no network afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  bash scripts/deps-debian.sh nodejs npm
fi
STAMP=web/node_modules/.lock.sha256
want="$(sha256sum web/package-lock.json | cut -d' ' -f1)"
[ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] && exit 0
# Several builds may start at once: one installs, the others wait and see
# the stamp.
exec 9<"$0"
flock 9
[ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] && exit 0
echo "deps: npm ci in web/" >&2
(cd web && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$STAMP"
