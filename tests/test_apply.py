"""Functional tests of ``mllc plan`` and ``mllc apply`` on real temporary repositories.

Real git, real ``dvc repro``, real training (iris with small models), the real CLI as
subprocesses. One uninterrupted apply of a fresh repo is built once per session
(``helpers_repo.applied_repo``); every test that changes a repo works on a copy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from helpers_repo import (
    DVC_LOCK,
    GENERATED,
    MODEL,
    NAME,
    PIPE,
    ROOT,
    Applied,
    addresses,
    applied_repo,
    assert_registered,
    copy_repo,
    dump_spec,
    edit_spec,
    env,
    executed_stages,
    fast_spec,
    fresh_repo,
    git,
    head,
    journal_entries,
    lock_id_from,
    lock_model_md5,
    make_fresh_repo,
    md5_file,
    mllc,
    plan_json,
    read_spec,
    run,
    runs_of,
    set_gate,
    set_param,
    status_porcelain,
    tag_payload,
    tags,
)

pytestmark = pytest.mark.slow

PLAN_SCHEMA = ROOT / "schemas" / "plan.v1.json"


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Applied:
    return applied_repo(tmp_path_factory)


@pytest.fixture
def work(applied: Applied, tmp_path: Path) -> Path:
    """A private copy of the applied repo, for a test that changes it."""
    return copy_repo(applied.repo, tmp_path / "repo")


# ------------------------------------------------------------------- 1. first apply


def test_first_apply_registers_v1_on_head(applied: Applied) -> None:
    repo = applied.repo
    assert applied.proc.returncode == 0
    assert "registered iris@v1.0.0" in applied.proc.stdout
    assert applied.model_md5, "dvc.lock records no model hash"
    assert tags(repo) == {"iris@v1.0.0"}
    assert_registered(repo, "v1.0.0", at=applied.head, md5=applied.model_md5)
    # the tag pins the commit whose dvc.lock pins the model
    committed_lock = git("show", f"iris@v1.0.0:{DVC_LOCK}", cwd=repo)
    assert applied.model_md5 in committed_lock
    # the model file on disk is the registered one
    assert md5_file(repo / MODEL) == applied.model_md5
    # mllc's own commit: the first commit plus exactly one
    assert applied.commits == 2
    assert git("log", "-1", "--format=%s", cwd=repo).startswith("mllc apply: iris")


def test_first_apply_journals_every_step_in_order(applied: Applied) -> None:
    runs = runs_of(journal_entries(applied.repo))
    assert len(runs) == 1
    (entries,) = runs.values()
    steps = [(e["step"], e["event"]) for e in entries]
    assert steps == [
        (f"{NAME}/{step}", event)
        for step in ("files", "pipeline", "commit", "register")
        for event in ("start", "done")
    ]
    register_done = entries[-1]["detail"]
    assert register_done["version"] == "v1.0.0"
    assert register_done["model_md5"] == applied.model_md5
    assert register_done["commit"] == applied.head


def test_generated_files_get_the_usual_file_mode(applied: Applied) -> None:
    umask = os.umask(0)
    os.umask(umask)
    modes = {p: oct((applied.repo / p).stat().st_mode & 0o777) for p in GENERATED}
    assert modes == {p: oct(0o666 & ~umask) for p in GENERATED}


def test_gto_reads_the_registration(applied: Applied) -> None:
    proc = run([str(Path(sys.executable).parent / "gto"), "show", "--json"], applied.repo)
    shown = json.loads(proc.stdout)
    assert shown[NAME]["version"] == "v1.0.0"
    assert shown[NAME]["registered"] is True
    proc = run([str(Path(sys.executable).parent / "gto"), "show", NAME, "--json"], applied.repo)
    versions = {v["version"]: v for v in json.loads(proc.stdout)}
    assert set(versions) == {"v1.0.0"}
    assert versions["v1.0.0"]["commit_hexsha"] == applied.head


def test_first_apply_leaves_a_clean_tree_and_an_empty_plan(applied: Applied) -> None:
    assert status_porcelain(applied.repo) == ""
    assert not (applied.repo / ".mllc" / "lock").exists()
    proc = mllc("plan", "--detailed-exitcode", cwd=applied.repo, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No changes" in proc.stdout


def test_second_apply_does_nothing(applied: Applied, work: Path) -> None:
    journal_before = journal_entries(work)
    proc = mllc("apply", "--auto-approve", cwd=work)
    assert "No changes" in proc.stdout
    assert "Running stage" not in proc.stdout
    assert head(work) == applied.head
    assert tags(work) == {"iris@v1.0.0"}
    assert journal_entries(work) == journal_before  # no step ran
    assert status_porcelain(work) == ""


# --------------------------------------------------------- 2. reproducible from the tag


def test_clean_clone_at_the_tag_reproduces_the_registered_model(
    applied: Applied, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(applied.repo), str(clone)], tmp_path)
    git("checkout", "-q", "iris@v1.0.0", cwd=clone)
    assert not (clone / ".dvc" / "cache").exists(), "the clone must start without a DVC cache"
    assert not (clone / MODEL).exists()
    run([sys.executable, "-m", "dvc", "repro", f"{PIPE}/dvc.yaml"], clone)
    registered = tag_payload(clone, "iris@v1.0.0")["model_md5"]
    assert md5_file(clone / MODEL) == registered


# ------------------------------------------------------ 3. one candidate's param change


def _selected(repo: Path) -> str:
    return str(json.loads((repo / PIPE / "metrics.json").read_text(encoding="utf-8"))["model"])


def _candidates(repo: Path) -> list[str]:
    return list(read_spec(repo)["models"])


@pytest.fixture(scope="module")
def forest_changed(applied: Applied, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """forest n_estimators 10 -> 20, committed, not applied (read-only)."""
    repo = copy_repo(applied.repo, tmp_path_factory.mktemp("forest") / "repo")
    edit_spec(repo, set_param("forest", "n_estimators", 20), commit="forest: 20 trees")
    return repo


def test_plan_of_a_param_change_names_only_that_candidate(forest_changed: Path) -> None:
    plan = plan_json(forest_changed)
    stages = addresses(plan, "stage")
    assert "iris/stage/train@forest" in stages
    for untouched in ("train@logreg", "prepare", "split"):
        assert f"iris/stage/{untouched}" not in stages, stages
    (train,) = [c for c in plan["changes"] if c["address"] == "iris/stage/train@forest"]
    assert train["category"] == "retrain"
    assert any(
        "models.forest.params.n_estimators" in r and "10 → 20" in r for r in train["reasons"]
    ), train["reasons"]
    human = mllc("plan", cwd=forest_changed).stdout
    assert "models.forest.params.n_estimators 10 → 20" in human


@pytest.fixture(scope="module")
def forest_applied(
    applied: Applied, forest_changed: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    repo = copy_repo(forest_changed, tmp_path_factory.mktemp("forest-applied") / "repo")
    proc = mllc("apply", "--auto-approve", cwd=repo)
    return repo, proc


def test_param_change_registers_the_next_version_only_for_a_new_model_hash(
    applied: Applied, forest_applied: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    repo, proc = forest_applied
    ran = executed_stages(proc.stdout)
    assert "train@forest" in ran
    assert not ran & {"prepare", "split", "train@logreg"}, ran
    new_md5 = lock_model_md5(repo)
    assert new_md5 and md5_file(repo / MODEL) == new_md5
    if new_md5 != applied.model_md5:
        assert tags(repo) == {"iris@v1.0.0", "iris@v1.1.0"}
        assert_registered(repo, "v1.1.0", at=head(repo), md5=new_md5)
        assert "registered iris@v1.1.0" in proc.stdout
    else:
        assert tags(repo) == {"iris@v1.0.0"}
    # v1.0.0 is untouched: same commit, same model
    assert_registered(repo, "v1.0.0", at=applied.head, md5=str(applied.model_md5))
    assert status_porcelain(repo) == ""
    assert mllc("plan", "--detailed-exitcode", cwd=repo, check=False).returncode == 0


@pytest.fixture(scope="module")
def unselected_applied(
    applied: Applied, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str], str]:
    """A param change of the candidate that is NOT selected, applied."""
    repo = copy_repo(applied.repo, tmp_path_factory.mktemp("unselected") / "repo")
    selected = _selected(repo)
    other = next(c for c in _candidates(repo) if c != selected)
    # make the other candidate weaker still, so the selection cannot move to it
    change = set_param("forest", "n_estimators", 3) if other == "forest" else None
    if change is None:
        change = set_param(other, "C", 0.001)
    edit_spec(repo, change, commit=f"{other}: weaker")
    proc = mllc("apply", "--auto-approve", cwd=repo)
    return repo, proc, selected


def test_param_change_of_the_unselected_candidate_registers_nothing(
    applied: Applied,
    unselected_applied: tuple[Path, subprocess.CompletedProcess[str], str],
) -> None:
    repo, proc, selected = unselected_applied
    if _selected(repo) != selected:
        pytest.fail(
            f"construction failed: the selection moved from {selected} to {_selected(repo)}"
        )
    assert lock_model_md5(repo) == applied.model_md5, "same selected model, same hash"
    assert tags(repo) == {"iris@v1.0.0"}
    assert "iris@v1.1.0" not in proc.stdout
    # the retrained candidate's dvc.lock is committed, without a version
    assert git("rev-list", "--count", "HEAD", cwd=repo) == str(applied.commits + 2)
    assert status_porcelain(repo) == ""
    assert mllc("plan", "--detailed-exitcode", cwd=repo, check=False).returncode == 0


def test_apply_does_not_claim_to_register_an_existing_version(
    unselected_applied: tuple[Path, subprocess.CompletedProcess[str], str],
) -> None:
    """Found while writing this suite (apply printed 'registered iris@v1.0.0' for a hash
    registered long before); fixed in Executor.register."""
    repo, proc, _ = unselected_applied
    assert tags(repo) == {"iris@v1.0.0"}
    assert "registered iris@v1.0.0" not in proc.stdout, proc.stdout
    assert "Apply complete." in proc.stdout


# ------------------------------------------------------------------------ 4. gate change


def test_gate_change_re_evaluates_without_running_a_stage(applied: Applied, work: Path) -> None:
    lock_before = (work / DVC_LOCK).read_bytes()
    edit_spec(work, set_gate("accuracy >= 0.9", "accuracy >= 0.95"), commit=None)
    plan = plan_json(work)
    changes = [c for c in plan["changes"] if c["action"] != "no-op"]
    assert changes, "a gate change must show in the plan"
    assert {c["category"] for c in changes} == {"re-evaluate"}, changes
    assert not addresses(plan, "stage") and not addresses(plan, "model")
    (gates,) = [c for c in changes if c["kind"] == "gates"]
    assert any("accuracy >= 0.95" in r for r in gates["reasons"])

    proc = mllc("apply", "--auto-approve", cwd=work)
    assert "Running stage" not in proc.stdout and "is cached" not in proc.stdout
    assert (work / DVC_LOCK).read_bytes() == lock_before
    assert tags(work) == {"iris@v1.0.0"}
    # one commit: the spec and the lifecycle record, nothing else
    changed = set(git("show", "--name-only", "--format=", "HEAD", cwd=work).split())
    assert changed == {f"specs/{NAME}.yaml", f"{PIPE}/lifecycle.yaml"}
    assert git("rev-parse", "HEAD~1", cwd=work) == applied.head
    assert status_porcelain(work) == ""
    after = mllc("plan", "--detailed-exitcode", cwd=work, check=False)
    assert after.returncode == 0 and "No changes" in after.stdout


# ----------------------------------------------------------------------- 5. JSON plan


def test_plan_json_is_the_versioned_contract(forest_changed: Path) -> None:
    proc = mllc("plan", "--json", "--detailed-exitcode", cwd=forest_changed, check=False)
    assert proc.returncode == 2, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["format_version"] == "1"
    assert plan["changes"]
    for change in plan["changes"]:
        assert isinstance(change["address"], str) and change["address"].startswith(f"{NAME}/")
        assert change["action"] in ("create", "update", "replace", "delete", "run", "no-op")
        assert change["category"] in ("retrain", "re-evaluate", "redeploy", "metadata")
        assert isinstance(change["reasons"], list) and change["reasons"]
        assert all(isinstance(r, str) and r for r in change["reasons"])
    human = mllc("plan", "--detailed-exitcode", cwd=forest_changed, check=False)
    assert human.returncode == 2


def test_plan_json_without_changes_exits_0(applied: Applied) -> None:
    proc = mllc("plan", "--json", "--detailed-exitcode", cwd=applied.repo, check=False)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert [c for c in plan["changes"] if c["action"] != "no-op"] == []


def test_plan_json_validates_against_the_published_schema(forest_changed: Path) -> None:
    # Committed with the code (make docs writes it): missing is a failure, never a skip.
    assert PLAN_SCHEMA.is_file(), f"{PLAN_SCHEMA.relative_to(ROOT)} is missing: run make docs"
    schema = json.loads(PLAN_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(plan_json(forest_changed), schema)


# ----------------------------------------------------------------------- 6. saved plans


def test_saved_plan_applies_without_confirmation(applied: Applied, work: Path, tmp_path: Path):
    edit_spec(work, set_gate("accuracy >= 0.9", "accuracy >= 0.95"), commit="stricter gate")
    saved = tmp_path / "p.json"
    proc = mllc("plan", "--out", str(saved), cwd=work)
    assert f"mllc apply {saved}" in proc.stdout
    assert json.loads(saved.read_text())["binding"]["git_commit"] == head(work)
    proc = mllc("apply", str(saved), cwd=work)  # stdin is not a terminal: no prompt
    assert "Apply complete" in proc.stdout
    assert "accuracy >= 0.95" in (work / PIPE / "lifecycle.yaml").read_text(encoding="utf-8")
    assert status_porcelain(work) == ""
    assert mllc("plan", "--detailed-exitcode", cwd=work, check=False).returncode == 0


def _register_elsewhere(repo: Path) -> str:
    """Another process registers iris@v1.1.0 (a made-up model) at the first commit."""
    first = git("rev-list", "--max-parents=0", "HEAD", cwd=repo)
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from mllc.registry import register
        print(register(Path("."), "iris", "{first}", "0123456789abcdef0123456789abcdef",
                       {{}}, {{}}).version)
        """
    )
    return run([sys.executable, "-c", code], repo).stdout.strip()


@pytest.mark.parametrize("moved", ["spec", "tag", "head"])
def test_stale_saved_plan_is_refused(moved: str, work: Path, tmp_path: Path) -> None:
    edit_spec(work, set_gate("accuracy >= 0.9", "accuracy >= 0.95"), commit="stricter gate")
    saved = tmp_path / "p.json"
    mllc("plan", "--out", str(saved), cwd=work)
    if moved == "spec":
        edit_spec(work, set_gate("f1_macro >= 0.85", "f1_macro >= 0.8"), commit=None)
        expected = f"spec specs/{NAME}.yaml changed"
    elif moved == "tag":
        assert _register_elsewhere(work) == "v1.1.0"
        expected = "registry tag iris@v1.1.0 added"
    else:
        git("commit", "-q", "--allow-empty", "-m", "someone else's commit", cwd=work)
        expected = "Git commit"
    before = (head(work), tags(work), (work / PIPE / "lifecycle.yaml").read_bytes())
    journal_before = journal_entries(work)

    proc = mllc("apply", str(saved), cwd=work, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "stale" in proc.stderr and expected in proc.stderr, proc.stderr
    after = (head(work), tags(work), (work / PIPE / "lifecycle.yaml").read_bytes())
    assert after == before, "a refused plan must apply nothing"
    assert journal_entries(work) == journal_before


def test_saved_plan_is_stale_when_gto_takes_a_version_name(work: Path, tmp_path: Path) -> None:
    git("tag", "-d", "iris@v1.0.0", cwd=work)  # built and committed, not registered
    plan = plan_json(work)
    (model,) = [c for c in plan["changes"] if c["address"] == "iris/model"]
    assert model["after"] == "v1.0.0"
    saved = tmp_path / "p.json"
    mllc("plan", "--out", str(saved), cwd=work)
    gto = str(Path(sys.executable).parent / "gto")
    first = git("rev-list", "--max-parents=0", "HEAD", cwd=work)
    run([gto, "register", NAME, first, "--version", "v3.0.0"], work)
    proc = mllc("apply", str(saved), cwd=work, check=False)
    registered = tags(work) - {"iris@v3.0.0"}
    assert proc.returncode == 1 and "stale" in proc.stderr, (
        f"applied a plan that promised v1.0.0; tags now {sorted(registered)}"
    )


def test_saved_plan_is_checked_again_after_waiting_for_the_lock(work: Path, tmp_path: Path) -> None:
    edit_spec(work, set_gate("accuracy >= 0.9", "accuracy >= 0.95"), commit="stricter gate")
    saved = tmp_path / "p.json"
    mllc("plan", "--out", str(saved), cwd=work)
    holder = _hold_lock(
        work,
        then="subprocess.run(['git', 'commit', '-q', '--allow-empty', '-m', 'moved'], check=True)",
        seconds=2.0,
    )
    try:
        proc = mllc("apply", str(saved), "--lock-timeout", "30", cwd=work, check=False)
    finally:
        _stop(holder)
    assert git("log", "-1", "--format=%s", cwd=work) == "moved", "the stale plan was applied"
    assert proc.returncode == 1 and "stale" in proc.stderr


# ------------------------------------------------------------------------- 7. --target


def test_target_limits_the_plan(forest_changed: Path) -> None:
    plan = plan_json(forest_changed, "--target", "iris/stage/train@forest")
    assert addresses(plan) == ["iris/stage/train@forest"]
    assert plan["target"] == "iris/stage/train@forest"
    assert any("--target" in w for w in plan["warnings"])
    human = mllc("plan", "--target", "iris/stage/train@forest", cwd=forest_changed).stdout
    assert "Warning" in human and "train@logreg" not in human and "iris/model" not in human
    wrong = mllc("plan", "--target", "nosuch/stage/x", cwd=forest_changed, check=False)
    assert wrong.returncode == 1 and "nosuch" in wrong.stderr


# ---------------------------------------------------------------------------- 8. lock


def _hold_lock(repo: Path, seconds: float, then: str = "") -> subprocess.Popen[str]:
    """A process that takes the apply lock, prints its id, sleeps, runs ``then``, releases."""
    code = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from pathlib import Path
        from mllc.apply.lock import acquire
        handle = acquire(Path("."), "test holder")
        print(handle.info.id, flush=True)
        time.sleep({seconds})
        {then}
        handle.release()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=repo,
        env=env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, "the lock holder did not start"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


@pytest.fixture
def gate_changed(work: Path) -> Path:
    edit_spec(work, set_gate("accuracy >= 0.9", "accuracy >= 0.95"), commit="stricter gate")
    return work


def test_apply_fails_at_once_naming_the_lock_holder(gate_changed: Path) -> None:
    repo = gate_changed
    record = (repo / PIPE / "lifecycle.yaml").read_bytes()
    holder = _hold_lock(repo, seconds=60)
    try:
        started = time.monotonic()
        proc = mllc("apply", "--auto-approve", cwd=repo, check=False)
        elapsed = time.monotonic() - started
    finally:
        _stop(holder)
    assert proc.returncode == 1
    assert f"pid {holder.pid}" in proc.stderr and "locked by" in proc.stderr, proc.stderr
    assert elapsed < 15, f"took {elapsed:.1f} s: it must not wait without --lock-timeout"
    assert (repo / PIPE / "lifecycle.yaml").read_bytes() == record, "nothing may be applied"


def test_apply_waits_for_the_lock_with_a_timeout(gate_changed: Path) -> None:
    repo = gate_changed
    holder = _hold_lock(repo, seconds=2.5)
    try:
        started = time.monotonic()
        proc = mllc("apply", "--auto-approve", "--lock-timeout", "20", cwd=repo, check=False)
        elapsed = time.monotonic() - started
    finally:
        _stop(holder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert holder.returncode == 0
    assert elapsed >= 1.0, "it cannot have waited for the holder"
    assert "Apply complete" in proc.stdout
    assert status_porcelain(repo) == ""


def test_lock_of_a_killed_holder_is_stale_until_force_unlock(gate_changed: Path) -> None:
    repo = gate_changed
    holder = _hold_lock(repo, seconds=60)
    lock = json.loads((repo / ".mllc" / "lock").read_text())
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)

    proc = mllc("apply", "--auto-approve", cwd=repo, check=False)
    assert proc.returncode == 1
    assert "stale lock" in proc.stderr and f"pid {holder.pid}" in proc.stderr, proc.stderr
    assert lock_id_from(proc.stderr) == lock["id"]
    # the lock is reported, never broken automatically, also with a timeout
    again = mllc("apply", "--auto-approve", "--lock-timeout", "5", cwd=repo, check=False)
    assert again.returncode == 1 and "stale lock" in again.stderr

    wrong = mllc("force-unlock", "not-the-id", cwd=repo, check=False)
    assert wrong.returncode == 1 and (repo / ".mllc" / "lock").exists()
    unlocked = mllc("force-unlock", lock["id"], cwd=repo)
    assert f"pid {holder.pid}" in unlocked.stdout
    assert not (repo / ".mllc" / "lock").exists()
    mllc("apply", "--auto-approve", cwd=repo)
    assert status_porcelain(repo) == ""


# ------------------------------------------------------------------- 9. deleting a lifecycle


def test_deleting_the_last_spec_is_possible(work: Path) -> None:
    git("rm", "-q", f"specs/{NAME}.yaml", cwd=work)
    git("commit", "-qm", "retire iris", cwd=work)
    proc = mllc("plan", "--detailed-exitcode", cwd=work, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "iris/lifecycle" in proc.stdout


@pytest.fixture
def iris_retired(work: Path) -> Path:
    """iris's spec removed and committed; another lifecycle's spec stays (unapplied)."""
    other = fast_spec()
    other["metadata"]["name"] = "other"
    (work / "specs" / "other.yaml").write_text(dump_spec(other), encoding="utf-8")
    git("rm", "-q", f"specs/{NAME}.yaml", cwd=work)
    git("add", "specs/other.yaml", cwd=work)
    git("commit", "-qm", "retire iris", cwd=work)
    return work


def test_delete_is_planned_and_keeps_registry_history(iris_retired: Path) -> None:
    repo = iris_retired
    plan = plan_json(repo)
    deletes = [c for c in plan["changes"] if c["lifecycle"] == NAME]
    assert deletes and all(c["action"] == "delete" for c in deletes), deletes
    assert f"{NAME}/lifecycle" in [c["address"] for c in deletes]
    human = mllc("plan", cwd=repo).stdout
    assert "- iris/lifecycle" in human and "registry history" in human


def test_delete_needs_confirmation_then_removes_and_commits(
    applied: Applied, iris_retired: Path
) -> None:
    repo = iris_retired
    refused = mllc("apply", "--target", NAME, cwd=repo, check=False)  # stdin: /dev/null
    assert refused.returncode == 1
    assert "confirmation" in refused.stderr, refused.stderr
    assert (repo / PIPE / "dvc.yaml").exists(), "nothing may be deleted without confirmation"

    before = head(repo)
    proc = mllc("apply", "--auto-approve", "--target", NAME, cwd=repo)
    assert "removed pipelines/iris/" in proc.stdout
    assert not (repo / PIPE / "dvc.yaml").exists()
    assert git("rev-parse", "HEAD~1", cwd=repo) == before
    assert git("ls-tree", "-r", "--name-only", "HEAD", "--", PIPE, cwd=repo) == ""
    assert_registered(repo, "v1.0.0", at=applied.head, md5=str(applied.model_md5))
    assert status_porcelain(repo) == ""
    plan = plan_json(repo)
    assert [c for c in plan["changes"] if c["lifecycle"] == NAME] == []


# --------------------------------------------------------------------------- 10. status


def test_status_shows_version_metric_and_gates(applied: Applied) -> None:
    metrics = json.loads((applied.repo / PIPE / "metrics.json").read_text(encoding="utf-8"))
    metric = metrics["metric"]
    value = metrics["test"][metric]
    text = mllc("status", cwd=applied.repo).stdout
    assert "v1.0.0" in text and applied.head[:10] in text
    assert f"{metric} {value:.4g}" in text
    assert "gates pass" in text

    report = json.loads(mllc("status", "--json", cwd=applied.repo).stdout)
    (lc,) = report["lifecycles"]
    assert lc["name"] == NAME and lc["metric"] == metric
    assert lc["pipeline"]["fresh"] is True
    (version,) = lc["versions"]
    assert version["version"] == "v1.0.0"
    assert version["commit"] == applied.head
    assert version["model_md5"] == applied.model_md5
    assert version["test"][metric] == value
    assert version["gates_pass"] is True
    gates = read_spec(applied.repo)["gates"]
    assert len(version["gates"]) == len(gates)
    for gate, result in zip(gates, version["gates"], strict=True):
        assert gate.split()[0] in result


def test_status_shows_a_failing_gate(work: Path) -> None:
    edit_spec(work, set_gate("accuracy >= 0.9", "accuracy >= 0.999"), commit=None)
    report = json.loads(mllc("status", "--json", cwd=work).stdout)
    (version,) = report["lifecycles"][0]["versions"]
    assert version["gates_pass"] is False
    assert "gates FAIL" in mllc("status", cwd=work).stdout


# ---------------------------------------------------------------------------- 11. drift


def test_hand_edit_of_a_generated_file_is_drift_and_apply_restores_it(
    applied: Applied, work: Path
) -> None:
    params = work / PIPE / "params.yaml"
    original = params.read_bytes()
    data = yaml.safe_load(original)
    data["models"]["logreg"]["params"]["C"] = 0.5
    params.write_text("# generated by mllc — edited by hand\n" + yaml.safe_dump(data))
    plan = plan_json(work)
    (change,) = [c for c in plan["changes"] if c["address"] == f"iris/file/{PIPE}/params.yaml"]
    assert any("drift" in r for r in change["reasons"]), change
    assert not addresses(plan, "stage"), "drift alone retrains nothing"

    proc = mllc("apply", "--auto-approve", cwd=work)
    assert "Running stage" not in proc.stdout
    assert params.read_bytes() == original
    assert head(work) == applied.head, "restoring a committed file needs no commit"
    assert status_porcelain(work) == ""
    assert mllc("plan", "--detailed-exitcode", cwd=work, check=False).returncode == 0


# --------------------------------------------------------------------------- 12. safety


def _with_command_candidate(data: dict[str, Any]) -> None:
    data["models"]["own"] = {"command": "touch PWNED"}


def test_plan_runs_no_spec_code(tmp_path: Path) -> None:
    data = fast_spec()
    _with_command_candidate(data)
    repo = make_fresh_repo(tmp_path / "repo", dump_spec(data))
    proc = mllc("plan", "--detailed-exitcode", cwd=repo, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "train-own" in proc.stdout
    mllc("plan", "--json", cwd=repo)
    mllc("status", cwd=repo)
    assert not list(repo.rglob("PWNED")) and not (tmp_path / "PWNED").exists()


def test_plan_runs_no_spec_code_on_an_applied_repo(work: Path) -> None:
    edit_spec(work, _with_command_candidate, commit=None)
    proc = mllc("plan", "--detailed-exitcode", cwd=work, check=False)
    assert proc.returncode == 2 and "train-own" in proc.stdout, proc.stderr
    assert not list(work.rglob("PWNED"))


HEAVY = ("sklearn", "joblib")


def test_plan_loads_no_model_library(applied: Applied, fresh: Path, tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import json, sys
        from mllc import api
        planned = api.plan(["specs"])
        print(json.dumps({"changes": len(planned.plan.changes),
                          "heavy": sorted(m for m in sys.modules
                                          if m.split(".")[0] in ("sklearn", "joblib"))}))
        """
    )
    for repo in (applied.repo, copy_repo(fresh, tmp_path / "fresh")):
        out = json.loads(run([sys.executable, "-c", code], repo).stdout)
        assert out["heavy"] == [], f"plan imported {out['heavy']} in {repo.name}"
    proc = run([sys.executable, "-X", "importtime", "-m", "mllc", "plan"], applied.repo)
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    assert "mllc" in imported or "typer" in imported, "importtime printed nothing?"
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield fresh_repo(tmp_path_factory)
