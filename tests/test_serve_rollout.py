"""A canary or a shadow inside one ``mllc serve`` process: real servers on 127.0.0.1, real
scikit-learn models saved by joblib, real traffic; every number of the rollout file is
checked against what the test sent and against the models' own predictions here."""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import math
import operator
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from test_serve import Server, columns_request

from mllc.serve.server import main

INFER = "/v2/models/iris/infer"
POLL = 30.0  # seconds a condition may take to become true (a deadline, not a wait)


@dataclass
class Saved:
    path: Path
    md5: str
    estimator: Any

    def predict(self, frame: pd.DataFrame) -> list[Any]:
        return list(self.estimator.predict(frame).tolist())


def _save(folder: Path, name: str, estimator: Any) -> Saved:
    path = folder / f"{name}.joblib"
    joblib.dump(estimator, path)
    return Saved(path, hashlib.md5(path.read_bytes()).hexdigest(), joblib.load(path))


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame


@pytest.fixture(scope="module")
def models(iris: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Saved]:
    """stable: logistic regression; candidate: a one-split tree (disagrees on some rows);
    broken: a pipeline whose first step raises KeyError on any input; regressor and
    regressor2: two float-valued models of petal width."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    folder = tmp_path_factory.mktemp("rollout-models")
    X, y = iris.drop(columns="target"), iris["target"]
    broken = Pipeline(
        [("pick", FunctionTransformer(None)), ("tree", DecisionTreeClassifier(random_state=0))]
    ).fit(X, y)
    broken.steps[0][1].func = operator.itemgetter("no such column")  # fitted, then broken
    Xr, yr = X.drop(columns="petal width (cm)"), X["petal width (cm)"]
    return {
        "stable": _save(
            folder,
            "stable",
            Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=1000))]).fit(
                X, y
            ),
        ),
        "candidate": _save(
            folder, "candidate", DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
        ),
        "broken": _save(folder, "broken", broken),
        "regressor": _save(folder, "regressor", LinearRegression().fit(Xr, yr)),
        "regressor2": _save(folder, "regressor2", Ridge(alpha=50.0).fit(Xr, yr)),
    }


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(stable: Saved, candidate: Saved | None, *extra: str, wait: bool = True) -> Server:
        argv = [
            "--name", "iris", "--env", "production", "--version", "v1.0.0",
            "--model-md5", stable.md5, "--model-file", str(stable.path), "--port", "0",
        ]  # fmt: skip
        if candidate is not None:
            argv += [
                "--canary-version", "v1.1.0", "--canary-model-md5", candidate.md5,
                "--canary-model-file", str(candidate.path),
                "--rollout-id", "iris#production_canary#3",
                "--rollout-file", str(tmp_path / f"rollout-{len(started)}.json"),
            ]  # fmt: skip
        server = Server(tmp_path / f"server-{len(started)}", [*argv, *extra], None)
        server.rollout_file = tmp_path / f"rollout-{len(started)}.json"  # type: ignore[attr-defined]
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def rollout_file(server: Server) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(server.rollout_file.read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    return data


def wait_for(server: Server, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The rollout file once ``done`` holds for it (the server rewrites it every second)."""
    deadline = time.monotonic() + POLL
    while True:
        data = rollout_file(server)
        if done(data):
            return data
        assert time.monotonic() < deadline, f"rollout file never got there: {data}"
        time.sleep(0.05)


def infer(server: Server, frame: pd.DataFrame, conn: http.client.HTTPConnection | None = None,
          path: str = INFER) -> tuple[int, Any]:  # fmt: skip
    status, body, _ = server.call("POST", path, columns_request(frame), conn=conn)
    return status, body


def predictions(body: dict[str, Any]) -> list[Any]:
    return next(o["data"] for o in body["outputs"] if o["name"] == "predict")


def routed_to_candidate(k: int, weight: int) -> bool:
    return (k + 1) * weight // 100 > k * weight // 100


def labels(values: list[Any]) -> dict[str, int]:
    return dict(sorted(Counter(str(v) for v in values).items()))


# ------------------------------------------------------------------ canary


def test_canary_routes_the_exact_share_and_records_it(
    serve: Any, models: dict[str, Saved], iris: pd.DataFrame
) -> None:
    stable, candidate = models["stable"], models["candidate"]
    server = serve(stable, candidate, "--rollout-mode", "canary", "--canary-weight", "10")
    X = iris.drop(columns="target")
    conn = server.conn()
    answered: list[str] = []
    compared_rows: list[tuple[Any, Any]] = []
    for k in range(120):
        row = X.iloc[[k]]
        status, body = infer(server, row, conn)
        assert status == 200, body
        answered.append(body["model_version"])
        side = candidate if body["model_version"] == "v1.1.0" else stable
        assert body["parameters"] == {"model_md5": side.md5}
        assert predictions(body) == side.predict(row)  # answered by that version's model
        if side is candidate:
            compared_rows.append((stable.predict(row)[0], candidate.predict(row)[0]))
    assert answered == ["v1.1.0" if routed_to_candidate(k, 10) else "v1.0.0" for k in range(120)]
    assert answered.count("v1.1.0") == 12
    # the version-specific endpoints answer from either version and take no routing turn
    for version, side in (("v1.1.0", candidate), ("v1.0.0", stable)):
        status, body = infer(server, X.iloc[:5], conn, f"/v2/models/iris/versions/{version}/infer")
        assert (status, body["model_version"]) == (200, version)
        assert predictions(body) == side.predict(X.iloc[:5])
        if side is candidate:
            compared_rows += list(
                zip(stable.predict(X.iloc[:5]), side.predict(X.iloc[:5]), strict=True)
            )
    status, body = infer(server, X.iloc[[120]], conn)
    assert body["model_version"] == ("v1.1.0" if routed_to_candidate(120, 10) else "v1.0.0")
    conn.close()

    data = wait_for(server, lambda d: d["compared"] == 13)
    differing = sum(a != b for a, b in compared_rows[:12]) + int(
        any(a != b for a, b in compared_rows[12:])
    )
    assert differing > 0  # the two models do disagree on iris
    assert {k: v for k, v in data.items() if not k.endswith("_stats")} == {
        "rollout_id": "iris#production_canary#3",
        "mode": "canary",
        "weight": 10,
        "started": data["started"],
        "updated": data["updated"],
        "stable": {"version": "v1.0.0", "model_md5": stable.md5},
        "candidate": {"version": "v1.1.0", "model_md5": candidate.md5},
        "compared": 13,
        "differing": differing,
        "dropped": 0,
        "predictions": {
            "stable": labels([a for a, _ in compared_rows]),
            "candidate": labels([b for _, b in compared_rows]),
        },
    }
    assert data["started"] <= data["updated"]
    for key, requests in (("candidate_stats", 13), ("stable_stats", 110)):
        stats = data[key]
        assert (stats["requests"], stats["errors"]) == (requests, 0)
        assert all(isinstance(stats[p], float) for p in ("p50_ms", "p95_ms", "p99_ms"))
        assert stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]

    # state file: the canary is a top-level "rollout", not a setting; the metadata says it too
    rollout = {
        "mode": "canary",
        "weight": 10,
        "rollout_id": "iris#production_canary#3",
        "file": str(server.rollout_file),  # type: ignore[attr-defined]
        "candidate": {"version": "v1.1.0", "model_md5": candidate.md5},
    }
    assert server.state["rollout"] == rollout
    assert not {k for k in server.state["settings"] if "canary" in k or "rollout" in k}
    status, meta, _ = server.call("GET", "/v2/models/iris")
    assert (meta["versions"], meta["parameters"]) == (
        ["v1.0.0", "v1.1.0"],
        {"model_md5": stable.md5, "environment": "production", "rollout": rollout},
    )
    meta = server.call("GET", "/v2/models/iris/versions/v1.1.0")[1]
    assert (meta["versions"], meta["parameters"]["model_md5"]) == (["v1.1.0"], candidate.md5)
    assert server.call("GET", "/v2/models/iris/versions/v1.1.0/ready")[0] == 200
    assert server.call("POST", "/v2/models/iris/versions/v2.0.0/infer", {})[0] == 404

    assert server.stop() == 0
    final = rollout_file(server)  # written once more at stop, the same numbers
    assert {k: v for k, v in final.items() if k != "updated"} == {
        k: v for k, v in data.items() if k != "updated"
    }


def test_concurrent_canary_keeps_the_share_within_half_a_batch(
    serve: Any, models: dict[str, Saved], iris: pd.DataFrame
) -> None:
    """Requests that wait together go to one version (mllc.serve.rollout: route_batch): with
    batches of at most 4, the candidate's count stays within 4 / 2 + 1 of its share."""
    server = serve(
        models["stable"], models["candidate"], "--rollout-mode", "canary", "--canary-weight", "50",
        "--max-batch-size", "4",
    )  # fmt: skip
    X = iris.drop(columns="target")
    seen: list[str] = []
    lock = threading.Lock()
    sides = {"v1.0.0": models["stable"], "v1.1.0": models["candidate"]}

    def client(offset: int) -> None:
        conn = server.conn()
        for i in range(25):
            row = X.iloc[[(offset * 25 + i) % len(X)]]
            status, body = infer(server, row, conn)
            assert status == 200
            # batched with other requests, each answer is still its version's own
            assert predictions(body) == sides[body["model_version"]].predict(row)
            with lock:
                seen.append(body["model_version"])
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(seen)
    assert sum(counts.values()) == 200 and abs(counts["v1.1.0"] - 100) <= 3, counts
    answered = counts["v1.1.0"]
    data = wait_for(server, lambda d: d["compared"] + d["dropped"] == answered)
    assert (data["candidate_stats"]["requests"], data["stable_stats"]["requests"]) == (
        answered,
        200 - answered,
    )


def test_weight_0_and_100(serve: Any, models: dict[str, Saved], iris: pd.DataFrame) -> None:
    X = iris.drop(columns="target")
    for weight, version in (("0", "v1.0.0"), ("100", "v1.1.0")):
        server = serve(
            models["stable"], models["candidate"], "--rollout-mode", "canary",
            "--canary-weight", weight,
        )  # fmt: skip
        conn = server.conn()
        assert {infer(server, X.iloc[[i]], conn)[1]["model_version"] for i in range(30)} == {
            version
        }
        conn.close()
        assert server.stop() == 0


# ------------------------------------------------------------------ shadow


def test_shadow_never_changes_an_answer_and_records_the_comparison(
    serve: Any, models: dict[str, Saved], iris: pd.DataFrame
) -> None:
    stable, candidate = models["stable"], models["candidate"]
    server = serve(stable, candidate, "--rollout-mode", "shadow")
    X = iris.drop(columns="target")
    conn = server.conn()
    sizes = [1, 3, 1, 7, 2] * 12  # 60 requests, some with several rows
    offset = 0
    differing = 0
    pairs: list[tuple[Any, Any]] = []
    for size in sizes:
        frame = X.iloc[offset : offset + size]
        offset = (offset + size) % (len(X) - 8)
        status, body = infer(server, frame, conn)
        assert status == 200 and body["model_version"] == "v1.0.0"
        mine = stable.estimator
        assert predictions(body) == mine.predict(frame).tolist()  # the stable model's own answer
        proba = next(o for o in body["outputs"] if o["name"] == "predict_proba")
        np.testing.assert_array_equal(
            np.array(proba["data"]).reshape(proba["shape"]), mine.predict_proba(frame)
        )
        theirs = candidate.predict(frame)
        differing += predictions(body) != theirs
        pairs += list(zip(predictions(body), theirs, strict=True))
    conn.close()
    data = wait_for(server, lambda d: d["compared"] + d["dropped"] == len(sizes))
    assert data["dropped"] == 0
    assert differing > 0
    assert (data["mode"], data["weight"], data["compared"], data["differing"]) == (
        "shadow",
        0,
        len(sizes),
        differing,
    )
    assert data["predictions"] == {
        "stable": labels([a for a, _ in pairs]),
        "candidate": labels([b for _, b in pairs]),
    }
    # the shadow saw every request; the stable answered them all
    assert data["candidate_stats"]["requests"] == data["stable_stats"]["requests"] == len(sizes)
    assert server.state["rollout"]["weight"] == 0


def test_shadow_of_a_regressor_counts_ten_fixed_bins(
    serve: Any, models: dict[str, Saved], iris: pd.DataFrame
) -> None:
    stable, candidate = models["regressor"], models["regressor2"]
    server = serve(stable, candidate, "--rollout-mode", "shadow")
    X = iris.drop(columns=["target", "petal width (cm)"])
    conn = server.conn()
    order = [i % len(X) for i in range(0, 250 * 7, 7)]
    for i in order:
        assert infer(server, X.iloc[[i]], conn)[0] == 200
    conn.close()
    data = wait_for(server, lambda d: d["compared"] == 250)
    mine = stable.estimator.predict(X.iloc[order])
    theirs = candidate.estimator.predict(X.iloc[order])
    edges = sorted({float(v) for v in np.quantile(mine[:200], [i / 10 for i in range(1, 10)])})
    bounds = [-math.inf, *edges, math.inf]

    def text(v: float) -> str:
        return {math.inf: "inf", -math.inf: "-inf"}.get(v, f"{v:.6g}")

    def binned(values: np.ndarray) -> dict[str, int]:
        return {
            f"[{text(a)}, {text(b)})": int(((values >= a) & (values < b)).sum())
            for a, b in itertools.pairwise(bounds)
        }

    assert len(edges) == 9
    assert data["predictions"] == {"stable": binned(mine), "candidate": binned(theirs)}
    assert data["differing"] == 250  # two different regressors never agree exactly


# ------------------------------------------------------------------ a failing candidate


def test_a_candidate_that_raises_is_counted_as_errors(
    serve: Any, models: dict[str, Saved], iris: pd.DataFrame
) -> None:
    stable, broken = models["stable"], models["broken"]
    X = iris.drop(columns="target")
    canary = serve(stable, broken, "--rollout-mode", "canary", "--canary-weight", "50")
    conn = canary.conn()
    statuses = []
    for k in range(40):
        status, body = infer(canary, X.iloc[[k]], conn)
        statuses.append(status)
        if routed_to_candidate(k, 50):
            assert status == 500 and "model version v1.1.0 failed: KeyError" in body["error"]
        else:
            assert (status, predictions(body)) == (200, stable.predict(X.iloc[[k]]))
    conn.close()
    assert Counter(statuses) == {200: 20, 500: 20}
    data = wait_for(canary, lambda d: d["candidate_stats"]["requests"] == 20)
    assert (data["candidate_stats"]["errors"], data["stable_stats"]["errors"]) == (20, 0)
    assert (data["compared"], data["differing"], data["dropped"]) == (0, 0, 0)
    assert canary.stop() == 0
    assert "Traceback" not in canary.stderr()

    shadow = serve(stable, broken, "--rollout-mode", "shadow")
    conn = shadow.conn()
    for k in range(30):  # a failing shadow changes no answer
        status, body = infer(shadow, X.iloc[[k]], conn)
        assert (status, predictions(body)) == (200, stable.predict(X.iloc[[k]]))
    conn.close()
    data = wait_for(shadow, lambda d: d["candidate_stats"]["requests"] == 30)
    assert (data["candidate_stats"]["errors"], data["stable_stats"]["requests"]) == (30, 30)
    assert data["compared"] == 0


# ------------------------------------------------------------------ refusals


def test_a_candidate_with_the_wrong_md5_is_refused(
    serve: Any, models: dict[str, Saved], tmp_path: Path
) -> None:
    stable, candidate = models["stable"], models["candidate"]
    wrong = Saved(candidate.path, "f" * 32, None)
    server = serve(stable, wrong, "--rollout-mode", "canary", "--canary-weight", "10", wait=False)
    assert server.proc.wait(timeout=60) == 1
    err = server.stderr()
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"has md5 {candidate.md5}, the registry says {'f' * 32}" in err
    assert str(candidate.path) in err
    assert not server.state_file.exists()
    assert not server.rollout_file.exists()  # type: ignore[attr-defined]


BASE = ["--name", "iris", "--env", "production", "--version", "v1.0.0",
        "--model-md5", "0" * 32, "--model-file", "m.joblib"]  # fmt: skip
CANDIDATE = ["--canary-version", "v1.1.0", "--canary-model-md5", "1" * 32,
             "--canary-model-file", "c.joblib"]  # fmt: skip
ID = ["--rollout-id", "iris#production_canary#7"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--canary-weight", "10"], "--canary-weight needs a candidate: give --canary-version too"),
        (["--rollout-mode", "shadow"], "--rollout-mode needs a candidate"),
        (CANDIDATE[:2], "--canary-version needs --canary-model-md5, --canary-model-file too"),
        ([*CANDIDATE, *ID, "--canary-weight", "10"], "--canary-version needs --rollout-mode"),
        ([*CANDIDATE, "--rollout-mode", "canary", "--canary-weight", "10"],
         "--rollout-id is missing"),
        ([*CANDIDATE, "--rollout-mode", "canary", "--canary-weight", "10",
          "--rollout-id", "a b"], "--rollout-id 'a b' is invalid"),
        ([*CANDIDATE, *ID, "--rollout-mode", "canary"], "needs --canary-weight (0..100)"),
        ([*CANDIDATE, *ID, "--rollout-mode", "canary", "--canary-weight", "101"],
         "--canary-weight 101 is not a percentage"),
        ([*CANDIDATE, *ID, "--rollout-mode", "shadow", "--canary-weight", "5"],
         "--canary-weight 5 with --rollout-mode shadow: must be 0"),
        ([*CANDIDATE, *ID, "--rollout-mode", "blue"], "invalid choice: 'blue'"),
        ([*CANDIDATE[:-2], "--canary-model-file", "c.joblib", "--canary-model-md5", "xyz", *ID,
          "--rollout-mode", "shadow"], "--canary-model-md5 'xyz' is not an md5"),
        (["--canary-version", "v1.0.0", *CANDIDATE[2:], *ID, "--rollout-mode", "shadow"],
         "--canary-version v1.0.0 is --version too"),
        (["--canary-version", "v 2", *CANDIDATE[2:], *ID, "--rollout-mode", "shadow"],
         "--canary-version 'v 2': use letters"),
    ],
)  # fmt: skip
def test_rollout_options_are_checked(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*BASE, *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
