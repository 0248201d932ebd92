#!/usr/bin/env bash
# Installs Prometheus (the server and promtool) from Debian, for the
# Prometheus scrape test (tests/integration/test_prometheus.py).
# Idempotent, like deps-debian.sh.
set -euo pipefail
bash "$(dirname "$0")/deps-debian.sh" prometheus
for tool in prometheus promtool; do
  if ! command -v "$tool" >/dev/null; then
    echo "deps: '$tool' is not on PATH after installing the Debian package 'prometheus'" >&2
    exit 1
  fi
done
