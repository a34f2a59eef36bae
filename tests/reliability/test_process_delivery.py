"""``delivery = "process"``: exporters run in a helper process, with thread mode's guarantees.

Each test checks one promise of docs/exporters.md#delivery against a Langfuse
stand-in in this process (the helper, a fork, sends to it over loopback):
everything delivered and counted, the spool and replay in the helper, a
killed helper restarted with its loss counted, the helper gone with the
application, values that cannot be pickled arriving as thread mode sends
them, application forks, and thread mode when no helper can start.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse.testing import Fault, LangfuseStandIn
from structlog.testing import capture_logs

import obshub
from obshub._delivery import process
from obshub.testing import wait_for

pytestmark = [
    pytest.mark.skipif(not process.can_fork(), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


def _link(hub: obshub.Hub) -> process.Link:
    (live,) = hub._live.values()
    assert live.link is not None
    return live.link


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_every_span_is_delivered_from_a_helper_process_and_counted(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any
) -> None:
    hub = hubs(delivery="process")
    recorder = kit.Recorder(hub)
    recorder.record_in_threads(threads=4, per_thread=250)
    result = hub.flush(kit.WAIT)
    assert result, repr(result)
    pid = _link(hub).pid
    assert pid is not None
    assert pid != os.getpid()
    server.wait_for_observations(1000, timeout=kit.WAIT)
    delivered = kit.delivery_figures(server, recorder.sent)
    stats = kit.only_stats(hub)
    kit.report(figures, "process_delivery", **delivered, helper_pid_differs=pid != os.getpid())
    assert delivered == {"sent": 1000, "received": 1000, "lost": 0, "duplicates": 0}
    assert (stats.exported, stats.dropped, stats.failed, stats.queued) == (1000, 0, 0, 0)
    assert hub.shutdown(kit.WAIT)
    assert _gone(pid), "the helper outlived hub.shutdown()"


def test_a_backend_that_fails_sends_the_batch_to_the_helpers_spool_and_a_replay_delivers_it(
    server: LangfuseStandIn, hubs: Any, kit: Any, tmp_path: Path
) -> None:
    hub = hubs(
        delivery="process",
        spool_dir=str(tmp_path),
        retry={"max_attempts": 1, "initial_backoff": 0.01},
    )
    server.inject("traces", *[Fault.error(503)] * 50)
    recorder = kit.Recorder(hub)
    recorder.record(120)
    result = hub.flush(kit.WAIT)
    assert not result
    assert result.spooled == 120, repr(result)
    assert kit.only_stats(hub).spooled == 120
    assert list(tmp_path.glob("*/seg-*"))  # on disk, written by the helper
    server.clear()
    counts = hub.replay(timeout=kit.WAIT)
    assert counts == {"default/langfuse": 120}
    assert hub.flush(kit.WAIT)
    server.wait_for_observations(120, timeout=kit.WAIT)
    assert kit.delivery_figures(server, recorder.sent)["lost"] == 0


def test_a_killed_helper_is_restarted_and_what_it_held_is_counted_as_dropped(
    server: LangfuseStandIn, hubs: Any, kit: Any, stall: Any, figures: Any
) -> None:
    hub = hubs(delivery="process")
    recorder = kit.Recorder(hub)
    first = recorder.record(50, "before")
    assert hub.flush(kit.WAIT)
    link = _link(hub)
    killed = link.pid
    assert killed is not None
    stall.install(server)
    held = recorder.record(30, "held")
    hub.flush(0.0)  # ask for a send now: the helper's export hangs in the stalled backend
    assert stall.first.wait(kit.WAIT)
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: link.pid not in (None, killed), kit.WAIT, message="no new helper")
    stall.release()
    after = recorder.record(40, "after")
    result = hub.flush(kit.WAIT)
    stats = kit.only_stats(hub)
    server.wait_for_observations(90, timeout=kit.WAIT)
    accepted = kit.accepted_span_ids(server)
    kit.report(
        figures,
        "process_delivery_helper_killed",
        held=len(held),
        counted_dropped=stats.dropped,
        delivered_after=sum(1 for i in after if accepted[i]),
    )
    assert all(accepted[i] == 1 for i in first + after)
    # What the dead helper held is counted, never silently gone: each held span
    # is delivered (its request was answered after the stall) or counted dropped.
    assert stats.dropped == 30
    assert stats.exported == 90
    assert not result
    assert result.dropped == 30, repr(result)


def test_the_helper_delivers_what_it_holds_and_exits_when_the_application_dies(
    server: LangfuseStandIn, kit: Any, tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            import obshub
            from obshub_langfuse import LangfuseExporter
            exporter = LangfuseExporter(
                public_key={server.public_key!r}, secret_key={server.secret_key!r},
                base_url={server.url!r}, delivery="process",
                batch={{"max_size": 512, "interval": 60}},
            )
            hub = obshub.Hub(exporters=[exporter])
            for i in range(100):
                with hub.span("work", type="tool_call", input={{"i": i}}):
                    pass
            (live,) = hub._live.values()
            while live.link.written < 100:
                pass  # handed to the helper: the pipe holds them
            print(live.link.pid, flush=True)
            os._exit(0)  # no shutdown, no flush: the helper is on its own
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    pid = int(done.stdout.split()[0])
    server.wait_for_observations(100, timeout=kit.WAIT)
    wait_for(lambda: _gone(pid), process.EXIT_GRACE + kit.WAIT, message="helper still alive")


class _Opaque:
    def __init__(self) -> None:
        self.secret_of_the_app = "x"


def _values() -> dict[str, Any]:
    return {
        "lock": threading.Lock(),
        "generator": (i for i in range(3)),
        "object": _Opaque(),
        "when": datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc),
        "nested": {"set": {3, 1, 2}, "bytes": b"\x00\x01", "tuple": (1, "a")},
        "big": 2**80,
        "nan": float("nan"),
    }


def test_values_that_cannot_be_pickled_arrive_as_thread_delivery_sends_them(
    tmp_path: Path,
) -> None:
    values = _values()
    outputs = {}
    for mode in ("thread", "process"):
        path = tmp_path / f"{mode}.jsonl"
        exporter = obshub.JsonlExporter(path=str(path), delivery=mode, events=["ended"])
        hub = obshub.Hub(exporters=[exporter])
        with hub.span("odd", type="tool_call", input=values, metadata={"v": values["object"]}):
            pass
        assert hub.flush(10)
        assert hub.shutdown(10)
        (line,) = path.read_text().splitlines()
        span = json.loads(line)["span"]
        outputs[mode] = (span["input"], span["metadata"])
    assert outputs["process"] == outputs["thread"]


def _child(hub: obshub.Hub, conn: Any) -> None:
    signal.alarm(20)
    ids = []
    for i in range(40):
        with hub.span("child", type="tool_call", input={"i": i}) as span:
            pass
        ids.append(span.span_id)
    flushed = hub.flush(10)
    link = _link(hub)
    conn.send({"ids": ids, "flushed": bool(flushed), "helper": link.pid})
    hub.shutdown(10)
    conn.close()


def test_an_application_fork_gets_a_helper_of_its_own(
    server: LangfuseStandIn, hubs: Any, kit: Any
) -> None:
    hub = hubs(delivery="process")
    recorder = kit.Recorder(hub)
    before = recorder.record(20, "parent")
    assert hub.flush(kit.WAIT)
    parent_helper = _link(hub).pid
    ctx = multiprocessing.get_context("fork")
    ours, theirs = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(hub, theirs))
    child.start()
    theirs.close()
    try:
        assert ours.poll(kit.WAIT * 2), "the child did not report"
        result = ours.recv()
    finally:
        child.join(kit.WAIT * 2)
        if child.is_alive():  # pragma: no cover - only on a hang
            child.kill()
            child.join()
    assert child.exitcode == 0
    assert result["flushed"]
    assert result["helper"] not in (None, parent_helper)
    after = recorder.record(20, "parent-after")
    assert hub.flush(kit.WAIT)
    assert _link(hub).pid == parent_helper
    server.wait_for_observations(80, timeout=kit.WAIT)
    accepted = kit.accepted_span_ids(server)
    assert all(accepted[i] == 1 for i in before + after + result["ids"])
    assert kit.only_stats(hub).exported == 40


def test_where_no_helper_can_start_the_exporter_delivers_on_threads(
    server: LangfuseStandIn, hubs: Any, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    with capture_logs() as logs:
        hub = hubs(delivery="process")
        recorder = kit.Recorder(hub)
        recorder.record(60)
        assert hub.flush(kit.WAIT)
    server.wait_for_observations(60, timeout=kit.WAIT)
    assert kit.delivery_figures(server, recorder.sent)["lost"] == 0
    assert _link(hub).thread_mode
    assert kit.only_stats(hub).exported == 60
    (event,) = [e for e in logs if e["event"] == "delivery_process_unavailable"]
    assert "Resource temporarily unavailable" in event["reason"]


def test_a_helper_that_cannot_start_is_retried_then_replaced_by_threads(
    server: LangfuseStandIn, hubs: Any, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "RESTART_WINDOW", 3600.0)
    started = threading.Event()

    def broken_init(self: Any) -> None:
        raise RuntimeError("cannot build the exporters here")

    monkeypatch.setattr("obshub._routing.LiveConfig._serve_here", broken_init)
    hub = hubs(delivery="process")
    link = _link(hub)
    wait_for(lambda: link.thread_mode, kit.WAIT * 2, message="no fall back to threads")
    started.set()
    recorder = kit.Recorder(hub)
    recorder.record(25)
    assert hub.flush(kit.WAIT)
    server.wait_for_observations(25, timeout=kit.WAIT)
    assert kit.only_stats(hub).exported == 25


def test_scores_and_realtime_delivery_go_through_the_helper(
    server: LangfuseStandIn, hubs: Any, kit: Any
) -> None:
    hub = hubs(delivery="process", realtime=True)
    with hub.span("answer", type="agent_run", input="q") as span:
        pass
    span.score("helpfulness", 0.75)
    server.wait_for_observations(1, timeout=kit.WAIT)
    (score,) = server.wait_for_scores(1, timeout=kit.WAIT)
    assert score.value == 0.75
    assert hub.flush(kit.WAIT)
    assert kit.only_stats(hub).exported == 2


def test_a_jsonl_file_replayed_into_a_process_exporter_is_delivered(
    server: LangfuseStandIn, hubs: Any, kit: Any, tmp_path: Path
) -> None:
    path = tmp_path / "saved.jsonl"
    source = obshub.Hub(exporters=[obshub.JsonlExporter(path=str(path), events=["ended"])])
    for i in range(15):
        with source.span("saved", type="tool_call", input={"i": i}):
            pass
    assert source.shutdown(10)
    hub = hubs(delivery="process")
    fed, bad = hub.replay_file(path, timeout=kit.WAIT)
    assert (fed, bad) == ({"default/langfuse": 15}, 0)
    server.wait_for_observations(15, timeout=kit.WAIT)


def test_stats_of_a_process_exporter_come_from_the_helper(hubs: Any, kit: Any) -> None:
    hub = hubs(delivery="process")
    kit.Recorder(hub).record(10)
    assert hub.flush(kit.WAIT)
    stats = kit.only_stats(hub)
    assert (stats.exported, stats.state, stats.type) == (10, "running", "langfuse")


def test_a_config_table_chooses_the_helper_process_and_a_bad_value_names_its_key(
    tmp_path: Path,
) -> None:
    table = {"type": "jsonl", "path": str(tmp_path / "out.jsonl"), "delivery": "process"}
    hub = obshub.Hub.from_config({"configs": {"prod": {"exporters": {"local": table}}}})
    try:
        assert [c.name for c in _link(hub).channels] == ["prod/local"]
        assert hub.stats()["prod/local"].state == "running"
    finally:
        assert hub.shutdown(10)
    table["delivery"] = "subprocess"
    with pytest.raises(obshub.ConfigError) as raised:
        obshub.Hub.from_config({"configs": {"prod": {"exporters": {"local": table}}}})
    assert "configs.prod.exporters.local.delivery" in str(raised.value)
    assert '"thread" or "process"' in str(raised.value)


def test_a_stuck_helper_is_killed_and_replaced(
    server: LangfuseStandIn, hubs: Any, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "SILENCE_LIMIT", 1.0)
    hub = hubs(delivery="process")
    recorder = kit.Recorder(hub)
    recorder.record(10, "before")
    assert hub.flush(kit.WAIT)
    link = _link(hub)
    stuck = link.pid
    assert stuck is not None
    with capture_logs() as logs:
        os.kill(stuck, signal.SIGSTOP)  # alive, silent: what a deadlock looks like
        wait_for(lambda: link.pid not in (None, stuck), kit.WAIT, message="not replaced")
    assert _gone(stuck)
    (died,) = [e for e in logs if e["event"] == "delivery_process_died"]
    assert "unresponsive" in died["why"]
    after = recorder.record(10, "after")
    assert hub.flush(kit.WAIT)
    server.wait_for_observations(20, timeout=kit.WAIT)
    accepted = kit.accepted_span_ids(server)
    assert all(accepted[i] == 1 for i in after)


def test_a_retired_on_demand_config_lets_its_helper_deliver_and_exit(tmp_path: Path) -> None:
    def tenant_config(tenant: str) -> dict[str, Any]:
        path = str(tmp_path / f"{tenant}.jsonl")
        table = {"type": "jsonl", "path": path, "events": ["ended"], "delivery": "process"}
        return {"exporters": {"local": table}}

    def selector(_name: str, _type: Any, fields: Any) -> Any:
        tenant = (fields.get("metadata") or {}).get("tenant")
        return obshub.OnDemand(f"tenant-{tenant}", lambda: tenant_config(tenant))

    hub = obshub.Hub(
        configs={"default": {"exporters": {"local": {"type": "memory"}}}},
        selector=selector,
        on_demand_max_configs=1,
    )
    try:
        with hub.span("chat", metadata={"tenant": "acme"}):
            pass
        (acme,) = [c for c in hub._on_demand.channels() if c.config_name == "tenant-acme"]
        assert isinstance(acme, process.ProcessChannel)
        wait_for(lambda: acme.link.pid is not None, 10, message="no helper for tenant-acme")
        helper = acme.link.pid
        assert helper is not None
        with hub.span("chat", metadata={"tenant": "globex"}):  # the bound retires acme
            pass
        wait_for(lambda: _gone(helper), 10, message="the retired config's helper still runs")
        assert len((tmp_path / "acme.jsonl").read_text().splitlines()) == 1
        assert hub.flush(10)
    finally:
        assert hub.shutdown(10)
    assert len((tmp_path / "globex.jsonl").read_text().splitlines()) == 1


def test_a_wedged_helper_still_ends_after_the_application(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os
            import obshub
            from obshub._delivery import channel, process

            process.EXIT_GRACE = 0.2
            process.HARD_EXIT_MARGIN = 0.5

            def wedged(self, timeout):
                while True:  # never returns, never waits: a helper stuck in Python code
                    pass

            channel.Channel.shutdown = wedged
            hub = obshub.Hub(exporters=[obshub.JsonlExporter(
                path={str(tmp_path / "out.jsonl")!r}, delivery="process")])
            with hub.span("work", type="tool_call"):
                pass
            (live,) = hub._live.values()
            while live.link.written < 1:
                pass
            print(live.link.pid, flush=True)
            os._exit(0)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    pid = int(done.stdout.split()[0])
    wait_for(lambda: _gone(pid), 10, message="the wedged helper outlived the application")


def test_a_record_the_helper_cannot_restore_is_counted_failed_and_the_rest_delivered(
    server: LangfuseStandIn, hubs: Any, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from obshub import _routing

    real = _routing.restore_record

    def restore(payload: Any, traces: Any) -> Any:
        if payload[4] == "poison":
            raise ValueError("cannot restore this one")
        return real(payload, traces)

    monkeypatch.setattr(_routing, "restore_record", restore)  # the helper forks with it
    hub = hubs(delivery="process")
    recorder = kit.Recorder(hub)
    good = recorder.record(10, "fine")
    recorder.record(1, "poison")
    result = hub.flush(kit.WAIT)
    assert result.failed == 1, repr(result)
    server.wait_for_observations(10, timeout=kit.WAIT)
    assert all(kit.accepted_span_ids(server)[i] == 1 for i in good)
    stats = kit.only_stats(hub)
    assert (stats.exported, stats.failed, stats.dropped) == (10, 1, 0)


def test_a_frame_the_helper_cannot_read_ends_it_and_a_new_helper_takes_over(
    server: LangfuseStandIn, hubs: Any, kit: Any
) -> None:
    hub = hubs(delivery="process")
    recorder = kit.Recorder(hub)
    recorder.record(5, "before")
    assert hub.flush(kit.WAIT)
    link = _link(hub)
    first = link.pid
    assert first is not None
    with capture_logs() as logs:
        os.write(link._down, b"\x03\0\0\0Mxyz")  # type: ignore[arg-type]  # not marshal data
        wait_for(lambda: link.pid not in (None, first), kit.WAIT, message="not replaced")
    (died,) = [e for e in logs if e["event"] == "delivery_process_died"]
    assert died["pid"] == first
    after = recorder.record(5, "after")
    assert hub.flush(kit.WAIT)
    server.wait_for_observations(10, timeout=kit.WAIT)
    assert all(kit.accepted_span_ids(server)[i] == 1 for i in after)


def test_what_shutdown_could_not_hand_off_is_counted_dropped(
    hubs: Any, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = hubs(delivery="process")
    kit.Recorder(hub).record(3, "before")
    assert hub.flush(kit.WAIT)
    jammed = threading.Event()
    release = threading.Event()
    real_write = process._write_all

    def stuck_pipe(fd: int, data: bytes) -> None:
        jammed.set()
        release.wait(kit.WAIT)  # a helper that stopped reading: the pipe is full
        real_write(fd, data)

    monkeypatch.setattr(process, "_write_all", stuck_pipe)
    try:
        with capture_logs() as logs:
            kit.Recorder(hub).record(20, "stuck")
            assert jammed.wait(kit.WAIT)
            assert not hub.shutdown(timeout=0.5)
        stats = kit.only_stats(hub)
        assert stats.dropped == 20
        (event,) = [e for e in logs if e["event"] == "events_dropped"]
        assert (event["reason"], event["count"]) == ("shutdown_timeout", 20)
    finally:
        release.set()
