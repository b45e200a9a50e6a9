"""The experiments view (``mllc status NAME --candidates``) on real repositories: real
Git, DVC, training and a local server on 127.0.0.1.

The two-version repository is the session's applied iris repository (v1.0.0) with
the selected candidate's params changed and applied (v1.1.0), and an environment
pinned to v1.0.0, so where each version runs is not simply "the newest".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_repo import (
    NAME,
    PIPE,
    Applied,
    applied_repo,
    copy_repo,
    edit_spec,
    env,
    git,
    head,
    mllc,
    status_porcelain,
    tags,
    wait_until_gone,
)

from mllc.observe.history import MAX_BYTES, candidates_at
from mllc.ops.status import render_candidates

pytestmark = pytest.mark.slow

HEAVY = {"dvc", "pandas", "numpy", "sklearn", "scipy", "pyarrow", "joblib", "fsspec"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_servers(repo: Path) -> None:
    for state in (repo / ".mllc" / "serve").rglob("server-*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)


def at_tag(repo: Path, version: str, path: str) -> Any:
    return json.loads(git("show", f"{NAME}@{version}:{path}", cwd=repo))


def recorded_at(repo: Path, version: str) -> dict[str, Any]:
    """Candidate -> its report, as the version's commit holds them."""
    folder = f"{PIPE}/reports/candidates"
    names = git("ls-tree", "--name-only", f"{NAME}@{version}:{folder}", cwd=repo).split()
    return {n.removesuffix(".json"): at_tag(repo, version, f"{folder}/{n}") for n in names}


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Applied:
    return applied_repo(tmp_path_factory)


@pytest.fixture(scope="module")
def two_versions(applied: Applied, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    repo = copy_repo(applied.repo, tmp_path_factory.mktemp("experiments") / "repo")
    selected = json.loads((repo / PIPE / "metrics.json").read_text(encoding="utf-8"))["model"]
    port = free_port()

    def change(data: dict[str, Any]) -> None:
        params = data["models"][selected]["params"]
        if selected == "forest":
            params["n_estimators"] = 25
        else:
            params["C"] = 0.05
        data["environments"] = {"staging": {"target": "local", "model": "v1.0.0", "port": port}}

    edit_spec(repo, change, commit=f"{selected}: other params; staging pinned to v1.0.0")
    try:
        proc = mllc("apply", "--auto-approve", cwd=repo)
        assert {f"{NAME}@v1.0.0", f"{NAME}@v1.1.0"} <= tags(repo), proc.stdout
        yield repo
    finally:
        stop_servers(repo)
        wait_until_gone(repo)


def test_candidates_of_every_version_as_their_commits_hold_them(two_versions: Path) -> None:
    repo = two_versions
    before = (status_porcelain(repo), head(repo), tags(repo))
    report = json.loads(mllc("status", NAME, "--candidates", "--format", "json", cwd=repo).stdout)
    (lc,) = report["lifecycles"]
    assert [v["version"] for v in lc["versions"]] == ["v1.0.0", "v1.1.0"]
    for v in lc["versions"]:
        recorded = recorded_at(repo, v["version"])
        selected = at_tag(repo, v["version"], f"{PIPE}/metrics.json")["model"]
        assert v["selected"] == selected
        assert [c["name"] for c in v["candidates"]] == sorted(recorded)
        for c in v["candidates"]:
            assert c["validation"] == recorded[c["name"]]["validation"]
            assert c["test"] == recorded[c["name"]]["test"]
            assert c["selected"] is (c["name"] == selected)
        assert v["environments"] == (["staging"] if v["version"] == "v1.0.0" else [])
    metrics = lc["candidate_metrics"]
    assert metrics[:2] == ["f1_macro", "accuracy"]  # the primary metric, then the gates'
    # read-only: nothing committed, tagged or left in the working tree
    assert (status_porcelain(repo), head(repo), tags(repo)) == before


def _table(text: str) -> list[tuple[str, bool, str, str | None, list[str]]]:
    """(version, selected, candidate, runs in (first row of a version), values) per row."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["version", "candidate"])
    rows: list[tuple[str, bool, str, str | None, list[str]]] = []
    version = ""
    for line in lines[start + 1 :]:
        words = line.split()
        if not words or words[0] == "+" or not line.startswith("  ") or ":" in line:
            break
        first = words[0].startswith("v1.")
        if first:
            version = words.pop(0)
        selected = words[0] == "*"
        if selected:
            words.pop(0)
        name = words.pop(0)
        runs = words.pop(0) if first else None
        rows.append((version, selected, name, runs, words))
    return rows


def test_candidates_text_side_by_side_newest_first(two_versions: Path) -> None:
    repo = two_versions
    text = mllc("status", NAME, "--candidates", cwd=repo).stdout
    assert all(len(line) <= 100 for line in text.splitlines()), text
    rows = _table(text)
    assert list(dict.fromkeys(r[0] for r in rows)) == ["v1.1.0", "v1.0.0"]
    for version in ("v1.1.0", "v1.0.0"):
        recorded = recorded_at(repo, version)
        selected = at_tag(repo, version, f"{PIPE}/metrics.json")["model"]
        mine = [r for r in rows if r[0] == version]
        assert sorted(r[2] for r in mine) == sorted(recorded)
        assert [r[2] for r in mine if r[1]] == [selected]
        assert mine[0][3] == ("staging" if version == "v1.0.0" else "-")
        for _, _, name, _, values in mine:
            scores = recorded[name]
            assert values[:2] == [
                f"{scores['validation']['f1_macro']:.4g}",
                f"{scores['test']['f1_macro']:.4g}",
            ]


def test_candidates_width_keeps_the_primary_metric_and_names_the_rest(two_versions: Path) -> None:
    report = json.loads(mllc("status", NAME, "--candidates", "--json", cwd=two_versions).stdout)
    metrics = report["lifecycles"][0]["candidate_metrics"]
    narrow = render_candidates(report, width=40)
    assert metrics[0] in narrow and f"+ {len(metrics) - 1} more metrics" in narrow
    wide = render_candidates(report, width=400)
    assert "more metrics" not in wide
    header = next(line for line in wide.splitlines() if metrics[0] in line)
    assert header.split() == metrics


def test_candidates_view_loads_no_model_and_no_heavy_library(two_versions: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mllc", "status", NAME, "--candidates"],
        cwd=two_versions,
        env=env(),
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "mllc.ops.status" in loaded
    assert sorted(n for n in loaded if n.split(".")[0] in HEAVY) == []


def test_an_unknown_lifecycle_name_is_an_error(applied: Applied) -> None:
    proc = mllc("status", "nosuch", "--candidates", cwd=applied.repo, check=False)
    assert proc.returncode == 1
    assert "no lifecycle named nosuch" in proc.stderr and NAME in proc.stderr


def _commit_all(repo: Path, message: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-qm", message, cwd=repo)
    return head(repo)


def test_candidates_at_a_commit_without_the_reports_or_with_a_huge_one(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    (repo / "README").write_text("x\n", encoding="utf-8")
    bare = _commit_all(repo, "no report")
    folder = repo / PIPE / "reports" / "candidates"
    folder.mkdir(parents=True)
    (repo / PIPE / "metrics.json").write_text('{"metric": "f1_macro"}', encoding="utf-8")
    (folder / "a.json").write_text(json.dumps({"pad": "x" * MAX_BYTES}), encoding="utf-8")
    huge = _commit_all(repo, "huge report")
    good = {
        "a": {"validation": {"f1_macro": 0.5}, "test": {"f1_macro": None, "x": "text"}},
        "b\x1b[2J\nc": {"validation": {}, "test": {}, "note": "\x1b]0;title\x07"},
    }
    for name, entry in good.items():
        (folder / f"{name}.json").write_text(json.dumps(entry), encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "x.json").write_text("{}", encoding="utf-8")  # not a candidate
    reports = _commit_all(repo, "per-candidate reports")
    (folder / "a.json").write_text("[1, 2]", encoding="utf-8")
    broken = _commit_all(repo, "a report that is not an object")
    found = candidates_at(repo, NAME, [bare, huge, reports, broken, "not-a-commit"])
    assert found[bare].problem == f"{PIPE}/reports/candidates/ not found at {bare[:10]}"
    assert "refused" in str(found[huge].problem)
    assert found[reports].metric == "f1_macro" and found[reports].problem is None
    only, hostile = found[reports].candidates
    assert (only.name, only.validation, only.test) == ("a", {"f1_macro": 0.5}, {"f1_macro": None})
    # no terminal escape from a commit's report reaches the screen; a newline in a file
    # name does not break the batch read either
    assert (hostile.name, hostile.note) == ("b?[2J?c", "?]0;title?")
    assert found[broken].problem == f"{PIPE}/reports/candidates/a.json is not a JSON object"
    assert found["not-a-commit"].problem == "not a commit id"


def test_candidates_at_a_commit_an_older_mllc_made(tmp_path: Path) -> None:
    """Versions registered before the per-candidate reports hold one candidates.json."""
    repo = tmp_path / "r"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    report = repo / PIPE / "reports" / "candidates.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"metric": "f1_macro", "pad": "x" * MAX_BYTES}), encoding="utf-8")
    huge = _commit_all(repo, "huge report")
    good = {
        "a": {"validation": {"f1_macro": 0.5}, "test": {"f1_macro": None}, "validated_on": "cv5"},
        "b\x1b[2J": {"validation": {}, "test": {}, "note": "\x1b]0;title\x07"},
    }
    report.write_text(json.dumps({"metric": "f1_macro", "candidates": good}), encoding="utf-8")
    old = _commit_all(repo, "a report")
    report.write_text(json.dumps({"metric": "f1_macro"}), encoding="utf-8")
    empty = _commit_all(repo, "a report without candidates")
    found = candidates_at(repo, NAME, [huge, old, empty])
    assert found[huge].problem == f"{PIPE}/reports/candidates.json is larger than 256 KiB; refused"
    assert found[old].metric == "f1_macro"
    only, hostile = found[old].candidates
    assert (only.name, only.validation, only.validated_on) == ("a", {"f1_macro": 0.5}, "cv5")
    assert (hostile.name, hostile.note) == ("b?[2J", "?]0;title?")
    assert found[empty].problem == f"{PIPE}/reports/candidates.json has no 'candidates' mapping"


def test_candidates_text_says_what_it_could_not_read_and_how_each_was_validated() -> None:
    def cand(name: str, on: str, value: float | None) -> dict[str, Any]:
        scores = {"f1_macro": value, "accuracy": value}
        return {"name": name, "selected": name == "own", "validated_on": on,
                "validation": scores, "test": scores}  # fmt: skip

    report = {
        "lifecycles": [
            {
                "name": "churn",
                "spec": "specs/churn.yaml",
                "candidate_metrics": ["f1_macro", "accuracy", "roc_auc"],
                "versions": [
                    {
                        "version": "v1.0.0",
                        "environments": [],
                        "candidates": None,
                        "candidates_problem": "pipelines/churn/reports/candidates/ not found",
                    },
                    {
                        "version": "v1.1.0",
                        "environments": ["staging", "production"],
                        "candidates": [cand("own", "train", 0.91), cand("tree", "cv5", None)],
                    },
                ],
            }
        ]
    }
    lines = render_candidates(report, width=100).splitlines()
    assert lines[0] == "churn  (specs/churn.yaml)"
    header = next(line for line in lines if "f1_macro" in line)
    assert header.split() == ["f1_macro", "accuracy"]  # roc_auc: no candidate has it
    newest = next(line for line in lines if line.startswith("  v1.1.0"))
    assert newest.split() == ["v1.1.0", "*", "own", "staging,", "production",
                              "0.91", "0.91", "0.91", "0.91"]  # fmt: skip
    tree = next(line for line in lines if " tree " in line)
    assert tree.split() == ["tree", "n/a", "n/a", "n/a", "n/a"]
    oldest = next(line for line in lines if line.startswith("  v1.0.0"))
    assert oldest.split() == ["v1.0.0", "?", "-"]
    assert "  v1.0.0: pipelines/churn/reports/candidates/ not found" in lines
    assert "  v1.1.0 own: validated on the training split, which is optimistic" in lines
    assert "  v1.1.0 tree: validated by 5-fold cross-validation on the training split" in lines
    assert render_candidates({"lifecycles": []}) == "no lifecycles\n"
