"""Lanterna: tracing for LLM applications, sent to a Lanterna server.

    import lanterna
    lanterna.init()                      # or LANTERNA_* environment variables

    @lanterna.observe
    def answer(question): ...

    from lanterna.openai import openai   # drop-in: every chat call recorded

Standard library only; protobuf export when `opentelemetry-proto` is
installed. Nothing in this package raises into application code once the
configuration is accepted.
"""

__version__ = "0.1.0"

from ._core import Config, RemoteParent, Span, current_span as get_current_span, init, observe  # noqa: E402
from ._api import (  # noqa: E402
    continue_trace, extract, feedback, flush, generation, get_current_span_id, get_current_trace_id, inject,
    record_documents, retrieval, score, shutdown, span, start_span, stats, update_current_span,
    update_current_trace,
)
from . import _export  # noqa: E402,F401  (registers the exit flush and fork handler)

__all__ = [
    "init", "observe", "span", "start_span", "generation", "retrieval", "record_documents",
    "update_current_span", "update_current_trace", "get_current_span", "get_current_trace_id",
    "get_current_span_id", "score", "feedback", "flush", "shutdown", "stats", "inject", "extract",
    "continue_trace", "Span", "RemoteParent", "Config", "__version__",
]
