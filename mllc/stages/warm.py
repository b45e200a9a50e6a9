"""The warm stage runner: ``python -m mllc.stages.warm FD [MODULE...]`` (apply and preview).

FD is a listening Unix socket the starter bound (:func:`mllc.apply.dvc.stage_runner`).
The runner imports what the stages use (pandas, pyarrow, scikit-learn, the stage modules
and the allow-listed estimator modules the specs name), then for each connection forks a child
that is one ``mllc stage`` run: the client's arguments, working directory, environment
and standard descriptors (:mod:`mllc.stagerun` has the client and the protocol). The
runner itself runs no stage code and starts no thread pool, so every child starts from
the same clean, imported state; each child is a process of its own that ends with its
stage.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import random
import signal
import socket
import sys
import threading

from mllc.procs import signal_on_parent_death
from mllc.stagerun import STARTED, STATUS_BYTES, recv_exact

# Imported in main() after the runner has armed its clean-up: a kill of the apply while
# they load must already remove the runner's socket (they take a good part of a second).
# mllc.spec.vocab and mllc.stages (pydantic, yaml).

MAX_REQUEST = 4 * 1024 * 1024  # arguments, working directory and environment

PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "joblib",
    "sklearn",
    "sklearn.base",
    "sklearn.compose",
    "sklearn.datasets",
    "sklearn.impute",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "mllc.stages.prepare",
    "mllc.stages.split",
    "mllc.stages.train",
    "mllc.stages.evaluate",
    "mllc.stages.select",
)


def preload(estimators: list[str]) -> None:
    """Import what the stages import, and the modules of the estimator classes named (only
    allow-listed ones: the runner imports nothing a spec could choose)."""
    from mllc.spec.vocab import ESTIMATORS

    allowed = {path.rpartition(".")[0] for path in ESTIMATORS}
    for name in (*PRELOAD, *sorted({m for m in estimators if m in allowed})):
        # A module that fails here fails again in the stage that needs it, which reports it.
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _end_with_client(conn: socket.socket) -> None:
    """End this stage the moment its ``mllc stage`` process is gone (killed with DVC):
    the client never writes after its request, so any read returning means it left."""

    def wait() -> None:  # pragma: no cover - ends the process
        try:
            conn.recv(1)
        finally:
            os._exit(1)

    threading.Thread(target=wait, name="mllc-stage-client", daemon=True).start()


def _become_stage(conn: socket.socket) -> int:
    """In the forked child: take over the client's descriptors, directory and environment,
    then run the stage as ``mllc stage`` does. Its exit status."""
    header, fds, _flags, _addr = socket.recv_fds(conn, 8, 3)
    size = int.from_bytes(header, "big") if len(header) == 8 else -1
    if len(fds) != 3 or not 0 < size <= MAX_REQUEST:
        return -1
    body = recv_exact(conn, size)
    if len(body) != size:  # the client went away mid-request: nothing ran
        return -1
    request = json.loads(body)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if os.environ.get("PYTHONUNBUFFERED") and isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    # A cold stage seeds the global generators from the OS; so does each child.
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    conn.sendall(STARTED)
    _end_with_client(conn)
    from mllc.stages import command  # loaded by preload() already: no cost here

    code = command([str(a) for a in request["args"]])
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _child(listener: socket.socket, conn: socket.socket) -> None:  # pragma: no cover - forked
    listener.close()
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    code = 1
    try:
        code = _become_stage(conn)
        if code >= 0:
            conn.sendall(code.to_bytes(STATUS_BYTES, "big", signed=True))
    except BaseException:
        code = 1
    finally:
        os._exit(code if code >= 0 else 1)


def serve(listener: socket.socket, estimators: list[str]) -> None:
    """Accept stage requests until killed; each runs in a child of its own."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    preload(estimators)
    while True:
        conn, _ = listener.accept()
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            _child(listener, conn)
        conn.close()


def _remove_on_exit(listener: socket.socket) -> None:
    """When the apply or preview that started the runner dies without stopping it (a kill),
    the runner gets SIGTERM instead of SIGKILL: it removes its socket and folder, then
    ends (its stages end with it)."""
    path = listener.getsockname()

    def remove(_signum: int, _frame: object) -> None:  # pragma: no cover - ends the process
        with contextlib.suppress(OSError):
            os.unlink(path)
            os.rmdir(os.path.dirname(path))
        os._exit(0)

    signal.signal(signal.SIGTERM, remove)
    signal_on_parent_death(signal.SIGTERM)
    if os.getppid() == 1:  # the starter died before the signal was armed
        remove(signal.SIGTERM, None)


def main(argv: list[str]) -> int:
    """``FD [ESTIMATOR_MODULE...]``: the listening socket, and what to import beyond the
    stages' own modules (the estimators the specs use)."""
    listener = socket.socket(fileno=int(argv[0]))
    _remove_on_exit(listener)
    try:
        serve(listener, argv[1:])
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
