"""Follow one span from ``hub.span(...)`` to the bytes on the wire: which files, how many hops.

Records a two-span trace through a Langfuse exporter aimed at the local
stand-in, with a profiler on every thread, and keeps the calls made in the
project's own files (the core, the plugins). It prints the files in the order
first entered and counts the *hops*: calls or returns that move from one
project file to another. The number says how far a reader has to travel to
follow a span; ``docs/contributing/architecture.md`` quotes it.

    .venv/bin/python scripts/span_path.py            # --calls to list every hop
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Where the project's own code lives (tests and test kits are not on a span's way).
OWN = ("obshub/", "plugins/langfuse/obshub_langfuse/", "plugins/otlp/obshub_otlp/")
NOT_ON_THE_WAY = ("testing", "/_ingestion.py", "pytest_plugin")


def own_file(filename: str) -> str | None:
    try:
        rel = Path(filename).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None
    if not rel.startswith(OWN) or any(part in rel for part in NOT_ON_THE_WAY):
        return None
    return rel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", action="store_true", help="print every hop")
    args = parser.parse_args(argv)

    from obshub_langfuse import LangfuseExporter
    from obshub_langfuse.testing import LangfuseStandIn

    import obshub

    #: (caller's file, called file, function) of every call on the way, in order.
    calls: list[tuple[str | None, str, str]] = []
    lock = threading.Lock()
    recording = threading.Event()

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if not recording.is_set() or event != "call":
            return
        callee = own_file(frame.f_code.co_filename)
        if callee is None:
            return
        back = frame.f_back
        # The nearest caller in the project's own files (through stdlib frames).
        caller = None
        while back is not None and caller is None:
            caller = own_file(back.f_code.co_filename)
            back = back.f_back
        with lock:
            calls.append((caller, callee, frame.f_code.co_name))

    # Set before the hub starts its worker threads, so they carry the profiler too;
    # it records only while ``recording`` is set.
    threading.setprofile(profile)
    with LangfuseStandIn() as server:
        exporter = LangfuseExporter(
            public_key=server.public_key,
            secret_key=server.secret_key,
            base_url=server.url,
            batch={"max_size": 2, "interval": 60},
        )
        hub = obshub.Hub(exporters=[exporter], service_name="span-path")
        with hub.span("warm-up"):
            pass
        hub.flush(10)
        sys.setprofile(profile)
        recording.set()
        with hub.span("agent", type="agent_run", input="question") as agent:
            with hub.span("llm", type="model_generation", model="gpt-4o") as gen:
                gen.update(output="answer", usage={"input": 10, "output": 2})
            agent.update(output="answer")
        hub.flush(10)
        recording.clear()
        sys.setprofile(None)
        threading.setprofile(None)
        hub.shutdown(5)

    files: list[str] = []
    hops = 0
    edges: dict[tuple[str, str], int] = {}
    for caller, callee, function in calls:
        for name in (caller, callee):
            if name is not None and name not in files:
                files.append(name)
        if caller is not None and caller != callee:
            hops += 1
            edges[(caller, callee)] = edges.get((caller, callee), 0) + 1
            if args.calls:
                print(f"  {caller} -> {callee} ({function})")
    print(f"files on a span's way: {len(files)}")
    for name in files:
        print(f"  {name}")
    both_ways = sorted({tuple(sorted(e)) for e in edges if (e[1], e[0]) in edges})
    print(f"calls from one file into another (hops): {hops}")
    print(f"distinct file-to-file call edges: {len(edges)}")
    print(f"pairs of files that call each other (back and forth): {len(both_ways)}")
    for first, second in both_ways:
        print(f"  {first} <-> {second}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
