"""``check()``: what ``obshub check`` reports for an OTLP exporter."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from obshub_otlp import OtlpExporter
from obshub_otlp.testing import Fault, OtlpReceiver

MakeExporter = Callable[..., OtlpExporter]


@pytest.mark.parametrize(("protocol", "body"), [("http/protobuf", b""), ("http/json", b"{}")])
def test_check_posts_an_empty_export_and_reports_status_and_latency(
    make_exporter: MakeExporter, receiver: OtlpReceiver, protocol: str, body: bytes
) -> None:
    result = make_exporter(protocol=protocol).check()
    assert result.ok
    assert result.message == (
        f"OTLP receiver at {receiver.url} accepted an empty {protocol} export (HTTP 200)"
    )
    assert result.latency_ms is not None
    assert result.latency_ms >= 0
    assert result.details["status"] == 200
    assert result.details["endpoint_source"] == "argument"
    (request,) = receiver.requests()
    assert request.method == "POST"
    assert request.content == body
    assert receiver.spans() == []


def test_check_fails_on_an_error_status_and_still_reports_latency(
    make_exporter: MakeExporter, receiver: OtlpReceiver
) -> None:
    receiver.inject(Fault.error(503, message="collector is draining"))
    result = make_exporter().check()
    assert not result.ok
    assert "HTTP 503: collector is draining" in result.message
    assert result.details["status"] == 503
    assert result.latency_ms is not None


def test_check_explains_a_wrong_path(make_exporter: MakeExporter, receiver: OtlpReceiver) -> None:
    result = make_exporter(endpoint=f"{receiver.base_url}/v1/trace").check()
    assert not result.ok
    assert "HTTP 404" in result.message
    assert "the endpoint is the full traces URL, usually ending in /v1/traces" in result.message


def test_check_says_when_the_receiver_cannot_be_reached(make_exporter: MakeExporter) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    result = make_exporter(endpoint=endpoint, timeout=2).check()
    assert not result.ok
    assert result.message.startswith(f"cannot reach {endpoint}: ")
    assert "connection failed" in result.message
    assert "status" not in result.details
