"""Requests too large (HTTP 413): halve the batch, then truncate one span, never loop."""

from __future__ import annotations

from typing import Any

import pytest

import obshub
from obshub.plugin import TRUNCATE_ABOVE_BYTES, send_splitting, too_large_error, truncated_span
from obshub.testing import make_event


class _Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.events.append((level, event))


def _too_large_above(limit: int, sent: list[list[str]]) -> Any:
    def send(chunk: list[obshub.SpanEvent]) -> None:
        size = sum(len(str(e.span.input)) for e in chunk)
        if size > limit:
            raise obshub.ExportError("too large", status=413)
        sent.append([e.span.span_id for e in chunk])

    return send


def test_a_refused_batch_is_halved_until_the_parts_fit() -> None:
    events = [make_event(input="x" * 100) for _ in range(8)]
    sent: list[list[str]] = []
    log = _Log()
    assert send_splitting(events, _too_large_above(250, sent), log) == 0
    assert sorted(i for chunk in sent for i in chunk) == sorted(e.span.span_id for e in events)
    assert all(len(chunk) <= 2 for chunk in sent)
    assert ("info", "batch_split") in log.events


def test_a_single_span_too_large_is_sent_once_truncated() -> None:
    big = make_event(input="x" * 50_000, metadata={"blob": "y" * 5_000})
    sent: list[obshub.SpanEvent] = []

    def send(chunk: list[obshub.SpanEvent]) -> None:
        if len(str(chunk[0].span.input)) > 1_000:
            raise obshub.ExportError("too large", status=413)
        sent.extend(chunk)

    log = _Log()
    assert send_splitting([big], send, log) == 0
    (only,) = sent
    assert only.span.input == "[obshub: truncated, 50002 bytes]"
    assert only.span.metadata == {"obshub_truncated": "[obshub: truncated, 5011 bytes]"}
    assert only.span.span_id == big.span.span_id
    assert log.events == [("warning", "span_truncated")]


def test_a_span_refused_even_truncated_is_counted_not_retried() -> None:
    calls: list[int] = []

    def send(chunk: list[obshub.SpanEvent]) -> None:
        calls.append(len(chunk))
        raise obshub.ExportError("too large", status=413)

    log = _Log()
    assert send_splitting([make_event(), make_event()], send, log) == 2
    assert calls == [2, 1, 1, 1, 1]  # whole, then each half and its truncated copy
    assert ("error", "span_too_large") in log.events


def test_other_errors_propagate_unchanged() -> None:
    def send(chunk: list[obshub.SpanEvent]) -> None:
        raise obshub.ExportError("unavailable", status=503, retryable=True)

    with pytest.raises(obshub.ExportError) as raised:
        send_splitting([make_event()], send, _Log())
    assert raised.value.status == 503


def test_small_fields_are_kept_when_truncating() -> None:
    span = make_event(input="short", output="o" * (TRUNCATE_ABOVE_BYTES * 2)).span
    smaller = truncated_span(span)
    assert smaller.input == "short"
    assert str(smaller.output).startswith("[obshub: truncated, ")
    assert truncated_span(smaller) == smaller  # already small enough: unchanged


def test_spans_refused_even_truncated_make_an_error_that_is_not_retried() -> None:
    error = too_large_error(2, 8)
    assert (error.retryable, error.status, error.pause) == (False, 413, None)
    assert str(error).startswith("2 of 8 spans rejected as too large (HTTP 413)")
