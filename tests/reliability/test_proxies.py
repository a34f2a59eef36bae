"""Proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` and the ``proxy`` key.

Every peer is on 127.0.0.1: `obshub.testing.net.LoopbackProxy` tunnels
``CONNECT`` (``https://`` targets, here a loopback TLS server with a
certificate made for the test) and forwards absolute-form requests
(``http://`` targets, which is what urllib3 sends a proxy for them). Before
this, the variables were ignored: the proxy saw 0 of the requests.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_langfuse.testing import LangfuseStandIn
from obshub_otlp import OtlpExporter
from obshub_webhook import WebhookExporter
from structlog.testing import capture_logs

import obshub
from obshub import http
from obshub.testing import HttpReceiver, make_trace, unreachable_url, wait_for
from obshub.testing.net import LoopbackProxy

PROXY_USER = "proxy-user"
PROXY_PASSWORD = "pr0xy-PASSWORD-7"
FAST_RETRY = {"initial_backoff": 0.01, "max_backoff": 0.02, "max_attempts": 3}


@pytest.fixture
def proxy() -> Iterator[LoopbackProxy]:
    with LoopbackProxy() as running:
        yield running


@pytest.fixture
def guarded_proxy() -> Iterator[LoopbackProxy]:
    with LoopbackProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as running:
        yield running


def _langfuse(server: LangfuseStandIn, **kwargs: Any) -> LangfuseExporter:
    settings: dict[str, Any] = {
        "public_key": server.public_key,
        "secret_key": server.secret_key,
        "base_url": server.url,
        "batch": {"max_size": 50, "interval": 0.05},
        "retry": FAST_RETRY,
        "timeout": 5.0,
    }
    settings.update(kwargs)
    return LangfuseExporter(**settings)


def _record(hub: obshub.Hub, count: int) -> None:
    for i in range(count):
        with hub.span("step", type="tool_call", input={"i": i}):
            pass


# -- the environment -------------------------------------------------------------------------


def test_http_proxy_carries_every_request_to_an_http_backend(
    proxy: LoopbackProxy,
    server: LangfuseStandIn,
    monkeypatch: pytest.MonkeyPatch,
    kit: Any,
    figures: Any,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    hub = obshub.Hub(exporters=[_langfuse(server)], service_name="proxied")
    try:
        _record(hub, 200)
        assert hub.flush(kit.WAIT)
    finally:
        hub.shutdown(timeout=2.0)
    traces = server.requests("traces")
    # Trace posts only: the exporter also asks for its project id once (trace_url).
    through = [r for r in proxy.requests() if r.status == 200 and r.method == "POST"]
    kit.report(
        figures,
        "proxy_env_http",
        spans=200,
        received=len(server.observations()),
        backend_requests=len(traces),
        proxied_requests=len(through),
    )
    assert len(server.observations()) == 200
    assert len(through) == len(traces) > 0
    assert all(r.method == "POST" and r.target.startswith(server.url) for r in through)


class _TlsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TlsServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with self.server.lock:
            self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__(("127.0.0.1", 0), _TlsHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.lock = threading.Lock()
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def tls_server(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[_TlsServer]:
    cert, key = certificate
    # OpenSSL's default trust store, which urllib3 loads, is this file while the test runs.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = _TlsServer(cert, key)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_https_proxy_tunnels_requests_to_an_https_backend_with_connect(
    proxy: LoopbackProxy,
    tls_server: _TlsServer,
    monkeypatch: pytest.MonkeyPatch,
    kit: Any,
    figures: Any,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    exporter = WebhookExporter(url=f"{tls_server.url}/hook", timeout=5.0)
    for _ in range(3):
        exporter.export(make_trace())
    tunnels = [r for r in proxy.requests() if r.method == "CONNECT"]
    kit.report(
        figures,
        "proxy_env_https_connect",
        posts=3,
        received=len(tls_server.paths),
        tunnels=len(tunnels),
    )
    assert tls_server.paths == ["/hook"] * 3
    # One tunnel, kept alive across the three requests.
    assert [(r.target, r.status) for r in tunnels] == [
        (f"127.0.0.1:{tls_server.server_address[1]}", 200)
    ]


def test_no_proxy_sends_listed_hosts_direct(
    proxy: LoopbackProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    with HttpReceiver() as receiver:
        WebhookExporter(url=f"{receiver.url}/hook").export(make_trace())
        assert len(receiver.requests()) == 1
    assert proxy.requests() == []


# -- the proxy key -------------------------------------------------------------------------------


def _otlp(url: str, **kwargs: Any) -> obshub.Exporter:
    return OtlpExporter(endpoint=f"{url}/v1/traces", timeout=5.0, **kwargs)


def _webhook(url: str, **kwargs: Any) -> obshub.Exporter:
    return WebhookExporter(url=f"{url}/hook", timeout=5.0, **kwargs)


def _langfuse_at(url: str, **kwargs: Any) -> obshub.Exporter:
    return LangfuseExporter(public_key="pk-lf-1", secret_key="sk-lf-1", base_url=url, **kwargs)


EXPORTERS = pytest.mark.parametrize(
    "make", [_langfuse_at, _otlp, _webhook], ids=["langfuse", "otlp", "webhook"]
)


@EXPORTERS
def test_the_proxy_key_wins_over_the_environment(
    make: Any, proxy: LoopbackProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", unreachable_url())
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with HttpReceiver() as receiver:
        make(receiver.url, proxy=proxy.url).export(make_trace())
        make(receiver.url, proxy="").export(make_trace())
        posts = [r for r in receiver.requests() if r.method == "POST"]
        assert len(posts) == 2
        (through,) = [r for r in proxy.requests() if r.method == "POST"]
        assert through.status == 200
        assert through.target.startswith(receiver.url)


@EXPORTERS
def test_proxy_credentials_reach_the_proxy_and_nowhere_else(
    make: Any, guarded_proxy: LoopbackProxy
) -> None:
    with HttpReceiver() as receiver, capture_logs() as logs:
        exporter = make(receiver.url, proxy=guarded_proxy.url_with_credentials)
        exporter.export(make_trace())
        result = exporter.check()
        shown = [repr(exporter), result.message, repr(result.details), repr(logs)]
    first = guarded_proxy.requests()[0]
    assert first.proxy_authorization == http.basic_auth(PROXY_USER, PROXY_PASSWORD)
    assert first.status == 200
    if make is not _webhook:  # the example webhook's check() reports no details
        shown_proxy = result.details["proxy"]
        assert shown_proxy == f"http://{PROXY_USER}:***@127.0.0.1:{guarded_proxy.port}"
    for text in shown:
        assert PROXY_PASSWORD not in text


def test_a_proxy_refusing_the_credentials_never_shows_them(guarded_proxy: LoopbackProxy) -> None:
    url = guarded_proxy.url_with_credentials.replace(PROXY_PASSWORD, "wr0ng-PASSWORD")
    with HttpReceiver() as receiver, capture_logs() as logs:
        exporter = WebhookExporter(url=f"{receiver.url}/hook", proxy=url)
        with pytest.raises(obshub.ExportError) as caught:
            exporter.export(make_trace())
    assert guarded_proxy.requests()[0].status == 407
    assert "407" in str(caught.value)
    for text in (str(caught.value), repr(logs), repr(exporter)):
        assert "wr0ng-PASSWORD" not in text


# -- a proxy that fails ----------------------------------------------------------------------


def test_a_dead_proxy_is_a_retryable_error_and_the_batch_is_retried_then_spooled(
    server: LangfuseStandIn, tmp_path: Path, kit: Any, figures: Any
) -> None:
    dead = unreachable_url()
    with pytest.raises(obshub.ExportError) as caught:
        http.post(f"{server.url}/x", b"{}", proxy=dead, timeout=2)
    assert caught.value.retryable
    assert "proxy" in str(caught.value)

    hub = obshub.Hub(
        exporters=[_langfuse(server, proxy=dead, spool_dir=tmp_path / "spool")],
        service_name="proxied",
    )
    try:
        _record(hub, 100)
        wait_for(lambda: kit.only_stats(hub).spooled == 100, timeout=kit.WAIT)
    finally:
        hub.shutdown(timeout=2.0)
    stats = kit.only_stats(hub)
    kit.report(
        figures,
        "proxy_dead",
        spans=100,
        retried=stats.retried,
        spooled=stats.spooled,
        dropped=stats.dropped,
        failed=stats.failed,
        received=len(server.observations()),
    )
    assert stats.retried > 0
    assert (stats.spooled, stats.dropped, stats.failed) == (100, 0, 0)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_proxy_that_never_answers_is_cut_off_by_the_deadline(scheme: str) -> None:
    with LoopbackProxy(stall=True) as stalled:
        started = time.monotonic()
        with pytest.raises(obshub.ExportError) as caught:
            http.post(f"{scheme}://127.0.0.1:9/x", b"{}", proxy=stalled.url, timeout=0.3)
        took = time.monotonic() - started
    assert took < 0.3 + 0.4
    assert caught.value.retryable
    assert "deadline exceeded" in str(caught.value)
