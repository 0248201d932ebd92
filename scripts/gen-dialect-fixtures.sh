#!/usr/bin/env bash
# Regenerates tests/fixtures/dialects/: runs each real instrumentation
# library (Python ones in .venv-fixtures, the Vercel AI SDK under node)
# against the fake OpenAI upstream and captures the OTLP requests it sends.
# Not part of `make test`: the captured requests are committed, and
# expected.json beside them is reviewed by hand after a regeneration
# (tests/fixtures/gen/expect.py drafts it).
#   scripts/gen-dialect-fixtures.sh [DIALECT...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh .venv-fixtures tests/fixtures/gen/requirements.txt gen-fixtures
(cd tests/fixtures/gen/node && npm ci --no-audit --no-fund --loglevel=error)
all=(openinference openllmetry otel-genai langfuse pydantic-ai vercel-ai-v4 vercel-ai-v6 vercel-ai-v7)
for d in "${@:-${all[@]}}"; do
  .venv-fixtures/bin/python tests/fixtures/gen/gen.py "$d" "tests/fixtures/dialects/$d"
done
