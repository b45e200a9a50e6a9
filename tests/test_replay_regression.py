"""wins_on_replay on a regression (specs/diabetes.yaml, rmse): disagreement beyond a tenth
of the running version's spread, the metric per quartile bin of the labelled target.
Real models trained here, stored in the DVC cache, registered; promote replays."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from mllc.observe.replay import record_path
from mllc.policy.replay import bin_label, quartile_edges
from mllc.registry import assign, list_versions, register
from tests.test_replay import ROOT, git, mllc, store

NAME = "diabetes"
LABELLED = 60
ENVIRONMENTS = """\
environments:
  production:
    target: local
    model: "v1.0.0"
    port: 8193
    require: [wins_on_replay]
    replay: {min_requests: 30, max_disagreement: 0.5, max_metric_drop: 5, max_p95_ratio: 1000000}
"""


def diabetes() -> Any:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame


def features() -> list[str]:
    return [c for c in diabetes().columns if c != "target"]


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    frame = diabetes()
    X, y = frame[features()], frame["target"]
    return {
        "v1.0.0": Ridge(alpha=0.1).fit(X, y),
        "v1.1.0": Ridge(alpha=0.2).fit(X, y),  # nearly the same predictions
        "v1.2.0": DecisionTreeRegressor(max_depth=1, random_state=0).fit(X, y),  # two values
    }


@pytest.fixture
def repo(tmp_path: Path, trained: dict[str, Any]) -> Path:
    path = tmp_path / "repo"
    (path / "specs").mkdir(parents=True)
    text = (ROOT / "specs" / "diabetes.yaml").read_text(encoding="utf-8")
    (path / "specs" / "diabetes.yaml").write_text(
        text[: text.index("environments:")] + ENVIRONMENTS, encoding="utf-8"
    )
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "spec")
    for version, model in trained.items():
        git(path, "commit", "-q", "--allow-empty", "-m", f"train {version}")
        metrics = {"test": {"r2": 0.5, "rmse": 55.0}}
        got = register(path, NAME, git(path, "rev-parse", "HEAD"), store(path, model), metrics, {})
        assert got.version == version
    assign(path, NAME, "v1.0.0", "production")
    frame = diabetes()
    folder = path / ".mllc" / "capture" / NAME / "production"
    folder.mkdir(parents=True)
    with (folder / "requests.jsonl").open("w", encoding="utf-8") as out:
        for i, (_, row) in enumerate(frame.head(100).iterrows()):
            inputs = {c: [float(row[c])] for c in features()}
            out.write(json.dumps({"id": str(i), "inputs": inputs, "outputs": {}}) + "\n")
    batch = path / "monitoring" / NAME / "production" / "batch.parquet"
    batch.parent.mkdir(parents=True)
    frame.tail(LABELLED).to_parquet(batch)
    return path


def expected(trained: dict[str, Any], candidate: str) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import mean_squared_error

    frame = diabetes()
    batch = frame.tail(LABELLED)
    mine, theirs = trained[candidate], trained["v1.0.0"]
    a = [*mine.predict(frame.head(100)[features()]), *mine.predict(batch[features()])]
    b = [*theirs.predict(frame.head(100)[features()]), *theirs.predict(batch[features()])]
    spread = float(np.std(b))
    y = [float(v) for v in batch["target"]]
    edges = quartile_edges(y)
    bins = [bin_label(v, edges) for v in y]

    def rmse(model: Any, rows: list[bool]) -> float:
        X = batch[features()][rows]
        truth = batch["target"][rows]
        return round(math.sqrt(mean_squared_error(truth, model.predict(X))), 6)

    every = [True] * LABELLED
    return {
        "environment": "production",
        "candidate": candidate,
        "running": "v1.0.0",
        "requests": 100,
        "differing": sum(abs(p - q) > spread / 10 for p, q in zip(a, b, strict=True)),
        "predictions": 100 + LABELLED,
        "labelled": LABELLED,
        "metric": {"name": "rmse", "candidate": rmse(mine, every),
                   "running": rmse(theirs, every), "higher_is_better": False},
        "groups": [
            {"name": label, "candidate": rmse(mine, [x == label for x in bins]),
             "running": rmse(theirs, [x == label for x in bins]), "higher_is_better": False}
            for label in dict.fromkeys(sorted(set(bins), key=bins.index))
        ],
        "group_kind": "bin",
    }  # fmt: skip


def recorded(repo: Path, candidate: str) -> dict[str, Any]:
    md5 = {v.version: v.model_md5 for v in list_versions(repo, NAME)}
    path = repo / record_path(NAME, "production", md5[candidate], md5["v1.0.0"])
    numbers: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["numbers"]
    numbers.pop("p95_ms")
    return numbers


def test_a_close_regressor_passes_and_a_stump_fails_per_bin(
    repo: Path, trained: dict[str, Any]
) -> None:
    good = mllc(repo, "promote", NAME, "v1.1.0", "--to", "production")
    assert good.returncode == 0, good.stderr
    assert recorded(repo, "v1.1.0") == expected(trained, "v1.1.0")
    message = git(repo, "log", "-1", "--format=%B", "mllc/promote-diabetes-v1.1.0-production")
    assert "  wins_on_replay: disagreement " in message and " worst bin " in message

    bad = mllc(repo, "promote", NAME, "v1.2.0", "--to", "production")
    assert bad.returncode == 1
    want = expected(trained, "v1.2.0")
    assert recorded(repo, "v1.2.0") == want
    m = want["metric"]
    assert bad.stderr.startswith(
        "error: diabetes v1.2.0 cannot go to production: wins_on_replay: v1.2.0 vs v1.0.0 "
        f"fails: disagreement {want['differing'] / want['predictions'] * 100:.1f}% > 50%; "
        f"rmse {m['candidate']:.4g} vs {m['running']:.4g} ({m['candidate'] - m['running']:+.3f}"
        f", a drop of {m['candidate'] - m['running']:.3g} > 5); worst bin "
    ), bad.stderr
