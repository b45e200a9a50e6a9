"""Reading the batch to monitor and making it comparable with the training reference.

A batch is a CSV or Parquet file, or the requests a local server captured. It
must have every feature column the model was trained on; the target column is
optional (with it the batch is *labelled*, and performance is measured). Values
are checked against the reference's kind of column: a numeric feature must hold
numbers (or be missing). Every problem is reported at once, each naming its
column, before anything is computed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mllc.errors import MllcError

MAX_EXAMPLES = 3


class BatchError(MllcError):
    """The batch cannot be compared: missing columns, wrong types, no rows."""

    message = "bad batch"

    def __init__(self, message: str, lines: Sequence[str] = ()) -> None:
        super().__init__(message, lines=lines)


@dataclass(frozen=True)
class Batch:
    frame: Any  # pandas.DataFrame: the feature columns (conformed), the target if labelled
    source: str  # how to name it in reports and messages
    labelled: bool
    sha256: str  # of the compared rows: the report id depends on it
    warnings: tuple[str, ...] = ()


def is_url(source: str) -> bool:
    return "://" in source


def read_file(source: str) -> Any:
    """A CSV or Parquet file (a path, or a URL pandas can read: file://, https://, and
    object stores when their fsspec package is installed) as a DataFrame."""
    import pandas as pd

    url = is_url(source)
    if not url and not Path(source).is_file():
        raise BatchError(f"the batch {source} does not exist")
    suffix = Path(source.split("?", 1)[0]).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(source, engine="pyarrow")
        elif suffix in (".csv", ".txt", ""):
            frame = pd.read_csv(source)
        else:
            raise BatchError(f"the batch {source}: use a .csv or .parquet file (got {suffix})")
    except pd.errors.EmptyDataError:
        raise BatchError(f"the batch {source} is empty: no header, no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BatchError(f"cannot read the batch {source}: {first}") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True)


def read_captured(directory: Path) -> tuple[Any, list[str]]:
    """The inputs of the captured requests, oldest first, one row per instance.

    Reads ``requests.<n>.jsonl`` (oldest, highest n first) then ``requests.jsonl``.
    A line that is not a capture record is skipped and counted in the warnings.
    """
    import pandas as pd

    files = sorted(
        directory.glob("requests.*.jsonl"),
        key=lambda p: -int(p.name.split(".")[1]) if p.name.split(".")[1].isdigit() else 0,
    )
    files += [directory / "requests.jsonl"] if (directory / "requests.jsonl").is_file() else []
    frames, skipped = [], 0
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                    inputs = record["inputs"]
                    frame = pd.DataFrame({str(k): list(v) for k, v in inputs.items()})
                except (ValueError, KeyError, TypeError, AttributeError):
                    skipped += 1
                    continue
                frames.append(frame)
    warnings = [f"{skipped} captured line(s) were not capture records: skipped"] if skipped else []
    if not frames:
        raise BatchError(
            f"no captured requests in {directory.as_posix()}: the server captures when its "
            "environment sets capture (the default for local), after it has answered requests"
        )
    return pd.concat(frames, ignore_index=True), warnings


def _examples(values: Any) -> str:
    shown = [repr(v) for v in list(dict.fromkeys(values))[:MAX_EXAMPLES]]
    return ", ".join(shown)


def conform(
    frame: Any,
    source: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    target: str,
    warnings: Sequence[str] = (),
) -> Batch:
    """Check the batch's columns and types against the model's features; convert them.

    Numeric features become floats (booleans 0/1); a value that is not a number is an
    error naming the column, with examples and row numbers. Categorical features are
    compared as text. Rows are numbered from 1 as in the file (header not counted).
    """
    import pandas as pd

    if len(frame) == 0:
        raise BatchError(f"the batch {source} has no rows")
    names = list(frame.columns)
    problems: list[str] = []
    absent = [c for c in [*numeric, *categorical] if c not in names]
    if absent:
        problems.append(
            "missing feature column(s): "
            + ", ".join(repr(c) for c in absent)
            + f" (the batch has: {', '.join(repr(c) for c in names) or 'no columns'})"
        )
    out = frame.copy()
    for column in numeric:
        if column not in names:
            continue
        series = frame[column]
        # bool columns as 0/1 (a categorical or Arrow bool is not a numeric dtype)
        if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
            out[column] = series.astype(float)
            continue
        mapped = series.map(_bool_number)
        number = pd.to_numeric(mapped, errors="coerce")
        bad = series.notna() & number.isna() & (series.astype(str).str.strip() != "")
        if bad.any():
            rows = [int(i) + 1 for i in bad[bad].index[:MAX_EXAMPLES]]
            problems.append(
                f"column {column!r}: {int(bad.sum())} value(s) are not numbers, e.g. "
                f"{_examples(series[bad])} (row {', '.join(map(str, rows))}); the model "
                "was trained on numbers here"
            )
        out[column] = number.astype(float)
    for column in categorical:
        if column in names:
            series = frame[column]
            out[column] = series.where(series.isna(), series.astype(str))
    if problems:
        raise BatchError(f"the batch {source} does not match the model's features", problems)
    labelled = target in names and bool(frame[target].notna().any())
    keep = [*numeric, *categorical, *([target] if labelled else [])]
    extra = [c for c in names if c not in keep]
    out = out[keep + extra]
    digest = hashlib.sha256(pd.util.hash_pandas_object(out[keep], index=False).to_numpy().tobytes())
    digest.update(json.dumps(keep).encode())
    notes = list(warnings)
    if labelled and bool(frame[target].isna().any()):
        notes.append(
            f"{int(frame[target].isna().sum())} row(s) have no {target!r}: "
            "left out of the performance"
        )
    return Batch(out, source, labelled, digest.hexdigest(), tuple(notes))


def _bool_number(value: Any) -> Any:
    """true/false, yes/no (any case) as 1/0, the way the pipeline reads a bool column."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes"):
            return 1.0
        if lowered in ("false", "no"):
            return 0.0
    return value
