"""The plugin docs stay true: every hook under its exact signature, every excerpt from the example.

``docs/hooks.md`` must document each hook of ``obshub._hookspecs`` in a
``## <hook>`` section whose first python code block starts with
``def <hook>(...) -> ...``: the spec's exact signature. ``docs/plugins.md`` builds the example
plugin in ``examples/obshub-webhook``; each of its code blocks with a
``title="<file>"`` must be lines of that file (indentation aside).
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from obshub import _hookspecs as hookspecs
from obshub.testing import ExporterContract

ROOT = Path(__file__).resolve().parent.parent
HOOKS_DOC = ROOT / "docs" / "hooks.md"
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "obshub-webhook"

FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
TITLE = re.compile(r'title="([^"]+)"')


class _Source:
    """An annotation shown as written in the source (``from __future__ import annotations``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _shown(annotation: Any) -> Any:
    if annotation is inspect.Parameter.empty:
        return annotation
    return _Source(
        annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    )


def spec_signature(hook: Callable[..., Any]) -> str:
    """``def name(arg: Type, ...) -> Return``, annotations as written in the spec."""
    signature = inspect.signature(hook)
    signature = signature.replace(
        parameters=[
            p.replace(annotation=_shown(p.annotation)) for p in signature.parameters.values()
        ],
        return_annotation=_shown(signature.return_annotation),
    )
    return f"def {hook.__name__}{signature}"


def hook_specs() -> dict[str, Callable[..., Any]]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {
        name: value
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, marker)
    }


def code_blocks(text: str) -> list[tuple[str, str | None, str]]:
    """(language, title or None, body) of every fenced code block."""
    blocks = []
    for language, info, body in FENCE.findall(text):
        title = TITLE.search(info)
        blocks.append((language, title.group(1) if title else None, body.rstrip("\n")))
    return blocks


def documented_hooks() -> dict[str, str | None]:
    """Per ``## <name>`` section of docs/hooks.md: the first ``def`` line of its python block."""
    text = HOOKS_DOC.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    documented: dict[str, str | None] = {}
    for section in sections:
        heading, _, body = section.partition("\n")
        name = heading.strip().strip("`")
        if not re.fullmatch(r"\w+", name):
            continue
        python = [block for language, _, block in code_blocks(body) if language == "python"]
        first = python[0].lstrip().splitlines()[0] if python else None
        documented[name] = " ".join(first.split()) if first and first.startswith("def ") else None
    return documented


def test_hookspecs_has_hooks_to_document() -> None:
    assert "obshub_register_exporters" in hook_specs()


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_each_hook_is_documented_under_its_exact_signature(name: str) -> None:
    documented = documented_hooks()
    expected = spec_signature(hook_specs()[name])
    assert name in documented, f"docs/hooks.md has no '## {name}' section"
    shown = documented[name]
    assert shown is not None, f"'## {name}' does not start with its signature:\n{expected}"
    assert shown == expected, (
        f"docs/hooks.md shows\n  {shown}\nbut obshub._hookspecs has\n  {expected}"
    )


def test_the_hook_reference_documents_no_hook_that_does_not_exist() -> None:
    documented = {name for name, shown in documented_hooks().items() if shown is not None}
    assert documented <= set(hook_specs()), f"not hooks: {sorted(documented - set(hook_specs()))}"


def test_the_signature_check_notices_a_changed_spec() -> None:
    def obshub_register_exporters(register: Callable[..., None], extra: int = 1) -> None: ...

    shown = documented_hooks()["obshub_register_exporters"]
    assert spec_signature(obshub_register_exporters) != shown


# -- the plugin guide ----------------------------------------------------------------------------


def guide_excerpts() -> list[tuple[str, str]]:
    return [
        (title, body)
        for _, title, body in code_blocks(GUIDE.read_text(encoding="utf-8"))
        if title is not None
    ]


def contains_lines(source: str, excerpt: str) -> bool:
    """True when ``excerpt`` is a run of lines of ``source`` with their common indent removed."""
    wanted = excerpt.splitlines()
    lines = source.splitlines()
    for start in range(len(lines) - len(wanted) + 1):
        run = "\n".join(lines[start : start + len(wanted)])
        if textwrap.dedent(run) == excerpt:
            return True
    return False


@pytest.mark.parametrize(
    ("title", "excerpt"),
    guide_excerpts(),
    ids=[f"{title}:{body.splitlines()[0][:40]}" for title, body in guide_excerpts()],
)
def test_each_excerpt_in_the_plugin_guide_is_in_the_example(title: str, excerpt: str) -> None:
    path = EXAMPLE / title
    assert path.is_file(), f"docs/plugins.md quotes {title}, which the example does not have"
    assert contains_lines(path.read_text(encoding="utf-8"), excerpt), (
        f"this excerpt of docs/plugins.md is not in examples/obshub-webhook/{title}:\n{excerpt}"
    )


def test_the_plugin_guide_shows_each_part_of_the_example() -> None:
    titles = {title for title, _ in guide_excerpts()}
    assert {
        "pyproject.toml",
        "obshub_webhook/__init__.py",
        "tests/test_contract.py",
        "README.md",
    } <= titles
    module = (EXAMPLE / "obshub_webhook" / "__init__.py").read_text(encoding="utf-8")
    shown = "\n".join(body for title, body in guide_excerpts() if title.endswith("__init__.py"))
    for member in re.findall(r"^\s*def (\w+)\(", module, re.MULTILINE):
        assert f"def {member}(" in shown, f"the guide never shows {member}()"


def test_the_plugin_guide_lists_every_test_of_the_contract_battery() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    battery = [name for name in dir(ExporterContract) if name.startswith("test_")]
    missing = [name for name in battery if f"`{name}`" not in guide]
    assert not missing, f"docs/plugins.md does not describe {missing}"
