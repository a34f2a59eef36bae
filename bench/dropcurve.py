"""The drop curve: what obshub's default configuration delivers at a fixed offered span rate.

obshub with DEFAULT settings (queue sizes, batch sizes, intervals) is offered
spans at fixed rates (``--rates``: 5k, 10k, 15k, 20k, 30k, 40k spans/s) for
``--seconds`` (10; quick 2), paced by the clock in five-span traces (the
agent request of ``agent_trace.py``, ~1 KB of payload a span, without the
application's work): one application thread records a trace whenever the
clock says one is due, and sleeps when it is ahead. Two set-ups, each rate
and set-up in a FRESH Python process with its own loopback receiver
(``receiver.py``, a separate process):

- 1 exporter: ``LangfuseExporter`` (OTLP protobuf + gzip);
- 3 exporters: ``LangfuseExporter`` + ``OtlpExporter`` (obshub-otlp, to the
  receiver) + ``JsonlExporter`` (to a temporary file; its default events:
  started, updated and ended).

After the offered period: ``hub.flush()`` with a bounded wait
(``--drain-timeout``, 60 s), then ``hub.shutdown()``. Reported per rate:
offered and achieved spans/s, dropped (``hub.stats()``, per exporter, % of the
events it was given), delivered per exporter (% of the spans recorded: spans
the receiver counted per path; ``ended`` lines in the JSONL file), and the
delivered throughput: an exporter's delivered spans over the time from the
first span offered to the end of the flush. With 3 exporters the figure is the
lowest of the three, and ``3 vs 1`` is its ratio to the single exporter's
at the same rate. ``--obshub-option KEY=VALUE`` (repeatable) passes extra
options to every obshub exporter (e.g. ``delivery=process``). Imports the
installed obshub: runs against any checkout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_trace import SPANS_PER_REQUEST, obshub_request, parse_option, payload_bytes
from peers import LANGFUSE_PATH, load_langfuse_exporter
from receiver import ReceiverProcess

DEFAULT_RATES = (5_000, 10_000, 15_000, 20_000, 30_000, 40_000)
NO_DROP_BELOW = 30_000  # spans/s: the default configuration must drop nothing below this
FANOUT_TARGET = 0.8  # three exporters deliver >= 0.8 x what one delivers
WARMUP_TRACES = 20
LANGFUSE = "/obshub" + LANGFUSE_PATH
OTLP = "/otlp/v1/traces"


class Skip(Exception):
    """The set-up cannot run here: the reason."""


def build_exporters(
    receiver: ReceiverProcess, count: int, jsonl: Path, options: dict[str, Any]
) -> list[Any]:
    import obshub

    langfuse_cls, status = load_langfuse_exporter()
    if langfuse_cls is None:
        raise Skip(f"obshub_langfuse {status}")
    try:
        exporters = [
            langfuse_cls(
                public_key="pk-lf-bench",
                secret_key="sk-lf-bench",
                base_url=receiver.url + "/obshub",
                **options,
            )
        ]
        if count == 3:
            try:
                from obshub_otlp import OtlpExporter
            except ImportError as exc:
                raise Skip(f"obshub_otlp is not importable: {exc}") from None
            exporters.append(OtlpExporter(endpoint=receiver.url + OTLP, **options))
            exporters.append(obshub.JsonlExporter(path=str(jsonl), **options))
    except (obshub.ConfigError, TypeError) as exc:
        if options:
            raise Skip(
                f"an exporter rejects {sorted(options)}: {type(exc).__name__}: {exc}"
            ) from None
        raise
    return exporters


def jsonl_lines(path: Path) -> dict[str, int]:
    """Lines per event kind in the JSONL file (``"kind"`` is among the first keys)."""
    counts: dict[str, int] = {}
    if not path.exists():
        return counts
    with path.open("rb") as fh:
        for line in fh:
            head = line[:60]
            marker = head.find(b'"kind":"')
            if marker < 0:
                counts["?"] = counts.get("?", 0) + 1
                continue
            start = marker + 8
            kind = head[start : head.find(b'"', start)].decode()
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def offer(request: Callable[[int], None], rate: float, seconds: float) -> dict[str, Any]:
    """Record traces at ``rate`` spans/s by the clock for ``seconds``; what was achieved."""
    per_s = rate / SPANS_PER_REQUEST  # traces a second
    now = time.perf_counter
    sleep = time.sleep
    i = 0
    behind = 0.0  # the furthest the recorder fell behind the schedule, seconds
    t0 = now()
    while True:
        elapsed = now() - t0
        if elapsed >= seconds:
            break
        ahead = i / per_s - elapsed
        if ahead > 0:
            sleep(ahead)  # the load pattern: the next trace is not due yet
            continue
        behind = max(behind, -ahead)
        request(i)
        i += 1
    elapsed = now() - t0
    return {
        "t0": t0,
        "traces": i,
        "spans": i * SPANS_PER_REQUEST,
        "offer_seconds": elapsed,
        "achieved_spans_per_s": i * SPANS_PER_REQUEST / elapsed,
        "max_behind_s": behind,
    }


def run_point(
    rate: float, count: int, seconds: float, options: dict[str, Any], drain: float
) -> dict[str, Any]:
    import attrs

    import obshub

    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    receiver = ReceiverProcess(max_seconds=900)
    tmpdir = tempfile.TemporaryDirectory(prefix="dropcurve-")
    jsonl = Path(tmpdir.name) / "traces.jsonl"
    try:
        try:
            exporters = build_exporters(receiver, count, jsonl, options)
            hub = obshub.Hub(exporters=exporters, service_name="obshub-bench")
        except Skip as exc:
            return {"skipped": str(exc)}
        except (obshub.ConfigError, TypeError) as exc:
            if not options:
                raise
            return {"skipped": f"the hub rejects {sorted(options)}: {type(exc).__name__}: {exc}"}
        paths = [LANGFUSE] + ([OTLP] if count == 3 else [])
        request = obshub_request(hub, 0)  # the trace alone: no application work
        for i in range(WARMUP_TRACES):
            request(-1 - i)
        hub.flush(timeout=30)
        warm = WARMUP_TRACES * SPANS_PER_REQUEST
        base = {p: int(receiver.wait(p, warm, 30)["spans"]) for p in paths}
        base_jsonl = jsonl_lines(jsonl).get("ended", 0)
        before = {k: attrs.asdict(v) for k, v in hub.stats().items()}

        result: dict[str, Any] = {"rate": rate, "exporters": count}
        result.update(offer(request, rate, seconds))
        t0 = result.pop("t0")
        in_window = receiver.stats()["by_path"]
        flushed = hub.flush(timeout=drain)
        done = time.perf_counter()
        after = {k: attrs.asdict(v) for k, v in hub.stats().items()}
        shutdown_ok = hub.shutdown(timeout=10)
        spans = result["spans"]
        delivered: dict[str, int] = {}
        window: dict[str, int] = {}
        for name, path in zip(("langfuse", "otlp"), paths, strict=False):
            got = receiver.wait(path, base[path] + spans, 2.0 if flushed else 0.1)
            delivered[name] = int(got["spans"]) - base[path]
            window[name] = int(in_window.get(path, {}).get("spans", 0)) - base[path]
        if count == 3:
            delivered["jsonl"] = jsonl_lines(jsonl).get("ended", 0) - base_jsonl
        channels = {}
        for key, stats in after.items():
            given = stats["exported"] + stats["dropped"] + stats["failed"] + stats["queued"]
            given -= before[key]["exported"] + before[key]["dropped"] + before[key]["failed"]
            dropped = stats["dropped"] - before[key]["dropped"]
            channels[key] = {
                "events_given": given,
                "dropped": dropped,
                "dropped_pct": 100.0 * dropped / given if given else 0.0,
                "failed": stats["failed"] - before[key]["failed"],
                "queued_after_flush": stats["queued"],
            }
        took = done - t0
        result.update(
            flush_ok=bool(flushed),
            shutdown_ok=shutdown_ok,
            drain_s=took - result["offer_seconds"],
            delivered=delivered,
            delivered_pct={k: 100.0 * v / spans if spans else 100.0 for k, v in delivered.items()},
            delivered_in_window=window,
            delivered_spans_per_s={k: v / took for k, v in delivered.items()},
            delivered_spans_per_s_min=min(delivered.values()) / took,
            dropped=sum(c["dropped"] for c in channels.values()),
            channels=channels,
            duplicate_spans=receiver.stats().get("duplicate_spans"),
        )
        return result
    finally:
        receiver.close()
        tmpdir.cleanup()


# -- the parent ---------------------------------------------------------------------------


def spawn(args: list[str], timeout: float) -> dict[str, Any]:
    fd, tmp = tempfile.mkstemp(prefix="dropcurve-", suffix=".json")
    os.close(fd)
    try:
        cmd = [sys.executable, os.path.abspath(__file__), *args, "--json", tmp]
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


def _median_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose delivered throughput is the median (a real run, not a blend)."""
    ranked = sorted(points, key=lambda p: p["delivered_spans_per_s_min"])
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["rounds"] = len(points)
    chosen["delivered_spans_per_s_min_rounds"] = [
        round(p["delivered_spans_per_s_min"], 1) for p in points
    ]
    chosen["dropped_rounds"] = [p["dropped"] for p in points]
    return chosen


def run_parent(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    rates = [float(x) for x in args.rates.split(",")]
    counts = [int(x) for x in args.exporters.split(",")]
    for option in args.obshub_option:
        parse_option(option)
    points: dict[int, dict[float, list[dict[str, Any]]]] = {c: {} for c in counts}
    skipped: dict[str, str] = {}
    errors: list[str] = []
    load = [list(os.getloadavg())] if hasattr(os, "getloadavg") else []
    timeout = args.seconds + args.drain_timeout + 120
    for r in range(args.rounds):
        for rate in rates:
            for count in counts if r % 2 == 0 else reversed(counts):
                if str(count) in skipped:
                    continue
                child = [
                    "--child-rate",
                    str(rate),
                    "--child-exporters",
                    str(count),
                    "--seconds",
                    str(args.seconds),
                    "--drain-timeout",
                    str(args.drain_timeout),
                ]
                for option in args.obshub_option:
                    child += ["--obshub-option", option]
                if args.no_worker_token:
                    child.append("--no-worker-token")
                res = spawn(child, timeout)
                if "skipped" in res:
                    skipped[str(count)] = res["skipped"]
                    log(f"{count} exporter(s): skipped: {res['skipped']}")
                    continue
                if "error" in res:
                    errors.append(f"{count} exporter(s) at {rate:.0f}/s: {res['error']}")
                    log(f"ERROR {errors[-1]}")
                    continue
                points[count].setdefault(rate, []).append(res)
                pct = "  ".join(f"{k} {v:.1f}%" for k, v in res["delivered_pct"].items())
                log(
                    f"round {r + 1}/{args.rounds} {count} exporter(s) offered {rate:>7,.0f}/s: "
                    f"achieved {res['achieved_spans_per_s']:>7,.0f}/s  dropped "
                    f"{res['dropped']:,}  delivered {pct}  drain {res['drain_s']:.1f} s"
                )
        if hasattr(os, "getloadavg"):
            load.append(list(os.getloadavg()))
    curves: dict[str, list[dict[str, Any]]] = {}
    for count, by_rate in points.items():
        curves[str(count)] = [_median_point(by_rate[rate]) for rate in rates if rate in by_rate]
    ratios: list[dict[str, Any]] = []
    one = {p["rate"]: p for p in curves.get("1", [])}
    for p in curves.get("3", []):
        single = one.get(p["rate"])
        if single and single["delivered_spans_per_s_min"]:
            ratios.append(
                {
                    "rate": p["rate"],
                    "ratio": p["delivered_spans_per_s_min"] / single["delivered_spans_per_s_min"],
                }
            )
    result = {
        "benchmark": "dropcurve",
        "method": {
            "rates": rates,
            "exporters": counts,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "drain_timeout_s": args.drain_timeout,
            "payload_bytes_per_span": payload_bytes(),
            "spans_per_trace": SPANS_PER_REQUEST,
            "obshub_options": args.obshub_option,
            "worker_token": not args.no_worker_token,
            "settings": "obshub defaults (queue, batch, interval); each point a fresh process",
        },
        "curves": curves,
        "ratio_3_vs_1": ratios,
        "skipped": skipped,
        "errors": errors,
        "loadavg": load,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    result["targets"] = targets(result)
    duplicates = sum(p.get("duplicate_spans") or 0 for c in curves.values() for p in c)
    result["duplicate_spans"] = duplicates
    result["ok"] = not errors and duplicates == 0
    return result


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for count in ("1", "3"):
        t: dict[str, Any] = {
            "name": f"drop curve {count} exporter(s): dropped below "
            f"{NO_DROP_BELOW // 1000}k offered spans/s",
            "target": "== 0",
            "limit": 0,
        }
        below = [p for p in result["curves"].get(count, []) if p["rate"] < NO_DROP_BELOW]
        if not below:
            t.update(value=None, status="SKIP", reason=result["skipped"].get(count, "not measured"))
        else:
            worst = max(below, key=lambda p: p["dropped"])
            listed = ", ".join(format(p["rate"], ",.0f") for p in below)
            t.update(
                value=float(worst["dropped"]),
                status="PASS" if worst["dropped"] == 0 else "MISS",
                reason=f"worst at {worst['rate']:,.0f}/s"
                if worst["dropped"]
                else f"no drop at {listed}",
            )
        out.append(t)
    t = {
        "name": "drop curve: 3 exporters' delivered throughput / 1 exporter's (lowest rate)",
        "target": f">= {FANOUT_TARGET:g}",
        "limit": FANOUT_TARGET,
    }
    if result["ratio_3_vs_1"]:
        worst = min(result["ratio_3_vs_1"], key=lambda r: r["ratio"])
        t.update(
            value=worst["ratio"],
            status="PASS" if worst["ratio"] >= FANOUT_TARGET else "MISS",
            reason=f"lowest at {worst['rate']:,.0f} offered spans/s",
        )
    else:
        t.update(value=None, status="SKIP", reason="1 and 3 exporters not both measured")
    out.append(t)
    return out


def print_table(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    m = result["method"]
    out("")
    per_span = sum(m["payload_bytes_per_span"].values()) // SPANS_PER_REQUEST
    out(
        f"drop curve: obshub defaults, 5-span traces (~{per_span}"
        f" B payload a span) offered by the clock for {m['seconds']:g} s, {m['rounds']} round(s)"
        + (f", options {m['obshub_options']}" if m["obshub_options"] else "")
    )
    header = (
        f"{'exp':>3} {'offered':>8} {'achieved':>9} {'dropped':>9} {'dropped %':>18} "
        f"{'delivered % (langfuse/otlp/jsonl)':>34} {'delivered/s':>12} {'drain s':>8} "
        f"{'3 vs 1':>7}"
    )
    out(header)
    out("-" * len(header))
    ratio = {r["rate"]: r["ratio"] for r in result["ratio_3_vs_1"]}
    for count, curve in result["curves"].items():
        for p in curve:
            drops = "/".join(f"{c['dropped_pct']:.1f}" for c in p["channels"].values())
            delivered = "/".join(f"{v:.1f}" for v in p["delivered_pct"].values())
            r = ratio.get(p["rate"]) if count == "3" else None
            out(
                f"{count:>3} {p['rate']:>8,.0f} {p['achieved_spans_per_s']:>9,.0f} "
                f"{p['dropped']:>9,} {drops:>18} {delivered:>34} "
                f"{p['delivered_spans_per_s_min']:>12,.0f} {p['drain_s']:>8.1f} "
                f"{('-' if r is None else f'{r:.2f}'):>7}"
            )
    out(
        "  dropped: events obshub dropped (hub.stats(), every exporter), and % of the events "
        "each exporter was given; delivered: % of the spans recorded (receiver per path, "
        "'ended' lines of the JSONL file)"
    )
    out(
        "  delivered/s: delivered spans over first span offered -> flush done (3 exporters: the "
        "lowest); 3 vs 1: that figure over the single exporter's at the same rate"
    )
    for count, reason in result["skipped"].items():
        out(f"  {count} exporter(s): skipped: {reason}")
    for t in result["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:,.2f}"
        why = f" ({t['reason']})" if t.get("reason") else ""
        out(f"  target {t['name']} {t['target']}: {value} {t['status']}{why}")
    for error in result["errors"]:
        out(f"  ERROR {error}")
    if result["duplicate_spans"]:
        out(f"  ERROR the receiver counted {result['duplicate_spans']} duplicate spans")
    out(f"  load average (1/5/15 min) at start and after each round: {result['loadavg']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (2 s a point)")
    parser.add_argument(
        "--rates",
        default=",".join(str(r) for r in DEFAULT_RATES),
        help="offered spans/s, comma-separated (5000,...,40000)",
    )
    parser.add_argument("--exporters", default="1,3", help="set-ups: 1, 3 or 1,3 (1,3)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds offered (10; quick 2)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; the median is shown (1)")
    parser.add_argument(
        "--drain-timeout", type=float, default=60.0, help="bounded wait for the flush (60 s)"
    )
    parser.add_argument(
        "--obshub-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra option for every obshub exporter (repeatable; VALUE read as JSON if it "
        "parses, else a string), e.g. --obshub-option delivery=process",
    )
    parser.add_argument(
        "--no-worker-token",
        action="store_true",
        help="measure without the worker token (obshub._worker_token: one exporter worker "
        "runs Python at a time): every worker competes for the interpreter on its own",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--child-rate", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-exporters", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.child_rate is not None:
        if args.no_worker_token:
            import contextlib

            from obshub import _worker_token

            _worker_token.hold = contextlib.nullcontext  # type: ignore[assignment]
            _worker_token.released = contextlib.nullcontext  # type: ignore[assignment]
        options = dict(parse_option(o) for o in args.obshub_option)
        try:
            result = run_point(
                args.child_rate, args.child_exporters, args.seconds, options, args.drain_timeout
            )
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    result = run_parent(args, log)
    result["quick"] = args.quick
    print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
