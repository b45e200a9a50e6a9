"""A canary's traffic split (mllc.serve.rollout.Rollout.route_batch) and the routed batcher
that applies it (mllc.serve.app, mllc.serve.batching): requests that waited together are
answered by one version in one predict call, and the candidate's share stays within half a
batch of its weight.

The rule is checked on its own (no server); the batcher in process, with both models held
busy on a gate so that requests queue for sure (no timing involved)."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from test_serve_batching import DEADLINE, INFER, GatedModel, request, wait_until

from mllc.serve.app import App, Identity
from mllc.serve.model import ServedModel
from mllc.serve.protocol import Schema, Tensor
from mllc.serve.rollout import CANARY, CANDIDATE, SHADOW, STABLE, Rollout, Side


def rollout(weight: int, stable: Any = None, candidate: Any = None, mode: str = CANARY) -> Rollout:
    return Rollout(
        mode, weight, "iris#production_canary#1", None,
        Side("v1.0.0", "0" * 32, stable), Side("v1.1.0", "1" * 32, candidate),
    )  # fmt: skip


class _Model:
    """Enough of a model for Rollout's constructor (the rule never predicts)."""

    classes = None
    schema = Schema((Tensor("x", "FP64"),), (Tensor("predict", "INT64"),))


def split(weight: int, mode: str = CANARY) -> Rollout:
    return rollout(weight, _Model(), _Model(), mode)


# ------------------------------------------------------------------ the rule


@pytest.mark.parametrize("weight", range(101))
def test_one_at_a_time_the_kth_request_goes_by_the_floor_rule(weight: int) -> None:
    """Exactly W of every 100, spread evenly: the k-th request goes to the candidate iff
    floor((k+1)W/100) > floor(kW/100)."""
    r = split(weight)
    got = [r.route() for _ in range(300)]
    want = [
        CANDIDATE if (k + 1) * weight // 100 > k * weight // 100 else STABLE for k in range(300)
    ]
    assert got == want
    assert got.count(CANDIDATE) == 3 * weight


@pytest.mark.parametrize("weight", [1, 5, 10, 25, 33, 50, 67, 90, 99])
@pytest.mark.parametrize("largest", [2, 7, 64])
def test_batches_keep_the_share_within_half_a_batch(weight: int, largest: int) -> None:
    r = split(weight)
    rng = random.Random(weight * 1000 + largest)
    routed = candidate = 0
    worst = 0.0
    for _ in range(2000):
        n = rng.randint(1, largest)
        if r.route_batch(n) == CANDIDATE:
            candidate += n
        routed += n
        error = candidate - routed * weight / 100
        worst = max(worst, abs(error))
        assert abs(error) <= largest / 2 + 1, (routed, candidate)
    # both versions answered, in about the right share
    assert 0 < candidate < routed
    assert worst > 0


@pytest.mark.parametrize(("weight", "expected"), [(0, STABLE), (100, CANDIDATE)])
def test_weight_0_and_100_route_every_batch_to_one_version(weight: int, expected: str) -> None:
    r = split(weight)
    rng = random.Random(weight)
    assert {r.route_batch(rng.randint(1, 64)) for _ in range(500)} == {expected}


def test_a_shadow_routes_everything_to_the_stable_version() -> None:
    r = split(0, SHADOW)
    assert {r.route_batch(n) for n in (1, 5, 64, 1)} == {STABLE}


# ------------------------------------------------------------------ the routed batcher


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame.drop(columns="target")


@pytest.fixture(scope="module")
def estimators(iris: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two classifiers on the iris columns, and a regressor on three of them."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    y = load_iris().target
    folder = tmp_path_factory.mktemp("split")
    fitted = {
        "stable": LogisticRegression(max_iter=1000).fit(iris, y),
        "candidate": DecisionTreeClassifier(max_depth=1, random_state=0).fit(iris, y),
        "other_inputs": LinearRegression().fit(iris.iloc[:, :3], iris.iloc[:, 3]),
    }
    paths = {}
    for name, estimator in fitted.items():
        paths[name] = folder / f"{name}.joblib"
        joblib.dump(estimator, paths[name])
    return paths


def canary_app(stable: ServedModel, candidate: ServedModel, weight: int) -> App:
    identity = Identity("iris", "production", "v1.0.0", "0" * 32, "0")
    return App(
        stable, identity, workers=1, rollout=rollout(weight, stable, candidate), max_batch_size=64
    )


def test_requests_that_waited_together_are_one_call_of_the_version_the_split_picks(
    estimators: dict[str, Path], iris: pd.DataFrame
) -> None:
    stable = GatedModel(joblib.load(estimators["stable"]))
    candidate = GatedModel(joblib.load(estimators["candidate"]))
    candidate.gate.set()
    app = canary_app(stable, candidate, 50)
    assert app.routed is not None
    replies: list[Any] = [None] * 10

    def send(i: int) -> None:
        replies[i] = app.dispatch("POST", INFER, None, lambda: request(iris.iloc[[i * 10]]))

    first = threading.Thread(target=send, args=(0,))
    first.start()
    assert stable.started.wait(DEADLINE)  # request 0, alone: the stable version's turn
    threads = [threading.Thread(target=send, args=(i,)) for i in range(1, 10)]
    for t in threads:
        t.start()
    wait_until(lambda: len(app.routed.queue) == 9)  # type: ignore[union-attr]
    stable.gate.set()
    for t in [first, *threads]:
        t.join(DEADLINE)
    # 1 routed, 0 to the candidate; the 9 waiting: floor(10 * 50%) - 0 = 5 >= 9 / 2
    assert (stable.calls, candidate.calls) == ([1], [9])
    versions = [json.loads(r.body)["model_version"] for r in replies]
    assert versions == ["v1.0.0"] + ["v1.1.0"] * 9
    for i, reply in enumerate(replies):
        model = stable if i == 0 else candidate
        want = model.estimator.predict(iris.iloc[[i * 10]]).tolist()
        assert json.loads(reply.body)["outputs"][0]["data"] == want
    assert app.rollout is not None
    numbers = app.rollout.snapshot()
    assert (numbers["stable_stats"]["requests"], numbers["candidate_stats"]["requests"]) == (1, 9)


def test_a_candidate_failing_on_its_batch_fails_each_request_as_its_own(
    estimators: dict[str, Path], iris: pd.DataFrame
) -> None:
    stable = ServedModel(joblib.load(estimators["stable"]))
    candidate = ServedModel(joblib.load(estimators["candidate"]))
    candidate.predict = _raises  # type: ignore[method-assign]
    app = canary_app(stable, candidate, 100)
    reply = app.dispatch("POST", INFER, None, lambda: request(iris.iloc[[0]]))
    assert reply.status == 500
    assert json.loads(reply.body)["error"] == "model version v1.1.0 failed: RuntimeError: down"
    assert app.rollout is not None
    assert app.rollout.snapshot()["candidate_stats"]["errors"] == 1


def _raises(columns: dict[str, np.ndarray], outputs: tuple[str, ...]) -> dict[str, Any]:
    raise RuntimeError("down")


def test_versions_with_other_inputs_are_routed_one_request_at_a_time(
    estimators: dict[str, Path], iris: pd.DataFrame
) -> None:
    """Each request is decoded with the schema of the version that answers it, so the split
    is decided before decoding: exactly the one-at-a-time sequence."""
    stable = ServedModel(joblib.load(estimators["stable"]))
    other = ServedModel(joblib.load(estimators["other_inputs"]))
    app = canary_app(stable, other, 50)
    assert app.routed is None
    replies = [
        app.dispatch("POST", INFER, None, lambda i=i: request(iris.iloc[[i]])) for i in range(6)
    ]
    # the stable version takes the four columns; the other's schema refuses the fourth
    assert [r.status for r in replies] == [200, 422, 200, 422, 200, 422]
    assert "petal width (cm)" in json.loads(replies[1].body)["error"]
