"""``obshub new-plugin NAME``: a project an author starts from, passing the contract battery."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from obshub import _cli as cli
from obshub._newplugin import create_plugin, plugin_files


def test_the_generated_plugin_installs_and_passes_its_contract_tests(tmp_path: Path) -> None:
    out = io.StringIO()
    code = cli.main(["new-plugin", "acme-sink", "--dir", str(tmp_path)], out=out)
    assert code == 0
    root = tmp_path / "obshub-acme-sink"
    assert f"created {root}" in out.getvalue()
    # Installed like a user would (a wheel built from the project, entry point included),
    # into a directory of its own so this venv is left as it was.
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
            "--no-index", "--target", str(target), str(root),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    assert list(target.glob("obshub_acme_sink-0.1.0.dist-info"))
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    assert "failed" not in result.stdout
    # The installed entry point registers the type: `obshub plugins` lists it.
    listed = subprocess.run(
        [sys.executable, "-m", "obshub", "plugins"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "obshub-acme-sink" in listed.stdout
    assert "acme-sink" in listed.stdout


def test_the_generated_project_depends_on_the_core_within_its_minor_version() -> None:
    pyproject = plugin_files("acme")["pyproject.toml"]
    assert 'dependencies = ["obshub>=0.1.0,<0.2"]' in pyproject
    assert '[project.entry-points.obshub]\nacme = "obshub_acme"' in pyproject
    assert '"obshub-plugin"' in pyproject


@pytest.mark.parametrize("name", ["Acme", "1acme", "acme sink", "", "a" * 41])
def test_an_invalid_name_is_refused(name: str, tmp_path: Path) -> None:
    out = io.StringIO()
    assert cli.main(["new-plugin", name, "--dir", str(tmp_path)], out=out) == 2
    assert "invalid plugin name" in out.getvalue()
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    create_plugin("acme", tmp_path)
    marker = tmp_path / "obshub-acme" / "README.md"
    marker.write_text("mine")
    out = io.StringIO()
    assert cli.main(["new-plugin", "acme", "--dir", str(tmp_path)], out=out) == 2
    assert "already exists" in out.getvalue()
    assert marker.read_text() == "mine"
