"""The warm stage runner (mllc.stagerun, mllc.stages.warm, mllc.apply.dvc.stage_runner).

Real processes throughout: the runner is started as apply starts it, the stages are run
by the ``mllc`` console script as DVC runs them, with ``MLLC_STAGE_RUNNER`` set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from test_stages import CHURN_CSV, Repo, load_spec, make_repo

from mllc.apply.dvc import stage_runner
from mllc.stagerun import RUNNER_ENV

MLLC = str(Path(sys.executable).parent / "mllc")
OUTPUTS = (
    "data/clean.parquet",
    "data/train.parquet",
    "data/test.parquet",
    "reports/data.json",
    "candidates/boosting.joblib",
    "reports/train/boosting.json",
    "reports/candidates/boosting.json",
    "model.joblib",
    "metrics.json",
    "lineage.json",
)


def churn(root: Path) -> Repo:
    spec = load_spec("churn")
    spec["models"] = {"boosting": spec["models"]["boosting"]}
    spec["models"]["boosting"]["search"]["n_iter"] = 3
    return make_repo(root, spec, {"data/churn.csv": CHURN_CSV})


def stage(repo: Repo, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``mllc stage ARGS`` as DVC runs it (the console script, in the repository root)."""
    return subprocess.run(
        [MLLC, "stage", *args],
        cwd=repo.root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


ALL = (("prepare", "churn"), ("split", "churn"), ("train", "churn", "boosting"),
       ("evaluate", "churn"), ("select", "churn"))  # fmt: skip


@pytest.fixture(scope="module")
def runner() -> Iterator[dict[str, str]]:
    with stage_runner(["sklearn.ensemble.HistGradientBoostingClassifier"]) as env:
        yield env


def test_warm_stages_write_the_bytes_a_cold_run_writes(runner: dict[str, str], tmp_path: Path):
    cold, warm = churn(tmp_path / "cold"), churn(tmp_path / "warm")
    for args in ALL:
        done = stage(cold, {}, *args)
        assert done.returncode == 0, done.stderr
        done = stage(warm, runner, *args)
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith(f"{args[0]}"), done.stderr  # the stage's own progress
    for rel in OUTPUTS:
        assert (cold.dir / rel).read_bytes() == (warm.dir / rel).read_bytes(), rel


def test_a_warm_stage_imports_nothing_heavy_itself(runner: dict[str, str], tmp_path: Path):
    """The work is done in the runner's child: the ``mllc stage`` process imports no
    pandas or scikit-learn (``-X importtime`` lists what this interpreter imported)."""
    repo = churn(tmp_path / "repo")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mllc", "stage", "prepare", "churn"],
        cwd=repo.root,
        env={**os.environ, **runner},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (repo.dir / "data/clean.parquet").is_file()
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "mllc.stagerun" in imported
    assert not imported & {"pandas", "sklearn", "numpy", "pyarrow", "pydantic", "yaml"}


def test_errors_and_exit_status_come_back(runner: dict[str, str], tmp_path: Path) -> None:
    repo = churn(tmp_path / "repo")
    done = stage(repo, runner, "train", "churn", "nosuch")
    assert done.returncode == 1
    assert done.stderr == (
        "error: no candidate 'nosuch' in pipelines/churn/params.yaml (candidates: boosting)\n"
    )
    done = stage(repo, runner, "split", "churn")  # prepare never ran
    assert done.returncode == 1 and "clean.parquet" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_without_a_reachable_runner_the_stage_runs_cold(tmp_path: Path) -> None:
    repo = churn(tmp_path / "repo")
    done = stage(repo, {RUNNER_ENV: str(tmp_path / "no-such.sock")}, "prepare", "churn")
    assert done.returncode == 0, done.stderr
    assert (repo.dir / "data/clean.parquet").is_file()


def _runner_children() -> list[psutil.Process]:
    me = psutil.Process()
    runners = [p for p in me.children() if "mllc.stages.warm" in " ".join(p.cmdline())]
    return [c for r in runners for c in r.children()]


def test_a_killed_stage_client_ends_its_stage(runner: dict[str, str], tmp_path: Path) -> None:
    """DVC killed (a timeout, Ctrl-C): its ``mllc stage`` process dies, and the forked stage
    must not train on alone and write outputs behind the next run's back."""
    spec = load_spec("churn")
    spec["models"] = {"slow": spec["models"]["boosting"]}
    spec["models"]["slow"]["search"]["n_iter"] = 400  # minutes of work: it is killed first
    repo = make_repo(tmp_path / "repo", spec, {"data/churn.csv": CHURN_CSV})
    for args in (("prepare", "churn"), ("split", "churn")):
        assert stage(repo, runner, *args).returncode == 0
    before = set(_runner_children())
    client = subprocess.Popen(
        [MLLC, "stage", "train", "churn", "slow"],
        cwd=repo.root,
        env={**os.environ, **runner},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The event: the runner forked the stage and it took over the client's directory.
        child = None
        while child is None:
            assert client.poll() is None, "the stage ended before it could be killed"
            child = next((c for c in _runner_children() if c not in before and _in(c, repo)), None)
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=60)
        gone, alive = psutil.wait_procs([child], timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
    assert alive == [] and len(gone) == 1
    assert not (repo.dir / "candidates/slow.joblib").exists()


def _in(process: psutil.Process, repo: Repo) -> bool:
    try:
        return Path(process.cwd()) == repo.root
    except psutil.Error:
        return False


def test_no_runner_when_its_socket_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A temporary folder whose path is too long for a Unix socket: stages run cold."""
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr("tempfile.tempdir", None)
    with stage_runner() as env:
        assert env == {}
    assert list(deep.iterdir()) == []  # its folder is removed
    repo = churn(tmp_path / "repo")
    assert stage(repo, env, "prepare", "churn").returncode == 0


def test_a_killed_starter_leaves_no_runner_and_no_socket(tmp_path: Path) -> None:
    """apply killed (SIGKILL) while its runner is up: the runner ends and removes its
    socket and folder itself."""
    code = (
        "import sys\n"
        "from mllc.apply.dvc import stage_runner\n"
        "with stage_runner() as env:\n"
        "    print(env['MLLC_STAGE_RUNNER'], flush=True)\n"
        "    sys.stdin.read()\n"
    )
    starter = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert starter.stdout is not None
    path = Path(starter.stdout.readline().strip())
    assert path.exists()
    # The event that the runner is up and serving: a stage goes through it.
    repo = churn(tmp_path / "repo")
    done = stage(repo, {RUNNER_ENV: str(path)}, "split", "churn")
    assert done.returncode == 1 and "clean.parquet" in done.stderr, done.stderr
    runner = next(
        p for p in psutil.Process(starter.pid).children() if "warm" in " ".join(p.cmdline())
    )
    starter.kill()
    starter.wait(timeout=60)
    gone, alive = psutil.wait_procs([runner], timeout=60)
    assert alive == [] and len(gone) == 1
    assert not path.parent.exists()  # removed by the runner itself (a SIGKILL would not)
