"""Tail sampling: decided on the worker when a trace completes, per config and per exporter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import obshub
from obshub._config import ConfigError
from obshub._delivery.tail import TailBuffer
from obshub._sampling import Sampler, TailRule, ratio_keeps
from obshub.spans import EventKind, Span, SpanEvent

WAIT = 5.0
TAIL = {"strategy": "tail", "keep": ["error", "warning"], "slower_than": 5.0}


def record_mix(hub: obshub.Hub) -> dict[str, str]:
    """One trace of each kind, plus 200 ordinary ones; trace id -> kind."""
    kinds: dict[str, str] = {}
    with hub.span("failing") as root:
        with hub.span("step", level="error"):
            pass
        kinds[root.trace_id] = "error"
    with hub.span("warned", level="warning") as root:
        kinds[root.trace_id] = "warning"
    with hub.span("slow", start_time=time.time_ns() - 10 * 10**9) as root:
        kinds[root.trace_id] = "slow"
    with hub.span("costly") as root:
        with hub.span("llm", type="generation", cost={"total": 0.02}):
            pass
        kinds[root.trace_id] = "costly"
    with hub.span("vip", attributes={"customer": "vip"}) as root:
        kinds[root.trace_id] = "vip"
    for i in range(200):
        with hub.span(f"ok{i}") as root, hub.span("child"):
            pass
        kinds[root.trace_id] = "ok"
    return kinds


def traces(memory: obshub.MemoryExporter) -> set[str]:
    return {s.trace_id for s in memory.spans()}


def test_tail_rules_keep_every_interesting_trace_and_the_ratio_of_the_rest(
    hub_factory: Any,
) -> None:
    everything = obshub.MemoryExporter(instance_name="local")
    saas = obshub.MemoryExporter(
        instance_name="saas",
        sampling={**TAIL, "costlier_than": 0.01, "match": {"customer": "vip"}, "ratio": 0.05},
    )
    errors_only = obshub.MemoryExporter(
        instance_name="errors", sampling={"strategy": "tail", "keep": ["error"]}
    )
    hub = hub_factory(exporters=[everything, saas, errors_only])
    kinds = record_mix(hub)
    assert hub.flush(WAIT)
    assert traces(everything) == set(kinds)
    expected = {t for t, k in kinds.items() if k != "ok" or ratio_keeps(t, 0.05)}
    assert traces(saas) == expected
    assert {t for t, k in kinds.items() if k != "ok"} < expected  # and some of the rest
    assert traces(errors_only) == {t for t, k in kinds.items() if k == "error"}
    # A kept trace arrives whole: every span and event of it.
    for trace_id in traces(saas):
        assert len([s for s in saas.spans() if s.trace_id == trace_id]) == len(
            [s for s in everything.spans() if s.trace_id == trace_id]
        )


def test_the_decision_runs_on_the_worker_not_the_application_thread(hub_factory: Any) -> None:
    seen: set[str] = set()
    original = TailRule.decide

    def spy(self: TailRule, trace_id: str, spans: Any) -> bool:
        seen.add(threading.current_thread().name)
        return original(self, trace_id, spans)

    memory = obshub.MemoryExporter(sampling=TAIL)
    hub = hub_factory(exporters=[memory])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TailRule, "decide", spy)
        record_mix(hub)
        assert hub.flush(WAIT)
    assert seen
    assert threading.current_thread().name not in seen


def test_a_config_tail_sampler_decides_the_same_for_each_of_its_exporters(
    hub_factory: Any,
) -> None:
    a = obshub.MemoryExporter(instance_name="a")
    b = obshub.MemoryExporter(instance_name="b", batch={"max_size": 7, "interval": 0.05})
    narrower = obshub.MemoryExporter(
        instance_name="narrower", sampling={"strategy": "ratio", "probability": 0.5}
    )
    hub = hub_factory(exporters=[a, b, narrower], sampling={**TAIL, "ratio": 0.2})
    kinds = record_mix(hub)
    assert hub.flush(WAIT)
    expected = {t for t, k in kinds.items() if k in ("error", "warning", "slow")} | {
        t for t in kinds if ratio_keeps(t, 0.2)
    }
    assert traces(a) == traces(b) == expected
    # An exporter-level sampler sees only what its config kept.
    assert traces(narrower) == {t for t in expected if ratio_keeps(t, 0.5)}


def test_a_trace_still_open_is_held_until_its_root_ends(hub_factory: Any) -> None:
    memory = obshub.MemoryExporter(sampling={"strategy": "tail", "keep": ["error"]})
    hub = hub_factory(exporters=[memory])
    with hub.span("root") as root:
        with hub.span("child"):
            pass
        assert hub.flush(WAIT)
        assert memory.spans() == []  # held: the trace is not complete
        root.update(level="error")
    assert hub.flush(WAIT)
    assert [s.name for s in memory.spans()] == ["child", "root"]


def test_overflowing_traces_are_decided_by_the_head_rule_and_counted(hub_factory: Any) -> None:
    keep_none = obshub.MemoryExporter(
        instance_name="none",
        sampling={"strategy": "tail", "keep": ["error"], "ratio": 0.0, "max_spans": 3},
    )
    keep_all = obshub.MemoryExporter(
        instance_name="all",
        sampling={"strategy": "tail", "keep": ["error"], "ratio": 1.0, "max_spans": 3},
    )
    hub = hub_factory(exporters=[keep_none, keep_all])
    with hub.span("big", level="error"):
        for i in range(5):
            with hub.span(f"c{i}"):
                pass
    assert hub.flush(WAIT)
    # Too big to hold: decided by the ratio (0 and 1), not by its error.
    assert keep_none.spans() == []
    assert len(keep_all.spans()) == 6
    stats = {s.exporter: s for s in hub.stats().values()}
    assert stats["none"].tail_overflow == stats["all"].tail_overflow == 1
    assert stats["none"].dropped == 0  # sampled out: handled, not lost


def _event(trace_id: str, span_id: str, parent: str | None, **fields: Any) -> SpanEvent:
    span = Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name="s", **fields)
    return SpanEvent(kind=EventKind.ENDED, span=span, config_name="c", service_name="s")


def test_buffers_are_bounded_in_traces_and_time() -> None:
    now = [100.0]
    rule = TailRule(ratio=0.0, max_traces=2, max_wait=10.0)
    buffer = TailBuffer([rule], lambda: now[0])
    out: list[SpanEvent] = []
    ids = [f"{i:032x}" for i in range(1, 5)]
    for i, trace_id in enumerate(ids[:3]):
        assert buffer.offer(_event(trace_id, f"{i:016x}", "f" * 16), out) == (1 if i == 2 else 0)
    assert buffer.overflow == 1
    assert buffer.decision(ids[0]) is False
    assert buffer.held == 2
    now[0] += 11.0
    assert buffer.expire(out) == 2
    assert buffer.held == 0
    assert buffer.overflow == 3
    assert out == []
    # A late span of a decided trace follows the decision.
    assert buffer.offer(_event(ids[1], "a" * 16, None, level="error"), out) == 1


def test_tail_settings_are_validated() -> None:
    assert Sampler.from_config(TAIL).tail == TailRule(
        keep=frozenset({"error", "warning"}), slower_than=5.0
    )
    for bad, key in [
        ({"keep": ["fatal"]}, "keep"),
        ({"ratio": 2}, "ratio"),
        ({"slower_than": "5s"}, "slower_than"),
        ({"max_traces": 0}, "max_traces"),
        ({"nope": 1}, "nope"),
    ]:
        with pytest.raises(ConfigError) as caught:
            Sampler.from_config({"strategy": "tail", **bad})
        assert caught.value.key == key


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_shares_stay_exact_across_exporters_and_a_forked_process(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, os, sys
        import obshub

        tail = {"strategy": "tail", "keep": ["error"], "ratio": 0.1}
        local = obshub.MemoryExporter(instance_name="local")
        saas = obshub.MemoryExporter(instance_name="saas", sampling=tail)
        hub = obshub.Hub(exporters=[local, saas])

        def run(label):
            for i in range(150):
                with hub.span(f"{label}{i}", level="error" if i % 50 == 0 else "default"):
                    pass
            assert hub.flush(5)
            found = {
                "local": sorted({s.trace_id for s in local.spans()}),
                "saas": sorted({s.trace_id for s in saas.spans()}),
                "errors": sorted({s.trace_id for s in local.spans() if s.level.value == "error"}),
            }
            with open(f"{label}.json", "w") as fh:
                json.dump(found, fh)

        pid = os.fork()
        if pid == 0:
            local.events.clear(); saas.events.clear()
            run("child")
            os._exit(0)
        run("parent")
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for label in ("parent", "child"):
        found = json.loads((tmp_path / f"{label}.json").read_text())
        assert len(found["local"]) == 150
        expected = set(found["errors"]) | {t for t in found["local"] if ratio_keeps(t, 0.1)}
        assert set(found["saas"]) == expected, label
        assert len(found["errors"]) == 3


def test_a_trace_held_past_max_wait_is_decided_by_its_ratio_without_new_traffic(
    hub_factory: Any,
) -> None:
    from obshub.testing import wait_for

    memory = obshub.MemoryExporter(
        sampling={"strategy": "tail", "keep": ["error"], "ratio": 1.0, "max_wait": 0.05}
    )
    hub = hub_factory(exporters=[memory])
    with hub.span("root"):
        with hub.span("child"):
            pass
        # The root is still open: the worker decides by the ratio (1.0) on its own.
        assert wait_for(lambda: [s.name for s in memory.spans()] == ["child"], timeout=WAIT)
    assert hub.flush(WAIT)
    assert [s.name for s in memory.spans()] == ["child", "root"]  # the late root follows
    assert {s.exporter: s for s in hub.stats().values()}["memory"].tail_overflow == 1
