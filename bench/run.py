"""Run the obshub benchmarks and write ``bench/results/latest.json``.

Runs ``hotpath.py`` and ``memory.py``, each in a fresh Python process (so one
cannot warm up, or leave memory behind for, the other), collects their JSON
results, adds the environment (Python, CPU count, timestamp, git commit) and
prints a summary table::

    .venv/bin/python bench/run.py            # full run, a few minutes
    .venv/bin/python bench/run.py --quick    # smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def source_digest() -> dict[str, Any]:
    """A hash of the measured sources (the tree may hold uncommitted edits)."""
    digest = hashlib.sha256()
    files = sorted(
        [*REPO.glob("obshub/**/*.py"), *REPO.glob("plugins/*/obshub_*/**/*.py")],
        key=lambda p: p.relative_to(REPO).as_posix(),
    )
    for path in files:
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return {"sha256": digest.hexdigest()[:16], "files": len(files)}


def environment() -> dict[str, Any]:
    status = _git("status", "--porcelain", "--", "obshub", "plugins")
    return {
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty_obshub_or_plugins": None if status is None else bool(status),
        "source_digest": source_digest(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "sched_cpu_count": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": {
            name: _version(name)
            for name in (
                "obshub",
                "obshub-langfuse",
                "opentelemetry-sdk",
                "opentelemetry-exporter-otlp-proto-http",
                "protobuf",
            )
        },
    }


def run_script(script: str, quick: bool, extra: list[str]) -> tuple[dict[str, Any] | None, int]:
    """Run one benchmark script in its own process; its tables go straight to our stdout."""
    fd, tmp = tempfile.mkstemp(prefix=f"{script}-", suffix=".json.tmp", dir=RESULTS)
    os.close(fd)
    try:
        cmd = [sys.executable, str(BENCH / f"{script}.py"), "--json", tmp, *extra]
        if quick:
            cmd.append("--quick")
        print(f"$ {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, cwd=REPO, timeout=3600, check=False)
        path = Path(tmp)
        data = json.loads(path.read_text()) if path.stat().st_size else None
        return data, proc.returncode
    finally:
        Path(tmp).unlink(missing_ok=True)


def summary_table(result: dict[str, Any]) -> list[str]:
    env = result["environment"]
    commit = (env["git_commit"] or "unknown")[:10]
    dirty = " (+uncommitted changes)" if env["git_dirty_obshub_or_plugins"] else ""
    lines = [
        "",
        "=" * 78,
        f"obshub benchmarks  {'QUICK' if result['quick'] else 'full'}  {env['timestamp']}",
        f"python {env['python']}  cpus {env['cpu_count']}  load {env['loadavg_at_start']}  "
        f"commit {commit}{dirty}  sources {env['source_digest']['sha256']}",
        "=" * 78,
    ]
    hot = result.get("hotpath")
    if hot:
        otel = hot["peers"].get("otel")
        lines.append("hot path, us per two-span trace on the application thread:")
        lines.append(
            f"  {'peer':<20} {'median':>8} {'min':>8} {'ratio':>7} {'target':>7} "
            f"{'total CPU':>10} {'CPU ratio':>10} {'ok':>4}"
        )
        for name, peer in hot["peers"].items():
            ratio = hot["ratios"].get(name)
            r_text = f"{ratio['median_ratio']:.2f}" if ratio else "-"
            t_text = "<=0.5" if ratio else ""
            c_text = f"{ratio['process_cpu_ratio']:.2f}" if ratio else "-"
            ok = "yes" if peer["verification"].get("ok") else "NO"
            median, low = peer["us_per_trace_median"], peer["us_per_trace_min"]
            cpu = peer["process_cpu_us_per_trace_median"]
            lines.append(
                f"  {name:<20} {median:>8.1f} {low:>8.1f} {r_text:>7} {t_text:>7} "
                f"{cpu:>10.1f} {c_text:>10} {ok:>4}"
            )
        if otel:
            lines.append(
                f"  otel per span: {otel['us_per_span_median']:.1f} us (median), "
                f"{otel['us_per_span_min']:.1f} us (min)"
            )
        lines.append(f"  langfuse exporter: {hot['langfuse']}")
    elif "hotpath" in result:
        lines.append("hot path: FAILED (see output above)")
    mem = result.get("memory")
    if mem:
        lines.append(
            f"memory, stuck backend, max_queue_size={mem['max_queue_size']:,}, "
            f"{mem['traces']:,} traces:"
        )
        lines.append(
            f"  RSS queue full {mem['rss_queue_full_mb']:.1f} MB -> end {mem['rss_end_mb']:.1f} MB "
            f"(growth {mem['growth_after_full_mb']:+.1f} MB); dropped "
            f"{mem['dropped_before_shutdown']:,} (expected {mem['expected_dropped']:,}); "
            f"shutdown(timeout=1) {mem['shutdown_seconds']:.2f} s; "
            f"bounded: {'yes' if mem['bounded'] else 'NO'}"
        )
    elif "memory" in result:
        lines.append("memory: FAILED (see output above)")
    lines.append("=" * 78)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (under a minute)")
    parser.add_argument(
        "--only", choices=["hotpath", "memory"], default=None, help="run one benchmark"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "latest.json", help="result file (latest.json)"
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"quick": args.quick, "environment": environment()}
    codes: dict[str, int] = {}
    for script in ("hotpath", "memory"):
        if args.only in (None, script):
            result[script], codes[script] = run_script(script, args.quick, [])
    result["exit_codes"] = codes
    result["ok"] = all(code == 0 for code in codes.values())
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    for line in summary_table(result):
        print(line)
    print(f"results: {args.out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
