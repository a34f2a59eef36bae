"""How large a burst the default queue absorbs, and the memory it costs.

An application records N two-span traces (agent run + generation with a
three-message prompt, fresh data per trace) in a tight loop, with **default**
exporter settings, a Langfuse exporter sending to a loopback receiver in its
own process. For each N it prints the spans dropped, the queue's peak length,
the process's resident memory added while the burst sits in the queue, and the
seconds until everything was delivered. The same bursts are run with the old
default (``max_queue_size = 10000``) in the same run, for comparison.

It also calibrates the queue's byte estimate (``max_queue_bytes``): with the
backend stalled, it compares the estimate of what is queued with the memory
tracemalloc sees allocated for it.

    .venv/bin/pip install -q -e '.[bench]' -e plugins/otlp -e plugins/langfuse
    .venv/bin/python bench/burst.py            # --quick for a short run
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import fresh_data
from receiver import ReceiverProcess

import obshub
from obshub.plugin import DEFAULT_MAX_QUEUE_BYTES, DEFAULT_MAX_QUEUE_SIZE

TRACES_PATH = "/api/public/otel/v1/traces"
RESULTS = Path(__file__).resolve().parent / "results" / "burst.json"


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_hub(url: str, **settings: Any) -> obshub.Hub:
    from obshub_langfuse import LangfuseExporter

    exporter = LangfuseExporter(public_key="pk-lf-bench", secret_key="sk-lf-bench", base_url=url)
    if settings:
        exporter = LangfuseExporter(
            public_key="pk-lf-bench", secret_key="sk-lf-bench", base_url=url, **settings
        )
    return obshub.Hub(exporters=[exporter], service_name="burst")


def record(hub: obshub.Hub, n: int, first: int = 0) -> None:
    span = hub.span
    for i in range(first, first + n):
        question, messages, answer = fresh_data(i)
        with span("support-agent", type="agent_run", input=question, session_id="s-1") as agent:
            with span(
                "gpt-4o",
                type="model_generation",
                model="gpt-4o",
                provider="openai",
                input=messages,
                parameters={"temperature": 0.2},
            ) as gen:
                gen.update(output=answer, usage={"input": 812, "output": 95})
            agent.update(output=answer)


def one_burst(traces: int, label: str, **settings: Any) -> dict[str, Any]:
    with ReceiverProcess(track_ids=False) as receiver:
        hub = make_hub(receiver.url, **settings)
        record(hub, 50)  # warm up: connections, imports, caches
        assert hub.flush(30)
        receiver.reset()
        gc.collect()
        rss_before = rss_bytes()
        started = time.perf_counter()
        record(hub, traces, first=100)
        record_s = time.perf_counter() - started
        stats = next(iter(hub.stats().values()))
        peak_queued = stats.queued
        rss_added = rss_bytes() - rss_before
        flushed = hub.flush(120)
        drained_s = time.perf_counter() - started
        stats = next(iter(hub.stats().values()))
        hub.shutdown(10)
        got = receiver.stats()
    spans = 2 * traces
    arrived = sum(p.get("spans", 0) for p in got.get("paths", {}).values())
    return {
        "defaults": label,
        "traces": traces,
        "spans": spans,
        "record_s": round(record_s, 3),
        "offered_spans_per_s": round(spans / record_s),
        "peak_queued": peak_queued,
        "dropped": stats.dropped,
        "dropped_pct": round(100 * stats.dropped / spans, 1),
        "arrived": arrived,
        "rss_added_mb": round(rss_added / 2**20, 1),
        "drained_s": round(drained_s, 2),
        "flush_ok": bool(flushed),
    }


def calibrate(traces: int) -> dict[str, Any]:
    """Estimated vs traced bytes of queued records, with the backend stalled."""
    with ReceiverProcess(stall=True, track_ids=False) as receiver:
        hub = make_hub(receiver.url, batch={"max_size": 1, "interval": 60}, timeout=120)
        record(hub, 2)  # one record goes in flight and stalls
        (channel,) = hub._channels()
        gc.collect()
        tracemalloc.start()
        before_traced = tracemalloc.get_traced_memory()[0]
        before_estimate = channel._bytes
        record(hub, traces, first=1000)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before_traced
        tracemalloc.stop()
        estimate = channel._bytes - before_estimate
        hub.shutdown(0.5)
    return {
        "traces": traces,
        "traced_bytes_per_trace": round(traced / traces),
        "estimated_bytes_per_trace": round(estimate / traces),
        "estimate_over_traced": round(estimate / traced, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer and smaller bursts")
    args = parser.parse_args(argv)
    bursts = [5_000, 20_000] if args.quick else [5_000, 10_000, 20_000, 50_000, 100_000]

    print(f"obshub {obshub.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(
        f"defaults: max_queue_size={DEFAULT_MAX_QUEUE_SIZE}, "
        f"max_queue_bytes={DEFAULT_MAX_QUEUE_BYTES // 2**20} MiB\n"
    )
    calibration = calibrate(5_000 if args.quick else 20_000)
    print(
        "byte estimate: {estimated_bytes_per_trace} B/trace estimated vs "
        "{traced_bytes_per_trace} B/trace traced (ratio {estimate_over_traced})\n".format(
            **calibration
        )
    )
    rows: list[dict[str, Any]] = []
    header = (
        f"{'defaults':<10} {'traces':>8} {'offered/s':>10} {'peak q':>8} {'dropped':>8} "
        f"{'drop %':>7} {'RSS +MB':>8} {'drained s':>9}"
    )
    print(header)
    for traces in bursts:
        for label, settings in (("now", {}), ("old", {"max_queue_size": 10_000})):
            row = one_burst(traces, label, **settings)
            rows.append(row)
            print(
                f"{label:<10} {traces:>8} {row['offered_spans_per_s']:>10} "
                f"{row['peak_queued']:>8} {row['dropped']:>8} {row['dropped_pct']:>7} "
                f"{row['rss_added_mb']:>8} {row['drained_s']:>9}"
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"calibration": calibration, "bursts": rows}, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
