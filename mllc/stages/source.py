"""Reading a lifecycle's data source (``data.source``) into a DataFrame, for ``prepare``.

A CSV file is read twice over the same bytes: once as raw text for every column
(declared columns must be checked against their declared type, and pandas'
own parsing would hide a bad value such as ``n/a`` as "missing"; exact
duplicate rows are also decided on that text), and once with pandas' type
inference for the columns the spec does not declare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mllc.spec.training import Source
from mllc.stages.io import StageError, brief, file_sha256


@dataclass(frozen=True)
class Loaded:
    """The source's rows: ``frame`` to clean, ``raw`` to find exact duplicates on."""

    frame: Any  # pandas.DataFrame: declared columns as read, others typed
    raw: Any  # pandas.DataFrame: the same rows as written in the source
    description: dict[str, Any]  # for the data report
    label: str  # how to name the source in messages


def load(source: Source, declared: set[str]) -> Loaded:
    if source.sklearn is not None:
        loaded = _sklearn(source.sklearn)
    elif source.csv is not None:
        loaded = _csv(source.csv, declared)
    else:
        assert source.parquet is not None  # Source validates that exactly one is given
        loaded = _parquet(source.parquet)
    # Column names are matched against the spec's, which are text (Parquet allows others).
    loaded.frame.columns = [str(c) for c in loaded.frame.columns]
    loaded.raw.columns = [str(c) for c in loaded.raw.columns]
    return loaded


def _sklearn(name: str) -> Loaded:
    import sklearn.datasets

    loader = getattr(sklearn.datasets, f"load_{name}")
    frame = loader(as_frame=True).frame.reset_index(drop=True)
    return Loaded(frame, frame, {"kind": "sklearn", "name": name}, f"sklearn dataset {name!r}")


def _file(path: str, kind: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise StageError(
            f"data.source.{kind}: {path} not found (paths are relative to the repository root; "
            "is the file tracked, or pulled with 'dvc pull'?)"
        )
    return file


def _csv(path: str, declared: set[str]) -> Loaded:
    import pandas as pd

    file = _file(path, "csv")
    try:
        # Raw text, nothing turned into NaN: '' is missing, 'n/a' is a value to check.
        raw = pd.read_csv(file, dtype=str, keep_default_na=False, na_filter=False)
        others = [c for c in raw.columns if c not in declared]
        inferred = pd.read_csv(file, usecols=others) if others else None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StageError(f"data.source.csv: cannot read {path}: {brief(exc)}") from None
    except ValueError as exc:  # e.g. duplicate column names pandas cannot tell apart
        raise StageError(f"data.source.csv: cannot read {path}: {brief(exc)}") from None
    frame = raw.copy()
    if inferred is not None:
        for column in others:
            frame[column] = inferred[column]
    description = {"kind": "csv", "path": path, "sha256": file_sha256(file)}
    return Loaded(frame, raw, description, path)


def _parquet(path: str) -> Loaded:
    import pandas as pd

    file = _file(path, "parquet")
    try:
        frame = pd.read_parquet(file, engine="pyarrow").reset_index(drop=True)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise StageError(f"data.source.parquet: cannot read {path}: {brief(exc)}") from None
    description = {"kind": "parquet", "path": path, "sha256": file_sha256(file)}
    return Loaded(frame, frame, description, path)


def with_feedback(loaded: Loaded, folder: Path, declared: set[str], text: bool) -> Loaded:
    """The source's rows followed by the labelled monitoring batches in ``folder``.

    Batches are appended oldest first (their names start with the report's time) and
    cleaned with the source's rules. A batch column the source lacks is dropped; a
    source column the batch lacks is missing in its rows. ``text``: the source is a
    CSV file, whose declared columns (and raw rows) are kept as written, so batch
    values are written back as text the column checks read (``""`` is missing).
    """
    import pandas as pd

    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return loaded
    columns = list(loaded.frame.columns)
    frames, raws, described = [loaded.frame], [loaded.raw], []
    for file in files:
        try:
            batch = pd.read_parquet(file, engine="pyarrow").reset_index(drop=True)
        except (OSError, ValueError) as exc:
            raise StageError(
                f"feedback batch {file.as_posix()}: cannot read: {brief(exc)} "
                "(is it pulled with 'dvc pull'?)"
            ) from None
        batch.columns = [str(c) for c in batch.columns]
        batch = batch.reindex(columns=columns)
        if text:
            raw = batch.apply(lambda col: col.map(_as_text)).astype(object)
            frame = batch.copy()
            for name in columns:
                if name in declared:
                    frame[name] = raw[name]
            raws.append(raw)
        else:
            frame = batch
            raws.append(batch)
        frames.append(frame)
        described.append({"file": file.as_posix(), "rows": len(batch)})
    frame = pd.concat(frames, ignore_index=True)
    raw = frame if loaded.raw is loaded.frame else pd.concat(raws, ignore_index=True)
    description = {**loaded.description, "feedback": described}
    return Loaded(frame, raw, description, f"{loaded.label} + {len(files)} feedback batch(es)")


def _as_text(value: Any) -> str:
    """A batch value as a CSV cell: missing is empty, whole floats lose their ``.0``."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
