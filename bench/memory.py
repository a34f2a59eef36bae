"""Resident memory while the backend is stalled: bounded by ``max_queue_size``?

Each peer runs in its own fresh Python process (so peak RSS is its own) with
its own ``receiver.py --stall`` (a loopback server that accepts requests and
never answers) and a span queue of ``--max-queue-size`` spans (10,000):

- ``obshub-langfuse``: ``obshub.Hub`` + ``LangfuseExporter(max_queue_size=...)``;
- ``obshub-stuck``: obshub with an in-bench exporter whose ``export()`` blocks
  until the hub was shut down (no HTTP at all);
- ``otel``: OpenTelemetry ``BatchSpanProcessor(max_queue_size=...)`` + OTLP/HTTP;
- ``langfuse-sdk``: the Langfuse SDK, ``OTEL_BSP_MAX_QUEUE_SIZE=...``.

Each records two-span traces, every trace with its own newly built question,
messages and answer (a live application's data: what a queued span keeps
alive is part of its cost), until ``--traces`` traces (500,000 = 1,000,000
spans). The other peers are much slower to record, so they stop after
``--max-seconds`` (15 s: still many times the queue) to keep the suite short;
the table says how many spans each recorded. RSS (``/proc/self/statm``) is sampled
every ``--sample-every`` traces. Reported: RSS after set-up, when the queue
first became full, at the end; growth after the queue was full (target: none);
peak RSS (``ru_maxrss``); RSS per queued span (RSS growth from set-up to
queue full, over the spans held: queue + the batch stuck in the exporter). For
obshub also: the dropped count (must be spans - queued) and how long
``hub.shutdown(timeout=1)`` took (must be ~1 s). The OTel and Langfuse peers
are not shut down (their shutdown waits up to 30 s on the stalled export);
their process just ends.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import obshub

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import (
    SPANS_PER_TRACE,
    LangfuseSdkPeer,
    ObshubLangfusePeer,
    ObshubPeer,
    OtelPeer,
    Peer,
    langfuse_sdk_status,
    load_langfuse_exporter,
)
from receiver import ReceiverProcess

MB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DEFAULT_PEERS = ("obshub-langfuse", "otel", "langfuse-sdk")
ALL_PEERS = ("obshub-langfuse", "obshub-stuck", "otel", "langfuse-sdk")
OTEL_BATCH = 512  # spans the BatchSpanProcessor hands to the (stuck) exporter at once
GROWTH_TARGET_MB = 2.0  # "no growth": at most this much once the queue is full and settled
SETTLE_QUEUES = 5  # traces = 5 x max_queue_size (10 queues of spans) after the first drop


def rss_bytes() -> int:
    """Current resident set size (``/proc/self/statm``; peak RSS where that is missing)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return peak_rss_bytes()


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


def _held(peer: Peer, max_queue_size: int) -> tuple[int, bool]:
    """Spans the peer holds now (queued plus in the stuck export); is its queue full?

    obshub counts what it holds and drops; OpenTelemetry's queue is a deque
    with ``maxlen``, full when its length reaches it (the next span pushes the
    oldest out), with one batch of 512 taken by the stuck exporter.
    """
    if isinstance(peer, ObshubPeer):
        stats = peer.stats()
        return int(stats["queued"]), stats["dropped"] > 0
    queue = int(peer.queue_length())  # type: ignore[attr-defined]
    return queue + (OTEL_BATCH if queue >= OTEL_BATCH else 0), queue >= max_queue_size


def run_peer(
    name: str,
    total: int,
    sample_every: int,
    max_queue_size: int,
    max_seconds: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """One peer against a stalled backend, in this process."""
    release = threading.Event()
    receiver: ReceiverProcess | None = None
    peer: Peer | None = None
    samples: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    # Every dropped span makes the OTel SDK log a warning: keep the terminal readable.
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    logging.getLogger("langfuse").setLevel(logging.CRITICAL)
    try:
        gc.collect()
        rss_start = rss_bytes()
        if name == "obshub-stuck":
            exporter = StuckExporter(
                release=release, max_queue_size=max_queue_size, log_level="critical"
            )
            peer = ObshubPeer(
                name, "obshub + in-bench exporter whose export() never returns", [exporter]
            )
        else:
            receiver = ReceiverProcess(stall=True, max_seconds=900)
            if name == "obshub-langfuse":
                cls, status = load_langfuse_exporter()
                if cls is None:
                    return {"peer": name, "skipped": f"obshub_langfuse {status}"}
                peer = ObshubLangfusePeer(
                    receiver, cls, max_queue_size=max_queue_size, log_level="critical"
                )
            elif name == "otel":
                peer = OtelPeer(receiver, max_queue_size=max_queue_size)
            elif name == "langfuse-sdk":
                ok, status = langfuse_sdk_status()
                if not ok:
                    return {"peer": name, "skipped": status}
                peer = LangfuseSdkPeer(receiver, max_queue_size=max_queue_size)
            else:
                raise SystemExit(f"unknown peer {name!r}")
        peer.record_fresh(10, first=-10)  # imports and first-call caches, before the baseline
        gc.collect()
        rss_setup = rss_bytes()
        held, full = _held(peer, max_queue_size)
        samples.append({"traces": 0, "rss": rss_setup, "held": held, "full": full, "s": 0.0})
        done = 0
        started = time.perf_counter()
        while done < total and time.perf_counter() - started < max_seconds:
            n = min(sample_every, total - done)
            t0 = time.perf_counter()
            peer.record_fresh(n, first=done)
            elapsed = time.perf_counter() - t0
            done += n
            held, full = _held(peer, max_queue_size)
            sample = {"traces": done, "rss": rss_bytes(), "held": held, "full": full, "s": elapsed}
            samples.append(sample)
            if len(samples) % 10 == 2:
                log(
                    f"{name}: {done:>8} traces  rss {sample['rss'] / MB:7.1f} MB  held "
                    f"{sample['held']:>6}  {elapsed / n * 1e6:6.1f} us/trace"
                )
        if isinstance(peer, ObshubPeer):
            before = peer.stats()
            t0 = time.perf_counter()
            shutdown_ok = peer.hub.shutdown(timeout=1)
            spans = peer.traces * SPANS_PER_TRACE  # the warm-up traces included
            extra = {
                "queued_before_shutdown": before["queued"],
                "dropped_before_shutdown": before["dropped"],
                "failed_before_shutdown": before["failed"],
                "expected_dropped": spans - before["queued"],
                "all_spans_accounted": before["dropped"] + before["queued"] == spans,
                "shutdown_seconds": time.perf_counter() - t0,
                "shutdown_ok": shutdown_ok,
                "dropped_after_shutdown": peer.stats()["dropped"],
            }
    finally:
        release.set()  # let a stuck worker return
        if isinstance(peer, ObshubPeer):
            peer.hub.shutdown(timeout=1)
        if receiver is not None:
            receiver.close()

    rss_end = samples[-1]["rss"]
    full = next((s for s in samples if s["full"]), None)
    first_full = full if full is not None else samples[-1]
    held = max(1, first_full["held"])
    rates = sorted(s["s"] / sample_every * 1e6 for s in samples[1:])
    after_full = [s["s"] for s in samples if full is not None and s["traces"] > full["traces"]]
    # The allocator settles for a while after the queue fills (free lists and arenas
    # reach their working set; Python-level memory, per tracemalloc, is flat): steady
    # growth is measured from 5 x max_queue_size traces (10 queues of spans) after that.
    settle = SETTLE_QUEUES * max_queue_size
    steady = None
    if full is not None:
        steady = next((s for s in samples if s["traces"] >= full["traces"] + settle), None)
    result = {
        "peer": name,
        "description": peer.description,
        "traces": done,
        "spans": done * SPANS_PER_TRACE,
        "stopped_by_time_cap": done < total,
        "max_queue_size": max_queue_size,
        "sample_every": sample_every,
        "rss_start_mb": rss_start / MB,
        "rss_setup_mb": rss_setup / MB,
        "rss_queue_full_mb": first_full["rss"] / MB,
        "queue_full_at_traces": first_full["traces"] if full is not None else None,
        "rss_end_mb": rss_end / MB,
        "rss_peak_mb": peak_rss_bytes() / MB,
        "growth_after_full_mb": (rss_end - first_full["rss"]) / MB,
        "steady_from_traces": steady["traces"] if steady is not None else None,
        "growth_steady_mb": (rss_end - steady["rss"]) / MB if steady is not None else None,
        "held_at_full": first_full["held"],
        "rss_per_held_span_bytes": (first_full["rss"] - rss_setup) / held,
        "us_per_trace_median": rates[len(rates) // 2] if rates else None,
        "us_per_trace_after_full_median": (
            sorted(after_full)[len(after_full) // 2] / sample_every * 1e6 if after_full else None
        ),
        "samples": [
            {
                "traces": s["traces"],
                "rss_mb": round(s["rss"] / MB, 2),
                "held": s["held"],
                "full": s["full"],
            }
            for s in samples
        ],
        **extra,
    }
    result["bounded"] = bounded(result)
    return result


def bounded(r: dict[str, Any], slack_mb: float = GROWTH_TARGET_MB) -> bool | None:
    """RSS stopped growing once the queue was full (and, for obshub, every span accounted).

    None when the queue never filled within the time cap (nothing to judge).
    """
    if r["queue_full_at_traces"] is None or r["growth_steady_mb"] is None:
        return None
    ok = r["growth_steady_mb"] <= slack_mb
    if "all_spans_accounted" in r:
        ok = ok and bool(
            r["all_spans_accounted"]
            and r["queued_before_shutdown"] <= r["max_queue_size"] + 1024
            and r["shutdown_seconds"] < 2.5
        )
    return bool(ok)


def _judged_ok(name: str, r: dict[str, Any]) -> bool:
    """A peer's memory result is acceptable: obshub must be bounded, the others not unbounded."""
    if "error" in r:
        return False
    if "skipped" in r:
        return True
    if name.startswith("obshub"):
        return r["bounded"] is True
    return True  # the peers are reported side by side, not judged


def run_children(
    peers: list[str],
    total: int,
    sample_every: int,
    max_queue_size: int,
    max_seconds: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Each peer in a fresh process of this script; their results side by side."""
    results: dict[str, Any] = {}
    for name in peers:
        fd, tmp = tempfile.mkstemp(prefix=f"memory-{name}-", suffix=".json")
        os.close(fd)
        try:
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--peer",
                name,
                "--traces",
                str(total),
                "--sample-every",
                str(sample_every),
                "--max-queue-size",
                str(max_queue_size),
                "--max-seconds",
                str(max_seconds),
                "--json",
                tmp,
            ]
            proc = subprocess.run(cmd, timeout=max(max_seconds, 180) + 300, check=False)
            text = Path(tmp).read_text()
            if text:
                results[name] = json.loads(text)
            else:
                results[name] = {"peer": name, "error": f"exit code {proc.returncode}"}
        finally:
            Path(tmp).unlink(missing_ok=True)
    mine = results.get("obshub-langfuse") or results.get("obshub-stuck")
    target: dict[str, Any] = {
        "name": "memory obshub: no RSS growth after the queue is full",
        "target": f"<= {GROWTH_TARGET_MB:g} MB",
        "limit": GROWTH_TARGET_MB,
    }
    if mine and "growth_after_full_mb" in mine:
        target.update(
            name=f"memory {mine['peer']}: no RSS growth once the queue is full "
            f"({mine['spans']:,} spans)",
            value=mine["growth_steady_mb"],
            raw_growth_after_first_drop_mb=mine["growth_after_full_mb"],
            status={True: "PASS", False: "MISS", None: "SKIP"}[mine["bounded"]],
        )
    else:
        target.update(value=None, status="SKIP", reason=str(mine))
    return {
        "benchmark": "memory",
        "method": {
            "traces": total,
            "spans": total * SPANS_PER_TRACE,
            "max_queue_size": max_queue_size,
            "sample_every": sample_every,
            "max_seconds_per_peer": max_seconds,
            "data": "fresh question/messages/answer objects per trace",
            "backend": "receiver.py --stall (obshub-stuck: in-process stuck exporter)",
        },
        "peers": results,
        "targets": [target],
        "bounded": all(_judged_ok(name, r) for name, r in results.items()),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def _fmt_mb(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def print_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    m = result["method"]
    out("")
    out(
        f"memory: stalled backend, queue {m['max_queue_size']:,} spans, up to {m['spans']:,} "
        f"spans ({m['max_seconds_per_peer']:g} s cap a non-obshub peer), fresh data per trace"
    )
    header = (
        f"{'peer':<16} {'spans':>10} {'set-up':>8} {'full':>8} {'end':>8} {'peak':>8} "
        f"{'growth':>8} {'steady':>8} {'B/span':>8} {'us/trace':>9} {'bounded':>8}"
    )
    out(header)
    out(
        f"{'':<16} {'recorded':>10} {'MB':>8} {'MB':>8} {'MB':>8} {'MB':>8} {'MB':>8} "
        f"{'MB':>8} {'held':>8}"
    )
    out("-" * len(header))
    for name, r in result["peers"].items():
        if "skipped" in r or "error" in r:
            out(f"{name:<16} {r.get('skipped') or r.get('error')}")
            continue
        rate = r["us_per_trace_after_full_median"] or r["us_per_trace_median"] or 0.0
        verdict = {True: "yes", False: "NO", None: "-"}[r["bounded"]]
        out(
            f"{name:<16} {r['spans']:>10,} {r['rss_setup_mb']:>8.1f} "
            f"{r['rss_queue_full_mb']:>8.1f} {r['rss_end_mb']:>8.1f} {r['rss_peak_mb']:>8.1f} "
            f"{r['growth_after_full_mb']:>+8.1f} "
            f"{(_fmt_mb(r['growth_steady_mb'])):>8} {r['rss_per_held_span_bytes']:>8,.0f} "
            f"{rate:>9.1f} {verdict:>8}"
        )
    for name, r in result["peers"].items():
        if "shutdown_seconds" in r:
            out(
                f"  {name}: held {r['queued_before_shutdown']:,} (queue + one batch in the stuck "
                f"export), dropped {r['dropped_before_shutdown']:,} (expected "
                f"{r['expected_dropped']:,}), accounted {r['all_spans_accounted']}, "
                f"shutdown(timeout=1) {r['shutdown_seconds']:.2f} s"
            )
        if r.get("stopped_by_time_cap"):
            out(f"  {name}: stopped by the time cap after {r['spans']:,} spans")
    out(
        "  growth: from the first drop to the end; steady: from "
        f"{SETTLE_QUEUES} x max_queue_size traces after the first drop to the end "
        "('-': the peer stopped before)"
    )
    out("  us/trace: recording cost once the queue is full (every span dropped)")
    for t in result["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:+.1f} MB"
        out(f"  target {t['name']} {t['target']}: {value} {t['status']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--traces", type=int, default=None, help="traces a peer (500000)")
    parser.add_argument("--sample-every", type=int, default=None, help="traces per RSS sample")
    parser.add_argument(
        "--max-queue-size", type=int, default=None, help="spans a queue (10000; quick 2000)"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="time cap a non-obshub peer (15; obshub peers: 180, they must record every span)",
    )
    parser.add_argument(
        "--peers",
        default=None,
        help=f"comma-separated, from {','.join(ALL_PEERS)} (default {','.join(DEFAULT_PEERS)})",
    )
    parser.add_argument("--peer", default=None, help=argparse.SUPPRESS)  # one, in this process
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    total = args.traces or (15_000 if args.quick else 500_000)
    every = args.sample_every or (1_000 if args.quick else 2_500)
    max_seconds = args.max_seconds or (1.0 if args.quick else 15.0)
    max_queue_size = args.max_queue_size or (2_000 if args.quick else 10_000)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.peer:
        cap = max(max_seconds, 180.0) if args.peer.startswith("obshub") else max_seconds
        result = run_peer(args.peer, total, every, max_queue_size, cap, log)
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        # The OTel and Langfuse workers are still blocked on the stalled (now closed)
        # backend and their exit hooks would wait for them: end the process here.
        os._exit(0)
    peers = args.peers.split(",") if args.peers else list(DEFAULT_PEERS)
    result = run_children(peers, total, every, max_queue_size, max_seconds, log)
    result["quick"] = args.quick
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["bounded"] else 1


if __name__ == "__main__":
    sys.exit(main())
