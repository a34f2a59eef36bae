"""Recording: the live spans application code holds while work is in progress.

A `LiveSpan` is cheap on purpose. Creating, updating and ending one
costs a few attribute writes, an id, a timestamp and one append per exporter
queue. The immutable `Span` snapshot that exporters see is built later, on the
exporter worker, by the config that handles the trace (`obshub._routing`).

This module owns a recording span: `open_span` and `record_event` start spans
and events for the hub, `TraceState` holds what the spans of a trace share.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import random
import time
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from obshub._logging import RateLimitedLog, get_logger
from obshub._routing import SHIPPED_TRACE_FIELDS
from obshub._serialization import printable
from obshub._size import approx_size
from obshub.spans import (
    MERGED_FIELDS,
    SETTABLE_FIELDS,
    TRACE_FIELDS,
    EventKind,
    Level,
    Span,
    SpanError,
    SpanType,
    field_info,
)

if TYPE_CHECKING:
    from obshub._routing import LiveConfig

__all__ = [
    "ContextBridge",
    "LiveSpan",
    "TraceState",
    "bind_context",
    "current_span",
    "inject",
    "observe",
    "open_span",
    "parse_traceparent",
    "record_event",
    "recording_failed",
    "set_context_bridge",
    "trace_of",
]

_current: contextvars.ContextVar[LiveSpan | None] = contextvars.ContextVar(
    "obshub_current_span", default=None
)
_time_ns = time.time_ns
_getrandbits = random.getrandbits
_UNBUILT: Any = object()


class ContextBridge(Protocol):
    """Another tracing world sharing obshub's context (`obshub.otel`).

    While one is installed, entering a span also makes it current there
    (`attach` / `detach`), and the current span is the innermost of both
    worlds (`current`).
    """

    def attach(self, span: LiveSpan) -> object: ...
    def detach(self, token: object) -> None: ...
    def current(self) -> LiveSpan | None: ...


_bridge: ContextBridge | None = None


def set_context_bridge(bridge: ContextBridge | None) -> ContextBridge | None:
    """Install ``bridge`` (None: remove it); returns the previous one."""
    global _bridge
    previous, _bridge = _bridge, bridge
    return previous


_STARTED = EventKind.STARTED
_ENDED = EventKind.ENDED
_UPDATED = EventKind.UPDATED
_GENERIC = SpanType.GENERIC
_log = get_logger()
_limited = RateLimitedLog()

#: The settable fields whose values are containers the caller may keep changing:
#: copied when a span starts (see `_capture`).
_CAPTURED = tuple(
    f.name
    for f in attrs.fields(Span)
    if f.name in SETTABLE_FIELDS and field_info(f).kind in ("json", "table")
)

_TYPES: dict[Any, SpanType] = {t: t for t in SpanType}
_TYPES.update({t.value: t for t in SpanType})


def _span_type(value: Any) -> SpanType:
    """The span type named by ``value``; generic for anything else (unhashable included)."""
    try:
        return _TYPES.get(value, _GENERIC)
    except TypeError:
        return _GENERIC


def _capture(value: Any) -> Any:
    # A shallow copy of the top-level container: an agent loop that keeps
    # appending to its `messages` list must not change what was recorded.
    kind = type(value)
    if kind is list or kind is dict:
        return value.copy()
    return value


class TraceState:
    """What all spans of one trace share: ids, the config, trace-level fields.

    ``config`` is the live config that handles the trace (None when the hub
    has none); ``sampled`` is False when nothing of the trace is recorded.
    """

    __slots__ = (
        "_shipped",
        "attributes",
        "config",
        "metadata",
        "name",
        "sampled",
        "session_id",
        "snapshot_cache",
        "tags",
        "trace_id",
        "user_id",
    )

    def __init__(self, trace_id: str, name: str, config: LiveConfig | None, sampled: bool) -> None:
        self.trace_id = trace_id
        self.name = name
        self.config = config
        self.sampled = sampled
        self.session_id: str | None = None
        self.user_id: str | None = None
        self.tags: tuple[str, ...] = ()
        # The root span's metadata and attributes (as given, normalised when a
        # snapshot is built): the trace's metadata, seen by every span.
        self.metadata: Any = None
        self.attributes: Any = None
        # Room for the snapshot builder's JSON-safe copies of those (obshub._routing).
        self.snapshot_cache: dict[str, tuple[Any, Mapping[str, Any]]] | None = None
        self._shipped: tuple[Any, ...] | None = None

    def shipped(self) -> tuple[Any, ...]:
        """The trace's recorded fields as a delivery helper process receives them.

        Made once and kept until a field changes, so every span of the trace
        handed off together refers to the same tuple (sent once).
        """
        shipped = self._shipped
        if shipped is None:
            shipped = self._shipped = tuple(getattr(self, f) for f in SHIPPED_TRACE_FIELDS)
        return shipped

    def set_root_fields(self, fields: Mapping[str, Any]) -> None:
        """Remember the root span's ``metadata`` and ``attributes`` (its current values)."""
        if self.sampled:
            self.metadata = fields.get("metadata")
            self.attributes = fields.get("attributes")
            self._shipped = None

    def set_trace_fields(self, fields: dict[str, Any]) -> None:
        """Move session_id, user_id and tags out of ``fields`` onto the trace."""
        self._shipped = None
        if "session_id" in fields:
            value = fields.pop("session_id")
            self.session_id = None if value is None else printable(value)
        if "user_id" in fields:
            value = fields.pop("user_id")
            self.user_id = None if value is None else printable(value)
        if "tags" in fields:
            value = fields.pop("tags")
            if isinstance(value, str):
                value = (value,)
            try:
                added = tuple(printable(t) for t in value or ())
            except TypeError:
                added = (printable(value),)
            self.tags = self.tags + tuple(t for t in added if t not in self.tags)


class LiveSpan:
    """A span in progress. Use it as a context manager, or call `end`.

    ``trace_id`` and ``span_id`` are fixed at creation. `update` sets or
    changes fields; `event` records a point-in-time event under this
    span; an exception leaving the ``with`` block marks the span as an error
    and propagates unchanged. No method raises into application code.
    """

    __slots__ = (
        "_bridge_token",
        "_built",
        "_end_time",
        "_fields",
        "_is_event",
        "_token",
        "_trace",
        "name",
        "parent_span_id",
        "span_id",
        "start_time",
        "type",
    )

    def __init__(
        self,
        trace: TraceState,
        parent_span_id: str | None,
        name: str,
        span_type: SpanType,
        fields: dict[str, Any],
        start_time: int,
    ) -> None:
        self._trace = trace
        self.span_id = (_getrandbits(64) or 1).to_bytes(8, "big").hex()
        self.parent_span_id = parent_span_id
        self.name = name
        self.type = span_type
        self.start_time = start_time
        self._fields = fields
        self._is_event = False
        self._end_time: int | None = None
        self._built: Any = _UNBUILT
        self._token: contextvars.Token[LiveSpan | None] | None = None
        self._bridge_token: object = None

    def shipped(self) -> tuple[Any, ...]:
        """What a delivery helper process receives of this ended span: its raw values.

        The helper (obshub._delivery.process) builds the snapshot from them
        (obshub._routing.restore_record); the trace pickles once per hand-off.
        """
        trace = self._trace
        return (
            "s",
            trace._shipped or trace.shipped(),
            self.span_id,
            self.parent_span_id,
            self.name,
            self.type._value_,
            self.start_time,
            self._fields,
            self._end_time,
            self._is_event,
        )

    # -- identity -------------------------------------------------------------

    @property
    def trace_id(self) -> str:
        """The 32-hex-digit id of the trace this span belongs to."""
        return self._trace.trace_id

    @property
    def is_recording(self) -> bool:
        """False when the trace was not sampled or the span has ended."""
        return self._trace.sampled and self._end_time is None

    @property
    def ended(self) -> bool:
        """True once `end` ran."""
        return self._end_time is not None

    def __repr__(self) -> str:
        return (
            f"<LiveSpan {self.name!r} type={self.type.value} trace_id={self._trace.trace_id} "
            f"span_id={self.span_id}{'' if self._end_time is None else ' ended'}>"
        )

    # -- recording --------------------------------------------------------------

    def update(self, **fields: Any) -> LiveSpan:
        """Set fields (``output=``, ``usage=``, ``metadata=`` ...).

        ``metadata``, ``attributes`` and ``parameters`` merge with what was
        set before; ``tags`` add to the trace's tags; other fields replace.
        Updates after `end` are ignored (and logged at debug level).
        """
        try:
            if self._end_time is not None:
                _log.debug("update_after_end", span=self.name)
                return self
            own = self._fields
            for key, value in fields.items():
                if key in TRACE_FIELDS:
                    self._trace.set_trace_fields({key: value})
                elif key in MERGED_FIELDS and isinstance(value, dict):
                    old = own.get(key)
                    own[key] = {**old, **value} if isinstance(old, dict) else value.copy()
                else:
                    own[key] = _capture(value)
            trace = self._trace
            if self.parent_span_id is None and ("metadata" in fields or "attributes" in fields):
                trace.set_root_fields(own)
            if trace.sampled and trace.config.updated:  # type: ignore[union-attr]
                trace.config.emit(_UPDATED, trace, self, dict(own))  # type: ignore[union-attr]
        except Exception as exc:
            recording_failed("update", exc)
        return self

    def event(self, name: str, **fields: Any) -> None:
        """Record a point-in-time event (an event span) under this span."""
        try:
            trace = self._trace
            if trace.sampled and trace.config is not None:
                span_type = _span_type(fields.pop("type", _GENERIC))
                _record_event(trace, self.span_id, name, span_type, fields)
        except Exception as exc:
            recording_failed("event", exc)

    def record_exception(self, exc: BaseException) -> None:
        """Mark the span as failed with ``exc`` (level error, message, type, stack)."""
        try:
            message = printable(exc)[:10_000]
            kind = type(exc)
            qualified = kind.__qualname__
            if kind.__module__ not in ("builtins", "__main__"):
                qualified = f"{kind.__module__}.{qualified}"
            stack = "".join(traceback.format_exception(kind, exc, exc.__traceback__, limit=30))
            own = self._fields
            own["error"] = SpanError(message=message, type=qualified, stack=stack[-20_000:])
            own["level"] = Level.ERROR
            own.setdefault("status_message", message or qualified)
        except Exception as err:
            recording_failed("record_exception", err)

    def end(self, end_time: int | None = None) -> None:
        """End the span (idempotent). ``end_time`` is nanoseconds since the epoch."""
        if self._end_time is not None:
            return
        try:
            self._finish(end_time or _time_ns())
        except Exception as exc:
            recording_failed("end", exc)

    def _finish(self, end_time: int) -> None:
        # The ended span itself is the queued record (no extra allocation on
        # the hot path): it no longer changes, and the first worker that needs
        # it builds the snapshot once for every exporter (build_event).
        self._end_time = end_time
        trace = self._trace
        if trace.sampled:
            channels = trace.config.ended  # type: ignore[union-attr]
            for channel in channels:
                channel.put(self)

    def approx_size(self) -> int:
        """Estimated bytes this queued span keeps alive (asked only in a backlog)."""
        return approx_size(self._fields)

    def build_event(self) -> Any:
        """The ended event's snapshot, built on first use (worker side)."""
        built = self._built
        if built is _UNBUILT:
            trace = self._trace
            built = trace.config.build(  # type: ignore[union-attr]
                _ENDED, trace, self, self._fields, self._end_time, self._is_event
            )
            self._built = built
        return built

    def score(self, name: str, value: Any, **fields: Any) -> None:
        """Score this span (see `obshub.Hub.score`)."""
        try:
            config = self._trace.config
            if config is not None and self._trace.sampled:
                config.score(
                    name=name, value=value, trace_id=self.trace_id, span_id=self.span_id, **fields
                )
        except Exception as exc:
            recording_failed("score", exc)

    # -- context management --------------------------------------------------------

    def __enter__(self) -> LiveSpan:
        self._token = _current.set(self)
        if _bridge is not None:
            self._bridge_token = _attach(self)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.record_exception(exc)
        if self._bridge_token is not None:
            _detach(self._bridge_token)
            self._bridge_token = None
        token = self._token
        if token is not None:
            self._token = None
            try:
                _current.reset(token)
            except ValueError:
                # Exited in another context than it was entered in (e.g. a
                # span opened in one task and closed in another).
                _current.set(None)
        self.end()


def current_span() -> LiveSpan | None:
    """The span of the current context (thread, task), or None.

    With `obshub.otel` in use, the innermost span of either world: an
    OpenTelemetry span shows as a `LiveSpan` of the same trace and span id.
    """
    if _bridge is not None:
        return _bridged_current()
    return _current.get()


def _bridged_current() -> LiveSpan | None:
    try:
        found = _bridge.current()  # type: ignore[union-attr]
    except Exception as exc:
        recording_failed("context", exc)
        found = None
    return found if found is not None else _current.get()


def _attach(span: LiveSpan) -> object:
    """(bridge, its token): detached by the same bridge even if it was removed meanwhile."""
    bridge = _bridge
    if bridge is None:
        return None
    try:
        return (bridge, bridge.attach(span))
    except Exception as exc:
        recording_failed("context", exc)
        return None


def _detach(attached: object) -> None:
    try:
        bridge: ContextBridge = attached[0]  # type: ignore[index]
        bridge.detach(attached[1])  # type: ignore[index]
    except Exception as exc:
        recording_failed("context", exc)


def inject(headers: Any) -> Any:
    """Write the current span's W3C ``traceparent`` into ``headers`` (a mutable mapping).

    Returns ``headers``. Without a current span nothing is written. Never raises.
    """
    try:
        span = current_span()
        if span is not None:
            flags = "01" if span._trace.sampled else "00"
            headers["traceparent"] = f"00-{span.trace_id}-{span.span_id}-{flags}"
    except Exception as exc:
        recording_failed("inject", exc)
    return headers


_HEX = frozenset("0123456789abcdef")


def parse_traceparent(value: Any) -> tuple[str, str] | None:
    """(trace id, parent span id) from a ``traceparent`` string or a headers mapping.

    None when there is none or it is malformed (W3C Trace Context, version 00
    and later versions read by their first four fields).
    """
    if isinstance(value, Mapping):
        found = None
        for key, item in value.items():
            if isinstance(key, str) and key.lower() == "traceparent":
                found = item
                break
        value = found
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff":
        return None
    version, trace_id, span_id, flags = parts[0], parts[1], parts[2], parts[3]
    if version == "00" and len(parts) != 4:
        return None
    if len(trace_id) != 32 or len(span_id) != 16 or len(flags) != 2:
        return None
    if not _HEX.issuperset(version + trace_id + span_id + flags):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


F = TypeVar("F", bound=Callable[..., Any])


def bind_context(fn: F) -> F:
    """Wrap ``fn`` to run in the caller's context (current span included).

    asyncio tasks inherit the context by themselves; threads and executors do
    not. Use ``pool.submit(obshub.bind_context(work), arg)`` or
    ``threading.Thread(target=obshub.bind_context(work))`` so that spans
    opened in the thread nest under the span that started it.
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: Any, **kwargs: Any) -> Any:
        return ctx.copy().run(fn, *args, **kwargs)

    return run_in_context  # type: ignore[return-value]


def recording_failed(where: str, exc: BaseException) -> None:
    """Log (rate-limited) that recording failed in ``where``; never raises."""
    try:
        _limited(_log, "warning", "recording_failed", where=where, error=printable(exc)[:10_000])
    except Exception:
        return


# -- starting spans and events (for the hub) ------------------------------------------

#: ``new_trace(name, type, config, fields)``: the state of a new trace whose
#: root span this is, in the config the hub chooses (``config=`` names one).
NewTrace = Callable[[str, SpanType, "str | None", Mapping[str, Any]], TraceState]

_NOT_RECORDING = TraceState("0" * 32, "", None, False)


def open_span(
    new_trace: NewTrace,
    name: str,
    span_type: Any,
    config: str | None,
    parent: LiveSpan | None,
    start_time: int | None,
    fields: dict[str, Any],
    remote_parent_id: str | None = None,
) -> LiveSpan:
    """Start a span (see `obshub.Hub.span`); never raises.

    With ``remote_parent_id`` (a span of another process, see `parse_traceparent`)
    the span is the local root of the trace ``new_trace`` gives, under that span.

    The span is a child of ``parent`` (default: the current span), else the
    root of a trace from ``new_trace``. ``span_type`` is a `SpanType` or its
    value; anything else records a generic span and logs a warning. When
    recording fails the span records nothing.
    """
    try:
        try:
            resolved = _TYPES.get(span_type)
        except TypeError:  # unhashable, so no type name either
            resolved = None
        if resolved is None:
            resolved = _unknown_type(span_type)
        if parent is None and remote_parent_id is None:
            parent = _current.get() if _bridge is None else _bridged_current()
        if parent is not None:
            trace = parent._trace
            parent_id: str | None = parent.span_id
        else:
            trace = new_trace(name, resolved, config, fields)
            parent_id = remote_parent_id
        if fields:
            if not TRACE_FIELDS.isdisjoint(fields):
                trace.set_trace_fields(fields)
            for key in _CAPTURED:
                if key in fields:
                    fields[key] = _capture(fields[key])
        live = LiveSpan(trace, parent_id, name, resolved, fields, start_time or _time_ns())
        if parent is None and fields:
            trace.set_root_fields(fields)
        if trace.sampled and trace.config.started:  # type: ignore[union-attr]
            trace.config.emit(_STARTED, trace, live, dict(fields))  # type: ignore[union-attr]
        return live
    except Exception as exc:
        recording_failed("span", exc)
        return LiveSpan(_NOT_RECORDING, None, printable(name), _GENERIC, {}, _time_ns())


def record_event(new_trace: NewTrace, name: str, fields: dict[str, Any]) -> None:
    """Record a point-in-time event under the current span, or as a trace of its own.

    See `obshub.Hub.event`; never raises.
    """
    try:
        parent = _current.get() if _bridge is None else _bridged_current()
        if parent is not None:
            parent.event(name, **fields)
            return
        span_type = _span_type(fields.pop("type", _GENERIC))
        trace = new_trace(name, span_type, fields.pop("config", None), fields)
        _record_event(trace, None, name, span_type, fields)
    except Exception as exc:
        recording_failed("event", exc)


def _record_event(
    trace: TraceState,
    parent_id: str | None,
    name: str,
    span_type: SpanType,
    fields: dict[str, Any],
) -> None:
    if not TRACE_FIELDS.isdisjoint(fields):
        trace.set_trace_fields(fields)
    now = _time_ns()
    event = LiveSpan(trace, parent_id, name, span_type, fields, now)
    event._is_event = True
    event._finish(now)


def trace_of(span: LiveSpan) -> TraceState:
    """The state of the trace ``span`` belongs to."""
    return span._trace


def _unknown_type(value: Any) -> SpanType:
    _limited(_log, "warning", "unknown_span_type", type=printable(value, repr))
    return _GENERIC


# -- the decorator ---------------------------------------------------------------


def _argument_capturer(fn: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """A fast function turning a call's arguments into a ``{name: value}`` dict."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return lambda args, kwargs: {"args": list(args), **kwargs}
    params = list(sig.parameters.values())
    skip_first = bool(params) and params[0].name in ("self", "cls")
    simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
    if simple:
        names = [p.name for p in params]

        def capture_simple(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            captured = dict(zip(names, args, strict=False))
            if kwargs:
                captured.update(kwargs)
            if skip_first:
                captured.pop(names[0], None)
            return captured

        return capture_simple

    def capture_bound(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            bound = sig.bind_partial(*args, **kwargs)
        except TypeError:
            return {"args": list(args), **kwargs}
        captured = dict(bound.arguments)
        if skip_first:
            captured.pop(params[0].name, None)
        return captured

    return capture_bound


def observe(
    get_hub: Callable[[], Any],
    fn: Callable[..., Any],
    *,
    name: str | None,
    span_type: SpanType | str,
    capture_input: bool,
    capture_output: bool,
    fields: dict[str, Any],
) -> Callable[..., Any]:
    """Wrap ``fn`` so each call records a span (see `obshub.Hub.observe`)."""
    qualname = str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function"))
    # "Agent.run" says more than "run"; "outer.<locals>.helper" says less than "helper".
    span_name = name or qualname.rsplit("<locals>.", 1)[-1]
    capture = _argument_capturer(fn) if capture_input else None

    def open_span(args: tuple[Any, ...], kwargs: dict[str, Any]) -> LiveSpan:
        extra = dict(fields)
        if capture is not None:
            try:
                extra["input"] = capture(args, kwargs)
            except Exception as exc:
                recording_failed("observe_input", exc)
        span: LiveSpan = get_hub().span(span_name, type=span_type, **extra)
        return span

    def set_output(span: LiveSpan, value: Any) -> None:
        if capture_output:
            span.update(output=value)

    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        return _wrap_generator(fn, open_span, set_output)
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with open_span(args, kwargs) as span:
                result = await fn(*args, **kwargs)
                set_output(span, result)
                return result

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with open_span(args, kwargs) as span:
            result = fn(*args, **kwargs)
            set_output(span, result)
            return result

    return wrapper


_MAX_COLLECTED = 10_000


def _collected_output(items: list[Any], truncated: bool) -> Any:
    if items and all(isinstance(i, str) for i in items):
        text = "".join(items)
        return text + "...[more chunks not recorded]" if truncated else text
    if truncated:
        return [*items, "...[more items not recorded]"]
    return items


def _wrap_generator(
    fn: Callable[..., Any],
    open_span: Callable[[tuple[Any, ...], dict[str, Any]], LiveSpan],
    set_output: Callable[[LiveSpan, Any], None],
) -> Callable[..., Any]:
    traced = _traced_async_generator if inspect.isasyncgenfunction(fn) else _traced_generator

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stream = _Stream(lambda: open_span(args, kwargs), set_output)
        return traced(fn(*args, **kwargs), stream)

    return wrapper


class _Stream:
    """The span of one generator run (sync or async); the yielded items are its output.

    The span starts at the first ``next()`` and ends when the generator is
    exhausted, closed or fails; it is current only while the wrapped generator
    runs (`running`), never while the consumer does. What the consumer sends
    or throws in (``close()``'s ``GeneratorExit`` included) is passed on to the
    wrapped generator at its next step (`advance`). As a context manager it
    ends the span.
    """

    __slots__ = ("_current", "_open", "items", "sent", "set_output", "thrown", "truncated")

    def __init__(
        self, open_span: Callable[[], LiveSpan], set_output: Callable[[LiveSpan, Any], None]
    ) -> None:
        self._open = open_span
        self._current: _Current | None = None
        self.set_output = set_output
        self.items: list[Any] = []
        self.truncated = False
        self.sent: Any = None
        self.thrown: BaseException | None = None

    def running(self) -> _Current:
        """The span made current while the generator runs (opened on the first step)."""
        if self._current is None:
            self._current = _Current(self._open())
        return self._current

    def advance(self, send: Callable[[Any], Any], throw: Callable[[BaseException], Any]) -> Any:
        """Resume the wrapped generator with what the consumer sent or threw in."""
        thrown, self.thrown = self.thrown, None
        if thrown is not None:
            return throw(thrown)
        sent, self.sent = self.sent, None
        return send(sent)

    def collect(self, item: Any) -> Any:
        """Keep a yielded item for the output (up to `_MAX_COLLECTED`); returns it."""
        if len(self.items) < _MAX_COLLECTED:
            self.items.append(item)
        else:
            self.truncated = True
        return item

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._current is None:
            return
        span = self._current.span
        if exc is not None and not isinstance(exc, GeneratorExit):
            span.record_exception(exc)
        self.set_output(span, _collected_output(self.items, self.truncated))
        span.end()


class _Current:
    """``with``: ``span`` is the current span inside the block."""

    __slots__ = ("bridged", "span", "token")

    def __init__(self, span: LiveSpan) -> None:
        self.span = span
        self.token: contextvars.Token[LiveSpan | None] | None = None
        self.bridged: object = None

    def __enter__(self) -> None:
        self.token = _current.set(self.span)
        if _bridge is not None:
            self.bridged = _attach(self.span)

    def __exit__(self, *exc: object) -> None:
        if self.bridged is not None:
            _detach(self.bridged)
            self.bridged = None
        if self.token is not None:
            _current.reset(self.token)


def _traced_generator(gen: Any, stream: _Stream) -> Any:
    with stream:
        while True:
            with stream.running():
                try:
                    item = stream.advance(gen.send, gen.throw)
                except StopIteration as stop:
                    return stop.value  # the generator's return value, for ``yield from``
            try:
                stream.sent = yield stream.collect(item)
            except BaseException as exc:
                stream.thrown = exc


async def _traced_async_generator(agen: Any, stream: _Stream) -> Any:
    with stream:
        while True:
            with stream.running():
                try:
                    item = await stream.advance(agen.asend, agen.athrow)
                except StopAsyncIteration:
                    return
            try:
                stream.sent = yield stream.collect(item)
            except BaseException as exc:
                stream.thrown = exc
