"""Throughput and p50/p99 latency of `mllc serve` against MLServer serving the same joblib file.

Both servers get the same model (an iris Pipeline built by mllc.stages.features
and fitted on a DataFrame, as the train stage does), the same request bytes
(one input per column with MLServer's ``content_type: pd``, one row, asking for
``predict``) and the same load: bench/loadgen.py, a separate process, sending
2,000 requests over 50 keep-alive connections to 127.0.0.1 after 100
uncounted warm-up requests. Rounds alternate between the servers so drift of
the machine hits all; figures are medians over rounds, and the canary's ratio to a
single version is the median of each round's ratio.

Rows:

- ``mllc serve`` with its defaults (adaptive batching: requests queued while the
  model is busy are predicted in one call, at most ``--max-batch-size``);
- the same server with a canary split active: a second model (another fit of the
  pipeline) at ``--canary-weight 10`` (a first step) and ``50``, comparisons and the
  rollout file running;
- ``--max-batch-size 1``: no batching, for reference;
- under a slow-loris attack: 256 clients (the default ``--max-connections``) each
  send a request line and then a header line every second, reconnecting whenever
  closed, while the same load runs (errors count requests the load did not get a
  200 for);
- MLServer 1.7.1 with mlserver-sklearn, on its defaults (``parallel_workers`` 1:
  inference in a worker process; debug access log and metrics on), and the same
  with its adaptive batching enabled (``max_batch_size`` 32, ``max_batch_time``
  5 ms, the best of the settings we tried on this load).

MLServer runs from .bench/mlserver-venv, which ``make bench`` creates from the
``mlserver`` extra in pyproject.toml (pinned to our scikit-learn so it unpickles the
same file); without it the comparison is skipped, and said so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import PYTHON, ROOT

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
MLSERVER_VENV = ROOT / ".bench" / "mlserver-venv"
REQUESTS, CONCURRENCY = 2000, 50
MLSERVER_BATCHING = {"max_batch_size": 32, "max_batch_time": 0.005}
LORIS = 256  # slow-loris clients: as many as the server's default connection cap


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _model(
    folder: Path, name: str = "model", c: float = 1.0
) -> tuple[Path, list[str], list[float]]:
    """An iris Pipeline fitted the way mllc's train stage does; (file, columns, one row)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from mllc.spec.training import Features
    from mllc.stages import features

    frame = load_iris(as_frame=True).frame
    X, y = frame.drop(columns="target"), frame["target"]
    columns = [str(c) for c in X.columns]
    pipeline = Pipeline(
        [
            ("preprocess", features.preprocessor(columns, [], Features())),
            ("estimator", LogisticRegression(C=c, max_iter=1000, random_state=0)),
        ]
    ).fit(X, y)
    path = folder / f"{name}.joblib"
    joblib.dump(pipeline, path)
    return path, columns, [float(v) for v in X.iloc[0]]


def _body(columns: list[str], row: list[float]) -> bytes:
    return json.dumps(
        {
            "parameters": {"content_type": "pd"},  # MLServer: decode the inputs as a DataFrame
            "inputs": [
                {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
                for c, v in zip(columns, row, strict=True)
            ],
            "outputs": [{"name": "predict"}],
        }
    ).encode()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready in {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _load(port: int, path: str, body_file: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            PYTHON,
            str(LOADGEN),
            "--url",
            f"http://127.0.0.1:{port}{path}",
            "--body-file",
            str(body_file),
            "--requests",
            str(REQUESTS),
            "--concurrency",
            str(CONCURRENCY),
            "--timeout",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


class _Loris:
    """``count`` slow-loris clients on ``port``: a request line, then a header line every
    second, forever; a connection the server closes is opened again."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Loris:
        self.socks = [self._open() for _ in range(self.count)]  # all in place before the load
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
            sock.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n")
            return sock
        except OSError:
            return None

    def _run(self) -> None:
        socks = self.socks
        while not self.stop.wait(1.0):
            for i, sock in enumerate(socks):
                try:
                    if sock is None:
                        raise OSError
                    sock.sendall(b"X-Drip: y\r\n")
                except OSError:
                    if sock is not None:
                        sock.close()
                    socks[i] = self._open()
        for sock in socks:
            if sock is not None:
                sock.close()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _ours(
    model: Path, body_file: Path, log: Path, extra: list[str], loris: int = 0
) -> dict[str, Any]:
    port = _free_port()
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "mllc.serve",
                "--name",
                "iris",
                "--env",
                "bench",
                "--version",
                "v1.0.0",
                "--model-md5",
                _md5(model),
                "--model-file",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", proc)
        if not loris:
            return _load(port, "/v2/models/iris/infer", body_file)
        with _Loris(port, loris):
            return _load(port, "/v2/models/iris/infer", body_file)
    finally:
        _stop(proc)


def _canary(candidate: Path, folder: Path, weight: int) -> list[str]:
    """Options of a canary step: ``candidate`` answering ``weight`` percent of the requests."""
    return [
        "--canary-version", "v1.1.0", "--canary-model-md5", _md5(candidate),
        "--canary-model-file", str(candidate), "--canary-weight", str(weight),
        "--rollout-mode", "canary", "--rollout-id", "iris#bench_canary#1",
        "--rollout-file", str(folder / "rollout.json"),
    ]  # fmt: skip


def _mlserver_python() -> tuple[Path | None, str]:
    """The venv's python with mlserver installed by ``make bench``, or why there is none."""
    if (MLSERVER_VENV / "bin" / "mlserver").exists():
        return MLSERVER_VENV / "bin" / "python", "installed"
    return None, f"{MLSERVER_VENV.relative_to(ROOT)} is missing (make bench installs it)"


def _mlserver(
    python: Path, model: Path, body_file: Path, folder: Path, batching: dict[str, Any]
) -> dict[str, Any]:
    """MLServer on its defaults (``batching``: model settings added to them)."""
    repo = folder / "mlserver"
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "iris").mkdir(parents=True)
    shutil.copyfile(model, repo / "iris" / "model.joblib")
    (repo / "iris" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "iris",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1.0.0"},
                **batching,
            }
        )
    )
    port = _free_port()
    (repo / "settings.json").write_text(  # its defaults, on free ports
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": _free_port(),
                "metrics_port": _free_port(),
            }
        )
    )
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(folder / "mlserver.log", "ab") as log:
        proc = subprocess.Popen(
            [str(python.parent / "mlserver"), "start", str(repo)],
            stdout=log,
            stderr=log,
            cwd=repo,
            env=env,
            start_new_session=True,  # so its children (if any) are stopped with it
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/v2/models/iris/ready", proc)
        return _load(port, "/v2/models/iris/infer", body_file)
    finally:
        _stop(proc)


def _median(results: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in results))


def _row(label: str, results: list[dict[str, Any]]) -> str:
    errors = sum(r["errors"] for r in results)
    return (
        f"   {label:<28} {_median(results, 'throughput'):8.0f} req/s   "
        f"p50 {_median(results, 'p50'):7.1f} ms   p99 {_median(results, 'p99'):7.1f} ms   "
        f"errors {errors}"
    )


def run(quick: bool = False) -> None:
    rounds = 1 if quick else 5
    folder = Path(tempfile.mkdtemp(prefix="mllc-bench-serve-"))
    try:
        model, columns, row = _model(folder)
        candidate = _model(folder, "candidate", c=0.5)[0]
        body_file = folder / "request.json"
        body_file.write_bytes(_body(columns, row))
        python, how = _mlserver_python()
        if python is None:
            print(f"   MLServer comparison skipped: {how}")
        log = folder / "mllc-serve.log"
        runs: dict[str, Callable[[], dict[str, Any]]] = {
            "mllc serve": lambda: _ours(model, body_file, log, []),
            "  canary split 10/90": lambda: _ours(
                model, body_file, log, _canary(candidate, folder, 10)
            ),
            "  canary split 50/50": lambda: _ours(
                model, body_file, log, _canary(candidate, folder, 50)
            ),
            "  --max-batch-size 1": lambda: _ours(model, body_file, log, ["--max-batch-size", "1"]),
            f"  with {LORIS} slow-loris clients": lambda: _ours(
                model, body_file, log, [], loris=LORIS
            ),
        }
        if python is not None:
            runs["MLServer 1.7.1 (defaults)"] = lambda: _mlserver(
                python, model, body_file, folder, {}
            )
            runs["  adaptive batching"] = lambda: _mlserver(
                python, model, body_file, folder, MLSERVER_BATCHING
            )
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, measure in runs.items():
                results[name].append(measure())
        print(
            f"   {REQUESTS} requests, {CONCURRENCY} keep-alive connections, 1 row each, "
            f"median of {rounds} round(s):"
        )
        for name, measured in results.items():
            print(_row(name, measured))
        ours = results["mllc serve"]
        for split in ("10/90", "50/50"):
            # per round, against the single version measured just before it: the machine's
            # speed drifts between rounds by more than the split costs
            ratios = sorted(
                c["throughput"] / o["throughput"]
                for c, o in zip(results[f"  canary split {split}"], ours, strict=True)
            )
            print(
                f"   canary split {split} / single version: throughput "
                f"{statistics.median(ratios):.2f}x (target >= 0.90; median of the rounds' "
                f"ratios, which ranged {ratios[0]:.2f}-{ratios[-1]:.2f})"
            )
        if python is None:
            return
        batching = ", ".join(f"{k} {v:g}" for k, v in MLSERVER_BATCHING.items())
        for name, label in (
            ("MLServer 1.7.1 (defaults)", "MLServer defaults"),
            ("  adaptive batching", f"MLServer with adaptive batching ({batching})"),
        ):
            theirs = results[name]
            tp = _median(ours, "throughput") / _median(theirs, "throughput")
            p99 = _median(ours, "p99") / _median(theirs, "p99")
            print(
                f"   ours / {label}: throughput {tp:.2f}x (target >= 1), "
                f"p99 {p99:.2f}x (target <= 1)"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
