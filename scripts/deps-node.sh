#!/usr/bin/env bash
# Installs npm packages from a lock file: the UI's into web/node_modules by
# default, or those of the directory given (tests/integration/node for the
# tests that drive real OpenTelemetry JS exporters). Node.js/npm come from
# Debian when they are missing. Idempotent and quiet: `npm ci` runs only
# when the lock file changed since the last successful install (its sha256
# is kept in node_modules/.lock.sha256), so a build needs no network
# afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-web}"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  bash scripts/deps-debian.sh nodejs npm
fi
STAMP="$DIR/node_modules/.lock.sha256"
want="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
[ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] && exit 0
# Several builds may start at once: one installs, the others wait and see
# the stamp.
exec 9<"$0"
flock 9
[ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] && exit 0
echo "deps: npm ci in $DIR/" >&2
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$STAMP"
