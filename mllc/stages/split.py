"""Stage ``split``: cut the clean rows into train, (validation,) and test, seeded.

Both fractions are of *all* clean rows: ``test`` first, then ``validation``
(when set) from the rest, so ``test: 0.2, validation: 0.1`` leaves 70% for
training. A fraction becomes a row count rounded up (as scikit-learn does), and
a stratified split keeps the target's class proportions in every part.

Writes ``data/train.parquet``, ``data/test.parquet`` and, only when
``data.split.validation`` is set, ``data/validation.parquet`` (a stale one from
an earlier configuration is removed, so no later stage can mistake it for
current).
"""

from __future__ import annotations

import math
from typing import Any

from mllc.stages.io import Outputs, Params, StageError, brief, progress, read_frame


def run(params: Params) -> None:
    layout = params.layout
    frame = read_frame(layout.clean, "stage prepare")
    split = params.data.split
    target = params.problem.target
    if target not in frame.columns:
        raise StageError(f"split: {layout.clean} has no target column {target!r}")
    n = len(frame)
    n_test = math.ceil(split.test * n)
    n_validation = math.ceil(split.validation * n) if split.validation is not None else 0
    if n - n_test - n_validation < 1:
        raise StageError(
            f"split: {n} clean rows are too few for test {split.test:g}"
            + (f" and validation {split.validation:g}" if split.validation is not None else "")
            + ": no row would remain for training"
        )
    if split.stratify:
        _check_stratifiable(frame[target], target, n_validation > 0, params.problem.task)

    rest, test = _cut(frame, n_test, split.seed, target if split.stratify else None, "test")
    validation = None
    if n_validation:
        train, validation = _cut(
            rest, n_validation, split.seed, target if split.stratify else None, "validation"
        )
    else:
        train = rest

    outputs = Outputs()
    outputs.write_parquet(layout.split("train"), train.reset_index(drop=True))
    outputs.write_parquet(layout.split("test"), test.reset_index(drop=True))
    if validation is not None:
        outputs.write_parquet(layout.split("validation"), validation.reset_index(drop=True))
    else:
        outputs.remove(layout.split("validation"))
    outputs.commit()
    parts = [f"{len(train)} train"]
    if validation is not None:
        parts.append(f"{len(validation)} validation")
    parts.append(f"{len(test)} test")
    how = f"stratified on {target}, " if split.stratify else ""
    progress(f"split: {n} rows -> {', '.join(parts)} ({how}seed {split.seed})")


def _check_stratifiable(labels: Any, target: str, with_validation: bool, task: str) -> None:
    if task != "classification":
        raise StageError("split: data.split.stratify needs a classification task")
    need = 3 if with_validation else 2  # one row per part, at least
    counts = labels.value_counts(dropna=False)
    counts = counts[counts > 0]  # a category dtype also counts declared-but-absent values
    few = counts[counts < need]
    if len(few):
        listed = ", ".join(
            f"{cls!r} ({int(k)} row{'s' if k != 1 else ''})" for cls, k in few.items()
        )
        raise StageError(
            f"split: cannot stratify on {target!r}: class(es) {listed} have fewer than {need} "
            f"rows, one for each part of the split; add rows or set data.split.stratify: false"
        )


def _cut(frame: Any, count: int, seed: int, stratify: str | None, part: str) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    labels = frame[stratify].to_numpy() if stratify is not None else None
    try:
        kept, cut = train_test_split(
            frame, test_size=count, random_state=seed, shuffle=True, stratify=labels
        )
    except ValueError as exc:  # e.g. fewer rows in the part than classes to stratify
        raise StageError(
            f"split: cannot cut the {part} part ({count} rows): {brief(exc)}"
        ) from None
    return kept, cut
