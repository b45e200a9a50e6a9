"""``mllc score``: a registered version's predictions for a whole file, in chunks.

The version is the one an environment runs (``--env``, from the registry's
assignments) or a named one (``--version``). Its model comes from the local DVC
cache and is loaded only after its bytes hash to the md5 the registry records (the
inference server's loader, :func:`mllc.serve.model.load`).

The input (CSV, or Parquet; a path or a URL pandas and fsspec can read) is read
``chunk_rows`` rows at a time and never whole: memory stays flat whatever the size
of the file (with ``backend="dask"``, each chunk is a partition scored on a Dask
worker and written in order: the same bytes; docs/compute.md). Each chunk is checked
against the model's features (the columns it was trained on; a numeric feature must
hold numbers or be missing). A missing column is
an error before anything is scored; a row with a value the model cannot take is
*bad*: counted, shown by example (row number, column, value), left out, and the
others are scored. The output (CSV or Parquet, by its suffix) has one row per scored
input row: its id (``--id`` names an input column; else ``row``, the row's number in
the input, from 1), ``prediction``, and for a classifier ``proba_<class>`` per
class. It is written to a temporary file beside ``--out`` and renamed into place at
the end: a crash or a kill never leaves a partial output under that name.
"""

from __future__ import annotations

import collections
import contextlib
import operator
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mllc import daskclient
from mllc.errors import MllcError
from mllc.monitor.batch import is_url
from mllc.registry import assignments, list_versions
from mllc.semver import is_valid
from mllc.spec.compute import env_ref
from mllc.targets.base import model_file

CHUNK_ROWS = 100_000
MAX_EXAMPLES = 5
Progress = Callable[[str], None]


class ScoreError(MllcError):
    message = "cannot score"


@dataclass
class ScoreResult:
    name: str
    version: str
    model_md5: str
    source: str
    out: str
    rows_in: int = 0
    rows_scored: int = 0
    rows_bad: int = 0
    bad_examples: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    seconds: float = 0.0


def resolve(root: Path, name: str, env: str | None, version: str | None) -> tuple[str, str]:
    """(version, model md5) named by ``--env`` (what the registry last assigned it) or
    ``--version``."""
    if (env is None) == (version is None):
        raise ScoreError("give --env ENV or --version vX.Y.Z (one of them)")
    versions = {v.version: v.model_md5 for v in list_versions(root, name)}
    if version is not None:
        if not is_valid(version) or version not in versions:
            known = ", ".join(versions) or "none"
            raise ScoreError(f"{name} {version} is not registered (registered: {known})")
        return version, versions[version]
    history = [a for a in assignments(root, name).get(str(env), []) if not a.unassign]
    if not history or history[-1].version is None:
        raise ScoreError(f"{name} has no version assigned to {env!r} in the registry")
    chosen = history[-1].version
    return chosen, versions[chosen]


# Classifiers whose predict IS ``classes_.take(argmax(predict_proba))`` in scikit-learn's
# own code (sklearn/ensemble/_forest.py ForestClassifier.predict, sklearn/tree/_classes.py
# DecisionTreeClassifier.predict, single output): their probabilities give the
# predictions bit for bit, at half the cost of asking for both.
_ARGMAX_PREDICT = frozenset(
    {
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
    }
)


def predict_is_argmax(estimator: Any) -> bool:
    kind = type(estimator)
    return (
        f"{kind.__module__}.{kind.__qualname__}" in _ARGMAX_PREDICT
        and getattr(estimator, "n_outputs_", 1) == 1
        and getattr(estimator, "classes_", None) is not None
    )


def _chunks(source: str, rows: int) -> Iterator[Any]:
    """The input's DataFrames of at most ``rows`` rows each, in order."""
    import pandas as pd

    if not is_url(source) and not Path(source).is_file():
        raise ScoreError(f"the input {source} does not exist")
    suffix = Path(source.split("?", 1)[0]).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import fsspec  # type: ignore[import-untyped]
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            with fsspec.open(source, "rb") as fh:
                for batch in pq.ParquetFile(fh).iter_batches(batch_size=rows):
                    yield batch.to_pandas()
        elif suffix in (".csv", ".txt", ""):
            with pd.read_csv(source, chunksize=rows) as reader:
                yield from reader
        else:
            raise ScoreError(f"the input {source}: expected a .csv or .parquet file")
    except (OSError, ValueError) as exc:
        raise ScoreError(f"cannot read the input {source}: {type(exc).__name__}: {exc}") from None


def _conform(
    chunk: Any, numeric: list[str], first_row: int, result: ScoreResult
) -> tuple[Any, Any]:
    """(the feature frame with numbers converted, the mask of good rows); bad rows are
    counted in ``result`` with examples."""
    import pandas as pd

    good = np.ones(len(chunk), dtype=bool)
    out = {}
    for column in chunk.columns:
        series = chunk[column]
        if column not in numeric:
            out[column] = series
            continue
        if pd.api.types.is_bool_dtype(series.dtype):
            out[column] = series.astype(float)
            continue
        number = pd.to_numeric(series, errors="coerce")
        bad = (series.notna() & number.isna()).to_numpy()
        if bad.any():
            for i in np.flatnonzero(bad)[: MAX_EXAMPLES - len(result.bad_examples)]:
                result.bad_examples.append(
                    f"row {first_row + int(i)}: {column!r} is {series.iloc[int(i)]!r}, not a number"
                )
            good &= ~bad
        out[column] = number.astype(float)
    return pd.DataFrame(out, index=chunk.index), good


class _Writer:
    """The output, written chunk by chunk to a temporary file renamed into place."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.parquet = out.suffix.lower() in (".parquet", ".pq")
        if not self.parquet and out.suffix.lower() not in (".csv", ".txt"):
            raise ScoreError(f"--out {out}: expected a .csv or .parquet file")
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.writer: Any = None
        self.header = True

    def write(self, frame: Any) -> None:
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.tmp, table.schema)
            self.writer.write_table(table.cast(self.writer.schema))
        else:
            frame.to_csv(
                self.tmp, mode="w" if self.header else "a", header=self.header, index=False
            )
            self.header = False

    def finish(self, columns: list[str]) -> None:
        if self.parquet and self.writer is None:  # no row scored: an empty file, with columns
            import pandas as pd

            self.write(pd.DataFrame({c: [] for c in columns}))
        if self.writer is not None:
            self.writer.close()
        elif self.header:
            self.tmp.write_text(",".join(columns) + "\n", encoding="utf-8")
        os.replace(self.tmp, self.out)

    def discard(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        self.tmp.unlink(missing_ok=True)


class _Local:
    """Each chunk scored here, as it comes."""

    window = 0

    def __init__(self, served: Any, outputs: tuple[str, ...]) -> None:
        self.served, self.outputs = served, outputs

    def submit(self, columns: dict[str, Any]) -> Any:
        return self.served.predict(columns, self.outputs)

    def result(self, handle: Any) -> Any:
        return handle


class _Dask:
    """Each chunk (a partition) scored on a worker; the hash-checked model is sent to every
    worker once. At most ``window`` partitions are out at a time, and their answers are
    written in the input's order: memory stays bounded, the bytes are the local ones."""

    def __init__(self, client: Any, served: Any, outputs: tuple[str, ...]) -> None:
        self.client, self.outputs = client, outputs
        self.model = client.scatter(served, broadcast=True)
        self.window = 2 * max(1, len(client.nthreads()))

    def submit(self, columns: dict[str, Any]) -> Any:
        call = operator.methodcaller("predict", columns, self.outputs)
        return self.client.submit(call, self.model, pure=False)

    def result(self, handle: Any) -> Any:
        return handle.result()


def score(
    root: Path,
    name: str,
    data: str,
    out: str,
    env: str | None = None,
    version: str | None = None,
    id_column: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress = lambda _line: None,
    backend: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
) -> ScoreResult:
    """Score ``data`` into ``out`` (see the module's text). ``backend`` ``dask`` scores
    the partitions on the workers of the scheduler an ``env:NAME`` ``scheduler`` names, or
    of a local cluster of ``workers`` processes; the output is the same bytes."""
    if backend not in ("local", "dask"):
        raise ScoreError(f"--backend {backend!r}: use local or dask")
    if scheduler is not None and backend != "dask":
        raise ScoreError("--scheduler is only used with --backend dask")
    if scheduler is not None:
        try:
            env_ref(scheduler)
        except ValueError as exc:
            raise ScoreError(f"--scheduler {exc}") from None
    if workers is not None and (backend != "dask" or scheduler is not None or workers < 1):
        raise ScoreError("--workers (at least 1) sizes the local Dask cluster of --backend dask")
    if chunk_rows < 1:
        raise ScoreError("--chunk-rows must be at least 1")
    if backend == "dask":
        daskclient.require_dask("mllc score --backend dask")
        daskclient.address_of(scheduler, "--scheduler")  # unset: fails before anything runs
    # start-up: numpy and joblib only when a command scores
    from mllc.serve.model import load  # noqa: PLC0415

    started = time.monotonic()
    chosen, md5 = resolve(root, name, env, version)
    served = load(model_file(root, md5), md5)  # hash checked before anything is unpickled
    job = _Job(name, chosen, md5, data, out, id_column, chunk_rows, progress, started)
    if backend == "local":
        return _score(job, served)
    # The workers unpickle the served model (mllc.serve.model): they need mllc too.
    packages = (*daskclient.MODEL_PACKAGES, "mllc")
    with daskclient.client(scheduler, workers, "score", packages, "--scheduler") as client:
        return _score(job, served, client)


@dataclass(frozen=True)
class _Job:
    name: str
    version: str
    md5: str
    data: str
    out: str
    id_column: str | None
    chunk_rows: int
    progress: Progress
    started: float


def _score(job: _Job, served: Any, client: Any = None) -> ScoreResult:
    import pandas as pd

    from mllc.serve.model import PREDICT, PREDICT_PROBA, PredictError  # noqa: PLC0415

    name, chosen, md5, data, out = job.name, job.version, job.md5, job.data, job.out
    id_column, chunk_rows, progress = job.id_column, job.chunk_rows, job.progress
    features = served.feature_names
    numeric = [
        t.name for t in served.schema.features if t.datatype.startswith(("FP", "INT", "UINT"))
    ]
    derived = served.has_proba and predict_is_argmax(served.final)
    outputs = (
        (PREDICT_PROBA,)
        if derived
        else (PREDICT, PREDICT_PROBA)
        if served.has_proba
        else (PREDICT,)
    )
    classes = [str(c) for c in served.classes] if served.classes is not None else []
    id_name = id_column or "row"
    columns = [id_name, "prediction", *(f"proba_{c}" for c in classes if served.has_proba)]
    result = ScoreResult(name, chosen, md5, data, out, columns=columns)
    where = "" if client is None else " on the Dask workers"
    progress(f"scoring with {name}@{chosen} (model md5 {md5[:12]}, hash checked){where}")
    scorer = _Local(served, outputs) if client is None else _Dask(client, served, outputs)
    pending: collections.deque[tuple[Any, Any, Any, int, int]] = collections.deque()
    writer = _Writer(Path(out))

    def finish(handle: Any, ids: Any, good: Any, first: int, rows: int) -> None:
        try:
            answer = scorer.result(handle)
            if derived:  # the class of highest probability, as the estimator's own
                best = np.argmax(answer[PREDICT_PROBA], axis=1)
                answer[PREDICT] = served.final.classes_.take(best, axis=0)
        except PredictError as exc:
            raise ScoreError(
                f"the model refused rows {first} to {first + rows - 1}: {exc}"
            ) from None
        table = {id_name: ids.to_numpy()[good], "prediction": answer[PREDICT]}
        if PREDICT_PROBA in answer:
            for i, label in enumerate(classes):
                table[f"proba_{label}"] = answer[PREDICT_PROBA][:, i]
        writer.write(pd.DataFrame(table, columns=columns))
        result.rows_scored += int(good.sum())

    try:
        first = 1
        for chunk in _chunks(data, chunk_rows):
            missing = [
                c for c in [*features, *([id_column] if id_column else [])] if c not in chunk
            ]
            if missing:
                raise ScoreError(
                    f"the input {data} has no column(s) "
                    + ", ".join(repr(c) for c in missing)
                    + f" (it has: {', '.join(repr(c) for c in chunk.columns)})"
                )
            frame, good = _conform(chunk[features], numeric, first, result)
            ids = chunk[id_column] if id_column else pd.Series(range(first, first + len(chunk)))
            result.rows_in += len(chunk)
            result.rows_bad += int((~good).sum())
            kept = frame[good]
            if len(kept):
                try:
                    handle = scorer.submit({c: kept[c].to_numpy() for c in features})
                except PredictError as exc:
                    raise ScoreError(
                        f"the model refused rows {first} to {first + len(chunk) - 1}: {exc}"
                    ) from None
                pending.append((handle, ids, good, first, len(chunk)))
                while len(pending) > scorer.window:
                    finish(*pending.popleft())
            first += len(chunk)
        while pending:
            finish(*pending.popleft())
        writer.finish(columns)
    except BaseException:
        writer.discard()
        raise
    result.seconds = round(time.monotonic() - job.started, 3)
    return result
