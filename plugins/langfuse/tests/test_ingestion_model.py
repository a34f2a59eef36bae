"""The stand-in's model of Langfuse's ingestion follows Langfuse's code.

Expectations are written from langfuse/langfuse: ``OtelIngestionProcessor.ts``
(``createObservationEvent``, ``createTraceEvent``, ``isAiSdkAgentOperation``,
``extractInputAndOutput``), ``IngestionService/index.ts`` (``mergeTraceRecords``,
``mapTraceEventsToRecords``, ``immutableEntityKeys``) and
``IngestionService/utils.ts`` (``overwriteObject``).
"""

from __future__ import annotations

from typing import Any

from obshub_langfuse._ingestion import (
    TraceEvent,
    derive_observation,
    display,
    js_stringify,
    merge_trace,
    trace_event,
)
from obshub_otlp._reference import _set_value
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.trace.v1.trace_pb2 import Span

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
START = 1_767_225_600_000_000_000


def otel_span(
    span_id: str = "00f067aa0ba902b7",
    parent: str | None = None,
    start: int = START,
    **attributes: Any,
) -> Span:
    span = Span(
        trace_id=TRACE,
        span_id=bytes.fromhex(span_id),
        name="s",
        start_time_unix_nano=start,
        end_time_unix_nano=start + 1_000_000,
    )
    if parent:
        span.parent_span_id = bytes.fromhex(parent)
    for key, value in attributes.items():
        kv = span.attributes.add()
        kv.key = key.replace("__", ".")
        _set_value(kv.value, value)
    return span


OBSHUB = InstrumentationScope(name="obshub", version="0.1.0")
SDK = InstrumentationScope(name="langfuse-sdk", version="3.9.0")


def test_an_invoke_agent_operation_loses_model_usage_and_cost() -> None:
    attributes = {
        "langfuse.observation.type": "agent",
        "langfuse.observation.model.name": "gpt-4o-mini",
        "langfuse.observation.usage_details": '{"input":50}',
        "langfuse.observation.cost_details": '{"total":0.1}',
    }
    kept = derive_observation(otel_span(**attributes), {}, OBSHUB)
    assert (kept.type, kept.model, kept.usage_details) == ("AGENT", "gpt-4o-mini", {"input": 50})
    skipped = derive_observation(
        otel_span(**attributes, gen_ai__operation__name="invoke_agent"), {}, OBSHUB
    )
    assert skipped.type == "AGENT"
    assert (skipped.model, skipped.usage_details, skipped.cost_details) == (None, None, None)


def test_input_is_stored_as_sent_and_a_quoted_string_stays_quoted() -> None:
    raw = derive_observation(otel_span(langfuse__observation__input="chat"), {}, OBSHUB)
    quoted = derive_observation(otel_span(langfuse__observation__input='"chat"'), {}, OBSHUB)
    assert (raw.stored_input, quoted.stored_input) == ("chat", '"chat"')
    # The UI parses JSON text, so both read "chat" there; filters and exports see the quotes.
    assert raw.input == quoted.input == "chat"
    assert display("42") == "42"


def test_attributes_are_copied_to_metadata_for_any_scope_but_langfuses_sdk() -> None:
    span = otel_span(
        gen_ai__system="openai",
        langfuse__observation__input="q",
        langfuse__observation__metadata__k="v",
    )
    ours = derive_observation(span, {}, OBSHUB)
    assert ours.copied_attributes == {"gen_ai.system": "openai"}
    assert ours.stored_metadata["k"] == "v"
    assert ours.stored_metadata["attributes"] == '{"gen_ai.system":"openai"}'
    sdk = derive_observation(span, {}, SDK)
    assert sdk.copied_attributes == {}
    assert "attributes" not in sdk.stored_metadata


def test_the_exception_event_is_not_read() -> None:
    span = otel_span()
    span.status.code = 2
    span.status.message = "card declined"
    event = span.events.add()
    event.name = "exception"
    kv = event.attributes.add()
    kv.key = "exception.type"
    kv.value.string_value = "ValueError"
    obs = derive_observation(span, {}, OBSHUB)
    assert (obs.level, obs.status_message) == ("ERROR", "card declined")
    assert "ValueError" not in js_stringify(dict(obs.stored_metadata))


def test_the_direct_path_merges_trace_metadata_over_the_observations() -> None:
    span = otel_span(
        langfuse__observation__metadata__step="child",
        langfuse__trace__metadata__step="root",
        langfuse__trace__metadata__tenant="acme",
    )
    obs = derive_observation(span, {}, OBSHUB)
    assert obs.metadata == {"step": "child"}
    assert obs.direct_metadata["step"] == "root"
    assert obs.direct_metadata["tenant"] == "acme"


def event(start_ms: int, **body: Any) -> TraceEvent:
    timestamp = f"2026-01-01T00:00:{start_ms // 1000:02d}.{start_ms % 1000:03d}Z"
    return TraceEvent(timestamp, {"id": "t", "timestamp": timestamp, **body})


def test_the_first_record_keeps_timestamp_and_environment() -> None:
    first = merge_trace(None, [event(500, environment="prod")])
    again = merge_trace(first, [event(500, environment="prod"), event(100, environment="dev")])
    assert (again["timestamp"], again["environment"]) == (first["timestamp"], "prod")
    together = merge_trace(None, [event(500, environment="prod"), event(100, environment="dev")])
    assert together["environment"] == "dev"


def test_later_spans_overwrite_what_they_send_and_public_is_reset_when_not_sent() -> None:
    root = event(0, name="agent", public=True, release="r1", metadata={"k": "root"})
    child = event(5, release=None, metadata={"k": "child", "x": 1})
    merged = merge_trace(None, [child, root])
    assert merged["name"] == "agent"
    assert merged["public"] is False
    assert merged["release"] is None
    assert merged["metadata"] == {"k": "child", "x": "1"}
    unsent = merge_trace(None, [root, event(5)])
    assert (unsent["release"], unsent["metadata"]) == ("r1", {"k": "root"})


def test_trace_input_is_the_latest_truthy_one_and_tags_are_a_union() -> None:
    merged = merge_trace(
        None,
        [event(0, input="q", tags=["b"]), event(5, input="", tags=["a"]), event(9, tags=[])],
    )
    assert merged["input"] == "q"
    assert merged["tags"] == ["a", "b"]


def test_a_span_makes_a_trace_event_when_root_updating_or_first_seen() -> None:
    seen: set[str] = set()
    child = otel_span(span_id="1111111111111111", parent="00f067aa0ba902b7")
    shallow = trace_event(child, {}, OBSHUB, seen)
    assert shallow is not None
    assert set(shallow.body) == {"id", "timestamp", "environment"}
    assert trace_event(child, {}, OBSHUB, seen) is None
    updating = otel_span(span_id="2222222222222222", parent="00f067aa0ba902b7", user__id="u")
    update = trace_event(updating, {}, OBSHUB, seen)
    assert update is not None
    assert update.body["userId"] == "u"
    assert "input" not in update.body
    root = trace_event(otel_span(langfuse__observation__input="q"), {}, OBSHUB, seen)
    assert root is not None
    assert (root.body["name"], root.body["input"]) == ("s", "q")


# -- the legacy path's ingestion schema (packages/shared/src/server/ingestion/types.ts) --------
# Checked against Langfuse's own OtelIngestionProcessor and createIngestionEventSchema run on
# the plugin's requests: these are the differences that check found in the stand-in.

MODEL_DATA = {
    "langfuse.observation.model.name": "gpt-4o",
    "langfuse.observation.model.parameters": '{"temperature":0.2}',
    "langfuse.observation.usage_details": '{"input":7,"output":3}',
    "langfuse.observation.cost_details": '{"total":0.0001}',
    "langfuse.observation.completion_start_time": "2026-01-01T00:00:00.500Z",
    "langfuse.observation.prompt.name": "p",
    "langfuse.observation.prompt.version": 2,
}


def test_a_span_observation_keeps_no_model_data() -> None:
    # span-create is parsed with CreateSpanBody, which has no model, modelParameters,
    # usageDetails, costDetails, completionStartTime or prompt: zod strips them.
    stored = derive_observation(
        otel_span(**{"langfuse.observation.type": "span", **MODEL_DATA}), {}, OBSHUB
    )
    assert stored.type == "SPAN"
    assert stored.model is None
    assert stored.model_parameters is None
    assert stored.usage_details is None
    assert stored.cost_details is None
    assert stored.completion_start_time is None
    assert (stored.prompt_name, stored.prompt_version) == (None, None)
    assert stored.end_time is not None


def test_a_generation_keeps_model_data() -> None:
    # generation-create (and agent-, tool-, chain-, retriever-, embedding-, evaluator-,
    # guardrail-create) use CreateGenerationBody, which has all of them.
    stored = derive_observation(
        otel_span(**{"langfuse.observation.type": "generation", **MODEL_DATA}), {}, OBSHUB
    )
    assert stored.model == "gpt-4o"
    assert stored.model_parameters == {"temperature": 0.2}
    assert stored.usage_details == {"input": 7, "output": 3}
    assert stored.cost_details == {"total": 0.0001}
    assert stored.completion_start_time is not None
    assert (stored.prompt_name, stored.prompt_version) == ("p", 2)


def test_an_event_has_no_end_time_and_no_model_data() -> None:
    # event-create is parsed with CreateEventEvent: no endTime either.
    stored = derive_observation(
        otel_span(**{"langfuse.observation.type": "event", **MODEL_DATA}), {}, OBSHUB
    )
    assert stored.type == "EVENT"
    assert stored.end_time is None
    assert stored.model is None
    assert stored.usage_details is None


def test_model_parameters_other_than_strings_and_numbers_become_json_text() -> None:
    # OtelIngestionProcessor.sanitizeModelParams: typeof string or number stays,
    # anything else is JSON.stringify'd (a boolean too).
    parameters = '{"temperature":0.2,"model":"x","stop":["\\n"],"stream":true,"bias":{"1":-1}}'
    stored = derive_observation(
        otel_span(
            **{
                "langfuse.observation.type": "generation",
                "langfuse.observation.model.parameters": parameters,
            }
        ),
        {},
        OBSHUB,
    )
    assert stored.model_parameters == {
        "temperature": 0.2,
        "model": "x",
        "stop": '["\\n"]',
        "stream": "true",
        "bias": '{"1":-1}',
    }


def test_an_integer_attribute_beyond_2_53_is_rounded_like_a_javascript_number() -> None:
    # OtelIngestionProcessor.convertOtelIntValue turns an int64 into a JavaScript number.
    stored = derive_observation(
        otel_span(**{"langfuse.observation.metadata.big": 2**53 + 1}), {}, OBSHUB
    )
    assert stored.stored_metadata["big"] == str(2**53)
