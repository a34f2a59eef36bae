"""The recipes of docs/routing-and-privacy.md build and run as written."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

import obshub

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PAGE = Path(__file__).resolve().parents[1] / "docs" / "routing-and-privacy.md"
BLOCK = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
ENV = {
    "LANGFUSE_PUBLIC_KEY": "pk-lf-doc",
    "LANGFUSE_SECRET_KEY": "sk-lf-doc",
    "LANGFUSE_INTERNAL_PUBLIC_KEY": "pk-lf-internal",
    "LANGFUSE_INTERNAL_SECRET_KEY": "sk-lf-internal",
    "LANGFUSE_INTERNAL_URL": "http://127.0.0.1:9",
    "VENDOR_OTLP_ENDPOINT": "http://127.0.0.1:9/v1/traces",
}


def blocks(language: str) -> list[str]:
    return [
        body for lang, body in BLOCK.findall(PAGE.read_text(encoding="utf-8")) if lang == language
    ]


def test_the_page_has_the_three_recipes() -> None:
    assert len(blocks("toml")) == 2
    assert any("obshub.OnDemand" in block for block in blocks("python"))


@pytest.mark.parametrize("index", [0, 1])
def test_each_toml_recipe_builds(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("obshub_langfuse")
    pytest.importorskip("obshub_otlp")
    monkeypatch.chdir(tmp_path)
    document = tomllib.loads(blocks("toml")[index])
    hub = obshub.Hub.from_config(document, environ=ENV)
    try:
        exporters = {e.instance_name: e for e in hub.exporters()}
        if index == 0:
            sampler = exporters["langfuse"].sampler
            assert sampler is not None
            assert sampler.tail is not None
            assert sampler.tail.ratio == 0.05
        else:
            assert exporters["vendor"].processors
            assert not exporters["self_hosted"].processors
            assert hub.configs["prod"].processors  # redact = true
    finally:
        hub.shutdown(0.5)


def test_the_tenant_recipe_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("obshub_langfuse")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LANGFUSE_BASE_URL", "http://127.0.0.1:9")
    source = next(block for block in blocks("python") if "obshub.OnDemand" in block)
    namespace: dict[str, Any] = {}
    exec(compile(source, str(PAGE), "exec"), namespace)
    hub: obshub.Hub = namespace["hub"]
    try:
        assert "default/local" in hub.stats()
        assert "tenant-acme/langfuse" in hub.stats()
        tenant = hub.stats()["tenant-acme/langfuse"]
        assert tenant.config == "tenant-acme"
    finally:
        hub.shutdown(0.5)
