"""A Node.js app's traces: the OpenTelemetry JS SDK with its OTLP/HTTP JSON
exporter from npm (@opentelemetry/exporter-trace-otlp-http), which encodes
OTLP/JSON its own way (ids as hex, 64-bit numbers as strings), sending
with a project key. Installed by scripts/deps-node.sh tests/integration/node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from ltlib import SLOW, bearer, cli_ok, create_key, poll

NODE_DIR = Path(__file__).with_name("node")


def test_js_sdk_otlp_json_exporter(lanterna, tmp_path):
    node = shutil.which("node")
    assert node, "node is missing: `make test` installs it (scripts/deps-node.sh)"
    assert (NODE_DIR / "node_modules").is_dir(), "run: bash scripts/deps-node.sh tests/integration/node"
    data = tmp_path / "data"
    server = lanterna(data=data)
    cli_ok("projects", "create", "billing", data=data)
    key = create_key(data, "billing")
    p = subprocess.run([node, str(NODE_DIR / "otlp_json.mjs"), server.url, key["secret_key"]],
                       capture_output=True, text=True, timeout=60 * SLOW, cwd=NODE_DIR)
    assert p.returncode == 0, p.stderr
    ids = json.loads(p.stdout.strip().splitlines()[-1])

    d = poll(lambda: (r := server.get(f"/api/v1/traces/{ids['trace_id']}", headers=bearer(key))).status_code == 200
             and len(r.json()["spans"]) == 3 and r.json(), what="the JS trace")
    spans = {s["span_id"]: s for s in d["spans"]}
    root, chat, tool = spans[ids["root"]], spans[ids["chat"]], spans[ids["tool"]]
    where = json.dumps(d)[:3000]
    assert root["parent_span_id"] is None and root["name"] == "handle-request" and root["otel_kind"] == 2, where
    assert chat["parent_span_id"] == ids["root"] and tool["parent_span_id"] == ids["root"], where
    assert (root["service"], root["environment"], root["scope"]) == ("js-support-bot", "staging", "support-bot"), where

    assert (chat["kind"], chat["otel_kind"], chat["provider"], chat["operation"]) == ("LLM", 3, "openai", "chat"), where
    assert (chat["request_model"], chat["response_model"]) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"), where
    assert (chat["input_tokens"], chat["output_tokens"], chat["finish_reason"]) == (120, 30, "stop"), where
    assert chat["cost_source"] == "computed" and chat["cost_usd"] > 0, where
    assert chat["input_messages"] == [{"role": "system", "content": "You answer billing questions."},
                                      {"role": "user", "content": "Why was I charged twice?"}], where
    assert chat["output_messages"] == [{"role": "assistant", "content": "The second charge is a pending hold."}], where
    # Numbers as the SDK sent them: a double, and an int the JSON carries as a string.
    assert chat["attributes"]["gen_ai.request.temperature"] == 0.7, where
    assert chat["attributes"]["gen_ai.request.max_tokens"] == 256, where
    assert 4 <= chat["duration_ms"] < 5000, where

    assert (tool["kind"], tool["status"], tool["status_message"]) == ("TOOL", "error", "invoice 42 not found"), where
    (exc,) = [e for e in tool["events"] if e["name"] == "exception"]
    assert exc["attributes"]["exception.message"] == "invoice 42 not found", where

    (row,) = [t for t in server.traces(headers=bearer(key)) if t["trace_id"] == ids["trace_id"]]
    assert (row["user_id"], row["session_id"], row["span_count"], row["error_count"]) == \
        ("js-user-7", "js-session-1", 3, 1)
    assert row["total_tokens"] == 150 and "gpt-4o-mini" in " ".join(row["models"])
    # Only in the key's project.
    assert not [t for t in server.traces() if t["trace_id"] == ids["trace_id"]]
