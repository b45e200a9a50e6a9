"""``mllc score`` on a real applied repository: a registered model scores a whole file in
chunks, bad rows are counted and left out, and nothing but the registered bytes loads."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from tests.helpers_repo import applied_repo, copy_repo, mllc

pytestmark = pytest.mark.slow

TRAIN = "pipelines/iris/data/train.parquet"
MODEL = "pipelines/iris/model.joblib"


@pytest.fixture
def repo(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_repo(applied_repo(tmp_path_factory).repo, tmp_path / "repo")


def features(repo: Path) -> pd.DataFrame:
    frame = pd.read_parquet(repo / TRAIN).drop(columns=["target"])
    return frame.reset_index(drop=True)


def expected(repo: Path, frame: pd.DataFrame) -> tuple[Any, Any, list[str]]:
    model = joblib.load(repo / MODEL)
    return model.predict(frame), model.predict_proba(frame), [str(c) for c in model.classes_]


def test_scores_every_row_in_chunks_as_the_model_does(repo: Path, tmp_path: Path) -> None:
    frame = features(repo)
    frame.to_csv(tmp_path / "in.csv", index=False)
    proc = mllc(
        "score", "iris", "--version", "v1.0.0", "--data", str(tmp_path / "in.csv"),
        "--out", str(tmp_path / "out.csv"), "--chunk-rows", "7", cwd=repo,
    )  # fmt: skip
    predicted, proba, classes = expected(repo, frame)
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["row", "prediction", *(f"proba_{c}" for c in classes)]
    assert out["row"].tolist() == list(range(1, len(frame) + 1))
    assert out["prediction"].tolist() == predicted.tolist()
    assert np.allclose(out[[f"proba_{c}" for c in classes]].to_numpy(), proba)
    assert f"scored {len(frame)} of {len(frame)} rows" in proc.stderr
    assert "hash checked" in proc.stderr


def test_bad_rows_are_counted_and_left_out_not_fatal(repo: Path, tmp_path: Path) -> None:
    frame = features(repo)
    column = frame.columns[0]
    frame[column] = frame[column].map(repr)  # a text column in Parquet, as exports have
    frame.loc[2, column] = "n/a"
    frame.loc[9, column] = "twelve"
    frame["id"] = [f"f{i}" for i in range(len(frame))]
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    proc = mllc(
        "score", "iris", "--version", "v1.0.0", "--data", str(tmp_path / "in.parquet"),
        "--out", str(tmp_path / "out.parquet"), "--id", "id", "--chunk-rows", "5", cwd=repo,
    )  # fmt: skip
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert len(out) == len(frame) - 2
    assert "f2" not in set(out["id"]) and "f9" not in set(out["id"])
    good = frame.drop(index=[2, 9]).drop(columns=["id"]).astype(float)
    assert out["prediction"].tolist() == expected(repo, good)[0].tolist()
    assert "2 bad row(s) left out, e.g.:" in proc.stderr
    assert f"row 3: {column!r} is 'n/a', not a number" in proc.stderr
    assert f"row 10: {column!r} is 'twelve', not a number" in proc.stderr


def test_a_missing_column_is_an_error_and_no_output_is_left(repo: Path, tmp_path: Path) -> None:
    frame = features(repo)
    frame.drop(columns=[frame.columns[1]]).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    proc = mllc(
        "score", "iris", "--version", "v1.0.0", "--data", str(tmp_path / "in.csv"),
        "--out", str(out), cwd=repo, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"has no column(s) {frame.columns[1]!r}" in proc.stderr
    # no output, no temporary file beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "repo"]


def test_only_the_registered_bytes_load(repo: Path, tmp_path: Path) -> None:
    features(repo).to_csv(tmp_path / "in.csv", index=False)
    lock = (repo / "pipelines/iris/dvc.lock").read_text()
    model_md5 = lock.split(f"path: {MODEL}\n", 1)[1].split("md5: ", 1)[1].split()[0]
    obj = repo / ".dvc" / "cache" / "files" / "md5" / model_md5[:2] / model_md5[2:]
    os.chmod(obj, stat.S_IRUSR | stat.S_IWUSR)
    obj.write_bytes(b"not the registered model")
    proc = mllc(
        "score", "iris", "--version", "v1.0.0", "--data", str(tmp_path / "in.csv"),
        "--out", str(tmp_path / "out.csv"), cwd=repo, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "refusing to load a model that is not the registered version" in proc.stderr
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --env ENV or --version vX.Y.Z (one of them)"),
        (("--version", "v9.9.9"), "iris v9.9.9 is not registered (registered: v1.0.0)"),
        (("--env", "staging"), "iris has no version assigned to 'staging' in the registry"),
    ],
)
def test_which_version_errors(
    repo: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    proc = mllc(
        "score", "iris", *args, "--data", "x.csv", "--out", str(tmp_path / "o.csv"),
        cwd=repo, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_predictions_from_probabilities_only_where_sklearn_does_the_same() -> None:
    """For the classifiers whose predict is the argmax of predict_proba in scikit-learn's
    own code, score asks for the probabilities once; the predictions are bit-identical."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from mllc.ops.score import predict_is_argmax

    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    rng = np.random.default_rng(0)
    probe = rng.normal(X.mean(axis=0), X.std(axis=0) * 2, (5000, 4))
    for model in (
        RandomForestClassifier(n_estimators=15, random_state=0),
        ExtraTreesClassifier(n_estimators=15, random_state=0),
        DecisionTreeClassifier(random_state=0),
    ):
        model.fit(X, labels)
        assert predict_is_argmax(model)
        derived = model.classes_.take(np.argmax(model.predict_proba(probe), axis=1), axis=0)
        assert (derived == model.predict(probe)).all()
    assert not predict_is_argmax(LogisticRegression(max_iter=500).fit(X, labels))
    assert not predict_is_argmax(RandomForestClassifier().fit(X, np.c_[y, y]))  # 2 outputs
