"""End to end: compiled pipelines run by real DVC in temporary Git repositories.

Nothing is stubbed: real git, real ``dvc repro``, real scikit-learn training.
DVC runs the generated ``mllc stage ...`` commands, so the test puts this
interpreter's scripts folder first on PATH, as an installed mllc would be.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from helpers_repo import ROOT, dvc, mllc, run

pytestmark = pytest.mark.slow


def make_repo(path: Path, specs: list[str]) -> Path:
    path.mkdir(parents=True)
    (path / "specs").mkdir()
    for name in specs:
        shutil.copy(ROOT / "specs" / f"{name}.yaml", path / "specs")
    if (ROOT / "data").is_dir():
        shutil.copytree(ROOT / "data", path / "data")
    run(["git", "init", "-q"], path)
    dvc("init", "-q", cwd=path)
    mllc("compile", cwd=path)
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", "lifecycle specs"], path)
    return path


def ran_stages(output: str) -> set[str]:
    # DVC prints "Running stage 'pipelines/iris/dvc.yaml:split':"
    return {
        line.split("'")[1].rsplit(":", 1)[-1]
        for line in output.splitlines()
        if line.startswith("Running stage")
    }


def stale_stages(repo: Path, name: str) -> set[str]:
    out = dvc("status", "--json", f"pipelines/{name}/dvc.yaml", cwd=repo).stdout
    return {key.split(":", 1)[1] for key in json.loads(out or "{}")}


@pytest.fixture(scope="module")
def iris_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("e2e") / "repo", ["iris"])
    proc = dvc("repro", "pipelines/iris/dvc.yaml", cwd=repo)
    assert ran_stages(proc.stdout) == {
        "prepare",
        "split",
        "train@logreg",
        "train@forest",
        "evaluate",
        "select",
    }
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "first run"], repo)
    return repo


def test_iris_trains_and_reports_metrics(iris_repo: Path) -> None:
    metrics = json.loads((iris_repo / "pipelines/iris/metrics.json").read_text())
    assert metrics["model"] in ("logreg", "forest")
    assert metrics["test"]["accuracy"] > 0.85
    shown = json.loads(dvc("metrics", "show", "--json", cwd=iris_repo).stdout)
    flat = json.dumps(shown)
    assert "pipelines/iris/metrics.json" in flat and "accuracy" in flat
    lineage = json.loads((iris_repo / "pipelines/iris/lineage.json").read_text())
    assert lineage["selected"] == metrics["model"]
    assert stale_stages(iris_repo, "iris") == set()


def test_dvc_run_caches_every_stage(iris_repo: Path) -> None:
    """What restores a stage whose inputs come back (a reverted param, a second preview)
    instead of running it: DVC's run cache holds every stage."""
    runs = iris_repo / ".dvc" / "cache" / "runs"
    cmds = {
        yaml.safe_load(entry.read_text(encoding="utf-8"))["cmd"]
        for entry in runs.rglob("*")
        if entry.is_file()
    }
    # "mllc stage train iris logreg" -> "train logreg"; "mllc stage split iris" -> "split"
    stages = {" ".join(w for i, w in enumerate(cmd.split()) if i in (2, 4)) for cmd in cmds}
    assert stages == {"prepare", "split", "train logreg", "train forest", "evaluate", "select"}


def test_dvc_metrics_show_is_one_row_per_candidate(iris_repo: Path) -> None:
    """The metrics are each candidate's and the selected model's validation and test
    scores, with the same columns: a table that reads in a terminal and a comment."""
    shown = json.loads(dvc("metrics", "show", "--json", cwd=iris_repo).stdout)
    files = next(iter(shown.values()))["data"]
    root = "pipelines/iris"
    assert sorted(files) == [
        f"{root}/metrics.json",
        f"{root}/reports/candidates/forest.json",
        f"{root}/reports/candidates/logreg.json",
    ]
    columns = {
        path: {f"{part}.{m}" for part in ("validation", "test") for m in data["data"][part]}
        for path, data in files.items()
    }
    assert columns[f"{root}/reports/candidates/forest.json"] == columns[f"{root}/metrics.json"]
    assert columns[f"{root}/reports/candidates/logreg.json"] == columns[f"{root}/metrics.json"]
    table = dvc("metrics", "show", cwd=iris_repo).stdout
    header = table.splitlines()[0].split()
    # Path, the selected model and metric, validated_on, and validation/test per metric
    assert len(header) == 4 + len(columns[f"{root}/metrics.json"]), header


def test_dvc_draws_the_confusion_matrix(iris_repo: Path) -> None:
    shown = json.loads(dvc("plots", "show", "--json", cwd=iris_repo).stdout)
    text = json.dumps(shown)
    assert "pipelines/iris/plots/confusion.csv" in text
    assert '"actual"' in text and '"predicted"' in text


def test_exp_show_lists_the_metrics(iris_repo: Path) -> None:
    out = dvc("exp", "show", "--json", cwd=iris_repo).stdout
    assert "pipelines/iris/metrics.json" in out and "f1_macro" in out


def test_one_candidate_param_change_retrains_only_that_candidate(iris_repo: Path) -> None:
    spec = iris_repo / "specs/iris.yaml"
    original = spec.read_text(encoding="utf-8")
    try:
        spec.write_text(original.replace("C: 1.0", "C: 0.5"), encoding="utf-8")
        mllc("compile", cwd=iris_repo)
        # evaluate and select read the candidate table too; nothing upstream, no other candidate
        assert stale_stages(iris_repo, "iris") == {"train@logreg", "evaluate", "select"}
        proc = dvc("repro", "pipelines/iris/dvc.yaml", cwd=iris_repo)
        ran = ran_stages(proc.stdout)
        assert "train@logreg" in ran
        assert not ran & {"prepare", "split", "train@forest"}
        metrics_diff = dvc("metrics", "diff", "--json", cwd=iris_repo).stdout
        assert "pipelines/iris" in metrics_diff or metrics_diff.strip() in ("{}", "")
    finally:
        spec.write_text(original, encoding="utf-8")
        mllc("compile", cwd=iris_repo)
        dvc("repro", "pipelines/iris/dvc.yaml", cwd=iris_repo)


def test_gate_or_metadata_change_makes_nothing_stale(iris_repo: Path) -> None:
    spec = iris_repo / "specs/iris.yaml"
    original = spec.read_text(encoding="utf-8")
    lock = (iris_repo / "pipelines/iris/dvc.lock").read_text(encoding="utf-8")
    try:
        changed = original.replace("accuracy >= 0.9", "accuracy >= 0.8")
        changed = changed.replace("Classify iris species", "Classify irises")
        spec.write_text(changed, encoding="utf-8")
        mllc("compile", cwd=iris_repo)
        assert stale_stages(iris_repo, "iris") == set()
        proc = dvc("repro", "pipelines/iris/dvc.yaml", cwd=iris_repo)
        assert ran_stages(proc.stdout) == set()
        assert (iris_repo / "pipelines/iris/dvc.lock").read_text(encoding="utf-8") == lock
    finally:
        spec.write_text(original, encoding="utf-8")
        mllc("compile", cwd=iris_repo)


def test_clean_clone_reproduces_the_same_model(iris_repo: Path, tmp_path: Path) -> None:
    """From a fresh clone (no DVC cache), dvc repro rebuilds a byte-identical model."""
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(iris_repo), str(clone)], tmp_path)
    dvc("repro", "pipelines/iris/dvc.yaml", cwd=clone)
    ours = (iris_repo / "pipelines/iris/model.joblib").read_bytes()
    assert (clone / "pipelines/iris/model.joblib").read_bytes() == ours
    assert dvc("status", "--json", cwd=clone).stdout.strip() in ("{}", "")


@pytest.mark.parametrize("name", ["diabetes", "churn"])
def test_other_examples_train_and_pass_their_gates(name: str, tmp_path: Path) -> None:
    if not (ROOT / "specs" / f"{name}.yaml").is_file():
        pytest.fail(f"specs/{name}.yaml is missing")
    repo = make_repo(tmp_path / "repo", [name])
    dvc("repro", f"pipelines/{name}/dvc.yaml", cwd=repo)
    metrics = json.loads((repo / f"pipelines/{name}/metrics.json").read_text())
    gates = yaml.safe_load((repo / "specs" / f"{name}.yaml").read_text())["gates"]
    from mllc.spec.fields import parse_gate

    for gate in gates:
        metric, op, bound = parse_gate(gate)
        value = metrics["test"][metric]
        assert {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[
            op
        ], f"{name}: {gate} fails with {value}"


def test_bad_data_fails_dvc_repro_with_a_clear_message(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "specs").mkdir()
    (repo / "data").mkdir()
    (repo / "data/rows.csv").write_text("a,b\n1,2\n3,4\n5,6\n", encoding="utf-8")
    spec = yaml.safe_load((ROOT / "specs/iris.yaml").read_text())
    spec["metadata"]["name"] = "rows"
    spec["data"] = {"source": {"csv": "data/rows.csv"}, "split": {"test": 0.3}}
    spec["problem"]["target"] = "label"
    spec.pop("environments", None)
    (repo / "specs/rows.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    run(["git", "init", "-q"], repo)
    dvc("init", "-q", cwd=repo)
    mllc("compile", cwd=repo)
    proc = dvc("repro", "pipelines/rows/dvc.yaml", cwd=repo, check=False)
    assert proc.returncode != 0
    assert "label" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (repo / "pipelines/rows/data/clean.parquet").exists()
