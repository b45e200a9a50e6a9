"""Input drift: how far a batch's feature columns moved from the training data.

Pure functions over pandas data (no file I/O). Each feature is compared on bins
shared by both sides; the same bins give the report's histograms (under ks too).

**Bins.** Every fraction is over *all* rows of its side, missing values included.

* Numeric columns (float, int or bool; converted to float) are cut at the
  reference's quantiles: ``bins=10`` gives deciles. Duplicate quantiles collapse,
  so a column with few distinct values gets fewer bins, and a value taking two or
  more of the quantiles ``0, 1/bins, ..., 1`` (about ``1/bins`` of the reference or
  more: a heavy tie) gets a bin of its own, ``"[v, v]"``. The reference's minimum
  and maximum are not cuts unless tied: the first and last bins are open-ended
  (``"< 5.1"``, ``">= 7.2"``), so batch values outside the reference's range land
  in the end bins. A constant column thus has one bin plus the open ends:
  ``"< 5"``, ``"[5, 5]"``, ``"> 5"``. Other labels are ``"[5.1, 5.8)"``, or
  ``"(0, 0.3)"`` right after a tie; numbers are shown with 4 significant digits.
* Categorical columns are compared as strings (``str(value)``): one bin per
  reference category, most frequent first (ties by value), then ``"(other)"`` for
  values the reference never had, present only when the batch has some.
* Missing values (NaN, None, NA, and ±inf in numeric columns) form a
  ``"(missing)"`` bin, last, present only when either side has one. A numeric
  column whose reference is all missing has no value bins: the batch's values
  all go to ``"(other)"``.

**Statistics.** ``method`` and ``kind`` pick the statistic; a feature breaches
when its value is above ``threshold``.

* ``psi`` (either kind): population stability index over the bins,
  ``sum((c - r) * ln(c / r))`` with each fraction floored at :data:`EPSILON` so
  that a bin empty on one side costs a finite amount. Symmetric and >= 0.
* ``ks`` on a numeric column: scipy's two-sided two-sample Kolmogorov-Smirnov
  test (``scipy.stats.ks_2samp``, default method) on the non-missing values;
  the value is its D statistic and ``p_value`` its p-value. When one side has no
  values D is 1.0 (0.0 when neither has) and ``p_value`` is None.
* ``ks`` on a categorical column is reported as ``tvd``, the total variation
  distance ``0.5 * sum(|c - r|)`` over all bins (categories, other, missing):
  KS is not defined for unordered values, and TVD equals KS's D for a binary
  variable without missing values. ``p_value`` is None.

The dataset verdict (:func:`dataset_drift`) breaches when any feature does.
An empty reference is an error; an empty batch has all-zero fractions (and so
drifts as far as the statistic goes). Every number returned is finite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from mllc.observe.monitoring import DriftResult, FeatureDrift, FeatureKind, Histogram, Statistic

EPSILON = 1e-4
"""Floor of each bin fraction in :func:`psi`: an empty bin counts as 0.01 %."""

MISSING = "(missing)"
OTHER = "(other)"

Method = Literal["psi", "ks"]


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Population stability index of two fraction vectors over the same bins.

    ``sum((c - r) * ln(c / r))``, each fraction floored at :data:`EPSILON` first
    so that empty bins give finite terms. Every term is >= 0, and swapping the
    sides gives the same value.
    """
    r = np.maximum(np.asarray(reference, dtype=float), EPSILON)
    c = np.maximum(np.asarray(current, dtype=float), EPSILON)
    if r.shape != c.shape or r.ndim != 1:
        raise ValueError(
            f"psi needs two fraction vectors over the same bins, got shapes {r.shape} and {c.shape}"
        )
    return float(np.sum((c - r) * np.log(c / r)))


# ------------------------------------------------------------------ bins


def _num(x: float) -> str:
    return f"{x:.4g}"


def _values(name: str, series: Any) -> Any:
    """The non-missing values of a numeric column as sorted floats (NaN, NA, ±inf dropped)."""
    try:
        values = series.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"numeric feature {name!r} has a value that is not a number: {exc}"
        ) from None
    return np.sort(values[np.isfinite(values)])


def _cuts(ref: Any, bins: int) -> tuple[Any, list[str]]:
    """Cut points of the reference's non-missing values, and the labels of the bins."""
    quantiles = np.quantile(ref, np.linspace(0.0, 1.0, bins + 1))
    values, counts = np.unique(quantiles, return_counts=True)
    tied = counts > 1
    keep = tied | ((values > quantiles[0]) & (values < quantiles[-1]))
    # (value, after): a cut at value, or just above it (after=True) to close a tie's bin
    edges = sorted(
        [(float(v), False) for v in values[keep]] + [(float(v), True) for v in values[tied]]
    )
    cuts = np.array([np.nextafter(v, np.inf) if after else v for v, after in edges])
    labels = [f"< {_num(edges[0][0])}"]
    for (lo, lo_after), (hi, hi_after) in pairwise(edges):
        left = "(" if lo_after else "["
        right = "]" if hi_after else ")"
        labels.append(f"{left}{_num(lo)}, {_num(hi)}{right}")
    last, last_after = edges[-1]
    labels.append(f"{'>' if last_after else '>='} {_num(last)}")
    return cuts, labels


def _numeric_bins(ref: Any, cur: Any, bins: int) -> tuple[list[str], Any, Any]:
    """Labels and counts of the value bins of two sorted arrays without missing values."""
    if ref.size == 0:
        return ([OTHER], np.array([0]), np.array([cur.size])) if cur.size else ([], [], [])
    cuts, labels = _cuts(ref, bins)
    # bin i holds cuts[i-1] <= x < cuts[i]: counts from the positions of the cuts
    ref_counts = np.diff(np.searchsorted(ref, cuts), prepend=0, append=ref.size)
    cur_counts = np.diff(np.searchsorted(cur, cuts), prepend=0, append=cur.size)
    return labels, ref_counts, cur_counts


def _string_counts(series: Any) -> dict[str, int]:
    """Counts of the non-missing values of a column by ``str(value)``."""
    if series.dtype == object:  # mixed Python values: 1, 1.0 and True are equal keys
        series = series[series.notna()].map(str)
    counts: dict[str, int] = {}
    for value, count in series.value_counts(dropna=True).items():
        if count:
            counts[str(value)] = counts.get(str(value), 0) + int(count)
    return counts


def _categorical_bins(reference: Any, current: Any) -> tuple[list[str], Any, Any]:
    """Labels and counts of the category bins (and ``(other)``) of two columns."""
    ref, cur = _string_counts(reference), _string_counts(current)
    labels = sorted(ref, key=lambda value: (-ref[value], value))
    ref_counts = np.array([ref[v] for v in labels], dtype=np.int64)
    cur_counts = np.array([cur.get(v, 0) for v in labels], dtype=np.int64)
    other = sum(cur.values()) - int(cur_counts.sum())
    if other:
        labels.append(OTHER)
        ref_counts = np.append(ref_counts, 0)
        cur_counts = np.append(cur_counts, other)
    return labels, ref_counts, cur_counts


# ------------------------------------------------------------------ drift


def _fractions(counts: Any, rows: int) -> Any:
    return np.asarray(counts, dtype=float) / max(rows, 1)


def feature_drift(
    name: str,
    kind: FeatureKind,
    reference: Any,
    current: Any,
    method: Method,
    threshold: float,
    bins: int = 10,
) -> FeatureDrift:
    """The drift of one column (pandas Series) of the batch from the reference.

    See the module's documentation for the bins and statistics.
    """
    if len(reference) == 0:
        raise ValueError(f"feature {name!r}: the reference has no rows to compare the batch with")
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    ref_rows, cur_rows = len(reference), len(current)
    if kind == "numeric":
        ref_values, cur_values = _values(name, reference), _values(name, current)
        labels, ref_counts, cur_counts = _numeric_bins(ref_values, cur_values, bins)
        ref_present, cur_present = ref_values.size, cur_values.size
    else:
        labels, ref_counts, cur_counts = _categorical_bins(reference, current)
        ref_present, cur_present = int(np.sum(ref_counts)), int(np.sum(cur_counts))
    ref_missing, cur_missing = ref_rows - ref_present, cur_rows - cur_present
    if ref_missing or cur_missing:
        labels = [*labels, MISSING]
        ref_counts = np.append(ref_counts, ref_missing)
        cur_counts = np.append(cur_counts, cur_missing)
    ref_frac, cur_frac = _fractions(ref_counts, ref_rows), _fractions(cur_counts, cur_rows)

    statistic: Statistic
    p_value: float | None = None
    if method == "psi":
        statistic, value = "psi", psi(ref_frac, cur_frac)
    elif kind == "categorical":
        statistic, value = "tvd", float(0.5 * np.abs(cur_frac - ref_frac).sum())
    else:
        from scipy.stats import ks_2samp

        statistic = "ks"
        if ref_values.size and cur_values.size:
            result = ks_2samp(ref_values, cur_values)
            value, p_value = float(result.statistic), float(result.pvalue)
        else:
            value = 1.0 if ref_values.size or cur_values.size else 0.0
    return FeatureDrift(
        name=name,
        kind=kind,
        statistic=statistic,
        value=value,
        p_value=p_value,
        threshold=threshold,
        breach=value > threshold,
        histogram=Histogram(
            labels=tuple(labels),
            reference=tuple(round(float(f), 6) for f in ref_frac),
            current=tuple(round(float(f), 6) for f in cur_frac),
        ),
        reference_missing=round(ref_missing / ref_rows, 6),
        current_missing=round(cur_missing / max(cur_rows, 1), 6),
    )


def dataset_drift(
    reference: Any,
    current: Any,
    features: Mapping[str, FeatureKind],
    method: Method,
    threshold: float,
    bins: int = 10,
) -> DriftResult:
    """The drift of each feature (in the order given) and the dataset verdict.

    ``drifted`` lists the breaching features by value, largest first (ties by
    name); ``share`` is their fraction of the features; ``breach`` is whether any
    feature breached.
    """
    for side, frame in (("reference", reference), ("batch", current)):
        absent = [f for f in features if f not in frame.columns]
        if absent:
            raise ValueError(
                f"the {side} has no column {', '.join(repr(f) for f in absent)} "
                f"(columns: {', '.join(str(c) for c in frame.columns)})"
            )
    results = tuple(
        feature_drift(name, kind, reference[name], current[name], method, threshold, bins)
        for name, kind in features.items()
    )
    drifted = sorted((f for f in results if f.breach), key=lambda f: (-f.value, f.name))
    return DriftResult(
        method=method,
        threshold=threshold,
        features=results,
        drifted=tuple(f.name for f in drifted),
        share=len(drifted) / len(results) if results else 0.0,
        breach=bool(drifted),
    )
