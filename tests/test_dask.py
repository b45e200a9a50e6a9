"""The Dask compute backend, against a real scheduler and two worker processes on 127.0.0.1.

The same spec is trained with ``compute.backend: local`` (no compute section) and with
``dask`` (the scheduler from an environment variable): the stages' outputs, the model
included, are the same bytes, through ``mllc stage`` and through ``mllc apply`` (whose
stages run warm, forked from the stage runner). ``mllc score --backend dask`` writes
the local backend's bytes. The errors (the variable unset, the scheduler unreachable,
Dask not installed) are one line each, without a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mllc.compile import compile_spec, spec_sha256
from mllc.spec.models import Lifecycle
from mllc.verify.compare import check_payload
from tests.helpers_repo import (
    BIN,
    copy_repo,
    dump_spec,
    env,
    fast_spec,
    lock_model_md5,
    make_fresh_repo,
    tag_payload,
)

pytestmark = pytest.mark.slow

SCHEDULER_ENV = "MLLC_TEST_DASK_SCHEDULER"
STARTUP = 120  # seconds for the scheduler and the workers to come up: a hang fails the test


def _dask(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(BIN / "dask"), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env(),
        )


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1: its address."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    procs = [
        _dask(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(info),
            log=folder / "scheduler.log",
        )
    ]
    try:
        for i in range(2):
            procs.append(
                _dask(
                    "worker",
                    "--scheduler-file",
                    str(info),
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--local-directory",
                    str(folder / f"worker-{i}"),
                    log=folder / f"worker-{i}.log",
                )
            )
        # The client waits for the scheduler file (dask polls for it), then for both workers.
        with Client(scheduler_file=str(info), timeout=STARTUP) as client:
            client.wait_for_workers(2, timeout=STARTUP)
            address = client.scheduler.address
        yield str(address)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _run(
    args: list[str], cwd: Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mllc", *args],
        cwd=cwd,
        env={**env(), **(extra or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _searching_spec(compute: dict[str, Any] | None) -> dict[str, Any]:
    """The fast iris spec, its one candidate a forest found by a small grid search (so the
    selected model is the searched one); no validation split, so evaluate cross-validates
    (both of the stages' parallel paths run)."""
    spec = fast_spec()
    del spec["models"]["logreg"]
    spec["models"]["forest"]["search"] = {
        "method": "grid",
        "cv": 3,
        "space": {"max_depth": [2, None]},
    }
    spec["data"]["split"].pop("validation", None)
    if compute is not None:
        spec["compute"] = compute
    return spec


REMOTE = {"backend": "dask", "scheduler": f"env:{SCHEDULER_ENV}"}


def _md5s(repo: Path) -> dict[str, str]:
    """Every output file of the pipeline, by md5 (not the generated files, not the card:
    its commit and dates differ)."""
    root = repo / "pipelines" / "iris"
    skip = {"params.yaml", "dvc.yaml", "dvc.lock", "lifecycle.yaml", ".gitignore", "card.md"}
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip and p.parent.name != "feedback"
    }


@pytest.fixture(scope="module")
def applied(
    tmp_path_factory: pytest.TempPathFactory, scheduler: str
) -> dict[str, tuple[Path, str]]:
    """The same spec applied locally and on the scheduler: (repo, apply's stderr) each."""
    out = {}
    for name, compute in (("local", None), ("dask", REMOTE)):
        repo = make_fresh_repo(
            tmp_path_factory.mktemp(name) / "repo", dump_spec(_searching_spec(compute))
        )
        proc = _ok(_run(["apply", "--auto-approve"], repo, {SCHEDULER_ENV: scheduler}))
        out[name] = (repo, proc.stderr + proc.stdout)
    return out


# ------------------------------------------------------------------ the same bytes


def test_apply_on_a_dask_scheduler_builds_the_local_model_byte_for_byte(
    applied: dict[str, tuple[Path, str]],
) -> None:
    local, dask = applied["local"][0], applied["dask"][0]
    assert lock_model_md5(dask) is not None
    assert lock_model_md5(dask) == lock_model_md5(local)
    outputs = _md5s(dask)
    assert "candidates/forest.joblib" in outputs and "reports/candidates/forest.json" in outputs
    assert outputs == _md5s(local)
    train = json.loads((dask / "pipelines/iris/reports/train/forest.json").read_text())
    assert train["search"]["candidates"] == 2
    candidates = json.loads((dask / "pipelines/iris/reports/candidates/forest.json").read_text())
    assert candidates["validated_on"] == "cv5"  # evaluate's cross-validation ran on Dask too


def test_the_registration_and_status_say_where_training_ran(
    applied: dict[str, tuple[Path, str]],
) -> None:
    local, dask = applied["local"][0], applied["dask"][0]
    payload = tag_payload(dask, "iris@v1.0.0")
    where = f"dask, scheduler from ${SCHEDULER_ENV}"
    assert payload["lineage"]["compute"] == {**REMOTE, "where": where}
    assert "compute" not in tag_payload(local, "iris@v1.0.0")["lineage"]
    status = _ok(_run(["status"], dask)).stdout
    assert f"pipeline: up to date (trains on {where})" in status
    assert f"(trained on {where})" in status
    report = json.loads(_ok(_run(["status", "--json"], local)).stdout)
    assert report["lifecycles"][0]["versions"][0]["trained_on"] == "local"
    assert "trained on" not in _ok(_run(["status"], local)).stdout
    card = _ok(_run(["card", "iris@v1.0.0"], dask)).stdout
    assert "Training ran on" in card and where in card
    local_card = _ok(_run(["card", "iris@v1.0.0"], local)).stdout
    assert "Training ran on" not in local_card and "dask" not in local_card


def test_verify_notes_where_training_ran_and_does_not_compare_it() -> None:
    recorded = {
        "lineage": {"model": "m", "compute": {"backend": "dask", "where": "dask, a local cluster"}},
        "metrics": {"test": {"accuracy": 1.0}},
    }
    findings, notes = check_payload(recorded, {"test": {"accuracy": 1.0}}, {"model": "m"})
    assert findings == []
    assert notes == [
        "trained on dask, a local cluster when registered (not compared: every backend "
        "builds the same bytes)"
    ]
    findings, _ = check_payload(recorded, None, {"model": "other"})
    assert [f.subject for f in findings] == ["lineage"]  # the rest is still compared


def test_apply_on_a_local_cluster_builds_the_local_bytes_and_leaves_nothing_running(
    applied: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """Without a scheduler each stage starts a local cluster of worker processes, here in
    stages forked from apply's warm runner, and closes it: none outlives the apply."""
    import psutil

    compute = {"backend": "dask", "n_jobs": 2}
    repo = make_fresh_repo(tmp_path / "repo", dump_spec(_searching_spec(compute)))
    _ok(_run(["apply", "--auto-approve"], repo))
    assert _md5s(repo) == _md5s(applied["local"][0])
    assert "(trained on dask, a local cluster)" in _ok(_run(["status"], repo)).stdout
    # The cluster's worker processes ran in the repository: none is left there.
    left = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cwd"])
        if p.info["cwd"] and Path(p.info["cwd"]).is_relative_to(repo)
    ]
    assert left == []


def _is_worker(proc: Any) -> bool:
    """A process multiprocessing spawned (how a local cluster starts its workers)."""
    import psutil

    try:
        return "spawn_main" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def test_a_killed_stage_takes_its_local_cluster_with_it(tmp_path: Path) -> None:
    """A stage killed as a killed apply kills it (SIGKILL, no clean-up of its own) leaves
    none of its local cluster's worker processes running."""
    import psutil

    repo = _stage_repo(tmp_path / "repo", {"backend": "dask", "n_jobs": 2})
    stage = subprocess.Popen(
        [sys.executable, "-m", "mllc", "stage", "train", "iris", "forest"],
        cwd=repo,
        env=env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        parent = psutil.Process(stage.pid)
        workers: list[psutil.Process] = []
        # Wait for the event: the cluster's two worker processes exist (they start in
        # seconds; the stage cannot finish its search before they have).
        deadline = time.monotonic() + STARTUP
        while len(workers) < 2:
            assert stage.poll() is None, "the stage ended before its cluster's workers ran"
            assert time.monotonic() < deadline, "the local cluster's workers never started"
            workers = [p for p in parent.children(recursive=True) if _is_worker(p)]
            psutil.wait_procs([parent], timeout=0.05)
        left = parent.children(recursive=True)
        stage.kill()
        stage.wait(timeout=30)
        _, alive = psutil.wait_procs(left, timeout=60)
        assert alive == [], f"left running after the stage was killed: {alive}"
    finally:
        if stage.poll() is None:
            stage.kill()
            stage.wait()


# ------------------------------------------------------------------ plan


def test_plan_names_the_backend_and_changing_it_retrains_nothing(
    applied: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    repo = copy_repo(applied["local"][0], tmp_path / "repo")
    spec_file = repo / "specs" / "iris.yaml"
    data = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    data["compute"] = REMOTE
    spec_file.write_text(dump_spec(data), encoding="utf-8")
    plan = json.loads(_ok(_run(["plan", "--format", "json"], repo)).stdout)
    changes = [c for c in plan["changes"] if c["action"] != "no-op"]
    # params.yaml, and the CI workflow, which now passes the scheduler's variable to the
    # apply and verify jobs: both metadata, nothing retrains.
    assert [(c["address"], c["category"]) for c in changes] == [
        ("iris/file/pipelines/iris/params.yaml", "metadata"),
        ("(repository)/file/.github/workflows/mllc.yml", "metadata"),
    ], changes
    assert any("compute" in r for r in changes[0]["reasons"])
    # A retraining plan says where the search and the cross-validation would run.
    data["models"]["forest"]["params"]["n_estimators"] = 11
    spec_file.write_text(dump_spec(data), encoding="utf-8")
    text = _ok(_run(["plan"], repo, {SCHEDULER_ENV: ""})).stdout
    assert f"search on dask, scheduler from ${SCHEDULER_ENV}" in text
    assert f"cross-validation on dask, scheduler from ${SCHEDULER_ENV}" in text


def test_a_spec_without_compute_compiles_and_hashes_as_before() -> None:
    spec = _searching_spec(None)
    without = Lifecycle.model_validate(spec, strict=False)
    with_compute = Lifecycle.model_validate({**spec, "compute": REMOTE}, strict=False)
    assert "compute" not in without.model_dump(mode="json")
    assert spec_sha256(without) != spec_sha256(with_compute)
    files, dask_files = compile_spec(without, "s.yaml"), compile_spec(with_compute, "s.yaml")
    assert "compute" not in files["pipelines/iris/params.yaml"]
    params = yaml.safe_load(dask_files["pipelines/iris/params.yaml"])
    assert params["compute"] == {**REMOTE, "n_jobs": None}
    # No stage declares it: DVC's view of the pipeline is the same.
    assert dask_files["pipelines/iris/dvc.yaml"] == files["pipelines/iris/dvc.yaml"]


@pytest.mark.parametrize(
    ("compute", "message"),
    [
        ({"backend": "local", "scheduler": "env:X"}, "only used with backend: dask"),
        ({"backend": "dask", "scheduler": "tcp://10.0.0.1:8786"}, "as 'env:NAME'"),
        ({"backend": "dask", "n_jobs": 0}, "greater than or equal to 1"),
        ({"backend": "spark"}, "'local' or 'dask'"),
    ],
)
def test_compute_is_validated(compute: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Lifecycle.model_validate({**_searching_spec(None), "compute": compute}, strict=False)


# ------------------------------------------------------------------ errors


def _stage_repo(root: Path, compute: dict[str, Any]) -> Path:
    repo = make_fresh_repo(root, dump_spec(_searching_spec(compute)))
    _ok(_run(["compile"], repo))
    for stage in ("prepare", "split"):
        _ok(_run(["stage", stage, "iris"], repo))
    return repo


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_scheduler_errors_are_one_line_and_leave_no_output(tmp_path: Path) -> None:
    repo = _stage_repo(tmp_path / "repo", REMOTE)
    unset = _one_line_error(_run(["stage", "train", "iris", "forest"], repo, {SCHEDULER_ENV: ""}))
    assert f"compute.scheduler is env:{SCHEDULER_ENV}, but ${SCHEDULER_ENV} is not set" in unset
    address = f"tcp://127.0.0.1:{_closed_port()}"
    extra = {SCHEDULER_ENV: address, "MLLC_DASK_CONNECT_TIMEOUT": "2"}
    gone = _one_line_error(_run(["stage", "train", "iris", "forest"], repo, extra))
    assert f"train forest: cannot reach the Dask scheduler {address}" in gone
    assert "within 2 s" in gone
    cv = _one_line_error(_run(["stage", "evaluate", "iris"], repo, {SCHEDULER_ENV: ""}))
    assert "is not set" in cv
    assert not (repo / "pipelines/iris/candidates/forest.joblib").exists()


def test_without_the_extra_the_stage_names_what_to_install(tmp_path: Path) -> None:
    repo = _stage_repo(tmp_path / "repo", {"backend": "dask"})
    shadow = tmp_path / "shadow" / "distributed"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed')\n")
    pythonpath = os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])
    line = _one_line_error(
        _run(["stage", "train", "iris", "forest"], repo, {"PYTHONPATH": pythonpath})
    )
    assert line == (
        "error: train forest runs on Dask, which is not installed here: pip install 'mllc[dask]'"
    )
    # validate still accepts the spec: what to install is the stage's (or apply's) to say
    _ok(_run(["validate", "specs"], repo, {"PYTHONPATH": pythonpath}))


# ------------------------------------------------------------------ score


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_on_dask_writes_the_local_bytes(
    applied: dict[str, tuple[Path, str]], scheduler: str, tmp_path: Path, suffix: str
) -> None:
    repo = applied["dask"][0]
    frame = pd.read_parquet(repo / "pipelines/iris/data/train.parquet").drop(columns=["target"])
    frame = pd.concat([frame] * 8, ignore_index=True).astype(object)
    frame.loc[3, "sepal width (cm)"] = "wide"  # a bad row, counted and left out
    data = tmp_path / "in.csv"
    frame.to_csv(data, index=False)
    common = ["score", "iris", "--version", "v1.0.0", "--data", str(data), "--chunk-rows", "100"]
    local, dask = tmp_path / f"local{suffix}", tmp_path / f"dask{suffix}"
    _ok(_run([*common, "--out", str(local)], repo))
    ran = _ok(
        _run(
            [
                *common,
                "--out",
                str(dask),
                "--backend",
                "dask",
                "--scheduler",
                f"env:{SCHEDULER_ENV}",
            ],
            repo,
            {SCHEDULER_ENV: scheduler},
        )
    )
    assert "hash checked) on the Dask workers" in ran.stderr
    assert "1 bad row(s) left out" in ran.stderr
    assert dask.read_bytes() == local.read_bytes()


def test_score_on_dask_refuses_a_model_whose_hash_differs(
    applied: dict[str, tuple[Path, str]], scheduler: str, tmp_path: Path
) -> None:
    repo = copy_repo(applied["dask"][0], tmp_path / "repo")
    md5 = lock_model_md5(repo)
    assert md5 is not None
    cached = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    cached.chmod(0o644)
    cached.write_bytes(cached.read_bytes() + b"\0")
    data = tmp_path / "in.csv"
    pd.read_parquet(repo / "pipelines/iris/data/test.parquet").to_csv(data, index=False)
    out = tmp_path / "out.csv"
    args = ["score", "iris", "--version", "v1.0.0", "--data", str(data), "--out", str(out)]
    extra = ["--backend", "dask", "--scheduler", f"env:{SCHEDULER_ENV}"]
    line = _one_line_error(_run([*args, *extra], repo, {SCHEDULER_ENV: scheduler}))
    assert "refusing to load a model that is not the registered version" in line
    assert not out.exists()
