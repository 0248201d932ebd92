"""Runs the real Langfuse SDK against a Lanterna server, in its own
interpreter (the SDK installs a global OpenTelemetry tracer provider).

Usage: langfuse_client.py BASE_URL PUBLIC_KEY SECRET_KEY
Prints one JSON object: {"auth_check", "trace_id", "generation_id"}."""

from __future__ import annotations

import json
import os
import sys

base, pk, sk = sys.argv[1:4]
os.environ.update({"LANGFUSE_BASE_URL": base, "LANGFUSE_HOST": base,
                   "LANGFUSE_PUBLIC_KEY": pk, "LANGFUSE_SECRET_KEY": sk,
                   "LANGFUSE_TRACING_ENVIRONMENT": "staging"})

from langfuse import get_client, observe, propagate_attributes  # noqa: E402

lf = get_client()
out = {"auth_check": lf.auth_check()}


@observe(as_type="retriever")
def retrieve(question):
    return ["Cats sleep for most of the day.", "Cats purr when content."]


@observe(as_type="generation")
def generate(question, docs):
    out["generation_id"] = lf.get_current_observation_id()
    lf.update_current_generation(
        model="gpt-4o-mini",
        input=[{"role": "system", "content": "Answer from the documents."},
               {"role": "user", "content": question}],
        output="Cats sleep a lot and purr when content.",
        usage_details={"input": 42, "output": 9})
    return "Cats sleep a lot and purr when content."


@observe()
def answer(question):
    with propagate_attributes(user_id="u-42", session_id="s-7", tags=["migrated"]):
        docs = retrieve(question)
        text = generate(question, docs)
    out["trace_id"] = lf.get_current_trace_id()
    lf.score_current_trace(name="helpful", value=1.0, comment="the user said thanks")
    return text


answer("What do cats do all day?")
lf.create_score(name="relevance", value=0.25, trace_id=out["trace_id"], observation_id=out["generation_id"])
lf.create_score(name="tone", value="polite", data_type="CATEGORICAL", trace_id=out["trace_id"])
lf.create_score(name="resolved", value=1, data_type="BOOLEAN", session_id="s-7")
lf.flush()
lf.shutdown()
print(json.dumps(out))
