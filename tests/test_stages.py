"""The built-in pipeline stages (``mllc stage ...``), run for real on small data.

Each test builds a throw-away repository: the spec's sections dumped into
``pipelines/<name>/params.yaml`` as the compiler does (``model_dump(mode="json")``
of problem, data, features and models, defaults filled in), the data files
copied in, then runs the stages from the repository root - in process for
speed, or as ``python -m mllc stage ...`` where the exit code, stderr and a
second interpreter matter. Expected values (row counts, hashes, the winner) are
computed here from the inputs with plain pandas/hashlib, never with mllc's code.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

from mllc.spec.fields import parse_gate
from mllc.spec.load import load_file
from mllc.stages import StageError, run_stage

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
CHURN_CSV = ROOT / "data" / "churn.csv"
PLANS_CSV = ROOT / "tests" / "data" / "plans.csv"
SECTIONS = ("problem", "data", "features", "models")


# ------------------------------------------------------------------ helpers


class Repo:
    """A temporary repository holding one lifecycle's params.yaml (and its data files)."""

    def __init__(self, root: Path, name: str, spec: dict[str, Any]) -> None:
        self.root = root
        self.name = name
        self.spec = spec

    @property
    def dir(self) -> Path:
        return self.root / "pipelines" / self.name

    def run(self, *stages: str) -> None:
        """Run stages in process; ``train`` runs every estimator candidate."""
        with contextlib.chdir(self.root):
            for stage in stages:
                if stage == "train":
                    for model, cand in self.spec["models"].items():
                        if cand.get("estimator"):
                            run_stage("train", self.name, model)
                else:
                    run_stage(stage, self.name)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mllc", "stage", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def json(self, rel: str) -> Any:
        return json.loads((self.dir / rel).read_text(encoding="utf-8"))

    def candidates(self) -> dict[str, Any]:
        """Evaluate's per-candidate reports: candidate -> its validation and test scores."""
        folder = self.dir / "reports" / "candidates"
        return {p.stem: self.json(f"reports/candidates/{p.name}") for p in folder.glob("*.json")}

    def frame(self, rel: str) -> pd.DataFrame:
        return pd.read_parquet(self.dir / rel)

    def outputs(self) -> set[str]:
        """Every file under pipelines/<name>/ but params.yaml, relative to it."""
        return {
            p.relative_to(self.dir).as_posix()
            for p in self.dir.rglob("*")
            if p.is_file() and p.name != "params.yaml"
        }


def load_spec(name: str) -> dict[str, Any]:
    data = yaml.safe_load((SPECS / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def make_repo(
    root: Path, spec: dict[str, Any], files: dict[str, Path] | None = None, toml: str = ""
) -> Repo:
    """Write the spec's params.yaml (as the compiler would) and copy ``files`` into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".git").mkdir(exist_ok=True)  # the repository root: mllc.toml is not looked up above
    if toml:
        (root / "mllc.toml").write_text(toml, encoding="utf-8")
    for dest, src in (files or {}).items():
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / dest)
    spec_file = root / "specs" / "spec.yaml"
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    result = load_file(spec_file, _estimators(root))
    assert result.spec is not None, [d.render() for d in result.diagnostics]
    dumped = result.spec.model_dump(mode="json")
    params = {key: dumped[key] for key in SECTIONS}
    name = result.spec.metadata.name
    path = root / "pipelines" / name / "params.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# written by the tests as 'mllc compile' would\n"
    path.write_text(header + yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return Repo(root, name, spec)


def _estimators(root: Path) -> dict[str, str] | None:
    from mllc.spec.load import find_config, load_estimators

    allowed, problems = load_estimators(find_config(root))
    assert not problems
    return allowed


def plans_spec(**data: Any) -> dict[str, Any]:
    """A small classification spec over tests/data/plans.csv (copied to data/plans.csv)."""
    spec: dict[str, Any] = {
        "apiVersion": "mllc/v1",
        "kind": "Lifecycle",
        "metadata": {"name": "plans"},
        "problem": {"task": "classification", "target": "label", "metric": "accuracy"},
        "data": {
            "source": {"csv": "data/plans.csv"},
            "columns": {
                "plan": {"type": "category", "values": ["basic", "standard", "pro"]},
                "score": {"type": "float", "min": 0},
                "active": {"type": "bool"},
                "label": {"type": "int", "min": 0, "max": 1},
            },
            "cleaning": {"duplicates": "drop", "missing": "impute", "invalid": "drop"},
            "split": {"test": 0.25, "seed": 1},
        },
        "features": {"exclude": ["id"]},
        "models": {"dummy": {"estimator": "sklearn.dummy.DummyClassifier"}},
    }
    spec["data"].update(data)
    return spec


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gates_hold(spec: dict[str, Any], test_scores: dict[str, float]) -> list[str]:
    """The spec's gates that fail on ``test_scores`` (empty: all hold)."""
    ops: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
    }
    failed = []
    for gate in spec.get("gates", []):
        metric, op, bound = parse_gate(gate)
        if not ops[op](test_scores[metric], bound):
            failed.append(f"{gate} (got {test_scores[metric]})")
    return failed


def expected_winner(candidates: dict[str, Any], metric: str, higher: bool) -> str:
    scored = [(v["validation"][metric], n) for n, v in candidates.items()]
    best = max(s for s, _ in scored) if higher else min(s for s, _ in scored)
    return min(n for s, n in scored if s == best)


@pytest.fixture
def iris(tmp_path: Path) -> Repo:
    spec = load_spec("iris")
    spec["models"]["forest"]["params"]["n_estimators"] = 40  # speed; same code path
    return make_repo(tmp_path / "iris", spec)


# ------------------------------------------------------------------ end to end


def test_iris_end_to_end(iris: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    iris.run("prepare", "split", "train", "evaluate", "select")
    out, err = capsys.readouterr()
    assert out == ""  # progress goes to stderr only
    assert "prepare: 150 rows in, 149 out (1 duplicate dropped)" in err

    assert iris.outputs() == {
        "data/clean.parquet",
        "data/train.parquet",
        "data/validation.parquet",
        "data/test.parquet",
        "reports/data.json",
        "reports/train/logreg.json",
        "reports/train/forest.json",
        "reports/candidates/logreg.json",
        "reports/candidates/forest.json",
        "candidates/logreg.joblib",
        "candidates/forest.joblib",
        "model.joblib",
        "metrics.json",
        "lineage.json",
        "plots/confusion.csv",
    }
    from sklearn.datasets import load_iris

    source = load_iris(as_frame=True).frame
    report = iris.json("reports/data.json")
    dupes = int(source.duplicated().sum())
    assert report["rows_in"] == len(source)
    assert report["rows_out"] == len(source) - dupes
    assert report["dropped"] == {
        "duplicates": dupes,
        "missing": 0,
        "invalid": 0,
        "missing_target": 0,
    }

    n = len(source) - dupes  # test 20% of all rows, validation 10% of all rows, rounded up
    sizes = {p: len(iris.frame(f"data/{p}.parquet")) for p in ("train", "validation", "test")}
    assert sizes == {
        "test": math.ceil(0.2 * n),
        "validation": math.ceil(0.1 * n),
        "train": n - math.ceil(0.2 * n) - math.ceil(0.1 * n),
    }
    test = iris.frame("data/test.parquet")
    assert sorted(test["target"].value_counts().tolist()) == [10, 10, 10]  # stratified

    forest = iris.json("reports/train/forest.json")
    assert forest["search"]["best_params"]["max_depth"] in (3, 5, None)
    assert forest["params"]["random_state"] == 0  # given in the spec, kept
    assert iris.json("reports/train/logreg.json")["params"]["random_state"] == 42  # the seed

    cands = iris.candidates()
    assert set(cands) == {"logreg", "forest"}
    for scores in cands.values():
        assert scores["validated_on"] == "validation"
        assert scores["test"]["accuracy"] > 0.8
        assert 0.9 < scores["test"]["roc_auc"] <= 1.0
        assert scores["test"]["log_loss"] > 0

    metrics = iris.json("metrics.json")
    winner = expected_winner(cands, "f1_macro", higher=True)
    assert metrics["model"] == winner and metrics["metric"] == "f1_macro"
    assert metrics["test"] == cands[winner]["test"]
    assert not gates_hold(iris.spec, metrics["test"])
    model_bytes = (iris.dir / "model.joblib").read_bytes()
    assert model_bytes == (iris.dir / f"candidates/{winner}.joblib").read_bytes()

    lineage = iris.json("lineage.json")
    params = yaml.safe_load((iris.dir / "params.yaml").read_text(encoding="utf-8"))
    subset = {k: params[k] for k in ("problem", "data", "features")}
    subset["models"] = {winner: params["models"][winner]}
    canonical = json.dumps(subset, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert lineage["params_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert lineage["model_sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert lineage["data_sha256"] == sha256(iris.dir / "data/clean.parquet")
    assert lineage["selected"] == winner and lineage["lifecycle"] == "iris"
    assert set(lineage["versions"]) == {"python", "sklearn", "pandas", "numpy", "mllc"}
    assert lineage["candidates"][winner]["test"] == metrics["test"]["f1_macro"]

    model = joblib.load(iris.dir / "model.joblib")
    features = test.drop(columns=["target"])
    with (iris.dir / "plots/confusion.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["actual", "predicted"]
    assert rows[1:] == [
        [str(a), str(p)] for a, p in zip(test["target"], model.predict(features), strict=True)
    ]


def test_evaluate_leaves_only_the_current_candidates_reports(iris: Repo) -> None:
    """A candidate removed from the spec, and the one-file report of an older mllc, do not
    linger beside the per-candidate reports (they would stay rows of dvc metrics show)."""
    iris.run("prepare", "split", "train")
    (iris.dir / "reports/candidates").mkdir(parents=True)
    (iris.dir / "reports/candidates/gone.json").write_text("{}", encoding="utf-8")
    (iris.dir / "reports/candidates.json").write_text('{"candidates": {}}', encoding="utf-8")
    iris.run("evaluate", "select")
    assert sorted(p.name for p in (iris.dir / "reports").iterdir()) == [
        "candidates",
        "data.json",
        "train",
    ]
    assert set(iris.candidates()) == {"logreg", "forest"}
    assert iris.json("metrics.json")["model"] in {"logreg", "forest"}


def test_churn_end_to_end_counts_what_it_drops(tmp_path: Path) -> None:
    spec = load_spec("churn")
    repo = make_repo(tmp_path / "churn", spec, {"data/churn.csv": CHURN_CSV})
    stale = repo.dir / "data/validation.parquet"  # from an earlier config with validation
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    repo.run("prepare", "split", "train", "evaluate", "select")

    expected = churn_expectations(CHURN_CSV, spec)
    report = repo.json("reports/data.json")
    assert report["dropped"] == expected["dropped"]
    assert report["dropped"]["duplicates"] > 0 and report["dropped"]["invalid"] > 0
    assert report["rows_in"] == expected["rows_in"]
    assert report["rows_out"] == expected["rows_out"]
    for column, counts in expected["columns"].items():
        assert report["columns"][column]["missing"] == counts["missing"], column
        assert report["columns"][column]["invalid"] == counts["invalid"], column
    assert report["source"]["sha256"] == sha256(CHURN_CSV)

    clean = repo.frame("data/clean.parquet")
    assert len(clean) == expected["rows_out"]
    assert list(clean["plan"].cat.categories) == ["basic", "standard", "pro"]
    assert list(clean["churned"].cat.categories) == ["no", "yes"]
    assert clean["tenure_months"].dtype == np.int64 and (clean["tenure_months"] >= 0).all()
    assert clean["monthly_charges"].isna().sum() > 0  # missing: impute keeps the gaps
    assert set(clean["has_support"].dropna()) <= {0.0, 1.0}

    assert not stale.exists()  # no validation split configured: the stale file is gone
    cands = repo.candidates()
    assert {c["validated_on"] for c in cands.values()} == {"cv5"}
    metrics = repo.json("metrics.json")
    assert metrics["model"] == expected_winner(cands, "roc_auc", higher=True)
    assert not gates_hold(spec, metrics["test"])
    train = repo.json("reports/train/boosting.json")
    assert train["features"] == {
        "numeric": ["tenure_months", "monthly_charges", "has_support"],
        "categorical": ["plan"],
    }
    assert train["search"]["candidates"] == 6 and train["classes"] == ["no", "yes"]


def test_churn_missing_drop_counts_rows_with_gaps(tmp_path: Path) -> None:
    spec = load_spec("churn")
    spec["data"]["cleaning"]["missing"] = "drop"
    repo = make_repo(tmp_path / "churn", spec, {"data/churn.csv": CHURN_CSV})
    repo.run("prepare")
    expected = churn_expectations(CHURN_CSV, spec)
    report = repo.json("reports/data.json")
    assert report["dropped"] == expected["dropped"]
    assert report["dropped"]["missing"] > 0
    assert report["rows_out"] == expected["rows_out"]
    assert not repo.frame("data/clean.parquet").drop(columns=["customer_id"]).isna().any().any()


def churn_expectations(path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """What prepare must report for data/churn.csv, computed row by row from the text."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    declared = spec["data"]["columns"]
    target = spec["problem"]["target"]
    excluded = set(spec["features"]["exclude"])

    def invalid(column: str, text: str) -> bool:
        rule = declared[column]
        value = text.strip()
        if not value:
            return not rule.get("nullable", True)
        if rule["type"] in ("int", "float"):
            try:
                number = float(value)
            except ValueError:
                return True
            return (
                not math.isfinite(number)
                or (rule["type"] == "int" and not number.is_integer())
                or ("min" in rule and number < rule["min"])
                or ("max" in rule and number > rule["max"])
            )
        if rule["type"] == "bool":
            return value.lower() not in {"true", "false", "1", "0", "yes", "no"}
        if rule["type"] == "category":
            return value not in [str(v) for v in rule["values"]]
        return False

    policy = spec["data"]["cleaning"]
    dropped = {"duplicates": 0, "missing_target": 0, "invalid": 0, "missing": 0}
    seen: set[tuple[str, ...]] = set()
    kept = 0
    for row in raw.itertuples(index=False):
        record = row._asdict()
        key = tuple(record.values())
        if key in seen and policy["duplicates"] == "drop":
            dropped["duplicates"] += 1
            continue
        seen.add(key)
        if not record[target].strip():
            dropped["missing_target"] += 1
        elif any(invalid(c, record[c]) for c in declared):
            dropped["invalid"] += 1
        elif policy["missing"] == "drop" and any(
            not v.strip() for c, v in record.items() if c != target and c not in excluded
        ):
            dropped["missing"] += 1
        else:
            kept += 1
    columns = {
        c: {
            "missing": int((raw[c].str.strip() == "").sum()),
            "invalid": sum(invalid(c, v) for v in raw[c]) if c in declared else 0,
        }
        for c in raw.columns
    }
    return {"rows_in": len(raw), "rows_out": kept, "dropped": dropped, "columns": columns}


def test_regression_end_to_end(tmp_path: Path) -> None:
    spec = load_spec("diabetes")
    spec["models"]["forest"]["params"]["n_estimators"] = 50  # speed; same code path
    repo = make_repo(tmp_path / "diabetes", spec)
    repo.run("prepare", "split", "train", "evaluate", "select")

    assert "plots/residuals.csv" in repo.outputs()
    assert "plots/confusion.csv" not in repo.outputs()
    cands = repo.candidates()
    assert set(cands["ridge"]["test"]) == {"rmse", "mae", "r2", "mape"}
    for scores in cands.values():
        assert scores["validated_on"] == "validation"
        assert scores["test"]["rmse"] > 0
        assert scores["test"]["r2"] > 0.3
    metrics = repo.json("metrics.json")
    assert metrics["model"] == expected_winner(cands, "rmse", higher=False)
    assert not gates_hold(spec, metrics["test"])

    test = repo.frame("data/test.parquet")
    model = joblib.load(repo.dir / "model.joblib")
    predicted = model.predict(test.drop(columns=["target"]))
    rmse = float(np.sqrt(np.mean((test["target"].to_numpy() - predicted) ** 2)))
    assert metrics["test"]["rmse"] == pytest.approx(rmse, abs=1e-5)
    plot = pd.read_csv(repo.dir / "plots/residuals.csv")
    assert list(plot.columns) == ["actual", "predicted", "residual"]
    assert len(plot) == len(test)
    assert np.allclose(plot["residual"], plot["actual"] - plot["predicted"], atol=1e-5)
    assert repo.json("reports/train/ridge.json")["search"]["scoring"] == (
        "neg_root_mean_squared_error"
    )


# ------------------------------------------------------------------ determinism


def test_same_inputs_give_byte_identical_models(tmp_path: Path) -> None:
    """One run in this process, one in a fresh interpreter with another hash seed."""
    spec = load_spec("churn")
    spec["models"] = {"boosting": spec["models"]["boosting"]}
    spec["models"]["boosting"]["search"]["n_iter"] = 3
    first = make_repo(tmp_path / "first", spec, {"data/churn.csv": CHURN_CSV})
    second = make_repo(tmp_path / "second", copy.deepcopy(spec), {"data/churn.csv": CHURN_CSV})
    first.run("prepare", "split", "train")
    script = (
        "from mllc.stages import run_stage\n"
        "for stage in ('prepare', 'split'):\n"
        "    run_stage(stage, 'churn')\n"
        "run_stage('train', 'churn', 'boosting')\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=second.root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for rel in (
        "candidates/boosting.joblib",
        "data/clean.parquet",
        "data/train.parquet",
        "data/test.parquet",
        "reports/data.json",
        "reports/train/boosting.json",
    ):
        assert (first.dir / rel).read_bytes() == (second.dir / rel).read_bytes(), rel


# ------------------------------------------------------------------ bad data, via the CLI


def _cli_fails(repo: Repo, *args: str) -> str:
    done = repo.cli(*args)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), done.stderr
    assert repo.outputs() == set(), "a failing stage must leave no output behind"
    return done.stderr


def test_missing_target_column_names_it_and_lists_columns(tmp_path: Path) -> None:
    spec = plans_spec()
    spec["problem"]["target"] = "outcome"
    repo = make_repo(tmp_path / "r", spec, {"data/plans.csv": PLANS_CSV})
    err = _cli_fails(repo, "prepare", "plans")
    assert "'outcome'" in err
    assert "id, plan, score, active, label" in err


def test_every_row_invalid_says_no_rows_remain_and_why(tmp_path: Path) -> None:
    spec = plans_spec()
    spec["data"]["columns"]["plan"]["values"] = ["enterprise"]
    repo = make_repo(tmp_path / "r", spec, {"data/plans.csv": PLANS_CSV})
    err = _cli_fails(repo, "prepare", "plans")
    assert "no rows remain" in err
    assert "8 rows in, 8 invalid dropped" in err


def test_unknown_category_with_invalid_fail_names_column_counts_and_rows(tmp_path: Path) -> None:
    spec = plans_spec()
    spec["data"]["cleaning"]["invalid"] = "fail"
    repo = make_repo(tmp_path / "r", spec, {"data/plans.csv": PLANS_CSV})
    err = _cli_fails(repo, "prepare", "plans")
    raw = pd.read_csv(PLANS_CSV, dtype=str, keep_default_na=False)
    bad = raw.index[~raw["plan"].isin(["basic", "standard", "pro"])]
    assert f"{len(bad)} rows of data/plans.csv have invalid values" in err
    assert f"plan {len(bad)}" in err
    for i in bad:  # 1-based data rows, each with its value
        assert f"row {i + 1}: plan: '{raw['plan'][i]}' is not one of basic, standard, pro" in err


# ------------------------------------------------------------------ details


def test_declared_types_are_parsed_and_checked(tmp_path: Path) -> None:
    text = (
        "id,n,x,flag,kind,label\n"
        "1,3,1.5,Yes,a,0\n"
        "2,3.0,,no,b,1\n"  # 3.0 is a whole number; x is missing
        "3,3.5,2,TRUE,a,0\n"  # 3.5 is not
        "4,4,n/a,0,b,1\n"  # n/a is not a number (not 'missing')
        "5,5,1e3,maybe,a,0\n"  # maybe is not a bool
        "6,6,7, 1 ,c,\n"  # no target: dropped whatever else
        "7,-1,1,false, b ,1\n"  # below min
        "8,8,1,1,a,1\n"
    )
    csv_file = tmp_path / "types.csv"
    csv_file.write_text(text, encoding="utf-8")
    spec = plans_spec(
        source={"csv": "data/types.csv"},
        columns={
            "n": {"type": "int", "min": 0},
            "x": {"type": "float"},
            "flag": {"type": "bool"},
            "kind": {"type": "category"},
            "label": {"type": "int"},
        },
    )
    repo = make_repo(tmp_path / "r", spec, {"data/types.csv": csv_file})
    repo.run("prepare")
    clean = repo.frame("data/clean.parquet")
    assert clean["id"].tolist() == [1, 2, 8]
    assert clean["n"].tolist() == [3, 3, 8] and clean["n"].dtype == np.int64
    assert clean["x"].tolist()[0] == 1.5 and math.isnan(clean["x"].tolist()[1])
    assert clean["flag"].tolist() == [True, False, True] and clean["flag"].dtype == bool
    assert clean["kind"].tolist() == ["a", "b", "a"]
    assert clean["label"].dtype == np.int64
    report = repo.json("reports/data.json")
    assert report["dropped"] == {"duplicates": 0, "missing_target": 1, "invalid": 4, "missing": 0}
    assert report["columns"]["n"] == {"dtype": "int64", "missing": 0, "invalid": 2}
    assert report["columns"]["x"]["invalid"] == 1 and report["columns"]["x"]["missing"] == 1
    assert report["columns"]["flag"]["invalid"] == 1


def test_missing_fail_and_nullable_false(tmp_path: Path) -> None:
    spec = plans_spec(cleaning={"missing": "fail"})
    repo = make_repo(tmp_path / "r", spec, {"data/plans.csv": PLANS_CSV})
    with pytest.raises(StageError) as info:
        repo.run("prepare")
    lines = info.value.render()
    assert "have missing values" not in lines[0]  # one row only
    assert "1 row of data/plans.csv has missing values" in lines[0]
    assert "score 1" in lines[0] and "row 6: score: missing" in lines
    spec = plans_spec()
    spec["data"]["columns"]["score"]["nullable"] = False
    repo = make_repo(tmp_path / "r2", spec, {"data/plans.csv": PLANS_CSV})
    repo.run("prepare")
    report = repo.json("reports/data.json")
    assert report["columns"]["score"] == {"dtype": "float64", "missing": 1, "invalid": 1}
    assert report["rows_out"] == 4  # 3 unknown plans and the missing score


def test_run_stage_refuses_bad_arguments(iris: Repo, tmp_path: Path) -> None:
    cases: list[tuple[tuple[Any, ...], str]] = [
        (("fit", "iris"), "unknown stage 'fit'"),
        (("train", "iris"), "needs a candidate"),
        (("split", "iris", "logreg"), "takes no candidate"),
        (("train", "iris", "forrest"), "did you mean 'forest'"),
        (("prepare", "Iris"), "not a lowercase DNS label"),
        (("prepare", "wine"), "pipelines/wine/params.yaml not found"),
        (("split", "iris"), "clean.parquet not found: it is written by stage prepare"),
    ]
    with contextlib.chdir(iris.root):
        for args, message in cases:
            with pytest.raises(StageError, match=message.replace("(", r"\(")):
                run_stage(*args)


def test_params_file_is_validated_and_may_carry_more_keys(iris: Repo) -> None:
    params_file = iris.dir / "params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["mllc"] = {"stages": 1}  # compiler bookkeeping: tolerated
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    iris.run("prepare")
    params["problem"]["metric"] = "rmse"
    params["data"]["split"]["test"] = 2
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(StageError) as info, contextlib.chdir(iris.root):
        run_stage("split", "iris")
    lines = info.value.render()
    assert lines[0] == "pipelines/iris/params.yaml is not valid (1 problem(s))"
    assert lines[1].startswith("pipelines/iris/params.yaml: data.split.test: ")
    del params["data"]["split"]["test"]  # now valid for Pydantic: the cross-section rule speaks
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(StageError) as info, contextlib.chdir(iris.root):
        run_stage("split", "iris")
    assert "problem.metric: 'rmse' is a regression metric" in info.value.render()[1]


def test_command_candidates_are_evaluated_not_trained(tmp_path: Path) -> None:
    spec = load_spec("iris")
    spec["models"] = {
        "own": {"command": "python train.py", "deps": ["train.py"]},
        "stub": {"command": "python stub.py"},
        "tree": {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 3}},
    }
    spec["data"]["split"]["validation"] = None  # validation by cross-validation
    repo = make_repo(tmp_path / "r", spec)
    with pytest.raises(StageError, match="is a command"), contextlib.chdir(repo.root):
        run_stage("train", "iris", "own")
    repo.run("prepare", "split", "train")
    train = repo.frame("data/train.parquet")
    from sklearn.linear_model import LogisticRegression

    own = LogisticRegression(max_iter=500).fit(train.drop(columns=["target"]), train["target"])
    joblib.dump(own, repo.dir / "candidates/own.joblib")
    joblib.dump(MajorityStub(int(train["target"].mode()[0])), repo.dir / "candidates/stub.joblib")
    repo.run("evaluate", "select")
    cands = repo.candidates()
    assert cands["own"]["validated_on"] == "cv5"  # a clonable scikit-learn model
    assert cands["stub"]["validated_on"] == "train" and "optimistic" in cands["stub"]["note"]
    assert cands["stub"]["test"]["roc_auc"] is None  # no predict_proba, no decision_function
    assert cands["own"]["test"]["accuracy"] > 0.8
    assert repo.json("metrics.json")["model"] in ("own", "tree")


class MajorityStub:
    """A user's model that is no scikit-learn estimator: predict only, cannot be cloned."""

    def __init__(self, label: int) -> None:
        self.label = label

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.label)


def test_allow_list_comes_from_mllc_toml(tmp_path: Path) -> None:
    extra = "sklearn.linear_model.RidgeClassifierCV"
    spec = load_spec("iris")
    spec["models"] = {"ridge": {"estimator": extra}}
    toml = f'[estimators]\nclassification = ["{extra}"]\n'
    repo = make_repo(tmp_path / "r", spec, toml=toml)
    repo.run("prepare", "split", "train")
    assert (repo.dir / "candidates/ridge.joblib").is_file()
    (repo.root / "mllc.toml").unlink()
    with pytest.raises(StageError) as info, contextlib.chdir(repo.root):
        run_stage("train", "iris", "ridge")
    assert any("not an allowed estimator" in line for line in info.value.render())


def test_stratify_needs_enough_rows_per_class(tmp_path: Path) -> None:
    text = "x,label\n" + "".join(f"{i},a\n" for i in range(10)) + "99,b\n"
    csv_file = tmp_path / "few.csv"
    csv_file.write_text(text, encoding="utf-8")
    spec = plans_spec(source={"csv": "data/few.csv"}, columns={}, split={"stratify": True})
    repo = make_repo(tmp_path / "r", spec, {"data/few.csv": csv_file})
    repo.run("prepare")
    with pytest.raises(StageError, match=r"cannot stratify on 'label': class\(es\) 'b' \(1 row\)"):
        repo.run("split")
    assert repo.outputs() == {"data/clean.parquet", "reports/data.json"}


@pytest.fixture(autouse=True)
def _quiet_sklearn() -> Iterator[None]:
    # The tests' own fits (a user's model) may warn about convergence: expected, not failures.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
