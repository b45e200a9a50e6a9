"""The inference server against hostile clients: every input gets a 2xx/4xx, none starves it.

Real ``python -m mllc.serve`` processes on 127.0.0.1 serving a model built by
mllc's own stages (tests/test_serve.py builds it), real sockets for what
http.client would refuse to send, and Hypothesis for bodies and headers no
one thought of: the decoder in-process against the real model (many examples,
fast), the whole server over raw sockets (fewer). Nothing waits on a fixed
sleep: clients wait on the server's answers, with timeouts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_serve import INFER, Model, Server, _build, columns_request

from mllc.serve.app import App, Identity
from mllc.serve.model import ServedModel


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Model:
    return _build(tmp_path_factory.mktemp("models"), "iris", "forest")


def start(folder: Path, model: Model, *extra: str) -> Server:
    argv = [
        "--name", "iris", "--env", "staging", "--version", "v1.0.0", "--model-md5", model.md5,
        "--model-file", str(model.path), "--host", "127.0.0.1", "--port", "0", *extra,
    ]  # fmt: skip
    return Server(folder, argv, None).wait_ready()


@pytest.fixture(scope="module")
def server(iris: Model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that do not stop or starve it."""
    srv = start(tmp_path_factory.mktemp("server"), iris, "--max-body-bytes", "65536")
    yield srv
    assert srv.stop() == 0
    assert "Traceback" not in srv.stderr()


def matrix(datatype: str, data: Any, shape: list[int] | None = None) -> dict[str, Any]:
    """One [N, 4] input (iris has four feature columns)."""
    return {"inputs": [{"name": "x", "shape": shape or [1, 4], "datatype": datatype, "data": data}]}


# ------------------------------------------------------------------ the decoder


def test_hostile_json_gets_a_4xx_naming_the_problem(server: Server) -> None:
    digits = "9" * 400
    cases: list[tuple[bytes, int, str]] = [
        # nesting past the JSON parser's depth
        (b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "nested too deeply"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, 400, "nested too deeply"),
        # numbers out of range for the tensor's datatype
        (f'{{"inputs": [{{"name": "x", "shape": [1, 4], "datatype": "FP64", '
         f'"data": [{digits}, 1, 2, 3]}}]}}'.encode(), 422,
         "value 0 (an integer of 400 digits) is out of range for FP64"),
        (json.dumps(matrix("FP32", [1, 2, 1e300, 4])).encode(), 422,
         "value 2 (1e+300) is out of range for FP32"),
        (json.dumps(matrix("FP16", [1, 2, 3, 70000.0])).encode(), 422, "out of range for FP16"),
        (b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
         b'"data": [1, 1e400, 2, 3]}]}', 422, "value 1 (a number too large for any float)"),
        (json.dumps(matrix("INT8", [1, 300, 2, 3])).encode(), 422,
         "value 1 (300) is out of range for INT8"),
        (json.dumps(matrix("UINT8", [1, 2, -1, 3])).encode(), 422,
         "(-1) is out of range for UINT8"),
        (json.dumps(matrix("INT64", [1, 2, 3, 2**64])).encode(), 422,
         "value 3 (18446744073709551616) is out of range for INT64"),
        (json.dumps(matrix("INT64", [[1, 2, 3, int(digits)]])).encode(), 422,
         "value 3 (an integer of 400 digits) is out of range for INT64"),
        # NaN and Infinity are not JSON
        (b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
         b'"data": [NaN, 1, 2, 3]}]}', 400, "NaN is not JSON"),
        (b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
         b'"data": [-Infinity, 1, 2, 3]}]}', 400, "-Infinity is not JSON"),
        # more dimensions than numpy has
        (json.dumps(matrix("FP64", [1], [1] * 100)).encode(), 422, "'shape' has 100 dimensions"),
    ]  # fmt: skip
    conn = server.conn()  # one keep-alive connection through them all
    for body, status, text in cases:
        got, payload, resp = server.call("POST", INFER, body, conn=conn)
        assert (got, text in payload["error"]) == (status, True), (body[:80], payload)
        assert resp.getheader("Content-Type") == "application/json"
    # in range, the same datatypes serve
    for datatype, data in (("FP32", [5.1, 3.5, 1.4, 0.2]), ("INT8", [5, 3, 1, 0]),
                           ("UINT64", [2**64 - 1, 3, 1, 0])):  # fmt: skip
        got, payload, _ = server.call("POST", INFER, matrix(datatype, data), conn=conn)
        assert got == 200, payload
    conn.close()


# Any JSON a client may send: V2-shaped requests with every datatype, shape and value kind.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)
_data = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=6), max_leaves=40)
_datatypes = st.sampled_from(
    ["FP64", "FP32", "FP16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT64", "BOOL",
     "BYTES", "FP128", ""]
) | st.text(max_size=4)  # fmt: skip
_names = st.sampled_from(
    ["x", "sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
) | st.text(max_size=4)
_shapes = st.lists(st.integers(-2, 6) | st.integers(), max_size=5) | _data
_tensor = st.fixed_dictionaries(
    {"name": _names, "shape": _shapes, "datatype": _datatypes, "data": _data},
    optional={"parameters": st.dictionaries(st.text(max_size=20), _data, max_size=2)},
)
_near_valid = st.integers(0, 3).flatmap(
    lambda rows: st.fixed_dictionaries(
        {
            "name": st.just("x"),
            "shape": st.just([rows, 4]),
            "datatype": _datatypes,
            "data": st.lists(_scalars, min_size=4 * rows, max_size=4 * rows),
        }
    )
)  # an [N, 4] matrix as the model takes, with any values of any datatype
_requests = st.fixed_dictionaries(
    {"inputs": st.lists(_near_valid, min_size=1, max_size=1) | st.lists(_tensor, max_size=5)},
    optional={
        "id": _scalars,
        "outputs": st.lists(st.fixed_dictionaries({"name": _names | _scalars}), max_size=3) | _data,
        "parameters": _data,
    },
)
_bodies = (
    _requests.map(lambda doc: json.dumps(doc).encode())
    | _data.map(lambda doc: json.dumps(doc).encode())
    | st.binary(max_size=200)
)


@settings(max_examples=3000, deadline=None, database=None)
@given(body=_bodies)
def test_fuzz_the_decoder_never_a_500(iris: Model, body: bytes) -> None:
    """In-process: the App's infer on the real model answers any body with 2xx/4xx."""
    app = _app(iris)
    reply = app.dispatch("POST", INFER, None, lambda: body)
    assert reply.status == 200 or 400 <= reply.status < 500, (reply.status, reply.error, body)
    assert json.loads(reply.body)


_APPS: dict[str, App] = {}


def _app(model: Model) -> App:
    if model.md5 not in _APPS:
        _APPS[model.md5] = App(
            ServedModel(model.load()), Identity("iris", "staging", "v1.0.0", model.md5, "0")
        )
    return _APPS[model.md5]


def test_the_decoder_fuzz_reaches_the_model(iris: Model) -> None:
    """The strategies above do produce valid requests, so the fuzz is not all rejections."""
    good = json.dumps(columns_request(iris.test.head(2))).encode()
    assert _app(iris).dispatch("POST", INFER, None, lambda: good).status == 200
    found: list[int] = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(doc=_requests)
    def probe(doc: dict[str, Any]) -> None:
        found.append(
            _app(iris).dispatch("POST", INFER, None, lambda: json.dumps(doc).encode()).status
        )

    probe()
    assert {200, 422} <= set(found), found
