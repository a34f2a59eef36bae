"""``obshub new-plugin NAME``: a plugin project that passes the contract battery from the start.

The skeleton is a working file-sink exporter (JSON lines on disk, no HTTP): an
author replaces its ``export`` with the calls to their backend and keeps a
passing ``ExporterContract`` run all along. See docs/plugins.md.
"""

from __future__ import annotations

import re
from pathlib import Path

from obshub._dist import distribution_version

__all__ = ["NAME_PATTERN", "create_plugin", "plugin_files"]

#: What a plugin's exporter type may be called (docs/plugins.md: naming).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _core_bound() -> str:
    """``obshub>=X.Y.Z,<X.(Y+1)``: the core versions released with the running one."""
    version = distribution_version("obshub")
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", version)
    if match is None:  # a source tree without metadata
        return "obshub>=0.1,<1"
    major, minor, patch = (int(g) for g in match.groups())
    return f"obshub>={major}.{minor}.{patch},<{major}.{minor + 1}"


def plugin_files(name: str) -> dict[str, str]:
    """The files of a new plugin project named ``obshub-<name>``, by relative path."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"invalid plugin name {name!r}: use lowercase letters, digits, '-' and '_', "
            "starting with a letter (it becomes the exporter type users write)"
        )
    dist = f"obshub-{name}"
    module = f"obshub_{name.replace('-', '_')}"
    cls = "".join(part.capitalize() for part in re.split(r"[-_]", name)) + "Exporter"
    values = {"name": name, "dist": dist, "module": module, "cls": cls, "bound": _core_bound()}
    return {path.format(**values): text.format(**values) for path, text in _TEMPLATE.items()}


def create_plugin(name: str, parent: str | Path = ".") -> Path:
    """Write the project into ``parent/obshub-<name>``; refuses an existing directory."""
    files = plugin_files(name)
    root = Path(parent) / f"obshub-{name}"
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


# Templates: str.format fields {name} {dist} {module} {cls} {bound}; literal braces doubled.
_TEMPLATE: dict[str, str] = {
    "pyproject.toml": """\
[build-system]
requires = ["hatchling>=1.27"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "0.1.0"
description = "A {name} backend for obshub."
readme = "README.md"
requires-python = ">=3.10"
keywords = ["obshub-plugin", "obshub", "llm", "tracing"]
# Bounded to the core's minor version: the plugin API may change between minors.
dependencies = ["{bound}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# obshub finds the plugin through this entry point; its name is the exporter type.
[project.entry-points.obshub]
{name} = "{module}"

[tool.hatch.build.targets.wheel]
packages = ["{module}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
""",
    "README.md": """\
# {dist}

A backend for obshub: every finished span and score is written as one JSON
line to a file (`type = "{name}"`). Replace `{cls}.export` with the calls to
your backend; `tests/test_contract.py` runs obshub's exporter contract battery
against it.

```toml
[configs.prod.exporters.{name}]
path = "spans.jsonl"
```

```bash
pip install -e ".[test]" && python -m pytest
```
""",
    "{module}/__init__.py": '''\
"""{dist}: an obshub backend (``type = "{name}"``)."""

from __future__ import annotations

from typing import Any

import obshub
from obshub.plugin import distribution_version

from {module}.exporter import {cls}

__all__ = ["{cls}", "__version__", "obshub_register_exporters"]

__version__ = distribution_version("{dist}")


@obshub.hookimpl
def obshub_register_exporters(register: Any) -> None:
    """Make ``type = "{name}"`` known to obshub."""
    register({cls})
''',
    "{module}/py.typed": "",
    "{module}/exporter.py": '''\
"""The {name} exporter: one JSON line per finished span and per score, in a file.

A non-HTTP backend: replace the file with your database or queue, keep the shape
(settings as keyword-only arguments, ``**common`` passed on, `obshub.ExportError`
on failure, ``check()`` saying whether the backend can be reached).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import obshub
from obshub.plugin import clean_text, json_string


class {cls}(obshub.Exporter):
    """Writes each finished span and each score as one JSON line to ``path``."""

    name = "{name}"

    def __init__(self, *, path: str, fsync: bool = False, **common: Any) -> None:
        # **common carries realtime, batch, retry, log_level, instance_name, ...:
        # forgetting it (or the super() call) is reported with the fix.
        super().__init__(**common)
        if not isinstance(path, str) or not path:
            raise obshub.ConfigError("must be a non-empty path", "path")
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()

    def export(self, events: Sequence[obshub.SpanEvent]) -> None:
        self._write([event.to_dict() for event in events])

    def export_scores(self, scores: Sequence[obshub.Score]) -> None:
        self._write([{{"score": score.to_dict()}} for score in scores])

    def _write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        # json_string keeps non-ASCII text as it is, lone surrogates included, which
        # UTF-8 cannot encode: clean_text replaces them (the contract battery checks it).
        text = "".join(clean_text(json_string(record)) + "\\n" for record in records)
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as fh:
                fh.write(text)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            # Retryable: a full disk or an unmounted volume may come back.
            raise obshub.ExportError(
                f"cannot write {{self.path}}: {{exc.strerror or exc}}", retryable=True
            ) from None

    def check(self) -> obshub.CheckResult:
        directory = self.path.parent
        if self.path.is_dir():
            return obshub.CheckResult(ok=False, message=f"{{self.path}} is a directory")
        if not directory.is_dir() or not os.access(directory, os.W_OK):
            return obshub.CheckResult(ok=False, message=f"cannot write in {{directory}}")
        return obshub.CheckResult(ok=True, message=f"writes to {{self.path}}")
''',
    "tests/test_contract.py": '''\
"""{cls} passes obshub's exporter contract battery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import obshub
import pytest
from obshub.testing import ExporterContract

from {module} import {cls}


class Test{cls}Contract(ExporterContract):
    exporter_class = {cls}
    config: ClassVar[dict[str, Any]] = {{"path": "replaced-by-backend_settings.jsonl"}}
    installed = True  # the entry point in pyproject.toml registers it
    # expect_retryable defaults to True: the failing config below must raise
    # obshub.ExportError(..., retryable=True).

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Path:
        return tmp_path

    def backend_settings(self, backend: Path) -> dict[str, Any]:
        return {{"path": str(backend / "spans.jsonl")}}

    def failing_config(self, backend: Path) -> dict[str, Any]:
        return {{"path": str(backend)}}  # a directory: it cannot be written

    def received(self, backend: Path, exporter: obshub.Exporter) -> int:
        file = backend / "spans.jsonl"
        if not file.exists():
            return 0
        records = [json.loads(line) for line in file.read_text().splitlines()]
        return len({{r["span"]["span_id"] for r in records if "span" in r}})
''',
}
