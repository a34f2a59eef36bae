"""obshub studio's store: spans/s written, and ms to list the newest 50 of 1,000,000 traces.

Run (needs obshub-studio installed; not part of the test suite)::

    .venv/bin/python bench/studio.py              # 1,000,000 traces (about a minute to build)
    .venv/bin/python bench/studio.py --traces 100000

1. **Write throughput**: realistic agent traces (`obshub.testing.make_trace`, 5 spans each,
   ``ended`` events) through ``SqliteExporter.export`` in batches of 512 events (the default
   batch size), on a fresh store file in a temporary directory: spans written per second,
   median of 5 rounds of 20,000 spans, by wall clock and per CPU second of the process
   (``--write-only`` runs this part alone).
2. **List latency at scale**: ``--traces`` rows are generated directly in sqlite (the
   ``traces`` table, plus one span and one tag per trace so the filters that join them have
   something to search), then the JSON API's queries are timed on a read-only connection:
   newest 50, the next page by cursor, a session filter, a tag filter, a model filter, and
   the slowest 50, text search with and without hits. Each is the median of 20 runs after
   one warm-up. Then the dashboard over every trace, once.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from obshub_studio import SqliteExporter
from obshub_studio.queries import dashboard, list_traces
from obshub_studio.store import connect

from obshub.testing import make_trace


def write_throughput(
    directory: Path, rounds: int = 5, spans: int = 20_000
) -> tuple[list[float], list[float]]:
    """Spans/s per round: by wall clock, and per CPU second of this process."""
    rates, cpu_rates = [], []
    for r in range(rounds):
        exporter = SqliteExporter(path=str(directory / f"write-{r}.db"))
        events = []
        while len(events) < spans:
            events += make_trace()
        events = events[:spans]
        batches = [events[i : i + 512] for i in range(0, len(events), 512)]
        exporter.export(batches[0][:1])  # opens and migrates the file outside the timing
        started, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            exporter.export(batch)
        elapsed = time.perf_counter() - started
        cpu_elapsed = time.process_time() - cpu
        exporter.shutdown()
        rates.append(spans / elapsed)
        cpu_rates.append(spans / cpu_elapsed)
    return rates, cpu_rates


def build_big_store(path: Path, traces: int) -> float:
    conn = connect(path)
    started = time.perf_counter()
    rng = random.Random(7)
    now = time.time_ns()
    models = ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3-70b"]
    conn.execute("BEGIN")

    def rows() -> Any:
        for i in range(traces):
            start = now - (traces - i) * 1_000_000_000
            duration = rng.randint(50, 20_000) * 1_000_000
            yield (
                f"{i:032x}",
                f"agent-{i % 20}",
                start,
                start + duration,
                duration,
                f"s-{i // 5}",
                f"u-{i % 1000}",
                '["beta"]' if i % 10 == 0 else "[]",
                "error" if i % 50 == 0 else "default",
                1 if i % 50 == 0 else 0,
                models[i % 4],
                rng.randint(100, 5000),
                rng.random() / 100,
                5,
                "bench",
                f"question {i}",
                f"answer {i}",
            )

    conn.executemany(
        "INSERT INTO traces (trace_id, name, start_ns, end_ns, duration_ns, session_id, user_id,"
        " tags, level, has_error, models, tokens, cost, span_count, service, input_text,"
        " output_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.executemany(
        "INSERT INTO spans (trace_id, span_id, name, type, start_ns, end_ns, level, model,"
        " kind, data) SELECT trace_id, substr(trace_id, 17), 'gen', 'model_generation',"
        " start_ns, end_ns, level, models, 'ended', '{}' FROM traces WHERE rowid = ?",
        ((i,) for i in range(1, traces + 1, 100)),
    )
    conn.execute(
        "INSERT INTO trace_tags (tag, trace_id) SELECT 'beta', trace_id FROM traces"
        " WHERE tags = '[\"beta\"]'"
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def time_query(conn: Any, params: dict[str, str], runs: int = 20) -> tuple[float, int]:
    page = list_traces(conn, params)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        page = list_traces(conn, params)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(page["traces"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--write-only", action="store_true", help="only the write throughput")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        rates, cpu_rates = write_throughput(directory)
        print(
            f"write: {statistics.median(rates):,.0f} spans/s median "
            f"(rounds: {', '.join(f'{r:,.0f}' for r in rates)}); "
            f"{statistics.median(cpu_rates):,.0f} spans per CPU second"
        )
        if args.write_only:
            return 0
        big = directory / "big.db"
        built = build_big_store(big, args.traces)
        size = big.stat().st_size / 1e6
        print(f"store: {args.traces:,} traces generated in {built:.1f} s ({size:,.0f} MB)")
        conn = connect(big, readonly=True)
        first = list_traces(conn, {"limit": "50"})
        cases = {
            "newest 50": {"limit": "50"},
            "next page (cursor)": {"limit": "50", "cursor": first["next_cursor"]},
            "session filter": {"limit": "50", "session": f"s-{args.traces // 10}"},
            "tag filter (10 %)": {"limit": "50", "tag": "beta"},
            "rare tag (none)": {"limit": "50", "tag": "nowhere"},
            "model filter": {"limit": "50", "model": "gpt-4o"},
            "errors only": {"limit": "50", "error": "1"},
            "slowest 50": {"limit": "50", "sort": "latency"},
            "text search (50 hits)": {"limit": "50", "q": "question 99"},
            "text search (no hit)": {"limit": "50", "q": "no such words"},
        }
        for label, params in cases.items():
            # A search without hits scans every trace: a few runs are enough.
            ms, count = time_query(conn, params, runs=3 if "no hit" in label else 20)
            print(f"list {label:<22} {ms:8.2f} ms  ({count} rows)")
        started = time.perf_counter()
        summary = dashboard(conn, days=3650)
        elapsed = (time.perf_counter() - started) * 1000
        print(f"dashboard over {summary['traces']:,} traces: {elapsed:,.0f} ms (one run)")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
