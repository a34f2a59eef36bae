"""What a Langfuse user sees: observations and traces derived by the stand-in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from obshub_langfuse.testing import LangfuseStandIn

import obshub
from obshub import SpanType

MakeHub = Callable[..., obshub.Hub]

EXPECTED_TYPES = {
    SpanType.WORKFLOW_RUN: "CHAIN",
    SpanType.WORKFLOW_STEP: "CHAIN",
    SpanType.MODEL_GENERATION: "GENERATION",
    SpanType.MODEL_STEP: "SPAN",
    SpanType.TOOL_CALL: "TOOL",
    SpanType.MCP_TOOL_CALL: "TOOL",
    SpanType.EMBEDDING: "EMBEDDING",
    SpanType.RETRIEVAL: "RETRIEVER",
    SpanType.GUARDRAIL: "GUARDRAIL",
    SpanType.EVALUATOR: "EVALUATOR",
    SpanType.GENERIC: "SPAN",
}


def record_agent_trace(hub: obshub.Hub) -> obshub.LiveSpan:
    """An agent run with one child of every other span type and one event."""
    with hub.span(
        "support-agent",
        type="agent_run",
        input={"question": "How do I reset my password?"},
        session_id="s-42",
        user_id="u-7",
        tags=["beta", "eu"],
        metadata={"tenant": "acme"},
    ) as agent:
        for span_type in EXPECTED_TYPES:
            with hub.span(f"{span_type.value}-child", type=span_type):
                pass
        agent.event("cache-hit", metadata={"key": "faq-12"})
        agent.update(output={"answer": "Use the reset link."})
    return agent


def test_every_span_type_becomes_its_langfuse_observation_type(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    record_agent_trace(hub)
    assert hub.flush(5)
    types = {o.name: o.type for o in server.observations()}
    assert types.pop("support-agent") == "AGENT"
    assert types.pop("cache-hit") == "EVENT"
    assert types == {f"{t.value}-child": expected for t, expected in EXPECTED_TYPES.items()}


def test_the_trace_tree_and_trace_fields_arrive_intact(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    agent = record_agent_trace(hub)
    assert hub.flush(5)
    (trace,) = server.traces()
    assert trace.id == agent.trace_id
    assert trace.name == "support-agent"
    assert trace.input == {"question": "How do I reset my password?"}
    assert trace.output == {"answer": "Use the reset link."}
    assert trace.metadata == {"tenant": "acme"}
    root = trace.root
    assert root is not None
    assert root.id == agent.span_id
    children = [o for o in trace.observations if o is not root]
    assert len(children) == len(EXPECTED_TYPES) + 1
    assert {o.parent_observation_id for o in children} == {agent.span_id}


def test_session_user_tags_environment_release_and_version_are_on_every_observation(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    record_agent_trace(hub)
    assert hub.flush(5)
    observations = server.observations()
    assert len(observations) == len(EXPECTED_TYPES) + 2
    for observation in observations:
        assert observation.trace_name == "support-agent"
        assert observation.session_id == "s-42"
        assert observation.user_id == "u-7"
        assert observation.tags == ("beta", "eu")
        assert observation.environment == "staging"
        assert observation.release == "9f1c2ab"
        assert observation.version == "1.4.2"
    assert server.observation("cache-hit").metadata == {"key": "faq-12"}


def test_a_generation_shows_model_parameters_usage_cost_timing_and_prompt(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    first_token = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    with hub.span(
        "gpt-4o",
        type="model_generation",
        model="gpt-4o",
        provider="openai",
        parameters={"temperature": 0.2, "max_tokens": 256},
        input=[{"role": "user", "content": "hi"}],
        prompt={"name": "support-answer", "version": 3},
    ) as gen:
        gen.update(
            output="hello",
            usage={"input": 812, "output": 95, "cached_input": 512, "reasoning": 40},
            cost={"input": 0.002, "output": 0.001},
            completion_start_time=first_token,
        )
    assert hub.flush(5)
    obs = server.observation("gpt-4o")
    assert obs.type == "GENERATION"
    assert obs.model == "gpt-4o"
    assert obs.model_parameters == {"temperature": 0.2, "max_tokens": 256}
    assert obs.input == [{"role": "user", "content": "hi"}]
    assert obs.output == "hello"
    assert obs.usage_details == {
        "input": 300,
        "input_cached_tokens": 512,
        "output": 55,
        "output_reasoning_tokens": 40,
        "total": 907,
    }
    assert obs.cost_details == {"input": 0.002, "output": 0.001, "total": 0.003}
    assert obs.completion_start_time == first_token
    assert obs.prompt_name == "support-answer"
    assert obs.prompt_version == 3
    assert obs.end_time is not None
    assert obs.start_time <= obs.end_time


def test_spans_carry_the_resource_and_scope_and_no_genai_attributes(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    with hub.span("agent", type="agent_run", session_id="s-1"):
        with hub.span("chat", type="model_generation", model="gpt-4o", provider="openai") as gen:
            gen.update(usage={"input": 10, "output": 2})
        with hub.span("search_docs", type="tool_call"):
            pass
    assert hub.flush(5)
    for observation in server.observations():
        assert not [k for k in observation.attributes if k.startswith(("gen_ai.", "obshub."))]
    agent = server.observation("agent")
    assert agent.resource_attributes["service.name"] == "support-bot"
    assert agent.resource_attributes["service.version"] == "1.4.2"
    assert agent.scope_name == "obshub"


def test_an_exception_shows_as_an_error_with_its_message_and_stack(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    with pytest.raises(ValueError, match="tool exploded"), hub.span("fragile", type="tool_call"):
        raise ValueError("tool exploded")
    assert hub.flush(5)
    obs = server.observation("fragile")
    assert obs.level == "ERROR"
    assert obs.status_message == "ValueError: tool exploded"
    assert obs.metadata["error.type"] == "ValueError"
    assert "raise ValueError" in obs.metadata["error.stack"]


@pytest.mark.parametrize(("level", "expected"), [("debug", "DEBUG"), ("warning", "WARNING")])
def test_levels_and_status_messages_set_by_the_application_are_kept(
    make_hub: MakeHub, server: LangfuseStandIn, level: str, expected: str
) -> None:
    hub = make_hub()
    with hub.span("step", level=level, status_message="took the slow path"):
        pass
    assert hub.flush(5)
    obs = server.observation("step")
    assert obs.level == expected
    assert obs.status_message == "took the slow path"
