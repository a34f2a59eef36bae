"""What Langfuse stores is what was recorded (issue 10, points 1-6, 10 and 11).

The stand-in derives observations and traces the way Langfuse's own ingestion
code does (``obshub_langfuse._ingestion`` names the functions it mirrors), so
these tests decode the plugin's real requests and compare, field by field,
what Langfuse would store with what the application recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter, __version__
from obshub_langfuse._ingestion import Observation, js_stringify
from obshub_langfuse.mapping import cost_details, observation_type, usage_details
from obshub_langfuse.testing import Fault, LangfuseStandIn
from structlog.testing import capture_logs

import obshub
from obshub import MemoryExporter, Span

MakeExporter = Callable[..., LangfuseExporter]

#: Every attribute the plugin may send: what Langfuse's OtelIngestionProcessor reads.
LANGFUSE_READS = frozenset(
    {
        "langfuse.observation.type",
        "langfuse.observation.level",
        "langfuse.observation.status_message",
        "langfuse.observation.model.name",
        "langfuse.observation.model.parameters",
        "langfuse.observation.usage_details",
        "langfuse.observation.cost_details",
        "langfuse.observation.completion_start_time",
        "langfuse.observation.prompt.name",
        "langfuse.observation.prompt.version",
        "langfuse.trace.name",
        "langfuse.trace.tags",
        "langfuse.trace.public",
        "langfuse.environment",
        "langfuse.release",
        "langfuse.version",
        "session.id",
        "user.id",
    }
)

Pair = tuple[obshub.Hub, LangfuseExporter, MemoryExporter]


@pytest.fixture
def hubs(make_exporter: MakeExporter) -> Iterator[Callable[..., Pair]]:
    """A hub sending to the stand-in and recording the same snapshots in memory."""
    made: list[obshub.Hub] = []

    def make(**kwargs: Any) -> Pair:
        exporter = make_exporter(**kwargs)
        memory = MemoryExporter()
        hub = obshub.Hub(exporters=[exporter, memory], service_name="support-bot")
        made.append(hub)
        return hub, exporter, memory

    yield make
    for hub in made:
        hub.shutdown(timeout=2)


def record_support_trace(hub: obshub.Hub) -> obshub.LiveSpan:
    """A realistic agent run: a generation, a sub-agent, a failing tool, an event."""
    with hub.span(
        "support-agent",
        type="agent_run",
        input="Comment réinitialiser mon mot de passe ? ☕",
        session_id="s-42",
        user_id="u-7",
        tags=["beta", "eu"],
        metadata={"tenant": "acme", "région": "eu-west ☁", "attempt": 2, "flags": {"beta": True}},
        attributes={"langfuse.trace.public": True},
    ) as agent:
        with hub.span(
            "chat",
            type="model_generation",
            model="gpt-4o",
            provider="openai",
            parameters={"temperature": 0.2, "max_tokens": 256},
            input=[{"role": "user", "content": "reset password"}],
            metadata={"intent": "reset"},
        ) as gen:
            gen.update(
                output="Use the reset link.",
                usage={"input": 812, "output": 95, "cached_input": 512},
                cost={"input": 0.002, "output": 0.001},
            )
        with hub.span(
            "billing-agent",
            type="agent_run",
            model="gpt-4o-mini",
            usage={"input": 50, "output": 10},
            cost={"total": 0.0004},
            input="check the invoice",
        ):
            try:
                with hub.span("charge_card", type="tool_call", input={"amount": 12.5}):
                    raise ValueError("card declined")
            except ValueError:
                pass
        agent.event("cache-hit", metadata={"key": "faq-12"})
        agent.update(output="Use the reset link.")
    return agent


def expected_stored_text(value: Any) -> str | None:
    """How Langfuse stores an input or output (IngestionService ``stringify``)."""
    if value is None:
        return None
    return value if isinstance(value, str) else js_stringify(value)


def millis(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=timezone.utc)


def expected_metadata(span: Span) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if span.provider:
        extra["provider"] = span.provider
    if span.error is not None:
        extra["error.type"] = span.error.type
        extra["error.stack"] = span.error.stack
    return {**extra, **span.metadata}


def assert_observation_matches(recorded: Span, stored: Observation) -> None:
    """The stored observation holds exactly what was recorded."""
    assert stored.type == observation_type(recorded).upper()
    assert stored.name == recorded.name
    assert stored.parent_observation_id == recorded.parent_span_id
    assert stored.start_time == millis(recorded.start_time)
    assert recorded.end_time is not None
    # Langfuse's legacy ingestion schema has no end time for an event (CreateEventEvent).
    assert stored.end_time == (None if recorded.is_event else millis(recorded.end_time))
    if recorded.error is not None:
        assert stored.level == "ERROR"
        assert stored.status_message == f"{recorded.error.type}: {recorded.error.message}"
    else:
        assert stored.level == recorded.level.value.upper()
        assert stored.status_message == recorded.status_message
    assert stored.stored_input == expected_stored_text(recorded.input)
    assert stored.stored_output == expected_stored_text(recorded.output)
    metadata = expected_metadata(recorded)
    assert stored.metadata == metadata
    for key, value in metadata.items():
        assert stored.stored_metadata[key] == expected_stored_text(value)
    assert stored.model == recorded.model
    assert stored.model_parameters == (dict(recorded.parameters) or None)
    assert stored.usage_details == (usage_details(recorded.usage) if recorded.usage else None)
    assert stored.cost_details == (cost_details(recorded.cost) if recorded.cost else None)
    assert stored.session_id == recorded.session_id
    assert stored.user_id == recorded.user_id
    assert stored.tags == recorded.tags
    assert stored.trace_name == recorded.trace_name
    assert stored.public is True
    assert (stored.environment, stored.release, stored.version) == ("staging", "9f1c2ab", "1.4.2")
    # Nothing but what Langfuse reads (and the application's own attributes) is copied
    # into metadata.attributes.
    assert set(stored.copied_attributes) <= LANGFUSE_READS | set(recorded.attributes)
    # Langfuse's direct path merges the trace metadata into each observation's metadata.
    for key, value in recorded.trace_metadata.items():
        own = metadata.get(key, value)
        sent = own if isinstance(own, (str, int)) else js_stringify(own)
        assert stored.direct_metadata[key] == sent


# -- the whole picture --------------------------------------------------------------------


@pytest.mark.parametrize("realtime", [False, True], ids=["batch", "realtime"])
def test_langfuse_stores_exactly_what_was_recorded(
    hubs: Callable[..., Pair], server: LangfuseStandIn, realtime: bool
) -> None:
    hub, _, memory = hubs(realtime=realtime)
    agent = record_support_trace(hub)
    assert hub.flush(5)
    recorded = {s.span_id: s for s in memory.spans()}
    assert len(recorded) == 5
    if not realtime:
        (request,) = server.requests("traces")
        assert request.spans == 5
    stored = {o.id: o for o in server.observations()}
    assert set(stored) == set(recorded)
    for span_id, span in recorded.items():
        assert_observation_matches(span, stored[span_id])

    root = recorded[agent.span_id]
    trace = server.trace(agent.trace_id)
    assert trace.name == "support-agent"
    assert trace.stored_input == root.input
    assert trace.stored_output == root.output
    # Langfuse keeps trace metadata as strings: a number is its text, an object its JSON.
    for key, value in root.metadata.items():
        assert trace.stored_metadata[key] == expected_stored_text(value)
    assert trace.stored_metadata["région"] == "eu-west ☁"
    assert trace.stored_metadata["flags"] == '{"beta":true}'
    assert (trace.session_id, trace.user_id) == ("s-42", "u-7")
    assert trace.tags == ("beta", "eu")
    assert trace.public is True
    assert (trace.environment, trace.release, trace.version) == ("staging", "9f1c2ab", "1.4.2")
    if realtime:
        # Langfuse fixes a trace's timestamp with the first of its spans it processes
        # (immutableEntityKeys): in realtime mode a child may arrive before the root.
        assert trace.timestamp is not None
        assert trace.timestamp >= millis(root.start_time)
    else:
        assert trace.timestamp == millis(root.start_time)


# -- 1. strings raw ------------------------------------------------------------------------


def test_plain_strings_are_stored_as_the_string_and_structured_values_as_json(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    hub, _, _ = hubs()
    with (
        hub.span("chat", input="chat", output="réponse ☕", metadata={"intent": "refund"}) as s,
        hub.span("lookup", input={"q": "refund"}, output=["a", 1], metadata={"n": 3}),
    ):
        pass
    assert hub.flush(5)
    chat = server.observation("chat")
    assert (chat.stored_input, chat.stored_output) == ("chat", "réponse ☕")
    assert chat.stored_metadata["intent"] == "refund"
    lookup = server.observation("lookup")
    assert (lookup.stored_input, lookup.stored_output) == ('{"q":"refund"}', '["a",1]')
    assert (lookup.input, lookup.output) == ({"q": "refund"}, ["a", 1])
    assert lookup.stored_metadata["n"] == "3"
    trace = server.trace(s.trace_id)
    assert (trace.stored_input, trace.stored_output) == ("chat", "réponse ☕")
    assert trace.stored_metadata["intent"] == "refund"


# -- 2. agent spans keep model, usage and cost ------------------------------------------


def test_an_agent_span_keeps_its_model_usage_and_cost(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    hub, _, _ = hubs()
    with hub.span(
        "billing-agent",
        type="agent_run",
        model="gpt-4o-mini",
        usage={"input": 50, "output": 10},
        cost={"total": 0.0004},
    ):
        pass
    assert hub.flush(5)
    agent = server.observation("billing-agent")
    assert agent.type == "AGENT"
    assert "gen_ai.operation.name" not in agent.attributes
    assert agent.model == "gpt-4o-mini"
    assert agent.usage_details == {"input": 50, "output": 10, "total": 60}
    assert agent.cost_details == {"total": 0.0004}


# -- 3. errors ------------------------------------------------------------------------------


def test_an_error_keeps_its_type_in_the_status_message_and_type_and_stack_in_metadata(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    hub, _, _ = hubs()
    with pytest.raises(ValueError, match="card declined"), hub.span("pay", type="tool_call"):
        raise ValueError("card declined")
    assert hub.flush(5)
    pay = server.observation("pay")
    assert pay.level == "ERROR"
    assert pay.status_message == "ValueError: card declined"
    assert pay.stored_metadata["error.type"] == "ValueError"
    stack = pay.stored_metadata["error.stack"]
    assert stack.startswith("Traceback")
    assert 'raise ValueError("card declined")' in stack
    # Langfuse drops the OTel exception event, so none is sent.
    assert pay.events == ()


# -- 4. no clutter ------------------------------------------------------------------------


def test_only_what_langfuse_reads_is_copied_into_metadata_attributes(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    hub, _, _ = hubs()
    with (
        hub.span("agent", type="agent_run", session_id="s-1", user_id="u-1") as agent,
        hub.span(
            "chat",
            type="model_generation",
            model="gpt-4o",
            provider="openai",
            parameters={"temperature": 0.5, "max_tokens": 64},
            usage={"input": 10, "output": 2},
            cost={"total": 0.01},
        ),
    ):
        pass
    assert hub.flush(5)
    chat = server.observation("chat")
    assert set(chat.copied_attributes) <= LANGFUSE_READS
    assert not [key for key in chat.attributes if key.startswith(("gen_ai.", "obshub."))]
    # Each value once: the parameters only as model parameters, usage and cost once.
    assert chat.model_parameters == {"temperature": 0.5, "max_tokens": 64}
    assert sum("temperature" in value for value in chat.copied_attributes.values()) == 1
    assert sum('"input":10' in value for value in chat.copied_attributes.values()) == 1
    # What has no Langfuse field is readable metadata.
    assert chat.metadata == {"provider": "openai"}
    trace = server.trace(agent.trace_id)
    assert set(json.loads(trace.stored_metadata["attributes"])) <= LANGFUSE_READS


# -- 5. trace metadata on every span -------------------------------------------------------


def test_trace_metadata_is_on_every_span_for_observation_filters(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    hub, _, _ = hubs(realtime=True)
    with hub.span("agent", metadata={"tenant": "acme", "step": "root"}) as agent:
        with hub.span("retrieve", metadata={"step": "retrieve"}):
            pass
        with hub.span("answer"):
            pass
        assert hub.flush(5)  # the children are delivered
        agent.update(metadata={"late": "set after the children ended"})
    assert hub.flush(5)
    for observation in server.observations():
        assert observation.direct_metadata["tenant"] == "acme"
        assert observation.trace_metadata["tenant"] == "acme"
    # A span's own value is not shadowed by the trace's in Langfuse's direct path.
    assert server.observation("retrieve").direct_metadata["step"] == "retrieve"
    assert server.observation("answer").direct_metadata["step"] == "root"
    # The documented limit: set on the root after a child was delivered, not on that child.
    assert "late" not in server.observation("answer").trace_metadata
    trace = server.trace(agent.trace_id)
    assert trace.metadata == {
        "tenant": "acme",
        "step": "root",
        "late": "set after the children ended",
    }


# -- 6. the legacy path: children cannot overwrite the trace --------------------------------


def test_children_delivered_first_cannot_overwrite_what_the_root_sets_on_the_trace(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    hub, _, _ = hubs(realtime=True)
    with hub.span(
        "support-agent",
        input="question",
        metadata={"tenant": "acme"},
        session_id="s-1",
        attributes={"langfuse.trace.public": True},
    ) as agent:
        for name in ("first", "second"):
            with hub.span(name, input=f"{name} input", output=f"{name} output"):
                pass
            assert hub.flush(5)  # delivered before the root ends
        agent.update(output="answer")
    assert hub.flush(5)
    requests = server.requests("traces")
    assert [r.spans for r in requests] == [1, 1, 1]
    for child in (server.observation("first"), server.observation("second")):
        # Children send trace-level values that cannot differ from the root's, and no
        # trace input or output.
        assert "langfuse.trace.input" not in child.attributes
        assert "langfuse.trace.output" not in child.attributes
        assert child.attributes["langfuse.trace.name"] == "support-agent"
        assert child.public is True
    trace = server.trace(agent.trace_id)
    assert trace.name == "support-agent"
    assert (trace.stored_input, trace.stored_output) == ("question", "answer")
    assert trace.metadata == {"tenant": "acme"}
    assert trace.public is True
    assert trace.session_id == "s-1"
    # The one thing a child does fix: Langfuse keeps the timestamp of the first trace
    # record it wrote (immutableEntityKeys), here the first child's start. Sending in
    # batch mode (root and children in one request) keeps the root's.
    assert trace.timestamp == server.observation("first").start_time


def test_a_public_flag_reaches_the_trace_only_when_the_root_asks(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    hub, _, _ = hubs()
    with hub.span("private"), hub.span("child"):
        pass
    with hub.span("shared", attributes={"langfuse.trace.public": True}), hub.span("child2"):
        pass
    assert hub.flush(5)
    public = {t.name: t.public for t in server.traces()}
    assert public == {"private": False, "shared": True}
    assert server.observation("child2").public is True
    assert server.observation("child").public is None


# -- 10. honest identity --------------------------------------------------------------------


def test_requests_name_obshub_as_the_sending_sdk(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    hub, exporter, _ = hubs()
    with hub.span("s"):
        pass
    hub.score(name="helpfulness", value=1.0, trace_id="0" * 32)
    assert hub.flush(5)
    for path in ("traces", "scores"):
        (request,) = server.requests(path)
        headers = request.headers
        assert headers["x-langfuse-sdk-name"] == "obshub-langfuse"
        assert headers["x-langfuse-sdk-version"] == __version__
        assert headers["x-langfuse-public-key"] == exporter.public_key
        assert f"obshub-langfuse/{__version__}" in headers["user-agent"]


# -- 11. trace URL ----------------------------------------------------------------------------


def test_trace_url_is_known_after_the_first_send_and_logged_in_realtime_mode(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    hub, exporter, _ = hubs(realtime=True, log_level="debug")
    assert exporter.trace_url("0" * 32) is None
    with capture_logs() as logs:
        with hub.span("agent") as agent, hub.span("child"):
            pass
        assert hub.flush(5)
    url = f"{server.url}/project/stand-in-project/traces/{agent.trace_id}"
    assert exporter.trace_url(agent.trace_id) == url
    logged = [entry for entry in logs if entry["event"] == "trace_url"]
    assert [entry["url"] for entry in logged] == [url]
    assert logged[0]["log_level"] == "debug"
    assert len(server.requests("projects")) == 1


def test_trace_url_stays_none_when_langfuse_does_not_name_the_project(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    server.inject("projects", Fault.error(500))
    hub, exporter, _ = hubs()
    with hub.span("agent") as agent:
        pass
    assert hub.flush(5)
    assert server.observation("agent").id == agent.span_id
    assert exporter.trace_url(agent.trace_id) is None
    with hub.span("again"):
        pass
    assert hub.flush(5)
    # Not asked again at once: once per PROJECT_RETRY_INTERVAL.
    assert len(server.requests("projects")) == 1


# -- spans typed "span" that carry model data ----------------------------------------------


def test_a_generic_span_or_model_step_with_model_data_keeps_it(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    # Langfuse's legacy path parses span-create events with CreateSpanBody, which has no
    # model, usage or cost fields: such spans go as generations, which keep them all.
    hub, _, memory = hubs()
    with hub.span("llm-call", model="claude-3-5-sonnet", usage={"input": 20, "output": 5}):
        with hub.span(
            "round-1",
            type="model_step",
            model="gpt-4o",
            parameters={"temperature": 0.0, "top_p": None, "stop": ["\n"]},
            usage={"input": 7, "output": 3},
            cost={"total": 0.0001},
        ):
            pass
        with hub.span("plain-step", type="model_step"):
            pass
    assert hub.flush(5)
    recorded = {s.name: s for s in memory.spans()}
    for name in ("llm-call", "round-1"):
        stored = server.observation(name)
        assert stored.type == "GENERATION"
        assert stored.model == recorded[name].model
        assert stored.usage_details == usage_details(recorded[name].usage)  # type: ignore[arg-type]
    step = server.observation("round-1")
    assert step.cost_details == {"total": 0.0001}
    # A parameter set to None is not sent (Langfuse would show "null"); a list is kept as
    # Langfuse keeps it: JSON text (OtelIngestionProcessor.sanitizeModelParams).
    assert step.model_parameters == {"temperature": 0, "stop": '["\\n"]'}
    assert server.observation("plain-step").type == "SPAN"


def test_a_large_integer_in_metadata_is_stored_digit_for_digit(
    hubs: Callable[..., Pair], server: LangfuseStandIn
) -> None:
    # Langfuse reads an int64 attribute into a JavaScript number: 2**53 + 1 would be
    # stored as 2**53. Sent as its digits, it is stored exactly.
    hub, _, _ = hubs()
    with hub.span("order", metadata={"order_id": 2**53 + 1, "count": 3}):
        pass
    assert hub.flush(5)
    stored = server.observation("order")
    assert stored.stored_metadata["order_id"] == str(2**53 + 1)
    assert stored.stored_metadata["count"] == "3"
