"""The span model: immutable snapshots, token usage, cost, scores, ids and times."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from obshub import (
    Cost,
    EventKind,
    Level,
    Prompt,
    Score,
    ScoreDataType,
    Span,
    SpanError,
    SpanEvent,
    SpanType,
    Usage,
)
from obshub.spans import new_span_id, new_trace_id, ns_to_iso, time_to_ns

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


def make_span(**fields: object) -> Span:
    base: dict[str, object] = {"trace_id": TRACE_ID, "span_id": SPAN_ID, "name": "step"}
    base.update(fields)
    return Span(**base)  # type: ignore[arg-type]


def test_span_types_are_the_snake_case_names_of_the_contract() -> None:
    assert {t.value for t in SpanType} == {
        "agent_run",
        "workflow_run",
        "workflow_step",
        "model_generation",
        "model_step",
        "tool_call",
        "mcp_tool_call",
        "embedding",
        "retrieval",
        "guardrail",
        "evaluator",
        "generic",
    }
    assert SpanType("tool_call") is SpanType.TOOL_CALL
    assert str(SpanType.AGENT_RUN) == "agent_run"


def test_levels_and_event_kinds_have_the_documented_values() -> None:
    assert [lv.value for lv in Level] == ["debug", "default", "warning", "error"]
    assert {k.value for k in EventKind} == {"started", "updated", "ended"}


def test_trace_ids_are_32_and_span_ids_16_lowercase_hex_digits_and_unique() -> None:
    trace_ids = {new_trace_id() for _ in range(500)}
    span_ids = {new_span_id() for _ in range(500)}
    assert len(trace_ids) == 500
    assert len(span_ids) == 500
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) and t != "0" * 32 for t in trace_ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", s) and s != "0" * 16 for s in span_ids)


def test_a_span_snapshot_cannot_be_modified() -> None:
    span = make_span()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        span.name = "other"  # type: ignore[misc]
    assert not hasattr(span, "__dict__")


def test_a_span_without_parent_is_the_root_and_a_child_is_not() -> None:
    assert make_span().is_root
    assert not make_span(parent_span_id="1111111111111111").is_root


def test_duration_is_end_minus_start_and_none_while_running() -> None:
    span = make_span(start_time=1_000_000_000, end_time=1_250_000_000)
    assert span.duration_ns == 250_000_000
    assert span.duration_ms == 250.0
    assert make_span(start_time=5).duration_ms is None


def test_usage_from_a_dict_keeps_known_counts_and_provider_extras_in_details() -> None:
    usage = Usage.coerce({"input": 812, "output": 95, "cached_input": 512, "audio_tokens": 7})
    assert (usage.input, usage.output, usage.cached_input) == (812, 95, 512)
    assert usage.details == {"audio_tokens": 7}
    assert usage.total_tokens() == 907


def test_usage_total_wins_over_the_sum_and_is_none_when_nothing_is_known() -> None:
    assert Usage(input=10, output=5, total=20).total_tokens() == 20
    assert Usage().total_tokens() is None
    assert Usage(output=3).total_tokens() == 3


def test_usage_accepts_whole_floats_and_rejects_text_counts() -> None:
    assert Usage.coerce({"input": 812.0}).input == 812
    with pytest.raises(TypeError):
        Usage.coerce({"input": "812"})


def test_usage_and_cost_instances_pass_through_coerce_unchanged() -> None:
    usage = Usage(input=1)
    cost = Cost(total=0.5)
    assert Usage.coerce(usage) is usage
    assert Cost.coerce(cost) is cost


def test_usage_details_keep_only_numeric_counts() -> None:
    usage = Usage.coerce(
        {"input": 1, "details": {"audio": 3, "junk": object(), "nan": float("nan")}}
    )
    assert usage.details == {"audio": 3}
    json.dumps(attrs.asdict(usage), allow_nan=False)


def test_cost_from_a_dict_ignores_unknown_keys() -> None:
    cost = Cost.coerce({"input": 0.002, "output": 0.001, "total": 0.003, "currency": "USD"})
    assert (cost.input, cost.output, cost.total) == (0.002, 0.001, 0.003)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.1"])
def test_cost_rejects_values_that_are_not_finite_numbers(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        Cost.coerce({"total": bad})


def test_a_prompt_is_built_from_a_bare_name_or_a_name_and_version() -> None:
    assert Prompt.coerce("support-v2") == Prompt(name="support-v2")
    assert Prompt.coerce({"name": "support", "version": 3}) == Prompt(name="support", version=3)


def test_a_prompt_version_that_is_neither_text_nor_integer_becomes_text() -> None:
    prompt = Prompt.coerce({"name": "p", "version": 1.5})
    assert prompt.version == "1.5"
    json.dumps(attrs.asdict(Prompt.coerce({"name": "p", "version": object()})))


def full_span() -> Span:
    return make_span(
        parent_span_id="1111111111111111",
        type=SpanType.MODEL_GENERATION,
        start_time=1_700_000_000_000_000_000,
        end_time=1_700_000_000_500_000_000,
        input={"messages": [{"role": "user", "content": "hi"}]},
        output="hello",
        metadata={"k": 1},
        attributes={"a": "b"},
        tags=("beta", "eu"),
        session_id="s-42",
        user_id="u-7",
        error=SpanError(message="boom", type="ValueError", stack="tb"),
        level=Level.ERROR,
        status_message="boom",
        model="gpt-4o",
        provider="openai",
        parameters={"temperature": 0.2},
        usage=Usage(input=812, output=95, cached_input=512, details={"audio": 1}),
        cost=Cost(input=0.002, output=0.001, total=0.003),
        completion_start_time=1_700_000_000_100_000_000,
        prompt=Prompt(name="support", version=3),
        trace_name="agent",
    )


def test_to_dict_is_plain_json_and_from_dict_rebuilds_the_same_span() -> None:
    span = full_span()
    data = json.loads(json.dumps(span.to_dict(), allow_nan=False))
    assert data["type"] == "model_generation"
    assert data["level"] == "error"
    assert data["tags"] == ["beta", "eu"]
    assert data["usage"]["input"] == 812
    assert Span.from_dict(data) == span


def test_a_span_event_round_trips_through_its_dict_form() -> None:
    event = SpanEvent(
        kind=EventKind.ENDED, span=full_span(), config_name="prod", service_name="bot"
    )
    data = json.loads(json.dumps(event.to_dict()))
    assert data["kind"] == "ended"
    assert data["config"] == "prod"
    assert data["service"] == "bot"
    assert SpanEvent.from_dict(data) == event


_text = st.text(max_size=20)
_json_scalars = st.none() | st.booleans() | st.integers() | _text
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=10,
)
_counts = st.none() | st.integers(min_value=0, max_value=10**9)


@given(
    name=_text,
    span_type=st.sampled_from(list(SpanType)),
    level=st.sampled_from(list(Level)),
    io=_json,
    metadata=st.dictionaries(_text, _json, max_size=4),
    tags=st.lists(_text, max_size=3).map(tuple),
    usage=st.none() | st.builds(Usage, input=_counts, output=_counts, reasoning=_counts),
    cost=st.none()
    | st.builds(Cost, total=st.none() | st.floats(allow_nan=False, allow_infinity=False)),
    start=st.integers(min_value=0, max_value=2**62),
    duration=st.none() | st.integers(min_value=0, max_value=10**12),
)
def test_any_json_safe_span_round_trips_through_json(
    name: str,
    span_type: SpanType,
    level: Level,
    io: object,
    metadata: dict[str, object],
    tags: tuple[str, ...],
    usage: Usage | None,
    cost: Cost | None,
    start: int,
    duration: int | None,
) -> None:
    span = make_span(
        name=name,
        type=span_type,
        level=level,
        input=io,
        output=io,
        metadata=metadata,
        tags=tags,
        usage=usage,
        cost=cost,
        start_time=start,
        end_time=None if duration is None else start + duration,
    )
    text = json.dumps(span.to_dict(), allow_nan=False)
    assert Span.from_dict(json.loads(text)) == span


@pytest.mark.parametrize(
    ("value", "data_type"),
    [
        (True, ScoreDataType.BOOLEAN),
        (0.9, ScoreDataType.NUMERIC),
        (3, ScoreDataType.NUMERIC),
        ("good", ScoreDataType.CATEGORICAL),
    ],
)
def test_a_score_infers_its_data_type_from_its_value(
    value: object, data_type: ScoreDataType
) -> None:
    assert Score(name="helpfulness", value=value, trace_id=TRACE_ID).data_type is data_type  # type: ignore[arg-type]


def test_a_score_takes_an_explicit_data_type_and_keeps_a_stable_id_through_its_dict() -> None:
    score = Score(name="grade", value=1, data_type="CATEGORICAL", session_id="s-1")
    assert score.data_type is ScoreDataType.CATEGORICAL
    again = Score.from_dict(json.loads(json.dumps(score.to_dict())))
    assert again == score
    assert again.id == score.id
    assert Score(name="a", value=1).id != Score(name="a", value=1).id


def test_times_are_converted_to_nanoseconds_from_datetimes_and_epoch_numbers() -> None:
    aware = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    expected = 1_767_323_045_123_456_000
    assert time_to_ns(aware) == expected
    assert time_to_ns(aware.replace(tzinfo=None)) == expected  # naive means UTC
    plus_two = aware.astimezone(timezone(timedelta(hours=2)))
    assert time_to_ns(plus_two) == expected
    assert time_to_ns(1_767_323_045) == 1_767_323_045_000_000_000  # epoch seconds
    assert time_to_ns(expected) == expected  # already nanoseconds
    assert time_to_ns(1_767_323_045.5) == 1_767_323_045_500_000_000
    assert time_to_ns(None) is None
    with pytest.raises(TypeError):
        time_to_ns(True)
    with pytest.raises(TypeError):
        time_to_ns("2026-01-02")


def test_nanoseconds_format_as_utc_iso_8601_with_microseconds() -> None:
    assert ns_to_iso(1_767_323_045_123_456_789) == "2026-01-02T03:04:05.123456Z"


def test_to_dict_covers_every_field_exactly_as_attrs_would() -> None:
    from obshub.spans import _serialize_value

    span = Span(
        trace_id="a" * 32,
        span_id="b" * 16,
        name="x",
        type=SpanType.MODEL_GENERATION,
        input=[{"a": 1}],
        usage=Usage(input=1, output=2, details={"audio": 3}),
        cost=Cost(total=0.1),
        prompt=Prompt("p", 3),
        error=SpanError("m", "t", "s"),
        tags=("x",),
        metadata={"k": {"n": 1}},
    )
    assert span.to_dict() == attrs.asdict(span, recurse=True, value_serializer=_serialize_value)


def test_enum_members_are_found_by_their_value_in_any_case_and_print_as_it() -> None:
    assert Level("ERROR") is Level.ERROR
    assert ScoreDataType("numeric") is ScoreDataType.NUMERIC
    assert SpanType("Tool_Call") is SpanType.TOOL_CALL
    assert (str(EventKind.ENDED), f"{Level.WARNING}") == ("ended", "warning")
    assert hash(SpanType.AGENT_RUN) == hash("agent_run")
    with pytest.raises(ValueError, match="loud"):
        Level("loud")


def test_the_field_tables_come_from_the_span_fields_themselves() -> None:
    from obshub.spans import MERGED_FIELDS, RECORDED_FIELDS, SETTABLE_FIELDS, TRACE_FIELDS

    assert {"session_id", "user_id", "tags"} == TRACE_FIELDS
    assert {"metadata", "attributes", "parameters"} == MERGED_FIELDS
    assert TRACE_FIELDS | MERGED_FIELDS <= SETTABLE_FIELDS <= set(attrs.fields_dict(Span))
    # A snapshot takes every settable field from its live span but the
    # trace-level ones, and the error record_exception() sets.
    assert set(RECORDED_FIELDS) == (SETTABLE_FIELDS - TRACE_FIELDS) | {"error"}


def test_from_dict_reads_back_what_json_made_of_enums_tuples_and_records() -> None:
    span = make_span(
        type=SpanType.TOOL_CALL,
        level=Level.WARNING,
        tags=("a", "b"),
        usage=Usage(input=1, details={"audio": 2}),
        error=SpanError("m", "t", None),
        prompt=Prompt("p"),
    )
    record = json.loads(json.dumps(span.to_dict()))
    record["metadata"] = record["trace_metadata"] = None  # read as empty tables
    assert Span.from_dict(record) == span
