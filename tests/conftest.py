"""Shared fixtures: the golden-file switch, a valid spec, writing specs, a Git identity."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "specs" / "iris.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="Rewrite tests/golden/** expected files instead of comparing (review the diff).",
    )


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen-golden"))


@pytest.fixture
def valid_spec() -> dict[str, Any]:
    """A full valid spec (specs/iris.yaml) as plain data; each test gets its own copy."""
    data = yaml.safe_load(IRIS.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def write_spec(tmp_path: Path, data_or_text: str | dict[str, Any], name: str = "spec.yaml") -> Path:
    """Write a spec (YAML text as is, or data dumped as YAML) under tmp_path; return its path."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data_or_text, str):
        text = data_or_text
    else:
        text = yaml.safe_dump(data_or_text, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(name="write_spec")
def _write_spec_fixture() -> Any:
    """The same helper as a fixture, for tests that prefer not to import conftest."""
    return write_spec


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Git commits work on a machine without a global identity."""
    for var, value in {
        "GIT_AUTHOR_NAME": "mllc tests",
        "GIT_AUTHOR_EMAIL": "tests@mllc.invalid",
        "GIT_COMMITTER_NAME": "mllc tests",
        "GIT_COMMITTER_EMAIL": "tests@mllc.invalid",
    }.items():
        monkeypatch.setenv(var, value)


def check_golden_tree(files: Mapping[str, str], expected_dir: Path, regen: bool) -> None:
    """Compare generated ``path -> text`` with a golden folder (or rewrite it: --regen-golden)."""
    if regen:
        shutil.rmtree(expected_dir, ignore_errors=True)
        for rel, text in files.items():
            (expected_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / rel).write_text(text, encoding="utf-8")
        pytest.skip("golden files regenerated: review the diff")
    expected = {
        p.relative_to(expected_dir).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(expected_dir.rglob("*"))
        if p.is_file()
    }
    assert sorted(files) == sorted(expected), "a different set of files is generated"
    for rel, text in files.items():
        assert text == expected[rel], f"{rel} differs from the golden file (run make golden)"
