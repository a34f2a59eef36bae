"""What tracing costs the whole application: requests/s lost and spans delivered, default settings.

The application (``agent_trace.py``): every request does ``--work-us`` (200)
µs of pure-Python CPU work, calibrated on this machine at start, and records a
five-span agent trace (agent root; retrieval; model generation; two tool
calls; about 1 KB of payload a span). T application threads (1, 2, 4) run
requests back to back for ``--seconds`` (5; quick 2). Every peer, thread count
and round runs in a FRESH Python process (no peer's threads linger into
another's run), with its own loopback receiver (``receiver.py``, a separate
process):

- ``baseline``: the same work and data, nothing recorded;
- ``obshub-langfuse``: ``Hub`` + ``LangfuseExporter`` (OTLP protobuf + gzip);
- ``obshub-langfuse-process``: the same with the exporter option
  ``delivery="process"`` (skipped, with the reason, when the installed
  exporter rejects the key);
- ``otel``: OTel SDK ``TracerProvider`` + ``BatchSpanProcessor`` +
  ``OTLPSpanExporter`` (protobuf over HTTP);
- ``langfuse-sdk``: the official Langfuse SDK (as in ``peers.py``).

ALL DEFAULT SETTINGS: queue sizes, batch sizes and intervals are the
libraries' own (drops are part of what is measured). ``--obshub-option
KEY=VALUE`` (repeatable) passes extra options to the obshub exporters.

Per run: a warm-up of 50 requests, flushed and delivered; then the threads
start together on a barrier and run until the deadline; requests/s = requests
over barrier -> last thread done. Then the peer's own flush and shutdown, with
a bounded wait (``--drain-timeout``, 30 s), and the receiver's count of the
run's spans. Reported per peer and thread count (medians over rounds):
requests/s, requests/s lost vs the baseline, spans recorded, spans delivered
(%), obshub's ``dropped`` (``hub.stats()``), and the CPU split: the
application threads' own CPU and the rest of the process (exporter workers) per
request. Imports the installed obshub: runs against any checkout.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_trace import (
    SPANS_PER_REQUEST,
    RequestFn,
    baseline_request,
    calibrate,
    langfuse_request,
    measure_work,
    obshub_request,
    otel_request,
    parse_option,
    payload_bytes,
)
from peers import (
    LANGFUSE_PATH,
    OTEL_PATH,
    environ,
    langfuse_sdk_status,
    load_langfuse_exporter,
    otlp_exporter,
)
from receiver import ReceiverProcess

ALL_PEERS = ("baseline", "obshub-langfuse", "obshub-langfuse-process", "otel", "langfuse-sdk")
OBSHUB_PEERS = ("obshub-langfuse", "obshub-langfuse-process")
WARMUP_REQUESTS = 50
LOST_TARGET = 0.15  # requests/s lost vs the baseline, with every span delivered


class Skip(Exception):
    """The peer cannot run here (package missing, option rejected): the reason."""


class Setup:
    """One peer in this process: its request function, how it finishes, what it dropped."""

    def __init__(self, request: RequestFn, path: str | None) -> None:
        self.request = request
        self.path = path  # receiver path of its spans (None: records nothing)
        self.description = ""

    def flush(self, timeout: float) -> bool:
        return True

    def finish(self, timeout: float) -> dict[str, Any]:
        """Flush and shut down (called on a helper thread, joined with a timeout)."""
        return {}


class ObshubSetup(Setup):
    def __init__(
        self, receiver: ReceiverProcess, chunk: int, options: dict[str, Any], process: bool
    ) -> None:
        import obshub

        cls, status = load_langfuse_exporter()
        if cls is None:
            raise Skip(f"obshub_langfuse {status}")
        opts = dict(options)
        if process:
            opts["delivery"] = "process"
        try:
            exporter = cls(
                public_key="pk-lf-bench",
                secret_key="sk-lf-bench",
                base_url=receiver.url + "/obshub",
                **opts,
            )
            self.hub = obshub.Hub(exporters=[exporter], service_name="obshub-bench")
        except (obshub.ConfigError, TypeError) as exc:
            if process or opts:
                raise Skip(
                    f"LangfuseExporter rejects {sorted(opts)}: {type(exc).__name__}: {exc}"
                ) from None
            raise
        super().__init__(obshub_request(self.hub, chunk), "/obshub" + LANGFUSE_PATH)
        extra = f", options {opts}" if opts else ""
        self.description = f"obshub Hub + LangfuseExporter (defaults{extra})"

    def stats(self) -> dict[str, int]:
        import attrs

        total: dict[str, int] = {}
        for entry in self.hub.stats().values():
            for key, value in attrs.asdict(entry).items():
                if isinstance(value, int) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
        return total

    def flush(self, timeout: float) -> bool:
        return bool(self.hub.flush(timeout=timeout))

    def finish(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        flushed = bool(self.hub.flush(timeout=timeout))
        before = self.stats()
        shutdown_ok = self.hub.shutdown(timeout=max(1.0, deadline - time.monotonic()))
        after = self.stats()
        return {
            "flush_ok": flushed,
            "shutdown_ok": shutdown_ok,
            "stats_after_flush": before,
            "stats": after,
        }


class OtelSetup(Setup):
    def __init__(self, receiver: ReceiverProcess, chunk: int) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "otel-bench"}), shutdown_on_exit=False
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(otlp_exporter(receiver.url + OTEL_PATH))
        )
        super().__init__(otel_request(self.provider.get_tracer("obshub-bench"), chunk), OTEL_PATH)
        self.description = (
            "OTel SDK TracerProvider + BatchSpanProcessor (defaults) + OTLPSpanExporter "
            "(protobuf/HTTP)"
        )

    def flush(self, timeout: float) -> bool:
        return bool(self.provider.force_flush(timeout_millis=int(timeout * 1000)))

    def finish(self, timeout: float) -> dict[str, Any]:
        flushed = self.flush(timeout)
        self.provider.shutdown()
        return {"flush_ok": flushed}


class LangfuseSdkSetup(Setup):
    def __init__(self, receiver: ReceiverProcess, chunk: int) -> None:
        ok, status = langfuse_sdk_status()
        if not ok:
            raise Skip(status)
        from langfuse import Langfuse
        from opentelemetry.sdk.trace import TracerProvider

        self.provider = TracerProvider(shutdown_on_exit=False)
        with environ(LANGFUSE_MEDIA_UPLOAD_ENABLED="false"):
            self.client = Langfuse(
                public_key="pk-lf-bench-sdk",
                secret_key="sk-lf-bench",
                base_url=receiver.url + "/sdk",
                tracer_provider=self.provider,
            )
        super().__init__(langfuse_request(self.client, chunk), "/sdk" + LANGFUSE_PATH)
        self.description = f"Langfuse SDK ({status}, defaults, media upload off)"

    def flush(self, timeout: float) -> bool:
        return bool(self.provider.force_flush(timeout_millis=int(timeout * 1000)))

    def finish(self, timeout: float) -> dict[str, Any]:
        self.client.flush()
        self.client.shutdown()
        return {}


def make_setup(
    peer: str, receiver: ReceiverProcess | None, chunk: int, options: dict[str, Any]
) -> Setup:
    if peer == "baseline":
        setup = Setup(baseline_request(chunk), None)
        setup.description = "the same work and data, no tracing"
        return setup
    assert receiver is not None
    if peer in OBSHUB_PEERS:
        return ObshubSetup(receiver, chunk, options, process=peer == "obshub-langfuse-process")
    if peer == "otel":
        return OtelSetup(receiver, chunk)
    if peer == "langfuse-sdk":
        return LangfuseSdkSetup(receiver, chunk)
    raise SystemExit(f"unknown peer {peer!r} (known: {', '.join(ALL_PEERS)})")


# -- one run, in this (fresh) process ---------------------------------------------------------


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def helper_cpu_seconds(exclude: set[int]) -> tuple[float, int]:
    """CPU seconds of this process's child processes (minus ``exclude``), and how many.

    A delivery mode that moves the exporter's work into a helper process takes
    CPU there, where ``process_time`` does not see it (Linux ``/proc``; 0 elsewhere).
    """
    me = os.getpid()
    total = 0
    found = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0, 0
    for entry in entries:
        if not entry.isdigit() or int(entry) in exclude:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command: state, ppid, ..., utime (14th field overall), stime (15th)
        if int(fields[1]) == me:
            total += int(fields[11]) + int(fields[12])
            found += 1
    return total / _TICK, found


def run_threads(
    request: RequestFn, threads: int, seconds: float, exclude: set[int] | None = None
) -> dict[str, Any]:
    """T threads run requests back to back from a common start until the deadline."""
    counts = [0] * threads
    ends = [0.0] * threads
    cpu = [0.0] * threads
    window: dict[str, float] = {}

    def start() -> None:  # runs once, in the last thread to reach the barrier
        window["helper0"], window["helpers"] = helper_cpu_seconds(skip)
        window["cpu0"] = time.process_time()
        window["t0"] = time.perf_counter()
        window["deadline"] = window["t0"] + seconds

    skip = exclude or set()
    barrier = threading.Barrier(threads, action=start)

    def app_thread(k: int) -> None:
        barrier.wait()
        deadline = window["deadline"]
        c0 = time.thread_time()
        now = time.perf_counter
        base = (k + 1) * 100_000_000
        n = 0
        while now() < deadline:
            request(base + n)
            n += 1
        ends[k] = now()
        cpu[k] = time.thread_time() - c0
        counts[k] = n

    pool = [threading.Thread(target=app_thread, args=(k,), name=f"app-{k}") for k in range(threads)]
    gc.collect()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    process_cpu = time.process_time() - window["cpu0"]
    elapsed = max(ends) - window["t0"]
    helper_cpu = helper_cpu_seconds(skip)[0] - window["helper0"]
    requests = sum(counts)
    return {
        "helper_processes": int(window["helpers"]),
        "helper_cpu_us_per_request": helper_cpu / requests * 1e6,
        "requests": requests,
        "per_thread": counts,
        "seconds": elapsed,
        "requests_per_s": requests / elapsed,
        "app_cpu_us_per_request": sum(cpu) / requests * 1e6,
        "other_cpu_us_per_request": (process_cpu - sum(cpu)) / requests * 1e6,
        "process_cpu_share": process_cpu / elapsed,
    }


def bounded_call(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
    """Run ``fn`` on a daemon thread; (finished in time, its result or exception)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except Exception as exc:
            box["result"] = {"error": repr(exc)}

    thread = threading.Thread(target=target, name="finish", daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), box.get("result")


def run_child(
    peer: str, threads: int, seconds: float, chunk: int, options: dict[str, Any], drain: float
) -> dict[str, Any]:
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    logging.getLogger("langfuse").setLevel(logging.CRITICAL)
    receiver = None if peer == "baseline" else ReceiverProcess(max_seconds=600)
    try:
        try:
            setup = make_setup(peer, receiver, chunk, options)
        except Skip as exc:
            return {"peer": peer, "skipped": str(exc)}
        work_us = measure_work(chunk, 100)
        for i in range(WARMUP_REQUESTS):
            setup.request(i)
        base = 0
        if receiver is not None and setup.path is not None:
            setup.flush(30)
            base = int(receiver.wait(setup.path, WARMUP_REQUESTS * SPANS_PER_REQUEST, 30)["spans"])
        result: dict[str, Any] = {
            "peer": peer,
            "description": setup.description,
            "threads": threads,
            "work_us_in_child": work_us,
            "warmup_spans_delivered": base,
        }
        exclude = set() if receiver is None else {receiver.proc.pid}
        result.update(run_threads(setup.request, threads, seconds, exclude))
        if receiver is None or setup.path is None:
            return result
        # What had arrived when the application stopped (before any flush): whether the
        # exporter kept up with the application or left a backlog for the drain.
        by_path = receiver.stats()["by_path"].get(setup.path, {})
        result["spans_delivered_in_window"] = int(by_path.get("spans", 0)) - base
        recorded = result["requests"] * SPANS_PER_REQUEST
        t0 = time.perf_counter()
        finished, info = bounded_call(lambda: setup.finish(drain), drain + 5)
        result["drain_s"] = time.perf_counter() - t0
        result["drain_finished"] = finished
        # Each flush returns once the receiver answered, which it does after counting;
        # a short wait covers a request still in flight when a peer's flush gave up.
        got = receiver.wait(setup.path, base + recorded, 2.0 if finished else 0.1)
        stats = receiver.stats()
        delivered = int(got["spans"]) - base
        result.update(
            spans_recorded=recorded,
            spans_delivered=delivered,
            delivered_pct=100.0 * delivered / recorded if recorded else 100.0,
            delivered_in_window_pct=100.0 * result["spans_delivered_in_window"] / recorded
            if recorded
            else 100.0,
            duplicate_spans=stats.get("duplicate_spans"),
            decode_errors=stats.get("decode_errors"),
            finish=info,
        )
        if isinstance(info, dict) and "stats" in info:
            result["obshub_dropped"] = info["stats"].get("dropped", 0)
            result["obshub_failed"] = info["stats"].get("failed", 0)
        return result
    finally:
        if receiver is not None:
            receiver.close()


# -- the parent: calibrate, run every child, summarise -------------------------------------


def child_cmd(
    peer: str,
    threads: int,
    seconds: float,
    chunk: int,
    options: list[str],
    drain: float,
) -> list[str]:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        peer,
        "--threads",
        str(threads),
        "--seconds",
        str(seconds),
        "--chunk",
        str(chunk),
        "--drain-timeout",
        str(drain),
    ]
    for option in options:
        cmd += ["--obshub-option", option]
    return cmd


def spawn(cmd: list[str], timeout: float) -> dict[str, Any]:
    fd, tmp = tempfile.mkstemp(prefix="wholeprocess-", suffix=".json")
    os.close(fd)
    try:
        cmd = [*cmd, "--json", tmp]
        try:
            proc = subprocess.run(cmd, timeout=timeout, check=False)
            code: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            code = f"timed out after {timeout:.0f} s"
        text = Path(tmp).read_text()
        if text:
            data: dict[str, Any] = json.loads(text)
            return data
        return {"error": f"child exit code {code}"}
    finally:
        Path(tmp).unlink(missing_ok=True)


def summarise(
    runs: dict[str, dict[int, list[dict[str, Any]]]], skipped: dict[str, str]
) -> dict[str, Any]:
    table: dict[str, dict[str, Any]] = {}
    for peer, by_threads in runs.items():
        rows: dict[str, Any] = {}
        for threads, rs in by_threads.items():
            good = [r for r in rs if "requests_per_s" in r]
            if not good:
                rows[str(threads)] = {"error": rs[0].get("error") if rs else "no run"}
                continue
            row: dict[str, Any] = {
                "rounds": len(good),
                "requests_per_s_median": statistics.median(r["requests_per_s"] for r in good),
                "requests_per_s_rounds": [round(r["requests_per_s"], 1) for r in good],
                "app_cpu_us_per_request_median": statistics.median(
                    r["app_cpu_us_per_request"] for r in good
                ),
                "other_cpu_us_per_request_median": statistics.median(
                    r["other_cpu_us_per_request"] for r in good
                ),
                "work_us_in_child_median": statistics.median(r["work_us_in_child"] for r in good),
                "helper_cpu_us_per_request_median": statistics.median(
                    r.get("helper_cpu_us_per_request", 0.0) for r in good
                ),
                "helper_processes": max(r.get("helper_processes", 0) for r in good),
            }
            if "spans_recorded" in good[0]:
                row.update(
                    spans_recorded_median=statistics.median(r["spans_recorded"] for r in good),
                    spans_delivered_median=statistics.median(r["spans_delivered"] for r in good),
                    delivered_pct_median=statistics.median(r["delivered_pct"] for r in good),
                    delivered_pct_min=min(r["delivered_pct"] for r in good),
                    delivered_pct_rounds=[round(r["delivered_pct"], 2) for r in good],
                    delivered_in_window_pct_median=statistics.median(
                        r["delivered_in_window_pct"] for r in good
                    ),
                    drain_s_median=statistics.median(r["drain_s"] for r in good),
                    duplicate_spans=sum(r.get("duplicate_spans") or 0 for r in good),
                )
            if "obshub_dropped" in good[0]:
                row["obshub_dropped_median"] = statistics.median(r["obshub_dropped"] for r in good)
                row["obshub_dropped_rounds"] = [r["obshub_dropped"] for r in good]
            rows[str(threads)] = row
        table[peer] = rows
    base = table.get("baseline", {})
    for rows in table.values():
        for threads, row in rows.items():
            ref_row = base.get(threads, {})
            ref = ref_row.get("requests_per_s_median")
            if ref and "requests_per_s_median" in row:
                row["lost_fraction"] = 1.0 - row["requests_per_s_median"] / ref
                # the same, round by round against that round's baseline (the spread)
                row["lost_fraction_rounds"] = [
                    round(1.0 - mine / theirs, 4)
                    for mine, theirs in zip(
                        row["requests_per_s_rounds"],
                        ref_row["requests_per_s_rounds"],
                        strict=False,
                    )
                ]
    return {"peers": table, "skipped": skipped}


def targets(summary: dict[str, Any], thread_counts: list[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for peer in OBSHUB_PEERS:
        rows = summary["peers"].get(peer)
        for threads in thread_counts:
            t: dict[str, Any] = {
                "name": f"whole process {peer}, {threads} thread(s): requests/s lost, "
                "100% delivered",
                "target": f"<= {LOST_TARGET:g}",
                "limit": LOST_TARGET,
            }
            row = (rows or {}).get(str(threads), {})
            if "lost_fraction" not in row:
                reason = summary["skipped"].get(peer) or row.get("error") or "not measured"
                t.update(value=None, status="SKIP", reason=reason)
            else:
                lost, delivered = row["lost_fraction"], row["delivered_pct_min"]
                t.update(
                    value=lost,
                    delivered_pct_min=delivered,
                    status="PASS" if lost <= LOST_TARGET and delivered >= 100.0 else "MISS",
                    reason=f"delivered {delivered:.1f}% (lowest round)",
                )
            out.append(t)
    return out


def run_parent(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    peers = args.peers.split(",") if args.peers else list(ALL_PEERS)
    unknown = set(peers) - set(ALL_PEERS)
    if unknown:
        raise SystemExit(f"unknown peer(s) {sorted(unknown)} (known: {', '.join(ALL_PEERS)})")
    if "baseline" not in peers:
        peers.insert(0, "baseline")  # the reference every loss is measured against
    thread_counts = [int(x) for x in args.threads.split(",")]
    for option in args.obshub_option:
        parse_option(option)  # fail early on a malformed one
    chunk, work_us = calibrate(args.work_us)
    log(
        f"work per request: 4 x {chunk} loop iterations = {work_us:.1f} us "
        f"(target {args.work_us:g} us); payload bytes per span: {payload_bytes()}"
    )
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {p: {} for p in peers}
    skipped: dict[str, str] = {}
    load = [list(os.getloadavg())] if hasattr(os, "getloadavg") else []
    timeout = args.seconds + args.drain_timeout + 120
    for r in range(args.rounds):
        for threads in thread_counts:
            order = peers[r % len(peers) :] + peers[: r % len(peers)]
            if r % 2:
                order.reverse()
            for peer in order:
                if peer in skipped:
                    continue
                cmd = child_cmd(
                    peer,
                    threads,
                    args.seconds,
                    chunk,
                    args.obshub_option,
                    args.drain_timeout,
                )
                res = spawn(cmd, timeout)
                if "skipped" in res:
                    skipped[peer] = res["skipped"]
                    log(f"{peer}: skipped: {res['skipped']}")
                    continue
                runs[peer].setdefault(threads, []).append(res)
                if "error" in res:
                    log(f"round {r + 1} {peer} x{threads}: ERROR {res['error']}")
                    continue
                extra = ""
                if "delivered_pct" in res:
                    extra = f"  delivered {res['delivered_pct']:6.2f}% of {res['spans_recorded']:,}"
                    if "obshub_dropped" in res:
                        extra += f"  dropped {res['obshub_dropped']:,}"
                    extra += f"  drain {res['drain_s']:.1f} s"
                log(
                    f"round {r + 1}/{args.rounds} {peer:<24} x{threads}: "
                    f"{res['requests_per_s']:7.0f} req/s{extra}"
                )
        if hasattr(os, "getloadavg"):
            load.append(list(os.getloadavg()))
    summary = summarise({p: v for p, v in runs.items() if p not in skipped or v}, skipped)
    errors = [
        f"{p} x{t}: {r['error']}"
        for p, by in runs.items()
        for t, rs in by.items()
        for r in rs
        if "error" in r
    ]
    duplicates = sum(
        row.get("duplicate_spans", 0) for rows in summary["peers"].values() for row in rows.values()
    )
    return {
        "benchmark": "wholeprocess",
        "method": {
            "work_us_target": args.work_us,
            "work_chunk_iterations": chunk,
            "work_us_measured": work_us,
            "payload_bytes_per_span": payload_bytes(),
            "spans_per_request": SPANS_PER_REQUEST,
            "threads": thread_counts,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "warmup_requests": WARMUP_REQUESTS,
            "drain_timeout_s": args.drain_timeout,
            "obshub_options": args.obshub_option,
            "settings": "library defaults (queues, batches, intervals); each run a fresh process",
        },
        "loadavg": load,
        "runs": runs,
        **summary,
        "targets": targets(summary, thread_counts),
        "errors": errors,
        "duplicate_spans": duplicates,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "ok": not errors and duplicates == 0,
    }


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def print_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    m = result["method"]
    out("")
    out(
        f"whole process: {m['work_us_measured']:.0f} us of work + a 5-span trace "
        f"(~{sum(m['payload_bytes_per_span'].values()) // 5} B payload a span) per request, "
        f"{m['seconds']:g} s a run, {m['rounds']} round(s), default settings"
        + (f", obshub options {m['obshub_options']}" if m["obshub_options"] else "")
    )
    header = (
        f"{'peer':<24} {'thr':>3} {'req/s':>8} {'lost':>7} {'recorded':>9} {'delivered':>10} "
        f"{'min':>7} {'window':>7} {'dropped':>8} {'app CPU':>8} {'other CPU':>10} "
        f"{'helper CPU':>10} "
        f"{'drain':>6} {'work':>5}"
    )
    out(header)
    out(
        f"{'':<24} {'':>3} {'':>8} {'':>7} {'spans':>9} {'%':>10} {'%':>7} {'%':>7} "
        f"{'obshub':>8} {'us/req':>8} {'us/req':>10} {'us/req':>10} {'s':>6} {'us':>5}"
    )
    out("-" * len(header))
    for peer, rows in result["peers"].items():
        for threads, row in rows.items():
            if "requests_per_s_median" not in row:
                out(f"{peer:<24} {threads:>3} ERROR {row.get('error')}")
                continue
            delivered = row.get("delivered_pct_median")
            low = row.get("delivered_pct_min")
            dropped = row.get("obshub_dropped_median")
            recorded = row.get("spans_recorded_median")
            drain = row.get("drain_s_median")
            window = row.get("delivered_in_window_pct_median")
            helper = (
                row["helper_cpu_us_per_request_median"] if row.get("helper_processes") else None
            )
            out(
                f"{peer:<24} {threads:>3} {row['requests_per_s_median']:>8.0f} "
                f"{_pct(row.get('lost_fraction')):>7} "
                f"{_num(recorded, ',.0f'):>9} {_num(delivered, '.1f'):>10} {_num(low, '.1f'):>7} "
                f"{_num(window, '.1f'):>7} "
                f"{_num(dropped, ',.0f'):>8} "
                f"{row['app_cpu_us_per_request_median']:>8.0f} "
                f"{row['other_cpu_us_per_request_median']:>10.0f} {_num(helper, '.0f'):>10} "
                f"{_num(drain, '.1f'):>6} "
                f"{row['work_us_in_child_median']:>5.0f}"
            )
    out(
        "  lost: 1 - req/s / baseline req/s (medians); delivered: spans the receiver counted "
        "after the peer's flush + shutdown (bounded wait), median and lowest round;"
    )
    out(
        "  window: delivered by the time the application stopped (before the flush); work: "
        "the request's work as measured in that run's process (the machine's speed drifts)"
    )
    out(
        "  app CPU: the application threads' own CPU; other CPU: the rest of the process "
        "(exporter workers, GC of their objects) per request; helper CPU: child processes "
        "of the application (a delivery helper; the receiver excluded)"
    )
    for name, reason in result["skipped"].items():
        out(f"  {name}: skipped: {reason}")
    for t in result["targets"]:
        value = "-" if t["value"] is None else _pct(t["value"])
        why = f" ({t['reason']})" if t.get("reason") else ""
        out(f"  target {t['name']} {t['target']}: {value} {t['status']}{why}")
    for error in result["errors"]:
        out(f"  ERROR {error}")
    if result["duplicate_spans"]:
        out(f"  ERROR the receiver counted {result['duplicate_spans']} duplicate spans")
    out(f"  load average (1/5/15 min) at start and after each round: {result['loadavg']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (2 s runs, 1 round)")
    parser.add_argument(
        "--peers", default=None, help=f"comma-separated subset of {','.join(ALL_PEERS)} (all)"
    )
    parser.add_argument("--threads", default="1,2,4", help="application thread counts (1,2,4)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds a run (5; quick 2)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (3; quick 1)")
    parser.add_argument("--work-us", type=float, default=200.0, help="work per request (200)")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="bounded wait for a peer's flush + shutdown after the run (30 s)",
    )
    parser.add_argument(
        "--obshub-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra option for the obshub exporters (repeatable; VALUE read as JSON if it "
        "parses, else a string), e.g. --obshub-option delivery=process",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (2.0 if args.quick else 5.0)
    args.rounds = args.rounds or (1 if args.quick else 3)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.child:
        options = dict(parse_option(o) for o in args.obshub_option)
        try:
            result = run_child(
                args.child, int(args.threads), args.seconds, args.chunk, options, args.drain_timeout
            )
        except Exception as exc:
            result = {"peer": args.child, "error": f"{type(exc).__name__}: {exc}"}
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # a peer's exit hooks could wait on its workers again: the run is over
    result = run_parent(args, log)
    result["quick"] = args.quick
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
