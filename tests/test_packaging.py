"""The distributions are ready to publish: one version, bounded plugin dependencies,
the licence in every distribution, Project-URLs, long descriptions fit for a package index.

CI (.ci/run, "distributions") builds them, runs ``twine check`` and installs the wheels
into a clean venv; these checks keep the metadata right between releases.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT
PLUGINS = [ROOT / "plugins" / "otlp", ROOT / "plugins" / "langfuse", ROOT / "plugins" / "studio"]
DISTRIBUTIONS = [CORE, *PLUGINS, ROOT / "examples" / "obshub-webhook"]
PUBLISHED = [CORE, *PLUGINS]


def project(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((directory / "pyproject.toml").read_text())
    return data


def version_of(directory: Path) -> str:
    version: str = project(directory)["project"]["version"]
    return version


def minor_bound(version: str) -> str:
    """``0.1.0`` -> ``>=0.1.0,<0.2``: the range of versions released together with it."""
    major, minor = (int(p) for p in version.split(".")[:2])
    return f">={version},<{major}.{minor + 1}"


def test_core_and_first_party_plugins_share_one_version() -> None:
    versions = {d.name if d != CORE else "obshub": version_of(d) for d in PUBLISHED}
    assert len(set(versions.values())) == 1, versions


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_first_party_plugins_depend_on_the_core_within_its_minor_version(plugin: Path) -> None:
    bound = minor_bound(version_of(CORE))
    deps = project(plugin)["project"]["dependencies"]
    first_party = [d for d in deps if re.match(r"obshub(-otlp|-langfuse)?[>=<\[]", d)]
    assert first_party, deps
    assert all(d.split(">", 1)[1] == bound[1:] for d in first_party), first_party
    assert any(d.startswith("obshub>=") for d in first_party)


def test_the_core_extras_install_the_first_party_plugins() -> None:
    extras = project(CORE)["project"]["optional-dependencies"]
    bound = minor_bound(version_of(CORE))
    assert extras["langfuse"] == [f"obshub-langfuse{bound}"]
    assert extras["otlp"] == [f"obshub-otlp{bound}"]
    assert extras["studio"] == [f"obshub-studio{bound}"]


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=lambda p: p.name)
def test_every_distribution_ships_the_mit_licence(directory: Path) -> None:
    meta = project(directory)["project"]
    assert meta["license"] == "MIT"
    assert meta["license-files"] == ["LICENSE"]
    text = (directory / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert text == (ROOT / "LICENSE").read_text()
    sdist = project(directory).get("tool", {}).get("hatch", {}).get("build", {})
    include = sdist.get("targets", {}).get("sdist", {}).get("include")
    if include is not None:
        assert "/LICENSE" in include
        # Anchored patterns only: "tests" would also match the plugins' tests.
        assert all(pattern.startswith("/") for pattern in include), include


@pytest.mark.parametrize("directory", PUBLISHED, ids=lambda p: p.name)
def test_published_distributions_have_project_urls(directory: Path) -> None:
    urls = project(directory)["project"]["urls"]
    assert set(urls) >= {"Homepage", "Documentation", "Repository", "Changelog", "Issues"}
    assert all(u.startswith("https://") for u in urls.values())
    assert urls == project(CORE)["project"]["urls"]


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=lambda p: p.name)
def test_long_descriptions_have_no_repository_relative_links(directory: Path) -> None:
    readme = directory / project(directory)["project"]["readme"]
    text = readme.read_text()
    relative = re.findall(r"\]\((?!https?://|#)([^)]+)\)", text)
    assert relative == [], f"{readme}: links a package index cannot follow: {relative}"
    first_block = text.split("```", 2)[1] if "```" in text else ""
    # A package index page starts by saying what the package is, not how to develop it.
    assert "-e " not in first_block
    assert "git clone" not in first_block
