"""Run the obshub benchmark suite and write ``bench/results/latest.json``.

Runs ``hotpath.py``, ``endtoend.py``, ``realtime.py``, ``scaling.py``,
``memory.py``, ``wholeprocess.py`` and ``dropcurve.py``, each in a fresh
Python process (so one cannot warm up, or leave memory behind for, another),
collects their JSON results, adds the environment (Python, CPU count, load,
timestamp, git commit and dirty flag, package versions), prints every target
with PASS/MISS and the ratios against the peers, and draws
``bench/results/scaling.png`` when matplotlib is installed::

    .venv/bin/python bench/run.py            # full run, about 15 minutes on 2 cores
    .venv/bin/python bench/run.py --quick    # smoke run, about 2 minutes

A quick run writes ``latest-quick.json`` and ``scaling-quick.png`` instead, so
it never replaces the figures of a full run.
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
import time
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
SCRIPTS = (
    "hotpath",
    "endtoend",
    "realtime",
    "scaling",
    "memory",
    "wholeprocess",
    "dropcurve",
    "worker_cpu",
)

sys.path.insert(0, str(BENCH))


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
                "langfuse",
                "matplotlib",
            )
        },
    }


def run_script(script: str, quick: bool) -> tuple[dict[str, Any] | None, int, float]:
    """Run one benchmark script in its own process; its tables go straight to our stdout."""
    fd, tmp = tempfile.mkstemp(prefix=f"{script}-", suffix=".json.tmp", dir=RESULTS)
    os.close(fd)
    started = time.perf_counter()
    try:
        cmd = [sys.executable, str(BENCH / f"{script}.py"), "--json", tmp]
        if quick:
            cmd.append("--quick")
        print(f"$ {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, cwd=REPO, timeout=3600, check=False)
        path = Path(tmp)
        data = json.loads(path.read_text()) if path.stat().st_size else None
        return data, proc.returncode, time.perf_counter() - started
    finally:
        Path(tmp).unlink(missing_ok=True)


def collect_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of every benchmark, in the order of the issue."""
    targets: list[dict[str, Any]] = []
    for script in SCRIPTS:
        data = result.get(script)
        if data is None and script in result:
            targets.append({"name": f"{script}: benchmark failed", "status": "FAIL"})
        elif data:
            targets.extend(data.get("targets", []))
    return targets


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_table(result: dict[str, Any]) -> list[str]:
    env = result["environment"]
    commit = (env["git_commit"] or "unknown")[:10]
    dirty = (
        " (+uncommitted changes in obshub/ or plugins/)"
        if env["git_dirty_obshub_or_plugins"]
        else ""
    )
    lines = [
        "",
        "=" * 92,
        f"obshub benchmarks  {'QUICK' if result['quick'] else 'full'}  {env['timestamp']}  "
        f"({result['seconds']:.0f} s)",
        f"python {env['python']}  cpus {env['cpu_count']}  load {env['loadavg_at_start']}  "
        f"commit {commit}{dirty}  sources {env['source_digest']['sha256']}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v),
        "=" * 92,
    ]
    hot = result.get("hotpath")
    if hot:
        lines.append(
            "hot path (us per two-span trace on the application thread, median of rounds):"
        )
        for name, p in hot["peers"].items():
            r_otel = hot["ratios"].get(name, {}).get("median_ratio")
            r_sdk = hot["ratios_vs_langfuse_sdk"].get(name, {}).get("median_ratio")
            ratios = ""
            if r_otel is not None or r_sdk is not None:
                ratios = f"  = {_fmt(r_otel, '.3f')} x otel, {_fmt(r_sdk, '.3f')} x langfuse-sdk"
            lines.append(
                f"  {name:<20} {p['us_per_trace_median']:8.1f} us  total CPU "
                f"{p['process_cpu_us_per_trace_median']:7.1f} us{ratios}"
            )
    e2e = result.get("endtoend")
    if e2e:
        lines.append("end to end (traces/s until the receiver holds every span, median):")
        for name, p in e2e["peers"].items():
            ratio = e2e["throughput_ratio_obshub_over"].get(name)
            extra = f"  (obshub = {ratio:.2f} x)" if ratio else ""
            lines.append(f"  {name:<20} {p['traces_per_s_median']:8.0f} traces/s{extra}")
    rt = result.get("realtime")
    if rt:
        lines.append("realtime (span end -> receiver, idle, one span at a time):")
        for name, p in rt["peers"].items():
            lines.append(
                f"  {name:<26} median {_fmt(p['latency_ms_median'], '6.2f')} ms  p99 "
                f"{_fmt(p['latency_ms_p99'], '6.2f')} ms  end() "
                f"{_fmt(p['end_call_us_median'], '.0f')} us on the app thread"
            )
    sc = result.get("scaling")
    if sc:
        lines.append("scaling (us/trace on each app thread | total traces/s), 1/2/4/8 threads:")
        for name, entry in sc["threads"].items():
            cells = "  ".join(
                f"{row['us_per_trace_app_thread_median']:.0f}|{row['traces_per_s_median']:.0f}"
                for row in entry["rows"]
            )
            lines.append(f"  {name:<20} {cells}")
        fan = sc.get("fanout")
        if fan:
            lines.append(
                f"  fan-out 3 vs 1 exporters: app thread {fan['ratio_app_thread']:.2f} x, "
                f"app-thread CPU {fan['ratio_app_thread_cpu']:.2f} x, "
                f"total CPU {fan['ratio_process_cpu']:.2f} x"
            )
    mem = result.get("memory")
    if mem:
        lines.append(
            f"memory (stalled backend, queue {mem['method']['max_queue_size']:,} spans, "
            "fresh data per trace):"
        )
        for name, p in mem["peers"].items():
            if "rss_peak_mb" not in p:
                lines.append(f"  {name:<20} {p.get('skipped') or p.get('error')}")
                continue
            lines.append(
                f"  {name:<20} {p['spans']:>9,} spans  peak RSS {p['rss_peak_mb']:6.1f} MB "
                f"(set-up {p['rss_setup_mb']:.1f})  {p['rss_per_held_span_bytes']:,.0f} B per "
                f"queued span  growth after full {p['growth_after_full_mb']:+.1f} MB, "
                f"steady {_fmt(p['growth_steady_mb'], '+.1f')} MB"
            )
    whole = result.get("wholeprocess")
    if whole:
        m = whole["method"]
        lines.append(
            f"whole process ({m['work_us_measured']:.0f} us of work + a 5-span trace per request, "
            "default settings): req/s | lost | delivered %, threads "
            + "/".join(str(t) for t in m["threads"])
            + ":"
        )
        for name, rows in whole["peers"].items():
            cells = []
            for row in rows.values():
                if "requests_per_s_median" not in row:
                    cells.append("error")
                    continue
                lost = row.get("lost_fraction")
                delivered = row.get("delivered_pct_min")
                cells.append(
                    f"{row['requests_per_s_median']:.0f} | "
                    f"{'-' if lost is None else f'{100 * lost:.0f}%'} | "
                    f"{'-' if delivered is None else f'{delivered:.1f}'}"
                )
            lines.append(f"  {name:<24} " + "   ".join(cells))
        for name, reason in whole.get("skipped", {}).items():
            lines.append(f"  {name:<24} skipped: {reason}")
    drop = result.get("dropcurve")
    if drop:
        lines.append(
            "drop curve (obshub defaults; offered -> achieved spans/s, dropped, delivered/s):"
        )
        ratios = {r["rate"]: r["ratio"] for r in drop["ratio_3_vs_1"]}
        for count, curve in drop["curves"].items():
            cells = "  ".join(
                f"{p['rate'] / 1000:.0f}k->{p['achieved_spans_per_s'] / 1000:.1f}k "
                f"d{p['dropped']} {p['delivered_spans_per_s_min'] / 1000:.1f}k/s"
                for p in curve
            )
            lines.append(f"  {count} exporter(s): {cells}")
        if ratios:
            lines.append(
                "  3 vs 1 delivered throughput: "
                + "  ".join(f"{rate / 1000:.0f}k {r:.2f}" for rate, r in ratios.items())
            )
    worker = result.get("worker_cpu")
    if worker:
        lines.append(
            "exporter worker CPU per span (us; ratio to the OTel SDK exporter; without gzip):"
        )
        for size, peers in worker["worker_cpu_us_per_span"].items():
            cells = "  ".join(
                f"{name} {p['median_us_per_span']:.1f}"
                + (f" ({p['ratio_to_otel']:.2f}x)" if p.get("ratio_to_otel") is not None else "")
                + (
                    f" [{p['without_gzip_median_us_per_span']:.1f}]"
                    if p.get("without_gzip_median_us_per_span") is not None
                    else ""
                )
                for name, p in peers.items()
                if isinstance(p, dict) and "median_us_per_span" in p
            )
            lines.append(f"  {size:>6}: {cells}")
    lines.append("-" * 92)
    lines.append("targets (ratios measured in this run):")
    for t in result["targets"]:
        value = t.get("value")
        text = "-" if value is None else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        why = f"  ({t['reason']})" if t.get("reason") else ""
        lines.append(f"  {t['status']:<5} {t['name']:<66} {t.get('target', ''):>9}  {text}{why}")
    for line in result.get("notes", []):
        lines.append(f"  {line}")
    lines.append("=" * 92)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (about 2 min)")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated subset of {','.join(SCRIPTS)}",
    )
    parser.add_argument("--out", type=Path, default=None, help="result file (latest.json)")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    out = args.out or RESULTS / f"latest{suffix}.json"
    only = set(args.only.split(",")) if args.only else set(SCRIPTS)
    unknown = only - set(SCRIPTS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    result: dict[str, Any] = {"quick": args.quick, "environment": environment()}
    codes: dict[str, int] = {}
    durations: dict[str, float] = {}
    for script in SCRIPTS:
        if script in only:
            result[script], codes[script], durations[script] = run_script(script, args.quick)
    result["seconds"] = time.perf_counter() - started
    result["seconds_per_benchmark"] = {k: round(v, 1) for k, v in durations.items()}
    result["exit_codes"] = codes
    result["ok"] = all(code == 0 for code in codes.values())
    result["targets"] = collect_targets(result)
    notes: list[str] = []
    if result.get("scaling"):
        from plot import plot_scaling

        notes.append(plot_scaling(result["scaling"], out.with_name(f"scaling{suffix}.png")))
    if not result["ok"]:
        failed = [k for k, v in codes.items() if v]
        notes.append(f"NOT OK: {', '.join(failed)} could not verify delivery or memory bounds")
    result["notes"] = notes
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    for line in summary_table(result):
        print(line)
    print(f"results: {out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
