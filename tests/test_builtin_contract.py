"""The built-in exporters pass the same contract battery as any plugin's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

import obshub
from obshub.testing import ExporterContract

#: One line of a printed trace tree per span: ``├─ name [type] ...``.
SPAN_LINE = re.compile(r"^[│ ]*[├└]─ .+ \[[a-z_]+\]", re.MULTILINE)


class PrintedSpans:
    """Counts the span lines the console exporter printed to (captured) stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.count = 0

    def read(self) -> int:
        self.count += len(SPAN_LINE.findall(self.capsys.readouterr().err))
        return self.count


class TestConsoleContract(ExporterContract):
    exporter_class = obshub.ConsoleExporter
    config: ClassVar[dict[str, Any]] = {"stream": "stderr", "color": "never"}
    installed = True

    @pytest.fixture
    def backend(self, capsys: pytest.CaptureFixture[str]) -> PrintedSpans:
        return PrintedSpans(capsys)

    def received(self, backend: PrintedSpans, exporter: obshub.Exporter) -> int:
        return backend.read()


class TestJsonlContract(ExporterContract):
    exporter_class = obshub.JsonlExporter
    installed = True
    # A directory where the file should be: a permission-like error that waiting does not fix.
    expect_retryable = False

    @pytest.fixture
    def backend(self, tmp_path: Path) -> dict[str, Any]:
        return {"path": str(tmp_path / "traces" / "events.jsonl")}

    def failing_config(self, backend: dict[str, Any]) -> dict[str, Any]:
        return {"path": str(Path(backend["path"]).parent.parent)}

    def received(self, backend: dict[str, Any], exporter: obshub.Exporter) -> int:
        path = Path(backend["path"])
        if not path.exists():
            return 0
        lines = path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        return len({r["span"]["span_id"] for r in records if r["kind"] != "score"})


class TestMemoryContract(ExporterContract):
    exporter_class = obshub.MemoryExporter
    installed = True

    def received(self, backend: Any, exporter: obshub.Exporter) -> int:
        assert isinstance(exporter, obshub.MemoryExporter)
        return len({event.span.span_id for event in exporter.events})
