"""``mllc diff BASE HEAD``: the semantic difference of the specs between two commits of a
real temporary Git repository."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mllc.errors import MllcError
from mllc.ops.diff import render, semantic_diff

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
BAD = "apiVersion: mllc/v1\nkind: Lifecycle\nmetadata: {name: broken}\n"


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return proc.stdout.strip()


def edit(path: Path, *pairs: tuple[str, str]) -> None:
    text = path.read_text(encoding="utf-8")
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Commit 1: iris, churn, broken (invalid), diabetes-to-fix (invalid). Commit 2: iris
    edited in every section, churn removed, diabetes added, broken still broken."""
    specs = tmp_path / "specs"
    specs.mkdir()
    git(tmp_path, "init", "-q")
    shutil.copy(SPECS / "iris.yaml", specs / "iris.yaml")
    shutil.copy(SPECS / "churn.yaml", specs / "churn.yaml")
    (specs / "broken.yaml").write_text(BAD, encoding="utf-8")
    (specs / "notes.txt").write_text("not a spec\n", encoding="utf-8")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    edit(
        specs / "iris.yaml",
        ("n_estimators: 200", "n_estimators: 300"),
        ("  - accuracy >= 0.9\n", "  - accuracy >= 0.95\n"),
        ("port: 8081", "port: 8082"),
        ("description: Classify iris", "description: Sort iris"),
    )
    (specs / "churn.yaml").unlink()
    shutil.copy(SPECS / "diabetes.yaml", specs / "diabetes.yaml")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "head")
    return tmp_path


def test_categories_and_reasons(repo: Path) -> None:
    result = semantic_diff(repo, "HEAD~1", "HEAD")
    by_name = {lc.name: lc for lc in result.lifecycles}
    assert set(by_name) == {"broken", "churn", "diabetes", "iris"}
    assert by_name["churn"].status == "removed"
    assert by_name["churn"].base_file == "specs/churn.yaml"
    assert by_name["diabetes"].status == "added"
    assert by_name["broken"].status == "invalid"
    assert set(by_name["broken"].invalid) == {"base", "head"}
    assert all(n >= 1 for n in by_name["broken"].invalid.values())
    iris = by_name["iris"]
    assert iris.status == "changed"
    assert iris.categories == ("retrain", "re-evaluate", "redeploy", "metadata")
    texts = [(i.category, i.text) for i in iris.items]
    assert texts == [
        ("retrain", "models.forest.params.n_estimators 200 → 300"),
        ("re-evaluate", "gate removed: accuracy >= 0.9"),
        ("re-evaluate", "gate added: accuracy >= 0.95"),
        ("redeploy", "environments.staging.port 8081 → 8082"),
        (
            "metadata",
            "metadata.description Classify iris species from flower measurements → "
            "Sort iris species from flower measurements",
        ),
    ]
    retrain = iris.items[0]
    assert (retrain.path, retrain.before, retrain.after) == (
        "models.forest.params.n_estimators",
        200,
        300,
    )


def test_single_category_changes(repo: Path) -> None:
    """Each kind of edit alone gives exactly its category."""
    iris = repo / "specs" / "iris.yaml"
    cases = [
        (("seed: 42", "seed: 7"), ("retrain",)),
        (("f1_macro >= 0.85", "f1_macro >= 0.8"), ("re-evaluate",)),
        (("model: latest", "model: v1.0.0"), ("redeploy",)),
        (("on_breach: retrain", "on_breach: alert"), ("metadata",)),
    ]
    for pair, expected in cases:
        edit(iris, pair)
        git(repo, "commit", "-qam", pair[1])
        lc = next(x for x in semantic_diff(repo, "HEAD~1", "HEAD").lifecycles if x.name == "iris")
        assert lc.categories == expected, pair


def test_unchanged_and_comments_only(repo: Path) -> None:
    edit(repo / "specs" / "iris.yaml", ("# A model's whole", "# The model's whole"))
    git(repo, "commit", "-qam", "comment")
    result = semantic_diff(repo, "HEAD~1", "HEAD")
    assert {lc.name: lc.status for lc in result.lifecycles}["iris"] == "unchanged"
    assert "No semantic changes" not in render(result)  # broken is still reported
    only_iris = semantic_diff(repo, "HEAD~1", "HEAD", ["specs/iris.yaml"])
    assert [lc.status for lc in only_iris.lifecycles] == ["unchanged"]
    assert "No semantic changes." in render(only_iris)


def test_fixed_spec_is_reported_as_invalid_at_base(repo: Path) -> None:
    shutil.copy(SPECS / "iris.yaml", repo / "specs" / "broken.yaml")
    edit(repo / "specs" / "broken.yaml", ("name: iris ", "name: broken"))
    git(repo, "commit", "-qam", "fix")
    lc = next(x for x in semantic_diff(repo, "HEAD~1", "HEAD").lifecycles if x.name == "broken")
    assert lc.status == "invalid"
    assert set(lc.invalid) == {"base"}


def test_bad_ref(repo: Path) -> None:
    with pytest.raises(MllcError, match="not a Git commit"):
        semantic_diff(repo, "no-such-ref", "HEAD")


def run_mllc(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mllc", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_text_and_json(repo: Path) -> None:
    proc = run_mllc(repo, "diff", "HEAD~1", "HEAD")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Specs from HEAD~1 to HEAD:"
    assert "  ~ iris  (retrain, re-evaluate, redeploy, metadata)" in lines
    assert "      retrain      models.forest.params.n_estimators 200 → 300" in lines
    assert "  - churn  (removed: was specs/churn.yaml)" in lines
    assert "  + diabetes  (added: specs/diabetes.yaml)" in lines
    assert any(line.startswith("  ! broken  (invalid specs/broken.yaml: ") for line in lines)
    assert lines[-1] == "1 added, 1 removed, 1 changed, 1 invalid."

    proc = run_mllc(repo, "diff", "HEAD~1", "HEAD", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["summary"] == {
        "added": 1,
        "removed": 1,
        "changed": 1,
        "invalid": 1,
        "unchanged": 0,
    }
    iris = next(lc for lc in data["lifecycles"] if lc["name"] == "iris")
    assert iris["changes"][0] == {
        "category": "retrain",
        "text": "models.forest.params.n_estimators 200 → 300",
        "path": "models.forest.params.n_estimators",
        "before": 200,
        "after": 300,
    }


def test_cli_bad_ref(repo: Path) -> None:
    proc = run_mllc(repo, "diff", "nope", "HEAD")
    assert proc.returncode == 1
    assert "not a Git commit: 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr
