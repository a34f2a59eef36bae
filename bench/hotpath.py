"""Application-thread cost of recording one two-span LLM trace: obshub vs OpenTelemetry.

The trace: an ``agent_run`` root span with the user's question as input, a
child ``model_generation`` span (model, provider, parameters, three chat
messages as input, an answer as output, token usage), then the root's output.

Peers, all measured in one process on the same machine, each with its exporter
attached and working while it is measured:

- ``obshub-jsonl``: ``obshub.Hub`` + ``JsonlExporter`` in batch mode (its
  default ``events``: started, updated and ended, i.e. 6 events a trace);
- ``obshub-jsonl-ended``: the same exporter with ``events=["ended"]`` (2 events
  a trace, like an OTLP exporter) -- a like-for-like reference row;
- ``obshub-langfuse``: ``obshub_langfuse.LangfuseExporter`` in batch mode to a
  loopback receiver, when that package is importable;
- ``otel``: OpenTelemetry SDK ``TracerProvider`` + ``BatchSpanProcessor`` +
  ``OTLPSpanExporter`` (protobuf over HTTP) to the same loopback receiver,
  the data as ``gen_ai.*`` attributes, JSON strings made on the app thread.

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

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from receiver import ReceiverProcess, wait_for_spans

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5
SPANS_PER_TRACE = 2
OTEL_PATH = "/v1/traces"
LANGFUSE_PATH = "/api/public/otel/v1/traces"
BIG_QUEUE = 4_000_000  # a bound that is never reached: each burst is flushed before the next

# -- the recorded data (built once, as an application would have it) ----------------------

QUESTION = "How do I reset my password if I no longer have access to my recovery email?"
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": "You are a helpful support agent for Acme Cloud."},
    {"role": "user", "content": QUESTION},
    {"role": "assistant", "content": "Let me look up the account recovery policy."},
]
ANSWER = "Open Settings > Security, choose 'Reset password', then verify by SMS instead."


# -- peers -------------------------------------------------------------------------------


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


class Peer:
    """A tracing setup under test: records traces, flushes, and checks what arrived."""

    name = ""
    description = ""

    def __init__(self) -> None:
        self.traces = 0  # every trace recorded, warm-up included

    def record(self, n: int) -> None:
        raise NotImplementedError

    def flush(self) -> bool:
        raise NotImplementedError

    def after_flush(self) -> None:
        """Untimed bookkeeping after each flush (e.g. count and truncate a file)."""

    def verify(self) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def obshub_trace_loop(hub: Any) -> Callable[[int], None]:
    span = hub.span

    def record(n: int) -> None:
        for _ in range(n):
            with span("support-agent", type="agent_run", input=QUESTION) as agent:
                with span(
                    "gpt-4o",
                    type="model_generation",
                    model="gpt-4o",
                    provider="openai",
                    parameters={"temperature": 0.2, "max_tokens": 512},
                    input=MESSAGES,
                ) as gen:
                    gen.update(
                        output=ANSWER, usage={"input": 812, "output": 95, "cached_input": 200}
                    )
                agent.update(output=ANSWER)

    return record


class ObshubPeer(Peer):
    def __init__(self, name: str, description: str, exporter: Any) -> None:
        super().__init__()
        import obshub

        self.name = name
        self.description = description
        self.exporter = exporter
        self.hub = obshub.Hub(exporters=[exporter], service_name="obshub-bench")
        self._record = obshub_trace_loop(self.hub)

    def record(self, n: int) -> None:
        self._record(n)
        self.traces += n

    def flush(self) -> bool:
        return bool(self.hub.flush(timeout=300))

    def stats(self) -> dict[str, Any]:
        (only,) = self.hub.stats().values()
        return attrs.asdict(only)

    def close(self) -> None:
        self.hub.shutdown(timeout=10)


class JsonlPeer(ObshubPeer):
    def __init__(self, name: str, description: str, path: Path, events: list[str] | None) -> None:
        import obshub

        self.path = path
        kwargs: dict[str, Any] = {} if events is None else {"events": events}
        exporter = obshub.JsonlExporter(path=str(path), max_queue_size=BIG_QUEUE, **kwargs)
        self.kinds = sorted(k.value for k in exporter.event_kinds)
        super().__init__(name, description, exporter)
        self.lines: dict[str, int] = {}
        self.bad_lines = 0

    def after_flush(self) -> None:
        # Count what reached the file, then empty it so the disk use stays small.
        # The exporter appends with O_APPEND, so truncating between flushes is safe.
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        for line in data.splitlines():
            head = line[:40]
            marker = head.find(b'"kind":"')
            if marker < 0:
                self.bad_lines += 1
                continue
            start = marker + 8
            kind = head[start : head.find(b'"', start)].decode()
            self.lines[kind] = self.lines.get(kind, 0) + 1
        os.truncate(self.path, 0)

    def verify(self) -> dict[str, Any]:
        stats = self.stats()
        expected = dict.fromkeys(self.kinds, self.traces * SPANS_PER_TRACE)
        if "updated" in expected:
            expected["updated"] = self.traces * 2  # gen.update + agent.update
        ok = self.lines == expected and stats["dropped"] == 0 and stats["failed"] == 0
        return {
            "traces": self.traces,
            "expected_lines": expected,
            "got_lines": dict(self.lines),
            "bad_lines": self.bad_lines,
            "stats": stats,
            "ok": ok,
        }


class LangfusePeer(ObshubPeer):
    def __init__(self, receiver: ReceiverProcess, exporter_cls: Any) -> None:
        self.receiver = receiver
        exporter = exporter_cls(
            public_key="pk-lf-bench",
            secret_key="sk-lf-bench",
            base_url=receiver.url,
            realtime=False,
            max_queue_size=BIG_QUEUE,
        )
        super().__init__(
            "obshub-langfuse",
            "obshub Hub + LangfuseExporter (batch, OTLP protobuf+gzip) -> loopback receiver",
            exporter,
        )

    def verify(self) -> dict[str, Any]:
        stats = self.stats()
        expected = self.traces * SPANS_PER_TRACE
        got = wait_for_spans(self.receiver, LANGFUSE_PATH, expected)
        entry = self.receiver.stats()["by_path"].get(LANGFUSE_PATH, {})
        return {
            "traces": self.traces,
            "expected_spans": expected,
            "got_spans": got,
            "requests": entry.get("requests", 0),
            "bytes_wire": entry.get("bytes_wire", 0),
            "stats": stats,
            "ok": got == expected and stats["dropped"] == 0 and stats["failed"] == 0,
        }


class OtelPeer(Peer):
    name = "otel"
    description = (
        "OpenTelemetry SDK TracerProvider + BatchSpanProcessor + OTLPSpanExporter "
        "(protobuf/HTTP, no compression) -> loopback receiver"
    )

    def __init__(self, receiver: ReceiverProcess) -> None:
        import requests
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self.receiver = receiver
        session = requests.Session()
        session.trust_env = False  # no proxy from the environment: loopback only
        self._setup(OTLPSpanExporter(endpoint=receiver.url + OTEL_PATH, session=session))

    def _setup(self, exporter: Any) -> None:
        super().__init__()
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.provider = TracerProvider(resource=Resource.create({"service.name": "otel-bench"}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=BIG_QUEUE))
        tracer = self.provider.get_tracer("obshub-bench")
        start = tracer.start_as_current_span
        dumps = json.dumps

        def record(n: int) -> None:
            for _ in range(n):
                with start(
                    "support-agent",
                    attributes={
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.agent.name": "support-agent",
                        "input.value": dumps(QUESTION),
                    },
                ) as agent:
                    with start(
                        "gpt-4o",
                        attributes={
                            "gen_ai.operation.name": "chat",
                            "gen_ai.provider.name": "openai",
                            "gen_ai.request.model": "gpt-4o",
                            "gen_ai.request.temperature": 0.2,
                            "gen_ai.request.max_tokens": 512,
                            "gen_ai.input.messages": dumps(MESSAGES),
                        },
                    ) as gen:
                        gen.set_attributes(
                            {
                                "gen_ai.output.messages": dumps(ANSWER),
                                "gen_ai.usage.input_tokens": 812,
                                "gen_ai.usage.output_tokens": 95,
                                "gen_ai.usage.cache_read.input_tokens": 200,
                            }
                        )
                    agent.set_attribute("output.value", dumps(ANSWER))

        self._record = record

    def record(self, n: int) -> None:
        self._record(n)
        self.traces += n

    def flush(self) -> bool:
        return bool(self.provider.force_flush(timeout_millis=300_000))

    def verify(self) -> dict[str, Any]:
        expected = self.traces * SPANS_PER_TRACE
        got = wait_for_spans(self.receiver, OTEL_PATH, expected)
        entry = self.receiver.stats()["by_path"].get(OTEL_PATH, {})
        return {
            "traces": self.traces,
            "expected_spans": expected,
            "got_spans": got,
            "requests": entry.get("requests", 0),
            "bytes_wire": entry.get("bytes_wire", 0),
            "ok": got == expected,
        }

    def close(self) -> None:
        self.provider.shutdown()


class OtelNoopPeer(OtelPeer):
    """OTel's in-process cost alone: the same SDK setup, an exporter that does nothing."""

    name = "otel-noop-export"
    description = (
        "reference: the same OpenTelemetry SDK setup, BatchSpanProcessor + an exporter "
        "that only counts (no encoding, no HTTP)"
    )

    def __init__(self) -> None:
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        counter = self

        class CountingExporter(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                counter.exported += len(spans)
                return SpanExportResult.SUCCESS

        self.exported = 0
        self._setup(CountingExporter())

    def verify(self) -> dict[str, Any]:
        expected = self.traces * SPANS_PER_TRACE
        return {
            "traces": self.traces,
            "expected_spans": expected,
            "got_spans": self.exported,
            "sink": "counting exporter, no HTTP",
            "ok": self.exported == expected,
        }


def load_langfuse_exporter() -> tuple[Any | None, str]:
    """``LangfuseExporter`` if ``obshub_langfuse`` is importable (installed or in-tree)."""
    try:
        from obshub_langfuse import LangfuseExporter

        return LangfuseExporter, "installed"
    except ImportError as exc:
        first_error = exc
    source = REPO / "plugins" / "langfuse"
    if (source / "obshub_langfuse" / "__init__.py").exists():
        sys.path.insert(0, str(source))
        sys.modules.pop("obshub_langfuse", None)
        try:
            from obshub_langfuse import LangfuseExporter

            return LangfuseExporter, f"source tree ({source})"
        except Exception as exc:
            return None, f"not importable: {type(exc).__name__}: {exc}"
    return None, f"not importable: {first_error}"


# -- the measurement -------------------------------------------------------------------------


def timed_segment(peer: Peer, n: int) -> Segment:
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


def _ratios(
    summaries: dict[str, dict[str, Any]], base: str, target: float | None
) -> dict[str, Any]:
    """obshub peers' figures divided by ``base``'s (median, min, total CPU)."""
    ref = summaries.get(base)
    if ref is None:
        return {}
    ratios: dict[str, Any] = {}
    for name, summ in summaries.items():
        if not name.startswith("obshub"):
            continue
        median = summ["us_per_trace_median"] / ref["us_per_trace_median"]
        ratios[name] = {
            "median_ratio": median,
            "min_ratio": summ["us_per_trace_min"] / ref["us_per_trace_min"],
            "process_cpu_ratio": summ["process_cpu_us_per_trace_median"]
            / ref["process_cpu_us_per_trace_median"],
            "target": target,
            "meets_target": None if target is None else median <= target,
        }
    return ratios


def run(
    rounds: int,
    round_seconds: float,
    warmup: int,
    calibrate: int,
    min_n: int,
    max_n: int,
    only: set[str] | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    peers: list[Peer] = []
    results: dict[str, PeerResult] = {}
    langfuse_cls, langfuse_status = load_langfuse_exporter()
    log(f"obshub_langfuse: {langfuse_status}")
    tmp = tempfile.TemporaryDirectory(prefix="obshub-bench-")
    receiver = ReceiverProcess(max_seconds=1800)
    try:
        candidates: list[Callable[[], Peer]] = [
            lambda: JsonlPeer(
                "obshub-jsonl",
                "obshub Hub + JsonlExporter (batch; default events: started, updated, ended)",
                Path(tmp.name) / "all.jsonl",
                None,
            ),
            lambda: JsonlPeer(
                "obshub-jsonl-ended",
                "obshub Hub + JsonlExporter (batch; events=['ended'], like OTLP)",
                Path(tmp.name) / "ended.jsonl",
                ["ended"],
            ),
            lambda: OtelPeer(receiver),
            OtelNoopPeer,
        ]
        if langfuse_cls is not None:
            candidates.insert(2, lambda: LangfusePeer(receiver, langfuse_cls))
        for make in candidates:
            peer = make()
            if only is not None and peer.name not in only:
                peer.close()
                continue
            peers.append(peer)
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
    ratios = _ratios(summaries, "otel", TARGET_RATIO)
    ratios_noop = _ratios(summaries, "otel-noop-export", None)
    for name in ("otel", "otel-noop-export"):
        if name in summaries:
            summ = summaries[name]
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
        "langfuse": langfuse_status,
        "peers": summaries,
        "ratios": ratios,
        "ratios_vs_otel_noop_export": ratios_noop,
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
        f"{'drain':>9} {'total CPU':>10} {'ratio':>7} {'verified':>9}"
    )
    out(header)
    out(
        f"{'':<20} {'':>8} {'us/trace':>9} {'us/trace':>9} {'us/trace':>9} {'us/trace':>9} "
        f"{'us/trace':>10} {'vs otel':>7}"
    )
    out("-" * len(header))
    ratios = result["ratios"]
    for name, s in peers.items():
        ratio = ratios.get(name, {}).get("median_ratio")
        ratio_text = f"{ratio:.2f}" if ratio is not None else "-"
        out(
            f"{name:<20} {s['n_per_round']:>8} {s['us_per_trace_median']:>9.1f} "
            f"{s['us_per_trace_min']:>9.1f} {s['app_thread_cpu_us_per_trace_median']:>9.1f} "
            f"{s['drain_us_per_trace_median']:>9.1f} {s['process_cpu_us_per_trace_median']:>10.1f} "
            f"{ratio_text:>7} {'yes' if s['verification'].get('ok') else 'NO':>9}"
        )
    out("")
    for name, r in ratios.items():
        verdict = "meets" if r["meets_target"] else "MISSES"
        out(
            f"  {name} / otel: median {r['median_ratio']:.2f}, min {r['min_ratio']:.2f} "
            f"(target <= {r['target']}: {verdict}); total CPU ratio {r['process_cpu_ratio']:.2f}"
        )
    for name, r in result["ratios_vs_otel_noop_export"].items():
        out(
            f"  {name} / otel-noop-export (reference): median {r['median_ratio']:.2f}, "
            f"min {r['min_ratio']:.2f}; total CPU ratio {r['process_cpu_ratio']:.2f}"
        )
    for name in ("otel", "otel-noop-export"):
        if name in peers:
            o = peers[name]
            out(
                f"  {name} per span: median {o['us_per_span_median']:.1f} us, "
                f"min {o['us_per_span_min']:.1f} us"
            )
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
        out(
            f"  receiver: {rec.get('spans')} spans, {rec.get('unique_spans')} unique, "
            f"{rec.get('decode_errors')} decode errors"
        )
    out(f"  langfuse exporter: {result['langfuse']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 7)")
    parser.add_argument(
        "--round-seconds", type=float, default=None, help="target seconds per burst (0.6)"
    )
    parser.add_argument(
        "--peers", default=None, help="comma-separated subset (obshub-jsonl,otel,...)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    if args.quick:
        rounds, seconds, warmup, calibrate, min_n, max_n = 3, 0.05, 200, 300, 100, 2_000
    else:
        rounds, seconds, warmup, calibrate, min_n, max_n = 7, 0.6, 2_000, 3_000, 1_000, 100_000
    rounds = args.rounds or rounds
    seconds = args.round_seconds or seconds
    only = set(args.peers.split(",")) if args.peers else None

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = run(rounds, seconds, warmup, calibrate, min_n, max_n, only, log)
    result["quick"] = args.quick
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["all_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
