"""``timeout`` is a deadline for the whole request: connect + send + read of the full body.

The servers here misbehave on purpose, on 127.0.0.1 only
(`obshub.testing.net.MisbehavingServer`): one sends its status line and
headers, then trickles the body a byte every 50 ms; one trickles its
headers; one accepts and never answers. Each byte arrives well within the
timeout, so per-socket-operation timeouts alone never fire: before the
deadline, a trickled request ran until the server gave up (20 s in the
measurement), and a hub's worker was stuck meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_otlp import OtlpExporter
from obshub_webhook import WebhookExporter

import obshub
from obshub import http
from obshub.testing import make_trace, wait_for
from obshub.testing.net import MisbehavingServer, silent, trickle_body, trickle_headers

#: The client's timeout in these tests (seconds).
TIMEOUT = 0.5
#: How late after ``TIMEOUT`` a request may end.
SLACK = 0.5
BEHAVIOURS = {"trickled body": trickle_body, "trickled headers": trickle_headers, "silent": silent}


@pytest.fixture(params=sorted(BEHAVIOURS))
def raw_server(request: pytest.FixtureRequest) -> Iterator[MisbehavingServer]:
    with MisbehavingServer(BEHAVIOURS[request.param]) as server:
        yield server


def test_a_request_ends_within_its_timeout_whatever_the_server_does(
    raw_server: MisbehavingServer, kit: Any, figures: Any
) -> None:
    started = time.monotonic()
    with pytest.raises(obshub.ExportError) as caught:
        http.post(f"{raw_server.url}/hook", b"{}", timeout=TIMEOUT)
    took = time.monotonic() - started

    kit.report(
        figures,
        f"http_deadline_{raw_server.behaviour.__name__}",
        timeout_s=TIMEOUT,
        seconds=round(took, 3),
    )
    assert took < TIMEOUT + SLACK
    assert caught.value.retryable
    assert "deadline exceeded" in str(caught.value)
    assert f"after {TIMEOUT:g} s" in str(caught.value)


def _exporter(server: MisbehavingServer, **kwargs: Any) -> LangfuseExporter:
    settings: dict[str, Any] = {
        "public_key": "pk-lf-deadline",
        "secret_key": "sk-lf-deadline",
        "base_url": server.url,
        "timeout": TIMEOUT,
        "batch": {"max_size": 100, "interval": 0.5},
    }
    settings.update(kwargs)
    return LangfuseExporter(**settings)


def _record(hub: obshub.Hub, count: int) -> None:
    for i in range(count):
        with hub.span("step", type="tool_call", input={"i": i}):
            pass


def test_a_trickling_backend_does_not_hold_the_worker_and_the_batch_is_spooled(
    tmp_path: Path, kit: Any, figures: Any
) -> None:
    spans = 200
    with MisbehavingServer(trickle_body) as server:
        retry = {"max_attempts": 2, "initial_backoff": 0.01, "max_backoff": 0.01}
        hub = obshub.Hub(
            exporters=[_exporter(server, retry=retry, spool_dir=tmp_path / "spool")],
            service_name="deadline",
        )
        started = time.monotonic()
        try:
            _record(hub, spans)
            # 2 batches of 100, 2 attempts each: 4 timeouts if nothing is stuck.
            wait_for(
                lambda: kit.only_stats(hub).spooled == spans,
                timeout=4 * (TIMEOUT + SLACK) + kit.WAIT,
                message="the batches were never spooled: the worker is stuck",
            )
            took = kit.elapsed(started)
        finally:
            shutdown_started = time.monotonic()
            hub.shutdown(timeout=2.0)
            shutdown_took = kit.elapsed(shutdown_started)
        stats = kit.only_stats(hub)

    kit.report(
        figures,
        "http_deadline_spooled",
        spans=spans,
        timeout_s=TIMEOUT,
        spooled=stats.spooled,
        retried=stats.retried,
        dropped=stats.dropped,
        failed=stats.failed,
        seconds=took,
        shutdown_seconds=shutdown_took,
    )
    assert stats.spooled == spans
    assert stats.retried >= 1
    assert stats.dropped == 0
    assert shutdown_took < 2.0 + SLACK


def test_a_trickling_backend_without_a_spool_counts_every_span_failed_after_retries(
    kit: Any, figures: Any
) -> None:
    spans = 100
    with MisbehavingServer(trickle_body) as server:
        retry = {"max_attempts": 2, "initial_backoff": 0.01, "max_backoff": 0.01}
        hub = obshub.Hub(exporters=[_exporter(server, retry=retry)], service_name="deadline")
        started = time.monotonic()
        try:
            _record(hub, spans)
            wait_for(
                lambda: kit.only_stats(hub).failed == spans,
                timeout=4 * (TIMEOUT + SLACK) + kit.WAIT,
                message="the batches never failed: the worker is stuck",
            )
            took = kit.elapsed(started)
        finally:
            hub.shutdown(timeout=2.0)
        stats = kit.only_stats(hub)
        attempts = server.connections

    kit.report(
        figures,
        "http_deadline_failed",
        spans=spans,
        timeout_s=TIMEOUT,
        failed=stats.failed,
        retried=stats.retried,
        dropped=stats.dropped,
        requests=attempts,
        seconds=took,
    )
    assert stats.failed == spans
    assert stats.dropped == 0
    assert stats.retried >= 1
    assert attempts >= 2


def _langfuse(url: str) -> obshub.Exporter:
    return LangfuseExporter(
        public_key="pk-lf-deadline", secret_key="sk-lf-deadline", base_url=url, timeout=TIMEOUT
    )


def _otlp(url: str) -> obshub.Exporter:
    return OtlpExporter(endpoint=f"{url}/v1/traces", timeout=TIMEOUT)


def _webhook(url: str) -> obshub.Exporter:
    return WebhookExporter(url=f"{url}/hook", timeout=TIMEOUT)


@pytest.mark.parametrize("make", [_langfuse, _otlp, _webhook], ids=["langfuse", "otlp", "webhook"])
def test_every_http_exporter_gives_up_on_a_trickling_server_on_time(
    make: Any, kit: Any, figures: Any
) -> None:
    events = make_trace()
    with MisbehavingServer(trickle_body) as server:
        exporter = make(server.url)
        started = time.monotonic()
        with pytest.raises(obshub.ExportError) as caught:
            exporter.export(events)
        took = time.monotonic() - started
    kit.report(figures, f"http_deadline_{exporter.name}", timeout_s=TIMEOUT, seconds=round(took, 3))
    assert took < TIMEOUT + SLACK
    assert caught.value.retryable


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_has_its_own_deadline_watcher() -> None:
    # Trickled headers: only the watcher thread can cut those off.
    with MisbehavingServer(trickle_headers) as server:
        # The parent's watcher thread exists before the fork, and does not survive it.
        with pytest.raises(obshub.ExportError):
            http.post(f"{server.url}/p", b"{}", timeout=0.2)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child; reports through the pipe
            code = 1
            try:
                signal.alarm(20)
                os.close(read_fd)
                started = time.monotonic()
                try:
                    http.post(f"{server.url}/p", b"{}", timeout=TIMEOUT)
                except obshub.ExportError as exc:
                    took = time.monotonic() - started
                    os.write(write_fd, json.dumps([took, exc.retryable]).encode())
                    code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    took, retryable = json.loads(data)
    assert took < TIMEOUT + SLACK
    assert retryable


def test_a_tls_server_trickling_its_headers_is_cut_off_too(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    # OpenSSL's default trust store, which urllib3 loads, is this file while the test runs.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def tls_trickle_headers(conn: socket.socket, stop: threading.Event) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            trickle_headers(tls, stop)

    with MisbehavingServer(tls_trickle_headers) as server:
        url = server.url.replace("http://", "https://")
        started = time.monotonic()
        with pytest.raises(obshub.ExportError) as caught:
            http.post(f"{url}/p", b"{}", timeout=TIMEOUT)
        took = time.monotonic() - started
    assert took < TIMEOUT + SLACK
    assert caught.value.retryable
    assert "deadline exceeded" in str(caught.value)
