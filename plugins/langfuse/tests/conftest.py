"""Fixtures: a Langfuse stand-in per test, and hubs that send to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_langfuse.testing import LangfuseStandIn

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
#: Options every test hub uses, so each test can check they reach every span.
OPTIONS = {"environment": "staging", "release": "9f1c2ab", "version": "1.4.2"}

MakeExporter = Callable[..., LangfuseExporter]
MakeHub = Callable[..., obshub.Hub]


@pytest.fixture(autouse=True)
def _no_langfuse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own LANGFUSE_* variables must not leak into the tests."""
    for var in (
        "LANGFUSE_PUBLIC_KEY",
        "LANGFUSE_SECRET_KEY",
        "LANGFUSE_BASE_URL",
        "LANGFUSE_HOST",
        "LANGFUSE_TRACING_ENVIRONMENT",
        "LANGFUSE_RELEASE",
        # The SDK's switches (obshub_langfuse.settings.SWITCHES).
        "LANGFUSE_TRACING_ENABLED",
        "LANGFUSE_SAMPLE_RATE",
        "LANGFUSE_DEBUG",
        "LANGFUSE_FLUSH_AT",
        "LANGFUSE_FLUSH_INTERVAL",
        "LANGFUSE_TIMEOUT",
        "LANGFUSE_MEDIA_UPLOAD_ENABLED",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server() -> Iterator[LangfuseStandIn]:
    with LangfuseStandIn() as standin:
        yield standin
    assert not standin.server_errors()


@pytest.fixture
def make_exporter(server: LangfuseStandIn) -> MakeExporter:
    """An exporter aimed at the stand-in, with fast retries; keywords override."""

    def make(**kwargs: Any) -> LangfuseExporter:
        settings: dict[str, Any] = {
            "public_key": server.public_key,
            "secret_key": server.secret_key,
            "base_url": server.url,
            "options": OPTIONS,
            "retry": FAST_RETRY,
            "batch": {"max_size": 512, "interval": 60},
        }
        settings.update(kwargs)
        return LangfuseExporter(**settings)

    return make


@pytest.fixture
def make_hub(make_exporter: MakeExporter) -> Iterator[MakeHub]:
    """A hub with one Langfuse exporter (keywords go to the exporter); shut down after the test."""
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
