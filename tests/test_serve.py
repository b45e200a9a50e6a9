"""The local V2 inference server (``python -m mllc.serve``), run as real processes on loopback.

The served models are built by mllc's own stages on throw-away repositories
(iris: numbers in, integer classes out; churn: text categories in, text
labels out), exactly as a lifecycle's pipeline writes ``model.joblib``.
Requests go through a plain HTTP client (http.client) and through an outside
V2 client, Triton's ``tritonclient.http``; predictions are compared with the
model's own ``predict``/``predict_proba`` in this process.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from test_stages import ROOT, load_spec, make_repo

START_TIMEOUT = 60.0


# ------------------------------------------------------------------ helpers


@dataclass
class Model:
    path: Path
    md5: str
    test: pd.DataFrame  # the held-out split, features only
    target: str

    def load(self) -> Any:
        return joblib.load(self.path)


def _build(root: Path, name: str, drop: str, files: dict[str, Path] | None = None) -> Model:
    spec = load_spec(name)
    del spec["models"][drop]  # one candidate is enough, and fast
    repo = make_repo(root / name, spec, files)
    repo.run("prepare", "split", "train", "evaluate", "select")
    path = repo.dir / "model.joblib"
    target = spec["problem"]["target"]
    frame = pd.read_parquet(repo.dir / "data" / "test.parquet")
    model = joblib.load(path)
    test = frame[list(model.feature_names_in_)]
    return Model(path, hashlib.md5(path.read_bytes()).hexdigest(), test, target)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Model]:
    root = tmp_path_factory.mktemp("models")
    return {
        "iris": _build(root, "iris", "forest"),
        "churn": _build(root, "churn", "boosting", {"data/churn.csv": ROOT / "data/churn.csv"}),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A ``python -m mllc.serve`` process; its stdout/stderr go to files read after it ends."""

    def __init__(self, folder: Path, argv: list[str], env: dict[str, str] | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.state_file = folder / "state.json"
        self.out_path, self.err_path = folder / "stdout", folder / "stderr"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mllc.serve", *argv, "--state-file", str(self.state_file)],
                stdout=out,
                stderr=err,
                env={**os.environ, **(env or {})},
                cwd=ROOT,
            )
        self.port = 0

    def wait_ready(self) -> Server:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.stderr()}")
            if self.state_file.exists():
                self.state = json.loads(self.state_file.read_text(encoding="utf-8"))
                self.port = self.state["port"]
                return self
            time.sleep(0.05)
        raise AssertionError(f"server not ready in {START_TIMEOUT} s: {self.stderr()}")

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        conn: http.client.HTTPConnection | None = None,
    ) -> tuple[int, Any, http.client.HTTPResponse]:
        """(status, parsed JSON body or None, response) of one request."""
        own = conn is None
        c = conn or self.conn()
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        c.request(method, path, body=data, headers=headers or {})
        resp = c.getresponse()
        raw = resp.read()
        if own:
            c.close()
        return resp.status, json.loads(raw) if raw else None, resp

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start servers of a model; every one still running is stopped at the end of the test."""
    started: list[Server] = []

    def start(
        model: Model,
        *extra: str,
        name: str = "iris",
        version: str = "v1.0.0",
        port: int = 0,
        env: dict[str, str] | None = None,
        md5: str | None = None,
        wait: bool = True,
    ) -> Server:
        argv = [
            "--name", name, "--env", "staging", "--version", version,
            "--model-md5", md5 or model.md5, "--model-file", str(model.path),
            "--host", "127.0.0.1", "--port", str(port), *extra,
        ]  # fmt: skip
        server = Server(tmp_path / f"server-{len(started)}", argv, env)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture(scope="module")
def iris_server(
    models: dict[str, Model], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One iris server shared by the read-only tests (small body limit for the 413 cases)."""
    m = models["iris"]
    argv = [
        "--name", "iris", "--env", "staging", "--version", "v1.0.0", "--model-md5", m.md5,
        "--model-file", str(m.path), "--port", "0", "--max-body-bytes", "65536",
    ]  # fmt: skip
    server = Server(tmp_path_factory.mktemp("iris-server"), argv, None).wait_ready()
    yield server
    assert server.stop() == 0


def columns_request(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    """Format (a): one input per feature column."""
    inputs = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            datatype = "FP64"
            data: list[Any] = [None if pd.isna(v) else float(v) for v in values]
        else:
            datatype = "BYTES"
            data = [None if pd.isna(v) else str(v) for v in values]
        inputs.append({"name": column, "shape": [len(frame)], "datatype": datatype, "data": data})
    return {"inputs": inputs, **extra}


def outputs_of(body: dict[str, Any]) -> dict[str, Any]:
    return {o["name"]: o for o in body["outputs"]}


def assert_matches(model: Model, frame: pd.DataFrame, outputs: dict[str, Any]) -> None:
    est = model.load()
    expected = est.predict(frame)
    assert outputs["predict"]["shape"] == [len(frame)]
    assert outputs["predict"]["data"] == expected.tolist()
    proba = est.predict_proba(frame)
    assert outputs["predict_proba"]["shape"] == list(proba.shape)
    assert outputs["predict_proba"]["datatype"] == "FP64"
    got = np.array(outputs["predict_proba"]["data"]).reshape(proba.shape)
    np.testing.assert_allclose(got, proba, rtol=0, atol=1e-12)


INFER = "/v2/models/iris/infer"


# ------------------------------------------------------------------ start-up


def test_hash_mismatch_refuses_to_start(models: dict[str, Model], serve: Any) -> None:
    server = serve(models["iris"], md5="0" * 32, wait=False)
    assert server.proc.wait(timeout=60) == 1
    err = server.stderr()
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert models["iris"].md5 in err and "0" * 32 in err
    assert "Traceback" not in err
    assert not server.state_file.exists()


def test_serve_module_imports_no_heavy_library() -> None:
    code = (
        "import sys, mllc.serve.server; "
        "print(sorted({'numpy', 'pandas', 'sklearn'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_arguments_exit_1_with_one_line(models: dict[str, Model], serve: Any) -> None:
    server = serve(models["iris"], "--port", "70000", wait=False)
    assert server.proc.wait(timeout=60) == 1
    assert server.stderr().startswith("error: --port 70000") and "Traceback" not in server.stderr()


# ------------------------------------------------------------------ metadata


def test_server_and_model_metadata(iris_server: Server, models: dict[str, Model]) -> None:
    m = models["iris"]
    assert iris_server.call("GET", "/v2")[:2] == (
        200,
        {"name": "mllc", "version": __import__("mllc").__version__, "extensions": []},
    )
    assert iris_server.call("GET", "/v2/health/live")[0] == 200
    assert iris_server.call("GET", "/v2/health/ready")[0] == 200
    assert iris_server.call("GET", "/v2/models/iris/ready")[:2] == (
        200,
        {"name": "iris", "ready": True},
    )
    status, meta, _ = iris_server.call("GET", "/v2/models/iris")
    assert status == 200
    assert meta == {
        "name": "iris",
        "versions": ["v1.0.0"],
        "platform": "sklearn",
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [-1]} for c in m.load().feature_names_in_
        ],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
        ],
        "parameters": {"model_md5": m.md5, "environment": "staging"},
    }
    assert iris_server.call("GET", "/v2/models/iris/versions/v1.0.0")[1] == meta
    state = iris_server.state
    assert state["pid"] == iris_server.proc.pid and state["port"] == iris_server.port
    assert {k: state[k] for k in ("name", "env", "version", "model_md5", "host")} == {
        "name": "iris",
        "env": "staging",
        "version": "v1.0.0",
        "model_md5": m.md5,
        "host": "127.0.0.1",
    }
    assert state["started"].endswith("Z")


def test_text_features_and_labels_are_bytes(models: dict[str, Model], serve: Any) -> None:
    m = models["churn"]
    server = serve(m, name="churn")
    meta = server.call("GET", "/v2/models/churn")[1]
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert types == {
        "tenure_months": "FP64",
        "monthly_charges": "FP64",
        "plan": "BYTES",
        "has_support": "FP64",
    }
    assert meta["outputs"][0] == {"name": "predict", "datatype": "BYTES", "shape": [-1]}
    frame = m.test.head(20)
    status, body, _ = server.call("POST", "/v2/models/churn/infer", columns_request(frame))
    assert status == 200, body
    outputs = outputs_of(body)
    assert outputs["predict"]["datatype"] == "BYTES"
    assert set(outputs["predict"]["data"]) <= {"yes", "no"}
    assert_matches(m, frame, outputs)
    # A number where the model expects text is refused, not silently one-hot encoded as unknown.
    bad = columns_request(frame.head(2))
    bad["inputs"][2] = {"name": "plan", "shape": [2], "datatype": "INT64", "data": [1, 2]}
    status, body, _ = server.call("POST", "/v2/models/churn/infer", bad)
    assert status == 422 and "'plan' is BYTES" in body["error"]
    # tritonclient, one input per column, text as BYTES
    triton = pytest.importorskip("tritonclient.http", reason="dev extra tritonclient[http]")

    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    inputs = []
    for column in frame.columns:
        values = frame[column].to_numpy()
        if column == "plan":
            arr, datatype = np.array([str(v) for v in values], dtype=object), "BYTES"
        else:
            arr, datatype = values.astype(np.float64), "FP64"
        tensor = triton.InferInput(column, [len(frame)], datatype)
        tensor.set_data_from_numpy(arr, binary_data=False)
        inputs.append(tensor)
    result = client.infer(
        "churn", inputs, outputs=[triton.InferRequestedOutput("predict", binary_data=False)]
    )
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict")]
    assert labels == m.load().predict(frame).tolist()
    client.close()


# ------------------------------------------------------------------ inference


def test_infer_one_input_per_column(iris_server: Server, models: dict[str, Model]) -> None:
    m = models["iris"]
    frame = m.test
    status, body, _ = iris_server.call("POST", INFER, columns_request(frame, id="req-1"))
    assert status == 200, body
    assert body["model_name"] == "iris" and body["model_version"] == "v1.0.0"
    assert body["id"] == "req-1"
    assert body["parameters"] == {"model_md5": m.md5}
    assert_matches(m, frame, outputs_of(body))
    # [N, 1] shapes and the versioned path; only the outputs asked for
    request = columns_request(frame.head(3), outputs=[{"name": "predict_proba"}])
    for item in request["inputs"]:
        item["shape"] = [3, 1]
    status, body, _ = iris_server.call("POST", "/v2/models/iris/versions/v1.0.0/infer", request)
    assert status == 200 and [o["name"] for o in body["outputs"]] == ["predict_proba"]
    assert isinstance(body["id"], str) and body["id"]  # generated when the request has none


def test_infer_one_matrix_input(iris_server: Server, models: dict[str, Model]) -> None:
    m = models["iris"]
    frame = m.test
    flat = frame.to_numpy().tolist()
    request = {"inputs": [{"name": "x", "shape": list(frame.shape), "datatype": "FP64"}]}
    for data in (
        [v for row in flat for v in row],
        flat,
    ):  # flat row-major, and nested as the shape says
        request["inputs"][0]["data"] = data
        status, body, _ = iris_server.call("POST", INFER, request)
        assert status == 200, body
        assert_matches(m, frame, outputs_of(body))


def test_missing_values_are_null(iris_server: Server, models: dict[str, Model]) -> None:
    frame = models["iris"].test.head(2).copy()
    frame.iloc[0, 1] = np.nan
    status, body, _ = iris_server.call("POST", INFER, columns_request(frame))
    assert status == 200, body
    assert outputs_of(body)["predict"]["data"] == models["iris"].load().predict(frame).tolist()


def test_tritonclient_talks_to_the_server(iris_server: Server, models: dict[str, Model]) -> None:
    triton = pytest.importorskip("tritonclient.http", reason="dev extra tritonclient[http]")
    m = models["iris"]
    client = triton.InferenceServerClient(f"127.0.0.1:{iris_server.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris")
    meta = client.get_model_metadata("iris")
    assert meta["versions"] == ["v1.0.0"] and len(meta["inputs"]) == 4
    assert client.get_server_metadata()["name"] == "mllc"

    X = m.test.to_numpy(dtype=np.float64)
    tensor = triton.InferInput("input-0", list(X.shape), "FP64")
    tensor.set_data_from_numpy(X, binary_data=False)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=False),
        triton.InferRequestedOutput("predict_proba", binary_data=False),
    ]
    result = client.infer("iris", [tensor], outputs=outputs, model_version="v1.0.0")
    est = m.load()
    assert result.as_numpy("predict").tolist() == est.predict(m.test).tolist()
    np.testing.assert_allclose(result.as_numpy("predict_proba"), est.predict_proba(m.test))
    assert result.get_response()["model_version"] == "v1.0.0"

    # Binary tensors (tritonclient's default) are an extension this server does not have.
    binary = triton.InferInput("input-0", list(X.shape), "FP64")
    binary.set_data_from_numpy(X)
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="binary tensor data is not supported"):
        client.infer("iris", [binary])
    with pytest.raises(InferenceServerException, match="no version"):
        client.infer("iris", [tensor], model_version="v9.9.9")
    client.close()


# ------------------------------------------------------------------ client mistakes


def test_client_mistakes_get_json_errors_and_the_server_goes_on(
    iris_server: Server, models: dict[str, Model]
) -> None:
    frame = models["iris"].test.head(2)
    good = columns_request(frame)
    conn = iris_server.conn()  # one keep-alive connection through all the 4xx answers
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", INFER, b"{not json", 400, "malformed JSON"),
        ("POST", INFER, b"\xff\xfe", 400, "malformed JSON"),
        ("POST", INFER, [1, 2], 422, "must be a JSON object"),
        ("POST", INFER, {"id": "x"}, 422, "'inputs' must be a non-empty list"),
        ("POST", INFER, {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64",
                                     "data": [1.0] * 7}]}, 422, "needs 8 values, 'data' has 7"),
        ("POST", INFER, {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64",
                                     "data": [1.0] * 6}]}, 422, "takes 4 feature columns"),
        ("POST", INFER, {"inputs": [*good["inputs"], {"name": "colour", "shape": [2],
                                    "datatype": "BYTES", "data": ["a", "b"]}]},
         422, "'colour' is not a feature column"),
        ("POST", INFER, {"inputs": good["inputs"][1:]}, 422, "no input for feature column"),
        ("POST", INFER, {"inputs": [{**good["inputs"][0], "datatype": "FP128"},
                                    *good["inputs"][1:]]}, 422, "not a V2 datatype"),
        ("POST", INFER, {"inputs": [{**good["inputs"][0], "datatype": "BYTES",
                                     "data": ["1", "2"]}, *good["inputs"][1:]]},
         422, "is FP64, the request sends BYTES"),
        ("POST", INFER, {"inputs": [{**good["inputs"][0], "data": ["a", "b"]},
                                    *good["inputs"][1:]]}, 422, "FP64 data must be numbers"),
        ("POST", INFER, {"inputs": [{**good["inputs"][0], "shape": [3]},
                                    *good["inputs"][1:]]}, 422, "needs 3 values"),
        ("POST", INFER, {**good, "outputs": [{"name": "explain"}]}, 422, "unknown output"),
        ("POST", INFER, {"inputs": [{**i, "shape": [0], "data": []} for i in good["inputs"]]},
         422, "no rows"),
        ("POST", "/v2/models/nope/infer", good, 404, "unknown model 'nope'"),
        ("POST", "/v2/models/iris/versions/v2.0.0/infer", good, 404, "no version 'v2.0.0'"),
        ("GET", "/v2/models/nope", None, 404, "unknown model"),
        ("GET", "/v2/elsewhere", None, 404, "no such endpoint"),
        ("GET", INFER, None, 405, "allowed: POST"),
        ("POST", "/v2/models/iris", good, 405, "allowed: GET"),
        ("DELETE", "/v2", None, 405, "method not allowed"),
        ("PUT", "/v2/health/ready", None, 405, "allowed: GET"),
    ]  # fmt: skip
    for method, path, body, status, text in cases:
        got, payload, resp = iris_server.call(method, path, body, conn=conn)
        assert (got, text in payload["error"]) == (status, True), (method, path, payload)
        assert resp.getheader("Content-Type") == "application/json"
        if status == 405:
            assert resp.getheader("Allow")
    # the same connection still serves
    status, body, _ = iris_server.call("POST", INFER, good, conn=conn)
    assert status == 200
    conn.close()
    # every error was logged, one line each; no traceback
    err = iris_server.stderr()
    assert "Traceback" not in err and err.count(" 422 POST ") >= 12


def test_bodies_over_the_limit_get_413(iris_server: Server) -> None:
    big = b'{"inputs": []' + b" " * 70_000 + b"}"
    status, body, resp = iris_server.call("POST", INFER, big)
    assert status == 413 and "exceeds the 65536-byte limit" in body["error"]
    assert resp.getheader("Connection") == "close"
    # chunked: no Content-Length to check first, cut off once past the limit
    conn = iris_server.conn()
    chunks = iter([b'{"inputs": [' + b" " * 40_000] * 3)
    conn.request("POST", INFER, body=chunks, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413 and "chunked request body exceeds" in json.loads(resp.read())["error"]
    conn.close()
    # small chunked bodies are fine; Expect: 100-continue with a big one is refused up front
    conn = iris_server.conn()
    conn.request("POST", INFER, body=iter([b'{"inputs"', b": 5}"]), encode_chunked=True)
    assert conn.getresponse().status == 422
    conn.close()
    with socket.create_connection(("127.0.0.1", iris_server.port), timeout=10) as s:
        s.sendall(
            f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        assert s.recv(4096).startswith(b"HTTP/1.1 413 ")
    assert iris_server.call("GET", "/v2/health/ready")[0] == 200


def test_garbage_on_the_socket_gets_a_json_400(iris_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", iris_server.port), timeout=10) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400 ") and b'{"error":' in reply
    assert iris_server.call("GET", "/v2/health/live")[0] == 200


# ------------------------------------------------------------------ token


def test_bearer_token(models: dict[str, Model], serve: Any, tmp_path: Path) -> None:
    secret = "s3cr3t-" + os.urandom(8).hex()
    missing = serve(models["iris"], "--token-env", "MLLC_TEST_TOKEN", wait=False)
    assert missing.proc.wait(timeout=60) == 1
    assert "MLLC_TEST_TOKEN is unset or empty" in missing.stderr()

    server = serve(
        models["iris"], "--token-env", "MLLC_TEST_TOKEN", env={"MLLC_TEST_TOKEN": secret}
    )
    request = columns_request(models["iris"].test.head(1))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {secret}"}):
        for method, path, body in (("POST", INFER, request), ("GET", "/v2/models/iris", None),
                                   ("GET", "/v2", None), ("GET", "/v2/nothing", None)):  # fmt: skip
            status, payload, resp = server.call(method, path, body, headers)
            assert status == 401, (headers, path)
            assert resp.getheader("WWW-Authenticate", "").startswith("Bearer")
            assert secret not in json.dumps(payload)
    for path in ("/v2/health/live", "/v2/health/ready"):
        assert server.call("GET", path)[0] == 200
    good = {"Authorization": f"Bearer {secret}"}
    assert server.call("POST", INFER, request, good)[0] == 200
    assert (
        server.call("GET", "/v2/models/iris", None, {"Authorization": f"bearer {secret}"})[0] == 200
    )
    assert server.stop() == 0
    for text in (server.stdout(), server.stderr()):
        assert secret not in text
    assert "401" in server.stderr()
    state_text = json.dumps(server.state)
    assert secret not in state_text  # the token by its variable's name only (a setting)
    assert server.state["settings"]["token_env"] == "MLLC_TEST_TOKEN"


# ------------------------------------------------------------------ capture


def test_capture_rotates_within_bounds(
    models: dict[str, Model], serve: Any, tmp_path: Path
) -> None:
    capture = tmp_path / "capture"
    server = serve(
        models["iris"], "--capture-dir", str(capture), "--capture-max-bytes", "1000",
        "--capture-files", "3",
    )  # fmt: skip
    frame = models["iris"].test
    conn = server.conn()
    for i in range(60):
        request = columns_request(frame.iloc[[i % len(frame)]], id=f"r{i}")
        assert server.call("POST", INFER, request, conn=conn)[0] == 200
    assert server.call("POST", INFER, {"inputs": []}, conn=conn)[0] == 422  # not captured
    conn.close()
    assert server.stop() == 0  # flushes the capture
    files = sorted(p.name for p in capture.iterdir())
    assert files == ["requests.1.jsonl", "requests.2.jsonl", "requests.jsonl"]
    lines = []
    for name in ("requests.2.jsonl", "requests.1.jsonl", "requests.jsonl"):
        data = (capture / name).read_bytes()
        assert 0 < len(data) <= 1000
        lines += [json.loads(line) for line in data.splitlines()]
    ids = [line["id"] for line in lines]
    assert ids == [f"r{i}" for i in range(60 - len(ids), 60)]  # the newest, in order
    last = lines[-1]
    assert set(last) == {"time", "id", "version", "inputs", "outputs"}
    assert last["version"] == "v1.0.0" and list(last["inputs"]) == list(frame.columns)
    row = frame.iloc[[59 % len(frame)]]
    assert last["inputs"][frame.columns[0]] == [float(row.iloc[0, 0])]
    assert last["outputs"] == {"predict": models["iris"].load().predict(row).tolist()}


# ------------------------------------------------------------------ stopping and handing over


def test_sigterm_drains_an_in_flight_request(models: dict[str, Model], serve: Any) -> None:
    server = serve(models["iris"])
    idle = server.conn()  # an idle keep-alive connection must not hold the exit up
    assert server.call("GET", "/v2/health/ready", conn=idle)[0] == 200
    body = json.dumps(columns_request(models["iris"].test.head(3))).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        time.sleep(0.3)  # the server is now reading this request's body
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert server.proc.poll() is None  # waiting for the request in flight
        s.sendall(body[10:])
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head
    assert json.loads(payload)["model_version"] == "v1.0.0"
    assert server.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 4
    assert not server.state_file.exists()
    idle.close()


def _versions_seen(port: int, connections: int) -> list[str]:
    """The version each of ``connections`` fresh connections reaches."""
    seen = []
    for _ in range(connections):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v2/models/iris")
        seen.append(json.loads(conn.getresponse().read())["versions"][0])
        conn.close()
    return seen


def test_two_versions_share_a_port_then_the_old_one_leaves(
    models: dict[str, Model], serve: Any
) -> None:
    port = free_port()
    old = serve(models["iris"], version="v1.0.0", port=port)
    new = serve(models["iris"], version="v1.1.0", port=port)
    assert old.port == new.port == port
    seen = _versions_seen(port, 60)
    assert set(seen) == {"v1.0.0", "v1.1.0"}, seen  # the kernel spreads connections over both
    assert old.stop() == 0
    assert set(_versions_seen(port, 30)) == {"v1.1.0"}
    assert new.state_file.exists()
    assert new.stop() == 0
