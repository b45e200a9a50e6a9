"""``mllc preview`` end to end: real Git, real DVC, real training, a real local server.

One repository is applied once for the module (iris@v1.0.0 serving in ``staging``);
each test works on a copy, on a branch that changes the spec, and checks that the
user's checkout (HEAD, index, working tree, branches, tags, worktrees) and the running
server are exactly as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mllc.registry import list_versions
from tests.helpers_repo import (
    copy_repo,
    dump_spec,
    edit_spec,
    fast_spec,
    git,
    make_fresh_repo,
    md5_file,
    mllc,
    mllc_popen,
    processes_in,
    set_gate,
    set_param,
    wait_until_gone,
)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _servers(repo: Path) -> dict[str, str]:
    """The local servers' state files (pid, port, version): what 'running' means."""
    return {
        p.relative_to(repo).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((repo / ".mllc" / "serve").rglob("server-*.json"))
    }


def _stop_servers(repo: Path) -> None:
    for text in _servers(repo).values():
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.kill(json.loads(text)["pid"], signal.SIGKILL)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    spec = fast_spec()
    spec["environments"] = {"staging": {"target": "local", "model": "latest", "port": _free_port()}}
    repo = make_fresh_repo(tmp_path_factory.mktemp("preview") / "repo", dump_spec(spec))
    mllc("apply", "--auto-approve", cwd=repo)
    yield repo
    _stop_servers(repo)


def _snapshot(repo: Path) -> dict[str, Any]:
    """Everything preview must leave as it was."""
    alive = {}
    for name, text in _servers(repo).items():
        pid = json.loads(text)["pid"]
        alive[name] = (text, Path(f"/proc/{pid}").exists())
    status = git("status", "--porcelain", "--ignored", "--untracked-files=all", cwd=repo)
    # the shared DVC cache grows (content-addressed outputs, the run cache), and
    # .mllc/ holds plan's file-hash cache: the rest of the checkout must not change
    shared = ("!! .dvc/cache/", "!! .dvc/tmp/", "!! .mllc/")
    outputs = sorted((repo / "pipelines").rglob("*"))
    return {
        "head": git("rev-parse", "HEAD", cwd=repo),
        "branch": git("symbolic-ref", "-q", "HEAD", cwd=repo, check=False),
        "status": [line for line in status.splitlines() if not line.startswith(shared)],
        "outputs": {p.as_posix(): md5_file(p) for p in outputs if p.is_file()},
        "index": git("ls-files", "-s", "--debug", cwd=repo),
        "refs": git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo),
        "worktrees": git("worktree", "list", "--porcelain", cwd=repo),
        "servers": alive,
        "spec": (repo / "specs" / "iris.yaml").read_text(encoding="utf-8"),
    }


def _branch(base: Path, dst: Path, name: str) -> Path:
    repo = copy_repo(base, dst)
    git("checkout", "-q", "-b", name, cwd=repo)
    return repo


def _preview(repo: Path, *args: str) -> tuple[int, dict[str, Any], str, float]:
    started = time.monotonic()
    proc = mllc("preview", "--format", "json", *args, cwd=repo, check=False)
    seconds = time.monotonic() - started
    data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, data, proc.stderr, seconds


def test_param_change_previews_metrics_and_deltas_and_a_second_run_runs_nothing(
    base: Path, tmp_path: Path
) -> None:
    repo = _branch(base, tmp_path / "repo", "more-trees")
    edit_spec(repo, set_param("forest", "n_estimators", 30), commit="forest: 30 trees")
    before = _snapshot(repo)
    [registered] = list_versions(repo, "iris")

    code, data, err, _ = _preview(repo, "--detailed-exitcode")
    assert code == 2, err  # passes its gates, would register a new version
    assert "RUNS the specs' training code" in err
    assert data["format_version"] == "1"
    assert data["commit"] == before["head"]
    [iris] = data["lifecycles"]
    assert iris["verdict"] == "pass" and iris["categories"] == ["retrain"]
    assert iris["new_version"] == "v1.1.0" and iris["registered_as"] is None
    assert {c["name"] for c in iris["candidates"]} == {"logreg", "forest"}
    assert [c["name"] for c in iris["candidates"] if c["selected"]] == [iris["selected"]]
    assert all(g["passed"] and g["value"] is not None for g in iris["gates"])
    [staging] = iris["environments"]
    assert staging["environment"] == "staging" and staging["version"] == registered.version
    assert staging["deploy"] is True
    old = registered.metrics["test"]
    deltas = {d["metric"]: d for d in staging["deltas"]}
    assert set(deltas) == set(old) & set(iris["test"])
    for metric, d in deltas.items():
        assert d["old"] == old[metric] and d["new"] == iris["test"][metric]
        assert d["delta"] == pytest.approx(d["new"] - d["old"])
        if d["delta"]:  # the direction decides: a lower log_loss is better
            lower_better = metric == "log_loss"
            assert d["better"] is ((d["delta"] < 0) == lower_better)
    assert iris["data"] is None  # data and cleaning unchanged
    outcomes = {s["stage"]: s["outcome"] for s in iris["stages"]}
    assert outcomes["train@forest"] == "ran" and outcomes["train@logreg"] == "unchanged"
    assert "Running stage 'pipelines/iris/dvc.yaml:train@forest'" in err
    assert _snapshot(repo) == before
    assert not (repo / ".mllc" / "preview").exists()

    # the same commit again: every stage is restored from the cache, none runs
    code, again, err, _ = _preview(repo, "--detailed-exitcode")
    assert code == 2, err
    assert "Running stage" not in err
    assert "Stage 'pipelines/iris/dvc.yaml:train@forest' is cached" in err
    [iris2] = again["lifecycles"]
    assert {s["outcome"] for s in iris2["stages"]} <= {"cached", "unchanged"}
    assert iris2["test"] == iris["test"] and iris2["model_md5"] == iris["model_md5"]
    # (that nothing ran is the claim; its speed is the benchmarks' business: with warm
    # stages a retrain of this spec costs about what the restore does)
    assert _snapshot(repo) == before


def test_a_retrained_model_failing_a_gate_exits_1_with_the_numbers(
    base: Path, tmp_path: Path
) -> None:
    repo = _branch(base, tmp_path / "repo", "keep-duplicates")

    def change(spec: dict[str, Any]) -> None:
        spec["data"]["cleaning"]["duplicates"] = "keep"
        set_gate("accuracy >= 0.9", "accuracy >= 0.999")(spec)

    edit_spec(repo, change, commit=None)  # uncommitted: the working tree's spec is previewed
    before = _snapshot(repo)

    code, data, err, _ = _preview(repo)
    assert code == 1, err
    [iris] = data["lifecycles"]
    assert data["uncommitted_specs"] == ["specs/iris.yaml"]
    accuracy = iris["test"]["accuracy"]
    assert accuracy < 0.999
    assert f"accuracy {accuracy:.4g} < 0.999 (gate: accuracy >= 0.999)" in err
    assert iris["verdict"] == "fail"
    [gate] = [g for g in iris["gates"] if not g["passed"]]
    assert gate["gate"] == "accuracy >= 0.999" and gate["value"] == accuracy
    [staging] = iris["environments"]
    assert staging["deploy"] is False and "accuracy >= 0.999" in staging["reason"]
    # keeping duplicates: the data report against v1.0.0's
    assert iris["data"]["base_version"] == "v1.0.0"
    assert iris["data"]["rows_in"] == [150, 150]
    assert iris["data"]["rows_out"] == [149, 150]
    assert iris["data"]["dropped"]["duplicates"] == [1, 0]
    assert _snapshot(repo) == before


def test_timeout_stops_a_stage_that_never_ends_and_leaves_nothing(
    base: Path, tmp_path: Path
) -> None:
    repo = _branch(base, tmp_path / "repo", "endless")

    def change(spec: dict[str, Any]) -> None:
        spec["models"]["endless"] = {"command": "sleep 600"}

    edit_spec(repo, change, commit="a candidate that never ends")
    before = _snapshot(repo)
    code, data, err, seconds = _preview(repo, "--timeout", "15")
    assert code == 1 and data == {}, err
    assert "preview stopped by --timeout 15s: iris: stage 'train-endless' was still running" in err
    assert seconds < 60
    wait_until_gone(repo, timeout=30)  # the sleep and DVC were killed with their group
    assert not processes_in(repo)
    assert _snapshot(repo) == before
    assert not (repo / ".mllc" / "preview").exists()


@pytest.mark.xfail(
    strict=False,
    reason="in two full runs of the suite (make test, two workers) the preview did not exit "
    "after Ctrl-C within 120 s; alone, on two workers and under CPU load it passes: the cause "
    "is not found yet (an open bug, named in the closing note of issue 17)",
)
def test_ctrl_c_stops_a_stage_that_never_ends_and_leaves_nothing(
    base: Path, tmp_path: Path
) -> None:
    repo = _branch(base, tmp_path / "repo", "endless")
    edit_spec(
        repo,
        lambda spec: spec["models"].update(endless={"command": "sleep 600"}),
        commit="a candidate that never ends",
    )
    before = _snapshot(repo)
    # Ctrl-C while the endless stage runs: the same clean end as --timeout
    # (PYTHONFAULTHANDLER: if it hangs, SIGABRT makes it print where it is)
    proc = mllc_popen("preview", cwd=repo, extra_env={"PYTHONFAULTHANDLER": "1"})
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait for the event: DVC has started the endless stage
            if "Running stage 'pipelines/iris/dvc.yaml:train-endless'" in line:
                break
        else:
            raise AssertionError(f"preview ended before the stage started: {proc.wait()}")
        proc.send_signal(signal.SIGINT)
        # read what is left of both pipes while waiting: a full pipe nobody reads would
        # block the preview's last words, and its exit with them
        try:
            _, rest = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            _report_hang(proc, repo)
            raise
        assert proc.returncode == 130, rest
    finally:
        if proc.poll() is None:  # never leave it (and its endless stage) running
            proc.kill()
            proc.wait()
            for pid, _ in processes_in(repo):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    wait_until_gone(repo, timeout=30)
    assert _snapshot(repo) == before
    assert not (repo / ".mllc" / "preview").exists()


def _report_hang(proc: subprocess.Popen[str], repo: Path) -> None:
    """What a preview that did not exit was doing, as a warning pytest shows at the end of
    the run (the test is an expected failure, whose output is not shown): its process tree,
    which processes hold its standard error, and its Python stacks (SIGABRT, faulthandler)."""
    import psutil

    lines = []
    with contextlib.suppress(psutil.Error):
        top = psutil.Process(proc.pid)
        for p in [top, *top.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                lines.append(f"{p.pid} {p.status()} {' '.join(p.cmdline())[:200]}")
    with contextlib.suppress(OSError):
        pipe = os.readlink(f"/proc/{proc.pid}/fd/2")
        holders = []
        for entry in os.listdir("/proc"):
            with contextlib.suppress(OSError):
                if entry.isdigit() and any(
                    os.readlink(f"/proc/{entry}/fd/{fd}") == pipe
                    for fd in os.listdir(f"/proc/{entry}/fd")
                ):
                    holders.append(entry)
        lines.append(f"its stderr ({pipe}) is held by: {' '.join(holders)}")
    lines.append(f"processes in the repository: {processes_in(repo)}")
    os.kill(proc.pid, signal.SIGABRT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode()
    report = "\n".join(["preview did not exit after Ctrl-C:", *lines, err[-8000:]])
    warnings.warn(report, stacklevel=2)


def test_nothing_to_preview_says_so_in_markdown(base: Path) -> None:
    proc = mllc("preview", "--format", "markdown", "--detailed-exitcode", cwd=base, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["<!-- mllc-preview -->", "### mllc preview"]
    assert "Nothing to preview" in proc.stdout and "<details>" not in proc.stdout
