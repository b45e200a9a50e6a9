"""The demo's search on a local Dask cluster against the local backend (overhead ratio).

Issue 16: the demo's grid search (specs/iris.yaml's forest: 200 trees, 5-fold cv over
three depths) trained by ``mllc stage train iris forest`` with no ``compute`` section
(one process, the anchor) and with ``compute: {backend: dask, n_jobs: 2}`` (a local
cluster of two worker processes on 127.0.0.1, started and closed by the stage). On two
shared cores Dask is expected to be slower: the figure is the overhead (the cluster's
start, shipping the data and the fits), not a speed-up; the point is the same model
bytes (checked here too) and that the same spec scales on a real cluster. A second row
times the search alone on a cluster already running, without the start.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from common import PYTHON, compared, init_repo, iris_spec, run_quietly, time_command
from common import scripts_env as _env

MLLC = str(Path(PYTHON).parent / "mllc")
MODEL = "pipelines/iris/candidates/forest.joblib"


def _repo(base: Path, compute: dict[str, object] | None) -> Path:
    repo = base / ("dask" if compute else "local")
    (repo / "specs").mkdir(parents=True)
    spec = yaml.safe_load(iris_spec())
    if compute is not None:
        spec["compute"] = compute
    (repo / "specs" / "iris.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    init_repo(repo)
    run_quietly([MLLC, "compile"], repo)
    for stage in ("prepare", "split"):
        run_quietly([MLLC, "stage", stage, "iris"], repo)
    return repo


def _search_only(repo: Path, repeat: int) -> tuple[float, float]:
    """Median seconds of the demo's search in this process: locally, then on a cluster of
    two workers already running (joblib's Dask backend, as the stage uses it)."""
    import contextlib

    import joblib
    import pandas as pd
    from distributed import Client, LocalCluster
    from sklearn.pipeline import Pipeline

    from mllc.stages import features, train
    from mllc.stages.io import load_params

    with contextlib.chdir(repo):
        params = load_params("iris")
        candidate = params.models["forest"]
        frame = pd.read_parquet(params.layout.split("train"))
        X, y = frame.drop(columns=["target"]), frame["target"].to_numpy()
        numeric, categorical = features.feature_columns(frame, "target", params.features)
        seed = params.data.split.seed
        est, _ = features.estimator("forest", candidate, params.estimators, "classification", seed)
        preprocess = features.preprocessor(numeric, categorical, params.features)
        pipeline = Pipeline([("preprocess", preprocess), ("estimator", est)])

        def fit(n_jobs: int) -> float:
            start = time.perf_counter()
            train._search(params, candidate.search, pipeline, "f1_macro", n_jobs).fit(X, y)
            return time.perf_counter() - start

        local = statistics.median(fit(1) for _ in range(repeat))
        with (
            LocalCluster(
                host="127.0.0.1",
                n_workers=2,
                threads_per_worker=1,
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
            joblib.parallel_config(backend="dask", client=client),
        ):
            fit(-1)  # the workers import scikit-learn once
            dask = statistics.median(fit(-1) for _ in range(repeat))
    return local, dask


def run(quick: bool = False) -> None:
    repeat = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="mllc-bench-dask-") as tmp:
        base = Path(tmp)
        local = _repo(base, None)
        dask = _repo(base, {"backend": "dask", "n_jobs": 2})
        env = _env()
        command = [MLLC, "stage", "train", "iris", "forest"]
        samples: dict[str, list[float]] = {"local": [], "dask": []}
        for _ in range(repeat):
            samples["local"].append(time_command(command, local, env))
            samples["dask"].append(time_command(command, dask, env))
        same = [hashlib.md5((r / MODEL).read_bytes()).hexdigest() for r in (local, dask)]
        stage_local = statistics.median(samples["local"])
        stage_dask = statistics.median(samples["dask"])
        search_local, search_dask = _search_only(local, repeat)
    compared(
        ("train forest, local backend", stage_local, "one process (anchor)"),
        ("train forest, dask local cluster", stage_dask, "overhead, cluster start included"),
    )
    compared(
        ("search only, local", search_local, "in process (anchor)"),
        ("search only, running cluster", search_dask, "overhead, 2 workers already up"),
    )
    verdict = "identical" if same[0] == same[1] else f"DIFFER: {same[0]} vs {same[1]}"
    print(f"   model bytes, local vs dask: {verdict}")
