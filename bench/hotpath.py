"""Application-thread cost of recording one two-span LLM trace: obshub vs OTel vs Langfuse SDK.

The trace (see ``peers.py``): an ``agent_run`` root span with the user's
question as input, a child ``model_generation`` span (model, provider,
parameters, three chat messages as input, an answer as output, token usage),
then the root's output.

Peers, all measured in one process on the same machine, each with its exporter
attached and its worker running while it is measured (``peers.py``):
``obshub-langfuse`` (the figure the targets use), ``obshub-jsonl-ended`` (a
reference without HTTP), ``otel`` (BatchSpanProcessor + OTLP/HTTP),
``otel-noop-export`` (OTel's in-process cost alone) and ``langfuse-sdk`` (the
official Langfuse SDK, when installed). ``--peers all`` adds ``obshub-jsonl``
(started, updated and ended events: 6 a trace).

Method: warm up and calibrate each peer, then R rounds; in each round every
peer (in a rotated order) records N_peer traces back to back (N_peer chosen so
a round lasts about ``--round-seconds``), timed with ``perf_counter``; then,
untimed, the peer is flushed so its backlog cannot leak into the next peer's
timing. Reported per peer: median and min wall microseconds per trace on the
application thread, the app thread's own CPU, the drain time after the burst,
and total process CPU (record + drain) per trace. Every span is verified to
have arrived (file lines or receiver span counts) and drops must be zero.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import (
    SPANS_PER_TRACE,
    JsonlPeer,
    LangfuseSdkPeer,
    ObshubLangfusePeer,
    OtelNoopPeer,
    OtelPeer,
    Peer,
    langfuse_sdk_status,
    load_langfuse_exporter,
    obshub_trace_loop,
)
from receiver import ReceiverProcess

__all__ = ["SPANS_PER_TRACE", "load_langfuse_exporter", "obshub_trace_loop", "timed_segment"]

#: (obshub peer, reference peer, target ratio of the medians)
TARGETS = (
    ("obshub-langfuse", "otel", 0.5),
    ("obshub-langfuse", "langfuse-sdk", 0.1),
)
DEFAULT_PEERS = (
    "obshub-langfuse",
    "obshub-jsonl-ended",
    "otel",
    "otel-noop-export",
    "langfuse-sdk",
)


@dataclass
class Segment:
    """One timed burst of one peer."""

    n: int
    wall_s: float
    thread_cpu_s: float
    drain_s: float
    process_cpu_s: float  # record + drain, every thread of this process

    @property
    def us_per_trace(self) -> float:
        return self.wall_s / self.n * 1e6


@dataclass
class PeerResult:
    name: str
    description: str
    n_per_round: int = 0
    segments: list[Segment] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        segs = self.segments
        per = [s.us_per_trace for s in segs]
        return {
            "name": self.name,
            "description": self.description,
            "n_per_round": self.n_per_round,
            "rounds": len(segs),
            "us_per_trace_median": statistics.median(per),
            "us_per_trace_min": min(per),
            "us_per_trace_rounds": [round(x, 2) for x in per],
            "app_thread_cpu_us_per_trace_median": statistics.median(
                s.thread_cpu_s / s.n * 1e6 for s in segs
            ),
            "drain_us_per_trace_median": statistics.median(s.drain_s / s.n * 1e6 for s in segs),
            "process_cpu_us_per_trace_median": statistics.median(
                s.process_cpu_s / s.n * 1e6 for s in segs
            ),
            "verification": self.verification,
        }


def timed_segment(peer: Peer, n: int) -> Segment:
    """Record ``n`` traces (timed), then flush (untimed in ``wall_s``, counted in CPU)."""
    gc.collect()
    cpu0 = time.process_time()
    thread0 = time.thread_time()
    t0 = time.perf_counter()
    peer.record(n)
    t1 = time.perf_counter()
    thread1 = time.thread_time()
    if not peer.flush():
        raise RuntimeError(f"{peer.name}: flush failed or timed out")
    t2 = time.perf_counter()
    cpu1 = time.process_time()
    peer.after_flush()
    return Segment(
        n=n,
        wall_s=t1 - t0,
        thread_cpu_s=thread1 - thread0,
        drain_s=t2 - t1,
        process_cpu_s=cpu1 - cpu0,
    )


def ratios_against(summaries: dict[str, dict[str, Any]], base: str) -> dict[str, Any]:
    """Every obshub peer's figures divided by ``base``'s (median, min, total CPU)."""
    ref = summaries.get(base)
    if ref is None:
        return {}
    out: dict[str, Any] = {}
    for name, summ in summaries.items():
        if not name.startswith("obshub"):
            continue
        out[name] = {
            "median_ratio": summ["us_per_trace_median"] / ref["us_per_trace_median"],
            "min_ratio": summ["us_per_trace_min"] / ref["us_per_trace_min"],
            "process_cpu_ratio": summ["process_cpu_us_per_trace_median"]
            / ref["process_cpu_us_per_trace_median"],
        }
    return out


def targets(summaries: dict[str, dict[str, Any]], skipped: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for mine, base, limit in TARGETS:
        entry: dict[str, Any] = {
            "name": f"hot path {mine} / {base}",
            "target": f"<= {limit}",
            "limit": limit,
        }
        if mine in summaries and base in summaries:
            ratio = summaries[mine]["us_per_trace_median"] / summaries[base]["us_per_trace_median"]
            entry.update(value=ratio, status="PASS" if ratio <= limit else "MISS")
        else:
            missing = base if base not in summaries else mine
            entry.update(value=None, status="SKIP", reason=skipped.get(missing, "not measured"))
        out.append(entry)
    return out


def make_peers(
    wanted: set[str], receiver: ReceiverProcess, tmpdir: Path, log: Callable[[str], None]
) -> tuple[list[Peer], dict[str, str]]:
    """Build the wanted peers; the ones that cannot run are returned with the reason."""
    langfuse_cls, langfuse_status = load_langfuse_exporter()
    sdk_ok, sdk_status = langfuse_sdk_status()
    log(f"obshub_langfuse: {langfuse_status}; langfuse sdk: {sdk_status}")
    factories: dict[str, Callable[[], Peer]] = {
        "obshub-jsonl": lambda: JsonlPeer(
            "obshub-jsonl",
            "obshub Hub + JsonlExporter (batch; default events: started, updated, ended)",
            tmpdir / "all.jsonl",
            None,
        ),
        "obshub-jsonl-ended": lambda: JsonlPeer(
            "obshub-jsonl-ended",
            "reference: obshub Hub + JsonlExporter (batch; events=['ended'], no HTTP)",
            tmpdir / "ended.jsonl",
            ["ended"],
        ),
        "otel": lambda: OtelPeer(receiver),
        "otel-noop-export": lambda: OtelNoopPeer(receiver),
    }
    skipped: dict[str, str] = {}
    if langfuse_cls is not None:
        factories["obshub-langfuse"] = lambda: ObshubLangfusePeer(receiver, langfuse_cls)
    else:
        skipped["obshub-langfuse"] = f"obshub_langfuse {langfuse_status}"
    if sdk_ok:
        factories["langfuse-sdk"] = lambda: LangfuseSdkPeer(receiver)
    else:
        skipped["langfuse-sdk"] = sdk_status
    order = ["obshub-langfuse", "obshub-jsonl", "obshub-jsonl-ended", "otel"]
    order += ["otel-noop-export", "langfuse-sdk"]
    peers = []
    for name in order:
        if name not in wanted:
            continue
        if name in skipped:
            log(f"{name}: {skipped[name]}")
            continue
        peers.append(factories[name]())
    return peers, skipped


def run(
    rounds: int,
    round_seconds: float,
    warmup: int,
    calibrate: int,
    min_n: int,
    max_n: int,
    wanted: set[str],
    log: Callable[[str], None],
) -> dict[str, Any]:
    peers: list[Peer] = []
    results: dict[str, PeerResult] = {}
    skipped: dict[str, str] = {}
    tmp = tempfile.TemporaryDirectory(prefix="obshub-bench-")
    receiver = ReceiverProcess(max_seconds=1800)
    try:
        peers, skipped = make_peers(wanted, receiver, Path(tmp.name), log)
        for peer in peers:
            results[peer.name] = PeerResult(peer.name, peer.description)

        # Warm-up (imports, caches, connections), then calibration of N per peer.
        for peer in peers:
            timed_segment(peer, warmup)
        for peer in peers:
            seg = timed_segment(peer, calibrate)
            n = int(round_seconds / max(seg.wall_s / seg.n, 1e-7))
            results[peer.name].n_per_round = max(min_n, min(max_n, n))
            log(
                f"calibrated {peer.name}: {seg.us_per_trace:.1f} us/trace -> "
                f"N={results[peer.name].n_per_round}"
            )

        for r in range(rounds):
            order = peers[r % len(peers) :] + peers[: r % len(peers)]
            if r % 2:
                order.reverse()
            line = []
            for peer in order:
                seg = timed_segment(peer, results[peer.name].n_per_round)
                results[peer.name].segments.append(seg)
                line.append(f"{peer.name}={seg.us_per_trace:.1f}")
            log(f"round {r + 1}/{rounds}: " + "  ".join(line) + "  (us/trace)")

        for peer in peers:
            results[peer.name].verification = peer.verify()
    finally:
        for peer in peers:
            try:
                peer.close()
            except Exception as exc:  # keep closing the others
                log(f"close {peer.name} failed: {exc!r}")
        receiver_stats: dict[str, Any] = {}
        try:
            receiver_stats = receiver.stats()
        except Exception as exc:
            log(f"receiver stats failed: {exc!r}")
        receiver.close()
        tmp.cleanup()

    summaries = {name: res.summary() for name, res in results.items()}
    for summ in summaries.values():
        summ["us_per_span_median"] = summ["us_per_trace_median"] / SPANS_PER_TRACE
        summ["us_per_span_min"] = summ["us_per_trace_min"] / SPANS_PER_TRACE
    return {
        "benchmark": "hotpath",
        "method": {
            "rounds": rounds,
            "round_seconds": round_seconds,
            "warmup_traces": warmup,
            "calibration_traces": calibrate,
            "spans_per_trace": SPANS_PER_TRACE,
            "order": "rotated each round, reversed on odd rounds",
            "timed": "perf_counter around the recording loop; flush untimed (drain_us)",
        },
        "skipped": skipped,
        "peers": summaries,
        "ratios": ratios_against(summaries, "otel"),
        "ratios_vs_langfuse_sdk": ratios_against(summaries, "langfuse-sdk"),
        "ratios_vs_otel_noop_export": ratios_against(summaries, "otel-noop-export"),
        "targets": targets(summaries, skipped),
        "receiver": receiver_stats,
        "all_verified": all(s["verification"].get("ok") for s in summaries.values()),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def print_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    peers = result["peers"]
    out("")
    out("hot path: one two-span trace (agent_run + model_generation), application thread")
    header = (
        f"{'peer':<20} {'N/round':>8} {'median':>9} {'min':>9} {'app CPU':>9} "
        f"{'drain':>9} {'total CPU':>10} {'vs otel':>8} {'vs lf-sdk':>9} {'verified':>9}"
    )
    out(header)
    out(
        f"{'':<20} {'':>8} {'us/trace':>9} {'us/trace':>9} {'us/trace':>9} {'us/trace':>9} "
        f"{'us/trace':>10} {'median':>8} {'median':>9}"
    )
    out("-" * len(header))
    for name, s in peers.items():
        texts = []
        for key in ("ratios", "ratios_vs_langfuse_sdk"):
            ratio = result[key].get(name, {}).get("median_ratio")
            texts.append(f"{ratio:.3f}" if ratio is not None else "-")
        out(
            f"{name:<20} {s['n_per_round']:>8} {s['us_per_trace_median']:>9.1f} "
            f"{s['us_per_trace_min']:>9.1f} {s['app_thread_cpu_us_per_trace_median']:>9.1f} "
            f"{s['drain_us_per_trace_median']:>9.1f} {s['process_cpu_us_per_trace_median']:>10.1f} "
            f"{texts[0]:>8} {texts[1]:>9} {'yes' if s['verification'].get('ok') else 'NO':>9}"
        )
    out("")
    for key, base in (
        ("ratios", "otel"),
        ("ratios_vs_langfuse_sdk", "langfuse-sdk"),
        ("ratios_vs_otel_noop_export", "otel-noop-export (reference)"),
    ):
        for name, r in result[key].items():
            out(
                f"  {name} / {base}: median {r['median_ratio']:.3f}, min {r['min_ratio']:.3f}; "
                f"total CPU {r['process_cpu_ratio']:.2f}"
            )
    for t in result["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.3f}"
        extra = f" ({t['reason']})" if t.get("reason") else ""
        out(f"  target {t['name']} {t['target']}: {value} {t['status']}{extra}")
    for name, reason in result["skipped"].items():
        out(f"  {name}: {reason}")
    out("")
    out("verification (everything recorded reached its file / the receiver):")
    for name, s in peers.items():
        v = s["verification"]
        if "expected_lines" in v:
            out(
                f"  {name}: traces {v['traces']}, lines expected {v['expected_lines']}, "
                f"got {v['got_lines']}, dropped {v['stats']['dropped']}, "
                f"failed {v['stats']['failed']}"
            )
        elif "sink" in v:
            out(
                f"  {name}: traces {v['traces']}, spans expected {v['expected_spans']}, "
                f"exported {v['got_spans']} ({v['sink']})"
            )
        else:
            extra = ""
            if "stats" in v:
                extra = f", dropped {v['stats']['dropped']}, failed {v['stats']['failed']}"
            out(
                f"  {name}: traces {v['traces']}, spans expected {v['expected_spans']}, "
                f"received {v['got_spans']} in {v['requests']} requests "
                f"({v['bytes_wire'] / 1e6:.1f} MB on the wire){extra}"
            )
    rec = result.get("receiver") or {}
    if rec:
        paths = ", ".join(f"{p} {e['requests']} req" for p, e in rec.get("by_path", {}).items())
        out(
            f"  receiver: {rec.get('spans')} spans, {rec.get('unique_spans')} unique, "
            f"{rec.get('decode_errors')} decode errors; requests by path: {paths}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 9)")
    parser.add_argument(
        "--round-seconds", type=float, default=None, help="target seconds per burst (0.5)"
    )
    parser.add_argument(
        "--peers",
        default=None,
        help=f"comma-separated subset, or 'all' (default {','.join(DEFAULT_PEERS)})",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    if args.quick:
        rounds, seconds, warmup, calibrate, min_n, max_n = 3, 0.05, 100, 200, 50, 2_000
    else:
        # max_n bounds a burst of a fast peer: its flush (the worker's backlog) is what
        # takes the time, and 10,000 traces (20,000 spans, 39 batches) are plenty.
        rounds, seconds, warmup, calibrate, min_n, max_n = 9, 0.5, 1_000, 1_000, 500, 10_000
    rounds = args.rounds or rounds
    seconds = args.round_seconds or seconds
    if args.peers == "all":
        wanted = {*DEFAULT_PEERS, "obshub-jsonl"}
    else:
        wanted = set(args.peers.split(",")) if args.peers else set(DEFAULT_PEERS)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = run(rounds, seconds, warmup, calibrate, min_n, max_n, wanted, log)
    result["quick"] = args.quick
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["all_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
