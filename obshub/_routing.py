"""Routing: a named configuration at run time (`LiveConfig`).

Recording (`obshub._tracing`) hands a live config what the application
recorded; the config appends it to the channel (`obshub._delivery`) of every
exporter that wants that kind of event. The first worker that needs the record
builds the immutable `SpanEvent` here (validation, JSON-safe conversion,
processors) once, and every exporter of the config shares it. Shared safely:
the span's values are read-only all the way down (``FrozenDict`` /
``FrozenList``, built in the conversion pass), so no exporter can change what
another receives.

This module reads a recorded span through two small protocols
(`RecordedTrace`, `RecordedSpan`) and knows nothing else of recording.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from obshub._delivery import Channel
from obshub._delivery.process import Link, ProcessChannel, can_fork
from obshub._exporters import Exporter
from obshub._frozen import FrozenDict, frozen_dict
from obshub._logging import RateLimitedLog, get_logger
from obshub._processors import SpanProcessor
from obshub._sampling import Sampler
from obshub._serialization import DEFAULT_LIMITS, Limits, clean_text, describe, to_jsonable
from obshub._size import approx_size
from obshub.spans import (
    RECORDED_FIELDS,
    EventKind,
    FieldInfo,
    Score,
    Span,
    SpanEvent,
    SpanType,
    time_to_ns,
)

__all__ = [
    "SHIPPED_TRACE_FIELDS",
    "LiveConfig",
    "PendingEvent",
    "RecordedSpan",
    "RecordedTrace",
    "restore_record",
]

_log = get_logger()
_limited = RateLimitedLog()
_UNBUILT: Any = object()
_EMPTY = FrozenDict()


class RecordedTrace(Protocol):
    """What a snapshot reads of the trace a span belongs to."""

    @property
    def trace_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def tags(self) -> tuple[str, ...]: ...

    #: The root span's ``metadata`` and ``attributes`` as the application gave them.
    @property
    def metadata(self) -> Any: ...
    @property
    def attributes(self) -> Any: ...

    def shipped(self) -> tuple[Any, ...]:
        """The trace's fields as a delivery helper process receives them."""
        ...

    #: Where the snapshot builder keeps the JSON-safe copies of those, by field:
    #: (value, copy). Recording only makes room for it.
    snapshot_cache: dict[str, tuple[Any, Mapping[str, Any]]] | None


class RecordedSpan(Protocol):
    """What a snapshot reads of the span itself (its recorded values come apart)."""

    @property
    def span_id(self) -> str: ...
    @property
    def parent_span_id(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> SpanType: ...
    @property
    def start_time(self) -> int: ...


@attrs.define(eq=False)
class PendingEvent:
    """A started or updated event as queued by the application thread, built lazily."""

    config: LiveConfig
    kind: EventKind
    trace: RecordedTrace
    span: RecordedSpan
    fields: dict[str, Any]
    _event: Any = attrs.field(init=False, default=_UNBUILT)

    def shipped(self) -> tuple[Any, ...]:
        """What a delivery helper process receives of this event (see `restore_record`)."""
        span = self.span
        return (
            "p",
            self.kind.value,
            self.trace.shipped(),
            span.span_id,
            span.parent_span_id,
            span.name,
            span.type.value,
            span.start_time,
            self.fields,
        )

    def approx_size(self) -> int:
        """Estimated bytes this queued event keeps alive (asked only in a backlog)."""
        return approx_size(self.fields)

    def build_event(self) -> SpanEvent | None:
        """The snapshot event (None when a processor dropped it)."""
        event = self._event
        if event is _UNBUILT:
            # Two workers may race here; both build the same value and either
            # result is correct, so no lock is needed on this path.
            event = self.config.build(self.kind, self.trace, self.span, self.fields, None, False)
            self._event = event
        return event  # type: ignore[no-any-return]


# -- records shipped to a delivery helper process ------------------------------------------
#
# With ``delivery = "process"`` (obshub._delivery.process) a recorded span is
# pickled as its raw recorded values; the helper, a fork of the application,
# restores it here and builds the snapshot with its copy of the live config.

#: The live config a delivery helper process serves (None in the application).
_helper_config: LiveConfig | None = None


#: The trace fields a delivery helper process receives, in their order in the tuple.
SHIPPED_TRACE_FIELDS = (
    "trace_id",
    "name",
    "session_id",
    "user_id",
    "tags",
    "metadata",
    "attributes",
)


class ShippedTrace:
    """A trace's recorded fields as a helper process received them (a `RecordedTrace`)."""

    __slots__ = (
        "_fields",
        "attributes",
        "metadata",
        "name",
        "session_id",
        "snapshot_cache",
        "tags",
        "trace_id",
        "user_id",
    )

    trace_id: str
    name: str
    session_id: str | None
    user_id: str | None
    tags: tuple[str, ...]
    metadata: Any
    attributes: Any

    def __init__(self, fields: tuple[Any, ...]) -> None:
        # The tuple of ``TraceState.shipped``, in the order of SHIPPED_TRACE_FIELDS.
        self._fields = fields
        for name, value in zip(SHIPPED_TRACE_FIELDS, fields, strict=True):
            setattr(self, name, value)
        self.snapshot_cache: dict[str, tuple[Any, Mapping[str, Any]]] | None = None

    def shipped(self) -> tuple[Any, ...]:
        """The fields it was restored from (a restored trace is not handed off again)."""
        return self._fields


class ShippedSpan:
    """An ended span as a helper process received it: built into its event on first use."""

    __slots__ = (
        "_built",
        "end_time",
        "fields",
        "is_event",
        "name",
        "parent_span_id",
        "span_id",
        "start_time",
        "trace",
        "type",
    )

    def __init__(
        self,
        trace: ShippedTrace,
        span_id: str,
        parent_span_id: str | None,
        name: str,
        span_type: SpanType,
        start_time: int,
        fields: dict[str, Any],
        end_time: int | None,
        is_event: bool,
    ) -> None:
        self.trace = trace
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.name = name
        self.type = span_type
        self.start_time = start_time
        self.fields = fields
        self.end_time = end_time
        self.is_event = is_event
        self._built: Any = _UNBUILT

    def approx_size(self) -> int:
        """Estimated bytes this queued span keeps alive (asked only in a backlog)."""
        return approx_size(self.fields)

    def build_event(self) -> SpanEvent | None:
        """The ended event's snapshot, built once for every exporter of the helper."""
        built = self._built
        if built is _UNBUILT:
            config = _helper_config
            if config is None:
                raise RuntimeError("a shipped span is built only in a delivery helper process")
            built = config.build(
                EventKind.ENDED, self.trace, self, self.fields, self.end_time, self.is_event
            )
            self._built = built
        return built  # type: ignore[no-any-return]


class _SpanView:
    """What a started or updated event reads of its span (a `RecordedSpan`)."""

    __slots__ = ("name", "parent_span_id", "span_id", "start_time", "type")

    def __init__(
        self, span_id: str, parent_span_id: str | None, name: str, span_type: SpanType, start: int
    ) -> None:
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.name = name
        self.type = span_type
        self.start_time = start


def _restore_trace(fields: tuple[Any, ...], traces: dict[int, ShippedTrace]) -> ShippedTrace:
    trace = traces.get(id(fields))
    if trace is None:
        trace = traces[id(fields)] = ShippedTrace(fields)
    return trace


def restore_record(
    payload: tuple[Any, ...], traces: dict[int, ShippedTrace]
) -> ShippedSpan | PendingEvent:
    """A shipped record (``LiveSpan.shipped`` / `PendingEvent.shipped`), ready to queue.

    ``traces`` maps the traces of one hand-off (shared tuples) to their restored state.
    """
    if payload[0] == "s":
        _, fields_of_trace, span_id, parent, name, span_type, start, fields, end, is_event = payload
        return ShippedSpan(
            _restore_trace(fields_of_trace, traces),
            span_id,
            parent,
            name,
            _SPAN_TYPES[span_type],
            start,
            fields,
            end,
            is_event,
        )
    config = _helper_config
    if config is None:
        raise RuntimeError("a shipped event is built only in a delivery helper process")
    _, kind, fields_of_trace, span_id, parent, name, span_type, start, fields = payload
    view = _SpanView(span_id, parent, name, _SPAN_TYPES[span_type], start)
    trace = _restore_trace(fields_of_trace, traces)
    return PendingEvent(config, EventKind(kind), trace, view, fields)


_SPAN_TYPES = {t.value: t for t in SpanType}


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


def _as_time(value: Any, _limits: Limits) -> int | None:
    return time_to_ns(value)


def _as_member(cls: Any) -> Callable[[Any, Limits], Any]:
    def as_member(value: Any, _limits: Limits) -> Any:
        return cls(value)  # by member or value, in any case (obshub.spans.ValueEnum)

    return as_member


def _as_record(cls: Any) -> Callable[[Any, Limits], Any]:
    coerce = getattr(cls, "coerce", None)

    def as_record(value: Any, _limits: Limits) -> Any:
        if value is None or isinstance(value, cls):
            return value
        if coerce is None:
            raise TypeError(f"expected a {cls.__name__}")
        return coerce(value)

    return as_record


_BY_KIND: dict[str, Callable[[Any, Limits], Any]] = {
    "json": _as_json,
    "table": _as_table,
    "text": _as_text,
    "time": _as_time,
}


def _normaliser(info: FieldInfo) -> Callable[[Any, Limits], Any]:
    if info.kind == "enum":
        return _as_member(info.value_class)
    if info.kind == "record":
        return _as_record(info.value_class)
    return _BY_KIND[info.kind]


#: How each span field recorded by the application is made safe on the worker
#: (from the span's field table); a key not listed here is not a span field.
_NORMALISERS: dict[str, Callable[[Any, Limits], Any]] = {
    name: _normaliser(info) for name, info in RECORDED_FIELDS.items()
}


def _root_table(trace: RecordedTrace, field: str, limits: Limits) -> Mapping[str, Any]:
    """The root's ``metadata`` or ``attributes`` made safe, as a child's snapshot carries them.

    Made safe once per value of the root's field (the root replaces the value
    when it changes, never mutates it), not once per child.
    """
    raw = getattr(trace, field)
    if raw is None:
        return {}
    cache = trace.snapshot_cache
    hit = None if cache is None else cache.get(field)
    if hit is not None and hit[0] is raw:
        return hit[1]
    try:
        table = _as_table(raw, limits)
    except Exception:  # the root's own snapshot reports the bad value
        table = {}
    trace.snapshot_cache = {**(cache or {}), field: (raw, table)}
    return table


class LiveConfig:
    """One named configuration at run time: its sampler, processors and exporter channels.

    `obshub.Config` describes a config; the hub turns each into a live one,
    which starts a channel per enabled exporter and builds what they receive.
    """

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
        # Exporters with delivery = "process" share one helper process (a `Link`).
        enabled = [e for e in exporters if e.enabled]
        in_process = [e for e in enabled if e.delivery == "process"] if can_fork() else []
        self.link: Link | None = None
        if in_process:
            self.link = Link(
                name,
                in_process,
                tail=sampler.tail,
                limits=limits,
                child_init=self._serve_here,
                restore=restore_record,
            )
        by_exporter = {id(c.exporter): c for c in self.link.channels} if self.link else {}
        self.channels: tuple[Channel | ProcessChannel, ...] = tuple(
            by_exporter.get(id(e)) or Channel(e, name, tail=sampler.tail) for e in enabled
        )
        self.started = self._wanting(EventKind.STARTED)
        self.updated = self._wanting(EventKind.UPDATED)
        self.ended = self._wanting(EventKind.ENDED)
        self._by_kind = {
            EventKind.STARTED: self.started,
            EventKind.UPDATED: self.updated,
            EventKind.ENDED: self.ended,
        }
        self._lock = threading.Lock()
        if self.link is not None:
            # The helper is a fork made now: it gets the whole config.
            self.link.start()

    def _serve_here(self) -> None:
        # In the delivery helper process: shipped records are built with this config.
        global _helper_config
        _helper_config = self

    def _wanting(self, kind: EventKind) -> tuple[Channel | ProcessChannel, ...]:
        return tuple(c for c in self.channels if kind in c.exporter.event_kinds)

    # -- application thread ------------------------------------------------------

    def emit(
        self, kind: EventKind, trace: RecordedTrace, span: RecordedSpan, fields: dict[str, Any]
    ) -> None:
        """Queue a started or updated event of ``span`` for every channel that wants ``kind``.

        Ended spans are queued by recording itself, straight onto `ended`.
        """
        channels = self._by_kind[kind]
        if channels:
            record = PendingEvent(self, kind, trace, span, fields)
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
        trace: RecordedTrace,
        recorded: RecordedSpan,
        fields: dict[str, Any],
        end_time: int | None,
        is_event: bool,
    ) -> SpanEvent | None:
        """Turn a queued record into the event exporters receive (worker thread)."""
        span: Span | None = self._snapshot(trace, recorded, fields, end_time, is_event)
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
                    error=describe(exc),
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
        self,
        trace: RecordedTrace,
        live: RecordedSpan,
        fields: dict[str, Any],
        end_time: int | None,
        is_event: bool,
    ) -> Span:
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
                self._bad_field(key, f"invalid value ({describe(exc)}); ignored")
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
