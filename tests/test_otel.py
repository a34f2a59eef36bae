"""obshub.otel: OpenTelemetry spans through the configs, one context, W3C trace context."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import structlog
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

import obshub
import obshub._threads
import obshub.otel
from obshub import SpanEvent, SpanType
from obshub._tracing import parse_traceparent
from obshub.testing import HubFactory, RecordingExporter

WAIT = 5.0
TEXT_HI = {"type": "text", "content": "Hi"}
TEXT_YO = {"type": "text", "content": "Yo"}


class Bridged:
    """A hub, its recording exporter, and a tracer whose provider bridges into the hub."""

    def __init__(self, hub: obshub.Hub, recorded: RecordingExporter) -> None:
        self.hub = hub
        self.recorded = recorded
        self.provider = TracerProvider()
        self.processor = obshub.otel.SpanProcessor(hub)
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("test.instrumentation", "1.0")

    def spans(self) -> dict[str, obshub.Span]:
        assert self.hub.flush(timeout=WAIT)
        return {s.name: s for s in self.recorded.spans()}


@pytest.fixture
def bridged(hub_factory: HubFactory) -> Iterator[Bridged]:
    hub, recorded = hub_factory.memory()
    setup = Bridged(hub, recorded)
    yield setup
    setup.provider.shutdown()


# -- one trace, one context -----------------------------------------------------------------


def test_an_instrumentation_span_inside_an_obshub_span_is_its_child(bridged: Bridged) -> None:
    with bridged.hub.span("agent", type="agent_run") as agent:
        with bridged.tracer.start_as_current_span("chat gpt-4o") as otel_span:
            seen = obshub.current_span()
        assert obshub.current_span() is agent
    spans = bridged.spans()
    chat = spans["chat gpt-4o"]
    assert chat.trace_id == agent.trace_id
    assert chat.parent_span_id == agent.span_id
    assert seen is not None
    assert seen.span_id == chat.span_id == f"{otel_span.get_span_context().span_id:016x}"
    assert spans["agent"].parent_span_id is None


def test_an_obshub_span_inside_an_instrumentation_span_is_its_child(bridged: Bridged) -> None:
    with (
        bridged.tracer.start_as_current_span("http request") as outer,
        bridged.hub.span("tool", type="tool_call") as tool,
        bridged.tracer.start_as_current_span("inner call"),
    ):
        pass
    spans = bridged.spans()
    context = outer.get_span_context()
    assert spans["http request"].trace_id == f"{context.trace_id:032x}" == tool.trace_id
    assert spans["tool"].parent_span_id == f"{context.span_id:016x}"
    assert spans["inner call"].parent_span_id == tool.span_id
    assert spans["http request"].parent_span_id is None


def test_observe_and_generators_share_the_context(bridged: Bridged) -> None:
    @bridged.hub.observe(type="agent_run")
    def run() -> None:
        with bridged.tracer.start_as_current_span("llm"):
            pass

    @bridged.hub.observe
    def chunks() -> Iterator[str]:
        with bridged.tracer.start_as_current_span("chunk"):
            yield "a"

    run()
    assert list(chunks()) == ["a"]
    spans = bridged.spans()
    assert spans["llm"].parent_span_id == spans["run"].span_id
    assert spans["chunk"].parent_span_id == spans["chunks"].span_id


def test_obshub_spans_outside_any_otel_span_start_their_own_traces(bridged: Bridged) -> None:
    with bridged.hub.span("one") as one:
        pass
    with bridged.hub.span("two") as two:
        pass
    assert one.trace_id != two.trace_id
    assert otel_trace.get_current_span().get_span_context().is_valid is False


def test_after_shutdown_obshub_spans_are_no_longer_otel_context(
    hub_factory: HubFactory,
) -> None:
    hub, _recorded = hub_factory.memory()
    setup = Bridged(hub, _recorded)
    setup.provider.shutdown()
    with hub.span("alone"):
        assert not otel_trace.get_current_span().get_span_context().is_valid


# -- routing through the configs ---------------------------------------------------------------


def test_bridged_spans_follow_the_selector_sampling_and_redaction(
    hub_factory: HubFactory,
) -> None:
    kept, sampled_out = (
        RecordingExporter(instance_name="kept"),
        RecordingExporter(instance_name="never"),
    )
    hub = hub_factory.from_config(
        {
            "configs": {
                "main": {"redact": ["api_key"], "exporters": [kept]},
                "quiet": {"sampling": {"strategy": "never"}, "exporters": [sampled_out]},
            }
        },
        selector=lambda name, _type, _fields: "quiet" if name.startswith("noise") else None,
    )
    setup = Bridged(hub, kept)
    try:
        with setup.tracer.start_as_current_span("call", attributes={"api_key": "sk-secret"}):
            pass
        with setup.tracer.start_as_current_span("noise"):
            pass
        assert hub.flush(timeout=WAIT)
    finally:
        setup.provider.shutdown()
    (call,) = kept.spans()
    assert call.name == "call"
    assert "sk-secret" not in repr(call.attributes)
    assert sampled_out.spans() == []


def test_conversion_runs_on_the_worker(bridged: Bridged, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    original = obshub.otel.convert

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(obshub.otel, "convert", spy)
    with bridged.tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}):
        pass
    assert threads == []  # nothing converted on the application thread
    assert bridged.spans()["chat"].type is SpanType.MODEL_GENERATION
    assert threads
    assert threading.current_thread().name not in threads


def test_genai_attributes_become_generation_fields(bridged: Bridged) -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 100,
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 40,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.cache_creation.input_tokens": 5,
        "gen_ai.usage.reasoning.output_tokens": 16,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [TEXT_HI]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [TEXT_YO]}]),
        "gen_ai.system_instructions": '[{"type": "text", "content": "Be brief."}]',
        "gen_ai.conversation.id": "conv-1",
        "server.address": "api.openai.com",
    }
    with bridged.tracer.start_as_current_span("chat gpt-4o", attributes=attributes) as span:
        span.add_event("gen_ai.content.completion.chunk")
    chat = bridged.spans()["chat gpt-4o"]
    assert chat.type is SpanType.MODEL_GENERATION
    assert chat.model == "gpt-4o-2024-08-06"
    assert chat.provider == "openai"
    assert chat.parameters == {"temperature": 0.2, "max_tokens": 100}
    assert chat.usage is not None
    assert (chat.usage.input, chat.usage.output) == (120, 40)
    assert (chat.usage.cached_input, chat.usage.cache_write, chat.usage.reasoning) == (100, 5, 16)
    assert chat.input[0] == {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]}
    assert chat.input[1]["role"] == "user"
    assert chat.output == {"role": "assistant", "parts": [{"type": "text", "content": "Yo"}]}
    assert chat.session_id == "conv-1"
    assert chat.completion_start_time is not None
    assert chat.start_time <= chat.completion_start_time <= chat.end_time
    assert chat.attributes["server.address"] == "api.openai.com"
    assert "gen_ai.input.messages" not in chat.attributes
    assert chat.attributes["otel.scope.name"] == "test.instrumentation"


def test_openinference_attributes_become_fields(bridged: Bridged) -> None:
    attributes = {
        "openinference.span.kind": "RETRIEVER",
        "input.value": "what is obshub?",
        "retrieval.documents.0.document.id": "d1",
        "retrieval.documents.0.document.content": "a hub",
        "retrieval.documents.0.document.score": 0.9,
        "retrieval.documents.1.document.id": "d2",
        "session.id": "s-1",
        "user.id": "u-1",
        "tag.tags": ("beta", "docs"),
        "metadata": '{"team": "search"}',
    }
    with bridged.tracer.start_as_current_span("retrieve", attributes=attributes):
        pass
    span = bridged.spans()["retrieve"]
    assert span.type is SpanType.RETRIEVAL
    assert span.input == "what is obshub?"
    assert span.output == [{"id": "d1", "content": "a hub", "score": 0.9}, {"id": "d2"}]
    assert (span.session_id, span.user_id, span.tags) == ("s-1", "u-1", ("beta", "docs"))
    assert span.metadata["team"] == "search"


def test_openllmetry_attributes_become_fields(bridged: Bridged) -> None:
    with (
        bridged.tracer.start_as_current_span(
            "plan.workflow",
            attributes={
                "traceloop.span.kind": "workflow",
                "traceloop.entity.name": "plan",
                "traceloop.entity.input": '{"args": ["trip"], "kwargs": {}}',
                "traceloop.entity.output": '"done"',
            },
        ),
        bridged.tracer.start_as_current_span(
            "openai.chat",
            attributes={
                "llm.request.type": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "Plan a trip",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.tool_calls.0.name": "book",
                "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Rome"}',
                "llm.usage.total_tokens": 30,
                "gen_ai.usage.prompt_tokens": 20,
                "gen_ai.usage.completion_tokens": 10,
            },
        ),
    ):
        pass
    spans = bridged.spans()
    workflow, chat = spans["plan.workflow"], spans["openai.chat"]
    assert workflow.type is SpanType.WORKFLOW_RUN
    assert workflow.input == {"args": ["trip"], "kwargs": {}}
    assert workflow.output == "done"
    assert workflow.metadata["entity"] == "plan"
    assert chat.type is SpanType.MODEL_GENERATION
    assert chat.provider == "openai"
    assert chat.input == [{"role": "user", "content": "Plan a trip"}]
    assert chat.output == {
        "role": "assistant",
        "tool_calls": [{"name": "book", "arguments": {"city": "Rome"}}],
    }
    assert chat.usage is not None
    assert (chat.usage.input, chat.usage.output, chat.usage.total) == (20, 10, 30)


def test_tool_and_embedding_spans(bridged: Bridged) -> None:
    with bridged.tracer.start_as_current_span(
        "execute_tool get_weather",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.call.arguments": '{"city": "Paris"}',
            "gen_ai.tool.call.result": '{"temp": 21}',
        },
    ):
        pass
    with bridged.tracer.start_as_current_span(
        "embeddings",
        attributes={
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": 8,
        },
    ):
        pass
    spans = bridged.spans()
    tool = spans["execute_tool get_weather"]
    assert tool.type is SpanType.TOOL_CALL
    assert tool.input == {"city": "Paris"}
    assert tool.output == {"temp": 21}
    assert tool.metadata == {"tool_name": "get_weather", "tool_call_id": "call_1"}
    embedding = spans["embeddings"]
    assert embedding.type is SpanType.EMBEDDING
    assert embedding.model == "text-embedding-3-small"
    assert embedding.usage is not None
    assert embedding.usage.input == 8


def test_unknown_spans_are_generic_with_their_attributes(bridged: Bridged) -> None:
    with bridged.tracer.start_as_current_span(
        "GET /health", attributes={"http.method": "GET", "http.status_code": 200}
    ):
        pass
    span = bridged.spans()["GET /health"]
    assert span.type is SpanType.GENERIC
    assert span.attributes["http.method"] == "GET"
    assert span.attributes["http.status_code"] == 200


def test_an_error_status_and_exception_event_mark_the_span(bridged: Bridged) -> None:
    with (
        pytest.raises(ValueError, match="boom"),
        bridged.tracer.start_as_current_span("failing"),
    ):
        raise ValueError("boom")
    with bridged.tracer.start_as_current_span("status only") as span:
        span.set_status(Status(StatusCode.ERROR, "upstream 503"))
    spans = bridged.spans()
    failing = spans["failing"]
    assert failing.level.value == "error"
    assert failing.error is not None
    assert (failing.error.message, failing.error.type) == ("boom", "ValueError")
    assert "raise ValueError" in (failing.error.stack or "")
    assert spans["status only"].status_message == "upstream 503"


def test_update_through_current_span_adds_fields(bridged: Bridged) -> None:
    with bridged.tracer.start_as_current_span("step") as otel_span:
        current = obshub.current_span()
        assert current is not None
        assert current.start_time == otel_span.start_time
        current.update(metadata={"customer": "acme"}, user_id="u-9")
        current.end()  # ending is OpenTelemetry's business: nothing happens
    step = bridged.spans()["step"]
    assert step.metadata["customer"] == "acme"
    assert step.user_id == "u-9"


# -- no loops, no duplicates -------------------------------------------------------------------


class InstrumentedSender(RecordingExporter):
    """An exporter whose sending is itself instrumented (as an HTTP instrumentation would)."""

    tracer: Any = None

    def export(self, events: Sequence[SpanEvent]) -> None:
        with self.tracer.start_as_current_span("POST /v1/traces"):
            super().export(events)


def test_spans_caused_by_obshub_workers_are_not_bridged_back(hub_factory: HubFactory) -> None:
    exporter = InstrumentedSender()
    hub = hub_factory(exporters=[exporter])
    setup = Bridged(hub, exporter)
    exporter.tracer = setup.tracer
    try:
        with setup.tracer.start_as_current_span("app"):
            pass
        assert hub.flush(timeout=WAIT)
        assert hub.flush(timeout=WAIT)
    finally:
        setup.provider.shutdown()
    assert [s.name for s in exporter.spans()] == ["app"]


class _LangfuseDirect(SpanExporter):
    _endpoint = "https://cloud.langfuse.com/api/public/otel/v1/traces"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _LangfuseType(RecordingExporter):
    name = "langfuse"


def test_sending_to_langfuse_twice_is_told_once(hub_factory: HubFactory) -> None:
    exporter = _LangfuseType()
    hub = hub_factory(exporters=[exporter])
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_LangfuseDirect()))
    provider.add_span_processor(obshub.otel.SpanProcessor(hub))
    tracer = provider.get_tracer("t")
    try:
        with structlog.testing.capture_logs() as logs:
            for _ in range(3):
                with tracer.start_as_current_span("call"):
                    pass
    finally:
        provider.shutdown()
    told = [entry for entry in logs if entry["event"] == "otel_spans_sent_twice"]
    assert len(told) == 1
    assert "remove that processor" in told[0]["hint"]


def test_no_warning_without_a_direct_langfuse_exporter(bridged: Bridged) -> None:
    with structlog.testing.capture_logs() as logs, bridged.tracer.start_as_current_span("x"):
        pass
    assert not [e for e in logs if e["event"] == "otel_spans_sent_twice"]


# -- setup ---------------------------------------------------------------------------------------


def test_setup_adds_one_processor_to_an_sdk_provider(
    hub_factory: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, recorded = hub_factory.memory()
    provider = TracerProvider()
    monkeypatch.setattr(otel_trace, "get_tracer_provider", lambda: provider)
    try:
        assert obshub.otel.setup(hub) is provider
        assert obshub.otel.setup(hub) is provider
        processors = provider._active_span_processor._span_processors
        assert sum(isinstance(p, obshub.otel.SpanProcessor) for p in processors) == 1
        with provider.get_tracer("t").start_as_current_span("via setup"):
            pass
        assert hub.flush(timeout=WAIT)
        assert [s.name for s in recorded.spans()] == ["via setup"]
    finally:
        provider.shutdown()


def test_setup_installs_a_provider_when_the_app_has_none() -> None:
    # The global provider can be set once per process: checked in a fresh one.
    script = """
import obshub, obshub.otel
from opentelemetry import trace
from obshub import MemoryExporter
mem = MemoryExporter()
obshub.configure({"configs": {"c": {"exporters": [mem]}}})
provider = obshub.otel.setup()
assert trace.get_tracer_provider() is provider
with trace.get_tracer("t").start_as_current_span("global"):
    pass
assert obshub.flush(timeout=5)
print([s.name for s in mem.spans()])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['global']"


# -- W3C trace context --------------------------------------------------------------------------


def test_inject_writes_the_current_traceparent(bridged: Bridged) -> None:
    assert obshub.inject({}) == {}
    with bridged.hub.span("outgoing") as span:
        headers = obshub.inject({"accept": "application/json"})
        assert headers["traceparent"] == f"00-{span.trace_id}-{span.span_id}-01"
        with bridged.tracer.start_as_current_span("client call") as otel_span:
            inner = obshub.inject({})
    context = otel_span.get_span_context()
    assert inner["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-01"


def test_a_span_continues_the_callers_trace(hub_factory: HubFactory) -> None:
    hub, recorded = hub_factory.memory()
    with hub.span("caller") as caller:
        headers = obshub.inject({})
    with hub.span("handler", parent=headers) as handler, hub.span("child"):
        pass
    with hub.span("by string", parent=headers["traceparent"]) as by_string:
        pass
    with hub.span("bad", parent={"traceparent": "00-xyz"}) as bad:
        pass
    assert hub.flush(timeout=WAIT)
    assert handler.trace_id == caller.trace_id == by_string.trace_id
    assert recorded.span("handler").parent_span_id == caller.span_id
    assert recorded.span("child").parent_span_id == handler.span_id
    assert bad.trace_id != caller.trace_id
    assert recorded.span("bad").parent_span_id is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
        ),
        (
            {"TraceParent": "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-00"},
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
        ),
        (
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future",
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
        ),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", None),
        ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None),
        ("00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01", None),
        ({}, None),
        (None, None),
        (42, None),
    ],
)
def test_parse_traceparent(value: Any, expected: Any) -> None:
    assert parse_traceparent(value) == expected


# -- threads -------------------------------------------------------------------------------------


@pytest.fixture
def threads_bound() -> Iterator[None]:
    obshub.bind_threads()
    yield
    obshub.bind_threads(False)


@pytest.mark.usefixtures("threads_bound")
def test_bind_threads_carries_the_span_into_threads_and_executors(bridged: Bridged) -> None:
    def work(name: str) -> None:
        with bridged.hub.span(name), bridged.tracer.start_as_current_span(f"{name} call"):
            pass

    with bridged.hub.span("agent") as agent:
        thread = threading.Thread(target=work, args=("in thread",))
        thread.start()
        thread.join()
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(work, "in pool").result()
    spans = bridged.spans()
    for name in ("in thread", "in pool"):
        assert spans[name].parent_span_id == agent.span_id
        assert spans[f"{name} call"].parent_span_id == spans[name].span_id
        assert spans[f"{name} call"].trace_id == agent.trace_id


def test_without_bind_threads_a_thread_starts_a_trace_of_its_own(bridged: Bridged) -> None:
    assert not obshub._threads.threads_bound()
    with bridged.hub.span("agent") as agent:
        thread = threading.Thread(target=lambda: bridged.hub.span("alone").end())
        thread.start()
        thread.join()
    spans = bridged.spans()
    assert spans["alone"].parent_span_id is None
    assert spans["alone"].trace_id != agent.trace_id


def test_a_span_entered_before_shutdown_leaves_the_otel_context_clean(
    hub_factory: HubFactory,
) -> None:
    hub, recorded = hub_factory.memory()
    setup = Bridged(hub, recorded)
    with hub.span("open while shut down"):
        assert otel_trace.get_current_span().get_span_context().is_valid
        setup.provider.shutdown()
    assert not otel_trace.get_current_span().get_span_context().is_valid


def test_two_processors_on_one_provider_each_bridge_every_span(hub_factory: HubFactory) -> None:
    (hub_a, recorded_a), (hub_b, recorded_b) = hub_factory.memory(), hub_factory.memory()
    provider = TracerProvider()
    provider.add_span_processor(obshub.otel.SpanProcessor(hub_a))
    provider.add_span_processor(obshub.otel.SpanProcessor(hub_b))
    try:
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
            pass
        assert hub_a.flush(timeout=WAIT)
        assert hub_b.flush(timeout=WAIT)
    finally:
        provider.shutdown()
    for recorded in (recorded_a, recorded_b):
        spans = {s.name: s for s in recorded.spans()}
        assert spans["inner"].parent_span_id == spans["outer"].span_id
