"""Application-thread cost of a bridged OpenTelemetry span beside ``hub.span``'s.

``obshub.otel.SpanProcessor`` must cost the application about what recording
a span by hand costs: ``on_end`` only looks the span up and appends it to the
exporters' queues; the conversion (attributes into span fields) runs on the
exporter worker. Measured in one process, same hub, same exporter (a batch
exporter that discards what it receives, after the worker has built each
snapshot, so the worker's conversion competes for the interpreter as it would
in production):

- ``hub.span``: ``with hub.span(...)`` of a ``model_generation`` span with
  model, provider, parameters, usage: start, end, enqueue.
- ``on_end``: the processor's ``on_end`` for one finished OpenTelemetry span
  carrying the GenAI attributes an instrumentation writes (timed alone).
- ``on_start``: the processor's ``on_start`` (its other application-thread call).
- ``otel span``/``otel span + bridge``: a whole OpenTelemetry span (start and
  end through the SDK) without and with the processor on the provider; the
  wall time of a back-to-back loop includes the worker's conversion, which
  competes for the interpreter. ``same, nothing to export``: the bridge into a
  hub without exporters, so no worker runs: the application thread's share.

Method: R rounds; in each, N operations of each kind back to back, timed with
``perf_counter``; the hub is flushed (untimed) between kinds. Reported: median
and min microseconds per operation over the rounds, and the ratios.

Run: ``.venv/bin/pip install -q -e '.[otel]' && .venv/bin/python bench/otel_bridge.py``
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

import obshub
import obshub.otel

ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.usage.input_tokens": 812,
    "gen_ai.usage.output_tokens": 95,
    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"Hi"}]}]',
    "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"Yo"}]}]',
}


class Discard(obshub.Exporter):
    """Receives the built events and drops them."""

    name = "discard"

    def export(self, events: Sequence[obshub.SpanEvent]) -> None:
        return


def _per_op(fn: Callable[[int], float], n: int, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        gc.collect()
        out.append(fn(n) / n * 1e6)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="operations per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)

    hub = obshub.Hub(exporters=[Discard(max_queue_size=1_000_000)], service_name="bench")
    bare = TracerProvider()
    bridged = TracerProvider()
    processor = obshub.otel.SpanProcessor(hub)
    bridged.add_span_processor(processor)
    # The same bridge into a hub with no exporter: nothing is queued, so no worker
    # converts anything while the loop runs (the application thread's share alone).
    idle_hub = obshub.Hub(exporters=[], service_name="bench-idle")
    idle = TracerProvider()
    idle_processor = obshub.otel.SpanProcessor(idle_hub)
    idle.add_span_processor(idle_processor)
    bare_tracer = bare.get_tracer("bench")
    tracer = bridged.get_tracer("bench")
    clock = time.perf_counter

    def hub_span(n: int) -> float:
        span = hub.span
        start = clock()
        for _ in range(n):
            with span(
                "chat gpt-4o",
                type="model_generation",
                model="gpt-4o",
                provider="openai",
                parameters={"temperature": 0.2},
                usage={"input": 812, "output": 95},
            ):
                pass
        took = clock() - start
        hub.flush(timeout=60)
        return took

    def on_start_and_end(n: int) -> tuple[float, float]:
        # Spans started through the provider without timing the SDK: on_start
        # and on_end are then called directly, each timed alone.
        spans = [tracer.start_span("chat gpt-4o", attributes=ATTRIBUTES) for _ in range(n)]
        processor._open.clear()  # forget the SDK's own on_start calls: timed below
        start = clock()
        for span in spans:
            processor.on_start(span)
        started = clock() - start
        for span in spans:
            span._end_time = time.time_ns()
        readable = [span._readable_span() for span in spans]
        start = clock()
        for item in readable:
            processor.on_end(item)
        ended = clock() - start
        hub.flush(timeout=60)
        return started, ended

    starts: list[float] = []
    ends: list[float] = []
    own: list[float] = []
    whole_bare: list[float] = []
    whole_bridged: list[float] = []
    whole_idle: list[float] = []

    def otel_whole(chosen: Any) -> Callable[[int], float]:
        def run(n: int) -> float:
            start_span = chosen.start_as_current_span
            start = clock()
            for _ in range(n):
                with start_span("chat gpt-4o", attributes=ATTRIBUTES):
                    pass
            took = clock() - start
            hub.flush(timeout=60)
            return took

        return run

    for _ in range(2):  # warm-up
        hub_span(2000)
        on_start_and_end(2000)
    for _ in range(args.rounds):
        own += _per_op(hub_span, args.n, 1)
        gc.collect()
        started, ended = on_start_and_end(args.n)
        starts.append(started / args.n * 1e6)
        ends.append(ended / args.n * 1e6)
        whole_bare += _per_op(otel_whole(bare_tracer), args.n, 1)
        whole_bridged += _per_op(otel_whole(tracer), args.n, 1)
        whole_idle += _per_op(otel_whole(idle.get_tracer("bench")), args.n, 1)

    stats = hub.stats()
    dropped = sum(s.dropped for s in stats.values())
    med = statistics.median
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{args.rounds} rounds x {args.n} operations; dropped={dropped}"
    )
    print(f"{'operation':<26}{'median us':>10}{'min us':>10}")
    for label, values in (
        ("hub.span (by hand)", own),
        ("bridge on_end", ends),
        ("bridge on_start", starts),
        ("otel span (no bridge)", whole_bare),
        ("otel span + bridge", whole_bridged),
        ("  same, nothing to export", whole_idle),
    ):
        print(f"{label:<26}{med(values):>10.2f}{min(values):>10.2f}")
    print(f"on_end / hub.span: {med(ends) / med(own):.2f}")
    print(f"(on_start + on_end) / hub.span: {(med(starts) + med(ends)) / med(own):.2f}")
    print(f"bridge's added cost per OTel span: {med(whole_bridged) - med(whole_bare):.2f} us")
    print(
        "  of which the application thread's own (nothing to export): "
        f"{med(whole_idle) - med(whole_bare):.2f} us"
    )
    processor.shutdown()
    idle_processor.shutdown()
    idle_hub.shutdown(timeout=10)
    hub.shutdown(timeout=10)
    return 0 if dropped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
