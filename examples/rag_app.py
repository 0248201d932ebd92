"""A small retrieval-augmented answer bot, traced with the Lanterna SDK.

    make run                                  # a Lanterna server on 127.0.0.1:4318
    pip install openai                        # plus the SDK: pip install ./sdk/python
    python examples/rag_app.py "Which planet has the most moons?"

Without OPENAI_API_KEY it starts the local fake OpenAI server the tests use
(answers echo the question), so it runs offline; with a key it calls the
real API (OPENAI_BASE_URL and RAG_MODEL are honoured). Each question becomes
one trace: the `answer` chain, a `retrieve` RETRIEVER span with the scored
documents, a streamed `chat` generation with tokens, cost and time to first
token, then a user's thumbs up/down and an automatic groundedness score.
The script prints the trace id and the URL that shows it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sdk", "python"))  # the SDK from this checkout, if not installed

import lanterna  # noqa: E402
from lanterna.openai import OpenAI  # noqa: E402  (drop-in: records every chat call)

DOCS = [
    {"id": "kb-1", "content": "Saturn has 274 confirmed moons, more than any other planet.",
     "metadata": {"source": "astronomy-faq", "updated": "2025-03"}},
    {"id": "kb-2", "content": "Jupiter has 95 confirmed moons; Ganymede is the largest moon in the solar system.",
     "metadata": {"source": "astronomy-faq"}},
    {"id": "kb-3", "content": "Mars has two small moons, Phobos and Deimos.", "metadata": {"source": "mars-101"}},
    {"id": "kb-4", "content": "The Moon is Earth's only natural satellite.", "metadata": {"source": "earth-101"}},
    {"id": "kb-5", "content": "Venus and Mercury have no moons at all.", "metadata": {"source": "astronomy-faq"}},
]

WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set:
    return set(WORD.findall(text.lower())) - {"the", "a", "of", "has", "is", "and", "which", "what", "any"}


@lanterna.observe(kind="retriever")
def retrieve(question: str, k: int = 3) -> list:
    """Keyword-overlap search over the tiny knowledge base; a real app would
    query a vector store here. Returning id/content/score dicts is enough for
    the SDK to record them as retrieved documents."""
    q = words(question)
    scored = [{**d, "score": round(len(q & words(d["content"])) / (len(q) or 1), 3)} for d in DOCS]
    scored.sort(key=lambda d: d["score"], reverse=True)
    return scored[:k]


@lanterna.observe
def generate(client, model: str, question: str, docs: list) -> str:
    context = "\n".join(f"[{d['id']}] {d['content']}" for d in docs)
    messages = [
        {"role": "system", "content": "Answer from the context only and cite document ids.\n\n" + context},
        {"role": "user", "content": question},
    ]
    stream = client.chat.completions.create(model=model, messages=messages, temperature=0.2, stream=True,
                                            stream_options={"include_usage": True})
    parts = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


@lanterna.observe
def answer(client, model: str, question: str, user: str, session: str) -> dict:
    lanterna.update_current_trace(user_id=user, session_id=session, tags=["rag-demo"],
                                  metadata={"feature": "kb-answer", "kb_size": len(DOCS)})
    docs = retrieve(question)
    text = generate(client, model, question, docs)
    return {"answer": text, "sources": [d["id"] for d in docs]}


def groundedness(answer_text: str, docs: list) -> float:
    """Share of the answer's words found in the retrieved documents: a cheap
    stand-in for an LLM judge."""
    a = words(answer_text)
    ctx = set().union(*(words(d["content"]) for d in docs)) if docs else set()
    return round(len(a & ctx) / (len(a) or 1), 3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("question", nargs="?", default="Which planet has the most moons?")
    ap.add_argument("--lanterna", default=os.environ.get("LANTERNA_BASE_URL", "http://127.0.0.1:4318"),
                    help="Lanterna server URL (default: %(default)s)")
    ap.add_argument("--user", default="demo-user")
    ap.add_argument("--session", default=None, help="conversation id (default: a new one)")
    ap.add_argument("--thumbs", choices=["up", "down"], default="up", help="the feedback to send")
    args = ap.parse_args(argv)

    lanterna.init(base_url=args.lanterna, service_name="rag-demo", environment="dev", release="1.0.0")

    fake = None
    if not os.environ.get("OPENAI_API_KEY"):
        sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
        from fake_openai import FakeOpenAI
        fake = FakeOpenAI().start()
        client = OpenAI(base_url=fake.base_url, api_key="sk-fake")
        print(f"no OPENAI_API_KEY: using the local fake OpenAI at {fake.base_url}")
    else:
        client = OpenAI()
    model = os.environ.get("RAG_MODEL", "gpt-4o-mini")

    try:
        with lanterna.span("rag request") as root:
            result = answer(client, model, args.question, args.user, args.session or "sess-" + uuid.uuid4().hex[:8])
        print(f"Q: {args.question}\nA: {result['answer']}\nsources: {', '.join(result['sources'])}")

        # Later, e.g. from the web handler that receives the user's click:
        lanterna.feedback(root.trace_id, 1 if args.thumbs == "up" else -1, comment="from the demo")
        docs = [d for d in DOCS if d["id"] in result["sources"]]
        lanterna.score("groundedness", groundedness(result["answer"], docs), trace_id=root.trace_id,
                       source="evaluator", comment="word overlap with the retrieved documents")
    finally:
        if fake is not None:
            fake.stop()
    ok = lanterna.flush(10)
    print(f"trace: {root.trace_id}")
    print(f"view:  curl -s {args.lanterna}/api/v1/traces/{root.trace_id}")
    if not ok or lanterna.stats().get("failed_spans"):
        print(f"warning: not everything reached {args.lanterna} (is the server running?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
