"""Nothing lost silently: spool replays, restarts, deadlines, full disks, poison data, bursts.

Each test plays a user who does the hostile thing and then counts every span:
received by the server, on disk, or counted as lost in ``stats()`` — and checks
that the three add up.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse.testing import Fault, IncomingRequest, LangfuseStandIn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import obshub
from obshub._delivery import spool as spool_module
from obshub._delivery.spool import DEAD_LETTER_FILE, read_records
from obshub.spans import SpanEvent
from obshub.testing import wait_for

#: Retries that give up fast: a down backend sends batches to the spool quickly.
GIVE_UP_FAST = {"initial_backoff": 0.01, "max_backoff": 0.02, "max_attempts": 2}


def down_with_503(request: IncomingRequest) -> Fault | None:
    return Fault.error(503)


def slow_traces(seconds: float) -> Any:
    def fault(request: IncomingRequest) -> Fault | None:
        return Fault.slow(seconds) if request.path.endswith("/traces") else None

    return fault


def spooled_ids(spool_dir: Path) -> list[str]:
    """Span ids in every spool segment (open, closed or claimed) under ``spool_dir``."""
    ids: list[str] = []
    for path in sorted(spool_dir.rglob("seg-*")):
        items, _ = read_records(path)
        ids.extend(i.span.span_id for i in items if isinstance(i, SpanEvent))
    return ids


def no_replay_running() -> bool:
    return not any(t.name.endswith("-replay") and t.is_alive() for t in threading.enumerate())


def spool_everything(hubs: Any, kit: Any, server: LangfuseStandIn, spool_dir: Path, n: int) -> Any:
    """Record ``n`` spans while the backend answers 503; all of them end up on disk."""
    server.fault_function = down_with_503
    hub = hubs(spool_dir=str(spool_dir), retry=GIVE_UP_FAST, batch={"max_size": 100})
    recorder = kit.Recorder(hub)
    recorder.record(n, "spooled")
    hub.shutdown(timeout=kit.WAIT)
    assert len(set(spooled_ids(spool_dir))) == n
    server.clear()  # count only what the next hub sends
    return recorder


# -- 1. shutdown during a replay ------------------------------------------------------------


def test_a_shutdown_during_a_spool_replay_keeps_every_span_not_yet_sent(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    recorder = spool_everything(hubs, kit, server, spool_dir, 2000)

    # A new process on the same spool_dir, a slow backend, and a short shutdown.
    server.fault_function = slow_traces(0.2)
    hub = hubs(spool_dir=str(spool_dir), batch={"max_size": 50, "interval": 0.05})
    server.wait_for_requests(2, path="traces", timeout=kit.WAIT)
    started = time.monotonic()
    hub.shutdown(timeout=1.0)
    shutdown_s = kit.elapsed(started)
    assert wait_for(no_replay_running, timeout=kit.WAIT)
    server.fault_function = None

    received = set(kit.accepted_span_ids(server))
    on_disk = set(spooled_ids(spool_dir))
    lost = set(recorder.sent) - received - on_disk
    kit.report(
        figures,
        "shutdown_during_replay",
        spooled=2000,
        received=len(received & set(recorder.sent)),
        on_disk=len(on_disk),
        lost=len(lost),
        shutdown_s=shutdown_s,
    )
    assert not lost, f"{len(lost)} spooled spans vanished during the replay"
    assert shutdown_s < 1.0 + 1.5


# -- 2. restart loops with the backend down ---------------------------------------------------


def test_short_runs_on_one_spool_while_the_backend_is_down_keep_every_span(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    server.fault_function = down_with_503
    sent: list[str] = []
    on_disk_after: list[int] = []
    for run in range(6):
        # A cron job or CLI tool: start, record, exit; the backend never answers.
        hub = hubs(spool_dir=str(spool_dir), retry=GIVE_UP_FAST, batch={"max_size": 100})
        sent += kit.Recorder(hub).record(400, f"run-{run}")
        hub.shutdown(timeout=1.0)
        assert wait_for(no_replay_running, timeout=kit.WAIT)
        on_disk_after.append(len(set(spooled_ids(spool_dir))))
    kit.report(figures, "restart_loop", sent=len(sent), on_disk_after_each_run=on_disk_after)
    assert on_disk_after == [400 * (run + 1) for run in range(6)]
    stats = kit.only_stats(hubs.built[-1])
    assert (stats.dropped, stats.failed, stats.evicted) == (0, 0, 0)

    server.fault_function = None
    hubs(spool_dir=str(spool_dir))
    assert wait_for(lambda: set(sent) <= set(kit.accepted_span_ids(server)), timeout=kit.WAIT)


# -- 3. every timeout is a deadline -----------------------------------------------------------


def test_replay_and_shutdown_return_within_their_timeouts_while_a_replay_runs(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    recorder = spool_everything(hubs, kit, server, spool_dir, 600)
    server.fault_function = slow_traces(0.3)
    hub = hubs(spool_dir=str(spool_dir), batch={"max_size": 50, "interval": 0.05})
    server.wait_for_requests(1, path="traces", timeout=kit.WAIT)  # start-up replay runs

    started = time.monotonic()
    hub.replay(timeout=0.5)
    replay_s = kit.elapsed(started)
    started = time.monotonic()
    hub.shutdown(timeout=0.5)
    shutdown_s = kit.elapsed(started)
    assert wait_for(no_replay_running, timeout=kit.WAIT)
    server.fault_function = None
    lost = set(recorder.sent) - set(kit.accepted_span_ids(server)) - set(spooled_ids(spool_dir))
    kit.report(figures, "deadlines", replay_s=replay_s, shutdown_s=shutdown_s, lost=len(lost))
    assert replay_s < 0.5 + 1.0
    assert shutdown_s < 0.5 + 1.0
    assert not lost


# -- 4. a full disk ---------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _check_disk_accounting(spool_dir: Path, hub: obshub.Hub, sent: list[str]) -> dict[str, int]:
    readable = spooled_ids(spool_dir)
    stats = next(iter(hub.stats().values()))
    assert len(readable) == len(set(readable)), "a span was spooled twice"
    assert stats.spooled == len(readable), "spooled must mean readable on disk"
    assert stats.dropped == len(sent) - len(readable), "dropped must mean gone"
    return {"sent": len(sent), "spooled": stats.spooled, "dropped": stats.dropped}


def test_a_full_disk_never_leaves_a_spooled_span_unreadable(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any, tiny_disk: Path
) -> None:
    server.fault_function = down_with_503
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * 400_000)  # someone else's file on the same small disk
    spool_dir = tiny_disk / "spool"
    hub = hubs(spool_dir=str(spool_dir), retry=GIVE_UP_FAST, batch={"max_size": 100})
    payload = {"text": "x" * 600}
    recorder = kit.Recorder(hub)
    recorder.record(1500, "disk", payload=payload)  # ~1.2 MB for ~0.6 MB of free space
    hub.flush(kit.WAIT)
    full = kit.only_stats(hub)
    assert full.dropped > 0, "the disk never filled up"
    filler.unlink()  # space frees up: later appends must start clean
    recorder.record(300, "after", payload=payload)
    hub.shutdown(timeout=kit.WAIT)
    found = _check_disk_accounting(spool_dir, hub, recorder.sent)
    kit.report(figures, "full_disk_tmpfs", **found)
    for path in spool_dir.rglob("seg-*"):
        _, bad = read_records(path)
        assert bad == 0, f"{path.name} has {bad} unreadable lines"
    after = set(spooled_ids(spool_dir)) & set(recorder.sent[1500:])
    assert len(after) == 300, "appends after the disk freed up were lost"


def test_a_refused_write_is_cut_back_so_counts_match_what_is_readable(
    monkeypatch: pytest.MonkeyPatch, hub_factory: Any, tmp_path: Path, figures: Any, kit: Any
) -> None:
    real_write = os.write
    calls = {"n": 0}

    def write_half_then_enospc(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] % 3 == 0:  # every third append: part of it lands, then the disk is full
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(spool_module.os, "write", write_half_then_enospc)
    exporter = _Down(spool_dir=str(tmp_path / "spool"), batch={"max_size": 25, "interval": 60})
    hub = hub_factory(exporters=[exporter])
    sent = []
    for i in range(300):
        with hub.span(f"s{i}") as span:
            pass
        sent.append(span.span_id)
    hub.shutdown(timeout=kit.WAIT)
    monkeypatch.setattr(spool_module.os, "write", real_write)
    found = _check_disk_accounting(tmp_path / "spool", hub, sent)
    kit.report(figures, "full_disk_injected", **found)
    assert found["dropped"] > 0
    assert found["spooled"] > 0


class _Down(obshub.Exporter):
    """A backend that is always down (retryable), so every batch is spooled."""

    name = "down"

    def export(self, events: Any) -> None:
        raise obshub.ExportError("503", retryable=True, status=503)

    def __init__(self, **common: Any) -> None:
        common.setdefault("retry", {"max_attempts": 1})
        super().__init__(**common)


# -- 6. one bad span does not lose its batch --------------------------------------------------


def _span_names(request: IncomingRequest) -> list[str]:
    body = request.body
    if request.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    message = ExportTraceServiceRequest.FromString(body)
    return [
        span.name
        for resource in message.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def refuse_poison(request: IncomingRequest) -> Fault | None:
    """Like a server whose validation refuses the whole request for one bad span."""
    if request.path.endswith("/traces") and any(
        n.startswith("poison") for n in _span_names(request)
    ):
        return Fault.error(400)
    return None


def test_poison_spans_are_isolated_and_dead_lettered_and_the_rest_delivered(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    server.fault_function = refuse_poison
    hub = hubs(spool_dir=str(spool_dir), batch={"max_size": 1000, "interval": 60})
    good: list[str] = []
    poison: list[str] = []
    for i in range(1000):
        name = f"poison-{i}" if i % 50 == 7 else f"good-{i}"
        with hub.span(name) as span:
            pass
        (poison if name.startswith("poison") else good).append(span.span_id)
    flushed = hub.flush(kit.WAIT)
    stats = kit.only_stats(hub)
    received = set(kit.accepted_span_ids(server))
    requests = len(server.requests("traces"))
    dead = [
        json.loads(line)
        for line in (spool_dir / f"default.{hub.exporters()[0].instance_name}" / DEAD_LETTER_FILE)
        .read_text()
        .splitlines()
    ]
    kit.report(
        figures,
        "poison_batch",
        sent=1000,
        poison=len(poison),
        delivered=len(received & set(good)),
        rejected=stats.rejected,
        dead_lettered=len(dead),
        requests=requests,
    )
    assert received >= set(good), "good spans were lost with the bad ones"
    assert not received & set(poison)
    assert (stats.rejected, stats.failed, flushed.rejected) == (20, 0, 20)
    assert not flushed
    assert sorted(d["span"]["span_id"] for d in dead) == sorted(poison)
    assert all(d["rejected"]["status"] == 400 for d in dead)
    assert all("HTTP 400" in d["rejected"]["reason"] for d in dead)
    # A dead-letter file can be sent again once the problem is fixed.
    items, bad = read_records(
        spool_dir / f"default.{hub.exporters()[0].instance_name}" / DEAD_LETTER_FILE
    )
    assert (len(items), bad) == (20, 0)


def test_without_a_spool_rejected_spans_are_counted_and_logged_with_the_reason(
    server: LangfuseStandIn, hubs: Any, kit: Any
) -> None:
    from structlog.testing import capture_logs

    server.fault_function = refuse_poison
    hub = hubs(batch={"max_size": 100, "interval": 60})
    with capture_logs() as logs:
        for i in range(100):
            with hub.span("poison" if i == 3 else f"good-{i}"):
                pass
        flushed = hub.flush(kit.WAIT)
    assert (flushed.rejected, kit.only_stats(hub).exported) == (1, 99)
    (entry,) = [e for e in logs if e["event"] == "export_rejected"]
    assert (entry["status"], entry["count"], entry["dead_letter"]) == (400, 1, None)


# -- 7. flush() tells the truth ---------------------------------------------------------------


def test_flush_is_falsy_and_says_what_happened_after_drops_and_failures(
    server: LangfuseStandIn, hubs: Any, kit: Any, stall: Any
) -> None:
    stall.install(server)
    hub = hubs(max_queue_size=10, batch={"max_size": 5, "interval": 60})
    recorder = kit.Recorder(hub)
    recorder.record(5, "first")
    assert stall.first.wait(kit.WAIT)
    recorder.record(30, "more")  # 10 queued, 20 dropped
    stall.release()
    flushed = hub.flush(kit.WAIT)
    assert not flushed
    assert flushed.dropped == 20
    assert flushed.exporters["default/langfuse"].dropped == 20
    assert "dropped=20" in repr(flushed)

    server.fault_function = lambda request: Fault.error(404)
    recorder.record(3, "failing")
    flushed = hub.flush(kit.WAIT)
    assert (bool(flushed), flushed.failed, flushed.dropped) == (False, 3, 0)

    server.fault_function = None
    recorder.record(3, "fine")
    assert hub.flush(kit.WAIT), "everything since the last flush was delivered"


def test_flush_that_times_out_is_falsy_and_counts_what_is_pending(
    server: LangfuseStandIn, hubs: Any, kit: Any, stall: Any
) -> None:
    stall.install(server)
    hub = hubs(batch={"max_size": 5, "interval": 60})
    kit.Recorder(hub).record(12, "stuck")
    flushed = hub.flush(0.2)
    assert not flushed
    assert (flushed.timed_out, flushed.pending) == (True, 12)


# -- 8. bursts with the defaults --------------------------------------------------------------


def test_a_burst_of_20000_traces_with_default_settings_loses_nothing(
    server: LangfuseStandIn, kit: Any, figures: Any
) -> None:
    from obshub_langfuse import LangfuseExporter

    exporter = LangfuseExporter(
        public_key=server.public_key, secret_key=server.secret_key, base_url=server.url
    )
    hub = obshub.Hub(exporters=[exporter], service_name="burst")
    try:
        started = time.perf_counter()
        for i in range(20_000):
            with hub.span("agent", type="agent_run", input=f"question {i}") as agent:
                with hub.span("llm", type="model_generation", model="gpt-4o") as gen:
                    gen.update(output="answer", usage={"input": 10, "output": 5})
                agent.update(output="answer")
        record_s = time.perf_counter() - started
        peak_queued = kit.only_stats(hub).queued
        flushed = hub.flush(60)
        stats = kit.only_stats(hub)
        kit.report(
            figures,
            "burst_defaults",
            traces=20_000,
            spans=40_000,
            record_s=round(record_s, 3),
            queued_after_recording=peak_queued,
            exported=stats.exported,
            dropped=stats.dropped,
        )
        assert flushed, repr(flushed)
        assert (stats.dropped, stats.exported) == (0, 40_000)
    finally:
        hub.shutdown(timeout=5)


def test_the_first_drop_warns_with_the_setting_to_raise_and_spool_dir(
    server: LangfuseStandIn, hubs: Any, kit: Any, stall: Any
) -> None:
    from structlog.testing import capture_logs

    stall.install(server)
    hub = hubs(max_queue_size=5, batch={"max_size": 5, "interval": 60})
    with capture_logs() as logs:
        kit.Recorder(hub).record(5, "first")
        assert stall.first.wait(kit.WAIT)
        kit.Recorder(hub).record(20, "more")
    (warning,) = [e for e in logs if e["event"] == "events_dropped"]
    assert warning["log_level"] == "warning"
    assert warning["limit"] == "max_queue_size"
    assert "max_queue_size" in warning["hint"]
    assert "spool_dir" in warning["hint"]


def test_the_queue_is_bounded_by_bytes_as_well_as_by_count(
    server: LangfuseStandIn, hubs: Any, kit: Any, stall: Any
) -> None:
    from obshub._delivery.records import SIZED_FROM

    stall.install(server)
    hub = hubs(max_queue_bytes=1024 * 1024, batch={"max_size": 5, "interval": 60})
    recorder = kit.Recorder(hub)
    recorder.record(5, "first")
    assert stall.first.wait(kit.WAIT)
    # A backlog: from SIZED_FROM waiting items on, each new item's bytes count.
    recorder.record(SIZED_FROM, "backlog")
    recorder.record(100, "big", payload={"text": "x" * 100_000})  # ~10 MB offered
    stats = kit.only_stats(hub)
    big_queued = stats.queued - 5 - SIZED_FROM
    # 1 MiB holds about ten of them (the estimate counts the string lengths).
    assert 5 <= big_queued <= 12
    assert stats.dropped == 100 - big_queued
