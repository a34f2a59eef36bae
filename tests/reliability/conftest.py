"""Fixtures of the fault-injection suite: a Langfuse stand-in, hubs aimed at it, figures.

Every test measures what it did (spans sent, received, lost, duplicated, the
longest recording call) and stores it in the session-wide ``figures`` dict. Set
``OBSHUB_RELIABILITY_FIGURES=/some/path.json`` to have them written there at
the end of the session (``docs/reliability.md`` quotes them); nothing is
written otherwise.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_langfuse.testing import Fault, IncomingRequest, LangfuseStandIn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import obshub

#: Retries fast enough for tests; enough attempts that a 30 % fault rate never exhausts them.
FAST_RETRY = {"initial_backoff": 0.01, "max_backoff": 0.05, "max_attempts": 20, "max_elapsed": 30}
#: Generous bound for waits that normally take milliseconds.
WAIT = 10.0
FIGURES_ENV = "OBSHUB_RELIABILITY_FIGURES"

Figures = dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    """Measured figures per test; written to ``$OBSHUB_RELIABILITY_FIGURES`` at session end."""
    collected: Figures = {}
    yield collected
    path = os.environ.get(FIGURES_ENV)
    if path and collected:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(dict(sorted(collected.items())), fh, indent=2, sort_keys=True)
            fh.write("\n")


def report(figures: Figures, name: str, **values: Any) -> None:
    """Store and print one test's figures."""
    figures[name] = values
    print(f"\n[reliability] {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


@pytest.fixture(autouse=True)
def _no_langfuse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own LANGFUSE_* / OBSHUB_* variables must not leak into the tests."""
    for var in (
        "LANGFUSE_PUBLIC_KEY",
        "LANGFUSE_SECRET_KEY",
        "LANGFUSE_BASE_URL",
        "LANGFUSE_HOST",
        "LANGFUSE_TRACING_ENVIRONMENT",
        "LANGFUSE_RELEASE",
        "OBSHUB_SHUTDOWN_TIMEOUT",
        "OBSHUB_CONFIG",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server() -> Iterator[LangfuseStandIn]:
    """A Langfuse stand-in on 127.0.0.1 (stopped after the hubs are shut down)."""
    with LangfuseStandIn() as standin:
        yield standin
    assert not standin.server_errors()


class Hubs:
    """Builds hubs (and Langfuse exporters aimed at a stand-in); shuts them all down."""

    def __init__(self, server: LangfuseStandIn) -> None:
        self.server = server
        self.built: list[obshub.Hub] = []

    def exporter(self, server: LangfuseStandIn | None = None, **kwargs: Any) -> LangfuseExporter:
        target = server or self.server
        settings: dict[str, Any] = {
            "public_key": target.public_key,
            "secret_key": target.secret_key,
            "base_url": target.url,
            "retry": FAST_RETRY,
            "batch": {"max_size": 50, "interval": 0.05},
            "timeout": 5.0,
        }
        settings.update(kwargs)
        return LangfuseExporter(**settings)

    def __call__(self, server: LangfuseStandIn | None = None, **kwargs: Any) -> obshub.Hub:
        """A hub with one Langfuse exporter (keywords go to the exporter)."""
        hub = obshub.Hub(exporters=[self.exporter(server, **kwargs)], service_name="reliability")
        self.built.append(hub)
        return hub

    def shutdown(self) -> None:
        for hub in self.built:
            hub.shutdown(timeout=2.0)


@pytest.fixture
def hubs(server: LangfuseStandIn) -> Iterator[Hubs]:
    factory = Hubs(server)
    yield factory
    factory.shutdown()


class Stall:
    """A backend that hangs: each matching request blocks in the server until released.

    ``install(server)`` makes every request to the traces path wait (at most
    ``limit`` seconds) before it is answered normally; ``release()`` lets them
    all through. ``entered`` counts the requests that arrived while stalled.
    """

    def __init__(self, limit: float = 60.0) -> None:
        self.limit = limit
        self.released = threading.Event()
        self.entered = 0
        self.first = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, request: IncomingRequest) -> Fault | None:
        if not request.path.endswith("/traces"):
            return None
        with self._lock:
            self.entered += 1
        self.first.set()
        self.released.wait(self.limit)
        return None

    def install(self, server: LangfuseStandIn) -> Stall:
        server.fault_function = self
        return self

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def stall(hubs: Hubs) -> Iterator[Stall]:
    """A :class:`Stall`, released at teardown before the hubs are shut down."""
    hung = Stall()
    yield hung
    hung.release()


class Recorder:
    """Records spans and measures the longest recording call (the app-thread stall)."""

    def __init__(self, hub: obshub.Hub) -> None:
        self.hub = hub
        self.sent: list[str] = []
        self.max_stall = 0.0
        self._lock = threading.Lock()

    def record(self, count: int, name: str = "step", payload: Any = None) -> list[str]:
        ids: list[str] = []
        worst = 0.0
        span_ = self.hub.span
        for i in range(count):
            started = time.perf_counter()
            with span_(name, type="tool_call", input=payload or {"i": i}) as span:
                pass
            took = time.perf_counter() - started
            worst = max(worst, took)
            ids.append(span.span_id)
        with self._lock:
            self.sent.extend(ids)
            self.max_stall = max(self.max_stall, worst)
        return ids

    def record_in_threads(self, threads: int, per_thread: int, name: str = "step") -> None:
        start = threading.Barrier(threads)
        errors: list[BaseException] = []

        def run(k: int) -> None:
            try:
                start.wait(WAIT)
                self.record(per_thread, f"{name}-{k}")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(WAIT * 3)
        assert not errors, errors
        assert not any(w.is_alive() for w in workers)

    @property
    def max_stall_ms(self) -> float:
        return round(self.max_stall * 1000, 3)


def accepted_span_ids(server: LangfuseStandIn) -> Counter[str]:
    """How many times the server accepted each span id (from the bodies it answered 200)."""
    counts: Counter[str] = Counter()
    for request in server.requests("traces"):
        if request.status != 200:
            continue
        body = request.body
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest.FromString(body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                counts.update(span.span_id.hex() for span in scope_spans.spans)
    return counts


def delivery_figures(server: LangfuseStandIn, sent: list[str]) -> dict[str, Any]:
    """sent / received / lost / duplicated, from what the server accepted."""
    accepted = accepted_span_ids(server)
    unique = set(accepted) & set(sent)
    return {
        "sent": len(sent),
        "received": len(unique),
        "lost": len(set(sent) - unique),
        "duplicates": sum(accepted[i] - 1 for i in unique),
    }


def only_stats(hub: obshub.Hub) -> obshub.ChannelStats:
    (stats,) = hub.stats().values()
    return stats


def elapsed(since: float) -> float:
    return round(time.monotonic() - since, 3)


@pytest.fixture
def kit() -> Any:
    """This module: its helpers (``kit.Recorder``, ``kit.report``, ...) for the tests.

    With ``--import-mode=importlib`` a test module cannot import its conftest by
    name, so the helpers travel as a fixture.
    """
    return sys.modules[__name__]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key
