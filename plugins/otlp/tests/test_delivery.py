"""Delivery: protobuf and JSON bodies, compression, realtime and batch sends."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import pytest
from obshub_otlp.testing import OtlpReceiver

import obshub

MakeHub = Callable[..., obshub.Hub]
Stats = Callable[[obshub.Hub], obshub.ChannelStats]


def record_conversation(hub: obshub.Hub) -> None:
    with hub.span("support-agent", type="agent_run", input="Where is my order?") as agent:
        with hub.span("gpt-4o", type="model_generation", model="gpt-4o", provider="openai") as gen:
            gen.update(output={"answer": "On its way"}, usage={"input": 812, "output": 95})
        agent.update(output="On its way")


def test_spans_arrive_as_gzipped_protobuf_by_default(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    hub = make_hub()
    record_conversation(hub)
    assert hub.flush(5)
    (request,) = receiver.requests()
    assert request.method == "POST"
    assert request.path == "/v1/traces"
    assert request.content_type == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.body) == request.content
    assert {s.name for s in receiver.spans()} == {"support-agent", "gpt-4o"}
    assert {s.protocol for s in receiver.spans()} == {"http/protobuf"}
    assert stats(hub).exported == 2


def test_the_user_agent_names_obshub_and_the_plugin(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub()
    record_conversation(hub)
    assert hub.flush(5)
    agent = receiver.requests()[0].headers["user-agent"]
    assert agent.startswith(f"obshub/{obshub.__version__} ")
    assert "obshub-otlp/" in agent


def test_compression_none_sends_a_plain_body(make_hub: MakeHub, receiver: OtlpReceiver) -> None:
    hub = make_hub(compression="none")
    record_conversation(hub)
    assert hub.flush(5)
    (request,) = receiver.requests()
    assert "content-encoding" not in request.headers
    assert request.body == request.content
    assert len(receiver.spans()) == 2


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_http_json_sends_otlp_json_that_the_official_parser_reads(
    make_hub: MakeHub, receiver: OtlpReceiver, compression: str
) -> None:
    hub = make_hub(protocol="http/json", compression=compression)
    record_conversation(hub)
    assert hub.flush(5)
    (request,) = receiver.requests()
    assert request.content_type == "application/json"
    assert (request.headers.get("content-encoding") == "gzip") is (compression == "gzip")
    assert {s.name for s in receiver.spans()} == {"support-agent", "gpt-4o"}
    assert {s.protocol for s in receiver.spans()} == {"http/json"}


def test_otlp_json_has_hex_ids_integer_enums_and_int64_as_strings(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub(protocol="http/json")
    record_conversation(hub)
    assert hub.flush(5)
    (resource_spans,) = receiver.requests()[0].json()["resourceSpans"]
    spans = {s["name"]: s for s in resource_spans["scopeSpans"][0]["spans"]}
    agent, gen = spans["support-agent"], spans["gpt-4o"]
    received = receiver.span("gpt-4o")
    assert gen["traceId"] == received.trace_id
    assert len(gen["traceId"]) == 32
    assert gen["spanId"] == received.span_id
    assert gen["parentSpanId"] == agent["spanId"]
    assert gen["kind"] == 3  # SPAN_KIND_CLIENT: a model call
    assert agent["kind"] == 1  # SPAN_KIND_INTERNAL
    assert gen["startTimeUnixNano"] == str(received.start_time_unix_nano)
    tokens = {a["key"]: a["value"] for a in gen["attributes"]}["gen_ai.usage.input_tokens"]
    assert tokens == {"intValue": "812"}
    assert "resource_spans" not in receiver.requests()[0].json()


def test_realtime_sends_each_span_without_a_flush(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub(realtime=True)
    with hub.span("first"):
        pass
    receiver.wait_for_spans(1)
    with hub.span("second"):
        pass
    receiver.wait_for_spans(2)
    assert [r.spans for r in receiver.requests()] == [1, 1]


def test_batch_mode_holds_spans_until_the_batch_is_full(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub(batch={"max_size": 5, "interval": 60})
    for i in range(4):
        with hub.span(f"step-{i}"):
            pass
    assert receiver.requests() == []
    for i in range(4, 10):
        with hub.span(f"step-{i}"):
            pass
    receiver.wait_for_requests(2)
    assert [r.spans for r in receiver.requests()] == [5, 5]
