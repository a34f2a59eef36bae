"""``timeout`` is a deadline for the whole request: connect + send + read of the full body.

The servers here misbehave on purpose, on 127.0.0.1 only: one sends its
status line and headers, then trickles the body a byte at a time; one
trickles its headers; one accepts and never answers. Each byte arrives well
within the timeout, so per-socket-operation timeouts alone never fire.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter

import obshub
from obshub import http
from obshub.testing import wait_for

#: The client's timeout in these tests (seconds).
TIMEOUT = 0.5
#: How late after ``TIMEOUT`` a request may end.
SLACK = 0.5
#: A trickling server sends one byte this often.
DRIP = 0.05
#: A misbehaving server gives up after this long (the "before" figure's ceiling).
SERVER_LIMIT = 20.0

Behaviour = Callable[[socket.socket, threading.Event], None]


def _read_request(conn: socket.socket) -> None:
    """Read one request (headers and a ``Content-Length`` body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _drip(conn: socket.socket, data: bytes, stop: threading.Event) -> None:
    deadline = time.monotonic() + SERVER_LIMIT
    for byte in data:
        if stop.wait(DRIP) or time.monotonic() > deadline:
            return
        conn.sendall(bytes([byte]))


def trickle_body(conn: socket.socket, stop: threading.Event) -> None:
    """Status line and headers at once, then the body one byte per ``DRIP``."""
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
    _drip(conn, b"x" * 100_000, stop)


def trickle_headers(conn: socket.socket, stop: threading.Event) -> None:
    """The status line, then endless header lines one byte per ``DRIP``."""
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    _drip(conn, b"X-Slow: yes\r\n" * 10_000, stop)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Read the request, never answer."""
    _read_request(conn)
    stop.wait(SERVER_LIMIT)


class RawServer:
    """A TCP server on 127.0.0.1 that runs ``behaviour`` on each connection in a thread."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="raw-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> RawServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.behaviour(conn, self.stop)
            except OSError:
                return


BEHAVIOURS = {"trickled body": trickle_body, "trickled headers": trickle_headers, "silent": silent}


@pytest.fixture(params=sorted(BEHAVIOURS))
def raw_server(request: pytest.FixtureRequest) -> Iterator[RawServer]:
    with RawServer(BEHAVIOURS[request.param]) as server:
        yield server


def test_a_request_ends_within_its_timeout_whatever_the_server_does(
    raw_server: RawServer, kit: Any, figures: Any
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


def _exporter(server: RawServer, **kwargs: Any) -> LangfuseExporter:
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
    with RawServer(trickle_body) as server:
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
    with RawServer(trickle_body) as server:
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
