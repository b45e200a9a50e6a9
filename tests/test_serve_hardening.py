"""The inference server against hostile clients: every input gets a 2xx/4xx, none starves it.

Real ``python -m mllc.serve`` processes on 127.0.0.1 serving a model built by
mllc's own stages (tests/test_serve.py builds it), real sockets for what
http.client would refuse to send, and Hypothesis for bodies and headers no
one thought of: the decoder in-process against the real model (many examples,
fast), the whole server over raw sockets (fewer). Nothing waits on a fixed
sleep: clients wait on the server's answers, with timeouts.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
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
        # an empty array numpy cannot describe (found by the fuzz test below)
        (b'{"inputs": [{"name": "x", "shape": [0, 1152921504606846976], "datatype": "FP64", '
         b'"data": []}]}', 422, "multiply past 2,147,483,647"),
        (b'{"inputs": [{"name": "x", "shape": [65536, 65536], "datatype": "FP64", '
         b'"data": []}]}', 422, "is larger than any request this server takes"),
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


# ------------------------------------------------------------------ raw HTTP


def read_response(sock: socket.socket, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One response off ``sock`` (interim 100 Continue skipped): status, headers, body
    (none when answering ``head``, a HEAD request)."""
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed before a response: {buf!r}")
            buf += data
        top, _, buf = buf.partition(b"\r\n\r\n")
        lines = top.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        if status != 100:
            break
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = 0 if head else int(headers["content-length"])
    while len(buf) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed mid-response")
        buf += data
    return status, headers, buf[:length]


def raw(port: int, data: bytes, timeout: float = 30) -> tuple[int, dict[str, str], Any]:
    """Send ``data`` on a new connection; the first response, its body parsed as JSON."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        status, headers, body = read_response(sock)
    return status, headers, json.loads(body)


def closed_within(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes ``sock``; fails if it has not by then."""
    sock.settimeout(seconds)
    out = b""
    while data := sock.recv(65536):
        out += data
    return out


def post(body: bytes, *headers: str, path: str = INFER) -> bytes:
    lines = "".join(f"{h}\r\n" for h in headers)
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode() + body


def test_ambiguous_framing_gets_400_and_the_connection_closes(server: Server) -> None:
    body = json.dumps(matrix("FP64", [5.1, 3.5, 1.4, 0.2])).encode()
    n = len(body)
    cases: list[tuple[bytes, str]] = [
        (post(body, f"Content-Length: {n}", f"Content-Length: {n + 5}"),
         f"conflicting Content-Length headers: {n}, {n + 5}"),
        (post(body, f"Content-Length: {n}, {n + 5}"), "invalid Content-Length"),
        (post(body, f"Content-Length: +{n}"), "invalid Content-Length"),
        (post(body, f"Content-Length: {n // 10}_{n % 10}"), "invalid Content-Length"),
        (post(body, f"Content-Length: {n}", "Transfer-Encoding: chunked"),
         "both Content-Length and Transfer-Encoding"),
        (post(body, "Transfer-Encoding: gzip"), "'gzip' is not supported (only chunked)"),
        (post(body, "Transfer-Encoding: gzip, chunked"), "is not supported (only chunked)"),
        (post(body, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
         "is not supported"),
        # on a route that never reads a body, too: the next request would start inside it
        (b"GET /v2/health/live HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         "conflicting Content-Length headers: 1, 2"),
        # chunked bodies: sizes are hex digits, each chunk ends with CRLF
        (post(b"0x4\r\nabcd\r\n0\r\n\r\n", "Transfer-Encoding: chunked"), "malformed chunk size"),
        (post(b"+4\r\nabcd\r\n0\r\n\r\n", "Transfer-Encoding: chunked"), "malformed chunk size"),
        (post(b"4\r\nabcdXY0\r\n\r\n", "Transfer-Encoding: chunked"), "no CRLF after a chunk"),
    ]  # fmt: skip
    for request, text in cases:
        status, headers, payload = raw(server.port, request)
        assert (status, text in payload["error"]) == (400, True), (request[:120], payload)
        assert headers["connection"] == "close"
    # The same values, unambiguous, serve: duplicates that agree, and chunks of any count.
    status, _, payload = raw(
        server.port, post(body, f"Content-Length: {n}", f"Content-Length: {n}")
    )
    assert status == 200, payload
    chunks = b"".join(b"1\r\n%c\r\n" % c for c in body) + b"0\r\nX-Trailer: 1\r\n\r\n"
    status, _, payload = raw(server.port, post(chunks, "Transfer-Encoding: chunked"))
    assert status == 200, payload


# ------------------------------------------------------------------ starvation


class Drip:
    """A slow-loris client: a request line, then one header line (or body byte) every 0.2 s,
    each well within any idle timeout, the whole never ending. ``closed`` is set when the
    server closes the connection; ``reply`` is what it sent before."""

    changed = threading.Condition()  # notified whenever a Drip is closed

    def __init__(self, port: int, body: bool = False, line: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        head = f"POST {INFER} HTTP/1.1\r\nHost: x\r\n"
        if body:
            head += "Content-Length: 100000\r\n\r\n"
        self.sock.sendall(b"POST /" if line else head.encode())
        self.body = body or line  # drip bytes (of the body, or of the request line itself)
        self.reply = b""
        self.sent_at = time.monotonic()
        self.closed = threading.Event()
        self.stop = threading.Event()
        threading.Thread(target=self._drip, daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()

    def _drip(self) -> None:
        i = 0
        while not self.stop.wait(0.2) and not self.closed.is_set():
            try:
                self.sock.sendall(b"x" if self.body else f"X-Drip-{i}: y\r\n".encode())
            except OSError:
                return
            i += 1

    def _read(self) -> None:
        try:
            while data := self.sock.recv(65536):
                self.reply += data
        except OSError:
            pass
        self.closed_at = time.monotonic()
        with Drip.changed:
            self.closed.set()
            Drip.changed.notify_all()

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # close() alone waits for the reader's recv
        self.sock.close()


def test_dripping_headers_or_body_is_cut_at_the_deadline(
    iris: Model, tmp_path_factory: pytest.TempPathFactory
) -> None:
    srv = start(tmp_path_factory.mktemp("deadline"), iris, "--header-timeout", "2",
                "--body-timeout", "2", "--idle-timeout", "30")  # fmt: skip
    try:
        drips = [Drip(srv.port), Drip(srv.port, body=True), Drip(srv.port, line=True)]
        whats = ("request headers", "request body", "request headers")
        for drip, what in zip(drips, whats, strict=True):
            assert drip.closed.wait(30), f"{what}: still open after 30 s of dripping"
            took = drip.closed_at - drip.sent_at
            assert 1.5 < took < 10, took
            assert drip.reply.startswith(b"HTTP/1.1 408 "), drip.reply
            assert f"{what} not received within 2 s".encode() in drip.reply
            drip.close()
        assert srv.call("GET", "/v2/health/ready")[0] == 200
    finally:
        assert srv.stop() == 0
    assert "Traceback" not in srv.stderr()


def test_new_clients_are_served_while_attackers_hold_every_connection(
    iris: Model, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Slow-loris clients at (and past) the connection cap: a new client is still answered,
    at once, not after the attackers' deadline, and idle keep-alive connections make room."""
    cap = 8
    # Deadlines far off: the attackers hold their slots all through the test.
    srv = start(tmp_path_factory.mktemp("loris"), iris, "--max-connections", str(cap),
                "--header-timeout", "120", "--body-timeout", "120")  # fmt: skip
    drips: list[Drip] = []
    try:
        # More attackers than the cap, dripping headers or a body: each always holds a slot.
        drips = [Drip(srv.port, body=i % 2 == 1) for i in range(cap + 4)]
        request = json.dumps(columns_request(iris.test.head(3))).encode()
        for _ in range(3):
            started = time.monotonic()
            status, _, payload = raw(srv.port, post(request, f"Content-Length: {len(request)}"))
            assert status == 200, payload
            assert time.monotonic() - started < 10  # not a wait for the attackers' deadline
        # Attackers were closed to make room: 4 for the last 4 attackers, 1 to 3 for our
        # requests (one may take the slot the one before left); the others still hold theirs.
        with Drip.changed:
            assert Drip.changed.wait_for(lambda: sum(d.closed.is_set() for d in drips) >= 5, 10)
        assert sum(not d.closed.is_set() for d in drips) >= cap - 3
        # Idle keep-alive connections are closed to make room too, the longest idle first.
        idle = [srv.conn() for _ in range(cap)]
        for conn in idle:
            assert srv.call("GET", "/v2/health/live", conn=conn)[0] == 200
        assert srv.call("GET", "/v2/health/ready")[0] == 200
        with pytest.raises((ConnectionError, OSError)):
            srv.call("GET", "/v2/health/live", conn=idle[0])
        for conn in idle:
            conn.close()
    finally:
        for drip in drips:
            drip.close()
        assert srv.stop() == 0
    err = srv.stderr()
    assert "Traceback" not in err and "to make room (at --max-connections 8)" in err


def test_idle_keep_alive_connections_are_closed(
    iris: Model, tmp_path_factory: pytest.TempPathFactory
) -> None:
    srv = start(tmp_path_factory.mktemp("idle"), iris, "--idle-timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, _ = read_response(sock)
            assert (status, headers["connection"]) == (200, "keep-alive")
            started = time.monotonic()
            assert closed_within(sock, 30) == b""  # closed, silently: no request was begun
            assert 0.5 < time.monotonic() - started < 10
    finally:
        assert srv.stop() == 0


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_chunked_body_costs_its_size_not_its_chunk_count(
    iris: Model, tmp_path_factory: pytest.TempPathFactory
) -> None:
    srv = start(tmp_path_factory.mktemp("chunks"), iris, "--body-timeout", "300")
    try:
        cap = 1024 * 1024  # the default --max-body-bytes
        assert srv.call("GET", "/v2/health/ready")[0] == 200
        before = _peak_rss(srv.proc.pid)
        chunks = b"1\r\n \r\n" * (cap - 2) + b"2\r\n{}\r\n0\r\n\r\n"  # 1 MiB in 1-byte chunks
        status, _, payload = raw(srv.port, post(chunks, "Transfer-Encoding: chunked"), 300)
        assert status == 422, payload  # read whole: {} is JSON, not a V2 request
        grown = _peak_rss(srv.proc.pid) - before
        assert grown < 8 * cap, f"peak memory grew {grown / cap:.0f} MiB for a 1 MiB body"
    finally:
        assert srv.stop() == 0


# ------------------------------------------------------------------ fuzzing the whole server

_KNOWN_HEADERS: dict[str, st.SearchStrategy[bytes]] = {
    "Content-Length": st.sampled_from([b"0", b"5", b"-1", b"+5", b"1_0", b"0x10", b"99999999999"])
    | st.integers(0, 2000).map(lambda n: str(n).encode()),
    "Transfer-Encoding": st.sampled_from([b"chunked", b"gzip", b"identity", b"chunked, gzip"]),
    "Content-Encoding": st.sampled_from([b"gzip", b"identity", b"br"]),
    "Expect": st.sampled_from([b"100-continue", b"nothing"]),
    "Connection": st.sampled_from([b"close", b"keep-alive", b"upgrade"]),
    "Authorization": st.sampled_from([b"Bearer x", b"Basic", b""]),
    "Inference-Header-Content-Length": st.sampled_from([b"0", b"12"]),
    "Content-Type": st.sampled_from([b"application/json", b"text/plain"]),
}
_value = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_header = st.sampled_from(sorted(_KNOWN_HEADERS)).flatmap(
    lambda name: st.tuples(st.just(name.encode()), _KNOWN_HEADERS[name] | _value)
) | st.tuples(st.from_regex(rb"[!-9;-~]{1,20}", fullmatch=True), _value)
_http_requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
        | st.from_regex(r"[A-Z]{1,8}", fullmatch=True),
        "path": st.sampled_from(
            [INFER, "/v2/models/iris/versions/v1.0.0/infer", "/v2/models/iris", "/v2",
             "/v2/health/ready", "/v2/models/iris/ready"]
        ) | st.from_regex(r"/[!-~]{0,40}", fullmatch=True),
        "headers": st.lists(_header, max_size=6),
        "framing": st.sampled_from(["length", "chunked", "none"]),
        "chunk": st.integers(1, 64),
        "body": _bodies,
    }
)  # fmt: skip


_good_bodies = st.integers(1, 5).flatmap(
    lambda rows: st.lists(
        st.floats(0, 10, allow_nan=False), min_size=4 * rows, max_size=4 * rows
    ).map(lambda data: json.dumps(matrix("FP64", data, [rows, 4])).encode())
)
_good_requests = st.fixed_dictionaries(
    {
        "method": st.just("POST"),
        "path": st.just(INFER),
        "headers": st.lists(_header, max_size=1),  # a valid request with one odd header
        "framing": st.sampled_from(["length", "chunked"]),
        "chunk": st.integers(1, 64),
        "body": _good_bodies,
    }
) | st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "HEAD"]),
        "path": st.sampled_from(["/v2/health/ready", "/v2/models/iris", "/v2"]),
        "headers": st.lists(_header, max_size=1),
        "framing": st.just("none"),
        "chunk": st.just(1),
        "body": st.just(b""),
    }
)


def _encode(req: dict[str, Any]) -> bytes:
    body: bytes = req["body"]
    headers = list(req["headers"])
    if req["framing"] == "length":
        headers.append((b"Content-Length", str(len(body)).encode()))
    elif req["framing"] == "chunked":
        headers.append((b"Transfer-Encoding", b"chunked"))
        size = req["chunk"]
        parts = [body[i : i + size] for i in range(0, len(body), size)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = f"{req['method']} {req['path']} HTTP/1.1\r\nHost: x\r\n".encode()
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


def test_fuzz_any_headers_any_body_never_a_5xx(
    iris: Model, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Raw requests with any headers and any body: each gets a 2xx or 4xx; the server lives.

    Short deadlines (1 s) so a body shorter than its Content-Length is a quick 408.
    """
    srv = start(tmp_path_factory.mktemp("fuzz"), iris, "--header-timeout", "1",
                "--body-timeout", "1", "--max-body-bytes", "4096")  # fmt: skip
    statuses: set[int] = set()

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(req=_http_requests | _http_requests | _good_requests)
    def one(req: dict[str, Any]) -> None:
        data = _encode(req)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as sock:
            sock.sendall(data)
            status, _, body = read_response(sock, head=req["method"] == "HEAD")
        assert 200 <= status < 300 or 400 <= status < 500, (status, body, data[:300])
        if req["method"] != "HEAD":
            assert "error" in json.loads(body) or status < 300
        statuses.add(status)

    try:
        one()
        assert srv.proc.poll() is None
        assert srv.call("GET", "/v2/health/ready")[0] == 200
        assert {200, 400, 404, 422} <= statuses, statuses  # the fuzz reached every layer
    finally:
        assert srv.stop() == 0
    err = srv.stderr()
    assert "Traceback" not in err and " 500 " not in err and "failed:" not in err
