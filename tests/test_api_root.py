"""The Python API honours ``root``: called from any other directory, it reads, plans,
applies and reports on the repository at ``root``, never on the current directory.

Relative spec paths are relative to ``root``. Before this was so, ``api.plan(["specs"],
root=REPO)`` run from elsewhere planned to destroy every lifecycle in REPO.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_repo import copy_repo, fresh_repo, git, mllc

from mllc import api
from mllc.plan.model import Planned

pytestmark = pytest.mark.slow


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """The current directory is an unrelated folder (with a specs/ of its own that must
    not be read)."""
    other = tmp_path / "elsewhere"
    (other / "specs").mkdir(parents=True)
    (other / "specs" / "decoy.yaml").write_text("apiVersion: mllc/v1\nkind: Nope\n")
    before = Path.cwd()
    os.chdir(other)
    try:
        yield other
    finally:
        os.chdir(before)


def _changes(planned: Planned) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.address, c.action, c.reasons) for c in planned.plan.changes]


def test_every_api_function_works_on_root_from_another_directory(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, elsewhere: Path
) -> None:
    repo = copy_repo(fresh_repo(tmp_path_factory), tmp_path / "repo")
    root = str(repo)
    inside = mllc("plan", "--json", cwd=repo).stdout  # the same plan, asked from inside

    report = api.validate(["specs"], root=root)
    assert report.ok and [Path(r.file).name for r in report.results] == ["iris.yaml"]
    assert [s.metadata.name for _, s in api.load_specs(["specs"], root)] == ["iris"]
    assert api.compile(["specs"], root=root, check=True).written  # nothing compiled yet

    planned = api.plan(["specs"], root=root)
    assert _changes(planned) == [
        (c["address"], c["action"], tuple(c["reasons"])) for c in json.loads(inside)["changes"]
    ]
    assert not [c for c in planned.plan.changes if c.action == "delete"]

    result = api.apply(planned, root=root)
    assert result is not None
    assert git("tag", "--list", cwd=repo).splitlines() != []
    assert not list(elsewhere.rglob("dvc.lock")) and not (elsewhere / ".mllc").exists()

    again = api.plan(["specs"], root=root)
    assert _changes(again) == [], _changes(again)  # converged, nothing destroyed
    assert api.compile(["specs"], root=root, check=True).written == ()
    status = api.status(["specs"], root=root)
    assert "iris" in str(status)


def test_plan_from_another_directory_never_destroys_what_root_has(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, elsewhere: Path
) -> None:
    """The data-loss case: an applied repository planned from elsewhere."""
    from helpers_repo import applied_repo

    repo = copy_repo(applied_repo(tmp_path_factory).repo, tmp_path / "repo")
    (elsewhere / "specs" / "decoy.yaml").unlink()  # the default specs/ here is empty
    planned = api.plan(["specs"], root=str(repo))
    assert _changes(planned) == []
    # an explicit relative file is relative to root too
    planned = api.plan(["specs/iris.yaml"], root=str(repo))
    assert _changes(planned) == []
