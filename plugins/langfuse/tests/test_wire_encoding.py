"""The Langfuse exporter's direct protobuf bytes equal the message classes' encoding.

The exporter encodes through ``obshub_otlp.encoding.encode_spans_parts`` (the
OTLP wire format written directly) with Langfuse's own attributes; the bytes
must equal what ``opentelemetry-proto``'s messages serialise to
(``obshub_otlp._reference``), for every kind of span Langfuse receives.
"""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_otlp._reference import reference_encode_spans
from obshub_otlp.wire import gzip_body

from obshub.spans import (
    Cost,
    EventKind,
    Level,
    Prompt,
    Span,
    SpanError,
    SpanEvent,
    SpanType,
    Usage,
)


def _exporter(**options: Any) -> LangfuseExporter:
    return LangfuseExporter(
        public_key="pk-lf-test",
        secret_key="sk-lf-test",
        base_url="http://127.0.0.1:9",
        **options,
    )


def _events() -> list[SpanEvent]:
    spans = []
    for n, span_type in enumerate(SpanType, start=1):
        spans.append(
            Span(
                trace_id="0af7651916cd43dd8448eb211c80319c",
                span_id=f"{n:016x}",
                parent_span_id=None if n == 1 else "0000000000000001",
                name=f"{span_type.value} ✓",
                type=span_type,
                start_time=1_767_225_600_000_000_000,
                end_time=1_767_225_601_000_000_000,
                input=[{"role": "user", "content": "héllo " * n}],
                output={"answer": "🙂" * n, "score": 0.5, "ok": True, "n": -(2**40)},
                model="gpt-4o",
                provider="openai",
                parameters={"temperature": 0.2, "max_tokens": 512},
                usage=Usage(input=812, output=95, cached_input=200),
                cost=Cost(total=0.003),
                prompt=Prompt(name="support", version=n),
                session_id="s-1",
                user_id="u-1",
                tags=("a", "b"),
                metadata={"team": "search", "big": 2**70},
                attributes={"app.flag": True, "app.list": [1, 2]},
                level=Level.ERROR if n % 3 == 0 else Level.DEFAULT,
                status_message="slow" if n % 2 else None,
                error=SpanError(message="boom", type="ValueError") if n % 4 == 0 else None,
                trace_name="agent-trace",
                trace_metadata={"release": "1.2"},
            )
        )
    return [
        SpanEvent(kind=EventKind.ENDED, span=s, config_name="c", service_name="svc") for s in spans
    ]


@pytest.mark.parametrize("options", [{}, {"options": {"environment": "staging", "release": "1.0"}}])
def test_the_exporter_sends_the_bytes_the_message_classes_would(options: dict[str, Any]) -> None:
    exporter = _exporter(**options)
    events = _events()
    parts = exporter._encode(events)
    expected = reference_encode_spans(
        events,
        extra_attributes=exporter._attributes,
        resource_attributes=exporter._resource,
        conventions=False,
    ).SerializeToString()
    assert b"".join(parts) == expected
    assert gzip.decompress(gzip_body(parts)) == expected
