"""The test receiver itself: it must behave like a real OTLP/HTTP receiver."""

from __future__ import annotations

import json

import pytest
from obshub_otlp.testing import Fault, OtlpReceiver, status_body

from obshub import http


def post(receiver: OtlpReceiver, body: bytes, content_type: str) -> http.Response:
    headers = {"Content-Type": content_type}
    return http.post(receiver.url, body, headers, raise_for_status=False)


def test_error_bodies_are_google_rpc_status_messages() -> None:
    status_pb2 = pytest.importorskip("google.rpc.status_pb2")
    status = status_pb2.Status()
    status.ParseFromString(status_body(3, "bad span ✓", "http/protobuf"))
    assert (status.code, status.message) == (3, "bad span ✓")
    assert json.loads(status_body(14, "later", "http/json")) == {"code": 14, "message": "later"}


def test_spans_from_the_official_opentelemetry_sdk_are_received(receiver: OtlpReceiver) -> None:
    exporter_module = pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-app"}))
    provider.add_span_processor(
        SimpleSpanProcessor(exporter_module.OTLPSpanExporter(endpoint=receiver.url))
    )
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner") as inner:
        inner.set_attribute("gen_ai.request.model", "gpt-4o")
    provider.shutdown()
    receiver.wait_for_spans(2)
    outer, inner_span = receiver.span("outer"), receiver.span("inner")
    assert inner_span.parent_span_id == outer.span_id
    assert inner_span.attributes["gen_ai.request.model"] == "gpt-4o"
    assert outer.resource["service.name"] == "sdk-app"


def test_otlp_json_with_base64_ids_is_refused(receiver: OtlpReceiver) -> None:
    document = {
        "resourceSpans": [
            {"scopeSpans": [{"spans": [{"traceId": "AAAAAAAAAAAAAAAAAAAAAA==", "name": "x"}]}]}
        ]
    }
    response = post(receiver, json.dumps(document).encode(), "application/json")
    assert response.status == 400
    assert json.loads(response.body)["message"] == "traceId is not hex"
    assert receiver.spans() == []


def test_otlp_json_unknown_fields_are_ignored(receiver: OtlpReceiver) -> None:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "x", "futureField": 1}
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}], "extra": True}
    response = post(receiver, json.dumps(document).encode(), "application/json")
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert receiver.span("x").trace_id == "ab" * 16


@pytest.mark.parametrize(
    ("path", "method", "content_type", "status"),
    [
        ("/v1/traces", "POST", "text/plain", 415),
        ("/v1/logs", "POST", "application/x-protobuf", 404),
        ("/v1/traces", "GET", "application/x-protobuf", 405),
    ],
)
def test_wrong_requests_get_the_status_a_collector_gives(
    receiver: OtlpReceiver, path: str, method: str, content_type: str, status: int
) -> None:
    response = http.request(
        method,
        f"{receiver.base_url}{path}",
        body=b"" if method == "POST" else None,
        headers={"Content-Type": content_type},
        raise_for_status=False,
    )
    assert response.status == status


def test_a_spans_ids_must_have_their_sizes(receiver: OtlpReceiver) -> None:
    span = {"traceId": "ab" * 8, "spanId": "cd" * 8, "name": "short-trace-id"}
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    response = post(receiver, json.dumps(document).encode(), "application/json")
    assert response.status == 400


def test_injected_faults_are_used_once_each_in_order(receiver: OtlpReceiver) -> None:
    receiver.inject(Fault.error(503, retry_after=7), Fault.error(429))
    first = post(receiver, b"", "application/x-protobuf")
    second = post(receiver, b"", "application/x-protobuf")
    third = post(receiver, b"", "application/x-protobuf")
    assert (first.status, second.status, third.status) == (503, 429, 200)
    assert first.headers["retry-after"] == "7"
    assert receiver.statuses() == [503, 429, 200]


def test_wait_for_spans_raises_at_its_timeout_saying_what_arrived(receiver: OtlpReceiver) -> None:
    with pytest.raises(TimeoutError, match=r"waited 0.05 s for 1 spans; 0 arrived"):
        receiver.wait_for_spans(1, timeout=0.05)


def test_wait_for_spans_and_requests_return_what_arrived(receiver: OtlpReceiver) -> None:
    spans = receiver.wait_for_spans(0)
    assert spans == []
    post(receiver, b"", "application/x-protobuf")
    (request,) = receiver.wait_for_requests(1, "/v1/traces")
    assert request.status == 200
    with pytest.raises(TimeoutError, match="for 1 requests to /elsewhere; 0 arrived"):
        receiver.wait_for_requests(1, "/elsewhere", timeout=0.01)


def test_clear_forgets_spans_requests_and_faults(receiver: OtlpReceiver) -> None:
    receiver.inject(Fault.error(500))
    post(receiver, b"", "application/x-protobuf")
    receiver.inject(Fault.error(500))
    receiver.clear()
    assert receiver.requests() == []
    assert post(receiver, b"", "application/x-protobuf").status == 200
