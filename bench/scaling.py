"""Scaling: 1, 2, 4, 8 recording threads per peer, and obshub fanned out to 1 vs 3 exporters.

Threads: for each peer (``obshub-langfuse``, ``otel``, ``langfuse-sdk``) and
each thread count T, T threads wait on a barrier, then each records n traces
back to back (n calibrated per peer so that one thread alone takes about
``--round-seconds``, 0.1 s, at most 1,500 traces: the fixed share per thread
keeps every thread busy for many GIL switch intervals, 5 ms, so they really
overlap). Reported: wall microseconds per trace on the application threads
(each thread's own wall time over its own traces, averaged over the threads --
it includes waiting for the GIL, held by the other recording threads and by
the peer's worker), and total traces/s (T x n over the time from the barrier
to the last thread's end). The flush after each burst is untimed for these;
``traces/s with drain`` includes it. Peers and thread counts are rotated over
``--rounds`` rounds; medians are quoted.

Fan-out: the hot path method of ``hotpath.py`` (burst of N traces timed, flush
untimed, rotated rounds) on ``obshub-langfuse`` (one ``LangfuseExporter``) and
``obshub-langfuse-x3`` (three instances, three channels and workers, each on
its own receiver path). Target: three exporters cost at most 1.3x one on the
application thread.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hotpath import Segment, timed_segment
from peers import (
    LangfuseSdkPeer,
    ObshubLangfusePeer,
    OtelPeer,
    Peer,
    langfuse_sdk_status,
    load_langfuse_exporter,
)
from receiver import ReceiverProcess

THREADS = (1, 2, 4, 8)
FANOUT_TARGET = 1.3


def threaded_burst(peer: Peer, threads: int, per_thread: int) -> dict[str, float]:
    """``threads`` threads, released together, each recording ``per_thread`` traces."""
    barrier = threading.Barrier(threads + 1)
    walls: list[float] = [0.0] * threads
    ends: list[float] = [0.0] * threads
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            t0 = time.perf_counter()
            peer.record(per_thread)
            t1 = time.perf_counter()
            walls[i] = t1 - t0
            ends[i] = t1
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [
        threading.Thread(target=work, args=(i,), name=f"bench-rec-{i}") for i in range(threads)
    ]
    for w in workers:
        w.start()
    gc.collect()
    cpu0 = time.process_time()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    if errors:
        raise RuntimeError(f"{peer.name}: recording thread failed: {errors[0]!r}")
    t_rec = max(ends) - t0
    if not peer.flush():
        raise RuntimeError(f"{peer.name}: flush failed")
    t_all = time.perf_counter() - t0
    cpu1 = time.process_time()
    peer.after_flush()
    n = per_thread * threads
    return {
        "threads": threads,
        "n": n,
        "us_per_trace_app_thread": statistics.fmean(w / per_thread * 1e6 for w in walls),
        "traces_per_s": n / t_rec,
        "traces_per_s_with_drain": n / t_all,
        "process_cpu_us_per_trace": (cpu1 - cpu0) / n * 1e6,
    }


def run_threads(
    peers: list[Peer], rounds: int, round_seconds: float, max_n: int, log: Callable[[str], None]
) -> dict[str, Any]:
    per_thread: dict[str, int] = {}
    calibrate = max(200, min(2_000, int(round_seconds * 5_000)))
    for peer in peers:
        threaded_burst(peer, 1, calibrate // 2)  # warm-up
        seg = threaded_burst(peer, 1, calibrate)
        n = int(round_seconds / (seg["us_per_trace_app_thread"] / 1e6))
        per_thread[peer.name] = max(50, min(max_n, n))
        log(f"scaling: {peer.name} {per_thread[peer.name]} traces per thread and burst")
    samples: dict[str, dict[int, list[dict[str, float]]]] = {
        p.name: {t: [] for t in THREADS} for p in peers
    }
    configs = [(p, t) for t in THREADS for p in peers]
    for r in range(rounds):
        k = (r * len(peers) + r) % len(configs)
        order = configs[k:] + configs[:k]
        if r % 2:
            order.reverse()
        for peer, threads in order:
            samples[peer.name][threads].append(threaded_burst(peer, threads, per_thread[peer.name]))
        log(
            f"scaling round {r + 1}/{rounds}: "
            + "  ".join(
                f"{p.name}@{t}={samples[p.name][t][-1]['us_per_trace_app_thread']:.0f}us"
                for p in peers
                for t in THREADS
            )
        )
    out: dict[str, Any] = {}
    for peer in peers:
        rows = []
        for t in THREADS:
            segs = samples[peer.name][t]
            rows.append(
                {
                    "threads": t,
                    "traces_per_thread": per_thread[peer.name],
                    "n_per_burst": segs[0]["n"],
                    "us_per_trace_app_thread_median": statistics.median(
                        s["us_per_trace_app_thread"] for s in segs
                    ),
                    "traces_per_s_median": statistics.median(s["traces_per_s"] for s in segs),
                    "traces_per_s_with_drain_median": statistics.median(
                        s["traces_per_s_with_drain"] for s in segs
                    ),
                    "process_cpu_us_per_trace_median": statistics.median(
                        s["process_cpu_us_per_trace"] for s in segs
                    ),
                    "us_per_trace_app_thread_rounds": [
                        round(s["us_per_trace_app_thread"], 2) for s in segs
                    ],
                }
            )
        out[peer.name] = {"description": peer.description, "rows": rows}
    return out


def run_fanout(
    one: Peer,
    three: Peer,
    rounds: int,
    round_seconds: float,
    max_n: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    calibrate = max(200, min(2_000, int(round_seconds * 5_000)))
    for peer in (one, three):
        timed_segment(peer, calibrate // 2)
    seg = timed_segment(one, calibrate)
    n = max(200, min(max_n, int(round_seconds / (seg.wall_s / seg.n))))
    log(f"fan-out: N={n} per burst")
    segs: dict[str, list[Segment]] = {one.name: [], three.name: []}
    for r in range(rounds):
        order = [one, three] if r % 2 == 0 else [three, one]
        for peer in order:
            segs[peer.name].append(timed_segment(peer, n))
        log(
            f"fan-out round {r + 1}/{rounds}: "
            + "  ".join(f"{k}={v[-1].us_per_trace:.1f}us" for k, v in segs.items())
        )
    summary: dict[str, Any] = {}
    for peer in (one, three):
        ss = segs[peer.name]
        summary[peer.name] = {
            "description": peer.description,
            "exporters": len(peer.paths),
            "n_per_round": n,
            "us_per_trace_median": statistics.median(s.us_per_trace for s in ss),
            "us_per_trace_min": min(s.us_per_trace for s in ss),
            "us_per_trace_rounds": [round(s.us_per_trace, 2) for s in ss],
            "app_thread_cpu_us_per_trace_median": statistics.median(
                s.thread_cpu_s / s.n * 1e6 for s in ss
            ),
            "drain_us_per_trace_median": statistics.median(s.drain_s / s.n * 1e6 for s in ss),
            "process_cpu_us_per_trace_median": statistics.median(
                s.process_cpu_s / s.n * 1e6 for s in ss
            ),
        }
    a, b = summary[one.name], summary[three.name]
    ratio = b["us_per_trace_median"] / a["us_per_trace_median"]
    return {
        "peers": summary,
        "ratio_app_thread": ratio,
        "ratio_app_thread_min": b["us_per_trace_min"] / a["us_per_trace_min"],
        "ratio_app_thread_cpu": b["app_thread_cpu_us_per_trace_median"]
        / a["app_thread_cpu_us_per_trace_median"],
        "ratio_process_cpu": b["process_cpu_us_per_trace_median"]
        / a["process_cpu_us_per_trace_median"],
        "target": {
            "name": "fan-out obshub 3 exporters / 1 exporter, app thread",
            "target": f"<= {FANOUT_TARGET}",
            "limit": FANOUT_TARGET,
            "value": ratio,
            "status": "PASS" if ratio <= FANOUT_TARGET else "MISS",
        },
    }


def run(
    rounds: int,
    fan_rounds: int,
    round_seconds: float,
    max_n: int,
    fan_max_n: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    langfuse_cls, langfuse_status = load_langfuse_exporter()
    sdk_ok, sdk_status = langfuse_sdk_status()
    skipped: dict[str, str] = {}
    receiver = ReceiverProcess(max_seconds=1800)
    peers: list[Peer] = []
    fan_peers: list[Peer] = []
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
        threads = run_threads(peers, rounds, round_seconds, max_n, log)
        fanout: dict[str, Any] = {}
        if langfuse_cls is not None:
            fan_peers = [
                ObshubLangfusePeer(receiver, langfuse_cls, prefix="/fan1-"),
                ObshubLangfusePeer(
                    receiver,
                    langfuse_cls,
                    name="obshub-langfuse-x3",
                    exporters=3,
                    prefix="/fan3-",
                ),
            ]
            fanout = run_fanout(
                fan_peers[0], fan_peers[1], fan_rounds, round_seconds * 4, fan_max_n, log
            )
        verification = {p.name: p.verify() for p in peers}
        verification.update({f"{p.name} (fan-out)": p.verify() for p in fan_peers})
    finally:
        for peer in peers + fan_peers:
            try:
                peer.close()
            except Exception as exc:
                log(f"close {peer.name} failed: {exc!r}")
        receiver.close()
    targets = [fanout["target"]] if fanout else []
    if not fanout:
        targets.append(
            {
                "name": "fan-out obshub 3 exporters / 1 exporter, app thread",
                "target": f"<= {FANOUT_TARGET}",
                "limit": FANOUT_TARGET,
                "value": None,
                "status": "SKIP",
                "reason": skipped.get("obshub-langfuse", "not measured"),
            }
        )
    return {
        "benchmark": "scaling",
        "method": {
            "threads": list(THREADS),
            "rounds": rounds,
            "fanout_rounds": fan_rounds,
            "round_seconds": round_seconds,
        },
        "skipped": skipped,
        "threads": threads,
        "fanout": fanout,
        "targets": targets,
        "verification": verification,
        "all_verified": all(v["ok"] for v in verification.values()),
    }


def print_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    out("")
    out("scaling: T recording threads (us/trace = each thread's wall time per trace, GIL waits in)")
    header = f"{'peer':<18} " + " ".join(f"{f'{t} thr':>20}" for t in THREADS)
    out(header)
    out(f"{'':<18} " + " ".join(f"{'us/trace  traces/s':>20}" for _ in THREADS))
    out("-" * len(header))
    for name, entry in result["threads"].items():
        cells = [
            f"{row['us_per_trace_app_thread_median']:>8.1f} {row['traces_per_s_median']:>10.0f}"
            for row in entry["rows"]
        ]
        out(f"{name:<18} " + " ".join(f"{c:>20}" for c in cells))
    fan = result["fanout"]
    if fan:
        out("")
        out("fan-out (hot path method): obshub with 1 vs 3 LangfuseExporter instances")
        for name, s in fan["peers"].items():
            out(
                f"  {name:<20} median {s['us_per_trace_median']:7.1f} us/trace  "
                f"min {s['us_per_trace_min']:7.1f}  app CPU "
                f"{s['app_thread_cpu_us_per_trace_median']:6.1f}  drain "
                f"{s['drain_us_per_trace_median']:6.1f}  total CPU "
                f"{s['process_cpu_us_per_trace_median']:6.1f}"
            )
        out(
            f"  3 / 1: app thread {fan['ratio_app_thread']:.2f} "
            f"(min {fan['ratio_app_thread_min']:.2f}, app CPU {fan['ratio_app_thread_cpu']:.2f}), "
            f"total CPU {fan['ratio_process_cpu']:.2f}"
        )
    for t in result["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        out(f"  target {t['name']} {t['target']}: {value} {t['status']}")
    for name, v in result["verification"].items():
        if not v["ok"]:
            out(f"  NOT VERIFIED {name}: {v}")
    for name, reason in result["skipped"].items():
        out(f"  {name}: {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--rounds", type=int, default=None, help="thread-scaling rounds (5)")
    parser.add_argument("--fanout-rounds", type=int, default=None, help="fan-out rounds (11)")
    parser.add_argument(
        "--round-seconds",
        type=float,
        default=None,
        help="seconds of one thread's share of a burst (0.1; fan-out bursts: 4x)",
    )
    parser.add_argument(
        "--max-traces", type=int, default=None, help="most traces a thread records a burst (1500)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--plot", type=Path, default=None, help="write the scaling plot (PNG)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    fan_rounds = args.fanout_rounds or (2 if args.quick else 11)
    seconds = args.round_seconds or (0.01 if args.quick else 0.1)
    # A fast peer's burst is bounded: its flush (the workers' backlog) is what takes the time.
    max_n = args.max_traces or (300 if args.quick else 1_500)
    fan_max_n = 2_000 if args.quick else 5_000

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = run(rounds, fan_rounds, seconds, max_n, fan_max_n, log)
    result["quick"] = args.quick
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plot is not None:
        from plot import plot_scaling

        print(plot_scaling(result, args.plot))
    return 0 if result["all_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
