"""Requests too large (HTTP 413): halve the batch, then truncate one span, never loop.

A proxy or a receiver answers 413 to a body over its limit, whatever the wire
format, so this belongs to HTTP sending, not to an encoding: any exporter that
POSTs batches of spans (Langfuse, OTLP, a webhook) wraps its send in
`send_splitting`. Plugins reach it through `obshub.plugin`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from obshub._exporters import ExportError
from obshub._json import json_string
from obshub.spans import Span, SpanEvent

__all__ = [
    "TRUNCATED_KEY",
    "TRUNCATE_ABOVE_BYTES",
    "send_splitting",
    "too_large_error",
    "truncated_span",
    "truncation_marker",
]

#: A field of an oversize span larger than this (as JSON) is replaced by a marker.
TRUNCATE_ABOVE_BYTES = 1024
_TRUNCATED_FIELDS = (
    "input",
    "output",
    "metadata",
    "attributes",
    "trace_metadata",
    "trace_attributes",
)
_TABLE_FIELDS = frozenset({"metadata", "attributes", "trace_metadata", "trace_attributes"})
#: The key a truncated table (metadata, attributes) keeps, holding the marker.
TRUNCATED_KEY = "obshub_truncated"
_HTTP_TOO_LARGE = 413


def truncation_marker(size: int) -> str:
    """What replaces a field too large to send: ``[obshub: truncated, 123456 bytes]``."""
    return f"[obshub: truncated, {size} bytes]"


def truncated_span(span: Span) -> Span:
    """``span`` with each large input, output, metadata and attributes replaced by a marker.

    A field is replaced when its JSON form exceeds `TRUNCATE_ABOVE_BYTES`;
    metadata and attributes (the span's and the trace's) become
    ``{"obshub_truncated": <marker>}``.
    """
    changes: dict[str, Any] = {}
    for field in _TRUNCATED_FIELDS:
        value = getattr(span, field)
        if value is None:
            continue
        size = len(json_string(value).encode("utf-8", "replace"))
        if size <= TRUNCATE_ABOVE_BYTES:
            continue
        marker = truncation_marker(size)
        changes[field] = {TRUNCATED_KEY: marker} if field in _TABLE_FIELDS else marker
    return attrs.evolve(span, **changes) if changes else span


def send_splitting(
    events: list[SpanEvent], send: Callable[[list[SpanEvent]], None], log: Any
) -> int:
    """``send(events)``, halving the batch on HTTP 413 (what proxies answer to large bodies).

    ``send`` raises `obshub.ExportError` on failure; only ``status == 413``
    is handled here, anything else propagates. A single span still refused is
    sent once more with `truncated_span` (``span_truncated`` is logged), never
    in a loop. Returns how many spans were refused even truncated
    (``span_too_large``).
    """
    try:
        send(events)
    except ExportError as exc:
        if exc.status != _HTTP_TOO_LARGE:
            raise
    else:
        return 0
    if len(events) > 1:
        half = len(events) // 2
        log.info("batch_split", spans=len(events), status=_HTTP_TOO_LARGE)
        return send_splitting(events[:half], send, log) + send_splitting(events[half:], send, log)
    event = events[0]
    where = {
        "span": event.span.name,
        "span_id": event.span.span_id,
        "trace_id": event.span.trace_id,
    }
    log.warning("span_truncated", status=_HTTP_TOO_LARGE, **where)
    try:
        send([attrs.evolve(event, span=truncated_span(event.span))])
    except ExportError as exc:
        if exc.status != _HTTP_TOO_LARGE:
            raise
        log.error("span_too_large", status=_HTTP_TOO_LARGE, **where)
        return 1
    return 0


def too_large_error(refused: int, total: int) -> ExportError:
    """The error for ``refused`` of ``total`` spans `send_splitting` could not send.

    Not retryable: the same spans would be refused again. The channel counts
    the batch as failed (or keeps it, with a ``spool_dir``).
    """
    return ExportError(
        f"{refused} of {total} spans rejected as too large (HTTP {_HTTP_TOO_LARGE}) even with "
        "their input, output, metadata and attributes truncated",
        retryable=False,
        status=_HTTP_TOO_LARGE,
    )
