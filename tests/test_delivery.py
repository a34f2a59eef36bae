"""Delivery per exporter: realtime vs batch, bounded queues, retries, isolation, kinds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

import obshub
from obshub import EventKind, ExportError, Retry, SpanEvent

WAIT = 5.0
#: How long a negative check waits for something that must not happen.
QUIET = 0.2

FAST_RETRY = Retry(initial_backoff=0.001, max_backoff=0.01, jitter=0.0)


class SignallingExporter(obshub.Exporter):
    """Records batches and sets ``arrived`` when at least ``expect`` events arrived."""

    name = "signalling"

    def __init__(self, *, expect: int = 1, **common: Any) -> None:
        super().__init__(**common)
        self.expect = expect
        self.arrived = threading.Event()
        self.batches: list[list[SpanEvent]] = []
        self._lock = threading.Lock()

    def export(self, events: Sequence[SpanEvent]) -> None:
        with self._lock:
            self.batches.append(list(events))
            if sum(len(b) for b in self.batches) >= self.expect:
                self.arrived.set()

    @property
    def events(self) -> list[SpanEvent]:
        with self._lock:
            return [e for b in self.batches for e in b]


class ScriptedExporter(obshub.Exporter):
    """Raises the scripted errors one per call, then accepts; records call times."""

    name = "scripted"

    def __init__(self, *, errors: Sequence[BaseException] = (), **common: Any) -> None:
        common.setdefault("realtime", True)
        common.setdefault("retry", FAST_RETRY)
        super().__init__(**common)
        self.errors = list(errors)
        self.calls: list[float] = []
        self.accepted: list[SpanEvent] = []

    def export(self, events: Sequence[SpanEvent]) -> None:
        self.calls.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        self.accepted.extend(events)


def record(hub: obshub.Hub, count: int, prefix: str = "span") -> None:
    for i in range(count):
        with hub.span(f"{prefix}-{i}"):
            pass


def finishes_while(blocked: threading.Event, work: Any) -> Any:
    """Run ``work()`` in a thread; assert it returns while ``blocked`` is still unset.

    Proves ``work`` did not wait for whatever ``blocked`` holds back (an
    exporter stuck in ``export``), without measuring time.
    """
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "it waited for the blocked exporter"
    assert not blocked.is_set()
    return result[0]


# -- realtime and batch --------------------------------------------------------------


def test_a_realtime_exporter_receives_a_span_without_any_flush(hub_factory: Any) -> None:
    exporter = SignallingExporter(realtime=True)
    hub = hub_factory(exporters=[exporter])
    with hub.span("answer"):
        pass
    assert exporter.arrived.wait(WAIT)
    assert [e.span.name for e in exporter.events] == ["answer"]


def test_a_batch_exporter_receives_nothing_before_its_interval_until_flush(
    hub_factory: Any,
) -> None:
    exporter = SignallingExporter(batch={"max_size": 100, "interval": 60})
    hub = hub_factory(exporters=[exporter])
    record(hub, 3)
    assert not exporter.arrived.wait(QUIET)
    assert hub.stats()["default/signalling"].queued == 3
    assert hub.flush(timeout=WAIT)
    assert len(exporter.events) == 3
    assert hub.stats()["default/signalling"].exported == 3


def test_a_full_batch_is_sent_by_itself_without_waiting_for_the_interval(
    hub_factory: Any,
) -> None:
    exporter = SignallingExporter(expect=5, batch={"max_size": 5, "interval": 60})
    hub = hub_factory(exporters=[exporter])
    record(hub, 4)
    assert not exporter.arrived.wait(QUIET)
    record(hub, 1, prefix="fifth")
    assert exporter.arrived.wait(WAIT)
    assert [len(b) for b in exporter.batches] == [5]


def test_a_batch_exporter_sends_when_its_interval_passes(hub_factory: Any) -> None:
    exporter = SignallingExporter(batch={"max_size": 100, "interval": 0.05})
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert exporter.arrived.wait(WAIT)


def test_batches_never_exceed_max_size(hub_factory: Any) -> None:
    exporter = SignallingExporter(batch={"max_size": 5, "interval": 60})
    hub = hub_factory(exporters=[exporter])
    record(hub, 12)
    assert hub.flush(timeout=WAIT)
    sizes = [len(b) for b in exporter.batches]
    assert sum(sizes) == 12
    assert max(sizes) <= 5


def test_a_realtime_exporter_coalesces_what_queued_while_it_was_busy(
    hub_factory: Any, gated_exporter: Any
) -> None:
    exporter = gated_exporter()
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert exporter.entered.wait(WAIT)
    record(hub, 5, prefix="queued")
    exporter.gate.set()
    assert hub.flush(timeout=WAIT)
    assert len(exporter.received) == 6
    assert hub.stats()["default/gated"].exported == 6


def test_flush_returns_false_when_an_exporter_does_not_finish_in_time(
    hub_factory: Any, gated_exporter: Any
) -> None:
    exporter = gated_exporter()
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert exporter.entered.wait(WAIT)
    flushed = finishes_while(exporter.gate, lambda: hub.flush(timeout=0.2))
    assert not flushed
    assert flushed.timed_out
    exporter.gate.set()
    assert hub.flush(timeout=WAIT)


def test_flush_also_asks_the_exporter_to_flush_its_own_buffer(hub_factory: Any) -> None:
    class Buffering(obshub.MemoryExporter):
        name = "buffering"

        def __init__(self, **common: Any) -> None:
            super().__init__(**common)
            self.flushes = 0

        def flush(self) -> None:
            self.flushes += 1

    exporter = Buffering()
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert hub.flush(timeout=WAIT)
    assert exporter.flushes == 1


# -- the application never waits --------------------------------------------------------


def test_a_stuck_exporter_does_not_hold_up_the_application(
    hub_factory: Any, gated_exporter: Any
) -> None:
    exporter = gated_exporter(batch={"max_size": 1000, "interval": 60})
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert exporter.entered.wait(WAIT)  # the first span went in flight and sticks there

    def record_1000() -> None:
        for i in range(1000):
            with hub.span("agent", type="agent_run", input={"i": i}) as span:
                span.update(output=i)

    finishes_while(exporter.gate, record_1000)
    exporter.gate.set()
    assert hub.flush(timeout=WAIT)
    assert len(exporter.received) == 1001


def test_a_full_queue_drops_and_counts_instead_of_blocking(
    hub_factory: Any, gated_exporter: Any
) -> None:
    exporter = gated_exporter(max_queue_size=3)
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert exporter.entered.wait(WAIT)  # the first span is in flight, the queue empty
    finishes_while(exporter.gate, lambda: record(hub, 10, prefix="more"))
    stats = hub.stats()["default/gated"]
    assert stats.dropped == 7
    assert stats.queued == 4  # three waiting, one in flight
    exporter.gate.set()
    flushed = hub.flush(timeout=WAIT)
    assert not flushed, "flush() must report the drops"
    assert flushed.dropped == 7
    stats = hub.stats()["default/gated"]
    assert (stats.exported, stats.dropped, stats.failed) == (4, 7, 0)
    assert len(exporter.received) == 4
    record(hub, 1, prefix="later")
    assert hub.flush(timeout=WAIT), "losses are reported once, by the next flush"


def test_dropped_events_are_reported_in_a_warning_naming_the_exporter(
    hub_factory: Any, gated_exporter: Any
) -> None:
    from structlog.testing import capture_logs

    exporter = gated_exporter(max_queue_size=1, instance_name="tiny")
    hub = hub_factory(exporters=[exporter])
    with capture_logs() as logs:
        record(hub, 1)
        assert exporter.entered.wait(WAIT)
        record(hub, 5)
    drops = [e for e in logs if e["event"] == "events_dropped"]
    assert drops
    assert drops[0]["exporter"] == "tiny"
    assert drops[0]["reason"] == "queue_full"
    assert drops[0]["log_level"] == "warning"


# -- retries -----------------------------------------------------------------------------


def test_a_retryable_error_is_retried_with_backoff_and_delivered_once(
    hub_factory: Any,
) -> None:
    exporter = ScriptedExporter(
        errors=[ExportError("503", retryable=True), ExportError("503", retryable=True)],
        retry=Retry(initial_backoff=0.01, max_backoff=1.0, jitter=0.0),
    )
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert hub.flush(timeout=WAIT)
    assert [e.span.name for e in exporter.accepted] == ["span-0"]
    assert len(exporter.calls) == 3
    first_wait = exporter.calls[1] - exporter.calls[0]
    second_wait = exporter.calls[2] - exporter.calls[1]
    assert first_wait >= 0.009
    assert second_wait >= 0.019  # doubled
    stats = hub.stats()["default/scripted"]
    assert (stats.exported, stats.retried, stats.failed) == (1, 2, 0)


def test_a_non_retryable_error_is_not_retried_and_is_counted_as_failed(
    hub_factory: Any,
) -> None:
    exporter = ScriptedExporter(errors=[ExportError("401 unauthorized", status=401)])
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert not hub.flush(timeout=WAIT)
    assert len(exporter.calls) == 1
    assert exporter.accepted == []
    stats = hub.stats()["default/scripted"]
    assert (stats.exported, stats.retried, stats.failed) == (0, 0, 1)
    record(hub, 1, prefix="next")
    assert hub.flush(timeout=WAIT)  # only failures since the request count


def test_retries_stop_after_max_attempts(hub_factory: Any) -> None:
    exporter = ScriptedExporter(
        errors=[ExportError("503", retryable=True)] * 10,
        retry=Retry(max_attempts=3, initial_backoff=0.001, jitter=0.0),
    )
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert not hub.flush(timeout=WAIT)
    assert len(exporter.calls) == 3
    stats = hub.stats()["default/scripted"]
    assert (stats.retried, stats.failed, stats.exported) == (2, 1, 0)


def test_a_server_retry_after_is_honoured_instead_of_the_backoff(hub_factory: Any) -> None:
    exporter = ScriptedExporter(
        errors=[ExportError("429", retryable=True, retry_after=0.05, status=429)],
        retry=Retry(initial_backoff=30.0, jitter=0.0),
    )
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert hub.flush(timeout=WAIT)  # a 30 s backoff would time this out
    assert len(exporter.calls) == 2
    assert exporter.calls[1] - exporter.calls[0] >= 0.045


def test_a_retry_after_given_as_header_text_is_understood(hub_factory: Any) -> None:
    exporter = ScriptedExporter(
        errors=[ExportError("429", retryable=True, retry_after="0.05")],  # type: ignore[arg-type]
        retry=Retry(initial_backoff=30.0, jitter=0.0),
    )
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert hub.flush(timeout=WAIT)
    assert len(exporter.calls) == 2
    assert exporter.calls[1] - exporter.calls[0] >= 0.045


def test_an_exporter_crash_is_contained_counted_and_not_retried(hub_factory: Any) -> None:
    exporter = ScriptedExporter(errors=[RuntimeError("bug in the exporter")])
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert not hub.flush(timeout=WAIT)
    record(hub, 1, prefix="after")
    assert hub.flush(timeout=WAIT)
    assert [e.span.name for e in exporter.accepted] == ["after-0"]
    stats = hub.stats()["default/scripted"]
    assert (stats.failed, stats.retried, stats.exported) == (1, 0, 1)


def test_a_raising_exporter_is_isolated_from_a_healthy_one(hub_factory: Any) -> None:
    class AlwaysFails(obshub.Exporter):
        name = "broken"

        def export(self, events: Sequence[SpanEvent]) -> None:
            raise ExportError("backend down")

    healthy = obshub.MemoryExporter(realtime=False, batch={"max_size": 7, "interval": 60})
    hub = hub_factory(exporters=[AlwaysFails(realtime=True), healthy])
    record(hub, 20)
    assert not hub.flush(timeout=WAIT)
    assert sorted(s.name for s in healthy.spans()) == sorted(f"span-{i}" for i in range(20))
    stats = hub.stats()
    assert stats["default/broken"].failed == 20
    assert stats["default/broken"].exported == 0
    assert stats["default/memory"].exported == 40  # started and ended events
    assert stats["default/memory"].failed == 0


# -- event kinds, processors and scores ----------------------------------------------------


def test_exporters_receive_only_the_event_kinds_they_ask_for(hub_factory: Any) -> None:
    class StartsOnly(SignallingExporter):
        name = "starts"
        event_kinds = frozenset({EventKind.STARTED})

    class Updates(SignallingExporter):
        name = "updates"
        event_kinds = frozenset({EventKind.UPDATED, EventKind.ENDED})

    starts = StartsOnly(realtime=True)
    updates = Updates(realtime=True)
    ends = SignallingExporter(realtime=True)
    everything = obshub.MemoryExporter()
    hub = hub_factory(exporters=[starts, updates, ends, everything])
    with hub.span("s") as span:
        span.update(output=1)
        span.event("e")
    assert hub.flush(timeout=WAIT)

    def kinds(events: Sequence[SpanEvent]) -> list[tuple[str, str]]:
        return [(e.kind.value, e.span.name) for e in events]

    assert kinds(starts.events) == [("started", "s")]
    assert kinds(updates.events) == [("updated", "s"), ("ended", "e"), ("ended", "s")]
    assert kinds(ends.events) == [("ended", "e"), ("ended", "s")]
    assert kinds(everything.events) == [
        ("started", "s"),
        ("updated", "s"),
        ("ended", "e"),
        ("ended", "s"),
    ]


def test_a_processor_can_drop_events_and_a_failing_processor_drops_only_its_event(
    hub_factory: Any,
) -> None:
    class DropDebug:
        def process(self, span: obshub.Span) -> obshub.Span | None:
            if span.name == "explode":
                raise RuntimeError("processor bug")
            return None if span.name.startswith("debug") else span

    memory = obshub.MemoryExporter()
    hub = hub_factory(exporters=[memory], processors=[DropDebug()])
    for name in ("keep", "debug-noise", "explode", "keep-too"):
        with hub.span(name):
            pass
    assert hub.flush(timeout=WAIT)
    assert [s.name for s in memory.spans()] == ["keep", "keep-too"]


def test_scores_go_only_to_exporters_that_take_scores(hub_factory: Any) -> None:
    memory = obshub.MemoryExporter()
    spans_only = SignallingExporter(realtime=True)
    hub = hub_factory(exporters=[memory, spans_only])
    with hub.span("agent") as agent:
        pass
    hub.score(trace_id=agent.trace_id, name="helpfulness", value=0.9, comment="good")
    assert hub.flush(timeout=WAIT)
    assert memory.wait_for_scores(1, timeout=WAIT)
    (score,) = memory.scores
    assert (score.trace_id, score.name, score.value, score.comment) == (
        agent.trace_id,
        "helpfulness",
        0.9,
        "good",
    )
    assert score.data_type is obshub.ScoreDataType.NUMERIC
    assert hub.stats()["default/signalling"].failed == 0


# -- lifecycle --------------------------------------------------------------------------


def test_events_recorded_after_shutdown_are_dropped_and_counted(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory()
    record(hub, 1)
    assert hub.shutdown(timeout=WAIT)
    record(hub, 2, prefix="late")
    assert [s.name for s in memory.spans()] == ["span-0"]
    assert hub.stats()[f"default/{memory.instance_name}"].dropped == 4  # started and ended, twice


def test_shutdown_delivers_what_is_queued_and_calls_the_exporter_shutdown_once(
    hub_factory: Any,
) -> None:
    class Closing(SignallingExporter):
        name = "closing"

        def __init__(self, **common: Any) -> None:
            super().__init__(**common)
            self.shutdowns = 0

        def shutdown(self) -> None:
            self.shutdowns += 1

    exporter = Closing(batch={"max_size": 100, "interval": 60})
    hub = hub_factory(exporters=[exporter])
    record(hub, 3)
    assert hub.shutdown(timeout=WAIT)
    assert hub.shutdown(timeout=WAIT)
    assert len(exporter.events) == 3
    assert exporter.shutdowns == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_delivers_its_own_spans(tmp_path: Any) -> None:
    script = textwrap.dedent(
        """
        import os, sys
        import obshub

        memory = obshub.MemoryExporter()
        hub = obshub.Hub(exporters=[memory])
        with hub.span("parent-before-fork"):
            pass
        assert hub.flush(5)
        pid = os.fork()
        if pid == 0:
            with hub.span("in-child"):
                pass
            ok = hub.flush(5) and [s.name for s in memory.spans()][-1] == "in-child"
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        with hub.span("parent-after-fork"):
            pass
        assert hub.flush(5)
        names = [s.name for s in memory.spans()]
        assert names == ["parent-before-fork", "parent-after-fork"], names
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


def test_after_a_timed_out_shutdown_nothing_is_counted_both_queued_and_dropped(
    hub_factory: Any, gated_exporter: Any
) -> None:
    exporter = gated_exporter()
    hub = hub_factory(exporters=[exporter])
    record(hub, 1)
    assert exporter.entered.wait(WAIT)  # stuck in export, never to return in time
    record(hub, 2, prefix="waiting")
    assert not hub.shutdown(timeout=0.2)
    stats = hub.stats()["default/gated"]
    assert (stats.queued, stats.dropped, stats.exported) == (0, 3, 0)
    exporter.gate.set()
