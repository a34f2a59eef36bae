"""The ``obshub`` command: ``plugins``, ``check``, ``demo``, ``replay``, and plugins' commands.

The config comes from ``--config FILE``, else ``$OBSHUB_CONFIG``, else
``./obshub.toml``, else the built-in default (console + JSONL file).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import structlog

from obshub import __version__
from obshub._builtin.jsonl import JsonlExporter
from obshub._config import discover_config
from obshub._config_errors import ConfigError
from obshub._exporters import CheckResult, Exporter
from obshub._failed import FailedExporter
from obshub._hub import Hub
from obshub._logging import get_logger
from obshub._plugins import get_registry
from obshub._redact import scrub, scrub_value
from obshub._serialization import describe

__all__ = ["main"]

#: Seconds one exporter's ``check()`` may take before it is reported as hung.
CHECK_TIMEOUT = 20.0


def _configure_cli_logging(verbosity: int) -> None:
    # The CLI is an application, so it may configure structlog (the library never does):
    # log lines go to stderr, leaving stdout to the command's own output.
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def cmd_plugins(args: argparse.Namespace, out: TextIO) -> int:
    """List plugins, their exporter types and load errors."""
    registry = get_registry()
    if args.json:
        data = {
            "plugins": [
                {
                    "name": p.name,
                    "distribution": p.distribution,
                    "version": p.version,
                    "exporters": list(p.exporters),
                }
                for p in registry.plugins()
            ],
            "errors": [
                {
                    "plugin": e.plugin,
                    "distribution": e.distribution,
                    "stage": e.stage,
                    "error": scrub(e.error),
                }
                for e in registry.errors
            ],
            "blocked": list(registry.blocked),
        }
        out.write(json.dumps(data, indent=2) + "\n")
        return 0
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "EXPORTER TYPES")]
    for p in registry.plugins():
        rows.append((p.name, p.distribution, p.version, ", ".join(p.exporters) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        padded = "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        out.write(f"{padded}  {row[3]}\n")
    if registry.blocked:
        out.write(
            "\nnot loaded (OBSHUB_LOAD_PLUGINS / OBSHUB_DISABLE_PLUGINS): "
            + ", ".join(registry.blocked)
            + "\n"
        )
    if registry.errors:
        out.write("\nFailed plugins:\n")
        for e in registry.errors:
            dist = f" ({e.distribution})" if e.distribution else ""
            out.write(f"  {e.plugin}{dist}: {e.stage} failed: {scrub(e.error)}\n")
    return 0


def _run_check(exporter: Exporter) -> tuple[CheckResult, float]:
    """``exporter.check()``, bounded in time, its message and details scrubbed of secrets."""
    result, elapsed = _bounded_check(exporter)
    details = scrub_value(dict(result.details))
    return CheckResult(
        ok=result.ok,
        message=scrub(result.message),
        latency_ms=result.latency_ms,
        details=details if isinstance(details, dict) else {},
    ), elapsed


def _bounded_check(exporter: Exporter) -> tuple[CheckResult, float]:
    # check() runs in a helper thread so a hung backend cannot hang the command.
    result: list[CheckResult] = []
    started = time.perf_counter()

    def target() -> None:
        try:
            result.append(exporter.check())
        except Exception as exc:
            result.append(CheckResult(ok=False, message=f"check() raised {describe(exc)}"))

    thread = threading.Thread(target=target, name="obshub-check", daemon=True)
    thread.start()
    thread.join(CHECK_TIMEOUT)
    elapsed = (time.perf_counter() - started) * 1000
    if not result:
        return CheckResult(ok=False, message=f"no answer within {CHECK_TIMEOUT:.0f} s"), elapsed
    return result[0], elapsed


def _write_settings(out: TextIO, settings: Any) -> None:
    """An exporter's ``details["settings"]``: ``name = value (source)`` per line.

    Exporters that read settings from several places (argument or config key,
    environment variable, default) report each as ``{"value": ..., "source": ...}``.
    """
    if not isinstance(settings, Mapping):
        return
    for name, entry in settings.items():
        if not isinstance(entry, Mapping):
            continue
        value = entry.get("value")
        shown = "-" if value is None else value
        out.write(f"          {name} = {shown} ({entry.get('source', '?')})\n")


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    """Validate the config and test every exporter's connection and credentials."""
    source, origin = discover_config(args.config)
    out.write(f"config: {origin}\n")
    try:
        hub = Hub.from_config(source)
    except ConfigError as exc:
        out.write(f"FAIL  config: {scrub(str(exc))}\n")
        return 1
    failures = 0
    try:
        if not hub.configs:
            out.write("FAIL  no enabled config\n")
            return 1
        for name, config in hub.configs.items():
            marker = " (default)" if name == hub.default else ""
            out.write(
                f"config {name}{marker}: service {config.service_name!r}, "
                f"sampling {config.sampler.strategy}, {len(config.exporters)} exporter(s)\n"
            )
            if not config.exporters:
                out.write("  FAIL  no exporters: traces of this config go nowhere\n")
                failures += 1
            for exporter in config.exporters:
                if isinstance(exporter, FailedExporter):
                    out.write(
                        f"  FAIL  {exporter.instance_name} ({exporter.type_name}): "
                        f"{exporter.check().message}\n"
                    )
                    failures += 1
                    continue
                result, elapsed = _run_check(exporter)
                latency = result.latency_ms if result.latency_ms is not None else elapsed
                status = "ok  " if result.ok else "FAIL"
                if result.ok and not exporter.enabled:
                    status = "off "
                mode = "realtime" if exporter.realtime else "batch"
                out.write(
                    f"  {status}  {exporter.instance_name} ({type(exporter).name}, {mode}, "
                    f"log {exporter.log_level}): {result.message} [{latency:.0f} ms]\n"
                )
                _write_settings(out, result.details.get("settings"))
                failures += not result.ok
    finally:
        hub.shutdown(timeout=2.0)
    out.write("all checks passed\n" if not failures else f"{failures} check(s) failed\n")
    return 1 if failures else 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """Record a two-turn support-agent conversation through the config."""
    from obshub._demo import run_demo

    source, origin = discover_config(args.config)
    try:
        hub = Hub.from_config(source)
    except ConfigError as exc:
        out.write(f"config error: {exc}\n")
        return 2
    out.write(f"obshub demo: recording a support-agent session through {origin}\n\n")
    out.flush()
    trace_ids = run_demo(hub)
    delivered = hub.flush(timeout=args.timeout)
    stats = hub.stats()
    hub.shutdown(timeout=args.timeout)
    out.write(f"recorded {len(trace_ids)} traces: {', '.join(trace_ids)}\n")
    for key, s in stats.items():
        out.write(
            f"  {key}: exported {s.exported}, queued {s.queued}, dropped {s.dropped}, "
            f"failed {s.failed}, retried {s.retried}\n"
        )
    views: list[str] = []
    for exporter in hub.exporters():
        if isinstance(exporter, JsonlExporter):
            out.write(f"  events written to {exporter.path}\n")
        # An exporter that keeps traces for a local viewer (obshub-studio's sqlite) says how.
        view = getattr(exporter, "view_command", None)
        if isinstance(view, str) and view:
            views.append(view)
    if not delivered:
        out.write("some events were not delivered; run `obshub check` to find out why\n")
        return 1
    for view in views:
        out.write(f"\nsee these traces in your browser:\n  {view}\n")
    return 0


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    """Re-send spooled events (or a recorded JSONL file) through the config's exporters."""
    source, origin = discover_config(args.config)
    try:
        hub = Hub.from_config(source)
    except ConfigError as exc:
        out.write(f"config error: {exc}\n")
        return 2
    out.write(f"config: {origin}\n")
    try:
        if args.file:
            fed, bad = hub.replay_file(args.file, exporter=args.exporter, timeout=args.timeout)
            if bad:
                out.write(f"skipped {bad} unreadable line(s) in {args.file}\n")
        else:
            fed = hub.replay(exporter=args.exporter, timeout=args.timeout)
            if not fed:
                out.write("no exporter of this config has a spool_dir\n")
                return 1
        delivered = hub.flush(timeout=args.timeout)
        stats = hub.stats()
    except ValueError as exc:
        out.write(f"{exc}\n")
        return 2
    finally:
        hub.shutdown(timeout=args.timeout)
    for key in fed:
        # Counted from the channel: a hub also replays its spool in the background
        # as soon as it starts, so part of the work may not be in ``fed``.
        s = stats[key]
        out.write(
            f"  {key}: replayed {s.replayed}, exported {s.exported}, spooled again {s.spooled}, "
            f"failed {s.failed}, dropped {s.dropped}\n"
        )
    if not delivered:
        out.write("not everything was delivered; what could not be is back in the spool\n")
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``obshub`` command."""
    parser = argparse.ArgumentParser(
        prog="obshub", description="A hub for AI/LLM tracing: check, demo and inspect plugins."
    )
    parser.add_argument("--version", action="version", version=f"obshub {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            metavar="FILE",
            help="config file (default: $OBSHUB_CONFIG, ./obshub.toml, else built-in)",
        )

    p_plugins = sub.add_parser("plugins", help="list installed plugins and exporter types")
    p_plugins.add_argument("--json", action="store_true", help="machine-readable output")
    p_plugins.set_defaults(func=cmd_plugins)

    p_check = sub.add_parser("check", help="validate the config and test every exporter")
    with_config(p_check)
    p_check.set_defaults(func=cmd_check)

    p_demo = sub.add_parser("demo", help="send a realistic agent conversation through the config")
    with_config(p_demo)
    p_demo.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for delivery (default 30)"
    )
    p_demo.set_defaults(func=cmd_demo)

    p_replay = sub.add_parser(
        "replay", help="re-send spooled events, or a recorded JSONL file, through the config"
    )
    with_config(p_replay)
    p_replay.add_argument(
        "--exporter", metavar="NAME", help="only this exporter (instance name or config/name)"
    )
    p_replay.add_argument(
        "--file", metavar="JSONL", help="send the events of this JSONL file instead of the spools"
    )
    p_replay.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for delivery (default 60)"
    )
    p_replay.set_defaults(func=cmd_replay)
    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub: Any) -> None:
    """The subcommands plugins registered (hook ``obshub_register_commands``), each guarded."""
    for command in get_registry().commands().values():
        if command.name in sub.choices:
            # A built-in command keeps its name; the plugin's is not reachable.
            get_logger().warning(
                "plugin_command_shadowed", plugin=command.plugin, command=command.name
            )
            continue
        p_command = sub.add_parser(
            command.name, help=command.help or f"(plugin {command.distribution})"
        )
        p_command.set_defaults(func=command.run)
        if command.arguments is None:
            continue
        try:
            command.arguments(p_command)
        except Exception as exc:
            message = f"plugin {command.plugin!r}: its {command.name!r} command is broken: " + (
                describe(exc)
            )

            def broken(args: argparse.Namespace, out: TextIO, _message: str = message) -> int:
                out.write(_message + "\n")
                return 2

            p_command.set_defaults(func=broken)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_cli_logging(args.verbose)
    stream = out if out is not None else sys.stdout
    result: Any = args.func(args, stream)
    return int(result)
