"""The ``obshub`` command line: plugins, check, demo."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

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
    assert code == 1
    assert "configs.prod.exporters.local.batch.max_size: must be >= 1, got 0" in out


def test_check_reports_an_unknown_type_with_the_distribution_to_install(tmp_path: Path) -> None:
    (tmp_path / "obshub.toml").write_text('[configs.p.exporters.x]\ntype = "zipkinish"\n')
    code, out = run(["check", "--config", str(tmp_path / "obshub.toml")])
    assert code == 1
    assert "pip install obshub-zipkinish" in out


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
