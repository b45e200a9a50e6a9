"""Stage ``prepare``: load the source, enforce the declared columns, clean, report.

Rows are removed in a fixed order and each dropped row is counted once, under
the first reason that removes it:

1. ``duplicates`` - an exact copy of an earlier row (as written in the
   source), when ``data.cleaning.duplicates`` is ``drop``;
2. ``missing_target`` - no value in ``problem.target``: always dropped, under
   every policy, since such a row can neither train nor score a model;
3. ``invalid`` - a value that breaks its declared column (unparseable, out of
   range, unknown category, missing in a ``nullable: false`` column):
   ``data.cleaning.invalid`` drops these rows or fails the stage;
4. ``missing`` - a missing value in a column that can be a feature (any
   column but the target and ``features.exclude``): ``data.cleaning.missing``
   drops these rows, fails the stage, or keeps them (``impute``) for the
   imputers of the training pipeline.

In a declared column of a CSV file only an empty cell is missing (``n/a`` is a
value, and invalid for a number); undeclared CSV columns are read by pandas,
whose usual markers (``NA``, ``n/a``, ``null`` ...) mean missing. The
per-column ``missing`` and ``invalid`` counts of the report are over all
source rows (``rows_in``), before anything is dropped.

Labelled monitoring batches in ``feedback/`` (added by apply after a breach)
are appended to the source's rows first, and cleaned by the same rules.

Writes ``data/clean.parquet`` and ``reports/data.json``.
"""

from __future__ import annotations

from typing import Any

from mllc.stages import columns, source
from mllc.stages.io import DataError, Outputs, Params, StageError, progress

MAX_EXAMPLES = 5


def run(params: Params) -> None:
    import pandas as pd

    data = params.data
    target = params.problem.target
    declared = data.columns
    loaded = source.load(data.source, set(declared))
    loaded = source.with_feedback(
        loaded, params.layout.feedback, set(declared), text=data.source.csv is not None
    )
    frame = loaded.frame
    names = list(frame.columns)
    _check_columns(names, target, list(declared), loaded.label)
    rows_in = len(frame)
    if rows_in == 0:
        raise DataError(f"prepare: {loaded.label} has no data rows")

    checked = {name: columns.check(spec, frame[name]) for name, spec in declared.items()}
    missing = {
        c: checked[c].missing if c in checked else columns.missing_mask(frame[c]) for c in names
    }
    none = pd.Series(False, index=frame.index)
    invalid = {c: checked[c].invalid if c in checked else none for c in names}

    keep = pd.Series(True, index=frame.index)
    duplicate = loaded.raw.duplicated(keep="first") if data.cleaning.duplicates == "drop" else none
    keep &= ~duplicate
    no_target = keep & missing[target]
    keep &= ~no_target

    bad = keep & _any(invalid.values(), none)
    if bad.any() and data.cleaning.invalid == "fail":
        reasons = {c: checked[c].reasons for c in checked}
        raise _failure("invalid", bad, invalid, reasons, loaded.label)
    keep &= ~bad

    excluded = set(params.features.exclude)
    feature_like = [c for c in names if c != target and c not in excluded]
    gaps = keep & _any((missing[c] for c in feature_like), none)
    if gaps.any() and data.cleaning.missing == "fail":
        raise _failure("missing", gaps, {c: missing[c] for c in feature_like}, {}, loaded.label)
    dropped_gaps = gaps if data.cleaning.missing == "drop" else none
    keep &= ~dropped_gaps

    dropped = {
        "duplicates": int(duplicate.sum()),
        "missing_target": int(no_target.sum()),
        "invalid": int(bad.sum()),
        "missing": int(dropped_gaps.sum()),
    }
    rows_out = int(keep.sum())
    if rows_out == 0:
        raise DataError(
            f"prepare: no rows remain after cleaning {loaded.label}: {rows_in} rows in, "
            + _dropped_text(dropped)
            + f" (data.cleaning: duplicates {data.cleaning.duplicates}, "
            f"invalid {data.cleaning.invalid}, missing {data.cleaning.missing})"
        )

    clean = frame.loc[keep.to_numpy()].copy()
    for name, spec in declared.items():
        clean[name] = columns.settle_dtype(spec, checked[name].values[keep.to_numpy()])
    clean = clean.reset_index(drop=True)

    report = {
        "source": loaded.description,
        "target": target,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "dropped": dropped,
        "columns": {
            c: {
                "dtype": str(clean[c].dtype),
                "missing": int(missing[c].sum()),
                "invalid": int(invalid[c].sum()),
            }
            for c in names
        },
    }
    outputs = Outputs()
    outputs.write_parquet(params.layout.clean, clean)
    outputs.write_json(params.layout.data_report, report)
    outputs.commit()
    summary = _dropped_text(dropped)
    progress(f"prepare: {rows_in} rows in, {rows_out} out" + (f" ({summary})" if summary else ""))


def _check_columns(names: list[str], target: str, declared: list[str], label: str) -> None:
    listed = ", ".join(names)
    if target not in names:
        raise StageError(
            f"prepare: problem.target {target!r} is not a column of {label} (columns: {listed})"
        )
    absent = [c for c in declared if c not in names]
    if absent:
        which = ", ".join(repr(c) for c in absent)
        raise StageError(
            f"prepare: data.columns declares {which}, not found in {label} (columns: {listed})"
        )


def _any(masks: Any, none: Any) -> Any:
    result = none.copy()
    for mask in masks:
        result |= mask
    return result


def _dropped_text(dropped: dict[str, int]) -> str:
    words = {
        "duplicates": ("duplicate", "duplicates"),
        "missing_target": ("missing target", "missing target"),
        "invalid": ("invalid", "invalid"),
        "missing": ("with missing values", "with missing values"),
    }
    parts = [f"{n} {words[key][n != 1]}" for key in words if (n := dropped[key])]
    return ", ".join(parts) + (" dropped" if parts else "")


def _failure(
    kind: str, rows: Any, masks: dict[str, Any], reasons: dict[str, Any], label: str
) -> DataError:
    """The error of a ``fail`` policy: counts per column, then the first offending rows."""
    counts = {c: int((m & rows).sum()) for c, m in masks.items()}
    per_column = ", ".join(f"{c} {n}" for c, n in counts.items() if n)
    total = int(rows.sum())
    head = (
        f"prepare: {total} row{'s' if total != 1 else ''} of {label} "
        f"{'has' if total == 1 else 'have'} {kind} values and data.cleaning.{kind} is fail; "
        f"{kind} values per column: {per_column}"
    )
    lines = []
    positions = [int(p) for p in rows.to_numpy().nonzero()[0][:MAX_EXAMPLES]]
    for pos in positions:
        problems = [
            f"{c}: {reasons[c].iloc[pos]}" if c in reasons else f"{c}: missing"
            for c, m in masks.items()
            if m.iloc[pos]
        ]
        # Row numbers count data rows from 1, as a spreadsheet shows them under the header.
        lines.append(f"row {pos + 1}: " + "; ".join(problems))
    if total > len(positions):
        lines.append(f"... and {total - len(positions)} more")
    return DataError(head, lines)
