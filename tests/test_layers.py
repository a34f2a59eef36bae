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
        ("routing", {"obshub.tracing", "obshub.hub"}),
        ("tracing", {"obshub.hub"}),
        ("delivery/channel", {"obshub.tracing", "obshub.routing", "obshub.hub"}),
    ],
)
def test_a_layer_does_not_import_the_layers_above_it(
    module: str, must_not_import: set[str]
) -> None:
    imported = {source for source, _ in _imports(module)}
    assert not imported & must_not_import


@pytest.mark.parametrize("module", ["hub", "routing", "tracing"])
def test_recording_and_routing_import_no_private_names_of_other_modules(module: str) -> None:
    private = [
        f"{source}.{name}"
        for source, names in _imports(module)
        for name in names
        if name.startswith("_") and not source.split(".")[-1].startswith("_")
    ]
    assert private == []
