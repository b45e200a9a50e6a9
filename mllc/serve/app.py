"""Routing, auth and error mapping of the V2 endpoints, independent of the HTTP transport.

:meth:`App.dispatch` takes a method, a path, the Authorization header and a
way to read the body, and returns a :class:`Reply`; it never raises. Client
mistakes get 4xx JSON errors (``{"error": ...}``), anything unexpected a 500,
so a bad request never takes the server down. The body is read only after
the route and the token are accepted, so an unauthenticated client cannot
make the server read a body at all.
"""

from __future__ import annotations

import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mllc.serve import protocol
from mllc.serve.batching import Batcher, Pool
from mllc.serve.capture import Capture, now_iso
from mllc.serve.limits import MAX_BATCH_SIZE
from mllc.serve.model import PREDICT, PredictError, ServedModel
from mllc.serve.protocol import ProtocolError
from mllc.serve.rollout import CANARY, CANDIDATE, STABLE, Rollout, Side

HEALTH = {"/v2/health/live": "live", "/v2/health/ready": "ready"}
_MODEL_PATH = re.compile(
    r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<action>/ready|/infer)?"
)


@dataclass
class Reply:
    """An HTTP answer: status, JSON body, extra headers; ``error`` is logged when set."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def error_reply(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, _json(protocol.error_body(message)), headers or [], message)


@dataclass(frozen=True)
class Identity:
    """What is served: the registry's name, environment, version and model md5."""

    name: str
    environment: str
    version: str
    model_md5: str
    server_version: str


class App:
    """The V2 endpoints for one model version, or two side by side during a rollout."""

    def __init__(
        self,
        model: ServedModel,
        identity: Identity,
        token: str | None = None,
        capture: Capture | None = None,
        workers: int = 0,
        rollout: Rollout | None = None,
        max_batch_size: int = MAX_BATCH_SIZE,
    ) -> None:
        self.model = model
        self.identity = identity
        self.capture = capture
        self.rollout = rollout
        self.ready = True
        self._token = None if token is None else token.encode("utf-8")
        # Predictions hold the GIL, so running many at once only adds switching and makes
        # the slowest wait longest. With ``workers`` > 0 predictions run on that many
        # threads (shared by the versions), oldest request first, and the requests of a
        # version waiting while it is busy are predicted together (mllc.serve.batching,
        # at most ``max_batch_size`` at once); 0 runs each on its connection's thread,
        # unbatched.
        # bench/bench_serve.py measures them.
        ident = identity
        self._server_meta = _json(protocol.server_metadata(ident.server_version))
        stable = Side(ident.version, ident.model_md5, model)
        self._sides = {ident.version: (STABLE, stable)}
        if rollout is not None:
            candidate = rollout.sides[CANDIDATE]
            self._sides[candidate.version] = (CANDIDATE, candidate)
        self._meta = {v: _json(self._metadata(side)) for v, (_, side) in self._sides.items()}
        self.batchers: dict[str, Batcher] = {}
        # A canary's routed requests, when both versions read the same inputs: one queue,
        # each batch answered by the version the split picks for it (one call a batch).
        self.routed: Batcher | None = None
        if workers > 0:
            pool = Pool(workers)
            for v, (_, side) in self._sides.items():
                self.batchers[v] = Batcher({v: side.model}, max_batch_size, pool)
            if rollout is not None and rollout.mode == CANARY:
                models = {role: side.model for role, side in rollout.sides.items()}
                if models[STABLE].schema == models[CANDIDATE].schema:
                    self.routed = Batcher(models, max_batch_size, pool, rollout.route_batch)
        self._model_meta = self._meta[ident.version]

    def _metadata(self, side: Side) -> dict[str, Any]:
        ident = self.identity
        meta = protocol.model_metadata(
            ident.name, side.version, side.model.schema, side.model_md5, ident.environment
        )
        if self.rollout is not None:
            if side.version == ident.version:  # versions[0] stays the stable one
                meta["versions"] = [ident.version, self.rollout.sides[CANDIDATE].version]
            meta["parameters"]["rollout"] = self.rollout.info()
        return meta

    def authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        if not header:
            return False
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode("utf-8"), self._token)

    def dispatch(
        self, method: str, path: str, authorization: str | None, read_body: Callable[[], bytes]
    ) -> Reply:
        try:
            return self._dispatch(method, path, authorization, read_body)
        except ProtocolError as exc:
            return error_reply(exc.status, exc.message)
        except (ConnectionError, TimeoutError):
            raise  # the client is gone: nobody to answer
        except Exception as exc:  # a bug or the model failing oddly: a JSON 500, never a crash
            return error_reply(500, f"internal error: {type(exc).__name__}: {exc}")

    def _dispatch(
        self, method: str, path: str, authorization: str | None, read_body: Callable[[], bytes]
    ) -> Reply:
        if path in HEALTH:  # open to probes: no token needed
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET")
            if HEALTH[path] == "live":
                return Reply(200, _json({"live": True}))
            return self._ready_reply()
        if not self.authorized(authorization):
            return error_reply(
                401,
                "missing or invalid bearer token",
                [("WWW-Authenticate", 'Bearer realm="mllc"')],
            )
        if path == "/v2":
            return Reply(200, self._server_meta) if method in ("GET", "HEAD") else _not_allowed()
        match = _MODEL_PATH.fullmatch(path)
        if match is None:
            return error_reply(404, f"no such endpoint: {protocol.shown(path)}")
        missing = self._check_model(match["name"], match["version"])
        if missing is not None:
            return missing
        action = match["action"]
        if action == "/infer":
            if method != "POST":
                return _not_allowed("POST")
            return self.infer(read_body(), match["version"])
        if method not in ("GET", "HEAD"):
            return _not_allowed()
        if action == "/ready":
            reply = self._ready_reply()
            reply.body = _json({"name": self.identity.name, "ready": self.ready})
            return reply
        return Reply(200, self._meta[match["version"] or self.identity.version])

    def _check_model(self, name: str, version: str | None) -> Reply | None:
        ident = self.identity
        if name != ident.name:
            return error_reply(
                404, f"unknown model {protocol.shown(name)} (this server serves {ident.name!r})"
            )
        if version is not None and version not in self._sides:
            return error_reply(
                404,
                f"model {ident.name!r} has no version {protocol.shown(version)} here "
                f"(this server serves {' and '.join(self._sides)})",
            )
        return None

    def _ready_reply(self) -> Reply:
        if self.ready:
            return Reply(200, _json({"ready": True}))
        reply = error_reply(503, "not ready: the server is shutting down")
        reply.error = None  # an expected answer while draining, not worth a log line
        return reply

    def infer(self, body: bytes, version: str | None = None) -> Reply:
        doc = protocol.parse_json(body)
        if version is not None:
            role, side = self._sides[version]
        elif self.routed is not None:
            return self._infer_routed(doc)
        elif self.rollout is not None:
            role = self.rollout.route()
            side = self.rollout.sides[role]
        else:
            role, side = STABLE, self._sides[self.identity.version][1]
        return self._infer(doc, role, side)

    def _wanted(self, request: protocol.InferRequest) -> tuple[str, ...]:
        if (
            self.capture is not None or self.rollout is not None
        ) and PREDICT not in request.outputs:
            return (*request.outputs, PREDICT)  # monitoring needs the prediction even if not asked
        return request.outputs

    def _infer_routed(self, doc: Any) -> Reply:
        assert self.routed is not None and self.rollout is not None
        start = time.perf_counter()
        request = protocol.decode_infer(doc, self.rollout.sides[STABLE].model.schema)
        item = self.routed.answer(request.columns, self._wanted(request))
        side = self.rollout.sides[item.side]
        if item.error is not None:
            return self._failed(item.error, item.side, side, request, start)
        assert item.result is not None
        return self._answer(request, item.side, side, item.result, start)

    def _infer(self, doc: Any, role: str, side: Side) -> Reply:
        start = time.perf_counter()
        request = protocol.decode_infer(doc, side.model.schema)
        batcher = self.batchers.get(side.version)
        wanted = self._wanted(request)
        try:
            if batcher is None:
                results = side.model.predict(request.columns, wanted)
            else:
                results = batcher.predict(request.columns, wanted)
        except Exception as exc:
            return self._failed(exc, role, side, request, start)
        return self._answer(request, role, side, results, start)

    def _failed(
        self,
        exc: BaseException,
        role: str,
        side: Side,
        request: protocol.InferRequest,
        start: float,
    ) -> Reply:
        """The answer when ``side``'s model raised ``exc`` on the request."""
        if self.rollout is None:
            if isinstance(exc, PredictError):
                return error_reply(422, f"the model cannot predict on these inputs: {exc}")
            raise exc
        ms = (time.perf_counter() - start) * 1000
        self.rollout.answered(role, ms, request.columns, None)
        if role == STABLE and isinstance(exc, PredictError):
            return error_reply(422, f"the model cannot predict on these inputs: {exc}")
        # the candidate failing is the candidate's error, whatever it says of the data
        what = str(exc) if isinstance(exc, PredictError) else f"{type(exc).__name__}: {exc}"
        return error_reply(500, f"model version {side.version} failed: {what}")

    def _answer(
        self,
        request: protocol.InferRequest,
        role: str,
        side: Side,
        results: dict[str, Any],
        start: float,
    ) -> Reply:
        """The 200 for ``side``'s ``results``; the rollout's numbers and the capture see it."""
        request_id = request.id if request.id is not None else uuid.uuid4().hex
        tensors = [protocol.output_tensor(n, results[n]) for n in request.outputs]
        body = _json(
            protocol.infer_response(
                self.identity.name, side.version, request_id, tensors, side.model_md5
            )
        )
        if self.rollout is not None:
            ms = (time.perf_counter() - start) * 1000
            self.rollout.answered(role, ms, request.columns, results[PREDICT])
        if self.capture is not None:
            self.capture.submit(
                {
                    "time": now_iso(),
                    "id": request_id,
                    "version": side.version,
                    "inputs": request.columns,
                    "outputs": {PREDICT: results[PREDICT]},
                }
            )
        return Reply(200, body)


def _not_allowed(allow: str = "GET, HEAD") -> Reply:
    return error_reply(405, f"method not allowed here (allowed: {allow})", [("Allow", allow)])
