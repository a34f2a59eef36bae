"""Worker CPU per span: what the exporter's background thread costs, obshub vs the OTel SDK.

The application's interpreter runs the exporter worker too: every µs it spends
encoding, compressing and sending a span is a µs the application's threads
cannot run Python. This benchmark measures that cost per span, for span
payloads of about 1 KB, 10 KB and 100 KB, in one run, against the loopback
receiver (``receiver.py``, a separate process):

- ``obshub-langfuse``: ``obshub.Hub`` + ``LangfuseExporter`` (OTLP protobuf +
  gzip, its defaults);
- ``obshub-otlp``: ``obshub.Hub`` + ``OtlpExporter`` (``http/protobuf`` + gzip,
  GenAI conventions, its defaults);
- ``otel``: OpenTelemetry SDK ``TracerProvider`` + ``BatchSpanProcessor`` +
  ``OTLPSpanExporter`` (protobuf, no compression: its defaults), the same data
  as ``gen_ai.*`` attributes with JSON strings made on the application thread.

Each peer records the two-span trace of ``peers.py`` (an ``agent_run`` with
the question as input and the answer as output; a ``model_generation`` with
three messages as input and the answer as output), its strings sized so that
each span carries the payload (input + output) asked for, new strings for
every trace (as in a live application). Settings are the defaults except the
queue bounds, raised so that nothing is dropped; every span is checked
delivered (receiver counts, drop counters).

Worker CPU = the process's CPU time from the first span recorded until
``flush`` returned, minus the application thread's CPU time while it recorded
the spans: the exporter's worker, any other thread the library runs, and the
export work OpenTelemetry's ``force_flush`` does on the calling thread (the
receiver is another process). Each
round runs every size and, within a size, every peer, in an order rotated
round by round; the figure is the median over rounds (the machine may be
shared: the spread is printed too).

    .venv/bin/python bench/worker_cpu.py [--quick] [--json FILE] [--rounds N]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import (
    BIG_QUEUE,
    SPANS_PER_TRACE,
    ObshubPeer,
    OtelPeer,
    Peer,
    ReceiverPeer,
)
from receiver import ReceiverProcess

SIZES_KB = (1, 10, 100)
BIG_QUEUE_BYTES = 16 * 1024**3  # a byte bound never reached in this benchmark
OTLP_PATH = "/obshub-otlp/v1/traces"
LANGFUSE_PREFIX = "/obshub-langfuse"
LANGFUSE_PATH = LANGFUSE_PREFIX + "/api/public/otel/v1/traces"
PEER_NAMES = ("obshub-langfuse", "obshub-otlp", "otel")
# Issue 17: worker CPU per span <= 0.33 x the OTel SDK exporter's at 1 KB and 100 KB.
TARGET_SIZES_KB = (1, 100)
TARGET_RATIO = 0.33


class ObshubHttpPeer(ObshubPeer, ReceiverPeer):
    """obshub + one HTTP exporter whose spans arrive on ``path``."""

    def __init__(self, name: str, receiver: ReceiverProcess, exporter: Any, path: str) -> None:
        self.receiver = receiver
        self.paths = (path,)
        description = f"obshub Hub + {type(exporter).__name__} (defaults) -> loopback receiver"
        ObshubPeer.__init__(self, name, description, [exporter])

    def drops(self) -> dict[str, Any]:
        return self.stats()


def make_peers(receiver: ReceiverProcess) -> dict[str, Peer]:
    from obshub_langfuse import LangfuseExporter
    from obshub_otlp import OtlpExporter

    bounds: dict[str, Any] = {"max_queue_size": BIG_QUEUE, "max_queue_bytes": BIG_QUEUE_BYTES}
    langfuse = LangfuseExporter(
        public_key="pk-lf-bench",
        secret_key="sk-lf-bench",
        base_url=receiver.url + LANGFUSE_PREFIX,
        **bounds,
    )
    otlp = OtlpExporter(endpoint=receiver.url + OTLP_PATH, **bounds)
    return {
        "obshub-langfuse": ObshubHttpPeer("obshub-langfuse", receiver, langfuse, LANGFUSE_PATH),
        "obshub-otlp": ObshubHttpPeer("obshub-otlp", receiver, otlp, OTLP_PATH),
        "otel": OtelPeer(receiver),
    }


def corpus(size: int = 2 * 1024 * 1024, seed: int = 17) -> str:
    """Text that compresses about as well as chat text (gzip: ~3x), deterministic."""
    rng = random.Random(seed)
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12, 9, 8, 8, 7, 7, 6, 6, 4, 4, 3, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    words = ["".join(rng.choices(letters, weights, k=rng.randint(1, 10))) for _ in range(3000)]
    ranked = rng.choices(words, [1 / (i + 1) for i in range(len(words))], k=size // 5)
    text = " ".join(ranked)
    return text[:size]


class Payload:
    """Strings for traces whose spans each carry about ``kb`` KB (input + output).

    Each trace's strings are new objects cut from a 2 MB corpus at their own
    offset, so a batch does not repeat itself (which would flatter gzip).
    """

    def __init__(self, kb: int, text: str) -> None:
        self.half = kb * 1024 // 2
        self.third = max(self.half // 3, 1)
        self.corpus = text
        self.rng = random.Random(kb)

    def _cut(self, size: int) -> str:
        start = self.rng.randrange(len(self.corpus) - size)
        return self.corpus[start : start + size]

    def trace_data(self, i: int) -> tuple[str, list[dict[str, str]], str]:
        messages = [
            {"role": "system", "content": self._cut(self.third)},
            {"role": "user", "content": self._cut(self.third)},
            {"role": "assistant", "content": self._cut(self.third)},
        ]
        return self._cut(self.half), messages, self._cut(self.half)


class GzipClock:
    """CPU seconds the exporters spent in gzip (zlib runs without the interpreter lock).

    Wraps whichever compression functions the installed obshub has
    (``obshub.http.gzip_compress`` and ``obshub_otlp.wire.gzip_body``, where the
    exporters look them up), timing the calling thread's CPU.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def install(self) -> None:
        import importlib

        targets = [
            ("obshub.http", "gzip_compress"),
            ("obshub_otlp.wire", "gzip_body"),
            ("obshub_langfuse.exporter", "gzip_body"),
        ]
        # Import them all first: a module importing a name from one patched
        # before would get the wrapper, and time its calls twice.
        modules = [importlib.import_module(name) for name, _ in targets]
        originals = [getattr(m, attr, None) for m, (_, attr) in zip(modules, targets, strict=True)]
        for module, (_, attr), real in zip(modules, targets, originals, strict=True):
            if real is not None:
                setattr(module, attr, self._timed(real))

    def _timed(self, real: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return real(*args, **kwargs)
            finally:
                used = time.thread_time() - start
                with self._lock:
                    self.seconds += used

        return timed


GZIP = GzipClock()


def measure(peer: Peer, payload: Payload, traces: int, first: int) -> tuple[float, float]:
    """Worker CPU µs per span for ``traces`` traces recorded then flushed, and of it in gzip."""
    gc.collect()
    data = [payload.trace_data(first + i) for i in range(traces)]
    trace = peer.trace
    gzip_start = GZIP.seconds
    process_start = time.process_time()
    app_start = time.thread_time()
    for question, messages, answer in data:
        trace(question, messages, answer)
    app = time.thread_time() - app_start
    # OpenTelemetry's force_flush exports what is left on the calling thread:
    # that is export work, so the flush counts as the worker's.
    if not peer.flush():
        raise RuntimeError(f"{peer.name}: flush timed out")
    used = time.process_time() - process_start - app
    gzip = GZIP.seconds - gzip_start
    peer.traces += traces
    spans = traces * SPANS_PER_TRACE
    return used / spans * 1e6, gzip / spans * 1e6


def captured_events(payload: Payload, traces: int) -> list[Any]:
    """The span events obshub hands an exporter for ``traces`` traces of ``payload``."""
    from peers import obshub_trace_fn

    import obshub

    events: list[Any] = []

    class Capture(obshub.Exporter):
        name = "capture"

        def export(self, batch: Any) -> None:
            events.extend(batch)

    hub = obshub.Hub(exporters=[Capture(max_queue_size=BIG_QUEUE)], service_name="bench")
    try:
        trace = obshub_trace_fn(hub)
        for i in range(traces):
            trace(*payload.trace_data(i))
        hub.flush(timeout=60)
    finally:
        hub.shutdown(timeout=10)
    return events


def gzip_levels(text: str, quick: bool) -> dict[str, Any]:
    """CPU and bytes of gzip levels 1-9 on OTLP batches of 512 spans (Langfuse encoding)."""
    import zlib

    from obshub_langfuse import LangfuseExporter

    exporter = LangfuseExporter(
        public_key="pk-lf-bench", secret_key="sk-lf-bench", base_url="http://127.0.0.1:9"
    )
    repeat = 1 if quick else 5
    out: dict[str, Any] = {}
    print("gzip of a 512-span OTLP request (Langfuse encoding): µs per span / bytes per span")
    print(
        f"{'payload':>8}  {'raw B':>8}  " + "  ".join(f"{'L' + str(n):>15}" for n in range(1, 10))
    )
    for kb in SIZES_KB:
        events = captured_events(Payload(kb, text), 256)
        body = b"".join(exporter._encode(events))
        row: dict[str, Any] = {"raw_bytes_per_span": round(len(body) / len(events))}
        for level in range(1, 10):
            best = float("inf")
            for _ in range(repeat):
                start = time.process_time()
                compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
                size = len(compressor.compress(body)) + len(compressor.flush())
                best = min(best, time.process_time() - start)
            row[f"level_{level}"] = {
                "us_per_span": round(best / len(events) * 1e6, 1),
                "bytes_per_span": round(size / len(events)),
            }
        out[f"{kb}kb"] = row
        cells = "  ".join(
            f"{row[f'level_{n}']['us_per_span']:>7.1f}/{row[f'level_{n}']['bytes_per_span']:<7}"
            for n in range(1, 10)
        )
        print(f"{kb:>5} KB  {row['raw_bytes_per_span']:>8}  {cells}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5, quick 1)")
    parser.add_argument(
        "--spans-1kb",
        type=int,
        default=None,
        help="spans per measurement at 1 KB (default 20000, quick 2000); "
        "fewer at larger sizes, in proportion to sqrt(size)",
    )
    parser.add_argument(
        "--gzip-levels",
        action="store_true",
        help="also time gzip levels 1-9 on 512-span requests (no receiver needed)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    spans_1kb = args.spans_1kb or (2000 if args.quick else 20000)
    traces_for = {
        kb: max(int(spans_1kb / SPANS_PER_TRACE / kb**0.5), 20 if args.quick else 200)
        for kb in SIZES_KB
    }

    samples: dict[int, dict[str, list[float]]] = {
        kb: {name: [] for name in PEER_NAMES} for kb in SIZES_KB
    }
    gzip_samples: dict[int, dict[str, list[float]]] = {
        kb: {name: [] for name in PEER_NAMES} for kb in SIZES_KB
    }
    GZIP.install()
    text = corpus()
    payloads = {kb: Payload(kb, text) for kb in SIZES_KB}
    counter = 0
    with ReceiverProcess() as receiver:
        peers = make_peers(receiver)
        try:
            # Warm-up: imports, connections, first encodings.
            for kb in SIZES_KB:
                for name in PEER_NAMES:
                    measure(peers[name], payloads[kb], 20, counter)
                    counter += 20
            for r in range(rounds):
                for kb in SIZES_KB:
                    order = PEER_NAMES[r % 3 :] + PEER_NAMES[: r % 3]
                    for name in order:
                        us, gz = measure(peers[name], payloads[kb], traces_for[kb], counter)
                        counter += traces_for[kb]
                        samples[kb][name].append(us)
                        gzip_samples[kb][name].append(gz)
            verified = {name: peers[name].verify() for name in PEER_NAMES}
        finally:
            for peer in peers.values():
                peer.close()

    table: dict[str, Any] = {}
    for kb in SIZES_KB:
        row: dict[str, Any] = {"spans_per_measurement": traces_for[kb] * SPANS_PER_TRACE}
        for name in PEER_NAMES:
            values = samples[kb][name]
            row[name] = {
                "median_us_per_span": round(statistics.median(values), 2),
                "min": round(min(values), 2),
                "max": round(max(values), 2),
                "rounds": [round(v, 2) for v in values],
                # The same rounds' gzip share, and what is left: the CPU that
                # holds the interpreter (zlib releases it while compressing).
                "gzip_median_us_per_span": round(statistics.median(gzip_samples[kb][name]), 2),
                "without_gzip_median_us_per_span": round(
                    statistics.median(
                        v - g for v, g in zip(values, gzip_samples[kb][name], strict=True)
                    ),
                    2,
                ),
            }
        otel = row["otel"]["median_us_per_span"]
        for name in ("obshub-langfuse", "obshub-otlp"):
            row[name]["ratio_to_otel"] = round(row[name]["median_us_per_span"] / otel, 3)
            row[name]["without_gzip_ratio_to_otel"] = round(
                row[name]["without_gzip_median_us_per_span"] / otel, 3
            )
        table[f"{kb}kb"] = row
    ok = all(v["ok"] for v in verified.values())
    targets = []
    for kb in TARGET_SIZES_KB:
        value = table[f"{kb}kb"]["obshub-langfuse"]["ratio_to_otel"]
        targets.append(
            {
                "name": f"worker CPU per span at {kb} KB: obshub-langfuse / otel",
                "target": f"<= {TARGET_RATIO}",
                "limit": TARGET_RATIO,
                "value": value,
                "status": "PASS" if value <= TARGET_RATIO else "MISS",
            }
        )
    result: dict[str, Any] = {
        "benchmark": "worker_cpu",
        "quick": args.quick,
        "rounds": rounds,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "worker_cpu_us_per_span": table,
        "verified": verified,
        "targets": targets,
        "ok": ok,
    }

    print(f"worker CPU µs per span (median of {rounds} round(s); min-max in brackets)")
    header = f"{'payload':>8}  " + "  ".join(f"{n:>24}" for n in PEER_NAMES)
    print(header + f"  {'langfuse/otel':>13}  {'otlp/otel':>9}")
    for kb in SIZES_KB:
        row = table[f"{kb}kb"]
        cells = []
        for name in PEER_NAMES:
            entry = row[name]
            spread = f"[{entry['min']:.0f}-{entry['max']:.0f}]"
            cells.append(f"{entry['median_us_per_span']:>8.1f} {spread}".rjust(24))
        print(
            f"{kb:>5} KB  "
            + "  ".join(cells)
            + f"  {row['obshub-langfuse']['ratio_to_otel']:>12.2f}x"
            + f"  {row['obshub-otlp']['ratio_to_otel']:>8.2f}x"
        )
    print("the same without gzip (zlib runs without the interpreter lock; OTel sends uncompressed)")
    for kb in SIZES_KB:
        row = table[f"{kb}kb"]
        cells = [f"{row[n]['without_gzip_median_us_per_span']:>24.1f}" for n in PEER_NAMES]
        print(
            f"{kb:>5} KB  "
            + "  ".join(cells)
            + f"  {row['obshub-langfuse']['without_gzip_ratio_to_otel']:>12.2f}x"
            + f"  {row['obshub-otlp']['without_gzip_ratio_to_otel']:>8.2f}x"
        )
    for t in targets:
        print(f"target {t['name']} {t['target']}: {t['value']:.2f} {t['status']}")
    for name, check in verified.items():
        status = "ok" if check["ok"] else "NOT VERIFIED"
        print(f"{name}: {check['got_spans']}/{check['expected_spans']} spans delivered: {status}")
    if args.gzip_levels:
        result["gzip_levels"] = gzip_levels(text, args.quick)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
