"""The core's layers: recording → routing → delivery, no private names across modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import obshub

CORE = Path(obshub.__file__).parent


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(module imported from, names) for every ``from obshub... import`` in ``module``."""
    path = CORE / (module.replace(".", "/") + ".py")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("obshub"):
            found.append((node.module or "", [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names if a.name.startswith("obshub"))
    return found


@pytest.mark.parametrize(
    ("module", "must_not_import"),
    [
        ("_routing", {"obshub._tracing", "obshub._hub"}),
        ("_tracing", {"obshub._hub"}),
        ("_delivery/channel", {"obshub._tracing", "obshub._routing", "obshub._hub"}),
        ("_delivery/process", {"obshub._tracing", "obshub._routing", "obshub._hub"}),
    ],
)
def test_a_layer_does_not_import_the_layers_above_it(
    module: str, must_not_import: set[str]
) -> None:
    imported = {source for source, _ in _imports(module)}
    assert not imported & must_not_import


@pytest.mark.parametrize("module", ["_hub", "_routing", "_tracing"])
def test_recording_and_routing_import_no_private_names_of_other_modules(module: str) -> None:
    # ``from obshub import _tracing`` imports a module; ``from obshub._tracing import
    # _capture`` would reach into another module's internals.
    private = [
        f"{source}.{name}"
        for source, names in _imports(module)
        for name in names
        if name.startswith("_") and source != "obshub"
    ]
    assert private == []


#: What users and plugin authors may import (docs/plugin-utilities.md says so);
#: every other module of the core is private: ``_``-prefixed, or inside a private package.
PUBLIC_MODULES = {
    "obshub",
    "obshub.http",
    "obshub.media",
    "obshub.otel",
    "obshub.plugin",
    "obshub.pytest_plugin",
    "obshub.spans",
    "obshub.testing",
}


def test_only_the_stated_modules_are_public() -> None:
    modules = set()
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        if parts[-1] in ("__init__", "__main__"):
            parts = parts[:-1]
        modules.add(".".join(parts))
    public = {m for m in modules if not any(p.startswith("_") for p in m.split("."))}
    public_roots = {m for m in public if m.split(".")[:2] != ["obshub", "testing"]}
    assert public_roots | {"obshub.testing"} == PUBLIC_MODULES
