"""Every Python and TOML snippet of the README files and docs/*.md runs, and shown output matches.

Python snippets of one page run in order, in one namespace, in a fresh directory,
against local stand-ins (a Langfuse stand-in and an OTLP receiver on 127.0.0.1, found
through the usual environment variables), so that a snippet may use what an earlier
one defined, as a reader pasting them would. A ```` ```text ```` block right after a
Python snippet is its expected output: compared after ids, timestamps and durations
are normalised. A TOML snippet must parse; one holding ``configs`` must also build
(every exporter, no failed one).

Markers, on the line before a fence (keep them few):

- ``<!-- snippet: skip REASON -->``: not run (it needs a real service or a package of
  the reader's); its output is not compared;
- ``<!-- snippet: compile-only REASON -->``: a fragment (a method of a class shown in
  prose), only compiled;
- ``<!-- snippet: raises NAME -->``: the snippet shows an exception escaping; it must
  raise exactly that exception type.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import obshub
from obshub._config import build_configs
from obshub._failed import FailedExporter
from obshub._plugins import get_registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "README.pypi.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "plugins").glob("*/README.md"),
        ROOT / "examples" / "obshub-webhook" / "README.md",
    ]
)
MARKER = re.compile(r"<!--\s*snippet:\s*(skip|compile-only|raises)\s+(.+?)\s*-->")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


@dataclass
class Snippet:
    page: Path
    line: int  # of the opening fence, 1-based
    end: int  # index of the closing fence line, 0-based
    lang: str
    code: str
    skip: str | None
    output: str | None = None  # the text block right after it, if any
    mode: str = "run"  # or "compile-only", "raises"
    raises: str | None = None
    reason: str = ""  # of a skip or compile-only marker

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Snippet]:
    """Every fenced block of a page with a language, with its skip marker."""
    lines = page.read_text().splitlines()
    found: list[Snippet] = []
    previous = ""
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match or not match.group(2):
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        indent, lang, start = match.group(1), match.group(2), i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        marker = MARKER.search(previous)
        code = "\n".join(body) + "\n"
        snippet = Snippet(page, start + 1, i, lang, code, None)
        if marker is not None and marker.group(1) == "skip":
            snippet.skip = marker.group(2)
        if marker is not None:
            snippet.reason = marker.group(2)
        if marker is not None and marker.group(1) != "skip":
            snippet.mode = marker.group(1)
            snippet.raises = marker.group(2) if marker.group(1) == "raises" else None
        found.append(snippet)
        previous = ""
        i += 1
    return found


def snippets(page: Path) -> list[Snippet]:
    """Python and TOML snippets; a text block right after a Python one is its output."""
    lines = page.read_text().splitlines()
    result: list[Snippet] = []
    last: Snippet | None = None
    for block in blocks(page):
        if block.lang == "text" and last is not None and last.lang == "python":
            gap = lines[last.end + 1 : block.line - 1]
            if all(not g.strip() for g in gap) and block.skip is None:
                last.output = block.code
        if block.lang in ("python", "toml"):
            result.append(block)
        last = block
    return result


# -- normalising outputs ------------------------------------------------------------------

_NORMALISE = [
    (re.compile(r"\b[0-9a-f]{32}\b"), "<trace-id>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<span-id>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<short-id>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<clock>"),
    (re.compile(r"\b\d+(\.\d+)? ?(ms|s)\b"), "<duration>"),
    (re.compile(r"\b1[6-9]\d{8}(\d{9})?\b"), "<epoch>"),
    (re.compile(r"0x[0-9a-f]+"), "<address>"),
    (re.compile(r"/tmp/[^\s'\"]+"), "<tmp>"),
]


def normalise(text: str) -> list[str]:
    out = []
    for line in text.strip("\n").splitlines():
        for pattern, replacement in _NORMALISE:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    return out


# -- running --------------------------------------------------------------------------------


class _Env(dict[str, str]):
    """Variables the TOML snippets name; any other is unset (its default applies)."""


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    from obshub_langfuse.testing import LangfuseStandIn
    from obshub_otlp.testing import OtlpReceiver

    with LangfuseStandIn() as langfuse, OtlpReceiver() as receiver:
        env = {
            "LANGFUSE_PUBLIC_KEY": langfuse.public_key,
            "LANGFUSE_SECRET_KEY": langfuse.secret_key,
            "LANGFUSE_BASE_URL": langfuse.url,
            "LANGFUSE_HOST": langfuse.url,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url.rsplit("/v1/traces", 1)[0],
            "OTLP_TOKEN": "docs-token",
            "TRACE_DIR": str(tmp_path / "traces"),
            "WEBHOOK_TOKEN": "Bearer docs-token",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for key in ("OBSHUB_CONFIG", "OBSHUB_LOAD_PLUGINS", "OBSHUB_DISABLE_PLUGINS"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.chdir(tmp_path)
        yield env


_FILE_NAME = re.compile(r"^#\s*([\w.-]+\.toml)\s*$")


def save_named_file(snippet: Snippet) -> None:
    """A TOML snippet whose first line is ``# NAME.toml`` is saved under that name."""
    named = _FILE_NAME.match(snippet.code.splitlines()[0]) if snippet.code.strip() else None
    if named:
        Path(named.group(1)).write_text(snippet.code)


def run_toml(snippet: Snippet, env: dict[str, str]) -> None:
    save_named_file(snippet)
    try:
        data = tomllib.loads(snippet.code)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{snippet.where}: invalid TOML: {exc}")
    if "configs" not in data:
        return  # a pyproject.toml or another file's fragment: parsing is all
    try:
        configs, _ = build_configs(data, get_registry(), env)
    except obshub.ConfigError as exc:
        pytest.fail(f"{snippet.where}: the config does not build:\n{exc}")
    failed = [e for c in configs.values() for e in c.exporters if isinstance(e, FailedExporter)]
    assert not failed, f"{snippet.where}: exporters failed to start: {failed}"
    for config in configs.values():
        for exporter in config.exporters:
            with contextlib.suppress(Exception):
                exporter.shutdown(timeout=1.0)


def run_python(snippet: Snippet, namespace: dict[str, Any]) -> None:
    out = io.StringIO()
    code = compile(snippet.code, snippet.where, "exec")
    if snippet.mode == "compile-only":
        return
    if snippet.mode == "raises":
        raised: BaseException | None = None
        try:
            with contextlib.redirect_stdout(out):
                exec(code, namespace)
        except Exception as exc:
            raised = exc
        assert type(raised).__name__ == snippet.raises, f"{snippet.where}: raised {raised!r}"
    else:
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
    if snippet.output is None:
        return
    shown, real = normalise(snippet.output), normalise(out.getvalue())
    assert real == shown, (
        f"{snippet.where}: the output shown differs from the real one\n--- shown\n"
        + "\n".join(shown)
        + "\n--- real\n"
        + "\n".join(real)
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_snippet_of_the_page_runs(page: Path, stand_ins: dict[str, str]) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}  # as in a script a reader runs
    found = snippets(page)
    # A page may show the code before the file it reads: a reader saves the file
    # first, so each named file (`# obshub.toml`) exists from the start, in its
    # first version; later versions replace it where they appear.
    for snippet in reversed(found):
        if snippet.lang == "toml" and snippet.skip is None:
            save_named_file(snippet)
    try:
        for snippet in found:
            if snippet.skip is not None:
                continue
            if snippet.lang == "toml":
                run_toml(snippet, stand_ins)
            else:
                run_python(snippet, namespace)
    finally:
        for value in list(namespace.values()):
            if isinstance(value, obshub.Hub):
                value.shutdown(timeout=2.0)
        obshub.shutdown(timeout=2.0)


def test_skip_markers_are_few_and_give_a_reason() -> None:
    skipped = [s for page in PAGES for s in snippets(page) if s.skip is not None or s.mode != "run"]
    reasons = [s.reason for s in skipped if s.mode != "raises"]
    assert all(len(r) >= 10 for r in reasons), [s.where for s in skipped]
    total = sum(len(snippets(page)) for page in PAGES)
    assert len(skipped) <= total // 4, [s.where for s in skipped]


def test_the_parser_pairs_a_snippet_with_the_output_right_after_it(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nprint(1)\n```\n\n```text\n1\n```\n\nprose\n\n"
        "<!-- snippet: skip needs a real Langfuse account -->\n```python\nx\n```\n\n"
        "```toml\na = 1\n```\n\nmore prose\n\n```text\nnot an output\n```\n"
    )
    found = snippets(page)
    assert [(s.lang, s.output, s.skip) for s in found] == [
        ("python", "1\n", None),
        ("python", None, "needs a real Langfuse account"),
        ("toml", None, None),
    ]


def test_the_docs_theme_lets_long_lines_and_names_overflow_cleanly() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert "extra_css:\n  - stylesheets/extra.css" in config
    css = (ROOT / "docs" / "stylesheets" / "extra.css").read_text()
    assert "overflow-x: auto" in css
    assert "white-space: nowrap" in css  # inline code in table cells stays whole
