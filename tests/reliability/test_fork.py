"""Fork safety: children record through fresh channels; the parent keeps what it queued."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from typing import Any

import pytest
from obshub_langfuse.testing import Fault, LangfuseStandIn

import obshub

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

#: Seconds a forked child may live: a deadlock must fail the test, not hang it.
CHILD_ALARM = 20


def _child_records(hub: obshub.Hub, count: int, conn: Any) -> None:
    """Runs in a ``multiprocessing`` child (fork): record, flush, report the span ids."""
    signal.alarm(CHILD_ALARM)
    ids = []
    for i in range(count):
        with hub.span("child", type="tool_call", input={"i": i}) as span:
            pass
        ids.append(span.span_id)
    conn.send({"ids": ids, "flushed": hub.flush(10), "pid": os.getpid()})
    conn.close()


def test_a_multiprocessing_child_sends_its_own_spans_and_the_parent_goes_on(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any
) -> None:
    hub = hubs(batch={"max_size": 512, "interval": 60})
    recorder = kit.Recorder(hub)
    before = recorder.record(30, "parent-before-fork")  # queued, not sent yet
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_records, args=(hub, 40, child_end))
    child.start()
    child_end.close()
    try:
        assert parent_end.poll(kit.WAIT * 2), "the child did not report"
        result = parent_end.recv()
    finally:
        child.join(kit.WAIT * 2)
        if child.is_alive():  # pragma: no cover - only on a hang
            child.kill()
            child.join()
    assert child.exitcode == 0
    assert result["flushed"]
    assert result["pid"] != os.getpid()
    after = recorder.record(30, "parent-after-fork")
    assert hub.flush(kit.WAIT)

    child_ids = result["ids"]
    server.wait_for_observations(100, timeout=kit.WAIT)
    accepted = kit.accepted_span_ids(server)
    delivered = kit.delivery_figures(server, [*before, *child_ids, *after])
    kit.report(
        figures,
        "fork_multiprocessing",
        **delivered,
        child_spans=len(child_ids),
        parent_spans=len(before) + len(after),
        parent_queued_before_fork_sent=sum(accepted[i] for i in before),
    )
    assert delivered["lost"] == 0
    assert set(child_ids).isdisjoint(before + after)
    # Spans the parent had queued before the fork are sent once, by the parent.
    assert all(accepted[i] == 1 for i in before)
    assert kit.only_stats(hub).exported == 60


def test_gunicorn_style_preload_every_worker_delivers_and_nothing_is_doubled(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any
) -> None:
    workers, per_worker = 3, 25
    # Built in the "master" before forking, as with gunicorn --preload.
    hub = hubs(batch={"max_size": 512, "interval": 60})
    recorder = kit.Recorder(hub)
    before = recorder.record(30, "master-before-fork")  # queued in the master
    children: dict[int, int] = {}
    for k in range(workers):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the worker; reports through the pipe
            code = 1
            try:
                signal.alarm(CHILD_ALARM)
                os.close(read_fd)
                ids = []
                for i in range(per_worker):
                    with hub.span(f"worker-{k}", input={"i": i}) as span:
                        pass
                    ids.append(span.span_id)
                flushed = bool(hub.flush(10))
                os.write(write_fd, json.dumps({"ids": ids, "flushed": flushed}).encode())
                os.close(write_fd)
                code = 0 if flushed else 2
            finally:
                os._exit(code)
        os.close(write_fd)
        children[pid] = read_fd

    reports = []
    for pid, read_fd in children.items():
        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        reports.append(json.loads(data))
    assert hub.flush(kit.WAIT)

    worker_ids = [i for r in reports for i in r["ids"]]
    total = len(before) + len(worker_ids)
    server.wait_for_observations(total, timeout=kit.WAIT)
    accepted = kit.accepted_span_ids(server)
    delivered = kit.delivery_figures(server, [*before, *worker_ids])
    kit.report(
        figures,
        "fork_preload_3_workers",
        **delivered,
        workers=workers,
        spans_per_worker=per_worker,
        master_queued_before_fork=len(before),
        master_spans_sent_times=sorted({accepted[i] for i in before}),
    )
    assert all(r["flushed"] for r in reports)
    assert delivered["lost"] == 0
    assert delivered["duplicates"] == 0
    assert all(accepted[i] == 1 for i in before)
    names = {o.name for o in server.observations()}
    assert names == {"master-before-fork", *(f"worker-{k}" for k in range(workers))}


def test_preloaded_workers_never_take_the_masters_open_spool_segment(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any, tmp_path: Any
) -> None:
    spool_dir = tmp_path / "spool"
    server.inject("traces", *[Fault.error(503)] * 1)
    hub = hubs(
        spool_dir=str(spool_dir),
        retry={"max_attempts": 1},
        batch={"max_size": 512, "interval": 60},
    )
    recorder = kit.Recorder(hub)
    spooled = recorder.record(20, "master-spooled")
    assert not hub.flush(kit.WAIT)  # the one 503: spooled in the master's open segment
    (open_segment,) = spool_dir.rglob("seg-*.log.open")

    pids = []
    for k in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the worker
            code = 1
            try:
                signal.alarm(CHILD_ALARM)
                with hub.span(f"worker-{k}"):
                    pass
                # A worker's channel replays the shared spool at start-up; when
                # this flush returns, its replay pass has had time to run.
                ok = hub.flush(10) and hub.replay(timeout=10) == {"default/langfuse": 0}
                code = 0 if ok else 2
            finally:
                os._exit(code)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert codes == [0, 0, 0]
    assert open_segment.exists(), "a worker took the master's open segment"

    # The master replays its own spool once the backend answers again.
    recorder.record(1, "master-after")
    assert hub.flush(kit.WAIT)
    server.wait_for_observations(24, timeout=kit.WAIT)
    accepted = kit.accepted_span_ids(server)
    kit.report(
        figures,
        "fork_preload_shared_spool",
        **kit.delivery_figures(server, recorder.sent),
        workers=3,
        master_spooled=len(spooled),
        sent_by_workers=sum(accepted[i] for i in spooled) - len(spooled),
    )
    assert all(accepted[i] == 1 for i in spooled)
