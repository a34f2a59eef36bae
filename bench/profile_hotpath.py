"""Function-level profile of obshub recording the hot-path trace, app thread and worker.

Records the same two-span trace as ``hotpath.py`` through one obshub exporter
and prints where the time goes:

1. the application thread, sampled with pyinstrument when it is installed
   (``.venv/bin/pip install pyinstrument``), else traced with cProfile;
2. the exporter's worker thread (building snapshots, serialising, exporting),
   traced with cProfile switched on around each batch the worker sends.

cProfile inflates small functions; read it for the shape, not absolute times.
The worker is found through the hub's private channel list (read only: the
benchmark wraps one method on the channel instance, obshub is not changed).
With ``--exporters 3`` (Langfuse only) the hub fans out to three exporter
instances, as ``scaling.py`` does; each worker gets its own profiler and the
tables are merged. The first line gives the app thread's wall and CPU time per
trace: their difference is time spent waiting for the GIL (held by the
workers) or preempted::

    .venv/bin/python bench/profile_hotpath.py --exporter langfuse --traces 20000
    .venv/bin/python bench/profile_hotpath.py --exporter langfuse --exporters 3
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

from peers import load_langfuse_exporter, obshub_trace_loop
from receiver import ReceiverProcess


def _top(profile: cProfile.Profile, sort: str, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return out.getvalue()


def _wrap_workers(hub: obshub.Hub) -> list[cProfile.Profile]:
    """One profiler per channel, switched on in its worker around each batch it handles."""
    profiles = []
    for channel in list(hub._channels()):
        original = getattr(channel, "_drain_once", None)
        if original is None:
            continue
        profile = cProfile.Profile()

        def drain(
            original: Callable[[], None] = original, profile: cProfile.Profile = profile
        ) -> None:
            profile.enable()
            try:
                original()
            finally:
                profile.disable()

        channel._drain_once = drain
        profiles.append(profile)
    return profiles


def _top_merged(profiles: list[cProfile.Profile], sort: str, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=out)
    for more in profiles[1:]:
        stats.add(more)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exporter", choices=["jsonl", "jsonl-ended", "langfuse"], default="jsonl")
    parser.add_argument(
        "--exporters", type=int, default=1, help="LangfuseExporter instances (fan-out)"
    )
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
            exporters: list[obshub.Exporter] = [
                cls(
                    instance_name=f"langfuse-{i + 1}",
                    public_key="pk-lf-bench",
                    secret_key="sk-lf-bench",
                    base_url=f"{receiver.url}/e{i + 1}",
                    max_queue_size=4_000_000,
                )
                for i in range(args.exporters)
            ]
        else:
            events: dict[str, Any] = {"events": ["ended"]} if args.exporter == "jsonl-ended" else {}
            exporters = [
                obshub.JsonlExporter(
                    path=str(Path(tmp.name) / "p.jsonl"), max_queue_size=4_000_000, **events
                )
            ]
        hub = obshub.Hub(exporters=exporters, service_name="obshub-profile")
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
        # 0. unprofiled: the app thread's wall vs CPU time for the same burst
        cpu0, t0 = time.thread_time(), time.perf_counter()
        record(traces)
        plain_wall, plain_cpu = time.perf_counter() - t0, time.thread_time() - cpu0
        hub.flush(timeout=300)

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
        worker_profiles = _wrap_workers(hub)
        if not worker_profiles:
            print("cannot find the channel's _drain_once: worker not profiled", file=sys.stderr)
            return 2
        record(traces)
        t1 = time.perf_counter()
        hub.flush(timeout=600)
        drain_s = time.perf_counter() - t1
        hub.shutdown(timeout=10)

        print(
            f"== unprofiled burst of {traces} traces, {len(exporters)} exporter(s): app thread "
            f"wall {plain_wall / traces * 1e6:.1f} us/trace, CPU {plain_cpu / traces * 1e6:.1f} "
            f"us/trace (the rest: waiting for the GIL or the CPU) =="
        )
        print(
            f"== application thread: {traces} traces, {app_s / traces * 1e6:.1f} us/trace "
            f"(profiler on) =="
        )
        print(app_text)
        print(
            f"== exporter worker(s) ({', '.join(repr(e) for e in exporters)}), cProfile, "
            f"merged; drain after the burst {drain_s / traces * 1e6:.1f} us/trace "
            f"(profiler on) =="
        )
        print(_top_merged(worker_profiles, "tottime", args.limit))
        print(_top_merged(worker_profiles, "cumulative", args.limit))
    finally:
        if receiver is not None:
            receiver.close()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
