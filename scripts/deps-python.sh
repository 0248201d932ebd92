#!/usr/bin/env bash
# The test virtualenv .venv with tests/requirements.txt (see scripts/venv.sh).
set -euo pipefail
exec bash "$(dirname "$0")/venv.sh" .venv tests/requirements.txt deps-python
