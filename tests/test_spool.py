"""The disk spool, and what a delivery channel does with it.

Unit tests of :class:`obshub._delivery.spool.Spool` (segments, CRC lines, the size bound,
claim-by-rename) and of the channel's spool behaviour: what is spooled (retries
exhausted, queue overflow, shutdown timeout) and what is not (non-retryable
errors), and how a spool is sent again (in the background by a new hub,
``hub.replay()``, ``obshub replay``, ``obshub replay --file``).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

import obshub
from obshub import _cli as cli
from obshub._delivery import Channel
from obshub._delivery.spool import Spool, encode_line, read_records
from obshub.spans import EventKind, Score, SpanEvent, item_record
from obshub.testing import make_event, make_score, make_trace, wait_for

WAIT = 5.0
#: Retries fast enough for tests.
FAST_RETRY = {"initial_backoff": 0.001, "max_backoff": 0.005, "max_attempts": 2}


class Scripted(obshub.Exporter):
    """Records ended spans and scores; raises ``fail`` while it is set, blocks on ``gate``."""

    name = "scripted"

    def __init__(
        self,
        *,
        fail: Exception | None = None,
        gate: threading.Event | None = None,
        **common: Any,
    ) -> None:
        common.setdefault("realtime", True)
        common.setdefault("retry", FAST_RETRY)
        super().__init__(**common)
        self.fail = fail
        self.gate = gate
        self.entered = threading.Event()
        self.calls = 0
        self.events: list[SpanEvent] = []
        self.scores: list[Score] = []
        self.cond = threading.Condition()

    def export(self, events: Sequence[SpanEvent]) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait()
        with self.cond:
            self.calls += 1
            if self.fail is not None:
                raise self.fail
            self.events.extend(events)
            self.cond.notify_all()

    def export_scores(self, scores: Sequence[Score]) -> None:
        with self.cond:
            if self.fail is not None:
                raise self.fail
            self.scores.extend(scores)
            self.cond.notify_all()

    def span_ids(self) -> list[str]:
        with self.cond:
            return [e.span.span_id for e in self.events]

    def wait_for_spans(self, count: int, timeout: float = WAIT) -> list[str]:
        with self.cond:
            self.cond.wait_for(lambda: len({e.span.span_id for e in self.events}) >= count, timeout)
        return self.span_ids()


def retryable() -> obshub.ExportError:
    return obshub.ExportError("503 Service Unavailable", retryable=True, status=503)


def segments(root: Path) -> list[Path]:
    """Every segment file under ``root`` (open, closed or claimed)."""
    return sorted(root.rglob("seg-*"))


def on_disk(root: Path) -> list[SpanEvent | Score]:
    """The items of every segment under ``root``."""
    items: list[SpanEvent | Score] = []
    for path in segments(root):
        found, _ = read_records(path)
        items.extend(found)
    return items


def span_ids_of(items: Sequence[Any]) -> list[str]:
    return [i.span.span_id for i in items if isinstance(i, SpanEvent)]


def record(hub: obshub.Hub, count: int, prefix: str = "span") -> list[str]:
    ids = []
    for i in range(count):
        with hub.span(f"{prefix}-{i}", input={"i": i}) as span:
            ids.append(span.span_id)
    return ids


def only_stats(hub: obshub.Hub) -> obshub.ChannelStats:
    (stats,) = hub.stats().values()
    return stats


def only_channel(hub: obshub.Hub) -> Channel:
    (channel,) = hub._channels()
    return channel


@pytest.fixture
def spool_root(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event exporters block on; opened at teardown (before hubs shut down)."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of another process that runs until the test ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    yield proc.pid
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(WAIT)


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(WAIT)
    return proc.pid


@pytest.fixture
def _restore_structlog() -> Iterator[None]:
    """The CLI configures structlog (it is an application); undo that after the test."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


# -- segments and lines --------------------------------------------------------------


def test_events_and_scores_round_trip_through_a_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    items: list[SpanEvent | Score] = [
        *make_trace(kinds=("started", "updated", "ended")),
        make_score(),
        make_score(name="correct", value=True, data_type="BOOLEAN"),
    ]
    assert spool.append(items) == len(items)
    spool.close()
    (claimed,) = spool.claim()
    back = spool.read(claimed)
    assert [item_record(i) for i in back] == [item_record(i) for i in items]
    assert back == items
    spool.done(claimed)
    assert segments(tmp_path) == []


def test_each_line_carries_a_crc_that_detects_a_flipped_byte(tmp_path: Path) -> None:
    spool = Spool(tmp_path, log=structlog.get_logger())
    events = [make_event(name=f"span-{i}", input="x" * 20) for i in range(3)]
    spool.append(events)
    spool.close()
    (path,) = segments(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    assert all(re.fullmatch(rb"[0-9a-f]{8} \{.*\}\n", line) for line in lines)
    # Flip one byte of the middle line's input: still valid JSON, but the CRC differs.
    flipped = lines[1].replace(b"xxxx", b"xxxy", 1)
    assert flipped != lines[1]
    json.loads(flipped[9:])
    path.write_bytes(lines[0] + flipped + lines[2])

    items, bad = read_records(path)
    assert bad == 1
    assert [i.span.name for i in items] == ["span-0", "span-2"]
    with capture_logs() as logs:
        (claimed,) = spool.claim()
        assert [i.span.name for i in spool.read(claimed)] == ["span-0", "span-2"]
    (warning,) = [e for e in logs if e["event"] == "spool_segment_corrupt"]
    assert warning["skipped_lines"] == 1
    assert warning["log_level"] == "warning"


def test_a_truncated_last_line_and_garbage_are_skipped_and_replay_goes_on(
    spool_root: Path, hub_factory: Any
) -> None:
    directory = spool_root / "default.scripted"
    writer = Spool(directory)
    good = [make_event(name=f"good-{i}") for i in range(4)]
    writer.append(good)
    writer.close()
    (path,) = segments(directory)
    data = path.read_bytes()
    garbage = (
        b"\x00\xff\xfe binary junk\n"
        b"zzzzzzzz not a crc\n"
        b"{not json at all\n"
        b"\n"
        + encode_line({"v": 1, "kind": "ended"})  # a valid line that is no event
        + encode_line([1, 2, 3])  # type: ignore[arg-type]
    )
    # The crash left half a line at the end of the segment.
    last = encode_line(item_record(make_event(name="torn")))
    path.write_bytes(data + garbage + last[: len(last) // 2])

    items, bad = read_records(path)
    assert [i.span.name for i in items] == [e.span.name for e in good]
    assert bad == 6

    exporter = Scripted(spool_dir=str(spool_root))
    with capture_logs() as logs:
        hub_factory(exporters=[exporter])
        received = exporter.wait_for_spans(4)
        wait_for(lambda: not segments(directory), message="replayed segment not deleted")
    assert sorted(received) == sorted(e.span.span_id for e in good)
    (warning,) = [e for e in logs if e["event"] == "spool_segment_corrupt"]
    assert warning["skipped_lines"] == 6


def test_lone_surrogates_are_spooled_exactly_and_never_stop_the_worker(
    spool_root: Path, hub_factory: Any
) -> None:
    # E.g. read back from a file decoded with surrogateescape: no UTF-8 form.
    odd = make_event(name="file-\udcff", input={"path": "/tmp/\udce9t\ud800"})
    spool = Spool(spool_root / "unit")
    spool.append([odd])
    spool.close()
    (claimed,) = spool.claim()
    assert spool.read(claimed) == [odd]

    exporter = Scripted(fail=retryable(), retry={"max_attempts": 1}, spool_dir=str(spool_root))
    hub = hub_factory(exporters=[exporter])
    channel = only_channel(hub)
    assert channel.feed([odd]) == 1
    assert not hub.flush(WAIT)
    assert only_stats(hub).spooled >= 1  # fed items count as replayed too
    assert odd in on_disk(spool_root / "default.scripted")
    exporter.fail = None
    record(hub, 1)  # the worker is alive and the backend is back
    assert odd.span.span_id in exporter.wait_for_spans(2)


def test_a_segment_is_named_open_until_it_is_closed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([make_event()])
    (path,) = segments(tmp_path)
    assert path.name.endswith(".log.open")
    spool.close()
    (path,) = segments(tmp_path)
    assert path.name.endswith(".log")


# -- the size bound -------------------------------------------------------------------


def test_the_bound_evicts_the_oldest_segments_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=8192, log=structlog.get_logger())
    names = [f"span-{i:03d}" for i in range(120)]
    with capture_logs() as logs:
        for name in names:
            spool.append([make_event(name=name, input="y" * 100)])
            assert spool.size() <= spool.max_bytes
    spool.close()
    kept = [i.span.name for i in on_disk(tmp_path) if isinstance(i, SpanEvent)]
    assert spool.evicted > 0
    assert spool.evicted + len(kept) == len(names)
    # What is left is the newest part, in order: the oldest went first.
    assert kept == names[len(names) - len(kept) :]
    evictions = [e for e in logs if e["event"] == "spool_evicted"]
    assert evictions
    assert evictions[0]["log_level"] == "error"
    assert evictions[0]["max_bytes"] == 8192


def test_a_full_spool_counts_evictions_in_stats_and_logs_them(
    spool_root: Path, hub_factory: Any
) -> None:
    exporter = Scripted(
        fail=retryable(),
        retry={"max_attempts": 1},
        batch={"max_size": 4},
        spool_dir=str(spool_root),
        spool_max_bytes=4096,
    )
    hub = hub_factory(exporters=[exporter])
    with capture_logs() as logs:
        sent = record(hub, 60)
        assert not hub.flush(WAIT)
    stats = only_stats(hub)
    assert stats.evicted > 0
    assert stats.failed == stats.dropped == 0
    kept = span_ids_of(on_disk(spool_root))
    assert set(kept) <= set(sent)
    assert stats.evicted + len(kept) == stats.spooled - stats.replayed == len(sent)
    assert any(e["event"] == "spool_evicted" and e["exporter"] == "scripted" for e in logs)


# -- claims ---------------------------------------------------------------------------


def _claim_in_child(directory: str, go: Any, results: Any) -> None:
    go.wait(WAIT)
    results.put([p.name.split(".replaying-")[0] for p in Spool(directory).claim()])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs the fork start method")
def test_two_spools_never_claim_the_same_segment(tmp_path: Path) -> None:
    writer = Spool(tmp_path, segment_bytes=1)  # one segment per append
    for i in range(40):
        writer.append([make_event(name=f"span-{i}")])
    writer.close()
    everything = {p.name for p in segments(tmp_path)}
    assert len(everything) == 40

    # Two processes and two threads (each with its own Spool) claim at once.
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    results = ctx.Queue()
    children = [
        ctx.Process(target=_claim_in_child, args=(str(tmp_path), go, results)) for _ in range(2)
    ]
    claims: list[list[str]] = []
    lock = threading.Lock()
    started = threading.Event()

    def claim_here() -> None:
        started.wait(WAIT)
        names = [p.name.split(".replaying-")[0] for p in Spool(tmp_path).claim()]
        with lock:
            claims.append(names)

    threads = [threading.Thread(target=claim_here) for _ in range(2)]
    for child in children:
        child.start()
    for thread in threads:
        thread.start()
    go.set()
    started.set()
    for thread in threads:
        thread.join(WAIT)
    claims.extend(results.get(timeout=WAIT) for _ in children)
    for child in children:
        child.join(WAIT)
        assert child.exitcode == 0
    flat = [name for names in claims for name in names]
    assert len(flat) == len(set(flat)), "a segment was claimed twice"
    assert set(flat) == everything


def test_a_spool_does_not_take_a_segment_another_spool_holds(tmp_path: Path) -> None:
    first, second = Spool(tmp_path), Spool(tmp_path)
    first.append([make_event()])
    # Being written by ``first``: not replayable yet, not even in the same process.
    assert second.claim() == []
    first.close()
    (claimed,) = first.claim()
    # Being replayed by ``first``: the claim carries our pid, but it is not stale.
    assert second.claim() == []
    first.release(claimed)
    assert len(second.claim()) == 1


def test_an_open_segment_of_another_live_process_is_left_alone(
    tmp_path: Path, live_pid: int, dead_pid: int
) -> None:
    theirs = tmp_path / f"seg-{time.time_ns():020d}-{live_pid}-000001.log.open"
    theirs.write_bytes(encode_line(item_record(make_event(name="theirs"))))
    crashed = tmp_path / f"seg-{time.time_ns():020d}-{dead_pid}-000001.log.open"
    crashed.write_bytes(encode_line(item_record(make_event(name="crashed"))))
    spool = Spool(tmp_path)
    (claimed,) = spool.claim()
    # The open segment of a process that died is taken over, the live one is not.
    assert claimed.name.startswith(crashed.name.removesuffix(".log.open"))
    assert claimed.name.endswith(f".log.replaying-{os.getpid()}")
    assert [i.span.name for i in spool.read(claimed)] == ["crashed"]
    assert theirs.exists()


def test_a_claim_by_a_dead_process_is_taken_over_but_not_one_by_a_live_process(
    tmp_path: Path, live_pid: int, dead_pid: int
) -> None:
    writer = Spool(tmp_path, segment_bytes=1)
    writer.append([make_event(name="of-the-dead")])
    writer.append([make_event(name="of-the-living")])
    writer.close()
    dead_segment, live_segment = segments(tmp_path)
    dead_segment.rename(dead_segment.with_name(f"{dead_segment.name}.replaying-{dead_pid}"))
    live_segment.rename(live_segment.with_name(f"{live_segment.name}.replaying-{live_pid}"))

    spool = Spool(tmp_path)
    (claimed,) = spool.claim()
    assert claimed.name == f"{dead_segment.name}.replaying-{os.getpid()}"
    assert [i.span.name for i in spool.read(claimed)] == ["of-the-dead"]
    spool.done(claimed)
    assert [p.name for p in segments(tmp_path)] == [f"{live_segment.name}.replaying-{live_pid}"]


# -- what the channel spools, and what it does not ---------------------------------------


def test_exhausted_retries_are_spooled_with_a_spool(spool_root: Path, hub_factory: Any) -> None:
    exporter = Scripted(fail=retryable(), spool_dir=str(spool_root))
    hub = hub_factory(exporters=[exporter])
    with capture_logs() as logs:
        sent = record(hub, 5)
        hub.score(trace_id="a" * 32, name="helpfulness", value=0.5)
        assert not hub.flush(WAIT)
    stats = only_stats(hub)
    assert (stats.failed, stats.dropped, stats.exported) == (0, 0, 0)
    assert stats.spooled - stats.replayed == 6
    items = on_disk(spool_root)
    assert sorted(span_ids_of(items)) == sorted(sent)
    assert [i.name for i in items if isinstance(i, Score)] == ["helpfulness"]
    failed = [e for e in logs if e["event"] == "export_failed"]
    assert failed
    assert all(e["spooled"] for e in failed)
    assert any(e["event"] == "events_spooled" and e["reason"] == "retries_exhausted" for e in logs)


def test_exhausted_retries_are_failed_without_a_spool(hub_factory: Any) -> None:
    exporter = Scripted(fail=retryable())
    hub = hub_factory(exporters=[exporter])
    record(hub, 5)
    assert not hub.flush(WAIT)
    stats = only_stats(hub)
    assert (stats.failed, stats.spooled, stats.dropped) == (5, 0, 0)
    assert stats.retried == 5  # FAST_RETRY: two attempts, one retry per span


def test_a_non_retryable_error_is_failed_and_never_spooled(
    spool_root: Path, hub_factory: Any
) -> None:
    exporter = Scripted(
        fail=obshub.ExportError("404 Not Found", status=404), spool_dir=str(spool_root)
    )
    hub = hub_factory(exporters=[exporter])
    record(hub, 5)
    assert not hub.flush(WAIT)
    stats = only_stats(hub)
    assert (stats.failed, stats.spooled, stats.retried) == (5, 0, 0)
    assert on_disk(spool_root) == []


def test_queue_overflow_is_spilled_to_disk_by_the_spill_thread(
    spool_root: Path, hub_factory: Any, gate: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers: set[str] = set()
    original = Spool.append

    def spying_append(self: Spool, items: Any) -> int:
        writers.add(threading.current_thread().name)
        return original(self, items)

    monkeypatch.setattr(Spool, "append", spying_append)
    exporter = Scripted(gate=gate, max_queue_size=20, spool_dir=str(spool_root))
    hub = hub_factory(exporters=[exporter])
    channel = only_channel(hub)
    sent: list[str] = []
    stalls: list[float] = []

    def burst(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            with hub.span("burst") as span:
                pass
            stalls.append(time.perf_counter() - started)
            sent.append(span.span_id)

    burst(1)
    assert exporter.entered.wait(WAIT)  # that one is stuck in export()
    burst(20)  # fills the queue
    for n in range(1, 6):
        burst(15)  # each burst overflows; the spill thread writes it to disk
        wait_for(lambda n=n: only_stats(hub).spooled == 15 * n, message="not spilled")
    assert not channel._overflow
    stats = only_stats(hub)
    assert stats.dropped == 0
    assert stats.spooled == 75
    assert stats.queued == 21
    assert writers == {f"obshub-default.{exporter.instance_name}-spill"}
    assert max(stalls) < 0.1, f"a record call took {max(stalls):.3f} s"

    gate.set()
    flushed = hub.flush(WAIT)
    assert not flushed, "spilled items are not delivered yet"
    assert flushed.spooled == 75
    hub.replay(timeout=WAIT)
    assert hub.flush(WAIT)
    received = exporter.wait_for_spans(len(sent))
    assert sorted(set(received)) == sorted(sent)
    assert segments(spool_root) == []


def test_shutdown_with_a_hung_exporter_spools_what_is_left_and_a_new_hub_sends_it(
    spool_root: Path, hub_factory: Any, gate: threading.Event
) -> None:
    hung = Scripted(gate=gate, instance_name="primary", spool_dir=str(spool_root))
    hub = hub_factory(exporters=[hung])
    sent = record(hub, 5)
    hub.score(trace_id="b" * 32, name="accuracy", value=1.0)
    assert hung.entered.wait(WAIT)
    started = time.monotonic()
    assert hub.shutdown(timeout=0.3) is False
    assert time.monotonic() - started < 2.0
    stats = only_stats(hub)
    assert (stats.dropped, stats.failed) == (0, 0)
    assert stats.spooled == 6  # the batch stuck in export() included
    assert sorted(span_ids_of(on_disk(spool_root))) == sorted(sent)
    assert all(p.name.endswith(".log") for p in segments(spool_root))  # closed at stop

    # A new process (here: a new hub) on the same spool_dir sends it in the background.
    fresh = Scripted(instance_name="primary", spool_dir=str(spool_root))
    hub_factory(exporters=[fresh])
    received = fresh.wait_for_spans(5)
    assert sorted(received) == sorted(sent)  # the same span ids: an idempotent re-send
    with fresh.cond:
        fresh.cond.wait_for(lambda: len(fresh.scores) == 1, WAIT)
    assert fresh.scores[0].name == "accuracy"
    wait_for(lambda: not segments(spool_root), message="replayed segments were not deleted")


def test_hub_replay_sends_the_spool_again_once_the_backend_is_back(
    spool_root: Path, hub_factory: Any
) -> None:
    exporter = Scripted(fail=retryable(), retry={"max_attempts": 1}, spool_dir=str(spool_root))
    hub = hub_factory(exporters=[exporter])
    sent = record(hub, 7)
    assert not hub.flush(WAIT)
    assert sorted(span_ids_of(on_disk(spool_root))) == sorted(sent)
    exporter.fail = None
    counts = hub.replay(timeout=WAIT)
    assert set(counts) == {"default/scripted"}
    assert hub.flush(WAIT)
    assert sorted(set(exporter.wait_for_spans(7))) == sorted(sent)
    assert segments(spool_root) == []
    stats = only_stats(hub)
    assert stats.replayed >= 7
    assert stats.exported >= 7


def test_a_broken_log_pipeline_does_not_stop_resume_or_replay(
    spool_root: Path, hub_factory: Any
) -> None:
    exporter = Scripted(
        fail=obshub.ExportError("401", status=401, pause=0.05),
        spool_dir=str(spool_root),
        log_level="debug",  # batch_sent too
    )
    hub = hub_factory(exporters=[exporter])
    first = record(hub, 1, "held")
    wait_for(lambda: only_stats(hub).spooled == 1)
    exporter.fail = None

    def explode(logger: Any, method: str, event: dict[str, Any]) -> Any:
        raise RuntimeError("log pipeline down")

    saved = structlog.get_config()
    structlog.configure(processors=[explode])
    try:
        later = record(hub, 1, "after")
        received = exporter.wait_for_spans(2)
    finally:
        structlog.configure(**saved)
    assert sorted(received) == sorted(first + later)
    assert hub.flush(WAIT)


# -- replay by command ------------------------------------------------------------------------


def _toml(path: Path, exporter: dict[str, Any]) -> Path:
    lines = ["[configs.prod.exporters.sink]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in exporter.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.usefixtures("_restore_structlog")
def test_obshub_replay_sends_the_spool_of_a_config(tmp_path: Path, hub_factory: Any) -> None:
    spool_dir = tmp_path / "spool"
    down = Scripted(
        instance_name="sink", fail=retryable(), retry={"max_attempts": 1}, spool_dir=str(spool_dir)
    )
    hub = hub_factory(configs={"prod": {"service_name": "bot", "exporters": [down]}})
    sent = record(hub, 4)
    hub.score(trace_id="c" * 32, name="helpfulness", value=0.25)
    hub.shutdown(timeout=WAIT)
    assert len(on_disk(spool_dir)) == 5

    out_file = tmp_path / "out.jsonl"
    config = _toml(
        tmp_path / "replay.toml",
        {"type": "jsonl", "path": str(out_file), "spool_dir": str(spool_dir)},
    )
    out = io.StringIO()
    assert cli.main(["replay", "--config", str(config), "--timeout", "10"], out=out) == 0
    assert "prod/sink" in out.getvalue()
    records = _jsonl(out_file)
    assert sorted(r["span"]["span_id"] for r in records if r["kind"] == "ended") == sorted(sent)
    assert [r["score"]["name"] for r in records if r["kind"] == "score"] == ["helpfulness"]
    assert segments(spool_dir) == []


@pytest.mark.usefixtures("_restore_structlog")
def test_obshub_replay_file_sends_a_recorded_jsonl_file(tmp_path: Path, hub_factory: Any) -> None:
    recorded = tmp_path / "recorded.jsonl"
    hub = hub_factory(
        exporters=[obshub.JsonlExporter(path=str(recorded), realtime=True)], service_name="bot"
    )
    sent = record(hub, 3)
    hub.score(trace_id="d" * 32, name="helpfulness", value=1.0)
    assert hub.shutdown(timeout=WAIT)
    original = _jsonl(recorded)
    with recorded.open("a") as fh:
        fh.write("this line is not json\n")

    out_file = tmp_path / "out.jsonl"
    config = _toml(tmp_path / "replay.toml", {"type": "jsonl", "path": str(out_file)})
    out = io.StringIO()
    argv = ["replay", "--config", str(config), "--file", str(recorded), "--timeout", "10"]
    assert cli.main(argv, out=out) == 0
    assert "skipped 1 unreadable line(s)" in out.getvalue()
    replayed = _jsonl(out_file)
    # Every record again, ids included (started and ended events of 3 spans, 1 score).
    assert len(replayed) == len(original) == 7

    def key(r: dict[str, Any]) -> tuple[str, str]:
        item = r.get("span") or r["score"]
        return r["kind"], item.get("span_id") or item["id"]

    assert sorted(map(key, replayed)) == sorted(map(key, original))
    assert {r["span"]["span_id"] for r in replayed if r["kind"] == "ended"} == set(sent)


@pytest.mark.usefixtures("_restore_structlog")
def test_obshub_replay_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    config = _toml(tmp_path / "replay.toml", {"type": "memory"})
    out = io.StringIO()
    argv = ["replay", "--config", str(config), "--file", str(tmp_path / "nope.jsonl")]
    assert cli.main(argv, out=out) == 2
    assert f"error: --file {tmp_path / 'nope.jsonl'} does not exist" in out.getvalue()
    out = io.StringIO()
    assert cli.main(["replay", "--config", str(config), "--file", str(tmp_path)], out=out) == 2
    assert "is a directory" in out.getvalue()


@pytest.mark.usefixtures("_restore_structlog")
def test_obshub_replay_refuses_to_append_to_the_file_it_reads(tmp_path: Path) -> None:
    recorded = tmp_path / "traces.jsonl"
    config = _toml(tmp_path / "replay.toml", {"type": "jsonl", "path": str(recorded)})
    writer = obshub.Hub.from_config(str(config))
    record(writer, 2)
    assert writer.shutdown(timeout=WAIT)
    before = recorded.read_bytes()
    out = io.StringIO()
    argv = ["replay", "--config", str(config), "--file", str(recorded), "--timeout", "5"]
    assert cli.main(argv, out=out) == 2
    assert "refusing to replay" in out.getvalue()
    assert "prod/sink, which writes to that same file" in out.getvalue()
    assert recorded.read_bytes() == before


@pytest.mark.usefixtures("_restore_structlog")
def test_obshub_replay_of_a_file_of_junk_exits_non_zero(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n{}\n[1, 2]\n")
    config = _toml(tmp_path / "replay.toml", {"type": "memory"})
    out = io.StringIO()
    argv = ["replay", "--config", str(config), "--file", str(junk), "--timeout", "5"]
    assert cli.main(argv, out=out) == 1
    assert "skipped 3 unreadable line(s)" in out.getvalue()
    assert "error: nothing replayed" in out.getvalue()


def test_hub_replay_file_feeds_each_exporter_the_kinds_it_wants(
    tmp_path: Path, hub_factory: Any
) -> None:
    recorded = tmp_path / "recorded.jsonl"
    writer = hub_factory(exporters=[obshub.JsonlExporter(path=str(recorded), realtime=True)])
    sent = record(writer, 3)
    assert writer.shutdown(timeout=WAIT)

    memory = obshub.MemoryExporter()
    ended_only = Scripted()
    hub = hub_factory(exporters=[memory, ended_only])
    fed, bad = hub.replay_file(recorded, timeout=WAIT)
    assert bad == 0
    assert fed == {"default/memory": 6, "default/scripted": 3}
    assert [s.span_id for s in memory.spans()] == sent
    assert ended_only.span_ids() == sent
    assert {e.kind for e in memory.events} == {EventKind.STARTED, EventKind.ENDED}
