"""The tracing setups the benchmarks compare, recording the same LLM trace.

One trace = what an agent records for one model call: an ``agent_run`` root
span with the user's question as input; a child ``model_generation`` span with
the model, provider, parameters, three chat messages as input, an answer as
output and token usage; then the root's output.

Peers (each records that trace through its own public API):

- ``obshub-langfuse``: ``obshub.Hub`` + ``obshub_langfuse.LangfuseExporter``
  (OTLP protobuf + gzip) to the loopback receiver; ``exporters=3`` fans out to
  three exporter instances (three channels, three workers);
- ``obshub-jsonl`` / ``obshub-jsonl-ended``: ``obshub.JsonlExporter`` to a
  temporary file (references without HTTP);
- ``otel``: OpenTelemetry SDK ``TracerProvider`` + ``BatchSpanProcessor`` (or
  ``SimpleSpanProcessor``) + ``OTLPSpanExporter`` (protobuf over HTTP) to the
  receiver; the data as ``gen_ai.*`` attributes with JSON strings made on the
  application thread, as an OTel user must;
- ``otel-noop-export``: the same OTel setup with an exporter that only counts;
- ``langfuse-sdk``: the official Langfuse Python SDK (v3 and later are built on
  OpenTelemetry) to the receiver, when ``langfuse`` is installed.

Every peer that sends over HTTP uses its own path prefix on the one receiver
(``/obshub``, ``/sdk``, ``/otel`` ...), so the receiver counts each peer's
spans separately. Queues are sized so that nothing is dropped unless a
benchmark asks for a bound (``max_queue_size``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from receiver import ReceiverProcess, wait_for_spans

REPO = Path(__file__).resolve().parent.parent
SPANS_PER_TRACE = 2
BIG_QUEUE = 4_000_000  # a bound that is never reached: each burst is flushed before the next
OTEL_PATH = "/otel/v1/traces"
LANGFUSE_PATH = "/api/public/otel/v1/traces"  # what both Langfuse senders append to base_url
OBSHUB_PREFIX = "/obshub"
SDK_PREFIX = "/sdk"

# -- the recorded data (built once, as an application would have it) ----------------------

QUESTION = "How do I reset my password if I no longer have access to my recovery email?"
SYSTEM = "You are a helpful support agent for Acme Cloud."
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": QUESTION},
    {"role": "assistant", "content": "Let me look up the account recovery policy."},
]
ANSWER = "Open Settings > Security, choose 'Reset password', then verify by SMS instead."

#: ``trace(question, messages, answer)`` records one two-span trace.
TraceFn = Callable[[str, list[dict[str, str]], str], None]


def fresh_data(i: int) -> tuple[str, list[dict[str, str]], str]:
    """The i-th request's own question, messages and answer (new objects, as in a live app)."""
    question = f"{QUESTION} (ticket {i})"
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": question},
        {"role": "assistant", "content": f"Let me look up the account recovery policy ({i})."},
    ]
    return question, messages, f"{ANSWER} (ticket {i})"


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a constructor that reads them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# -- the peers ----------------------------------------------------------------------------


class Peer:
    """A tracing setup under test: records traces, flushes, and checks what arrived."""

    name = ""
    description = ""
    #: receiver paths this peer's spans arrive on (empty: no HTTP)
    paths: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.traces = 0  # every trace recorded, warm-up included
        self._lock = threading.Lock()
        self.trace: TraceFn = self._make_trace()

    def _make_trace(self) -> TraceFn:
        raise NotImplementedError

    def record(self, n: int) -> None:
        """Record ``n`` identical traces back to back (thread-safe)."""
        trace = self.trace
        for _ in range(n):
            trace(QUESTION, MESSAGES, ANSWER)
        with self._lock:
            self.traces += n

    def record_fresh(self, n: int, first: int = 0) -> None:
        """Record ``n`` traces, each with its own newly built data."""
        trace = self.trace
        for i in range(first, first + n):
            trace(*fresh_data(i))
        with self._lock:
            self.traces += n

    def flush(self) -> bool:
        raise NotImplementedError

    def after_flush(self) -> None:
        """Untimed bookkeeping after each flush (e.g. count and truncate a file)."""

    def expected_spans(self) -> int:
        return self.traces * SPANS_PER_TRACE

    def verify(self) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ReceiverPeer(Peer):
    """A peer whose spans go to the loopback receiver."""

    receiver: ReceiverProcess  # set by the subclass before ``Peer.__init__``

    def drops(self) -> dict[str, Any]:
        """The peer's own dropped/failed counters, where it has them."""
        return {}

    def verify(self) -> dict[str, Any]:
        expected = self.expected_spans()
        stats = self.receiver.stats()["by_path"]
        per_path = {}
        ok = True
        for path in self.paths:
            got = wait_for_spans(self.receiver, path, expected, timeout=60)
            entry = stats.get(path, {})
            per_path[path] = {
                "got_spans": got,
                "requests": entry.get("requests", 0),
                "bytes_wire": entry.get("bytes_wire", 0),
            }
            ok = ok and got == expected
        drops = self.drops()
        ok = ok and not drops.get("dropped") and not drops.get("failed")
        first = per_path[self.paths[0]] if self.paths else {}
        return {
            "traces": self.traces,
            "expected_spans": expected,
            "got_spans": first.get("got_spans"),
            "requests": sum(p["requests"] for p in per_path.values()),
            "bytes_wire": sum(p["bytes_wire"] for p in per_path.values()),
            "paths": per_path,
            **({"stats": drops} if drops else {}),
            "ok": ok,
        }


def obshub_trace_fn(hub: Any) -> TraceFn:
    span = hub.span

    def trace(question: str, messages: list[dict[str, str]], answer: str) -> None:
        with span("support-agent", type="agent_run", input=question) as agent:
            with span(
                "gpt-4o",
                type="model_generation",
                model="gpt-4o",
                provider="openai",
                parameters={"temperature": 0.2, "max_tokens": 512},
                input=messages,
            ) as gen:
                gen.update(output=answer, usage={"input": 812, "output": 95, "cached_input": 200})
            agent.update(output=answer)

    return trace


def obshub_trace_loop(hub: Any) -> Callable[[int], None]:
    """``record(n)``: n identical traces into ``hub`` (used by memory and profile scripts)."""
    trace = obshub_trace_fn(hub)

    def record(n: int) -> None:
        for _ in range(n):
            trace(QUESTION, MESSAGES, ANSWER)

    return record


class ObshubPeer(Peer):
    def __init__(self, name: str, description: str, exporters: list[Any]) -> None:
        import obshub

        self.name = name
        self.description = description
        self.exporters = exporters
        self.hub = obshub.Hub(exporters=exporters, service_name="obshub-bench")
        super().__init__()

    def _make_trace(self) -> TraceFn:
        return obshub_trace_fn(self.hub)

    def flush(self) -> bool:
        return bool(self.hub.flush(timeout=300))

    def stats(self) -> dict[str, Any]:
        """Counters summed over the hub's exporters (``hub.stats()``)."""
        import attrs

        total: dict[str, Any] = {}
        for entry in self.hub.stats().values():
            for key, value in attrs.asdict(entry).items():
                if isinstance(value, int) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
        return total

    def close(self) -> None:
        self.hub.shutdown(timeout=10)


class JsonlPeer(ObshubPeer):
    def __init__(self, name: str, description: str, path: Path, events: list[str] | None) -> None:
        import obshub

        self.path = path
        kwargs: dict[str, Any] = {} if events is None else {"events": events}
        exporter = obshub.JsonlExporter(path=str(path), max_queue_size=BIG_QUEUE, **kwargs)
        self.kinds = sorted(k.value for k in exporter.event_kinds)
        super().__init__(name, description, [exporter])
        self.lines: dict[str, int] = {}
        self.bad_lines = 0

    def after_flush(self) -> None:
        # Count what reached the file, then empty it so the disk use stays small.
        # The exporter appends with O_APPEND, so truncating between flushes is safe.
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        for line in data.splitlines():
            head = line[:40]
            marker = head.find(b'"kind":"')
            if marker < 0:
                self.bad_lines += 1
                continue
            start = marker + 8
            kind = head[start : head.find(b'"', start)].decode()
            self.lines[kind] = self.lines.get(kind, 0) + 1
        os.truncate(self.path, 0)

    def verify(self) -> dict[str, Any]:
        stats = self.stats()
        expected = dict.fromkeys(self.kinds, self.traces * SPANS_PER_TRACE)
        if "updated" in expected:
            expected["updated"] = self.traces * 2  # gen.update + agent.update
        ok = self.lines == expected and stats["dropped"] == 0 and stats["failed"] == 0
        return {
            "traces": self.traces,
            "expected_lines": expected,
            "got_lines": dict(self.lines),
            "bad_lines": self.bad_lines,
            "stats": stats,
            "ok": ok,
        }


class ObshubLangfusePeer(ObshubPeer, ReceiverPeer):
    """obshub + ``LangfuseExporter`` (one or several instances) to the receiver."""

    def __init__(
        self,
        receiver: ReceiverProcess,
        exporter_cls: Any,
        *,
        name: str = "obshub-langfuse",
        exporters: int = 1,
        realtime: bool = False,
        max_queue_size: int = BIG_QUEUE,
        prefix: str = OBSHUB_PREFIX,
        log_level: str = "info",
    ) -> None:
        self.receiver = receiver
        prefixes = [prefix] if exporters == 1 else [f"{prefix}{i + 1}" for i in range(exporters)]
        self.paths = tuple(p + LANGFUSE_PATH for p in prefixes)
        instances = [
            exporter_cls(
                instance_name=f"langfuse-{i + 1}",
                public_key="pk-lf-bench",
                secret_key="sk-lf-bench",
                base_url=receiver.url + p,
                realtime=realtime,
                max_queue_size=max_queue_size,
                log_level=log_level,
            )
            for i, p in enumerate(prefixes)
        ]
        mode = "realtime" if realtime else "batch"
        fan = f"{exporters} x " if exporters > 1 else ""
        ObshubPeer.__init__(
            self,
            name,
            f"obshub Hub + {fan}LangfuseExporter ({mode}, OTLP protobuf+gzip) -> loopback receiver",
            instances,
        )

    def drops(self) -> dict[str, Any]:
        return self.stats()


def otel_trace_fn(tracer: Any) -> TraceFn:
    start = tracer.start_as_current_span
    dumps = json.dumps

    def trace(question: str, messages: list[dict[str, str]], answer: str) -> None:
        with start(
            "support-agent",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "support-agent",
                "input.value": dumps(question),
            },
        ) as agent:
            with start(
                "gpt-4o",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.request.max_tokens": 512,
                    "gen_ai.input.messages": dumps(messages),
                },
            ) as gen:
                gen.set_attributes(
                    {
                        "gen_ai.output.messages": dumps(answer),
                        "gen_ai.usage.input_tokens": 812,
                        "gen_ai.usage.output_tokens": 95,
                        "gen_ai.usage.cache_read.input_tokens": 200,
                    }
                )
            agent.set_attribute("output.value", dumps(answer))

    return trace


def otlp_exporter(endpoint: str) -> Any:
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: loopback only
    return OTLPSpanExporter(endpoint=endpoint, session=session)


class OtelPeer(ReceiverPeer):
    name = "otel"
    description = (
        "OpenTelemetry SDK TracerProvider + BatchSpanProcessor + OTLPSpanExporter "
        "(protobuf/HTTP, no compression) -> loopback receiver"
    )
    paths = (OTEL_PATH,)

    def __init__(
        self,
        receiver: ReceiverProcess,
        *,
        simple: bool = False,
        max_queue_size: int = BIG_QUEUE,
        name: str | None = None,
    ) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        if name:
            self.name = name
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "otel-bench"}), shutdown_on_exit=False
        )
        exporter = self._exporter(receiver)
        if simple:
            self.description = self.description.replace("Batch", "Simple")
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
            self.processor = None
        else:
            self.processor = BatchSpanProcessor(exporter, max_queue_size=max_queue_size)
            self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("obshub-bench")
        self.receiver = receiver
        super().__init__()

    def _exporter(self, receiver: ReceiverProcess) -> Any:
        return otlp_exporter(receiver.url + OTEL_PATH)

    def _make_trace(self) -> TraceFn:
        return otel_trace_fn(self.tracer)

    def queue_length(self) -> int:
        """Spans waiting in the BatchSpanProcessor (its private deque, read only)."""
        if self.processor is None:
            return 0
        return len(self.processor._batch_processor._queue)

    def flush(self) -> bool:
        return bool(self.provider.force_flush(timeout_millis=300_000))

    def close(self) -> None:
        self.provider.shutdown()


class OtelNoopPeer(OtelPeer):
    """OTel's in-process cost alone: the same SDK setup, an exporter that does nothing."""

    name = "otel-noop-export"
    description = (
        "reference: the same OpenTelemetry SDK setup, BatchSpanProcessor + an exporter "
        "that only counts (no encoding, no HTTP)"
    )
    paths = ()

    def _exporter(self, receiver: ReceiverProcess) -> Any:
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        counter = self
        self.exported = 0

        class CountingExporter(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                counter.exported += len(spans)
                return SpanExportResult.SUCCESS

        return CountingExporter()

    def verify(self) -> dict[str, Any]:
        expected = self.expected_spans()
        return {
            "traces": self.traces,
            "expected_spans": expected,
            "got_spans": self.exported,
            "sink": "counting exporter, no HTTP",
            "ok": self.exported == expected,
        }


def langfuse_trace_fn(client: Any) -> TraceFn:
    start = client.start_as_current_observation

    def trace(question: str, messages: list[dict[str, str]], answer: str) -> None:
        with start(name="support-agent", as_type="agent", input=question) as agent:
            with start(
                name="gpt-4o",
                as_type="generation",
                model="gpt-4o",
                model_parameters={"temperature": 0.2, "max_tokens": 512},
                input=messages,
            ) as gen:
                # Langfuse's convention: "input" excludes the cached tokens (812 - 200).
                gen.update(
                    output=answer,
                    usage_details={"input": 612, "output": 95, "input_cached_tokens": 200},
                )
            agent.update(output=answer)

    return trace


class LangfuseSdkPeer(ReceiverPeer):
    """The official Langfuse Python SDK (OpenTelemetry-based) to the receiver.

    It gets its own ``TracerProvider`` (the SDK would otherwise install a
    global one, shared by every client of the process) and its own public key
    (the SDK keeps one client per key). Its span queue is OpenTelemetry's
    ``BatchSpanProcessor`` deque, sized with ``OTEL_BSP_MAX_QUEUE_SIZE``
    during construction (the SDK has no argument for it). Media upload
    threads are switched off (``LANGFUSE_MEDIA_UPLOAD_ENABLED=false``); the
    SDK fetches nothing from the server unless asked (prompts, trace URLs),
    which the benchmark never does -- the receiver's per-path counts show
    every request it sent.
    """

    name = "langfuse-sdk"

    def __init__(
        self,
        receiver: ReceiverProcess,
        *,
        name: str | None = None,
        flush_at: int | None = None,
        max_queue_size: int = BIG_QUEUE,
        prefix: str = SDK_PREFIX,
        public_key: str = "pk-lf-bench-sdk",
    ) -> None:
        from langfuse import Langfuse
        from langfuse import __version__ as version
        from opentelemetry.sdk.trace import TracerProvider

        if name:
            self.name = name
        self.paths = (prefix + LANGFUSE_PATH,)
        mode = f"flush_at={flush_at}" if flush_at else "defaults: batch 512 spans / 5 s"
        self.description = (
            f"Langfuse Python SDK {version} (OTel BatchSpanProcessor + OTLP protobuf/HTTP "
            f"+ gzip, {mode}) -> loopback receiver"
        )
        self.provider = TracerProvider(shutdown_on_exit=False)
        with environ(
            OTEL_BSP_MAX_QUEUE_SIZE=str(max_queue_size),
            LANGFUSE_MEDIA_UPLOAD_ENABLED="false",
        ):
            self.client = Langfuse(
                public_key=public_key,
                secret_key="sk-lf-bench",
                base_url=receiver.url + prefix,
                tracer_provider=self.provider,
                flush_at=flush_at,
            )
        processors = self.provider._active_span_processor._span_processors
        self.processor = processors[0] if processors else None
        self.receiver = receiver
        super().__init__()

    def _make_trace(self) -> TraceFn:
        return langfuse_trace_fn(self.client)

    def queue_length(self) -> int:
        """Spans waiting in the SDK's BatchSpanProcessor (private deque, read only)."""
        if self.processor is None:
            return 0
        return len(self.processor._batch_processor._queue)

    def flush(self) -> bool:
        self.client.flush()
        return True

    def close(self) -> None:
        self.client.shutdown()
        self.provider.shutdown()


# -- optional packages ----------------------------------------------------------------------


def load_langfuse_exporter() -> tuple[Any | None, str]:
    """``LangfuseExporter`` if ``obshub_langfuse`` is importable (installed or in-tree)."""
    try:
        from obshub_langfuse import LangfuseExporter

        return LangfuseExporter, "installed"
    except ImportError as exc:
        first_error = exc
    source = REPO / "plugins" / "langfuse"
    if (source / "obshub_langfuse" / "__init__.py").exists():
        sys.path.insert(0, str(source))
        sys.modules.pop("obshub_langfuse", None)
        try:
            from obshub_langfuse import LangfuseExporter

            return LangfuseExporter, f"source tree ({source})"
        except Exception as exc:
            return None, f"not importable: {type(exc).__name__}: {exc}"
    return None, f"not importable: {first_error}"


def langfuse_sdk_status() -> tuple[bool, str]:
    """Whether the official Langfuse SDK can be used, and why not."""
    try:
        import langfuse
    except ImportError as exc:
        return False, (
            f"skipped: the Langfuse SDK is not installed ({exc}); "
            "install it with `.venv/bin/pip install langfuse`"
        )
    version = getattr(langfuse, "__version__", "?")
    if not hasattr(langfuse.Langfuse, "start_as_current_observation"):
        return False, f"skipped: langfuse {version} has no start_as_current_observation (need v3+)"
    return True, f"langfuse {version}"
