"""The ``obshub`` command line: plugins, check, demo."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from obshub import _cli as cli
from obshub._exporters import CheckResult, Exporter
from obshub._plugins import PluginRegistry


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(argv, out=out)
    return code, out.getvalue()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBSHUB_CONFIG", raising=False)


def test_demo_on_the_builtin_default_prints_a_tree_and_writes_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(["demo"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "built-in default" in out
    assert "recorded 2 traces" in out
    # The console exporter draws one tree per trace with types, tokens and the event.
    assert printed.count("trace ") >= 2
    assert "support-agent [agent_run]" in printed
    assert "[model_generation]" in printed
    assert "tokens" in printed
    assert "[tool_call]" in printed
    assert "[event]" in printed
    lines = (tmp_path / "obshub-traces.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    ended = [r for r in records if r.get("kind") == "ended"]
    assert {r["span"]["session_id"] for r in ended} == {"demo-session-1"}
    assert len({r["span"]["trace_id"] for r in ended}) == 2
    generations = [r for r in ended if r["span"]["type"] == "model_generation"]
    assert len(generations) == 4
    assert all(g["span"]["usage"]["input"] > 0 for g in generations)
    assert any(r.get("kind") == "score" for r in records)


def test_demo_uses_the_config_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out" / "events.jsonl"
    config = tmp_path / "mine.toml"
    config.write_text(
        f"""
[configs.only]
service_name = "cli-test"
[configs.only.exporters.file]
type = "jsonl"
path = "{target}"
events = ["ended"]
"""
    )
    monkeypatch.setenv("OBSHUB_CONFIG", str(config))
    code, out = run(["demo"])
    assert code == 0
    assert str(config) in out
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert {r["service"] for r in records if r["kind"] == "ended"} == {"cli-test"}


def test_check_passes_on_the_builtin_default() -> None:
    code, out = run(["check"])
    assert code == 0
    assert "ok    console" in out
    assert "ok    jsonl" in out
    assert "all checks passed" in out


def test_check_fails_with_the_key_path_of_a_config_mistake(tmp_path: Path) -> None:
    config = tmp_path / "obshub.toml"
    config.write_text(
        """
[configs.prod.exporters.local]
type = "jsonl"
batch = { max_size = 0 }
"""
    )
    code, out = run(["check"])
    assert code == 2  # a config error: nothing was tried
    assert "configs.prod.exporters.local.batch.max_size: must be >= 1, got 0" in out


def test_check_reports_an_unknown_type_without_recommending_a_package(tmp_path: Path) -> None:
    (tmp_path / "obshub.toml").write_text('[configs.p.exporters.x]\ntype = "zipkinish"\n')
    code, out = run(["check", "--config", str(tmp_path / "obshub.toml")])
    assert code == 2
    assert "unknown exporter type 'zipkinish'" in out
    assert "pip install" not in out


def test_check_lists_every_config_mistake(tmp_path: Path) -> None:
    (tmp_path / "obshub.toml").write_text(
        '[configs.p.exporters.x]\ntype = "jsonl"\npath = 5\nfsync = "no"\n'
    )
    code, out = run(["check"])
    assert code == 2
    assert "FAIL  config: 2 config errors:" in out
    assert "  - configs.p.exporters.x.fsync: must be true or false, got a string" in out
    assert "  - configs.p.exporters.x.path: must be a string, got an integer" in out


def test_check_json_reports_each_exporter_for_scripts(tmp_path: Path) -> None:
    code, out = run(["check", "--json"])
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True
    assert data["config"] == "built-in default"
    (config,) = data["configs"]
    assert config["name"] == "default"
    assert config["default"] is True
    reported = [(e["name"], e["status"]) for e in config["exporters"]]
    # With obshub-studio installed the built-in default also records to its store.
    assert reported[:2] == [("console", "ok"), ("jsonl", "ok")]
    assert reported[2:] in ([], [("studio", "ok")])


def test_check_json_of_a_config_error_lists_each_error(tmp_path: Path) -> None:
    (tmp_path / "obshub.toml").write_text("[configs.p]\ncolour = 1\nshade = 2\n")
    code, out = run(["check", "--json"])
    assert code == 2
    data = json.loads(out)
    assert data["ok"] is False
    assert [e.split(":")[0] for e in data["errors"]] == ["configs.p.colour", "configs.p.shade"]


@pytest.mark.parametrize("command", ["plugins", "check", "demo", "replay"])
def test_every_command_takes_verbose_and_has_a_description(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = cli.build_parser()
    args = parser.parse_args([command, "-v"])
    assert args.verbose == 1
    with pytest.raises(SystemExit) as exited:
        parser.parse_args([command, "--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert "Exit status:" in help_text
    assert "-v, --verbose" in help_text


def test_the_global_verbose_option_still_counts() -> None:
    assert cli.build_parser().parse_args(["-vv", "check"]).verbose == 2
    assert cli.build_parser().parse_args(["check"]).verbose == 0


def test_top_level_help_lists_every_command_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    help_text = capsys.readouterr().out
    for command in ("plugins", "check", "demo", "replay"):
        assert f"    {command} " in help_text
    assert "replay spooled or recorded events" in help_text
    assert "Exit status: 0 success" in help_text


def test_plugins_verbose_shows_the_class_of_each_exporter_type() -> None:
    code, quiet = run(["plugins"])
    assert code == 0
    assert "Exporter classes" not in quiet
    code, out = run(["plugins", "-v"])
    assert "Exporter classes:" in out
    assert "  jsonl: obshub._builtin.jsonl.JsonlExporter" in out


class _FailingCheck(Exporter):
    name = "failing-check"

    def __init__(self, *, token: str = "", **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        self.token = token

    def export(self, events: object) -> None:
        return None

    def check(self) -> CheckResult:
        return CheckResult(ok=False, message="keys rejected (401)", latency_ms=12.0)


def test_check_exits_non_zero_when_an_exporter_check_fails_and_prints_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Plugin:
        @staticmethod
        def obshub_register_exporters(register: object) -> None:
            register(_FailingCheck)  # type: ignore[operator]

    from obshub._hookspecs import hookimpl

    Plugin.obshub_register_exporters = hookimpl(Plugin.obshub_register_exporters)  # type: ignore[method-assign]
    registry = PluginRegistry(entry_points=[], environ={}, extra_plugins=[Plugin])
    monkeypatch.setattr("obshub._plugins._registry", registry)
    monkeypatch.setenv("MY_TOKEN", "tok-very-secret-123")
    (tmp_path / "obshub.toml").write_text(
        '[configs.p.exporters.remote]\ntype = "failing-check"\ntoken = "${MY_TOKEN}"\n'
    )
    code, out = run(["check"])
    assert code == 1
    assert "FAIL  remote (failing-check" in out
    assert "keys rejected (401)" in out
    assert "tok-very-secret-123" not in out


def test_plugins_lists_the_builtin_exporters() -> None:
    code, out = run(["plugins"])
    assert code == 0
    assert "obshub.builtin" in out
    assert "console, jsonl, memory" in out


def test_plugins_json_output_is_machine_readable() -> None:
    code, out = run(["plugins", "--json"])
    assert code == 0
    data = json.loads(out)
    builtin = next(p for p in data["plugins"] if p["name"] == "obshub.builtin")
    assert set(builtin["exporters"]) >= {"console", "jsonl", "memory"}
    assert isinstance(data["errors"], list)


def test_python_dash_m_obshub_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "obshub", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("obshub ")


# -- demo: every configured exporter, one timeout ---------------------------------------------


class _NoKeys(Exporter):
    """Disables itself like a Langfuse exporter without keys."""

    name = "nokeys"

    def __init__(self, **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        self.enabled = False

    def export(self, events: object) -> None:
        raise AssertionError("a disabled exporter gets nothing")

    def check(self) -> CheckResult:
        return CheckResult(ok=False, message="no public_key (set LANGFUSE_PUBLIC_KEY)")


class _Stuck(Exporter):
    """A backend that never answers (until the test ends)."""

    name = "stuck"
    release = threading.Event()

    def export(self, events: object) -> None:
        self.release.wait(30)


def _use_exporters(monkeypatch: pytest.MonkeyPatch, *classes: type[Exporter]) -> None:
    from obshub._hookspecs import hookimpl

    class Plugin:
        @staticmethod
        @hookimpl
        def obshub_register_exporters(register: Any) -> None:
            for cls in classes:
                register(cls)

    registry = PluginRegistry(entry_points=[], environ={}, extra_plugins=[Plugin])
    monkeypatch.setattr("obshub._plugins._registry", registry)


def test_demo_shows_a_disabled_exporter_and_why_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_exporters(monkeypatch, _NoKeys)
    (tmp_path / "obshub.toml").write_text(
        '[configs.p.exporters.console]\nstream = "stderr"\n[configs.p.exporters.langfuse]\n'
        'type = "nokeys"\n'
    )
    code, out = run(["demo"])
    assert code == 1
    assert "  p/console: exported " in out
    assert "  p/langfuse: disabled, nothing sent: no public_key (set LANGFUSE_PUBLIC_KEY)" in out
    assert "1 configured exporter(s) disabled; run `obshub check` for details" in out


def test_demo_honours_its_timeout_and_reports_the_final_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_exporters(monkeypatch, _Stuck)
    (tmp_path / "obshub.toml").write_text(
        '[configs.p.exporters.dead]\ntype = "stuck"\nrealtime = true\nmax_queue_size = 100\n'
    )
    started = time.monotonic()
    try:
        code, out = run(["demo", "--timeout", "0.5"])
    finally:
        _Stuck.release.set()
    elapsed = time.monotonic() - started
    assert code == 1
    assert elapsed < 3.0  # flush and shutdown share the one --timeout
    line = next(x for x in out.splitlines() if x.startswith("  p/dead:"))
    # The summary is taken after the shutdown: what it dropped is counted.
    assert "dropped 0" not in line
    assert "some events were not delivered" in out
