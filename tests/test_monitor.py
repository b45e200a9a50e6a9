"""mllc monitor end to end, and the loop back to retraining.

A real repository (Git, DVC), real training, a real local server on 127.0.0.1: the
iris lifecycle is applied once per module (staging serves v1.0.0); each test works on
a copy. Batches are built from the pipeline's own splits, shifted where a test needs
drift, so the numbers are real and the verdicts can fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.helpers_repo import dvc
from tests.test_deploy import free_port, mllc, spec_text, stop_all

FEATURE = "petal length (cm)"
REPORT = "monitoring/iris/staging/report.json"
BATCH = "monitoring/iris/staging/batch.parquet"


def monitored_spec(port: int, on_breach: str = "retrain") -> str:
    spec = yaml.safe_load(spec_text(port))
    spec["monitoring"] = {
        "schedule": "0 6 * * *",
        "drift": {"method": "psi", "threshold": 0.2},
        "performance": {"metric": "accuracy", "min": 0.85},
        "on_breach": on_breach,
    }
    return yaml.safe_dump(spec, sort_keys=False)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("monitor") / "repo"
    (path / "specs").mkdir(parents=True)
    (path / "specs" / "iris.yaml").write_text(monitored_spec(free_port()), encoding="utf-8")
    (path / ".gitignore").write_text("/.mllc/\n", encoding="utf-8")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    subprocess.run(["git", "init", "-q"], cwd=path, check=True, env=env)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=path, check=True, env=env)
    _git(path, "add", "-A")
    _git(path, "commit", "-qm", "spec")
    mllc(path, "apply", "--auto-approve")
    stop_all(path)  # each test copies the repo and starts its own server
    yield path


@pytest.fixture
def repo(applied: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the applied repository whose staging runs on a new free port."""
    path = tmp_path / "repo"
    shutil.copytree(applied, path, symlinks=True, ignore=shutil.ignore_patterns("serve"))
    spec = path / "specs" / "iris.yaml"
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data["environments"]["staging"]["port"] = free_port()
    spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    _git(path, "commit", "-qam", "new port")
    mllc(path, "apply", "--auto-approve")  # redeploys v1.0.0 on the new port
    yield path
    stop_all(path)


def split(repo: Path, part: str) -> pd.DataFrame:
    return pd.read_parquet(repo / f"pipelines/iris/data/{part}.parquet")


def write_batch(repo: Path, frame: pd.DataFrame, name: str = "batch.csv") -> str:
    path = repo.parent / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def shifted(repo: Path, labelled: bool = True) -> pd.DataFrame:
    """The training rows with petal length moved up by 1.5 cm: clear drift on one feature."""
    frame = split(repo, "train").copy()
    frame[FEATURE] = frame[FEATURE] + 1.5
    return frame if labelled else frame.drop(columns=["target"])


def report(repo: Path) -> dict[str, Any]:
    data = json.loads((repo / REPORT).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def plan(repo: Path) -> dict[str, Any]:
    proc = mllc(repo, "plan", "--format", "json", check=False)
    assert proc.returncode in (0, 2), proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


# ------------------------------------------------------------------ verdicts


def test_same_distribution_batch_is_no_breach(repo: Path) -> None:
    # Iris has 150 rows: an unchanged population is the training rows resampled (1,000
    # of them: with a 120-row reference, psi over 10 bins needs a large batch to be
    # reliable at 0.2; the 30-row test split is far too small, see below).
    batch = write_batch(repo, split(repo, "train").sample(1000, replace=True, random_state=1))
    proc = mllc(repo, "monitor", "iris", "--env", "staging", "--data", batch, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "iris/staging: no breach" in proc.stdout
    data = report(repo)
    assert data["format_version"] == "1" and data["breach"] is False
    assert data["version"] == "v1.0.0" and data["batch"]["labelled"] is True
    assert {f["name"] for f in data["drift"]["features"]} == {
        c for c in split(repo, "train").columns if c != "target"
    }
    assert data["performance"]["metric"] == "accuracy"
    assert data["performance"]["value"] >= 0.85
    mask = os.umask(0)
    os.umask(mask)
    for name in ("report.json", "report.md", "report.html"):
        written = (repo / "monitoring/iris/staging" / name).stat()
        assert written.st_size > 0
        assert written.st_mode & 0o777 == 0o666 & ~mask  # shareable, like any file
    assert not (repo / BATCH).exists()  # nothing to retrain with
    assert data["warnings"] == []
    # nothing to do: the plan stays empty
    assert mllc(repo, "plan", "--detailed-exitcode", check=False).returncode == 0


def test_a_batch_too_small_for_the_threshold_says_so(repo: Path) -> None:
    batch = write_batch(repo, split(repo, "test"))  # 30 rows
    mllc(repo, "monitor", "iris", "--env", "staging", "--data", batch, check=False)
    (warning,) = [w for w in report(repo)["warnings"] if w.startswith("small batch")]
    assert "with 30 rows" in warning and "false alarms" in warning


def test_report_numbers_match_an_outside_computation(repo: Path) -> None:
    from scipy.stats import ks_2samp

    spec = repo / "specs" / "iris.yaml"
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data["monitoring"]["drift"] = {"method": "ks", "threshold": 0.2}
    spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    frame = shifted(repo, labelled=False).sample(60, random_state=3)
    batch = write_batch(repo, frame, "batch.parquet")
    proc = mllc(repo, "monitor", "iris", "--env", "staging", "--data", batch, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    features = {f["name"]: f for f in report(repo)["drift"]["features"]}
    reference = split(repo, "train")
    for name, feature in features.items():
        expected = ks_2samp(reference[name], frame[name])
        assert feature["statistic"] == "ks"
        assert feature["value"] == pytest.approx(expected.statistic, abs=1e-12)
        assert feature["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert features[FEATURE]["breach"] is True


# ------------------------------------------------------------------ the loop


def test_drift_breach_with_labels_retrains_through_the_plan(repo: Path) -> None:
    frame = shifted(repo)
    batch = write_batch(repo, frame)
    proc = mllc(repo, "monitor", "iris", "--env", "staging", "--data", batch, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    data = report(repo)
    assert data["breach"] is True and data["retrain_data"] == BATCH
    reason = next(r for r in data["reasons"] if r.startswith("drift: "))
    psi = next(f["value"] for f in data["drift"]["features"] if f["name"] == FEATURE)
    assert reason == f"drift: {FEATURE} psi {psi:.2f} > 0.2"
    assert reason in proc.stdout
    assert (repo / BATCH).is_file()

    # The plan retrains, and says why.
    planned = plan(repo)
    by_address = {c["address"]: c for c in planned["changes"]}
    feedback = by_address["iris/data/feedback/staging"]
    assert feedback["category"] == "retrain" and feedback["reasons"][0] == reason
    assert any("as a new DVC-tracked version" in r for r in feedback["reasons"])
    prepare = by_address["iris/stage/prepare"]
    assert any(
        r.startswith("training data gets the labelled batch of staging") for r in prepare["reasons"]
    )
    assert by_address["iris/model"]["action"] == "create"
    text = mllc(repo, "plan", check=False).stdout
    assert reason in text

    # Apply adds the batch as a DVC-tracked file, retrains and registers a new version.
    rows_before = json.loads((repo / "pipelines/iris/reports/data.json").read_text())["rows_in"]
    mllc(repo, "apply", "--auto-approve")
    added = sorted((repo / "pipelines/iris/feedback").glob("*.parquet.dvc"))
    assert len(added) == 1 and data["id"] in added[0].name
    tracked = _git(repo, "ls-files", "pipelines/iris/feedback", "monitoring/iris")
    assert added[0].relative_to(repo).as_posix() in tracked
    assert REPORT in tracked
    assert ".parquet\n" not in tracked + "\n"  # the data is in DVC, never in Git
    assert not (repo / BATCH).exists()
    rows_after = json.loads((repo / "pipelines/iris/reports/data.json").read_text())["rows_in"]
    assert rows_after == rows_before + len(frame)
    tags = _git(repo, "tag", "--list", "iris@*").split()
    assert "iris@v1.1.0" in tags
    # A second plan has nothing left to do: the breach is answered.
    assert mllc(repo, "plan", "--detailed-exitcode", check=False).returncode == 0
    assert _git(repo, "status", "--porcelain", "--", "pipelines", "monitoring") == ""


def test_alert_shows_the_breach_and_changes_nothing(repo: Path) -> None:
    spec = repo / "specs" / "iris.yaml"
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data["monitoring"]["on_breach"] = "alert"
    spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    _git(repo, "commit", "-qam", "alert only")
    mllc(repo, "apply", "--auto-approve")
    batch = write_batch(repo, shifted(repo))
    assert mllc(repo, "monitor", "iris", "--data", batch, check=False).returncode == 2
    assert not (repo / BATCH).exists()  # alert keeps no batch
    proc = mllc(repo, "plan", "--detailed-exitcode", check=False)
    assert proc.returncode == 0, proc.stdout
    assert "Breach: iris/monitoring/staging: breach: drift: petal length (cm) psi" in proc.stdout
    assert "on_breach: alert: nothing changes" in proc.stdout


def test_unlabelled_breach_needs_labels_to_retrain(repo: Path) -> None:
    batch = write_batch(repo, shifted(repo, labelled=False))
    assert mllc(repo, "monitor", "iris", "--data", batch, check=False).returncode == 2
    proc = mllc(repo, "plan", "--detailed-exitcode", check=False)
    assert proc.returncode == 0, proc.stdout
    assert "retraining needs labelled data" in proc.stdout


def test_captured_requests_are_a_batch(repo: Path) -> None:
    rows = split(repo, "test").drop(columns=["target"])
    body = json.dumps({c: rows[c].tolist() for c in rows.columns})
    for _ in range(3):
        mllc(repo, "predict", "iris", "--env", "staging", body)
    proc = mllc(repo, "monitor", "iris", "--env", "staging", "--captured", check=False)
    assert proc.returncode in (0, 2), proc.stderr
    data = report(repo)
    assert data["batch"]["source"] == "captured requests"
    assert data["batch"]["rows"] == 3 * len(rows) and data["batch"]["labelled"] is False


# ------------------------------------------------------------------ bad batches


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "is empty"),
        (
            "sepal length (cm),sepal width (cm)\n5.1,3.5\n",
            "missing feature column(s): 'petal length (cm)'",
        ),
        (None, "column 'petal width (cm)': 1 value(s) are not numbers, e.g. 'wide' (row 2)"),
        ("sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n", "has no rows"),
    ],
)
def test_bad_batches_name_the_column_and_exit_1(
    applied: Path, tmp_path: Path, content: str | None, expected: str
) -> None:
    if content is None:
        frame = split(applied, "test").head(3).astype(object)
        frame.loc[1, "petal width (cm)"] = "wide"
        content = frame.to_csv(index=False)
    batch = tmp_path / "bad.csv"
    batch.write_text(content, encoding="utf-8")
    before = (applied / REPORT).read_bytes() if (applied / REPORT).exists() else None
    proc = mllc(applied, "monitor", "iris", "--data", str(batch), check=False)
    assert proc.returncode == 1
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    after = (applied / REPORT).read_bytes() if (applied / REPORT).exists() else None
    assert before == after  # a bad batch writes no report


def test_a_batch_by_url(repo: Path) -> None:
    path = Path(write_batch(repo, split(repo, "train"), "same.parquet"))
    proc = mllc(repo, "monitor", "iris", "--data", path.as_uri(), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report(repo)["batch"]["source"] == path.as_uri()


def test_unknown_environment_and_missing_file(applied: Path, tmp_path: Path) -> None:
    proc = mllc(applied, "monitor", "iris", "--env", "prod", check=False)
    assert proc.returncode == 1 and "no environment 'prod'" in proc.stderr
    proc = mllc(applied, "monitor", "iris", "--data", str(tmp_path / "nope.csv"), check=False)
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_a_retrained_version_never_goes_straight_to_production(repo: Path) -> None:
    """production takes `latest` after staging: the retrained version reaches staging in
    the retraining apply, and production only in a later apply (once it ran in staging)."""
    spec = repo / "specs" / "iris.yaml"
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data["environments"]["production"] = {
        "target": "local",
        "model": "latest",
        "after": "staging",
        "port": free_port(),
    }
    spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    _git(repo, "commit", "-qam", "production after staging")
    mllc(repo, "apply", "--auto-approve")
    batch = write_batch(repo, shifted(repo))
    mllc(repo, "monitor", "iris", "--env", "staging", "--data", batch, check=False)
    mllc(repo, "apply", "--auto-approve")

    def running(env: str) -> str:
        (status,) = [
            d
            for d in json.loads(mllc(repo, "status", "--json").stdout)["lifecycles"][0][
                "deployments"
            ]
            if d["environment"] == env
        ]
        return str(status["version"])

    new = sorted(_git(repo, "tag", "--list", "iris@*").split())[-1].split("@")[1]
    assert new == "v1.1.0"
    assert running("staging") == new
    assert running("production") == "v1.0.0"
    # The next plan promotes it: it has run in staging now.
    planned = plan(repo)
    (change,) = [c for c in planned["changes"] if c["address"] == "iris/deployment/production"]
    assert change["after"] == new


# ------------------------------------------------------------------ killed applies


def _breach(repo: Path) -> dict[str, Any]:
    batch = write_batch(repo, shifted(repo))
    assert mllc(repo, "monitor", "iris", "--data", batch, check=False).returncode == 2
    return report(repo)


def _converged(repo: Path, data: dict[str, Any]) -> None:
    mllc(repo, "apply", "--auto-approve")
    pointers = sorted(p.name for p in (repo / "pipelines/iris/feedback").glob("*.parquet.dvc"))
    assert len(pointers) == 1 and data["id"] in pointers[0]
    tracked = _git(repo, "ls-files", "pipelines", "monitoring").splitlines()
    assert not [t for t in tracked if t.endswith(".parquet")]  # no data in Git
    assert not (repo / BATCH).exists()
    assert "iris@v1.1.0" in _git(repo, "tag", "--list", "iris@*").split()
    assert mllc(repo, "plan", "--detailed-exitcode", check=False).returncode == 0


def _copy_to_feedback(repo: Path) -> str:
    """What apply's feedback step does first: the batch copied to where the plan says."""
    (change,) = [c for c in plan(repo)["changes"] if c["address"] == "iris/data/feedback/staging"]
    target = repo / change["after"]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(repo / BATCH, target)
    return str(change["after"])


def test_killed_after_copying_the_batch_converges(repo: Path) -> None:
    """State of an apply killed between the copy into feedback/ and `dvc add`: the batch
    is not in the training data yet (no pointer), so the plan adds it again."""
    data = _breach(repo)
    _copy_to_feedback(repo)
    again = plan(repo)
    assert "iris/data/feedback/staging" in [c["address"] for c in again["changes"]]
    _converged(repo, data)


def test_killed_after_dvc_add_converges(repo: Path) -> None:
    """State of an apply killed after `dvc add` but before the batch left monitoring/
    and before the retraining: the batch counts as added, the pipeline still runs,
    and the leftover batch is removed, never committed."""
    data = _breach(repo)
    dvc("add", "-q", _copy_to_feedback(repo), cwd=repo)
    again = plan(repo)
    addresses = [c["address"] for c in again["changes"]]
    assert "iris/data/feedback/staging" not in addresses and "iris/stage/prepare" in addresses
    assert (repo / BATCH).exists()
    _converged(repo, data)


def test_killed_inside_dvcs_write_of_the_pointer_converges(repo: Path) -> None:
    """DVC writes the batch's `.dvc` pointer in place: an apply killed inside that write
    leaves it cut short, and DVC refuses every command while it is there. The next apply
    has DVC write it again (the batch was copied in first) and converges."""
    data = _breach(repo)
    target = _copy_to_feedback(repo)
    dvc("add", "-q", target, cwd=repo)
    pointer = repo / f"{target}.dvc"
    text = pointer.read_bytes()
    pointer.write_bytes(text[: len(text) // 2])
    assert dvc("status", cwd=repo, check=False).returncode != 0  # what DVC makes of it
    _converged(repo, data)
    assert pointer.read_bytes() == text  # the same data, tracked whole


def test_a_batch_carried_as_a_dvc_pointer_retrains(repo: Path) -> None:
    """What the scheduled CI job does with a DVC remote: the monitoring pull request
    carries the batch as a `.dvc` pointer (data in DVC, not in Git). Here the data is
    in the local DVC cache only, as after the job's `dvc add` (a stand-in for the
    remote and `dvc pull`): the plan still retrains, and apply gets the batch back."""
    data = _breach(repo)
    dvc("add", "-q", BATCH, cwd=repo)
    _git(repo, "add", f"{BATCH}.dvc", "monitoring/iris/staging/.gitignore", REPORT)
    _git(repo, "commit", "-qm", "mllc monitor: iris/staging breach")
    (repo / BATCH).unlink()  # a fresh checkout has the pointer, not the data
    planned = plan(repo)
    assert "iris/data/feedback/staging" in [c["address"] for c in planned["changes"]]
    _converged(repo, data)
    assert f"{BATCH}.dvc" not in _git(repo, "ls-files", "monitoring")  # removal committed
    assert not (repo / f"{BATCH}.dvc").exists()
