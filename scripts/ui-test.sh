#!/usr/bin/env bash
# Browser tests of the web UI (tests/ui/run.mjs): starts the built server
# on a free loopback port with a temporary data directory, seeds it, runs
# the tests in the system Chromium, stops the server. Exit code = result.
# Screenshots and measurements go to build/ui-test-artifacts/.
# Usage: scripts/ui-test.sh [test-name-filter]   (LANTERNA_BIN overrides the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LANTERNA_BIN:-build/lanterna}
[ -x "$BIN" ] || { echo "ui-test: $BIN not built (run make)" >&2; exit 2; }
bash scripts/deps-node.sh
bash scripts/deps-debian.sh chromium

data=$(mktemp -d)
log="$data/server.log"
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
env -u LANTERNA_LISTEN -u LANTERNA_DATA -u LANTERNA_CONFIG \
  "$BIN" serve --listen "127.0.0.1:$port" --data "$data/db" >"$log" 2>&1 &
pid=$!
stop() {
  kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "ui-test: server exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done

rc=0
BASE_URL="http://127.0.0.1:$port" ARTIFACTS=build/ui-test-artifacts node tests/ui/run.mjs "$@" || rc=$?
# The server must stop cleanly too (under sanitizers: nothing leaked).
kill -TERM "$pid"
src=0
wait "$pid" || src=$?
if [ $src -ne 0 ]; then
  echo "ui-test: the server exited $src on SIGTERM" >&2
  rc=1
fi
[ $rc -eq 0 ] || { echo "--- server log (tail)" >&2; tail -20 "$log" >&2; }
exit $rc
