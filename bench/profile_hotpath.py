"""Function-level profile of obshub recording the hot-path trace, app thread and worker.

Records the same two-span trace as ``hotpath.py`` through one obshub exporter
and prints where the time goes:

1. the application thread, sampled with pyinstrument when it is installed
   (``.venv/bin/pip install pyinstrument``), else traced with cProfile;
2. the exporter's worker thread (building snapshots, serialising, exporting),
   traced with cProfile switched on around each batch the worker sends.

cProfile inflates small functions; read it for the shape, not absolute times.
The worker is found through the hub's private channel list (read only: the
benchmark wraps one method on the channel instance, obshub is not changed)::

    .venv/bin/python bench/profile_hotpath.py --exporter jsonl --traces 20000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import obshub

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hotpath import load_langfuse_exporter, obshub_trace_loop
from receiver import ReceiverProcess


def _top(profile: cProfile.Profile, sort: str, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return out.getvalue()


def _wrap_worker(hub: obshub.Hub, profile: cProfile.Profile) -> bool:
    """Switch ``profile`` on in the worker thread around each batch it handles."""
    channels: list[Any] = list(hub._channels())
    wrapped = False
    for channel in channels:
        original = getattr(channel, "_drain_once", None)
        if original is None:
            continue

        def drain(original: Callable[[], None] = original) -> None:
            profile.enable()
            try:
                original()
            finally:
                profile.disable()

        channel._drain_once = drain
        wrapped = True
    return wrapped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exporter", choices=["jsonl", "jsonl-ended", "langfuse"], default="jsonl")
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=30, help="rows per table")
    parser.add_argument("--quick", action="store_true", help="2,000 traces")
    args = parser.parse_args(argv)
    traces = 2_000 if args.quick else args.traces

    tmp = tempfile.TemporaryDirectory(prefix="obshub-profile-")
    receiver: ReceiverProcess | None = None
    try:
        if args.exporter == "langfuse":
            cls, status = load_langfuse_exporter()
            if cls is None:
                print(f"obshub_langfuse {status}", file=sys.stderr)
                return 2
            receiver = ReceiverProcess(max_seconds=900)
            exporter: obshub.Exporter = cls(
                public_key="pk-lf-bench",
                secret_key="sk-lf-bench",
                base_url=receiver.url,
                max_queue_size=4_000_000,
            )
        else:
            events: dict[str, Any] = {"events": ["ended"]} if args.exporter == "jsonl-ended" else {}
            exporter = obshub.JsonlExporter(
                path=str(Path(tmp.name) / "p.jsonl"), max_queue_size=4_000_000, **events
            )
        hub = obshub.Hub(exporters=[exporter], service_name="obshub-profile")
        record = obshub_trace_loop(hub)
        record(2_000)  # warm-up
        hub.flush(timeout=300)

        # 1. the application thread (the worker runs as usual, unprofiled)
        profiler_cls: Any = None
        try:
            from pyinstrument import Profiler

            profiler_cls = Profiler
        except ImportError:
            pass
        t0 = time.perf_counter()
        if profiler_cls is not None:
            sampler = profiler_cls(interval=0.001)
            sampler.start()
            record(traces)
            sampler.stop()
            app_text = sampler.output_text(unicode=False, color=False, show_all=False)
        else:
            app_profile = cProfile.Profile()
            app_profile.enable()
            record(traces)
            app_profile.disable()
            app_text = _top(app_profile, "tottime", args.limit)
        app_s = time.perf_counter() - t0
        hub.flush(timeout=300)

        # 2. the worker thread
        worker_profile = cProfile.Profile()
        if not _wrap_worker(hub, worker_profile):
            print("cannot find the channel's _drain_once: worker not profiled", file=sys.stderr)
        record(traces)
        t1 = time.perf_counter()
        hub.flush(timeout=600)
        drain_s = time.perf_counter() - t1
        hub.shutdown(timeout=10)

        print(
            f"== application thread: {traces} traces, {app_s / traces * 1e6:.1f} us/trace "
            f"(profiler on) =="
        )
        print(app_text)
        print(
            f"== exporter worker ({exporter!r}), cProfile; drain after the burst "
            f"{drain_s / traces * 1e6:.1f} us/trace (profiler on) =="
        )
        print(_top(worker_profile, "tottime", args.limit))
        print(_top(worker_profile, "cumulative", args.limit))
    finally:
        if receiver is not None:
            receiver.close()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
