"""A test kit for applications that record with obshub and for plugin authors.

- `RecordingExporter`: keeps every event, score and call it receives,
  and can be told to fail; `HubFactory` and `MemoryHub` build
  hubs around it that are always shut down.
- Factories for the values exporters receive: `make_span`,
  `make_event`, `make_trace` (a realistic agent trace as a list of
  `SpanEvent`), `make_score`; and `record_trace`,
  which records the same agent trace through a real `Hub`.
- Waiting without sleeps: `wait_for` and `wait_for_events`.
- `HttpReceiver`: a local HTTP server on ``127.0.0.1`` that records
  requests and answers as told, for exporters that talk HTTP;
  `unreachable_url` for one that refuses connections.
- `ExporterContract`: the test battery every exporter class must pass.
  Subclass it in a test module::

      from obshub.testing import ExporterContract, unreachable_url
      from obshub_webhook import WebhookExporter

      class TestWebhookContract(ExporterContract):
          exporter_class = WebhookExporter
          config = {"url": "http://127.0.0.1:9/", "headers": {"X-Token": "s3cr3t-token"}}

          def failing_config(self, backend):
              return {"url": unreachable_url()}

  ``docs/plugins.md`` walks through a complete example.

The pytest fixtures ``obshub_memory``, ``obshub_hub_factory`` and
``obshub_capture_logs`` (module `obshub.pytest_plugin`) are available in
every test once obshub is installed. This module needs pytest.
"""

from __future__ import annotations

import inspect
import json
import re
import socket
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any, ClassVar, NamedTuple, TypeVar

import attrs
import pytest
from structlog.testing import capture_logs

from obshub._builtin.memory import MemoryExporter
from obshub._config import exporter_parameters
from obshub._config_errors import ConfigError
from obshub._exporters import CheckResult, Exporter, ExportError
from obshub._hookspecs import hookimpl
from obshub._hub import Hub
from obshub._plugins import PluginRegistry
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
    item_record,
    new_span_id,
    new_trace_id,
    time_to_ns,
)
from obshub.testing_server import LocalHandler, LocalServer

__all__ = [
    "DEFAULT_TIMEOUT",
    "TRACE_SPANS",
    "ExporterContract",
    "HttpReceiver",
    "HubFactory",
    "MemoryHub",
    "ReceivedRequest",
    "RecordingExporter",
    "make_event",
    "make_registry",
    "make_score",
    "make_span",
    "make_trace",
    "plugin_for",
    "record_trace",
    "unreachable_url",
    "wait_for",
    "wait_for_events",
]

#: Seconds the helpers wait by default: generous, as waits normally take milliseconds.
DEFAULT_TIMEOUT = 5.0
#: Spans in the trace of `make_trace` and `record_trace`.
TRACE_SPANS = 4

_T = TypeVar("_T")
_MS = 1_000_000


# -- a recording exporter ------------------------------------------------------------


class RecordingExporter(MemoryExporter):
    """A `MemoryExporter` that also records how it was called.

    Besides ``events``, ``scores``, ``spans()``, ``span(name)``, ``traces()``
    and ``wait_for(...)`` it keeps ``export_calls`` (including failed ones),
    ``flushes``, ``shutdowns`` and ``threads`` (names of the threads that
    called `export`). ``event_kinds`` chooses which events it asks the
    hub for (default: all three). `fail_next` makes the next exports
    raise, to test how code copes with a failing backend.
    """

    name: ClassVar[str] = "recording"

    def __init__(
        self, *, event_kinds: Iterable[EventKind | str] | None = None, **common: Any
    ) -> None:
        super().__init__(**common)
        if event_kinds is not None:
            # Per instance, like the jsonl exporter's ``events`` setting.
            self.event_kinds = frozenset(EventKind(k) for k in event_kinds)  # type: ignore[misc]
        self.export_calls = 0
        self.flushes = 0
        self.shutdowns = 0
        self.threads: set[str] = set()
        self._failures: deque[Exception] = deque()

    @property
    def condition(self) -> threading.Condition:
        """Notified whenever something is recorded (for `wait_for`)."""
        return self._cond

    def fail_next(self, *errors: Exception) -> None:
        """Raise ``errors`` from the next exports, one per call, in order.

        ``fail_next(ExportError("down", retryable=True))`` makes the channel
        retry; the batch is recorded only once an export succeeds.
        """
        with self._cond:
            self._failures.extend(errors)

    def export(self, events: Sequence[SpanEvent]) -> None:
        """Record ``events`` (or raise the next error given to `fail_next`)."""
        with self._cond:
            self.export_calls += 1
            self.threads.add(threading.current_thread().name)
            error = self._failures.popleft() if self._failures else None
            self._cond.notify_all()
        if error is not None:
            raise error
        super().export(events)

    def flush(self) -> None:
        """Count the call."""
        with self._cond:
            self.flushes += 1
            self._cond.notify_all()

    def shutdown(self) -> None:
        """Count the call."""
        with self._cond:
            self.shutdowns += 1
            self._cond.notify_all()


# -- waiting ----------------------------------------------------------------------------


def wait_for(
    predicate: Callable[[], _T],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    condition: threading.Condition | None = None,
    message: str | None = None,
) -> _T:
    """Wait until ``predicate()`` is truthy and return its value.

    With ``condition`` (e.g. `RecordingExporter.condition`), the wait
    blocks on it and wakes when it is notified: no polling. Without one, the
    predicate is re-checked at short, growing intervals. Raises
    `TimeoutError` (with ``message``) when ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    if condition is not None:
        with condition:
            result = condition.wait_for(predicate, timeout)
    else:
        pause = threading.Event()
        delay = 0.001
        result = predicate()
        while not result:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            pause.wait(min(delay, remaining))
            delay = min(delay * 2, 0.05)
            result = predicate()
    if not result:
        raise TimeoutError(message or f"condition not met within {timeout:g} s")
    return result


def wait_for_events(
    exporter: MemoryExporter,
    count: int,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    kind: EventKind | str | None = EventKind.ENDED,
) -> list[SpanEvent]:
    """Wait until ``exporter`` received ``count`` events of ``kind``; return them.

    ``kind`` is ``ended`` by default (one per finished span), like
    `MemoryExporter.wait_for`; ``None`` counts every kind. Blocks on the
    exporter's condition (no polling); raises `TimeoutError` saying
    what did arrive.
    """
    wanted = None if kind is None else EventKind(kind)
    if not exporter.wait_for(count, timeout, kind=wanted):
        got = [f"{e.kind.value}:{e.span.name}" for e in exporter.events]
        what = "events" if wanted is None else f"{wanted.value} events"
        raise TimeoutError(
            f"waited {timeout:g} s for {count} {what}; received {len(got)} events: {got}"
        )
    return [e for e in list(exporter.events) if wanted is None or e.kind is wanted]


# -- factories --------------------------------------------------------------------------


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


# -- hubs, registries, addresses -----------------------------------------------------------


class MemoryHub(NamedTuple):
    """A hub and the `RecordingExporter` it sends to: ``hub, recorded = obshub_memory``."""

    hub: Hub
    exporter: RecordingExporter


class HubFactory:
    """Builds hubs and shuts every one of them down in `shutdown`.

    ``factory(...)`` takes `Hub`'s arguments;
    `from_config` takes `Hub.from_config`'s; `memory`
    builds a hub around a realtime `RecordingExporter`.
    """

    def __init__(self, shutdown_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.shutdown_timeout = shutdown_timeout
        self.hubs: list[Hub] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Hub:
        """``Hub(*args, **kwargs)``, remembered for `shutdown`."""
        built = Hub(*args, **kwargs)
        self.hubs.append(built)
        return built

    def from_config(self, source: Any, **kwargs: Any) -> Hub:
        """``Hub.from_config(source, **kwargs)``, remembered for `shutdown`."""
        built = Hub.from_config(source, **kwargs)
        self.hubs.append(built)
        return built

    def memory(self, *, service_name: str = "obshub-test", **hub_kwargs: Any) -> MemoryHub:
        """A hub whose only exporter is a realtime `RecordingExporter`."""
        exporter = RecordingExporter()
        return MemoryHub(
            self(exporters=[exporter], service_name=service_name, **hub_kwargs), exporter
        )

    def shutdown(self) -> bool:
        """Shut down every hub built (idempotent); True if all delivered everything."""
        ok = True
        for built in self.hubs:
            ok = built.shutdown(timeout=self.shutdown_timeout) and ok
        return ok


def plugin_for(*exporter_classes: type[Exporter]) -> object:
    """A plugin object that registers ``exporter_classes``.

    For ``PluginRegistry(extra_plugins=[plugin_for(MyExporter)])``.
    """
    names = "+".join(cls.__qualname__ for cls in exporter_classes)
    plugin = types.ModuleType(f"obshub.testing.plugin_for[{names}]")

    @hookimpl
    def obshub_register_exporters(register: Callable[[type[Exporter]], None]) -> None:
        for cls in exporter_classes:
            register(cls)

    plugin.obshub_register_exporters = obshub_register_exporters  # type: ignore[attr-defined]
    return plugin


def make_registry(*exporter_classes: type[Exporter]) -> PluginRegistry:
    """A registry of the built-in exporters and ``exporter_classes``, ignoring installed plugins.

    Pass it as ``Hub.from_config(..., registry=make_registry(MyExporter))``
    to configure a class by its ``name`` before it is installed.
    """
    return PluginRegistry(
        entry_points=[], environ={}, extra_plugins=[plugin_for(*exporter_classes)]
    )


def unreachable_url(path: str = "/") -> str:
    """``http://127.0.0.1:<port><path>`` where nothing listens: connections are refused.

    The port was free a moment ago; another process could take it, which on
    a test machine is rare.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# -- a local HTTP receiver ------------------------------------------------------------------


@attrs.frozen
class ReceivedRequest:
    """One request an `HttpReceiver` answered (header names in lowercase)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@attrs.frozen
class _Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]


class HttpReceiver(LocalServer):
    """A local HTTP server on ``127.0.0.1`` that records each request and answers it.

    It answers 200 with an empty body unless told otherwise with
    `respond`. Use it as a context manager (or `start` /
    `stop`); `url` is its base URL::

        with HttpReceiver() as receiver:
            receiver.respond(503, headers={"Retry-After": "1"})
            exporter = WebhookExporter(url=f"{receiver.url}/hook")
            ...
            (request,) = receiver.wait_for_requests(1)
            assert request.json()["events"]

    Bodies are read by ``Content-Length`` (chunked uploads are not supported).
    """

    thread_name = "obshub-http-receiver"

    def __init__(self) -> None:
        super().__init__()
        self._requests: list[ReceivedRequest] = []
        self._replies: deque[_Reply] = deque()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self._base_url()

    def respond(
        self,
        status: int,
        *,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (then 200 again)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self._cond:
            self._replies.extend([_Reply(status, data, dict(headers or {}))] * times)

    def requests(self, path: str | None = None) -> list[ReceivedRequest]:
        """The requests received so far (to ``path`` only, if given), oldest first."""
        with self._cond:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_for_requests(
        self, count: int, timeout: float = DEFAULT_TIMEOUT, *, path: str | None = None
    ) -> list[ReceivedRequest]:
        """Block until ``count`` requests (to ``path``) arrived; return them all.

        Raises `TimeoutError` if they do not arrive within ``timeout``.
        """
        wait_for(
            lambda: len([r for r in self._requests if path is None or r.path == path]) >= count,
            timeout,
            condition=self._cond,
            message=f"{count} requests did not arrive within {timeout:g} s",
        )
        return self.requests(path)

    def clear(self) -> None:
        """Forget the requests received and any queued responses."""
        with self._cond:
            self._requests.clear()
            self._replies.clear()

    def _serve(self, handler: LocalHandler) -> None:
        request = ReceivedRequest(
            method=handler.command,
            path=handler.path,
            headers=handler.lowercase_headers(),
            body=handler.read_body(),
            status=0,
        )
        with self._cond:
            reply = self._replies.popleft() if self._replies else _Reply(200, b"", {})
            self._requests.append(attrs.evolve(request, status=reply.status))
            self._cond.notify_all()
        handler.send(reply.status, reply.body, reply.headers)


# -- the contract battery ------------------------------------------------------------------

_CONFIG_NAME = "contract"
_INSTANCE = "under_test"
_KEY_PREFIX = f"configs.{_CONFIG_NAME}.exporters.{_INSTANCE}"
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_MIN_SECRET = 6

#: A bad value for every common key: (setting, value, key path under the exporter's table).
_BAD_COMMON_SETTINGS = [
    pytest.param("realtime", "yes", "realtime", id="realtime-string"),
    pytest.param("enabled", "maybe", "enabled", id="enabled-word"),
    pytest.param("log_level", 10, "log_level", id="log_level-number"),
    pytest.param("log_level", "loud", "log_level", id="log_level-unknown"),
    pytest.param("batch", "big", "batch", id="batch-string"),
    pytest.param("batch", {"max_size": 0}, "batch.max_size", id="batch.max_size-zero"),
    pytest.param("batch", {"interval": "soon"}, "batch.interval", id="batch.interval-string"),
    pytest.param("batch", {"size": 10}, "batch.size", id="batch-unknown-key"),
    pytest.param("max_queue_size", "many", "max_queue_size", id="max_queue_size-string"),
    pytest.param("max_queue_size", 0, "max_queue_size", id="max_queue_size-zero"),
    pytest.param("max_queue_bytes", "1 GB", "max_queue_bytes", id="max_queue_bytes-string"),
    pytest.param("max_queue_bytes", 1024, "max_queue_bytes", id="max_queue_bytes-too-small"),
    pytest.param("retry", 3, "retry", id="retry-number"),
    pytest.param("retry", {"max_attempts": 0}, "retry.max_attempts", id="retry.max_attempts-zero"),
    pytest.param("retry", {"attempts": 3}, "retry.attempts", id="retry-unknown-key"),
    pytest.param("spool_dir", 5, "spool_dir", id="spool_dir-number"),
    pytest.param("spool_max_bytes", "1 MB", "spool_max_bytes", id="spool_max_bytes-string"),
    pytest.param("spool_max_bytes", 100, "spool_max_bytes", id="spool_max_bytes-too-small"),
]
#: Seconds a test lets a hub try an exporter that pauses (it would wait out the pause).
_PAUSED_WAIT = 0.2


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for v in value for s in _strings(v)]
    return []


def _texts_of(call: Callable[[], Any]) -> list[str]:
    """What a call shows: its result's message and details, or the exception it raised.

    Other tests report a call that raises; the secrets test only looks at the text.
    """
    try:
        result = call()
    except Exception as exc:
        return [str(exc), repr(exc)]
    if isinstance(result, CheckResult):
        return [result.message, repr(result.details)]
    return []


def _check_well_formed(result: Any) -> CheckResult:
    assert isinstance(result, CheckResult), (
        f"check() returned {type(result).__name__}, not obshub.CheckResult"
    )
    assert isinstance(result.ok, bool), f"CheckResult.ok is {type(result.ok).__name__}, not bool"
    assert isinstance(result.message, str), "CheckResult.message is not a str"
    assert result.message.strip(), "CheckResult.message is empty: say what was checked"
    assert result.latency_ms is None or (
        isinstance(result.latency_ms, (int, float)) and result.latency_ms >= 0
    ), f"CheckResult.latency_ms is {result.latency_ms!r}"
    assert isinstance(result.details, Mapping), "CheckResult.details is not a mapping"
    return result


def _given(items: Sequence[SpanEvent | Score]) -> list[str]:
    """A deep snapshot of what an exporter is handed: each item's JSON record."""
    return [json.dumps(item_record(item), sort_keys=True, default=repr) for item in items]


def _call_without_changes(
    call: Callable[[Sequence[Any]], None], items: Sequence[SpanEvent | Score], what: str
) -> None:
    before = _given(items)
    try:
        call(list(items))
    except TypeError as exc:
        if "read-only" not in str(exc):
            raise
        pytest.fail(
            f"{what} tried to change what it was given ({exc}); every exporter of a config "
            "receives the same items: copy what you need to change (obshub.spans.thaw(value))"
        )
    after = _given(items)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert not changed, (
        f"{what} changed an item it was given (every exporter of a config receives the same "
        f"items): before {changed[0][0][:300]}, after {changed[0][1][:300]}"
    )


class _Spy:
    """Wraps one exporter instance's methods to see what the hub hands it."""

    def __init__(self, exporter: Exporter) -> None:
        self.events: list[SpanEvent] = []
        self.scores: list[Score] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()
        export, export_scores = exporter.export, exporter.export_scores

        def spy_export(events: Sequence[SpanEvent]) -> None:
            with self._lock:
                self.events.extend(events)
                self.threads.add(threading.get_ident())
            export(events)

        def spy_scores(scores: Sequence[Score]) -> None:
            with self._lock:
                self.scores.extend(scores)
            export_scores(scores)

        # The channel looks the methods up on each call, so instance attributes win.
        setattr(exporter, "export", spy_export)  # noqa: B010 - mypy forbids assigning a method
        if exporter.supports_scores():
            setattr(exporter, "export_scores", spy_scores)  # noqa: B010 - as above


class ExporterContract:
    """The standard test battery for an exporter class. Subclass it as ``Test...``.

    Set these class attributes:

    - ``exporter_class``: the `Exporter` subclass under test.
    - ``config``: valid settings of its own (keyword arguments, as a config
      table would give them); values must be what a TOML file can hold.
    - ``secret_settings``: names of settings whose values must never appear
      in ``repr``/``str``, error messages, ``check()`` results or log lines
      (default: the class's ``secret_keys``). Use distinctive values.
    - ``expect_retryable``: ``retryable`` of the `ExportError`
      raised under `failing_config` (``None``: either is fine);
      ``expect_pause``: whether it asks for a pause (``ExportError.pause``;
      ``None``, the default: either is fine).
    - ``installed``: True when an installed plugin (or the core) registers
      the class, so ``PluginRegistry()`` must find it.
    - ``timeout``: seconds a flush may take.

    And override, as needed:

    - the ``backend`` fixture: start what the exporter talks to (a local
      server, a temporary directory) and return it;
    - `backend_settings`: settings that point the exporter at that
      backend (default: the backend itself when it is a mapping, else none);
    - `failing_config`: settings under which ``export()`` must raise
      `ExportError` (e.g. ``{"url": unreachable_url()}``);
    - `received`: how many distinct spans the backend holds, so the
      battery can check that a trace recorded through a hub arrived.

    Tests that need an override that was not given are skipped, with the
    reason saying which one.
    """

    exporter_class: ClassVar[type[Exporter]]
    config: ClassVar[Mapping[str, Any]] = {}
    secret_settings: ClassVar[Collection[str] | None] = None
    expect_retryable: ClassVar[bool | None] = True
    expect_pause: ClassVar[bool | None] = None
    installed: ClassVar[bool] = False
    timeout: ClassVar[float] = 10.0

    # -- what an author overrides ----------------------------------------------------------

    @pytest.fixture
    def backend(self) -> Any:
        """What the exporter talks to; the default is nothing."""
        return None

    def backend_settings(self, backend: Any) -> Mapping[str, Any]:
        """Settings pointing the exporter at ``backend``, merged over ``config``."""
        return backend if isinstance(backend, Mapping) else {}

    def failing_config(self, backend: Any) -> Mapping[str, Any] | None:
        """Settings (merged over the valid ones) under which ``export()`` must fail."""
        return None

    def received(self, backend: Any, exporter: Exporter) -> int | None:
        """How many distinct spans ``backend`` holds (None: cannot tell).

        Called before recording and after ``hub.flush()`` returned; wait
        inside if the backend stores what it is sent asynchronously.
        """
        return None

    # -- plumbing ----------------------------------------------------------------------------

    @pytest.fixture
    def contract_settings(self, backend: Any) -> dict[str, Any]:
        """The valid settings: ``config`` with `backend_settings` over it."""
        if getattr(self, "exporter_class", None) is None:
            pytest.fail(f"{type(self).__name__} must set exporter_class")
        return {**self.config, **self.backend_settings(backend)}

    @pytest.fixture
    def contract_exporter(
        self, contract_settings: dict[str, Any]
    ) -> Iterator[Callable[..., Exporter]]:
        """``make(**overrides)`` builds the exporter from the valid settings."""
        made: list[Exporter] = []

        def make(**overrides: Any) -> Exporter:
            exporter = self.exporter_class(**{**contract_settings, **overrides})
            made.append(exporter)
            return exporter

        yield make
        for exporter in made:
            try:
                exporter.shutdown()
            except Exception:  # test_flush_and_shutdown_are_idempotent reports it
                continue

    @pytest.fixture
    def contract_hubs(self, backend: Any) -> Iterator[HubFactory]:
        """Hubs shut down after the test, before the backend is torn down."""
        factory = HubFactory(shutdown_timeout=self.timeout)
        yield factory
        factory.shutdown()

    @pytest.fixture
    def contract_registry(self) -> PluginRegistry:
        """The installed registry if it provides the class, else one that registers it."""
        cls = self.exporter_class
        installed = PluginRegistry()
        if installed.exporter_class(cls.name) is cls:
            return installed
        return make_registry(cls)

    def _document(self, table: Mapping[str, Any]) -> dict[str, Any]:
        exporter_table = {"type": self.exporter_class.name, **table}
        return {
            "configs": {
                _CONFIG_NAME: {
                    "service_name": "contract-test",
                    "exporters": {_INSTANCE: exporter_table},
                }
            }
        }

    def _secrets(self, settings: Mapping[str, Any]) -> list[str]:
        names = self.secret_settings
        if names is None:
            names = self.exporter_class.secret_keys
        if not names:
            pytest.skip("no secret settings: set secret_settings or the class's secret_keys")
        secrets: list[str] = []
        for name in names:
            values = _strings(settings.get(name))
            assert values, f"secret setting {name!r} has no value in config: give it one"
            for value in values:
                assert len(value) >= _MIN_SECRET, (
                    f"the value of secret setting {name!r} is too short to look for: use a "
                    f"distinctive one of at least {_MIN_SECRET} characters"
                )
            secrets.extend(values)
        return secrets

    def _failing(self, backend: Any) -> Mapping[str, Any]:
        failing = self.failing_config(backend)
        if failing is None:
            pytest.skip("override failing_config(backend) to test failures")
        return failing

    def _fail_through_hub(
        self,
        make: Callable[..., Exporter],
        hubs: HubFactory,
        failing: Mapping[str, Any],
        **overrides: Any,
    ) -> tuple[Hub, bool]:
        """Record a trace into a hub whose exporter fails; returns the hub and flush()'s result.

        One attempt only, so a retryable failure is given up at once; an
        exporter that asks for a pause (``ExportError.pause``) is given a
        short while, then the hub is shut down.
        """
        probe = make(**failing)
        try:
            probe.export(make_trace(kinds=probe.event_kinds))
            pauses = False
        except ExportError as exc:
            pauses = exc.pause is not None
        except Exception:  # test_raises_export_error_when_the_backend_fails reports it
            pauses = False
        wait = _PAUSED_WAIT if pauses else self.timeout
        exporter = make(**{**failing, "retry": {"max_attempts": 1}, **overrides})
        hub = hubs(exporters=[exporter], service_name="contract-test")
        record_trace(hub, score=False)
        flushed = bool(hub.flush(wait))
        hub.shutdown(wait)
        return hub, flushed

    # -- construction ------------------------------------------------------------------------

    def test_has_a_type_name_and_wanted_event_kinds(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``name`` is what users write as ``type``; ``event_kinds`` is a set of EventKind."""
        name = self.exporter_class.name
        assert isinstance(name, str), f"{self.exporter_class.__name__}.name must be a str"
        assert _TYPE_NAME.match(name), (
            f"{self.exporter_class.__name__}.name = {name!r}: use lowercase letters, digits, "
            "'-' and '_', starting with a letter"
        )
        kinds = contract_exporter().event_kinds
        assert isinstance(kinds, (frozenset, set)), "event_kinds must be a frozenset"
        assert kinds, "event_kinds is empty: the exporter would receive nothing"
        assert all(isinstance(k, EventKind) for k in kinds), (
            f"event_kinds must hold obshub.EventKind members, got {sorted(map(repr, kinds))}"
        )

    def test_builds_from_keyword_arguments(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """The settings work as keywords, and the common keys reach the base class."""
        plain = contract_exporter()
        assert isinstance(plain, Exporter)
        assert plain.instance_name == self.exporter_class.name
        named = contract_exporter(
            instance_name="custom",
            realtime=True,
            log_level="debug",
            batch={"max_size": 7, "interval": 0.5},
            max_queue_size=99,
            retry={"max_attempts": 2},
            enabled=True,
        )
        assert named.instance_name == "custom"
        assert named.realtime is True, "realtime= did not reach Exporter.__init__"
        assert named.log_level == "debug", "log_level= did not reach Exporter.__init__"
        assert (named.batch.max_size, named.batch.interval) == (7, 0.5), (
            "batch= did not reach Exporter.__init__"
        )
        assert named.max_queue_size == 99, "max_queue_size= did not reach Exporter.__init__"
        assert named.retry.max_attempts == 2, "retry= did not reach Exporter.__init__"

    def test_builds_from_a_config_table_by_its_type_name(
        self,
        contract_settings: dict[str, Any],
        contract_hubs: HubFactory,
        contract_registry: PluginRegistry,
    ) -> None:
        """``type = "<name>"`` plus the settings in a config table builds the exporter."""
        table = {
            **contract_settings,
            "realtime": True,
            "log_level": "warning",
            "batch": {"max_size": 5},
        }
        hub = contract_hubs.from_config(self._document(table), registry=contract_registry)
        (exporter,) = hub.exporters()
        assert type(exporter) is self.exporter_class
        assert exporter.instance_name == _INSTANCE
        assert (exporter.realtime, exporter.log_level, exporter.batch.max_size) == (
            True,
            "warning",
            5,
        )

    def test_rejects_an_unknown_key_with_its_full_path(
        self, contract_settings: dict[str, Any], contract_registry: PluginRegistry
    ) -> None:
        """A misspelt setting is a ConfigError naming ``configs.<c>.exporters.<i>.<key>``."""
        table = {**contract_settings, "no_such_setting": True}
        with pytest.raises(ConfigError) as caught:
            Hub.from_config(self._document(table), registry=contract_registry)
        assert caught.value.key == f"{_KEY_PREFIX}.no_such_setting", str(caught.value)
        with pytest.raises((TypeError, ConfigError)):
            self.exporter_class(**table)

    @pytest.mark.parametrize(("setting", "value", "path"), _BAD_COMMON_SETTINGS)
    def test_rejects_a_bad_common_setting_with_its_full_path(
        self,
        contract_settings: dict[str, Any],
        contract_registry: PluginRegistry,
        setting: str,
        value: Any,
        path: str,
    ) -> None:
        """Every common key is validated, and the error names its full key path."""
        table = {**contract_settings, setting: value}
        with pytest.raises(ConfigError) as caught:
            Hub.from_config(self._document(table), registry=contract_registry)
        assert caught.value.key == f"{_KEY_PREFIX}.{path}", str(caught.value)

    def test_reports_a_missing_required_setting_with_its_full_path(
        self, contract_settings: dict[str, Any], contract_registry: PluginRegistry
    ) -> None:
        """Leaving out a required keyword is a ConfigError naming that key."""
        required = [
            name
            for name, param in exporter_parameters(self.exporter_class).items()
            if param.default is inspect.Parameter.empty and param.kind is param.KEYWORD_ONLY
        ]
        if not required:
            pytest.skip("the exporter has no required settings")
        for name in required:
            table = {k: v for k, v in contract_settings.items() if k != name}
            with pytest.raises(ConfigError) as caught:
                Hub.from_config(self._document(table), registry=contract_registry)
            assert caught.value.key == f"{_KEY_PREFIX}.{name}", str(caught.value)

    def test_is_registered_by_its_installed_plugin(self) -> None:
        """``PluginRegistry()`` finds the class under its name; a plugin carries its keyword."""
        if not self.installed:
            pytest.skip("set installed = True once a plugin registers the class")
        cls = self.exporter_class
        registry = PluginRegistry()
        assert not registry.errors, f"plugins failed to load: {registry.errors}"
        found = registry.exporter_types().get(cls.name)
        assert found is not None, f"no installed plugin registers type {cls.name!r}"
        assert found.cls is cls, f"type {cls.name!r} is registered by {found.plugin!r}"
        if found.distribution != "obshub":
            keywords = metadata.metadata(found.distribution)["Keywords"] or ""
            assert "obshub-plugin" in re.split(r"[,\s]+", keywords), (
                f"{found.distribution} lacks the keyword 'obshub-plugin' in its metadata"
            )

    # -- secrets -------------------------------------------------------------------------------

    def test_keeps_secrets_out_of_repr_errors_checks_and_logs(
        self,
        backend: Any,
        contract_settings: dict[str, Any],
        contract_exporter: Callable[..., Exporter],
        contract_hubs: HubFactory,
        contract_registry: PluginRegistry,
    ) -> None:
        """Secret values never show in repr/str, errors, check() results or log lines."""
        failing = self.failing_config(backend)
        secrets = self._secrets(contract_settings)
        if failing is not None:
            secrets += self._secrets({**contract_settings, **failing})
        seen: list[str] = []
        with capture_logs() as logs:
            exporter = contract_exporter(log_level="debug")
            seen += [repr(exporter), str(exporter), *_texts_of(exporter.check)]
            seen += _texts_of(lambda: exporter.export(make_trace(kinds=exporter.event_kinds)))
            seen += _texts_of(exporter.flush)
            table = {**contract_settings, "log_level": "debug", "realtime": True}
            hub = contract_hubs.from_config(self._document(table), registry=contract_registry)
            seen += [repr(e) for e in hub.exporters()]
            record_trace(hub)
            hub.flush(self.timeout)
            hub.shutdown(self.timeout)
            if failing is not None:
                broken = contract_exporter(**{**failing, "log_level": "debug"})
                seen += [repr(broken), *_texts_of(broken.check)]
                seen += _texts_of(lambda: broken.export(make_trace(kinds=broken.event_kinds)))
                self._fail_through_hub(contract_exporter, contract_hubs, failing, log_level="debug")
        seen += [repr(entry) for entry in logs]
        for secret in secrets:
            leaks = [text for text in seen if secret in text]
            assert not leaks, f"a secret value appears in: {leaks[0][:300]}"

    # -- exporting -----------------------------------------------------------------------------

    def test_exports_each_event_kind_directly(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``export()`` takes a started, an updated and an ended event without raising."""
        exporter = contract_exporter()
        for kind in EventKind:
            exporter.export([make_event(kind, name=f"{kind.value}-span", type="agent_run")])
        exporter.export(make_trace(kinds=EventKind))

    def test_exports_an_empty_batch(self, contract_exporter: Callable[..., Exporter]) -> None:
        """``export([])`` is a no-op, not an error."""
        contract_exporter().export([])

    def test_exports_errors_events_and_unusual_values(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Every valid span is exportable: each type, errors, events, unicode, big inputs."""
        trace_id, root_id = new_trace_id(), new_span_id()
        root = make_span(trace_id=trace_id, span_id=root_id, name="root", type="agent_run")
        spans = [root]
        spans += [
            make_span(trace_id=trace_id, parent_span_id=root_id, name=t.value, type=t)
            for t in SpanType
        ]
        spans += [
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="failed tool",
                type="tool_call",
                level="error",
                status_message="order service timed out",
                error={"message": "timed out", "type": "TimeoutError", "stack": "Traceback ..."},
            ),
            make_span(trace_id=trace_id, parent_span_id=root_id, name="slow", level="warning"),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="cache-hit",
                is_event=True,
                end_time=root.start_time,
                start_time=root.start_time,
            ),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="ünïcödé ✓ 日本語 🚀",
                input={"text": "naïve café ☕", "nested": {"list": [1, 2.5, None, True]}},
                output="",
                metadata={"empty": {}, "zero": 0},
                tags=("ä", "b c"),
            ),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="large",
                input="x" * 100_000,
                output=["y" * 1000] * 20,
            ),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="bare generation",
                type="model_generation",
                model=None,
                usage={"input": 0},
                cost={"total": 0.0},
            ),
        ]
        exporter = contract_exporter()
        kinds = exporter.event_kinds
        kind = EventKind.ENDED if EventKind.ENDED in kinds else next(iter(kinds))
        exporter.export([make_event(kind, span=span) for span in spans])

    def test_exports_text_with_lone_surrogates(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Text that is not valid UTF-8 (lone surrogates, as a hub passes them on) is exportable."""
        exporter = contract_exporter()
        kinds = exporter.event_kinds
        kind = EventKind.ENDED if EventKind.ENDED in kinds else next(iter(kinds))
        broken = "half a pair \ud83d here"
        event = make_event(
            kind,
            name=broken,
            type="model_generation",
            input={"text": broken, broken: "key"},
            output=[broken],
            metadata={"note": broken},
            model=broken,
            session_id=broken,
            tags=(broken,),
        )
        exporter.export([event])

    def test_gets_only_the_event_kinds_it_asks_for_through_a_hub(
        self, contract_exporter: Callable[..., Exporter], contract_hubs: HubFactory
    ) -> None:
        """A hub hands the exporter exactly the kinds in ``event_kinds``, from one worker."""
        exporter = contract_exporter(realtime=True)
        spy = _Spy(exporter)
        hub = contract_hubs(exporters=[exporter], service_name="contract-test")
        record_trace(hub)
        assert hub.flush(self.timeout), f"flush failed: {hub.stats()}"
        kinds = {event.kind for event in spy.events}
        assert kinds == set(exporter.event_kinds)
        if EventKind.ENDED in exporter.event_kinds:
            ended = {e.span.span_id for e in spy.events if e.kind is EventKind.ENDED}
            assert len(ended) == TRACE_SPANS
        if exporter.supports_scores():
            assert [s.name for s in spy.scores] == ["helpfulness"]
        assert len(spy.threads) == 1

    def test_delivers_a_realistic_trace_to_its_backend(
        self,
        backend: Any,
        contract_exporter: Callable[..., Exporter],
        contract_hubs: HubFactory,
    ) -> None:
        """A trace recorded through a real hub arrives whole at the backend."""
        exporter = contract_exporter()
        before = self.received(backend, exporter)
        if before is None:
            pytest.skip("override received(backend, exporter) to count what the backend got")
        hub = contract_hubs(exporters=[exporter], service_name="contract-test")
        record_trace(hub)
        assert hub.flush(self.timeout), f"flush failed: {hub.stats()}"
        expected = TRACE_SPANS if EventKind.ENDED in exporter.event_kinds else TRACE_SPANS - 1
        after = self.received(backend, exporter)
        assert after is not None
        assert after - before == expected, f"the backend got {after - before} spans"
        (stats,) = hub.stats().values()
        assert (stats.failed, stats.dropped) == (0, 0), stats

    def test_accepts_a_score_batch_when_it_takes_scores(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """An exporter that overrides ``export_scores`` takes each kind of score, and none."""
        if not self.exporter_class.supports_scores():
            pytest.skip("the exporter does not take scores")
        exporter = contract_exporter()
        exporter.export_scores(
            [
                make_score(),
                make_score(name="resolved", value=True, comment=None),
                make_score(name="tone", value="friendly", span_id=new_span_id()),
                make_score(name="csat", value=4, trace_id=None, session_id="s-42"),
            ]
        )
        exporter.export_scores([])

    def test_leaves_what_it_is_given_unchanged(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``export()`` and ``export_scores()`` change nothing they are given.

        Every exporter of a config receives the very same events and scores, so
        a change made by one would reach the others. Span values are read-only
        (a change raises ``TypeError``); a change made around that
        (``dict.__setitem__``, ``object.__setattr__``) is found by comparing
        what was given before and after the call. Copy what you need to change:
        ``obshub.spans.thaw(value)`` is a mutable deep copy.
        """
        exporter = contract_exporter()
        kinds = exporter.event_kinds
        kind = EventKind.ENDED if EventKind.ENDED in kinds else next(iter(kinds))
        events = [e for e in make_trace(kinds=EventKind) if e.kind in kinds]
        events.append(
            make_event(
                kind,
                name="login",
                type="tool_call",
                input={"user": "u-7", "password": "pw-7f3a", "history": [{"role": "user"}]},
                output=[{"ok": True, "token": "t-9b1c"}],
                metadata={"labels": ["auth"], "client": {"ip": "10.0.0.7"}},
                attributes={"http.headers": {"authorization": "Bearer abc"}},
                parameters={"stop": ["\n"]},
                usage={"input": 3, "output": 1, "details": {"audio": 1}},
            )
        )
        _call_without_changes(exporter.export, events, "export()")
        if exporter.supports_scores():
            scores = [make_score(metadata={"rubric": {"steps": ["a", "b"]}}), make_score()]
            _call_without_changes(exporter.export_scores, scores, "export_scores()")

    # -- failures ------------------------------------------------------------------------------

    def test_raises_export_error_when_the_backend_fails(
        self, backend: Any, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Under ``failing_config`` export() raises ExportError, retryable as expected."""
        exporter = contract_exporter(**self._failing(backend))
        try:
            exporter.export(make_trace(kinds=exporter.event_kinds))
        except ExportError as exc:
            error = exc
        except Exception as exc:
            pytest.fail(
                f"export() raised {type(exc).__name__}: {exc}; failures must raise "
                "obshub.ExportError"
            )
        else:
            pytest.fail("export() returned under failing_config(); it must raise ExportError")
        assert str(error).strip(), "the ExportError has no message"
        if self.expect_retryable is not None:
            assert error.retryable is self.expect_retryable, repr(error)
        if self.expect_pause is not None:
            assert (error.pause is not None) is self.expect_pause, repr(error)
        assert error.retry_after is None or error.retry_after >= 0
        assert error.status is None or isinstance(error.status, int)

    def test_contains_a_failing_backend_inside_the_hub(
        self,
        backend: Any,
        contract_exporter: Callable[..., Exporter],
        contract_hubs: HubFactory,
    ) -> None:
        """Recording never raises; flush() says it failed; the hub counts what was lost."""
        hub, flushed = self._fail_through_hub(
            contract_exporter, contract_hubs, self._failing(backend)
        )
        assert not flushed, "flush() was truthy although every export failed"
        (stats,) = hub.stats().values()
        assert stats.exported == 0, stats
        assert stats.failed + stats.dropped + stats.spooled + stats.rejected >= 1, stats

    def test_check_returns_a_well_formed_result(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``check()`` returns a CheckResult (bool ok, str message); ok on a working backend."""
        exporter = contract_exporter()
        try:
            result = exporter.check()
        except Exception as exc:
            pytest.fail(f"check() raised {type(exc).__name__}: {exc}; it must return a result")
        assert _check_well_formed(result).ok, result.message

    def test_check_reports_a_failing_backend_without_raising(
        self, backend: Any, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Under ``failing_config``, an exporter with its own check() reports not ok."""
        exporter = contract_exporter(**self._failing(backend))
        try:
            result = exporter.check()
        except Exception as exc:
            pytest.fail(f"check() raised {type(exc).__name__}: {exc}; it must return a result")
        _check_well_formed(result)
        if type(exporter).check is not Exporter.check:
            assert result.ok is False, result.message

    # -- lifecycle -------------------------------------------------------------------------------

    def test_flush_and_shutdown_are_idempotent(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """flush() and shutdown() may be called twice, before or after exporting."""
        fresh = contract_exporter()
        fresh.flush()
        fresh.flush()
        fresh.shutdown()
        fresh.shutdown()
        used = contract_exporter()
        used.export(make_trace(kinds=used.event_kinds))
        used.flush()
        used.flush()
        used.shutdown()
        used.shutdown()

    def test_survives_an_export_after_shutdown(
        self, contract_exporter: Callable[..., Exporter], contract_hubs: HubFactory
    ) -> None:
        """After shutdown, export() returns or raises ExportError; the hub drops quietly."""
        exporter = contract_exporter()
        exporter.shutdown()
        calls: list[Callable[[], None]] = [
            lambda: exporter.export(make_trace(kinds=exporter.event_kinds))
        ]
        if exporter.supports_scores():
            calls.append(lambda: exporter.export_scores([make_score()]))
        for call in calls:
            try:
                call()
            except ExportError:
                continue
            except Exception as exc:
                pytest.fail(f"an export after shutdown raised {type(exc).__name__}: {exc}")
        hub = contract_hubs(exporters=[contract_exporter()], service_name="contract-test")
        hub.shutdown(self.timeout)
        hub.shutdown(self.timeout)
        record_trace(hub)
        flushed = hub.flush(self.timeout)
        assert flushed.dropped >= 1, f"flush() after shutdown hid the drops: {flushed!r}"
        assert not flushed.timed_out, f"flush() after shutdown waited: {flushed!r}"
