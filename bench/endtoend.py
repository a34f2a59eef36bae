"""End-to-end throughput: traces per second until the receiver holds every span.

For each peer (``obshub-langfuse``, ``otel``, ``langfuse-sdk``; the same trace
as ``hotpath.py``, the same loopback receiver in its own process), one run:

1. ``t0 = time.time_ns()``; record N traces back to back on one thread, as fast
   as the peer lets the application go;
2. call the peer's own flush (``hub.flush()``, ``provider.force_flush()``,
   ``langfuse.flush()``) -- what a batch job does before it exits; without
   it the last partial batch would wait for the peer's batch timer (obshub
   2 s, OpenTelemetry and Langfuse 5 s) and the run would time the timer;
3. wait (``GET /wait`` on the receiver, no polling) until the receiver has
   decoded and counted all 2N spans of the run; the receiver answers with
   the ``time.time_ns()`` at which it counted the last one.

Throughput = N / (counted time of the last span - t0). Rounds rotate the peer
order; the median is quoted. Nothing may be dropped (queues are sized for the
whole run) and every span must arrive exactly once.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import (
    SPANS_PER_TRACE,
    LangfuseSdkPeer,
    ObshubLangfusePeer,
    OtelPeer,
    ReceiverPeer,
    langfuse_sdk_status,
    load_langfuse_exporter,
)
from receiver import ReceiverProcess

TARGET = ("obshub-langfuse", "otel", 1.5)  # obshub throughput >= 1.5 x OTel's


def one_run(peer: ReceiverPeer, receiver: ReceiverProcess, n: int) -> dict[str, Any]:
    path = peer.paths[0]
    goal = peer.expected_spans() + n * SPANS_PER_TRACE
    gc.collect()
    cpu0 = time.process_time()
    t0_ns = time.time_ns()
    t0 = time.perf_counter()
    peer.record(n)
    t1 = time.perf_counter()
    flushed = peer.flush()
    t2 = time.perf_counter()
    got = receiver.wait(path, goal, timeout=300)
    t3 = time.perf_counter()
    cpu1 = time.process_time()
    if not got["ok"] or not flushed:
        raise RuntimeError(f"{peer.name}: receiver holds {got['spans']} of {goal} spans")
    elapsed = (got["counted_ns"] - t0_ns) / 1e9
    return {
        "n": n,
        "seconds": elapsed,
        "traces_per_s": n / elapsed,
        "record_s": t1 - t0,
        "flush_s": t2 - t1,
        "wait_after_flush_s": t3 - t2,
        "bench_process_cpu_s": cpu1 - cpu0,
    }


def run(n: int, rounds: int, warmup: int, log: Callable[[str], None]) -> dict[str, Any]:
    langfuse_cls, langfuse_status = load_langfuse_exporter()
    sdk_ok, sdk_status = langfuse_sdk_status()
    skipped: dict[str, str] = {}
    receiver = ReceiverProcess(max_seconds=1800)
    peers: list[ReceiverPeer] = []
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        if langfuse_cls is not None:
            peers.append(ObshubLangfusePeer(receiver, langfuse_cls))
        else:
            skipped["obshub-langfuse"] = f"obshub_langfuse {langfuse_status}"
        peers.append(OtelPeer(receiver))
        if sdk_ok:
            peers.append(LangfuseSdkPeer(receiver))
        else:
            skipped["langfuse-sdk"] = sdk_status
        for name, reason in skipped.items():
            log(f"{name}: {reason}")
        for peer in peers:
            one_run(peer, receiver, warmup)
            runs[peer.name] = []
        for r in range(rounds):
            order = peers[r % len(peers) :] + peers[: r % len(peers)]
            line = []
            for peer in order:
                res = one_run(peer, receiver, n)
                runs[peer.name].append(res)
                line.append(f"{peer.name}={res['traces_per_s']:.0f}")
            log(f"end-to-end round {r + 1}/{rounds}: " + "  ".join(line) + "  (traces/s)")
        verification = {peer.name: peer.verify() for peer in peers}
    finally:
        for peer in peers:
            try:
                peer.close()
            except Exception as exc:
                log(f"close {peer.name} failed: {exc!r}")
        receiver.close()

    summaries: dict[str, Any] = {}
    for peer in peers:
        rs = runs[peer.name]
        summaries[peer.name] = {
            "description": peer.description,
            "n": n,
            "rounds": len(rs),
            "traces_per_s_median": statistics.median(r["traces_per_s"] for r in rs),
            "traces_per_s_max": max(r["traces_per_s"] for r in rs),
            "traces_per_s_rounds": [round(r["traces_per_s"], 1) for r in rs],
            "seconds_median": statistics.median(r["seconds"] for r in rs),
            "record_s_median": statistics.median(r["record_s"] for r in rs),
            "flush_s_median": statistics.median(r["flush_s"] for r in rs),
            "bench_cpu_us_per_trace_median": statistics.median(
                r["bench_process_cpu_s"] / r["n"] * 1e6 for r in rs
            ),
            "verification": verification[peer.name],
        }
    ratios: dict[str, float] = {}
    base = summaries.get("obshub-langfuse")
    for name, summ in summaries.items():
        if base is not None and name != "obshub-langfuse":
            ratios[name] = base["traces_per_s_median"] / summ["traces_per_s_median"]
    mine, ref, limit = TARGET
    target: dict[str, Any] = {
        "name": f"end to end {mine} / {ref} throughput",
        "target": f">= {limit}",
        "limit": limit,
    }
    if mine in summaries and ref in summaries:
        value = ratios[ref]
        target.update(value=value, status="PASS" if value >= limit else "MISS")
    else:
        target.update(value=None, status="SKIP", reason=skipped.get(mine, "not measured"))
    return {
        "benchmark": "endtoend",
        "method": {
            "n_traces": n,
            "rounds": rounds,
            "warmup_traces": warmup,
            "timed": "time.time_ns() before recording to the receiver's counted time of the "
            "last span; the peer's flush() is called right after recording",
        },
        "skipped": skipped,
        "peers": summaries,
        "throughput_ratio_obshub_over": ratios,
        "targets": [target],
        "all_verified": all(s["verification"]["ok"] for s in summaries.values()),
    }


def print_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    out("")
    n = result["method"]["n_traces"]
    out(f"end to end: {n} traces recorded, flushed, until the receiver counted all {2 * n} spans")
    header = (
        f"{'peer':<18} {'traces/s':>9} {'best':>9} {'seconds':>8} {'record':>8} {'flush':>8} "
        f"{'CPU us/tr':>10} {'obshub x':>9} {'verified':>9}"
    )
    out(header)
    out("-" * len(header))
    ratios = result["throughput_ratio_obshub_over"]
    for name, s in result["peers"].items():
        ratio = ratios.get(name)
        out(
            f"{name:<18} {s['traces_per_s_median']:>9.0f} {s['traces_per_s_max']:>9.0f} "
            f"{s['seconds_median']:>8.2f} {s['record_s_median']:>8.2f} {s['flush_s_median']:>8.2f} "
            f"{s['bench_cpu_us_per_trace_median']:>10.1f} "
            f"{(f'{ratio:.2f}' if ratio else '-'):>9} "
            f"{'yes' if s['verification']['ok'] else 'NO':>9}"
        )
    for t in result["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        out(f"  target {t['name']} {t['target']}: {value} {t['status']}")
    for name, reason in result["skipped"].items():
        out(f"  {name}: {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--traces", type=int, default=None, help="traces per run (4000)")
    parser.add_argument("--rounds", type=int, default=None, help="runs per peer (7)")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    n = args.traces or (800 if args.quick else 4_000)
    rounds = args.rounds or (2 if args.quick else 7)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = run(n, rounds, max(100, n // 5), log)
    result["quick"] = args.quick
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["all_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
