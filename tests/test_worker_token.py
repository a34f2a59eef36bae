"""The worker token: one exporter worker runs Python at a time, never a hard dependency."""

from __future__ import annotations

import threading
import time
from typing import Any

import obshub
from obshub import _worker_token as worker_token


def test_hold_is_exclusive_and_released_gives_it_back() -> None:
    inside = threading.Event()
    leave = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with worker_token.hold():
            order.append("holder-in")
            inside.set()
            with worker_token.released():
                leave.wait(5)  # a network wait: the token is free meanwhile
            order.append("holder-out")

    thread = threading.Thread(target=holder)
    thread.start()
    assert inside.wait(5)
    with worker_token.hold():  # free while the holder waits in released()
        order.append("other")
    leave.set()
    thread.join(5)
    assert order == ["holder-in", "other", "holder-out"]


def test_a_worker_stuck_holding_the_token_delays_others_only_briefly() -> None:
    stuck = threading.Event()
    release = threading.Event()

    def stuck_holder() -> None:
        with worker_token.hold():
            stuck.set()
            release.wait(5)

    thread = threading.Thread(target=stuck_holder)
    thread.start()
    assert stuck.wait(5)
    started = time.monotonic()
    with worker_token.hold():
        waited = time.monotonic() - started
    release.set()
    thread.join(5)
    assert waited < worker_token.PATIENCE + 1.0


def test_an_exporter_blocking_outside_obshub_http_does_not_stop_another(
    hub_factory: Any,
) -> None:
    gate = threading.Event()

    class Blocking(obshub.Exporter):
        name = "blocking"

        def export(self, events: Any) -> None:
            gate.wait(10)  # holds the token: its I/O does not go through obshub.http

    healthy = obshub.MemoryExporter(instance_name="healthy")
    hub = hub_factory(exporters=[Blocking(realtime=True), healthy])
    try:
        for i in range(20):
            with hub.span(f"s{i}"):
                pass
        assert healthy.wait_for(20, timeout=10)
    finally:
        gate.set()
