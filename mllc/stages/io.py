"""What every stage shares: the params file, staged atomic writes, hashing.

This module imports neither pandas nor scikit-learn, so the compiler (and
``plan``) may import :func:`params_sha256` cheaply and stay byte-for-byte in
agreement with the stages about hashes. Paths come from :mod:`mllc.layout`.

Writes are *staged*: a stage computes everything first and registers its
outputs on an :class:`Outputs`; :meth:`Outputs.commit` then writes each one to
a temporary file in its destination folder and renames them all into place. A
stage that fails before the commit leaves no output behind, half-written or
stale-but-looking-new.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mllc import atomic
from mllc.errors import MllcError
from mllc.layout import Layout
from mllc.names import is_dns_label
from mllc.spec import rules
from mllc.spec.fields import DnsLabel
from mllc.spec.load import find_config, format_path, load_estimators
from mllc.spec.training import Candidate, Data, Features, Problem

PARAMS_SECTIONS = ("problem", "data", "features", "models")


class StageError(MllcError):
    """A stage cannot run or failed on its input (``lines``: detail lines under the message)."""

    message = "stage failed"

    def __init__(self, message: str, lines: Sequence[str] = ()) -> None:
        super().__init__(message, lines=lines)


class DataError(StageError):
    """The data breaks the spec's schema or cleaning policy (counts and example rows attached)."""

    message = "invalid data"


def progress(line: str) -> None:
    """A stage's short progress line: stderr, so stdout stays clean for DVC and pipes."""
    print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ layout


# ------------------------------------------------------------------ params


class _ParamsFile(BaseModel):
    """The four spec sections the compiler dumps into params.yaml, validated again here.

    The file is generated, but it is also a plain file a person can edit, so it
    gets the spec's own checks; extra top-level keys are tolerated so that the
    compiler can add information without breaking older stages.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    problem: Problem
    data: Data
    features: Features
    models: dict[DnsLabel, Candidate] = Field(min_length=1)


@dataclass(frozen=True)
class Params:
    """A lifecycle's params: typed sections, plus the raw data (hashed as written)."""

    lifecycle: str
    layout: Layout
    raw: dict[str, Any]
    problem: Problem
    data: Data
    features: Features
    models: dict[str, Candidate]
    estimators: dict[str, str]  # the allow-list in force (vocab + mllc.toml)


def check_lifecycle_name(name: str) -> None:
    if not is_dns_label(name):
        raise StageError(
            f"lifecycle {name!r} is not a lowercase DNS label (a-z, 0-9 and '-', starting "
            "with a letter): it names pipelines/<lifecycle>/"
        )


def allowed_estimators() -> dict[str, str]:
    """The estimator allow-list: the built-in one extended by the repository's mllc.toml."""
    config = find_config(Path.cwd())
    allowed, problems = load_estimators(config)
    if problems:
        raise StageError(
            f"{config}: cannot read the estimator allow-list",
            [d.render() for d in problems],
        )
    return allowed


def load_params(lifecycle: str) -> Params:
    """Read and validate ``pipelines/<lifecycle>/params.yaml``; StageError when unusable."""

    check_lifecycle_name(lifecycle)
    layout = Layout(lifecycle)
    path = layout.params
    if not path.is_file():
        raise StageError(
            f"{path} not found: run stages from the repository root, after 'mllc compile' "
            f"has written the lifecycle {lifecycle!r}"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise StageError(f"{path}: cannot read: {exc}") from None
    if not isinstance(raw, dict):
        raise StageError(f"{path}: expected a mapping with keys {', '.join(PARAMS_SECTIONS)}")
    missing = [key for key in PARAMS_SECTIONS if key not in raw]
    if missing:
        raise StageError(f"{path}: missing top-level key(s) {', '.join(missing)}")
    estimators = allowed_estimators()
    try:
        parsed = _ParamsFile.model_validate(raw, context={"estimators": estimators})
    except ValidationError as exc:
        lines = [
            f"{path}: {format_path([str(p) for p in err['loc']])}: "
            + str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors(include_url=False)
        ]
        raise StageError(f"{path} is not valid ({len(lines)} problem(s))", lines) from None
    findings = rules.check(raw, estimators)
    if findings:
        lines = [f"{path}: {format_path(p)}: {message}" for p, message in findings]
        raise StageError(f"{path} is not valid ({len(lines)} problem(s))", lines)
    return Params(
        lifecycle=lifecycle,
        layout=layout,
        raw=raw,
        problem=parsed.problem,
        data=parsed.data,
        features=parsed.features,
        models=dict(parsed.models),
        estimators=estimators,
    )


# ------------------------------------------------------------------ inputs


def require(path: Path, producer: str) -> Path:
    """``path`` when it exists; otherwise a StageError naming the stage that writes it."""
    if not path.is_file():
        raise StageError(
            f"{path} not found: it is written by {producer}; run the pipeline in order "
            "('dvc repro')"
        )
    return path


def read_frame(path: Path, producer: str) -> Any:
    """A Parquet file written by an earlier stage, as a DataFrame."""
    import pandas as pd

    try:
        return pd.read_parquet(require(path, producer), engine="pyarrow")
    except (OSError, ValueError) as exc:
        raise StageError(f"{path}: cannot read: {exc}") from None


def read_json(path: Path, producer: str) -> Any:
    try:
        return json.loads(require(path, producer).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StageError(f"{path}: cannot read: {exc}") from None


# ------------------------------------------------------------------ hashing


def canonical_json(data: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8, NaN refused."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def params_sha256(raw: Mapping[str, Any], candidate: str) -> str:
    """Hash of what decides ``candidate``'s model: problem, data, features and its own entry.

    The hashed value is ``{"problem": .., "data": .., "features": .., "models":
    {candidate: ..}}`` as plain JSON data (the params file's values), serialised
    by :func:`canonical_json`; other candidates do not change it.
    """
    subset = {
        "problem": raw["problem"],
        "data": raw["data"],
        "features": raw["features"],
        "models": {candidate: raw["models"][candidate]},
    }
    return hashlib.sha256(canonical_json(subset)).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def brief(exc: BaseException) -> str:
    """An exception's message on one line, without the tracebacks some libraries embed."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if any(line.startswith("Traceback") for line in lines):
        # scikit-learn's "All the N fits failed" carries each failure's traceback:
        # keep the summary and the error it ends with.
        return f"{lines[0]} ... {lines[-1]}"
    return " ".join(lines)


def json_text(data: Any) -> str:
    """Reports: sorted keys, indent 2, trailing newline, so reruns give identical bytes."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def round_float(value: Any, digits: int = 6) -> float | None:
    """A finite float rounded for stable output; None for NaN, infinities and None."""
    if value is None:
        return None
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return None
    rounded = round(number, digits)
    return 0.0 if rounded == 0 else rounded  # no "-0.0" in reports


# ------------------------------------------------------------------ staged atomic writes


class Outputs:
    """A stage's outputs, registered while computing and written together by :meth:`commit`."""

    def __init__(self) -> None:
        self._pending: dict[Path, atomic.Writer] = {}
        self._stale: list[Path] = []

    def write(self, path: Path, writer: atomic.Writer) -> None:
        """Register ``path``, whose bytes ``writer`` will write to an open binary file."""
        self._pending[path] = writer

    def write_bytes(self, path: Path, data: bytes) -> None:
        def write(fh: IO[bytes]) -> None:
            fh.write(data)

        self.write(path, write)

    def write_text(self, path: Path, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def write_json(self, path: Path, data: Any) -> None:
        self.write_text(path, json_text(data))

    def write_parquet(self, path: Path, frame: Any) -> None:
        """A DataFrame as Parquet: pyarrow, no index, so equal frames give equal bytes."""

        def write(fh: IO[bytes]) -> None:
            frame.to_parquet(fh, engine="pyarrow", index=False)

        self.write(path, write)

    def write_joblib(self, path: Path, obj: Any) -> None:
        """A fitted model as a plain pickle that joblib.load reads; equal models, equal bytes.

        Pickle's memo writes an object once and refers back to it where the *same
        object* recurs, so which equal strings and lists happen to be shared (it
        depends on how pandas, pyarrow and the interpreter built them in this
        process) would change the bytes. Fast mode turns the memo off: every value
        is written out where it occurs, so the bytes depend on the values only.
        """

        def write(fh: IO[bytes]) -> None:
            pickler = pickle.Pickler(fh, protocol=4)
            pickler.fast = True  # no memo (fitted pipelines hold no cycles)
            pickler.dump(obj)

        self.write(path, write)

    def remove(self, path: Path) -> None:
        """Delete ``path`` at commit time (a stale output this run no longer produces)."""
        self._stale.append(path)

    @property
    def paths(self) -> list[Path]:
        return list(self._pending)

    def commit(self) -> list[Path]:
        """Write every registered file to a temp file beside it, then rename all into place."""
        mode = atomic.file_mode()
        staged: list[tuple[Path, Path]] = []
        try:
            for path, writer in self._pending.items():
                staged.append((atomic.stage(path, writer, mode), path))
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        for tmp, path in staged:
            os.replace(tmp, path)
        for path in self._stale:
            if path not in self._pending:
                path.unlink(missing_ok=True)
        return [path for _, path in staged]
