"""Factories for the values exporters receive, and a realistic agent trace.

`make_span`, `make_event`, `make_score`, `make_trace` (the agent trace as the
`SpanEvent` list a hub would hand an exporter) and `record_trace` (the same
trace recorded through a real `Hub`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from obshub._hub import Hub
from obshub.spans import (
    Cost,
    EventKind,
    Level,
    Prompt,
    Score,
    Span,
    SpanError,
    SpanEvent,
    SpanType,
    Usage,
    new_span_id,
    new_trace_id,
    time_to_ns,
)

__all__ = ["TRACE_SPANS", "make_event", "make_score", "make_span", "make_trace", "record_trace"]

#: Spans in the trace of `make_trace` and `record_trace`.
TRACE_SPANS = 4

_MS = 1_000_000


def _coerce_span_fields(fields: dict[str, Any]) -> dict[str, Any]:
    if "type" in fields:
        fields["type"] = SpanType(fields["type"])
    if "level" in fields:
        fields["level"] = Level(fields["level"])
    for key, coerce in (("usage", Usage.coerce), ("cost", Cost.coerce), ("prompt", Prompt.coerce)):
        if fields.get(key) is not None:
            fields[key] = coerce(fields[key])
    error = fields.get("error")
    if isinstance(error, BaseException):
        fields["error"] = SpanError(message=str(error), type=type(error).__name__)
    elif isinstance(error, Mapping):
        fields["error"] = SpanError(**error)
    if "tags" in fields:
        tags = fields["tags"]
        fields["tags"] = (tags,) if isinstance(tags, str) else tuple(tags)
    for key in ("start_time", "end_time", "completion_start_time"):
        if fields.get(key) is not None:
            fields[key] = time_to_ns(fields[key])
    return fields


def make_span(**overrides: Any) -> Span:
    """A finished `Span` with fresh ids, lasting 1.5 ms from now.

    Any field can be given; ``type`` and ``level`` take their string values,
    ``usage``, ``cost`` and ``prompt`` take dicts, ``error`` takes an
    exception or a dict, times take datetimes or epoch seconds too, and
    ``end_time=None`` makes a running span::

        make_span(name="gpt-4o", type="model_generation", usage={"input": 10, "output": 2})
    """
    fields = _coerce_span_fields(dict(overrides))
    start = fields.get("start_time")
    if start is None:
        start = time.time_ns()
    values: dict[str, Any] = {
        "trace_id": new_trace_id(),
        "span_id": new_span_id(),
        "name": "span",
        "start_time": start,
        "end_time": start + 3 * _MS // 2,
    }
    values.update(fields)
    return Span(**values)


def make_event(
    kind: EventKind | str = EventKind.ENDED,
    *,
    span: Span | None = None,
    config_name: str = "default",
    service_name: str = "obshub-test",
    **span_fields: Any,
) -> SpanEvent:
    """A `SpanEvent` of ``kind`` for ``span`` (or ``make_span(**span_fields)``).

    A ``started`` or ``updated`` event's span has no ``end_time`` unless one
    is given, as in a running span.
    """
    event_kind = EventKind(kind)
    if span is None:
        if event_kind is not EventKind.ENDED:
            span_fields.setdefault("end_time", None)
        span = make_span(**span_fields)
    elif span_fields:
        span = attrs.evolve(span, **_coerce_span_fields(dict(span_fields)))
    return SpanEvent(kind=event_kind, span=span, config_name=config_name, service_name=service_name)


QUESTION = "Where is my order A-1042?"
ANSWER = "Order A-1042 is in transit and arrives on 29 November."
_ORDER = {"order_id": "A-1042", "status": "in_transit", "eta": "2026-11-29"}
_MESSAGES = [
    {"role": "system", "content": "You are the support agent of Acme Parcel. Be brief."},
    {"role": "user", "content": QUESTION},
]
_USAGE = {"input": 812, "output": 95, "total": 907, "cached_input": 256}
_COST = {"input": 0.000122, "output": 0.000057, "total": 0.000179}
_PARAMETERS = {"temperature": 0.2, "max_tokens": 512}
_PROMPT = {"name": "support-agent", "version": 3}


def make_trace(
    *,
    kinds: Iterable[EventKind | str] = (EventKind.ENDED,),
    config_name: str = "default",
    service_name: str = "obshub-test",
    session_id: str | None = "s-42",
    user_id: str | None = "u-7",
    tags: Sequence[str] = ("support", "beta"),
    start_time: int | None = None,
) -> list[SpanEvent]:
    """A realistic agent trace as the span events a hub would hand an exporter.

    Four spans (`TRACE_SPANS`): the root ``support-agent``
    (``agent_run``), ``gpt-4o-mini`` (``model_generation`` with model,
    provider, parameters, prompt, usage, cost and time to first token),
    ``lookup_order`` (``tool_call``) and ``order-found`` (an event span).
    ``kinds`` picks which events are included (``make_trace(kinds=exporter.event_kinds)``);
    they come in the order they happen, so children end before the root.
    """
    wanted = {EventKind(k) for k in kinds}
    t0 = time.time_ns() if start_time is None else start_time
    trace_id = new_trace_id()
    root_id, gen_id, tool_id, event_id = (new_span_id() for _ in range(4))
    common: dict[str, Any] = {
        "trace_id": trace_id,
        "session_id": session_id,
        "user_id": user_id,
        "tags": tuple(tags),
        "trace_name": "support-agent",
    }
    root = Span(
        span_id=root_id,
        name="support-agent",
        type=SpanType.AGENT_RUN,
        start_time=t0,
        end_time=t0 + 1201 * _MS,
        input=QUESTION,
        output=ANSWER,
        metadata={"channel": "chat"},
        **common,
    )
    generation = Span(
        span_id=gen_id,
        parent_span_id=root_id,
        name="gpt-4o-mini",
        type=SpanType.MODEL_GENERATION,
        start_time=t0 + 5 * _MS,
        end_time=t0 + 905 * _MS,
        input=_MESSAGES,
        output={"tool_call": {"name": "lookup_order", "arguments": {"order_id": "A-1042"}}},
        model="gpt-4o-mini",
        provider="openai",
        parameters=_PARAMETERS,
        usage=Usage.coerce(_USAGE),
        cost=Cost.coerce(_COST),
        completion_start_time=t0 + 320 * _MS,
        prompt=Prompt.coerce(_PROMPT),
        **common,
    )
    tool = Span(
        span_id=tool_id,
        parent_span_id=root_id,
        name="lookup_order",
        type=SpanType.TOOL_CALL,
        start_time=t0 + 910 * _MS,
        end_time=t0 + 960 * _MS,
        input={"order_id": "A-1042"},
        output=_ORDER,
        **common,
    )
    found = Span(
        span_id=event_id,
        parent_span_id=root_id,
        name="order-found",
        start_time=t0 + 965 * _MS,
        end_time=t0 + 965 * _MS,
        metadata={"order_id": "A-1042"},
        is_event=True,
        **common,
    )
    # (moment, kind, snapshot): a started snapshot has no output and no end yet.
    timeline: list[tuple[int, EventKind, Span]] = []
    for span, updated_at in ((root, 1200), (generation, 900), (tool, None)):
        running = attrs.evolve(span, end_time=None)
        timeline.append((span.start_time, EventKind.STARTED, attrs.evolve(running, output=None)))
        if updated_at is not None:
            timeline.append((t0 + updated_at * _MS, EventKind.UPDATED, running))
        assert span.end_time is not None
        timeline.append((span.end_time, EventKind.ENDED, span))
    timeline.append((found.start_time, EventKind.ENDED, found))
    timeline.sort(key=lambda item: item[0])
    return [
        SpanEvent(kind=kind, span=span, config_name=config_name, service_name=service_name)
        for _, kind, span in timeline
        if kind in wanted
    ]


def make_score(**overrides: Any) -> Score:
    """A `Score` (``helpfulness`` = 0.9 on a fresh trace id); fields override."""
    values: dict[str, Any] = {
        "name": "helpfulness",
        "value": 0.9,
        "trace_id": new_trace_id(),
        "comment": "clear answer",
        "metadata": {"rater": "obshub.testing"},
        "timestamp": time.time_ns(),
        "config_name": "default",
    }
    values.update(overrides)
    return Score(**values)


def record_trace(hub: Hub, *, score: bool = True) -> str:
    """Record `make_trace`'s agent trace through ``hub``; return its trace id.

    Every span is started, the generation, the tool call and the root are
    updated, and all end, so an exporter sees each event kind it asks for.
    With ``score``, ``helpfulness`` = 0.9 is scored on the trace afterwards.
    """
    with hub.span(
        "support-agent",
        type="agent_run",
        input=QUESTION,
        session_id="s-42",
        user_id="u-7",
        tags=["support", "beta"],
        metadata={"channel": "chat"},
    ) as agent:
        with hub.span(
            "gpt-4o-mini",
            type="model_generation",
            input=_MESSAGES,
            model="gpt-4o-mini",
            provider="openai",
            parameters=_PARAMETERS,
            prompt=_PROMPT,
        ) as generation:
            generation.update(
                output={"tool_call": {"name": "lookup_order", "arguments": {"order_id": "A-1042"}}},
                usage=_USAGE,
                cost=_COST,
                completion_start_time=time.time_ns(),
            )
        with hub.span("lookup_order", type="tool_call", input={"order_id": "A-1042"}) as tool:
            tool.update(output=_ORDER)
        agent.event("order-found", metadata={"order_id": "A-1042"})
        agent.update(output=ANSWER)
    if score:
        hub.score(trace_id=agent.trace_id, name="helpfulness", value=0.9, comment="clear answer")
    return agent.trace_id
