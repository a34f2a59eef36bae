"""What per-sink controls cost: PII masking and tail sampling on the worker, nothing on the app.

Worker side (the code an exporter's worker runs, timed directly):

- PII masking (`PiiMasker.process`, all detectors, ``mask`` and ``hash``) of
  a span whose input and output hold chat text with some e-mail addresses,
  phone and card numbers, per KB of text;
- tail sampling (`TailBuffer.offer` and the decision at the root's end) per
  span, on traces of 5 spans.

Application side: the time the application thread spends recording a
two-span trace with 1 KB of input, into a hub whose exporter has no
controls, and into one whose exporter has ``pii = true`` and a tail sampler.
Both exporters discard what they receive; runs alternate and the median is
reported, as CPU time of the application thread (``time.thread_time``) and as
wall time, twice: with the worker idle during the loop (everything batched
until the flush after it: the application thread's own work alone) and with
the worker busy masking next to it (what the application sees: the threads
share the interpreter lock and the CPU caches).

    .venv/bin/python bench/sinks.py            # --quick for a short run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import obshub
from obshub._delivery.tail import TailBuffer
from obshub._pii import PiiMasker
from obshub._sampling import TailRule
from obshub.spans import EventKind, Span, SpanEvent

RESULTS = Path(__file__).resolve().parent / "results" / "sinks.json"
SENTENCE = (
    "The customer asked why the invoice for March was higher than usual and whether "
    "the plan could be changed before the next billing cycle starts. "
)
PII = (
    "Reach me at jane.doe@example.com or +44 20 7946 0958; "
    "card 4111 1111 1111 1111 was charged twice. "
)


def chat_text(kb: int) -> str:
    """About ``kb`` KB of chat text, one PII sentence per ~1 KB."""
    unit = SENTENCE * 6 + PII
    return (unit * (kb * 1024 // len(unit) + 1))[: kb * 1024]


def make_span(kb: int) -> Span:
    half = chat_text(max(1, kb // 2))
    return Span(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        name="chat",
        input={"messages": [{"role": "user", "content": half}]},
        output=half,
        metadata={"note": "ticket 1234"},
    )


def per_kb(masker: PiiMasker, kb: int, repeat: int) -> float:
    span = make_span(kb)
    masker.process(span)
    start = time.perf_counter()
    for _ in range(repeat):
        masker.process(span)
    elapsed = time.perf_counter() - start
    return elapsed / repeat / kb * 1e6  # µs per KB


def tail_per_span(traces: int) -> float:
    rule = TailRule(ratio=0.05)
    buffer = TailBuffer([rule], time.monotonic)
    events = []
    for t in range(traces):
        trace_id = f"{t + 1:032x}"
        for s in range(4):
            span = Span(
                trace_id=trace_id, span_id=f"{s + 1:016x}", parent_span_id="f" * 16, name="c"
            )
            events.append(
                SpanEvent(kind=EventKind.ENDED, span=span, config_name="c", service_name="s")
            )
        root = Span(trace_id=trace_id, span_id="f" * 16, name="root", end_time=2, start_time=1)
        events.append(SpanEvent(kind=EventKind.ENDED, span=root, config_name="c", service_name="s"))
    out: list[SpanEvent] = []
    start = time.perf_counter()
    for event in events:
        buffer.offer(event, out)
    elapsed = time.perf_counter() - start
    return elapsed / len(events) * 1e6  # µs per span


class Discard(obshub.Exporter):
    name = "discard"

    def export(self, events: Sequence[SpanEvent]) -> None:
        pass


def app_thread_us(
    controls: dict[str, Any], traces: int, payload: str, *, worker_idle: bool = False
) -> tuple[float, float]:
    """(CPU µs of the application thread per trace, wall µs per trace).

    ``worker_idle``: the exporter batches everything until the flush after the
    loop, so the worker does not compete with the loop for the interpreter.
    """
    if worker_idle:
        controls = {**controls, "batch": {"max_size": 10 * traces, "interval": 3600.0}}
    hub = obshub.Hub(exporters=[Discard(**controls)], service_name="bench")
    try:
        cpu = time.thread_time()
        start = time.perf_counter()
        for _ in range(traces):
            with hub.span("agent", input={"q": payload}), hub.span("llm"):
                pass
        elapsed = time.perf_counter() - start
        cpu = time.thread_time() - cpu
        hub.flush(60)
    finally:
        hub.shutdown(60)
    return cpu / traces * 1e6, elapsed / traces * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeat = 20 if args.quick else 200
    rounds = 3 if args.quick else 9
    traces = 2000 if args.quick else 10000
    results: dict[str, Any] = {"python": sys.version.split()[0]}
    mask = PiiMasker()
    hashing = PiiMasker(action="hash", salt="bench-salt")
    results["pii_mask_us_per_kb"] = {kb: round(per_kb(mask, kb, repeat), 1) for kb in (1, 16, 64)}
    results["pii_hash_us_per_kb"] = {
        kb: round(per_kb(hashing, kb, repeat), 1) for kb in (1, 16, 64)
    }
    clean = PiiMasker()
    plain_span = make_span(16)
    plain = attrs_free_text(plain_span)
    results["pii_mask_us_per_kb_no_pii"] = round(per_kb_text(clean, plain, repeat), 1)
    results["tail_us_per_span"] = round(tail_per_span(traces), 2)
    payload = chat_text(1)
    tail = {"strategy": "tail", "keep": ["error"], "slower_than": 5.0, "ratio": 0.05}
    variants = {"none": {}, "pii+tail": {"pii": True, "sampling": tail}}
    for idle, label in ((True, "worker_idle"), (False, "worker_busy")):
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        wall: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(rounds):
            for name, controls in variants.items():
                thread_cpu, elapsed = app_thread_us(controls, traces, payload, worker_idle=idle)
                cpu[name].append(thread_cpu)
                wall[name].append(elapsed)
        results[f"app_thread_cpu_us_per_trace_{label}"] = {
            name: round(statistics.median(values), 2) for name, values in cpu.items()
        }
        results[f"app_thread_wall_us_per_trace_{label}"] = {
            name: round(statistics.median(values), 2) for name, values in wall.items()
        }
    print(json.dumps(results, indent=2))
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def attrs_free_text(span: Span) -> str:
    """Text without PII of the same size as the span's (to time the no-match path)."""
    size = len(str(span.output)) * 2
    return (SENTENCE * (size // len(SENTENCE) + 1))[:size]


def per_kb_text(masker: PiiMasker, text: str, repeat: int) -> float:
    masker.text(text)
    start = time.perf_counter()
    for _ in range(repeat):
        masker.text(text)
    return (time.perf_counter() - start) / repeat / (len(text) / 1024) * 1e6


if __name__ == "__main__":
    raise SystemExit(main())
