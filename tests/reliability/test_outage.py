"""Outages: a backend that is down (with a spool, then recovery) or stalled (queue overflow)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse.testing import Fault, IncomingRequest, LangfuseStandIn

from obshub._delivery.spool import read_records
from obshub.spans import SpanEvent
from obshub.testing import wait_for


def down_with_503(request: IncomingRequest) -> Fault | None:
    return Fault.error(503)


def spooled_span_ids(spool_dir: Path) -> list[str]:
    ids: list[str] = []
    for path in sorted(spool_dir.rglob("seg-*")):
        items, _ = read_records(path)
        ids.extend(i.span.span_id for i in items if isinstance(i, SpanEvent))
    return ids


@pytest.mark.parametrize("outage", ["503", "stopped"])
def test_a_full_outage_with_a_spool_loses_nothing_once_the_backend_is_back(
    outage: str, server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    if outage == "503":
        server.fault_function = down_with_503
        base_url = server.url
    else:
        # A server that was stopped: connections are refused.
        gone = LangfuseStandIn().start()
        base_url = gone.url
        gone.stop()
    retry = {"initial_backoff": 0.01, "max_backoff": 0.02, "max_attempts": 3}
    hub = hubs(base_url=base_url, spool_dir=str(spool_dir), retry=retry)
    recorder = kit.Recorder(hub)
    started = time.monotonic()
    recorder.record_in_threads(threads=2, per_thread=150, name="outage")
    assert not hub.flush(kit.WAIT)
    hub.shutdown(timeout=kit.WAIT)
    stats = kit.only_stats(hub)
    on_disk = spooled_span_ids(spool_dir)
    outage_seconds = kit.elapsed(started)
    assert (stats.dropped, stats.failed, stats.exported) == (0, 0, 0)
    assert sorted(set(on_disk)) == sorted(recorder.sent)

    # The backend is back; a new process (here a new hub) starts on the same spool_dir
    # and sends the spool in the background, without anyone calling replay().
    server.fault_function = None
    started = time.monotonic()
    hubs(server, spool_dir=str(spool_dir))
    server.wait_for_observations(len(recorder.sent), timeout=kit.WAIT)
    wait_for(lambda: not list(spool_dir.rglob("seg-*")), message="spool not emptied")
    recovery_seconds = kit.elapsed(started)
    delivered = kit.delivery_figures(server, recorder.sent)
    kit.report(
        figures,
        f"outage_{outage}_then_restart",
        **delivered,
        spooled=stats.spooled,
        retried=stats.retried,
        dropped=stats.dropped,
        failed=stats.failed,
        max_stall_ms=recorder.max_stall_ms,
        outage_seconds=outage_seconds,
        recovery_seconds=recovery_seconds,
    )
    assert delivered["lost"] == 0


def test_a_backend_back_from_an_outage_gets_the_spool_without_a_restart(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    server.fault_function = down_with_503
    retry = {"initial_backoff": 0.01, "max_backoff": 0.02, "max_attempts": 3}
    hub = hubs(spool_dir=str(spool_dir), retry=retry)
    recorder = kit.Recorder(hub)
    recorder.record(200, "during-outage")
    assert not hub.flush(kit.WAIT)
    assert kit.only_stats(hub).spooled == 200

    server.fault_function = None
    started = time.monotonic()
    recorder.record(1, "after-outage")  # the first success wakes the replay thread
    server.wait_for_observations(201, timeout=kit.WAIT)
    took = kit.elapsed(started)
    wait_for(lambda: not list(spool_dir.rglob("seg-*")), message="spool not emptied")
    stats = kit.only_stats(hub)
    delivered = kit.delivery_figures(server, recorder.sent)
    kit.report(
        figures,
        "outage_503_then_recovery_same_process",
        **delivered,
        spooled=stats.spooled,
        replayed=stats.replayed,
        seconds_to_drain_spool=took,
    )
    assert delivered["lost"] == 0
    assert took < 5.0  # not REPLAY_INTERVAL (30 s)


def test_overflow_without_a_spool_never_blocks_and_counts_every_drop(
    server: LangfuseStandIn, hubs: Any, stall: Any, kit: Any, figures: Any
) -> None:
    stall.install(server)
    hub = hubs(max_queue_size=100, batch={"max_size": 10, "interval": 60}, timeout=30)
    recorder = kit.Recorder(hub)
    recorder.record(10, "first")
    assert stall.first.wait(kit.WAIT)  # the first batch is stuck in the backend
    started = time.monotonic()
    recorder.record(990, "stalled")
    record_seconds = kit.elapsed(started)
    # Recording finished while the backend still held the first batch: it never
    # waited on the network (the stall itself is reported below, not asserted).
    assert not stall.released.is_set()
    stats = kit.only_stats(hub)
    sent = len(recorder.sent)
    in_flight = 10
    assert stats.exported == 0
    assert stats.queued == 100 + in_flight  # queued counts the batch in flight too
    assert stats.dropped == sent - stats.queued

    stall.release()
    flushed = hub.flush(kit.WAIT)
    assert not flushed, "flush() must not say all was delivered after drops"
    assert (flushed.dropped, flushed.timed_out, flushed.pending) == (stats.dropped, False, 0)
    server.wait_for_observations(sent - stats.dropped, timeout=kit.WAIT)
    after = kit.only_stats(hub)
    delivered = kit.delivery_figures(server, recorder.sent)
    kit.report(
        figures,
        "overflow_no_spool",
        **delivered,
        max_queue_size=100,
        queued_when_stalled=stats.queued,
        dropped=after.dropped,
        exported=after.exported,
        max_stall_ms=recorder.max_stall_ms,
        record_990_seconds=record_seconds,
    )
    # Every span is accounted for: delivered, or counted as dropped. Nothing else.
    assert delivered["received"] + after.dropped == sent
    assert after.dropped == stats.dropped
