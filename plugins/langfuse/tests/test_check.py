"""``check()``: what ``obshub check`` reports for a Langfuse exporter."""

from __future__ import annotations

import socket
from collections.abc import Callable

from obshub_langfuse import LangfuseExporter
from obshub_langfuse.testing import LangfuseStandIn

MakeExporter = Callable[..., LangfuseExporter]


def test_check_passes_with_valid_keys_and_reports_latency(
    make_exporter: MakeExporter, server: LangfuseStandIn
) -> None:
    result = make_exporter().check()
    assert result.ok
    assert "keys accepted" in result.message
    assert "obshub stand-in" in result.message
    assert result.latency_ms is not None
    assert result.latency_ms >= 0
    assert result.details["status"] == 200
    (request,) = server.requests("projects")
    assert request.method == "GET"


def test_check_says_the_keys_were_rejected(make_exporter: MakeExporter) -> None:
    result = make_exporter(secret_key="sk-lf-wrong").check()
    assert not result.ok
    assert "keys rejected" in result.message
    assert "401" in result.message
    assert "sk-lf-wrong" not in result.message
    assert result.details["status"] == 401


def test_check_says_when_langfuse_cannot_be_reached(make_exporter: MakeExporter) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = make_exporter(base_url=f"http://127.0.0.1:{port}", timeout=2).check()
    assert not result.ok
    assert result.message.startswith(f"cannot reach http://127.0.0.1:{port}")


def test_check_fails_without_keys() -> None:
    result = LangfuseExporter().check()
    assert not result.ok
    assert "LANGFUSE_PUBLIC_KEY" in result.message
    assert "LANGFUSE_SECRET_KEY" in result.message
