#!/usr/bin/env bash
# Browser tests of the web UI (tests/ui/run.mjs): starts the built server
# on a free loopback port with a temporary data directory, seeds it, runs
# the tests in the system Chromium, stops the server. A second server
# requires authentication (--require-auth, one admin user) for the login
# tests. Exit code = result.
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
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
port=$(free_port)
auth_port=$(free_port)
auth_log="$data/server-auth.log"
auth_user=admin
auth_password="ui-test-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
# env execs the binary, so $! is the server itself.
clean=(env -u LANTERNA_LISTEN -u LANTERNA_DATA -u LANTERNA_CONFIG)
"${clean[@]}" "$BIN" serve --listen "127.0.0.1:$port" --data "$data/db" >"$log" 2>&1 &
pid=$!
printf '%s\n' "$auth_password" | "${clean[@]}" "$BIN" users create "$auth_user" --password-stdin --data "$data/auth" >/dev/null
"${clean[@]}" "$BIN" serve --listen "127.0.0.1:$auth_port" --data "$data/auth" --require-auth >"$auth_log" 2>&1 &
auth_pid=$!
stop() {
  kill -TERM "$pid" "$auth_pid" 2>/dev/null && wait "$pid" "$auth_pid" 2>/dev/null || true
  rm -rf "$data"
}
trap stop EXIT
for p in "$port:$pid:$log" "$auth_port:$auth_pid:$auth_log"; do
  IFS=: read -r pp ppid plog <<<"$p"
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$pp/readyz" >/dev/null 2>&1 && break
    kill -0 "$ppid" 2>/dev/null || { echo "ui-test: server exited:" >&2; cat "$plog" >&2; exit 1; }
    sleep 0.1
  done
done

rc=0
BASE_URL="http://127.0.0.1:$port" AUTH_BASE_URL="http://127.0.0.1:$auth_port" AUTH_USER="$auth_user" \
  AUTH_PASSWORD="$auth_password" ARTIFACTS=build/ui-test-artifacts node tests/ui/run.mjs "$@" || rc=$?
# The servers must stop cleanly too (under sanitizers: nothing leaked).
for p in "$pid:$log" "$auth_pid:$auth_log"; do
  IFS=: read -r ppid plog <<<"$p"
  kill -TERM "$ppid"
  src=0
  wait "$ppid" || src=$?
  if [ $src -ne 0 ]; then
    echo "ui-test: a server exited $src on SIGTERM ($plog)" >&2
    rc=1
  fi
done
[ $rc -eq 0 ] || { for f in "$log" "$auth_log"; do echo "--- $(basename "$f") (tail)" >&2; tail -20 "$f" >&2; done; }
exit $rc
