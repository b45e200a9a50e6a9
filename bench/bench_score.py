"""mllc score of a large file against a hand-written loop over pandas chunks.

Target (issue 16): ``mllc score`` throughput at least 0.9x a hand-written loop calling
``model.predict`` on pandas chunks of the same size, and peak memory flat (independent
of the file's size). Two anchors, both reading the same CSV in chunks of 100,000 rows:
the loop the issue names (``model.predict`` only, nothing written), and the same loop
doing what score does (``predict`` and ``predict_proba``, the output written to
Parquet). Score also checks the model's hash, validates every chunk against the
model's features and counts bad rows. Peak memory (max RSS of each process) is
printed for two file sizes: flat means about the same for both.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from common import PYTHON, applied_iris_repo, scripts_env

MLLC = str(Path(PYTHON).parent / "mllc")
CHUNK = 100_000

_LOOP = """
import sys, joblib, pandas as pd
model = joblib.load(sys.argv[1])
for chunk in pd.read_csv(sys.argv[2], chunksize={chunk}):
    model.predict(chunk)
"""
_LOOP_SAME = """
import sys, joblib, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
model = joblib.load(sys.argv[1])
writer = None
first = 1
for chunk in pd.read_csv(sys.argv[2], chunksize={chunk}):
    rows = range(first, first + len(chunk))
    out = pd.DataFrame({{"row": rows, "prediction": model.predict(chunk)}})
    proba = model.predict_proba(chunk)
    for i, c in enumerate(model.classes_):
        out[f"proba_{{c}}"] = proba[:, i]
    table = pa.Table.from_pandas(out, preserve_index=False)
    writer = writer or pq.ParquetWriter(sys.argv[3], table.schema)
    writer.write_table(table)
    first += len(chunk)
writer.close()
"""
_MEASURE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(time.perf_counter() - t, "
    "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def _measure(cmd: list[str], cwd: Path) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one run of ``cmd`` in a process of its own."""
    out = subprocess.run(
        [PYTHON, "-c", _MEASURE, *cmd], cwd=cwd, env=scripts_env(), capture_output=True,
        text=True, check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1])


def _data(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    names = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    centres = np.array([5.8, 3.0, 3.8, 1.2])
    frame = pd.DataFrame(rng.normal(centres, 0.8, (rows, 4)).round(2), columns=names)
    frame.to_csv(path, index=False)


def run(quick: bool = False) -> None:
    rows = 1_000_000 if quick else 10_000_000
    base = Path(tempfile.mkdtemp(prefix="mllc-bench-score-"))
    try:
        repo = applied_iris_repo(base / "repo")
        model = str(repo / "pipelines" / "iris" / "model.joblib")
        small, large = base / "small.csv", base / "large.csv"
        _data(small, rows // 4)
        _data(large, rows)
        loop = [PYTHON, "-c", _LOOP.format(chunk=CHUNK), model]
        same = [PYTHON, "-c", _LOOP_SAME.format(chunk=CHUNK), model]

        def score(data: Path) -> list[str]:
            out = ["--out", str(base / "scored.parquet"), "--chunk-rows", str(CHUNK)]
            return [MLLC, "score", "iris", "--version", "v1.0.0", "--data", str(data), *out]

        results: dict[str, list[tuple[float, int]]] = {"loop": [], "same": [], "score": []}
        for _ in range(1 if quick else 3):  # interleaved
            results["loop"].append(_measure([*loop, str(large)], repo))
            results["same"].append(_measure([*same, str(large), str(base / "hand.parquet")], repo))
            results["score"].append(_measure(score(large), repo))
        peak_small = _measure(score(small), repo)[1]

        def best(name: str) -> tuple[float, int]:
            return min(results[name])

        anchor, like, ours = best("loop"), best("same"), best("score")
        print(f"   {rows:,} rows (CSV, {large.stat().st_size / 1e6:.0f} MB), chunks of {CHUNK:,}")
        for label, (secs, rss) in (
            ("hand loop: model.predict only", anchor),
            ("hand loop: predict + proba + Parquet", like),
            ("mllc score → Parquet", ours),
        ):
            speed = f"{rows / secs:11,.0f} rows/s"
            print(f"   {label:<38} {secs:7.1f} s  {speed}  peak {rss / 1024:6.0f} MiB")
        print(
            f"   throughput: {anchor[0] / ours[0]:.2f}x the predict-only loop (target >= 0.9x), "
            f"{like[0] / ours[0]:.2f}x the loop doing the same work"
        )
        print(
            f"   peak memory of mllc score: {peak_small / 1024:.0f} MiB at {rows // 4:,} rows, "
            f"{ours[1] / 1024:.0f} MiB at {rows:,} rows"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
