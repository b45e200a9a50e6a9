"""The monitoring report as data (the versioned JSON contract), and where it is kept.

One report per run of ``mllc monitor NAME --env ENV``. Its JSON form is written to
``monitoring/<name>/<env>/report.json`` (with ``report.md`` and ``report.html``
rendered from the same object), where the reconciler reads it: a breach shows up
in the next plan. ``schemas/monitor-report.v1.json`` is generated from these models.
:mod:`mllc.monitor` writes reports; observation reads them (:func:`read_report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mllc import saferead
from mllc.layout import Layout

REPORT = "report.json"
REPORT_MAX_BYTES = 16 << 20  # a report is tens of KiB; far more is not one mllc wrote
BATCH = "batch.parquet"

REPORT_FORMAT: Literal["1"] = "1"

FeatureKind = Literal["numeric", "categorical"]
Statistic = Literal["psi", "ks", "tvd"]


class _Frozen(BaseModel):
    # defer_build: every plan imports this model, few use it (start-up of `mllc plan`)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


class Histogram(_Frozen):
    """One feature's distribution, reference vs current, over the same bins (for plots).

    ``labels[i]`` names bin ``i``: ``"[4.3, 5.1)"`` for a numeric bin (the first and
    last are open-ended, ``"< 5.1"`` and ``">= 7.2"``), a category's value, and
    ``"(missing)"`` / ``"(other)"`` for missing values and categories the reference
    never had. Fractions of each side sum to 1.
    """

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


class FeatureDrift(_Frozen):
    """The drift of one feature column."""

    name: str
    kind: FeatureKind
    statistic: Statistic = Field(
        description="psi (population stability index), ks (two-sample Kolmogorov-Smirnov "
        "D) for numbers under method ks, tvd (total variation distance) for categories "
        "under method ks."
    )
    value: float = Field(description="The statistic's value; breach when above threshold.")
    p_value: float | None = Field(None, description="ks only: scipy's two-sided p-value.")
    threshold: float
    breach: bool
    histogram: Histogram
    reference_missing: float = Field(description="Fraction of missing values, reference.")
    current_missing: float = Field(description="Fraction of missing values, batch.")


class DriftResult(_Frozen):
    """Per-feature drift and the dataset verdict (breach when any feature breaches)."""

    method: Literal["psi", "ks"]
    threshold: float
    features: tuple[FeatureDrift, ...]
    drifted: tuple[str, ...] = Field(description="Features above the threshold, worst first.")
    share: float = Field(description="Fraction of features that drifted.")
    breach: bool


class GateCheck(_Frozen):
    gate: str
    text: str
    passed: bool


class PerformanceResult(_Frozen):
    """The deployed version's performance on the labelled batch."""

    metric: str
    value: float | None
    min: float | None = None
    max: float | None = None
    breach: bool
    gates: tuple[GateCheck, ...] = Field(
        default=(), description="The spec's gates, checked on the batch."
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="Every task metric.")


class BatchInfo(_Frozen):
    source: str = Field(description="The batch file, or 'captured requests'.")
    rows: int
    labelled: bool = Field(description="True when the batch has the target column.")
    sha256: str = Field(description="Of the batch's rows as compared (feature columns, target).")


class ReferenceInfo(_Frozen):
    path: str = Field(description="The training split the pipeline saved.")
    rows: int
    md5: str | None = None


class MonitorReport(_Frozen):
    format_version: Literal["1"] = REPORT_FORMAT
    mllc_version: str
    id: str = Field(
        description="Stable for the same lifecycle, environment, version and batch: "
        "monitoring the same batch twice gives the same id."
    )
    lifecycle: str
    environment: str
    version: str | None = Field(description="The version the environment runs (registry).")
    time: str = Field(description="When the check ran, UTC, ISO 8601.")
    batch: BatchInfo
    reference: ReferenceInfo
    drift: DriftResult | None
    performance: PerformanceResult | None
    breach: bool
    reasons: tuple[str, ...] = Field(
        description="Each breach in words, e.g. 'drift: monthly_charges psi 0.41 > 0.2'."
    )
    on_breach: Literal["retrain", "alert"]
    retrain_data: str | None = Field(
        None,
        description="The labelled batch saved for retraining (breach with on_breach retrain "
        "and labels), relative to the repository root.",
    )
    warnings: tuple[str, ...] = ()


def drift_reason(feature: FeatureDrift) -> str:
    """``drift: monthly_charges psi 0.41 > 0.2``."""
    return f"drift: {feature.name} {feature.statistic} {feature.value:.2f} > {feature.threshold:g}"


def monitoring_dir(name: str, env: str) -> str:
    """Repository-relative folder of an environment's latest report."""
    return Layout(name).monitoring_dir(env).as_posix()


def read_report(root: Path, name: str, env: str) -> MonitorReport | None:
    """The latest report of ``name``/``env``, None when there is none or it is unreadable."""
    path = root / monitoring_dir(name, env) / REPORT
    try:  # inside the repository, a regular file, capped on stat (refused and named if not)
        raw = saferead.read_bytes(path, root, max_bytes=REPORT_MAX_BYTES)
        return None if raw is None else MonitorReport.model_validate_json(raw)
    except (OSError, ValueError):
        return None


def feedback_ids(root: Path, name: str) -> set[str]:
    """Report ids whose batches are in the training data: ``<time>-<id>.parquet.dvc``
    (a batch counts once DVC tracks it: apply's last step before removing it)."""
    folder = root / Layout(name).feedback
    ids = set()
    for entry in folder.iterdir() if folder.is_dir() else []:
        stem = entry.name.removesuffix(".parquet.dvc")
        if entry.name.endswith(".parquet.dvc") and "-" in stem:
            ids.add(stem.rsplit("-", 1)[1])
    return ids
