"""The stand-in keeps Langfuse's contract, so tests against it mean something."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator

import pytest
from obshub_langfuse.testing import (
    HEALTH_PATH,
    PROJECTS_PATH,
    SCORES_PATH,
    TRACES_PATH,
    Fault,
    IncomingRequest,
    LangfuseStandIn,
)
from obshub_otlp.encoding import encode_spans, request_to_json
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from obshub import http
from obshub.spans import EventKind, Span, SpanEvent, SpanType

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def standin() -> Iterator[LangfuseStandIn]:
    with LangfuseStandIn(public_key="pk-test", secret_key="sk-test") as server:
        yield server


def traces_body() -> bytes:
    span = Span(
        trace_id=TRACE_ID,
        span_id="b7ad6b7169203331",
        name="gpt-4o",
        type=SpanType.MODEL_GENERATION,
        start_time=1_767_225_600_000_000_000,
        end_time=1_767_225_601_000_000_000,
        model="gpt-4o",
    )
    event = SpanEvent(kind=EventKind.ENDED, span=span, config_name="c", service_name="svc")
    data: bytes = encode_spans([event]).SerializeToString()
    return data


def headers(standin: LangfuseStandIn, **extra: str) -> dict[str, str]:
    return {
        "Authorization": http.basic_auth(standin.public_key, standin.secret_key),
        "Content-Type": "application/x-protobuf",
        **extra,
    }


def post(standin: LangfuseStandIn, path: str, body: bytes, sent: dict[str, str]) -> int:
    return http.post(standin.url + path, body, sent, raise_for_status=False).status


def test_valid_otlp_is_accepted_and_derived(standin: LangfuseStandIn) -> None:
    assert post(standin, TRACES_PATH, traces_body(), headers(standin)) == 200
    (obs,) = standin.observations()
    assert (obs.trace_id, obs.id, obs.type, obs.model) == (
        TRACE_ID,
        "b7ad6b7169203331",
        "GENERATION",
        "gpt-4o",
    )
    assert obs.environment == "default"


def test_wrong_or_missing_credentials_get_401(standin: LangfuseStandIn) -> None:
    wrong = headers(standin, Authorization=http.basic_auth("pk-test", "nope"))
    assert post(standin, TRACES_PATH, traces_body(), wrong) == 401
    missing = {"Content-Type": "application/x-protobuf"}
    assert post(standin, TRACES_PATH, traces_body(), missing) == 401
    assert standin.observations() == []


def test_gzip_is_accepted_and_deflate_is_not(standin: LangfuseStandIn) -> None:
    body = traces_body()
    gzipped = headers(standin, **{"Content-Encoding": "gzip"})
    assert post(standin, TRACES_PATH, gzip.compress(body), gzipped) == 200
    deflated = headers(standin, **{"Content-Encoding": "deflate"})
    assert post(standin, TRACES_PATH, zlib.compress(body), deflated) == 400


@pytest.mark.parametrize(("version", "status"), [("4", 200), ("3", 200), ("5", 400), ("x", 400)])
def test_ingestion_versions_above_4_are_rejected(
    standin: LangfuseStandIn, version: str, status: int
) -> None:
    sent = headers(standin, **{"x-langfuse-ingestion-version": version})
    assert post(standin, TRACES_PATH, traces_body(), sent) == status


def test_a_span_without_ids_rejects_the_whole_request(standin: LangfuseStandIn) -> None:
    request = encode_spans([])
    scope = request.resource_spans.add().scope_spans.add()
    good = scope.spans.add()
    good.trace_id = bytes.fromhex(TRACE_ID)
    good.span_id = bytes.fromhex("b7ad6b7169203331")
    scope.spans.add().name = "no ids"
    assert post(standin, TRACES_PATH, request.SerializeToString(), headers(standin)) == 400
    assert standin.observations() == []


def test_otlp_json_with_hex_ids_is_accepted(standin: LangfuseStandIn) -> None:
    request = ExportTraceServiceRequest.FromString(traces_body())
    body = json.dumps(request_to_json(request)).encode()
    sent = headers(standin, **{"Content-Type": "application/json"})
    assert post(standin, TRACES_PATH, body, sent) == 200
    (obs,) = standin.observations()
    assert obs.trace_id == TRACE_ID


def test_an_unknown_content_type_is_rejected(standin: LangfuseStandIn) -> None:
    sent = headers(standin, **{"Content-Type": "text/plain"})
    assert post(standin, TRACES_PATH, traces_body(), sent) == 400


def test_health_needs_no_auth_and_projects_does(standin: LangfuseStandIn) -> None:
    assert http.get(standin.url + HEALTH_PATH).status == 200
    assert http.get(standin.url + PROJECTS_PATH, raise_for_status=False).status == 401
    ok = http.get(standin.url + PROJECTS_PATH, {"Authorization": headers(standin)["Authorization"]})
    assert json.loads(ok.body)["data"][0]["name"] == "obshub stand-in"


def test_boolean_scores_must_be_0_or_1(standin: LangfuseStandIn) -> None:
    sent = headers(standin, **{"Content-Type": "application/json"})
    bad = {"traceId": TRACE_ID, "name": "ok", "value": 2, "dataType": "BOOLEAN"}
    assert post(standin, SCORES_PATH, json.dumps(bad).encode(), sent) == 400
    good = {**bad, "value": 1}
    assert post(standin, SCORES_PATH, json.dumps(good).encode(), sent) == 200


def test_the_request_log_redacts_credentials(standin: LangfuseStandIn) -> None:
    post(standin, TRACES_PATH, traces_body(), headers(standin))
    (request,) = standin.requests()
    assert request.headers["authorization"] == "Basic ***"
    assert request.spans == 1


def test_a_fault_function_decides_per_request(standin: LangfuseStandIn) -> None:
    seen: list[IncomingRequest] = []

    def every_other(incoming: IncomingRequest) -> Fault | None:
        seen.append(incoming)
        return Fault.error(503, retry_after=1) if len(seen) % 2 else None

    standin.fault_function = every_other
    first = http.post(
        standin.url + TRACES_PATH, traces_body(), headers(standin), raise_for_status=False
    )
    assert (first.status, first.headers["retry-after"]) == (503, "1")
    assert post(standin, TRACES_PATH, traces_body(), headers(standin)) == 200
    assert [s.path for s in seen] == [TRACES_PATH, TRACES_PATH]


def test_queued_faults_are_used_once_each_in_order(standin: LangfuseStandIn) -> None:
    standin.inject("traces", Fault.error(500), Fault.error(502))
    codes = [post(standin, TRACES_PATH, traces_body(), headers(standin)) for _ in range(3)]
    assert codes == [500, 502, 200]


def test_bodies_above_the_limit_get_413(standin: LangfuseStandIn) -> None:
    body = traces_body()
    standin.max_body_size = len(body) - 1
    assert post(standin, TRACES_PATH, body, headers(standin)) == 413
    standin.max_body_size = len(body)
    assert post(standin, TRACES_PATH, body, headers(standin)) == 200
