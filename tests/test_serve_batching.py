"""Adaptive batching (mllc.serve.batching): concurrent requests for one model predicted in one
call, each answered with its own rows, as it would have been alone.

In-process tests hold the model busy on a gate so that requests queue behind it and are
batched for sure (no timing involved); the HTTP tests run real servers on 127.0.0.1 under
concurrent load and compare every answer with the model's own predictions and with an
unbatched server's answers.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from test_serve import Server, columns_request

from mllc.serve.app import App, Identity
from mllc.serve.model import ServedModel
from mllc.serve.server import _parser, _settings, main

INFER = "/v2/models/iris/infer"
DEADLINE = 30.0


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame.drop(columns="target")


@pytest.fixture(scope="module")
def model_file(iris: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scaler + logistic regression, no imputer: a null value makes predict raise (a 422)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    y = load_iris().target
    pipeline = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=1000))])
    path = tmp_path_factory.mktemp("batching") / "model.joblib"
    joblib.dump(pipeline.fit(iris, y), path)
    return path


class GatedModel(ServedModel):
    """The real model, whose first predict call waits for ``gate``: requests queue meanwhile."""

    def __init__(self, estimator: Any) -> None:
        super().__init__(estimator)
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls: list[int] = []  # rows per predict call
        self._first = True

    def predict(self, columns: dict[str, np.ndarray], outputs: tuple[str, ...]) -> dict[str, Any]:
        if self._first:
            self._first = False
            self.started.set()
            assert self.gate.wait(DEADLINE)
        self.calls.append(len(next(iter(columns.values()))))
        return super().predict(columns, outputs)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def request(frame: pd.DataFrame, outputs: list[str] | None = None) -> bytes:
    doc = columns_request(frame, id=f"r{frame.index[0]}-{len(frame)}")
    if outputs is not None:
        doc["outputs"] = [{"name": n} for n in outputs]
    return json.dumps(doc).encode()


def expected(estimator: Any, frame: pd.DataFrame, outputs: list[str] | None) -> dict[str, Any]:
    wanted = outputs or ["predict", "predict_proba"]
    values = {"predict": estimator.predict(frame), "predict_proba": estimator.predict_proba(frame)}
    return {n: values[n] for n in wanted}


def check(body: dict[str, Any], want: dict[str, Any]) -> None:
    """The answer's outputs are the model's own: labels exactly, probabilities to 1e-12
    (a matrix product over more rows may round the last bit otherwise)."""
    got = {o["name"]: o for o in body["outputs"]}
    assert list(got) == list(want)
    for name, values in want.items():
        assert got[name]["shape"] == list(values.shape)
        data = np.array(got[name]["data"]).reshape(values.shape)
        if name == "predict":
            assert data.tolist() == values.tolist()
        else:
            np.testing.assert_allclose(data, values, rtol=0, atol=1e-12)


def gated_app(model_file: Path, max_batch_size: int = 64) -> tuple[App, GatedModel]:
    model = GatedModel(joblib.load(model_file))
    identity = Identity("iris", "staging", "v1.0.0", "0" * 32, "0")
    return App(model, identity, workers=1, max_batch_size=max_batch_size), model


def run_concurrently(app: App, bodies: list[bytes], model: GatedModel) -> list[Any]:
    """Dispatch ``bodies`` from threads while the model is held busy, then release it."""
    replies: list[Any] = [None] * len(bodies)

    def send(i: int) -> None:
        replies[i] = app.dispatch("POST", INFER, None, lambda: bodies[i])

    first = threading.Thread(target=send, args=(0,))
    first.start()
    assert model.started.wait(DEADLINE)  # the worker is inside the first predict call
    threads = [threading.Thread(target=send, args=(i,)) for i in range(1, len(bodies))]
    for t in threads:
        t.start()
    batcher = app.batchers["v1.0.0"]
    wait_until(lambda: len(batcher.queue) == len(bodies) - 1)  # all queued behind it
    model.gate.set()
    for t in [first, *threads]:
        t.join(DEADLINE)
    return replies


# ------------------------------------------------------------------ in process, for sure batched


def test_queued_requests_are_predicted_in_one_call_each_with_its_own_rows(
    model_file: Path, iris: pd.DataFrame
) -> None:
    app, model = gated_app(model_file)
    estimator = joblib.load(model_file)
    cases: list[tuple[pd.DataFrame, list[str] | None]] = [
        (iris.iloc[[0]], None),
        (iris.iloc[[50]], ["predict"]),
        (iris.iloc[10:17], ["predict_proba"]),
        (iris.iloc[[140]], None),
        (iris.iloc[60:62], ["predict_proba", "predict"]),
        (iris.iloc[[149]], ["predict"]),
    ]
    replies = run_concurrently(app, [request(f, o) for f, o in cases], model)
    assert model.calls == [1, 1 + 7 + 1 + 2 + 1]  # the first alone, the 5 queued together
    assert app.batchers["v1.0.0"].batches == 1
    for (frame, outputs), reply in zip(cases, replies, strict=True):
        assert reply.status == 200, reply.body
        body = json.loads(reply.body)
        assert body["id"] == f"r{frame.index[0]}-{len(frame)}"
        check(body, expected(estimator, frame, outputs))


def test_a_bad_request_in_a_batch_does_not_fail_the_others(
    model_file: Path, iris: pd.DataFrame
) -> None:
    app, model = gated_app(model_file)
    estimator = joblib.load(model_file)
    bad = columns_request(iris.iloc[[3]])
    bad["inputs"][1]["data"] = [None]  # null: the scaler passes it, the regression refuses it
    bodies = [request(iris.iloc[[0]]), request(iris.iloc[[70]]), json.dumps(bad).encode(),
              request(iris.iloc[100:103]), request(iris.iloc[[20]])]  # fmt: skip
    replies = run_concurrently(app, bodies, model)
    assert [r.status for r in replies] == [200, 200, 422, 200, 200]
    assert "the model cannot predict on these inputs" in json.loads(replies[2].body)["error"]
    assert "NaN" in json.loads(replies[2].body)["error"]
    # the batch of 4 failed as a whole, then each was predicted alone
    assert model.calls == [1, 1 + 1 + 3 + 1, 1, 1, 3, 1]
    for frame, reply in zip([iris.iloc[[70]], iris.iloc[100:103], iris.iloc[[20]]],
                            [replies[1], replies[3], replies[4]], strict=True):  # fmt: skip
        check(json.loads(reply.body), expected(estimator, frame, None))


def test_requests_of_other_dtypes_are_not_stacked(model_file: Path, iris: pd.DataFrame) -> None:
    """Integers stacked with floats would be floats: each request keeps the dtypes it sent."""
    app, model = gated_app(model_file)
    estimator = joblib.load(model_file)
    ints = {"inputs": [{"name": c, "shape": [2], "datatype": "INT64", "data": [5, 3]}
                       for c in iris.columns]}  # fmt: skip
    bodies = [request(iris.iloc[[0]]), request(iris.iloc[[1]]), json.dumps(ints).encode(),
              request(iris.iloc[[2]])]  # fmt: skip
    replies = run_concurrently(app, bodies, model)
    assert [r.status for r in replies] == [200] * 4
    assert model.calls == [1, 2, 2]  # the float requests together, the integers alone
    frame = pd.DataFrame({c: [5, 3] for c in iris.columns})
    check(json.loads(replies[2].body), expected(estimator, frame, None))


def test_max_batch_size_caps_a_batch(model_file: Path, iris: pd.DataFrame) -> None:
    app, model = gated_app(model_file, max_batch_size=2)
    replies = run_concurrently(app, [request(iris.iloc[[i]]) for i in range(6)], model)
    assert [r.status for r in replies] == [200] * 6
    assert model.calls == [1, 2, 2, 1]


def test_one_request_alone_is_predicted_at_once(model_file: Path, iris: pd.DataFrame) -> None:
    app, model = gated_app(model_file)
    model.gate.set()
    for i in range(3):
        assert app.dispatch("POST", INFER, None, lambda i=i: request(iris.iloc[[i]])).status == 200
    assert model.calls == [1, 1, 1] and app.batchers["v1.0.0"].batches == 0


# ------------------------------------------------------------------ real servers, real load


@pytest.fixture
def servers(model_file: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []
    md5 = hashlib.md5(model_file.read_bytes()).hexdigest()

    def start(*extra: str) -> Server:
        argv = ["--name", "iris", "--env", "staging", "--version", "v1.0.0", "--model-md5", md5,
                "--model-file", str(model_file), "--port", "0", *extra]  # fmt: skip
        server = Server(tmp_path / f"server-{len(started)}", argv, None)
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def _hammer(server: Server, cases: list[tuple[pd.DataFrame, list[str] | None, bool]]) -> list[Any]:
    """Every case sent once, from 16 keep-alive connections at once; (status, body) each."""
    results: list[Any] = [None] * len(cases)

    def client(start: int) -> None:
        conn = server.conn()
        for i in range(start, len(cases), 16):
            frame, outputs, bad = cases[i]
            doc = json.loads(request(frame, outputs))
            if bad:
                doc["inputs"][0]["data"] = [None] * len(frame)
            status, body, _ = server.call("POST", INFER, doc, conn=conn)
            results[i] = (status, body)
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_answers_are_the_unbatched_ones(
    servers: Any, model_file: Path, iris: pd.DataFrame
) -> None:
    estimator = joblib.load(model_file)
    rng = np.random.default_rng(7)
    cases = []
    for i in range(240):
        start = int(rng.integers(0, 140))
        frame = iris.iloc[start : start + int(rng.integers(1, 6))]
        outputs = [None, ["predict"], ["predict_proba"]][i % 3]
        cases.append((frame, outputs, i % 17 == 5))  # some requests the model refuses
    batched = _hammer(servers("--workers", "1", "--max-batch-size", "64"), cases)
    unbatched = _hammer(servers("--max-batch-size", "1"), cases)
    for (frame, outputs, bad), (status, body), (status1, body1) in zip(
        cases, batched, unbatched, strict=True
    ):
        if bad:
            assert (status, status1) == (422, 422), body
            assert body == body1
            continue
        assert (status, status1) == (200, 200), body
        check(body, expected(estimator, frame, outputs))
        assert body["id"] == body1["id"]
        for mine, theirs in zip(body["outputs"], body1["outputs"], strict=True):
            if mine["name"] == "predict":
                assert mine == theirs
            else:
                np.testing.assert_allclose(mine["data"], theirs["data"], rtol=0, atol=1e-12)


def test_max_batch_size_is_a_setting(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--name", "iris", "--env", "staging", "--version", "v1.0.0",
            "--model-md5", "0" * 32, "--model-file", "model.joblib"]  # fmt: skip
    args = _parser().parse_args(argv)
    assert (_settings(args, 8080)["max_batch_size"], _settings(args, 8080)["workers"]) == (64, 2)
    args = _parser().parse_args([*argv, "--max-batch-size", "1"])
    assert _settings(args, 8080)["max_batch_size"] == 1
    for value in ("0", "10001"):
        assert main([*argv, "--max-batch-size", value]) == 1
        err = capsys.readouterr().err
        assert err == (
            "error: --max-batch-size must be at least 1 (no batching) and at most 10000\n"
        )
