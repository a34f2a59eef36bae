"""Use with OpenTelemetry instrumentations: their spans flow through obshub's configs.

Install with ``pip install 'obshub[otel]'``, then::

    import obshub, obshub.otel
    obshub.configure("obshub.toml")
    obshub.otel.setup()                       # or provider.add_span_processor(SpanProcessor())
    OpenAIInstrumentor().instrument()         # any OpenTelemetry instrumentation

`SpanProcessor` takes each finished OpenTelemetry span and queues it, as it
is, on the exporters of the config that handles its trace: the application
thread pays a dictionary lookup and a queue append. On the exporter worker the
span's attributes are read (GenAI semantic conventions, OpenInference,
OpenLLMetry; see ``obshub._otel_mapping``) into an obshub span, which then
goes through the config's sampling, processors and exporters like a span
recorded by hand.

While a processor is alive, obshub and OpenTelemetry share one context: an
obshub span entered with ``with`` is the current OpenTelemetry span too (so
instrumented calls inside it are its children, in its trace), an obshub span
opened inside an OpenTelemetry span is that span's child, and
`obshub.current_span` returns the innermost span of either world.

Spans started on obshub's own exporter threads (an HTTP instrumentation
seeing the exporters' requests) are never bridged, so nothing loops.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import SpanProcessor as _OtelSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags

from obshub._hub import Hub, get_global_hub
from obshub._logging import get_logger
from obshub._otel_mapping import convert
from obshub._tracing import (
    LiveSpan,
    TraceState,
    recording_failed,
    set_context_bridge,
    trace_of,
)
from obshub.spans import TRACE_FIELDS, EventKind, Level, SpanError, SpanType

__all__ = ["SpanProcessor", "setup"]

_log = get_logger()
_ENDED = EventKind.ENDED
#: Open bridged spans kept at most (a span that never ends is forgotten first).
MAX_OPEN_SPANS = 100_000
#: Traces remembered for spans that join them later (per processor).
MAX_TRACES = 10_000
#: Rough bytes per attribute, for the channels' memory bound (measured on the worker).
_BYTES_PER_ATTRIBUTE = 160
#: Where Langfuse takes OpenTelemetry spans.
_LANGFUSE_OTEL_PATH = "/api/public/otel"

_NOT_BUILT: Any = object()


class _Proxy(NonRecordingSpan):
    """An obshub span as OpenTelemetry sees it: the parent of spans started inside it."""

    def __init__(self, live: LiveSpan) -> None:
        flags = TraceFlags(TraceFlags.SAMPLED if live.is_recording else TraceFlags.DEFAULT)
        super().__init__(SpanContext(int(live.trace_id, 16), int(live.span_id, 16), False, flags))
        self.live = live


class _Bridge:
    """One context for both worlds (installed while a `SpanProcessor` is alive)."""

    def attach(self, span: LiveSpan) -> object:
        return otel_context.attach(otel_trace.set_span_in_context(_Proxy(span)))

    def detach(self, token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]

    def current(self) -> LiveSpan | None:
        span = otel_trace.get_current_span()
        if isinstance(span, _Proxy):
            return span.live
        context = span.get_span_context()
        if not context.is_valid:
            return None
        for processor in _alive:
            found = processor._open.get(context.span_id)
            if found is not None:
                return found
        return None


_bridge = _Bridge()
#: The processors not shut down; the bridge is installed while there is one.
_alive: tuple[SpanProcessor, ...] = ()
_alive_lock = threading.Lock()


def _set_alive(processor: SpanProcessor, alive: bool) -> None:
    global _alive
    with _alive_lock:
        others = tuple(p for p in _alive if p is not processor)
        _alive = (*others, processor) if alive else others
        set_context_bridge(_bridge if _alive else None)


class _BridgedSpan(LiveSpan):
    """An OpenTelemetry span as an obshub span: a `LiveSpan` of the same ids.

    Made in ``on_start`` (so `obshub.current_span` can return it and obshub
    spans nest under it); queued as it is in ``on_end``; converted on the
    exporter worker (`build_event`). `update` adds fields to what the
    conversion finds; ending it is OpenTelemetry's business (`end` does nothing).
    """

    __slots__ = ("_event", "_otel")

    def approx_size(self) -> int:
        """Estimated bytes this queued span keeps alive (asked only in a backlog)."""
        attributes = self._otel.attributes if self._otel is not None else None
        return 512 + _BYTES_PER_ATTRIBUTE * (len(attributes) if attributes else 0)

    def __init__(
        self, trace: TraceState, parent_id: str | None, name: str, span_id: int, start: int
    ) -> None:
        super().__init__(trace, parent_id, name, SpanType.GENERIC, {}, start)
        self.span_id = f"{span_id:016x}"
        self._otel: ReadableSpan | None = None
        self._event: Any = _NOT_BUILT

    def end(self, end_time: int | None = None) -> None:
        return

    def build_event(self) -> Any:
        """The ended event's snapshot, converted from the OpenTelemetry span (worker side)."""
        built = self._event
        if built is not _NOT_BUILT:
            return built
        otel = self._otel
        trace = self._trace
        assert otel is not None
        assert trace.config is not None
        events = [(e.name, e.timestamp, e.attributes or {}) for e in otel.events]
        name, span_type, fields = convert(
            otel.name, otel.attributes or {}, events, otel.start_time or 0
        )
        _status(otel, events, fields)
        scope = otel.instrumentation_scope
        if scope is not None and scope.name:
            fields.setdefault("attributes", {})["otel.scope.name"] = scope.name
        for key, value in self._fields.items():
            old = fields.get(key)
            fields[key] = (
                {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
            )
        if not TRACE_FIELDS.isdisjoint(fields):
            trace.set_trace_fields(fields)
        self.name = name
        self.type = span_type
        self.start_time = otel.start_time or self.start_time
        if self.parent_span_id is None:
            trace.set_root_fields(fields)
        built = trace.config.build(_ENDED, trace, self, fields, self._end_time, False)
        self._event = built
        return built


def _status(otel: ReadableSpan, events: list[Any], fields: dict[str, Any]) -> None:
    status = otel.status
    if status is None or status.status_code is not StatusCode.ERROR:
        return
    fields["level"] = Level.ERROR
    message = status.description or ""
    kind = ""
    stack = None
    for name, _time, attrs in events:
        if name == "exception":
            message = str(attrs.get("exception.message", message))
            kind = str(attrs.get("exception.type", ""))
            stack = attrs.get("exception.stacktrace")
            break
    fields["error"] = SpanError(
        message=message, type=kind or "error", stack=None if stack is None else str(stack)
    )
    fields["status_message"] = message or kind or "error"


class SpanProcessor(_OtelSpanProcessor):
    """An OpenTelemetry span processor that hands finished spans to an obshub hub.

    ``hub``: the hub whose configs handle the spans (None: the process's hub,
    `obshub.get_hub`, looked up when a trace starts). Add it to any
    ``TracerProvider`` with ``provider.add_span_processor(SpanProcessor())``
    or let `setup` do it.
    """

    def __init__(self, hub: Hub | None = None) -> None:
        self._hub = hub
        self._traces: OrderedDict[str, TraceState] = OrderedDict()
        #: Spans in progress, by OpenTelemetry span id.
        self._open: dict[int, _BridgedSpan] = {}
        self._closed = False
        self._checked = False
        _set_alive(self, True)

    def __repr__(self) -> str:
        return f"<obshub.otel.SpanProcessor hub={self._hub!r}>"

    # -- application thread -------------------------------------------------------

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        try:
            if self._closed or threading.current_thread().name.startswith("obshub-"):
                return  # never bridge what obshub's own workers cause (no loops)
            if not self._checked:
                self._checked = True
                _warn_if_langfuse_twice(self._hub_now(), getattr(span, "_span_processor", None))
            own = span.get_span_context()
            parent = otel_trace.get_current_span(parent_context)
            parent_context_ = parent.get_span_context()
            parent_id: str | None = None
            if isinstance(parent, _Proxy):
                trace = trace_of(parent.live)
                parent_id = parent.live.span_id
            elif parent_context_.is_valid:
                parent_id = f"{parent_context_.span_id:016x}"
                known = self._open.get(parent_context_.span_id)
                trace = known._trace if known is not None else self._trace(own.trace_id, span.name)
            else:
                trace = self._trace(own.trace_id, span.name)
            open_spans = self._open
            if len(open_spans) >= MAX_OPEN_SPANS:
                open_spans.pop(next(iter(open_spans)), None)
            open_spans[own.span_id] = _BridgedSpan(
                trace, parent_id, span.name, own.span_id, span.start_time or 0
            )
        except Exception as exc:
            recording_failed("otel_on_start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        bridged = self._open.pop(context.span_id, None)
        if bridged is None:
            return
        try:
            trace = bridged._trace
            if trace.sampled:
                channels = trace.config.ended  # type: ignore[union-attr]
                if channels:
                    bridged._otel = span
                    bridged._end_time = span.end_time or 0
                    for channel in channels:
                        channel.put(bridged)
        except Exception as exc:
            recording_failed("otel_on_end", exc)

    # -- lifecycle ----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop bridging (the hub keeps running: it belongs to the application)."""
        if not self._closed:
            self._closed = True
            _set_alive(self, False)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until what was bridged is delivered (`obshub.Hub.flush`)."""
        try:
            return bool(self._hub_now().flush(timeout=timeout_millis / 1000))
        except Exception as exc:
            recording_failed("otel_force_flush", exc)
            return False

    def _hub_now(self) -> Hub:
        return self._hub if self._hub is not None else get_global_hub()

    def _trace(self, trace_id: int, name: str) -> TraceState:
        key = f"{trace_id:032x}"
        traces = self._traces
        trace = traces.get(key)
        if trace is None:
            # The hub's own trace start (config selection, sampling from the id):
            # the trace keeps OpenTelemetry's id.
            trace = self._hub_now()._new_trace(name, SpanType.GENERIC, None, {}, trace_id=key)
            traces[key] = trace
            if len(traces) > MAX_TRACES:
                traces.popitem(last=False)
        return trace


def _warn_if_langfuse_twice(hub: Hub, processors: Any) -> None:
    """Tell once when the app also sends its OpenTelemetry spans to Langfuse directly."""
    try:
        if not any(e.name == "langfuse" for c in hub.configs for e in hub.exporters(c)):
            return
        for processor in getattr(processors, "_span_processors", ()) or ():
            if _sends_to_langfuse(processor):
                _log.warning(
                    "otel_spans_sent_twice",
                    processor=type(processor).__name__,
                    hint=(
                        "this TracerProvider also exports to Langfuse directly, and obshub's "
                        "langfuse exporter sends the same spans: remove that processor (or "
                        "the Langfuse client's tracing) and let obshub deliver them, or do "
                        "not add obshub.otel.SpanProcessor to this provider"
                    ),
                )
                return
    except Exception as exc:
        recording_failed("otel_check", exc)


def _sends_to_langfuse(processor: Any) -> bool:
    if isinstance(processor, SpanProcessor):
        return False
    if type(processor).__module__.split(".")[0] == "langfuse":
        return True
    exporter = getattr(processor, "span_exporter", None) or getattr(processor, "_exporter", None)
    if exporter is None:
        batch = getattr(processor, "_batch_processor", None)
        exporter = getattr(batch, "_exporter", None)
    if exporter is None:
        return False
    if type(exporter).__module__.split(".")[0] == "langfuse":
        return True
    endpoint = getattr(exporter, "_endpoint", None)
    return isinstance(endpoint, str) and _LANGFUSE_OTEL_PATH in endpoint


def setup(hub: Hub | None = None) -> TracerProvider:
    """Bridge the application's OpenTelemetry spans into ``hub`` (None: the process's hub).

    Adds a `SpanProcessor` to the global ``TracerProvider`` when it is an SDK
    provider (once: a second call adds nothing), or installs a new
    ``TracerProvider`` with it when the application has none. Returns the
    provider in use.
    """
    provider = otel_trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        otel_trace.set_tracer_provider(provider)
        provider = otel_trace.get_tracer_provider()  # another thread may have won
        if not isinstance(provider, TracerProvider):
            raise RuntimeError(
                f"the global TracerProvider is a {type(provider).__name__}, not an SDK "
                "TracerProvider: add obshub.otel.SpanProcessor() to it yourself"
            )
    active = getattr(provider, "_active_span_processor", None)
    existing = getattr(active, "_span_processors", ()) or ()
    if not any(isinstance(p, SpanProcessor) and p._hub is hub for p in existing):
        processor = SpanProcessor(hub)
        provider.add_span_processor(processor)
        _warn_if_langfuse_twice(processor._hub_now(), active)
        processor._checked = True
    return provider
