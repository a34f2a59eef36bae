"""The ``obshub`` command: ``plugins``, ``check``, ``demo``, ``replay``, ``new-plugin``, and
plugins' commands.

The config comes from ``--config FILE``, else ``$OBSHUB_CONFIG``, else
``./obshub.toml``, else the built-in default (console + JSONL file).

Conventions of every command: ``-v``/``--verbose`` before or after the
command; output for people on stdout, log lines on stderr; ``--json`` where a
script may want to read the output; exit status 0 (success), 1 (the command ran
and found a problem), 2 (usage or config error: nothing was tried).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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
    if args.verbose:
        out.write("\nExporter classes:\n")
        for type_name in sorted(registry.exporter_types()):
            cls = registry.exporter_class(type_name)
            where = f"{cls.__module__}.{cls.__qualname__}" if cls is not None else "?"
            out.write(f"  {type_name}: {where}\n")
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
    report: dict[str, Any] = {"config": origin, "ok": False, "error": None, "configs": []}
    text = _TextReport(out, enabled=not args.json)
    text.line(f"config: {origin}")
    try:
        hub = Hub.from_config(source)
    except ConfigError as exc:
        report["error"] = scrub(str(exc))
        report["errors"] = [scrub(str(e)) for e in exc.errors]
        text.line(f"FAIL  config: {report['error']}")
        _write_json(out, report, args.json)
        return 2
    failures = 0
    try:
        if not hub.configs:
            report["error"] = "no enabled config"
            text.line("FAIL  no enabled config")
            _write_json(out, report, args.json)
            return 1
        for name, config in hub.configs.items():
            entry: dict[str, Any] = {
                "name": name,
                "default": name == hub.default,
                "service_name": config.service_name,
                "sampling": config.sampler.strategy,
                "exporters": [],
            }
            report["configs"].append(entry)
            marker = " (default)" if name == hub.default else ""
            text.line(
                f"config {name}{marker}: service {config.service_name!r}, "
                f"sampling {config.sampler.strategy}, {len(config.exporters)} exporter(s)"
            )
            if not config.exporters:
                entry["error"] = "no exporters: traces of this config go nowhere"
                text.line(f"  FAIL  {entry['error']}")
                failures += 1
            for exporter in config.exporters:
                if isinstance(exporter, FailedExporter):
                    message = exporter.check().message
                    entry["exporters"].append(
                        {
                            "name": exporter.instance_name,
                            "type": exporter.type_name,
                            "status": "fail",
                            "message": message,
                        }
                    )
                    text.line(f"  FAIL  {exporter.instance_name} ({exporter.type_name}): {message}")
                    failures += 1
                    continue
                result, elapsed = _run_check(exporter)
                latency = result.latency_ms if result.latency_ms is not None else elapsed
                status = "ok" if result.ok else "fail"
                if result.ok and not exporter.enabled:
                    status = "off"
                mode = "realtime" if exporter.realtime else "batch"
                entry["exporters"].append(
                    {
                        "name": exporter.instance_name,
                        "type": type(exporter).name,
                        "status": status,
                        "mode": mode,
                        "log_level": exporter.log_level,
                        "message": result.message,
                        "latency_ms": round(latency, 1),
                        "settings": result.details.get("settings", {}),
                    }
                )
                text.line(
                    f"  {_STATUS[status]}  {exporter.instance_name} ({type(exporter).name}, "
                    f"{mode}, log {exporter.log_level}): {result.message} [{latency:.0f} ms]"
                )
                if text.enabled:
                    _write_settings(out, result.details.get("settings"))
                failures += not result.ok
    finally:
        hub.shutdown(timeout=2.0)
    report["ok"] = not failures
    report["failures"] = failures
    text.line("all checks passed" if not failures else f"{failures} check(s) failed")
    _write_json(out, report, args.json)
    return 1 if failures else 0


_STATUS = {"ok": "ok  ", "fail": "FAIL", "off": "off "}


class _TextReport:
    """Lines for people, written unless the command prints JSON instead."""

    def __init__(self, out: TextIO, enabled: bool) -> None:
        self.out = out
        self.enabled = enabled

    def line(self, text: str) -> None:
        if self.enabled:
            self.out.write(text + "\n")


def _write_json(out: TextIO, data: Any, wanted: bool) -> None:
    if wanted:
        out.write(json.dumps(data, indent=2, default=str) + "\n")


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """Record a two-turn support-agent conversation through the config."""
    from obshub._demo import run_demo

    source, origin = discover_config(args.config)
    try:
        hub = Hub.from_config(source)
    except ConfigError as exc:
        out.write(f"config error: {scrub(str(exc))}\n")
        return 2
    deadline = time.monotonic() + args.timeout
    out.write(f"obshub demo: recording a support-agent session through {origin}\n\n")
    out.flush()
    trace_ids = run_demo(hub)
    # One --timeout for flushing and shutting down together.
    flushed = hub.flush(timeout=max(0.0, deadline - time.monotonic()))
    delivered = hub.shutdown(timeout=max(0.0, deadline - time.monotonic())) and bool(flushed)
    # Counted after the shutdown, so that what it dropped is in the summary.
    stats = hub.stats()
    out.write(f"recorded {len(trace_ids)} traces: {', '.join(trace_ids)}\n")
    disabled = 0
    for name, config in hub.configs.items():
        for exporter in config.exporters:
            key = f"{name}/{exporter.instance_name}"
            s = stats.get(key)
            if s is not None and s.state != "disabled":
                out.write(
                    f"  {key}: exported {s.exported}, queued {s.queued}, dropped {s.dropped}, "
                    f"failed {s.failed}, retried {s.retried}\n"
                )
                continue
            if s is not None:
                reason, on_purpose = s.reason or "failed to start", False
            else:
                result, _ = _run_check(exporter)
                reason, on_purpose = result.message, result.ok
            state = "off" if on_purpose else "disabled"
            out.write(f"  {key}: {state}, nothing sent: {reason}\n")
            disabled += not on_purpose
    views: list[str] = []
    for exporter in hub.exporters():
        if isinstance(exporter, JsonlExporter):
            out.write(f"  events written to {exporter.path}\n")
        # An exporter that keeps traces for a local viewer (obshub-studio's sqlite) says how.
        view = getattr(exporter, "view_command", None)
        if isinstance(view, str) and view:
            views.append(view)
    if disabled:
        out.write(f"{disabled} configured exporter(s) disabled; run `obshub check` for details\n")
    if not delivered:
        out.write("some events were not delivered; run `obshub check` to find out why\n")
    if disabled or not delivered:
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
            if not os.path.isfile(args.file):
                what = "is a directory" if os.path.isdir(args.file) else "does not exist"
                out.write(f"error: --file {args.file} {what}\n")
                return 2
            try:
                fed, bad = hub.replay_file(args.file, exporter=args.exporter, timeout=args.timeout)
            except OSError as exc:
                out.write(f"error: cannot read {args.file}: {exc.strerror or exc}\n")
                return 2
            if bad:
                out.write(f"skipped {bad} unreadable line(s) in {args.file}\n")
            if not any(fed.values()):
                out.write(
                    f"error: nothing replayed: no exporter took an event or score of "
                    f"{args.file} ({bad} unreadable line(s))\n"
                )
                return 1
        else:
            fed = hub.replay(exporter=args.exporter, timeout=args.timeout)
            if not fed:
                out.write("no exporter of this config has a spool_dir\n")
                return 1
        delivered = hub.flush(timeout=args.timeout)
        stats = hub.stats()
    except ValueError as exc:
        out.write(f"error: {exc}\n")
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


def cmd_new_plugin(args: argparse.Namespace, out: TextIO) -> int:
    """Write a plugin project whose contract tests pass, to start from."""
    from obshub._newplugin import create_plugin

    try:
        root = create_plugin(args.name, args.dir)
    except (ValueError, FileExistsError) as exc:
        out.write(f"error: {exc}\n")
        return 2
    except OSError as exc:
        out.write(f"error: cannot write the project: {exc.strerror or exc}\n")
        return 2
    module = "obshub_" + args.name.replace("-", "_")
    out.write(
        f"created {root}: exporter type {args.name!r} ({module}/exporter.py), "
        "contract tests in tests/test_contract.py\n"
        f"next: cd {root} && pip install -e '.[test]' && python -m pytest\n"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``obshub`` command."""
    parser = argparse.ArgumentParser(
        prog="obshub",
        description=(
            "A hub for AI/LLM tracing: list plugins, check a config and its backends, "
            "send a demo conversation, replay spooled or recorded events, start a plugin."
        ),
        epilog=(
            "Run `obshub COMMAND --help` for a command's options. Exit status: 0 success, "
            "1 the command found a problem, 2 usage or config error."
        ),
    )
    parser.add_argument("--version", action="version", version=f"obshub {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    # Every command takes -v too (`obshub check -v`), counted with the global one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more output and log lines (-vv for debug)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=description,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            metavar="FILE",
            help="config file (default: $OBSHUB_CONFIG, ./obshub.toml, else built-in)",
        )

    p_plugins = command(
        "plugins",
        "list installed plugins and exporter types",
        "List the plugins that loaded, their distributions, versions and exporter types,\n"
        "the plugins blocked by OBSHUB_LOAD_PLUGINS / OBSHUB_DISABLE_PLUGINS and those that\n"
        "failed to load. -v adds the class behind each exporter type.\n"
        "Exit status: always 0 (failed plugins are listed, not fatal).",
    )
    p_plugins.add_argument("--json", action="store_true", help="machine-readable output")
    p_plugins.set_defaults(func=cmd_plugins)

    p_check = command(
        "check",
        "validate the config and test every exporter",
        "Validate the config exactly as an application would, then run every exporter's\n"
        "check() (connection and credentials), each bounded to 20 s.\n"
        "Exit status: 0 all passed, 1 a check failed, 2 config error.",
    )
    with_config(p_check)
    p_check.add_argument("--json", action="store_true", help="machine-readable output")
    p_check.set_defaults(func=cmd_check)

    p_demo = command(
        "demo",
        "send a realistic agent conversation through the config",
        "Record a two-turn support-agent conversation (no model is called) through the\n"
        "config, wait at most --timeout seconds in all for delivery and shutdown, then\n"
        "print the final counters of every configured exporter (disabled ones: why).\n"
        "Exit status: 0 all delivered, 1 not delivered or an exporter disabled, 2 config error.",
    )
    with_config(p_demo)
    p_demo.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for delivery (default 30)"
    )
    p_demo.set_defaults(func=cmd_demo)

    p_replay = command(
        "replay",
        "re-send spooled events, or a recorded JSONL file, through the config",
        "Without --file, re-send what the exporters' disk spools hold; with --file, send\n"
        "the events and scores of a JSONL file (written by the jsonl exporter, or a spool\n"
        "segment). It refuses to replay a file into an exporter that writes to it.\n"
        "Exit status: 0 all delivered, 1 not all delivered or nothing readable,\n"
        "2 config error, unknown exporter, or a file that is missing or cannot be read.",
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

    p_new = command(
        "new-plugin",
        "create a plugin project that passes the exporter contract",
        "Write ./obshub-NAME: a pyproject with the entry point, a working file-sink\n"
        "exporter of type NAME and tests/test_contract.py running obshub's contract\n"
        "battery (see the plugin guide). Exit status: 0 created, 2 invalid name or the\n"
        "directory exists.",
    )
    p_new.add_argument("name", metavar="NAME", help="the exporter type, e.g. 'acme'")
    p_new.add_argument(
        "--dir", default=".", metavar="DIR", help="where to create obshub-NAME (default: .)"
    )
    p_new.set_defaults(func=cmd_new_plugin)

    _add_plugin_commands(sub, common)
    return parser


def _add_plugin_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The subcommands plugins registered (hook ``obshub_register_commands``), each guarded."""
    for command in get_registry().commands().values():
        if command.name in sub.choices:
            # A built-in command keeps its name; the plugin's is not reachable.
            get_logger().warning(
                "plugin_command_shadowed", plugin=command.plugin, command=command.name
            )
            continue
        p_command = sub.add_parser(
            command.name,
            help=command.help or f"(plugin {command.distribution})",
            description=command.help or None,
            parents=[common],  # -v / --verbose, as every command takes
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
    args.verbose = getattr(args, "verbose", 0)
    _configure_cli_logging(args.verbose)
    stream = out if out is not None else sys.stdout
    result: Any = args.func(args, stream)
    return int(result)
