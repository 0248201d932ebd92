#!/usr/bin/env bash
# Sets up what `make bench` needs: the sqlite3 CLI, a Go toolchain (the load
# generator in bench/loadgen uses the standard library only) and the
# virtualenv .venv-bench with bench/requirements.txt (opentelemetry-proto for
# the payloads, arize-phoenix for the comparison; a minute or two the first
# time). Idempotent and quiet when there is nothing to do.
set -euo pipefail
here="$(dirname "$0")"
pkgs=(sqlite3 python3-venv)
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || pkgs+=(golang-go)
bash "$here/deps-debian.sh" "${pkgs[@]}"
exec bash "$here/venv.sh" .venv-bench bench/requirements.txt deps-bench
