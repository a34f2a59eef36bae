"""Resident memory stays bounded by ``max_queue_size`` while the backend is stuck.

Records many two-span traces (the same trace as ``hotpath.py``) into an obshub
hub whose only exporter never returns from ``export()`` (it waits on an event
that is set only after the hub was shut down), with ``max_queue_size=10_000``.
RSS is sampled every ``--sample-every`` traces. Once the queue is full, every
further event must be dropped (and counted), and RSS must stop growing.

With ``--backend langfuse-stall`` the exporter is instead the real
``LangfuseExporter`` pointed at ``receiver.py --stall`` (a loopback server that
accepts requests and never answers), when ``obshub_langfuse`` is importable.

At the end ``hub.shutdown(timeout=1)`` must return within about a second.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

import obshub

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hotpath import SPANS_PER_TRACE, load_langfuse_exporter, obshub_trace_loop
from receiver import ReceiverProcess

MB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size (``/proc/self/statm``; peak RSS where that is missing)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak * (1 if sys.platform == "darwin" else 1024))


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak * (1 if sys.platform == "darwin" else 1024))


class StuckExporter(obshub.Exporter):
    """An exporter whose ``export()`` blocks until ``release`` is set (a hung backend)."""

    name: ClassVar[str] = "stuck"

    def __init__(self, *, release: threading.Event, **common: Any) -> None:
        super().__init__(**common)
        self.release = release
        self.calls = 0

    def export(self, events: Sequence[obshub.SpanEvent]) -> None:
        self.calls += 1
        self.release.wait()  # released only after the hub was shut down


def _stats(hub: obshub.Hub) -> dict[str, Any]:
    (only,) = hub.stats().values()
    return attrs.asdict(only)


def run(
    total: int,
    sample_every: int,
    max_queue_size: int,
    backend: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    release = threading.Event()
    receiver: ReceiverProcess | None = None
    hub: obshub.Hub | None = None
    samples: list[dict[str, Any]] = []
    try:
        gc.collect()
        rss_start = rss_bytes()
        if backend == "stuck":
            exporter: obshub.Exporter = StuckExporter(
                release=release, max_queue_size=max_queue_size, log_level="error"
            )
            description = "in-bench exporter whose export() never returns"
        else:
            cls, status = load_langfuse_exporter()
            if cls is None:
                raise SystemExit(f"--backend langfuse-stall needs obshub_langfuse ({status})")
            receiver = ReceiverProcess(stall=True, max_seconds=900)
            exporter = cls(
                public_key="pk-lf-bench",
                secret_key="sk-lf-bench",
                base_url=receiver.url,
                realtime=False,
                max_queue_size=max_queue_size,
                log_level="error",
            )
            description = f"LangfuseExporter -> stalled loopback receiver ({status})"
        hub = obshub.Hub(exporters=[exporter], service_name="obshub-bench-memory")
        record = obshub_trace_loop(hub)
        gc.collect()
        rss_hub = rss_bytes()
        samples.append({"traces": 0, "rss": rss_hub, "dropped": 0, "queued": 0, "s": 0.0})
        done = 0
        while done < total:
            n = min(sample_every, total - done)
            t0 = time.perf_counter()
            record(n)
            elapsed = time.perf_counter() - t0
            done += n
            stats = _stats(hub)
            sample = {
                "traces": done,
                "rss": rss_bytes(),
                "dropped": stats["dropped"],
                "queued": stats["queued"],
                "s": elapsed,
            }
            samples.append(sample)
            log(
                f"{done:>8} traces  rss {sample['rss'] / MB:7.1f} MB  queued {stats['queued']:>6}"
                f"  dropped {stats['dropped']:>8}  {elapsed / n * 1e6:6.1f} us/trace"
            )
        before_shutdown = _stats(hub)
        t0 = time.perf_counter()
        shutdown_ok = hub.shutdown(timeout=1)
        shutdown_s = time.perf_counter() - t0
        after_shutdown = _stats(hub)
        rss_end = samples[-1]["rss"]
    finally:
        release.set()  # let the stuck worker return so the process exits cleanly
        if hub is not None:
            hub.shutdown(timeout=1)
        if receiver is not None:
            receiver.close()

    full = next((s for s in samples if s["dropped"] > 0), None)
    events = total * SPANS_PER_TRACE
    accounted = before_shutdown["dropped"] + before_shutdown["queued"]
    first_full = full if full is not None else samples[-1]
    growth_after_full = rss_end - first_full["rss"]
    held = max(1, before_shutdown["queued"])
    rates = [s["s"] / sample_every * 1e6 for s in samples[1:] if s["traces"] > 0]
    return {
        "benchmark": "memory",
        "backend": backend,
        "description": description,
        "traces": total,
        "events": events,
        "max_queue_size": max_queue_size,
        "sample_every": sample_every,
        "rss_start_mb": rss_start / MB,
        "rss_after_hub_mb": rss_hub / MB,
        "rss_queue_full_mb": first_full["rss"] / MB,
        "queue_full_at_traces": first_full["traces"],
        "rss_end_mb": rss_end / MB,
        "rss_peak_mb": peak_rss_bytes() / MB,
        "growth_after_full_mb": growth_after_full / MB,
        "rss_per_queued_event_bytes": (first_full["rss"] - rss_hub) / held,
        "queued_before_shutdown": before_shutdown["queued"],
        "dropped_before_shutdown": before_shutdown["dropped"],
        "expected_dropped": events - before_shutdown["queued"],
        "accounted_events": accounted,
        "all_events_accounted": accounted == events,
        "exported": before_shutdown["exported"],
        "shutdown_seconds": shutdown_s,
        "shutdown_ok": shutdown_ok,
        "dropped_after_shutdown": after_shutdown["dropped"],
        "us_per_trace_while_dropping_median": sorted(rates)[len(rates) // 2] if rates else None,
        "samples": [
            {
                "traces": s["traces"],
                "rss_mb": round(s["rss"] / MB, 2),
                "queued": s["queued"],
                "dropped": s["dropped"],
            }
            for s in samples
        ],
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def bounded(result: dict[str, Any], slack_mb: float = 8.0) -> bool:
    """RSS stopped growing after the queue filled (within ``slack_mb``), nothing unaccounted."""
    return bool(
        result["growth_after_full_mb"] <= slack_mb
        and result["all_events_accounted"]
        and result["queued_before_shutdown"] <= result["max_queue_size"] + 1024
        and result["shutdown_seconds"] < 2.5
    )


def print_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    r = result
    out("")
    out(f"memory: backend stuck ({r['description']}), max_queue_size={r['max_queue_size']}")
    out(f"  traces recorded            {r['traces']:>12,}  ({r['events']:,} span events)")
    out(f"  RSS before hub             {r['rss_start_mb']:>12.1f} MB")
    out(f"  RSS hub built              {r['rss_after_hub_mb']:>12.1f} MB")
    out(
        f"  RSS queue full             {r['rss_queue_full_mb']:>12.1f} MB"
        f"  (first sample with drops, at {r['queue_full_at_traces']:,} traces)"
    )
    out(f"  RSS at end                 {r['rss_end_mb']:>12.1f} MB")
    out(f"  growth after queue full    {r['growth_after_full_mb']:>12.1f} MB")
    out(f"  peak RSS                   {r['rss_peak_mb']:>12.1f} MB")
    out(f"  RSS per queued event       {r['rss_per_queued_event_bytes']:>12,.0f} B")
    out(
        f"  queued (incl. in flight)   {r['queued_before_shutdown']:>12,}"
        f"  (queue {r['max_queue_size']:,} + one batch held by the stuck export)"
    )
    out(
        f"  dropped before shutdown    {r['dropped_before_shutdown']:>12,}"
        f"  (expected events - queued = {r['expected_dropped']:,})"
    )
    out(f"  all events accounted       {r['all_events_accounted']!s:>12}")
    out(
        f"  shutdown(timeout=1)        {r['shutdown_seconds']:>12.2f} s"
        f"  (returned {r['shutdown_ok']}; dropped after: {r['dropped_after_shutdown']:,})"
    )
    rate = r["us_per_trace_while_dropping_median"]
    if rate is not None:
        out(f"  recording while dropping   {rate:>12.1f} us/trace (median per sample)")
    out(f"  bounded                    {bounded(r)!s:>12}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--traces", type=int, default=None, help="traces to record (300000)")
    parser.add_argument("--sample-every", type=int, default=None, help="traces per RSS sample")
    parser.add_argument("--max-queue-size", type=int, default=10_000)
    parser.add_argument("--backend", choices=["stuck", "langfuse-stall"], default="stuck")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    total = args.traces or (40_000 if args.quick else 300_000)
    every = args.sample_every or (5_000 if args.quick else 10_000)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = run(total, every, args.max_queue_size, args.backend, log)
    result["quick"] = args.quick
    result["bounded"] = bounded(result)
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["bounded"] else 1


if __name__ == "__main__":
    sys.exit(main())
