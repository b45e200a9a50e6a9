"""A repository an older mllc applied, where the reports were DVC metrics kept in Git.

Before the per-candidate reports, ``reports/data.json``, ``reports/train/<m>.json``,
``reports/candidates.json`` and ``lineage.json`` were ``cache: false`` outputs that
Git tracked. Now only the compared metrics are (``reports/candidates/<m>.json``,
``metrics.json``); the others are cached outputs, and DVC refuses to cache a file Git
tracks. The old state is rebuilt here from a real apply: the old dvc.yaml, a real
``dvc commit`` of it, the reports committed to Git and absent from the DVC cache. Then
the current mllc must plan it, apply it once and converge: nothing lost, nothing
tracked twice, the registered version unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_repo import (
    PIPE,
    Applied,
    applied_repo,
    copy_repo,
    dvc,
    git,
    head,
    lock_model_md5,
    md5_file,
    mllc,
    plan_json,
    status_porcelain,
    tags,
)

pytestmark = pytest.mark.slow

OLD_REPORTS = [
    f"{PIPE}/reports/data.json",
    f"{PIPE}/reports/train/forest.json",
    f"{PIPE}/reports/train/logreg.json",
    f"{PIPE}/lineage.json",
]
LEGACY = f"{PIPE}/reports/candidates.json"


def _uncached(path: str) -> dict[str, Any]:
    return {path: {"cache": False}}


def _old_dvc_yaml(doc: dict[str, Any]) -> dict[str, Any]:
    """The dvc.yaml an older mllc generated, from today's (the inverse of the change)."""
    stages = doc["stages"]
    prepare, train = stages["prepare"], stages["train"]["do"]
    prepare["outs"].remove(f"{PIPE}/reports/data.json")
    prepare["metrics"] = [_uncached(f"{PIPE}/reports/data.json")]
    train["outs"].remove(f"{PIPE}/reports/train/${{item}}.json")
    train["metrics"] = [_uncached(f"{PIPE}/reports/train/${{item}}.json")]
    stages["evaluate"]["metrics"] = [_uncached(LEGACY)]
    select = stages["select"]
    select["deps"] = [LEGACY, *(d for d in select["deps"] if "/reports/candidates/" not in d)]
    select["outs"] = [f"{PIPE}/model.joblib", _uncached(f"{PIPE}/lineage.json")]
    return doc


def _make_old(repo: Path) -> None:
    dvc_yaml = repo / PIPE / "dvc.yaml"
    text = dvc_yaml.read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    old = _old_dvc_yaml(yaml.safe_load(text))
    dvc_yaml.write_text(header + yaml.safe_dump(old, sort_keys=False), encoding="utf-8")
    folder = repo / PIPE / "reports" / "candidates"
    candidates = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}
    metric = json.loads((repo / PIPE / "metrics.json").read_text(encoding="utf-8"))["metric"]
    (repo / LEGACY).write_text(
        json.dumps({"metric": metric, "candidates": candidates}), encoding="utf-8"
    )
    for path in folder.glob("*.json"):
        path.unlink()
    folder.rmdir()
    # The lock as the old dvc.yaml records it; the reports leave the DVC cache and .gitignore.
    dvc("commit", "-f", "-q", f"{PIPE}/dvc.yaml", cwd=repo)
    for rel in OLD_REPORTS:
        obj = repo / ".dvc" / "cache" / "files" / "md5" / md5_file(repo / rel)[:2]
        (obj / md5_file(repo / rel)[2:]).unlink(missing_ok=True)
    for ignore in (repo / PIPE).rglob(".gitignore"):
        kept = [line for line in ignore.read_text(encoding="utf-8").splitlines()
                if line.strip("/") not in {Path(r).name for r in OLD_REPORTS}]  # fmt: skip
        ignore.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    git("rm", "-r", "-q", "--cached", f"{PIPE}/reports/candidates", cwd=repo)
    git("add", "-A", "-f", *OLD_REPORTS, LEGACY, f"{PIPE}/dvc.yaml", f"{PIPE}/dvc.lock", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "as an older mllc left it", cwd=repo)


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Applied:
    return applied_repo(tmp_path_factory)


@pytest.fixture
def old(applied: Applied, tmp_path: Path) -> Path:
    repo = copy_repo(applied.repo, tmp_path / "repo")
    _make_old(repo)
    tracked = git("ls-files", "--", PIPE, cwd=repo).split()
    assert set(OLD_REPORTS) | {LEGACY} <= set(tracked)
    assert status_porcelain(repo) == ""
    return repo


def test_an_old_repository_converges_in_one_apply(old: Path, applied: Applied) -> None:
    before_tags = tags(old)
    changes = plan_json(old)["changes"]
    retrain = [c for c in changes if c["category"] == "retrain" and c["action"] != "no-op"]
    assert retrain, changes  # the generated dvc.yaml differs and the reports are not cached
    proc = mllc("apply", "--auto-approve", cwd=old)
    assert "already tracked by SCM" not in proc.stdout + proc.stderr

    tracked = set(git("ls-files", "--", PIPE, cwd=old).split())
    # nothing DVC caches is tracked by Git; the compared metrics are
    assert not tracked & {*OLD_REPORTS, LEGACY}, tracked
    assert {f"{PIPE}/reports/candidates/forest.json", f"{PIPE}/metrics.json"} <= tracked
    assert not (old / LEGACY).exists()
    # nothing lost: every report is in the workspace and in the DVC cache
    for rel in OLD_REPORTS:
        md5 = md5_file(old / rel)
        assert (old / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).is_file(), rel
    # deterministic training: the same model, so the same registered version
    assert lock_model_md5(old) == applied.model_md5
    assert tags(old) == before_tags
    assert "already" in proc.stdout
    assert status_porcelain(old) == ""
    assert dvc("status", cwd=old).stdout.strip() in ("", "Data and pipelines are up to date.")
    after = plan_json(old)["changes"]
    assert [c for c in after if c["action"] != "no-op"] == []


def test_preview_of_an_old_repository_leaves_it_as_it_was(old: Path) -> None:
    """The preview's worktree stops tracking the reports in its own index, not the user's."""
    before = (status_porcelain(old), head(old), tags(old), git("ls-files", cwd=old))
    proc = mllc("preview", "--format", "json", cwd=old, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (lc,) = json.loads(proc.stdout)["lifecycles"]
    assert {c["name"] for c in lc["candidates"]} == {"forest", "logreg"}
    assert (status_porcelain(old), head(old), tags(old), git("ls-files", cwd=old)) == before
