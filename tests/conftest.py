"""Shared fixtures of the core test suite.

Every hub a test builds goes through ``hub_factory``, the kit's
``obshub_hub_factory`` fixture (`obshub.testing.HubFactory`), so that it is
always shut down, and every gate (a ``threading.Event`` an exporter blocks on)
is opened at teardown, before the hubs are shut down, so no worker thread is
left hanging. Rate limits of repeated warnings are reset before each test with
`obshub.testing.reset_rate_limits`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

import obshub
from obshub import http
from obshub.testing import HubFactory, reset_rate_limits


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own proxy variables must not route test traffic (all loopback)."""
    for var in http.PROXY_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


#: Generous upper bound for waits that normally take milliseconds.
WAIT = 5.0


@pytest.fixture
def hub_factory(obshub_hub_factory: HubFactory) -> HubFactory:
    """The kit's `obshub.testing.HubFactory` (fixture ``obshub_hub_factory``), by a short name.

    ``hub_factory.memory()`` is a `MemoryHub`: ``hub, recorded = hub_factory.memory()``,
    with a `RecordingExporter` (instance name ``recording``).
    """
    return obshub_hub_factory


@pytest.fixture
def gates(hub_factory: HubFactory) -> Iterator[Callable[[], threading.Event]]:
    """Make events that exporters block on; all are set before hubs shut down.

    Depends on ``hub_factory`` so that it is torn down first.
    """
    made: list[threading.Event] = []

    def make() -> threading.Event:
        event = threading.Event()
        made.append(event)
        return event

    yield make
    for event in made:
        event.set()


class GatedExporter(obshub.Exporter):
    """Blocks in export() until its gate opens; ``entered`` is set on each call."""

    name = "gated"

    def __init__(self, *, gate: threading.Event, **common: Any) -> None:
        super().__init__(**common)
        self.gate = gate
        self.entered = threading.Event()
        self.received: list[obshub.SpanEvent] = []
        self._lock = threading.Lock()

    def export(self, events: Sequence[obshub.SpanEvent]) -> None:
        self.entered.set()
        self.gate.wait()
        with self._lock:
            self.received.extend(events)


@pytest.fixture
def gated_exporter(
    gates: Callable[[], threading.Event],
) -> Callable[..., GatedExporter]:
    """``gated_exporter(**common)`` builds an exporter blocked until its ``gate`` is set."""

    def make(**common: Any) -> GatedExporter:
        common.setdefault("realtime", True)
        return GatedExporter(gate=gates(), **common)

    return make


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Rate-limited warnings logged by an earlier test must not hide this test's."""
    reset_rate_limits()
