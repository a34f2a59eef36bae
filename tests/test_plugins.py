"""Plugins: entry points in group ``obshub``, each loaded inside its own guard."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import types
import uuid
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import obshub
from obshub import ConfigError, SpanEvent
from obshub._plugins import BUILTIN_PLUGIN, PluginRegistry, get_registry

WAIT = 5.0


def entry_point(name: str, module: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=module, group="obshub")


def exporter_class(type_name: str) -> type[obshub.Exporter]:
    class PluginExporter(obshub.MemoryExporter):
        name = type_name

    PluginExporter.__qualname__ = f"{type_name.title()}Exporter"
    return PluginExporter


def plugin_module(
    monkeypatch: pytest.MonkeyPatch, module_name: str, *classes: Any, fail: Exception | None = None
) -> types.ModuleType:
    """An importable plugin module that registers ``classes`` (then raises ``fail``)."""
    module = types.ModuleType(module_name)

    @obshub.hookimpl
    def obshub_register_exporters(register: Any) -> None:
        for cls in classes:
            register(cls)
        if fail is not None:
            raise fail

    module.obshub_register_exporters = obshub_register_exporters  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module_name, module)
    return module


@pytest.fixture
def broken_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module on sys.path that raises when imported."""
    name = f"obshub_broken_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text('raise RuntimeError("cannot import me")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_the_built_in_exporters_are_registered_through_the_same_hook() -> None:
    registry = PluginRegistry(entry_points=[], environ={})
    types_ = registry.exporter_types()
    assert {"console", "jsonl", "memory"} <= set(types_)
    assert types_["memory"].cls is obshub.MemoryExporter
    assert types_["memory"].plugin == BUILTIN_PLUGIN
    assert registry.plugins()[0].name == BUILTIN_PLUGIN
    assert set(registry.plugins()[0].exporters) == {"console", "jsonl", "memory"}
    assert registry.errors == []


def test_a_plugin_from_an_entry_point_registers_its_exporter_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cls = exporter_class("webhook")
    plugin_module(monkeypatch, "obshub_webhook_fake", cls)
    registry = PluginRegistry(
        entry_points=[entry_point("webhook", "obshub_webhook_fake")], environ={}
    )
    assert registry.exporter_class("webhook") is cls
    assert registry.exporter_types()["webhook"].plugin == "webhook"
    assert [p.name for p in registry.plugins()] == [BUILTIN_PLUGIN, "webhook"]
    assert registry.plugins()[1].exporters == ("webhook",)


def test_a_plugin_that_raises_at_import_is_reported_and_the_others_keep_working(
    monkeypatch: pytest.MonkeyPatch, broken_module: str, hub_factory: Any
) -> None:
    good = exporter_class("good")
    plugin_module(monkeypatch, "obshub_good_fake", good)
    with capture_logs() as logs:
        registry = PluginRegistry(
            entry_points=[
                entry_point("broken", broken_module),
                entry_point("good", "obshub_good_fake"),
            ],
            environ={},
        )
    (error,) = registry.errors
    assert (error.plugin, error.stage) == ("broken", "load")
    assert "RuntimeError: cannot import me" in error.error
    assert "Traceback" in error.traceback
    assert registry.exporter_class("good") is good
    assert registry.exporter_class("memory") is obshub.MemoryExporter
    failures = [e for e in logs if e["event"] == "plugin_failed"]
    assert [(e["plugin"], e["log_level"]) for e in failures] == [("broken", "error")]
    hub = hub_factory.from_config(
        {"configs": {"p": {"exporters": {"good": {}}}}}, registry=registry
    )
    with hub.span("delivered"):
        pass
    assert hub.flush(WAIT)
    (exporter,) = hub.exporters()
    assert [s.name for s in exporter.spans()] == ["delivered"]  # type: ignore[attr-defined]


def test_configuring_a_type_whose_plugin_failed_to_load_says_so(broken_module: str) -> None:
    registry = PluginRegistry(entry_points=[entry_point("broken", broken_module)], environ={})
    with pytest.raises(ConfigError) as raised:
        obshub.Hub.from_config(
            {"configs": {"p": {"exporters": {"x": {"type": "broken"}}}}}, registry=registry
        )
    assert raised.value.key == "configs.p.exporters.x.type"
    assert "failed to load" in str(raised.value)
    assert "cannot import me" in str(raised.value)


def test_a_missing_plugin_module_is_reported_not_raised() -> None:
    registry = PluginRegistry(
        entry_points=[entry_point("ghost", "obshub_no_such_module_xyz")], environ={}
    )
    (error,) = registry.errors
    assert error.plugin == "ghost"
    assert "ModuleNotFoundError" in error.error


def test_a_plugin_whose_register_hook_raises_is_reported_and_isolated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin_module(monkeypatch, "obshub_raising_fake", fail=ValueError("bad hook"))
    good = exporter_class("fine")
    plugin_module(monkeypatch, "obshub_fine_fake", good)
    registry = PluginRegistry(
        entry_points=[
            entry_point("raising", "obshub_raising_fake"),
            entry_point("fine", "obshub_fine_fake"),
        ],
        environ={},
    )
    (error,) = registry.errors
    assert (error.plugin, error.stage) == ("raising", "register")
    assert "bad hook" in error.error
    assert registry.exporter_class("fine") is good


def test_registering_something_that_is_not_an_exporter_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin_module(monkeypatch, "obshub_notexporter_fake", dict)
    registry = PluginRegistry(
        entry_points=[entry_point("notexporter", "obshub_notexporter_fake")], environ={}
    )
    (error,) = registry.errors
    assert error.plugin == "notexporter"
    assert "Exporter subclass" in error.error


def test_a_plugin_cannot_replace_a_built_in_exporter_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    impostor = exporter_class("memory")
    plugin_module(monkeypatch, "obshub_impostor_fake", impostor)
    registry = PluginRegistry(
        entry_points=[entry_point("impostor", "obshub_impostor_fake")], environ={}
    )
    assert registry.exporter_class("memory") is obshub.MemoryExporter
    assert {"console", "jsonl", "memory"} <= set(registry.exporter_types())
    (error,) = registry.errors
    assert error.plugin == "impostor"
    assert "already registered" in error.error


def test_obshub_disable_plugins_blocks_the_named_plugins_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, two = exporter_class("one"), exporter_class("two")
    plugin_module(monkeypatch, "obshub_one_fake", one)
    plugin_module(monkeypatch, "obshub_two_fake", two)
    eps = [entry_point("one", "obshub_one_fake"), entry_point("two", "obshub_two_fake")]
    registry = PluginRegistry(entry_points=eps, environ={"OBSHUB_DISABLE_PLUGINS": " one , x"})
    assert registry.exporter_class("one") is None
    assert registry.exporter_class("two") is two
    assert registry.blocked == ["one"]
    assert registry.errors == []
    with pytest.raises(ConfigError, match="plugin 'one' is installed but not loaded"):
        obshub.Hub.from_config({"configs": {"p": {"exporters": {"one": {}}}}}, registry=registry)


def test_obshub_disable_plugins_also_skips_a_plugin_that_would_fail(broken_module: str) -> None:
    registry = PluginRegistry(
        entry_points=[entry_point("broken", broken_module)],
        environ={"OBSHUB_DISABLE_PLUGINS": "broken"},
    )
    assert registry.errors == []
    assert registry.blocked == ["broken"]


def test_obshub_load_plugins_loads_only_the_listed_plugins_and_always_the_built_ins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, two = exporter_class("one"), exporter_class("two")
    plugin_module(monkeypatch, "obshub_one_fake", one)
    plugin_module(monkeypatch, "obshub_two_fake", two)
    eps = [entry_point("one", "obshub_one_fake"), entry_point("two", "obshub_two_fake")]
    only_two = PluginRegistry(entry_points=eps, environ={"OBSHUB_LOAD_PLUGINS": "two"})
    assert only_two.exporter_class("one") is None
    assert only_two.exporter_class("two") is two
    none = PluginRegistry(entry_points=eps, environ={"OBSHUB_LOAD_PLUGINS": ""})
    assert none.exporter_class("one") is None
    assert none.exporter_class("two") is None
    assert none.exporter_class("console") is obshub.ConsoleExporter
    assert sorted(none.blocked) == ["one", "two"]


def test_two_entry_points_with_the_same_name_report_the_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = exporter_class("dup"), exporter_class("dup2")
    plugin_module(monkeypatch, "obshub_dup_a", first)
    plugin_module(monkeypatch, "obshub_dup_b", second)
    registry = PluginRegistry(
        entry_points=[entry_point("dup", "obshub_dup_a"), entry_point("dup", "obshub_dup_b")],
        environ={},
    )
    assert registry.exporter_class("dup") is first
    (error,) = registry.errors
    assert "already named 'dup'" in error.error


# -- a real distribution, installed with pip --------------------------------------------------

# A PEP 517 backend kept inside the plugin's source tree, so that building the
# plugin needs nothing that is not already in the virtualenv (no hatchling or
# wheel). It reads the entry points from pyproject.toml like any backend.
BACKEND = """
import base64, hashlib, os, tomllib, zipfile

def _project():
    with open("pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    dist = project["name"].replace("-", "_")
    version = project["version"]
    info = f"{dist}-{version}.dist-info"
    files = {}
    for package in project.get("packages", [dist]):
        for root, _, names in os.walk(package):
            for fname in names:
                if fname.endswith(".py"):
                    path = os.path.join(root, fname)
                    with open(path, "rb") as fh:
                        files[path.replace(os.sep, "/")] = fh.read()
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\\nName: {project['name']}\\nVersion: {version}\\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\\nGenerator: obshub-tests\\nRoot-Is-Purelib: true\\n"
        b"Tag: py3-none-any\\n"
    )
    lines = []
    for group, eps in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in eps.items())
    files[f"{info}/entry_points.txt"] = ("\\n".join(lines) + "\\n").encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return name
"""

PLUGIN_CODE = '''
from pathlib import Path

import obshub


class {cls}(obshub.Exporter):
    """Appends the name of every ended span to a file."""

    name = "{type_name}"

    def __init__(self, *, path: str, **common):
        super().__init__(**common)
        self.path = Path(path)

    def export(self, events):
        with self.path.open("a") as fh:
            for event in events:
                fh.write(f"{{event.config_name}} {{event.span.name}}\\n")


@obshub.hookimpl
def obshub_register_exporters(register):
    register({cls})
'''


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Build and pip-install ``obshub-<x>``; yields (type name, distribution name)."""
    type_name = f"probe{uuid.uuid4().hex[:8]}"
    dist = f"obshub-{type_name}"
    module = f"obshub_{type_name}"
    source = tmp_path / dist
    (source / module).mkdir(parents=True)
    (source / "_backend").mkdir()
    (source / "_backend" / "inline_backend.py").write_text(BACKEND)
    (source / module / "__init__.py").write_text(
        PLUGIN_CODE.format(cls=f"{type_name.title()}Exporter", type_name=type_name)
    )
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = []
            build-backend = "inline_backend"
            backend-path = ["_backend"]

            [project]
            name = "{dist}"
            version = "1.2.3"
            packages = ["{module}"]

            [project.entry-points.obshub]
            {type_name} = "{module}"
            """
        )
    )
    result = pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(source))
    assert result.returncode == 0, result.stdout + result.stderr
    importlib.invalidate_caches()
    try:
        yield type_name, dist
    finally:
        pip("uninstall", "--yes", dist)
        sys.modules.pop(module, None)
        importlib.invalidate_caches()
        get_registry(reload=True)


def test_a_plugin_installed_as_its_own_distribution_is_found_and_configured_by_name(
    installed_plugin: tuple[str, str], hub_factory: Any, tmp_path: Path
) -> None:
    type_name, dist = installed_plugin
    registry = get_registry(reload=True)
    assert registry.error_for(type_name) is None
    found = registry.exporter_types()[type_name]
    assert (found.plugin, found.distribution, found.version) == (type_name, dist, "1.2.3")
    assert any(p.distribution == dist and p.exporters == (type_name,) for p in registry.plugins())
    out = tmp_path / "received.txt"
    hub = hub_factory.from_config(
        {
            "configs": {
                "prod": {
                    "exporters": {
                        "mine": {"type": type_name, "path": str(out), "realtime": True},
                    }
                }
            }
        }
    )
    with hub.span("agent"), hub.span("tool"):
        pass
    assert hub.flush(WAIT)
    assert out.read_text().splitlines() == ["prod tool", "prod agent"]
    stats = hub.stats()["prod/mine"]
    assert (stats.type, stats.exported, stats.failed) == (type_name, 2, 0)


def test_an_exporter_class_is_usable_directly_in_code_without_the_registry(
    hub_factory: Any,
) -> None:
    class Inline(obshub.Exporter):
        name = "inline"

        def __init__(self, **common: Any) -> None:
            super().__init__(**common)
            self.names: list[str] = []

        def export(self, events: Sequence[SpanEvent]) -> None:
            self.names.extend(e.span.name for e in events)

    exporter = Inline(realtime=True)
    hub = hub_factory(exporters=[exporter], registry=PluginRegistry(entry_points=[], environ={}))
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    assert exporter.names == ["agent"]


@pytest.fixture
def installed_broken_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken_module: str
) -> str:
    """An installed distribution (a dist-info on sys.path) whose entry point cannot import."""
    info = tmp_path / "obshub_broken_dist-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: obshub-broken-dist\nVersion: 0.3\n"
    )
    (info / "entry_points.txt").write_text(f"[obshub]\nbrokendist = {broken_module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "brokendist"


def test_installed_plugins_are_loaded_by_pluggy_which_knows_their_distribution() -> None:
    registry = PluginRegistry(environ={})
    webhook = next(p for p in registry.plugins() if p.name == "webhook")
    assert (webhook.distribution, webhook.version) == (
        "obshub-webhook",
        metadata.version("obshub-webhook"),
    )
    assert webhook.exporters == ("webhook",)


def test_an_installed_plugin_that_fails_to_import_is_reported_and_the_others_load(
    installed_broken_plugin: str,
) -> None:
    with capture_logs() as logs:
        registry = PluginRegistry(environ={})
    error = registry.error_for(installed_broken_plugin)
    assert error is not None
    assert (error.distribution, error.stage) == ("obshub-broken-dist", "load")
    assert "cannot import me" in error.error
    assert registry.exporter_class("webhook") is not None
    assert [log["plugin"] for log in logs if log["event"] == "plugin_failed"] == [
        installed_broken_plugin
    ]


def test_a_disabled_installed_plugin_is_blocked_in_pluggy_and_never_imported(
    installed_broken_plugin: str,
) -> None:
    registry = PluginRegistry(
        environ={"OBSHUB_DISABLE_PLUGINS": f"{installed_broken_plugin},webhook"}
    )
    assert registry.errors == []
    assert sorted(registry.blocked) == [installed_broken_plugin, "webhook"]
    assert registry.exporter_class("webhook") is None
    assert registry.exporter_class("otlp") is not None


def test_disabling_the_built_in_plugins_name_cannot_unload_it() -> None:
    eps = [entry_point(BUILTIN_PLUGIN, "obshub_no_such_module_xyz")]
    registry = PluginRegistry(entry_points=eps, environ={"OBSHUB_DISABLE_PLUGINS": BUILTIN_PLUGIN})
    assert registry.exporter_class("console") is obshub.ConsoleExporter
    (error,) = registry.errors
    assert "already named" in error.error


def test_an_exporter_whose_init_drops_common_fails_to_register_with_the_fix() -> None:
    class NoCommon(obshub.Exporter):
        name = "nocommon"

        def __init__(self, *, url: str) -> None:
            super().__init__()
            self.url = url

        def export(self, events: Any) -> None:
            pass

    plugin = types.ModuleType("nocommon_plugin")

    @obshub.hookimpl
    def obshub_register_exporters(register: Any) -> None:
        register(NoCommon)

    plugin.obshub_register_exporters = obshub_register_exporters  # type: ignore[attr-defined]
    registry = PluginRegistry(entry_points=[], environ={}, extra_plugins=[plugin])
    assert registry.exporter_class("nocommon") is None
    (error,) = registry.errors
    assert error.stage == "register"
    assert "NoCommon.__init__ must accept **common and pass it on" in error.error
    assert "super().__init__(**common)" in error.error


def test_an_exporter_that_skips_super_init_is_named_clearly() -> None:
    class NoSuper(obshub.Exporter):
        name = "nosuper"

        def __init__(self, **common: Any) -> None:
            self.common = common

        def export(self, events: Any) -> None:
            pass

    with pytest.raises(ConfigError, match=r"NoSuper.__init__ did not call super\(\).__init__"):
        obshub.Hub.from_config({"configs": {"p": {"exporters": [NoSuper()]}}})
