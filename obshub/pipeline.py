"""A route: one named configuration at run time.

The application thread hands a route small records (`PendingEvent`);
the route appends each to the channel of every exporter that wants that kind
of event. The first worker that needs the record builds the immutable
`SpanEvent` (validation, JSON-safe conversion,
processors) once, and every exporter of the config shares it. Shared safely:
the span's values are read-only all the way down (``FrozenDict`` /
``FrozenList``, built in the conversion pass), so no exporter can change what
another receives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from obshub._frozen import FrozenDict, frozen_dict
from obshub._logging import RateLimitedLog, get_logger
from obshub._size import approx_size
from obshub.delivery import Channel
from obshub.exporters import Exporter
from obshub.processors import SpanProcessor
from obshub.sampling import Sampler
from obshub.serialization import DEFAULT_LIMITS, Limits, clean_text, to_jsonable
from obshub.spans import (
    Cost,
    EventKind,
    Level,
    Prompt,
    Score,
    Span,
    SpanError,
    SpanEvent,
    Usage,
    time_to_ns,
)

if TYPE_CHECKING:
    from obshub.tracing import LiveSpan, TraceState

__all__ = ["PendingEvent", "Route"]

_log = get_logger()
_limited = RateLimitedLog()
_UNBUILT: Any = object()
_EMPTY = FrozenDict()
_LEVELS = {level.value: level for level in Level} | {level: level for level in Level}


class PendingEvent:
    """A span event as queued by the application thread, built lazily."""

    __slots__ = ("_event", "end_time", "fields", "is_event", "kind", "live", "route", "size")

    def __init__(
        self,
        route: Route,
        kind: EventKind,
        live: LiveSpan,
        fields: dict[str, Any],
        end_time: int | None,
        is_event: bool = False,
    ) -> None:
        self.route = route
        self.is_event = is_event
        self.kind = kind
        self.live = live
        self.fields = fields
        self.end_time = end_time
        self._event = _UNBUILT
        self.size = approx_size(fields)

    def build_event(self) -> SpanEvent | None:
        """The snapshot event (None when a processor dropped it)."""
        event = self._event
        if event is _UNBUILT:
            # Two workers may race here; both build the same value and either
            # result is correct, so no lock is needed on this path.
            event = self.route.build(
                self.kind, self.live, self.fields, self.end_time, self.is_event
            )
            self._event = event
        return event  # type: ignore[no-any-return]


def _as_json(value: Any, limits: Limits) -> Any:
    # Read-only dicts and lists, built in the same pass: every exporter of the
    # config receives this very value (see obshub/_frozen.py).
    return to_jsonable(value, limits, frozen=True)


def _as_table(value: Any, limits: Limits) -> Mapping[str, Any]:
    if value is None:  # e.g. an optional ``metadata=None`` passed through
        return _EMPTY
    converted = to_jsonable(value, limits, frozen=True)
    return converted if isinstance(converted, dict) else frozen_dict({"value": converted})


def _as_text(value: Any, limits: Limits) -> str | None:
    if value is None:
        return None
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # the caller's __str__ raised: to_jsonable marks the object
        text = value
    converted = to_jsonable(text, limits)  # never raises; cleans lone surrogates
    return converted if isinstance(converted, str) else str(converted)


def _as_level(value: Any, _limits: Limits) -> Level:
    level = _LEVELS.get(value.lower() if isinstance(value, str) else value)
    if level is None:
        raise ValueError("expected debug, default, warning or error")
    return level


def _as_error(value: Any, _limits: Limits) -> SpanError:
    if not isinstance(value, SpanError):
        raise TypeError("expected a SpanError")
    return value


#: How each span field set by the application is made safe on the worker; a key
#: not listed here is not a span field.
_NORMALISERS: dict[str, Callable[[Any, Limits], Any]] = {
    "input": _as_json,
    "output": _as_json,
    "metadata": _as_table,
    "attributes": _as_table,
    "parameters": _as_table,
    "usage": lambda v, _l: None if v is None else Usage.coerce(v),
    "cost": lambda v, _l: None if v is None else Cost.coerce(v),
    "prompt": lambda v, _l: None if v is None else Prompt.coerce(v),
    "level": _as_level,
    "completion_start_time": lambda v, _l: time_to_ns(v),
    "error": _as_error,
    "model": _as_text,
    "provider": _as_text,
    "status_message": _as_text,
    "name": _as_text,
}


def _root_table(trace: TraceState, field: str, limits: Limits) -> Mapping[str, Any]:
    """The root's ``metadata`` or ``attributes`` made safe, as a child's snapshot carries them.

    Made safe once per value of the root's field (the root replaces the value
    when it changes, never mutates it), not once per child.
    """
    raw = getattr(trace, field)
    if raw is None:
        return {}
    cache = trace.safe_tables
    hit = None if cache is None else cache.get(field)
    if hit is not None and hit[0] is raw:
        return hit[1]
    try:
        table = _as_table(raw, limits)
    except Exception:  # the root's own snapshot reports the bad value
        table = {}
    trace.safe_tables = {**(cache or {}), field: (raw, table)}
    return table


class Route:
    """One named configuration: sampling, processors and exporter channels."""

    def __init__(
        self,
        name: str,
        service_name: str,
        sampler: Sampler,
        processors: Sequence[SpanProcessor],
        exporters: Sequence[Exporter],
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.name = name
        self.service_name = service_name
        self.sampler = sampler
        self.processors = tuple(processors)
        self.exporters = tuple(exporters)
        self.limits = limits
        # A disabled exporter (enabled=False in code, or one that disabled itself,
        # e.g. for missing credentials) gets no channel: nothing is queued for it.
        self.channels: tuple[Channel, ...] = tuple(Channel(e, name) for e in exporters if e.enabled)
        self.started = self._wanting(EventKind.STARTED)
        self.updated = self._wanting(EventKind.UPDATED)
        self.ended = self._wanting(EventKind.ENDED)
        self._by_kind = {
            EventKind.STARTED: self.started,
            EventKind.UPDATED: self.updated,
            EventKind.ENDED: self.ended,
        }
        self._lock = threading.Lock()

    def _wanting(self, kind: EventKind) -> tuple[Channel, ...]:
        return tuple(c for c in self.channels if kind in c.exporter.event_kinds)

    # -- application thread ------------------------------------------------------

    def emit(
        self, kind: EventKind, live: LiveSpan, fields: dict[str, Any], end_time: int | None
    ) -> None:
        """Queue one event of ``live`` for every channel that wants ``kind``."""
        channels = self._by_kind[kind]
        if channels:
            record = PendingEvent(self, kind, live, fields, end_time)
            for channel in channels:
                channel.put(record)

    def score(self, **fields: Any) -> None:
        """Queue a score for every exporter of the config that takes scores.

        Scores are rare, so they are made JSON-safe here rather than on a worker.
        """
        value = fields.get("value")
        if not isinstance(value, (bool, int, float, str)):
            raise TypeError(
                f"a score value is a number, bool or string, not {type(value).__name__}"
            )
        if isinstance(value, float) and value - value != 0.0:
            raise ValueError("a score value must be a finite number")
        if fields.get("metadata") is not None:
            fields["metadata"] = _as_table(fields["metadata"], self.limits)
        backend = fields.get("backend_fields")
        if backend is not None:
            if not isinstance(backend, Mapping) or not all(
                isinstance(entry, Mapping) for entry in backend.values()
            ):
                raise TypeError(
                    'backend_fields is a table of tables, e.g. {"langfuse": {"config_id": ...}}'
                )
            converted = to_jsonable(backend, self.limits, frozen=True)
            fields["backend_fields"] = converted if isinstance(converted, dict) else {}
        if fields.get("comment") is not None:
            fields["comment"] = to_jsonable(str(fields["comment"]), self.limits)
        fields["name"] = clean_text(str(fields.get("name", "")))
        fields.setdefault("timestamp", time.time_ns())
        score = Score(config_name=self.name, **fields)
        for channel in self.channels:
            channel.put_score(score)

    # -- worker thread -------------------------------------------------------------

    def build(
        self,
        kind: EventKind,
        live: LiveSpan,
        fields: dict[str, Any],
        end_time: int | None,
        is_event: bool,
    ) -> SpanEvent | None:
        """Turn a queued record into the event exporters receive."""
        span: Span | None = self._snapshot(live, fields, end_time, is_event)
        for processor in self.processors:
            if span is None:
                return None
            try:
                span = processor.process(span)
            except Exception as exc:
                _limited(
                    _log,
                    "error",
                    "processor_failed",
                    config=self.name,
                    processor=type(processor).__name__,
                    error=f"{type(exc).__name__}: {exc}",
                )
                return None
        if span is None:
            return None
        event = SpanEvent(
            kind=kind, span=span, config_name=self.name, service_name=self.service_name
        )
        if len(self._by_kind[kind]) > 1:
            event.share_work()
        return event

    def _snapshot(
        self, live: LiveSpan, fields: dict[str, Any], end_time: int | None, is_event: bool
    ) -> Span:
        trace = live._trace
        limits = self.limits
        values: dict[str, Any] = {}
        for key, value in fields.items():
            normalise = _NORMALISERS.get(key)
            if normalise is None:
                self._bad_field(key, "unknown span field (ignored)")
                continue
            try:
                values[key] = normalise(value, limits)
            except Exception as exc:
                self._bad_field(key, f"invalid value ({type(exc).__name__}: {exc}); ignored")
        session_id = trace.session_id
        user_id = trace.user_id
        if live.parent_span_id is None:
            trace_metadata = values.get("metadata") or {}
            trace_attributes = values.get("attributes") or {}
        else:
            trace_metadata = _root_table(trace, "metadata", limits)
            trace_attributes = _root_table(trace, "attributes", limits)
        return Span(
            trace_id=trace.trace_id,
            span_id=live.span_id,
            parent_span_id=live.parent_span_id,
            name=values.pop("name") if "name" in values else _as_text(live.name, limits) or "",
            type=live.type,
            start_time=live.start_time,
            end_time=end_time,
            session_id=None if session_id is None else clean_text(session_id),
            user_id=None if user_id is None else clean_text(user_id),
            tags=tuple(clean_text(t) for t in trace.tags),
            is_event=is_event,
            trace_name=_as_text(trace.name, limits),
            trace_metadata=trace_metadata,
            trace_attributes=trace_attributes,
            **values,
        )

    def _bad_field(self, key: str, problem: str) -> None:
        _limited(
            _log,
            "warning",
            "invalid_span_field",
            limit_key=key,
            config=self.name,
            field=key,
            problem=problem,
        )
