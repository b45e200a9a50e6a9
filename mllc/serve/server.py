"""The HTTP server: ``main(argv)`` behind ``mllc serve`` and ``python -m mllc.serve``.

One thread per connection (stdlib ``ThreadingHTTPServer``), HTTP/1.1 keep-alive,
with bounds: at most ``--max-connections`` connections (at the cap, the one
waiting longest for a complete request is closed to make room; when all are
running requests, a newcomer gets a 503), ``--workers`` prediction threads
(they hold the GIL; see bench/bench_serve.py for the measurement), which
predict the requests queued while the model was busy in one call, at most
``--max-batch-size`` at once (:mod:`mllc.serve.batching`), a
request's head within ``--header-timeout`` and its body within
``--body-timeout`` (10 s each, as a whole, not per receive), and
``--idle-timeout`` (30 s) for a silent keep-alive connection. The HTTP side and
its other bounds: :mod:`mllc.serve.transport`.

The listening socket has SO_REUSEADDR and SO_REUSEPORT, so the next version's
server binds the same port while this one still serves; the deployer then
sends this one SIGTERM. On SIGTERM (or SIGINT) the server stops accepting,
answers what is already queued for it, lets in-flight requests finish (5 s at
most; their responses say ``Connection: close``), closes idle keep-alive
connections, removes its state file if it is still its own, and exits 0
(130 for SIGINT). The HTTP side is :mod:`mllc.serve.transport`.

The state file (JSON: pid, name, env, version, model_md5, host, port,
started, and every option as ``settings``) is written atomically once the
model is loaded and the socket listens: its presence means ready. Nothing
here prints the bearer token.

With a candidate (``--canary-version/--canary-model-md5/--canary-model-file``,
hash-checked like the main model, ``--rollout-mode canary|shadow``,
``--canary-weight``, ``--rollout-id``, ``--rollout-file``) the server answers
from both versions (:mod:`mllc.serve.rollout`). Those options are not
``settings`` (what the deployer compares with the spec): the state file gets a
top-level ``rollout`` object (mode, weight, rollout_id, file, candidate's version
and model_md5) instead, and the rollout file exists before the state file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from mllc import atomic
from mllc.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, MllcError, UsageError
from mllc.serve.limits import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_BATCH_SIZE,
    MIB,
    WORKERS,
    log,
)
from mllc.serve.transport import Server
from mllc.spec.checks import LOOPBACK

DRAIN_SECONDS = 5.0
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_ROLLOUT_ID = re.compile(r"[A-Za-z0-9._#/=-]{1,256}")
ROLLOUT_MODES = ("canary", "shadow")
CANARY = ("canary_version", "canary_model_md5", "canary_model_file")
ROLLOUT = (*CANARY, "canary_weight", "rollout_mode", "rollout_id", "rollout_file")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # a usage error is exit 1 like every mllc error
        raise UsageError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mllc serve",
        description="Serve one registered model version over the Open Inference Protocol V2.",
    )
    p.add_argument("--name", required=True, help="the lifecycle (model) name in the URLs")
    p.add_argument("--env", required=True, help="the environment this server is for")
    p.add_argument("--version", required=True, help="the registered version, e.g. v1.2.0")
    p.add_argument("--model-md5", required=True, help="the registry's md5 of the model file")
    p.add_argument("--model-file", required=True, type=Path, help="the model.joblib to serve")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    p.add_argument("--token-env", metavar="VAR", help="require 'Bearer $VAR' on model endpoints")
    p.add_argument("--capture-dir", type=Path, help="append each inference to DIR/requests.jsonl")
    p.add_argument("--capture-max-bytes", type=int, default=5 * MIB, metavar="N")
    p.add_argument("--capture-files", type=int, default=5, metavar="K")
    p.add_argument("--max-body-bytes", type=int, default=MIB, metavar="N")
    p.add_argument("--max-connections", type=int, default=256, metavar="N")
    p.add_argument(
        "--header-timeout", type=float, default=HEADER_TIMEOUT, metavar="S",
        help=f"seconds from a request's first byte to its last header (default {HEADER_TIMEOUT:g})",
    )  # fmt: skip
    p.add_argument(
        "--body-timeout", type=float, default=BODY_TIMEOUT, metavar="S",
        help=f"seconds to receive a body, and to send a response (default {BODY_TIMEOUT:g})",
    )  # fmt: skip
    p.add_argument(
        "--idle-timeout", type=float, default=IDLE_TIMEOUT, metavar="S",
        help=f"seconds a keep-alive connection may stay silent (default {IDLE_TIMEOUT:g})",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, default=WORKERS, metavar="N",
        help=f"prediction threads (0: on each connection's thread, unbatched; "
        f"default {WORKERS})",
    )  # fmt: skip
    p.add_argument(
        "--max-batch-size", type=int, default=MAX_BATCH_SIZE, metavar="N",
        help="requests predicted together while the model is busy (1: no batching; "
        f"default {MAX_BATCH_SIZE})",
    )  # fmt: skip
    p.add_argument("--state-file", type=Path, help="JSON written when ready, removed at exit")
    r = p.add_argument_group("rollout", "a candidate version beside the stable one (all or none)")
    r.add_argument("--canary-version", metavar="V", help="the candidate's registered version")
    r.add_argument("--canary-model-md5", metavar="MD5", help="the registry's md5 of its file")
    r.add_argument("--canary-model-file", type=Path, metavar="F", help="its model.joblib")
    r.add_argument(
        "--canary-weight", type=int, metavar="W",
        help="percent of the answers the candidate gives (0..100; 0 with a shadow)",
    )  # fmt: skip
    r.add_argument("--rollout-mode", choices=ROLLOUT_MODES, help="canary (answers) or shadow")
    r.add_argument("--rollout-id", metavar="ID", help="the registry tag of this rollout step")
    r.add_argument("--rollout-file", type=Path, metavar="PATH", help="where to write its numbers")
    return p


def _check(args: argparse.Namespace) -> None:
    for flag in ("name", "env", "version"):
        if not _SAFE.fullmatch(getattr(args, flag)):
            raise UsageError(
                f"--{flag} {getattr(args, flag)!r}: use letters, digits, '.', '_', '-'"
            )
    if not _MD5.fullmatch(args.model_md5):
        raise UsageError(f"--model-md5 {args.model_md5!r} is not an md5 (32 hex digits)")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number")
    for flag in ("capture_max_bytes", "capture_files", "max_body_bytes", "max_connections"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1")
    for flag in ("header_timeout", "body_timeout", "idle_timeout"):
        if not 0 < getattr(args, flag) <= 3600:
            raise UsageError(f"--{flag.replace('_', '-')} must be more than 0 and at most 3600")
    if args.workers < 0:
        raise UsageError("--workers must be 0 (no bound) or more")
    if not 1 <= args.max_batch_size <= 10_000:
        raise UsageError("--max-batch-size must be at least 1 (no batching) and at most 10000")
    _check_rollout(args)
    if args.host not in LOOPBACK and args.token_env is None:  # the spec's rule, enforced here too
        raise UsageError(
            f"--host {args.host} exposes the server beyond this machine: give --token-env VAR "
            "(a bearer token) or bind loopback"
        )


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check_rollout(args: argparse.Namespace) -> None:
    given = [d for d in CANARY if getattr(args, d) is not None]
    if not given:
        extra = [d for d in ROLLOUT if getattr(args, d) is not None]
        if extra:
            raise UsageError(f"{_flag(extra[0])} needs a candidate: give --canary-version too")
        return
    if len(given) < len(CANARY):
        missing = ", ".join(_flag(d) for d in CANARY if d not in given)
        raise UsageError(f"{_flag(given[0])} needs {missing} too (a candidate is all three)")
    if not _SAFE.fullmatch(args.canary_version):
        raise UsageError(
            f"--canary-version {args.canary_version!r}: use letters, digits, '.', '_', '-'"
        )
    if args.canary_version == args.version:
        raise UsageError(f"--canary-version {args.canary_version} is --version too: give another")
    if not _MD5.fullmatch(args.canary_model_md5):
        raise UsageError(
            f"--canary-model-md5 {args.canary_model_md5!r} is not an md5 (32 hex digits)"
        )
    if args.rollout_mode is None:
        raise UsageError("--canary-version needs --rollout-mode canary or shadow")
    if args.rollout_id is None or not _ROLLOUT_ID.fullmatch(args.rollout_id):
        shown = "is missing" if args.rollout_id is None else f"{args.rollout_id!r} is invalid"
        raise UsageError(
            f"--rollout-id {shown}: give the rollout step's registry tag "
            "(letters, digits and . _ # / = -)"
        )
    weight = args.canary_weight
    if args.rollout_mode == "shadow":
        if weight not in (None, 0):
            raise UsageError(f"--canary-weight {weight} with --rollout-mode shadow: must be 0")
        args.canary_weight = 0
    elif weight is None:
        raise UsageError("--rollout-mode canary needs --canary-weight (0..100)")
    elif not 0 <= weight <= 100:
        raise UsageError(f"--canary-weight {weight} is not a percentage (0..100)")


def _token(var: str | None) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var, "")
    if not value.strip():
        raise UsageError(f"--token-env {var}: the environment variable {var} is unset or empty")
    return value.strip()


def main(argv: list[str]) -> int:
    """Run the server until SIGTERM/SIGINT; the exit code (0, 1 on any error at start)."""
    try:
        args = _parser().parse_args(argv)
        _check(args)
        return _serve(args)
    except MllcError as exc:
        for line in exc.render():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    token = _token(args.token_env)
    # Handlers first: a SIGTERM while the model loads ends the start cleanly, not mid-write.
    stop: dict[str, int] = {}
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.setdefault("signal", signum)
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # start-up: the model stack (numpy, joblib, scikit-learn) loads only once the
    # server really starts, not for `mllc serve --help` or an argument error
    from mllc import __version__  # noqa: PLC0415
    from mllc.serve.app import App, Identity  # noqa: PLC0415
    from mllc.serve.capture import Capture, now_iso  # noqa: PLC0415
    from mllc.serve.model import load  # noqa: PLC0415

    model = load(args.model_file, args.model_md5)
    rollout = None
    if args.canary_version is not None:
        from mllc.serve.rollout import Rollout, Side  # noqa: PLC0415

        candidate = load(args.canary_model_file, args.canary_model_md5)
        rollout = Rollout(
            args.rollout_mode,
            args.canary_weight,
            args.rollout_id,
            args.rollout_file,
            Side(args.version, args.model_md5.lower(), model),
            Side(args.canary_version, args.canary_model_md5.lower(), candidate),
        )
    capture = None
    if args.capture_dir is not None:
        try:
            capture = Capture(args.capture_dir, args.capture_max_bytes, args.capture_files)
        except OSError as exc:
            raise MllcError(f"--capture-dir {args.capture_dir}: {exc.strerror or exc}") from None
    identity = Identity(args.name, args.env, args.version, args.model_md5.lower(), __version__)
    app = App(model, identity, token, capture, args.workers, rollout, args.max_batch_size)
    try:
        server = Server(
            (args.host, args.port),
            app,
            args.max_body_bytes,
            args.max_connections,
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            idle_timeout=args.idle_timeout,
        )
    except OSError as exc:
        raise MllcError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None

    if rollout is not None:
        try:
            rollout.start()  # the rollout file exists before the state file says ready
        except OSError as exc:
            server.server_close()
            raise MllcError(f"--rollout-file {args.rollout_file}: {exc.strerror or exc}") from None
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    loop.start()
    port = server.server_port
    state = {
        "pid": os.getpid(),
        "name": args.name,
        "env": args.env,
        "version": args.version,
        "model_md5": identity.model_md5,
        "host": args.host,
        "port": port,
        "started": now_iso(),
        "settings": _settings(args, port),
    }
    if rollout is not None:
        state["rollout"] = rollout.info()
    try:
        if args.state_file is not None:
            # Atomic: a reader sees no file or the whole of it.
            atomic.write_bytes(args.state_file, (json.dumps(state, indent=2) + "\n").encode())
    except OSError as exc:
        server.shutdown()
        raise MllcError(f"--state-file {args.state_file}: {exc.strerror or exc}") from None
    host = f"[{args.host}]" if ":" in args.host else args.host
    log(
        f"{args.name} {args.version} ({args.env}, md5 {identity.model_md5}) ready on "
        f"http://{host}:{port}"
    )
    while not stopped.wait(1.0):
        pass

    deadline = time.monotonic() + DRAIN_SECONDS
    app.ready = False
    server.shutdown()  # the accept loop ends; connections in progress go on
    left = server.drain(deadline)
    if rollout is not None:
        rollout.close(max(deadline, time.monotonic() + 0.5))
    if capture is not None:
        capture.close(timeout=max(0.5, deadline - time.monotonic()))
    if args.state_file is not None:
        _remove_state(args.state_file, state)
    log(f"stopped{f' ({left} request(s) cut off after {DRAIN_SECONDS:g} s)' if left else ''}")
    return EXIT_INTERRUPTED if stop.get("signal") == signal.SIGINT else EXIT_OK


def _settings(args: argparse.Namespace, port: int) -> dict[str, Any]:
    """Every option this server runs with but which model it serves (no secret: the token by
    its variable's name): the deployer compares them with what the spec asks."""
    identity = ("name", "env", "version", "model_md5", "model_file", "state_file", *ROLLOUT)
    out = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    return {**{k: v for k, v in out.items() if k not in identity}, "port": port}


def _remove_state(path: Path, state: dict[str, Any]) -> None:
    """Remove the state file only if it still describes this process (not its successor)."""
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if (
        isinstance(current, dict)
        and current.get("pid") == state["pid"]
        and current.get("started") == state["started"]
    ):
        with contextlib.suppress(OSError):
            path.unlink()
