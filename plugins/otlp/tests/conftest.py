"""Fixtures: a local OTLP receiver per test, and hubs that send to it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from obshub_otlp import OtlpExporter
from obshub_otlp.testing import OtlpReceiver

import obshub
from obshub import http


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own proxy variables must not route test traffic (all loopback)."""
    for var in http.PROXY_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


#: Retries fast enough for tests, still exercising backoff.
FAST_RETRY = {"initial_backoff": 0.01, "max_backoff": 0.05}

MakeExporter = Callable[..., OtlpExporter]
MakeHub = Callable[..., obshub.Hub]


@pytest.fixture(autouse=True)
def _no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own OTEL_* variables must not leak into the tests."""
    for var in list(os.environ):
        if var.startswith(("OTEL_EXPORTER_OTLP_", "OTEL_RESOURCE_", "OTEL_SERVICE_")):
            monkeypatch.delenv(var)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server
    assert not server.server_errors()


@pytest.fixture
def make_exporter(receiver: OtlpReceiver) -> MakeExporter:
    """An exporter aimed at the receiver, with fast retries; keywords override."""

    def make(**kwargs: Any) -> OtlpExporter:
        settings: dict[str, Any] = {
            "endpoint": receiver.url,
            "retry": FAST_RETRY,
            "batch": {"max_size": 512, "interval": 60},
        }
        settings.update(kwargs)
        return OtlpExporter(**settings)

    return make


@pytest.fixture
def make_hub(make_exporter: MakeExporter) -> Iterator[MakeHub]:
    """A hub with one OTLP exporter (keywords go to the exporter); shut down after the test."""
    hubs: list[obshub.Hub] = []

    def make(**kwargs: Any) -> obshub.Hub:
        hub = obshub.Hub(exporters=[make_exporter(**kwargs)], service_name="support-bot")
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.shutdown(timeout=2)


@pytest.fixture
def stats() -> Callable[[obshub.Hub], obshub.ChannelStats]:
    """``stats(hub)``: the counters of the hub's only exporter."""

    def only(hub: obshub.Hub) -> obshub.ChannelStats:
        (channel,) = hub.stats().values()
        return channel

    return only
