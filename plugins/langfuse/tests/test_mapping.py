"""The span → Langfuse attribute mapping, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from obshub_langfuse.mapping import (
    OBSERVATION_TYPES,
    TraceOptions,
    cost_details,
    langfuse_attributes,
    normalise_environment,
    observation_type,
    usage_details,
)

from obshub.spans import Cost, Level, Prompt, Span, SpanError, SpanType, Usage

TRACE = "0123456789abcdef0123456789abcdef"


def make_span(**fields: object) -> Span:
    values: dict[str, object] = {"trace_id": TRACE, "span_id": "0123456789abcdef", "name": "s"}
    values.update(fields)
    return Span(**values)  # type: ignore[arg-type]


def test_every_span_type_has_an_observation_type() -> None:
    assert set(OBSERVATION_TYPES) == set(SpanType)


@pytest.mark.parametrize(
    ("span_type", "expected"),
    [
        (SpanType.AGENT_RUN, "agent"),
        (SpanType.WORKFLOW_RUN, "chain"),
        (SpanType.WORKFLOW_STEP, "chain"),
        (SpanType.MODEL_GENERATION, "generation"),
        (SpanType.MODEL_STEP, "span"),
        (SpanType.TOOL_CALL, "tool"),
        (SpanType.MCP_TOOL_CALL, "tool"),
        (SpanType.EMBEDDING, "embedding"),
        (SpanType.RETRIEVAL, "retriever"),
        (SpanType.GUARDRAIL, "guardrail"),
        (SpanType.EVALUATOR, "evaluator"),
        (SpanType.GENERIC, "span"),
    ],
)
def test_span_types_map_to_langfuse_observation_types(span_type: SpanType, expected: str) -> None:
    assert observation_type(make_span(type=span_type)) == expected


def test_an_event_span_is_an_event_whatever_its_type() -> None:
    assert observation_type(make_span(type=SpanType.TOOL_CALL, is_event=True)) == "event"


def test_usage_splits_cached_input_and_reasoning_out_of_provider_counts() -> None:
    usage = Usage(input=1000, output=500, cached_input=300, cache_write=100, reasoning=200)
    assert usage_details(usage) == {
        "input": 600,
        "input_cached_tokens": 300,
        "input_cache_creation": 100,
        "output": 300,
        "output_reasoning_tokens": 200,
        "total": 1500,
    }


def test_usage_total_is_kept_as_the_provider_reported_it() -> None:
    assert usage_details(Usage(input=10, output=5, total=17))["total"] == 17


def test_usage_never_goes_negative() -> None:
    details = usage_details(Usage(input=10, output=3, cached_input=50, reasoning=9))
    assert details["input"] == 0
    assert details["output"] == 0


def test_usage_keeps_provider_specific_counts() -> None:
    details = usage_details(Usage.coerce({"input": 10, "output": 2, "audio_tokens": 7}))
    assert details["audio_tokens"] == 7
    assert details["input"] == 10


def test_usage_leaves_out_counts_that_were_not_reported() -> None:
    assert usage_details(Usage(output=4)) == {"output": 4, "total": 4}


def test_cost_total_is_the_sum_when_not_given() -> None:
    assert cost_details(Cost(input=0.25, output=0.5)) == {
        "input": 0.25,
        "output": 0.5,
        "total": 0.75,
    }
    assert cost_details(Cost(total=2.0)) == {"total": 2.0}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("production", "production"),
        ("Production EU", "production-eu"),
        ("staging_2", "staging_2"),
        ("  QA!!  ", "qa"),
        ("x" * 50, "x" * 40),
        ("!!!", "default"),
    ],
)
def test_environment_is_normalised_to_what_langfuse_keeps(given: str, expected: str) -> None:
    assert normalise_environment(given) == expected


def test_trace_level_values_are_on_every_span_and_trace_io_only_on_the_root() -> None:
    options = TraceOptions(environment="prod", release="abc", version="1.0")
    root = make_span(
        name="agent",
        tags=("beta",),
        input="q",
        output="a",
        metadata={"k": 1},
        session_id="s-1",
        user_id="u-1",
    )
    child = make_span(
        span_id="1111111111111111",
        parent_span_id="0123456789abcdef",
        name="tool",
        trace_name="agent",
        tags=("beta",),
        input={"x": 1},
        trace_metadata={"k": 1},
        session_id="s-1",
        user_id="u-1",
    )
    root_attrs = langfuse_attributes(root, options)
    child_attrs = langfuse_attributes(child, options)
    for attributes in (root_attrs, child_attrs):
        assert attributes["langfuse.trace.name"] == "agent"
        assert attributes["langfuse.trace.tags"] == ["beta"]
        assert attributes["langfuse.trace.metadata.k"] == 1
        assert attributes["session.id"] == "s-1"
        assert attributes["user.id"] == "u-1"
        assert attributes["langfuse.environment"] == "prod"
        assert attributes["langfuse.release"] == "abc"
        assert attributes["langfuse.version"] == "1.0"
    assert root_attrs["langfuse.trace.input"] == "q"
    assert root_attrs["langfuse.trace.output"] == "a"
    assert "langfuse.trace.input" not in child_attrs
    assert "langfuse.trace.output" not in child_attrs
    assert child_attrs["langfuse.observation.input"] == '{"x":1}'


def test_strings_are_sent_raw_and_structured_values_as_json() -> None:
    span = make_span(
        input="chat ☕",
        output=["a", 1],
        parameters={"temperature": 0.2},
        metadata={"key": "faq-12", "n": 3, "ok": True, "nested": {"a": [1, 2]}, "list": ["x"]},
        usage=Usage(input=3, output=4),
        cost=Cost(input=0.1),
    )
    attributes = langfuse_attributes(span, TraceOptions())
    assert attributes["langfuse.observation.input"] == "chat ☕"
    assert attributes["langfuse.observation.output"] == '["a",1]'
    assert attributes["langfuse.trace.input"] == "chat ☕"
    assert json.loads(str(attributes["langfuse.observation.model.parameters"])) == {
        "temperature": 0.2
    }
    assert attributes["langfuse.observation.metadata.key"] == "faq-12"
    assert attributes["langfuse.observation.metadata.n"] == 3
    assert attributes["langfuse.observation.metadata.ok"] is True
    assert attributes["langfuse.observation.metadata.nested"] == '{"a":[1,2]}'
    assert attributes["langfuse.observation.metadata.list"] == '["x"]'
    assert json.loads(str(attributes["langfuse.observation.usage_details"]))["total"] == 7
    assert json.loads(str(attributes["langfuse.observation.cost_details"])) == {
        "input": 0.1,
        "total": 0.1,
    }


def test_an_error_sets_level_error_and_a_typed_status_message() -> None:
    span = make_span(
        error=SpanError(message="boom", type="ValueError", stack="Traceback ...\nValueError: boom"),
        status_message="boom",
    )
    attributes = langfuse_attributes(span, TraceOptions())
    assert attributes["langfuse.observation.level"] == "ERROR"
    assert attributes["langfuse.observation.status_message"] == "ValueError: boom"
    assert attributes["langfuse.observation.metadata.error.type"] == "ValueError"
    assert attributes["langfuse.observation.metadata.error.stack"].endswith("ValueError: boom")
    assert "langfuse.observation.metadata.error.message" not in attributes


def test_a_qualified_error_type_is_short_in_the_status_message_and_full_in_metadata() -> None:
    span = make_span(error=SpanError(message="card declined", type="payments.CardError"))
    attributes = langfuse_attributes(span, TraceOptions())
    assert attributes["langfuse.observation.status_message"] == "CardError: card declined"
    assert attributes["langfuse.observation.metadata.error.type"] == "payments.CardError"


def test_a_status_message_set_by_the_application_wins_and_the_error_message_is_kept() -> None:
    span = make_span(
        error=SpanError(message="card declined", type="ValueError"),
        status_message="payment failed after 3 tries",
    )
    attributes = langfuse_attributes(span, TraceOptions())
    assert attributes["langfuse.observation.status_message"] == "payment failed after 3 tries"
    assert attributes["langfuse.observation.metadata.error.message"] == "card declined"


def test_levels_use_langfuse_names_and_the_default_level_is_left_out() -> None:
    for level, name in [
        (Level.DEBUG, "DEBUG"),
        (Level.WARNING, "WARNING"),
        (Level.ERROR, "ERROR"),
    ]:
        attributes = langfuse_attributes(make_span(level=level), TraceOptions())
        assert attributes["langfuse.observation.level"] == name
    attributes = langfuse_attributes(make_span(level=Level.DEFAULT), TraceOptions())
    assert "langfuse.observation.level" not in attributes


def test_a_prompt_is_linked_only_with_both_name_and_version() -> None:
    linked = langfuse_attributes(make_span(prompt=Prompt("support", "3")), TraceOptions())
    assert linked["langfuse.observation.prompt.name"] == "support"
    assert linked["langfuse.observation.prompt.version"] == 3
    unversioned = langfuse_attributes(make_span(prompt=Prompt("support")), TraceOptions())
    assert "langfuse.observation.prompt.name" not in unversioned
    assert "langfuse.observation.prompt.version" not in unversioned


def test_completion_start_time_is_iso_8601() -> None:
    span = make_span(completion_start_time=1_767_225_600_123_456_000)
    attributes = langfuse_attributes(span, TraceOptions())
    assert attributes["langfuse.observation.completion_start_time"] == (
        "2026-01-01T00:00:00.123456Z"
    )


def test_a_root_is_public_when_its_attributes_say_so_and_its_children_follow() -> None:
    root = make_span(attributes={"langfuse.trace.public": True})
    child = make_span(
        span_id="1111111111111111",
        parent_span_id="0123456789abcdef",
        trace_attributes={"langfuse.trace.public": "true"},
    )
    assert langfuse_attributes(root, TraceOptions())["langfuse.trace.public"] is True
    assert langfuse_attributes(child, TraceOptions())["langfuse.trace.public"] is True
    assert "langfuse.trace.public" not in langfuse_attributes(make_span(), TraceOptions())


def test_a_childs_own_metadata_key_is_not_repeated_as_trace_metadata() -> None:
    child = make_span(
        parent_span_id="0123456789abcdef",
        metadata={"step": "tool"},
        trace_metadata={"step": "root", "tenant": "acme"},
    )
    attributes = langfuse_attributes(child, TraceOptions())
    assert attributes["langfuse.trace.metadata.tenant"] == "acme"
    assert "langfuse.trace.metadata.step" not in attributes
    assert attributes["langfuse.observation.metadata.step"] == "tool"


@pytest.mark.parametrize("span_type", [SpanType.GENERIC, SpanType.MODEL_STEP])
@pytest.mark.parametrize(
    "fields",
    [
        {"model": "gpt-4o"},
        {"usage": Usage(input=1)},
        {"cost": Cost(total=0.1)},
        {"parameters": {"temperature": 0.2}},
        {"completion_start_time": 1},
        {"prompt": Prompt(name="p", version=1)},
    ],
)
def test_a_span_typed_span_with_model_data_is_a_generation(
    span_type: SpanType, fields: dict[str, Any]
) -> None:
    # Langfuse's legacy ingestion schema for span-create (CreateSpanBody) has none of
    # these fields: sent as a span, they would be dropped.
    assert observation_type(make_span(type=span_type, **fields)) == "generation"
    assert observation_type(make_span(type=span_type, parameters={"top_p": None})) == "span"
    assert observation_type(make_span(type=SpanType.TOOL_CALL, **fields)) == "tool"
