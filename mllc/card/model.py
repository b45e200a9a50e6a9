"""What a model card holds: the evidence about one registered version, typed.

Every value is what a record says (the registry's tag, the version commit's files, the
outputs the DVC cache keeps by the md5 its ``dvc.lock`` records, the monitoring
reports, the verification record), never recomputed from a model: nothing here loads
one. A section without evidence has no value (None or empty) and :attr:`Card.missing`
says which record was missing and why; the renderers say so in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mllc.card.lineage import Graph


@dataclass(frozen=True)
class Missing:
    """A record the card would use but could not read: which, and why."""

    what: str
    why: str


@dataclass(frozen=True)
class DataEvidence:
    source: str | None  # ``sklearn: iris``, ``csv: data/churn.csv``
    source_files: tuple[tuple[str, str | None], ...]  # (path, md5 dvc.lock records)
    clean_md5: str | None  # data/clean.parquet, as dvc.lock records it
    data_sha256: str | None  # of the clean data (lineage)
    rows_in: int | None
    rows_out: int | None
    dropped: tuple[tuple[str, int], ...]  # reason -> rows dropped (reports/data.json)
    split: tuple[tuple[str, int | None], ...]  # part -> rows (train, validation, test)
    split_settings: dict[str, Any]  # data.split from params.yaml
    split_how: str  # where the split sizes come from


@dataclass(frozen=True)
class CandidateEvidence:
    name: str
    selected: bool
    estimator: str | None
    params: dict[str, Any]
    search: dict[str, Any] | None
    validated_on: str | None
    validation: dict[str, float | None]
    test: dict[str, float | None]
    train_rows: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class GateVerdict:
    gate: str
    passed: bool
    text: str  # :meth:`mllc.policy.gates.GateResult.text`


@dataclass(frozen=True)
class Confusion:
    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]  # counts[actual][predicted]
    rows: int
    shown_labels_cut: int = 0  # labels beyond the shown ones (their rows still counted)


@dataclass(frozen=True)
class Residuals:
    rows: int
    mean: float
    mean_abs: float
    rmse: float
    min: float
    max: float


@dataclass(frozen=True)
class Evaluation:
    metric: str | None
    selected: str | None
    test: dict[str, Any]
    validation: dict[str, Any]
    gates: tuple[GateVerdict, ...]
    gates_from: str  # where the gates were read
    gates_now: tuple[GateVerdict, ...] | None  # the checkout's gates, when they differ
    confusion: Confusion | None
    residuals: Residuals | None


@dataclass(frozen=True)
class Period:
    """An environment ran this version from ``started`` until ``stopped`` (None: still)."""

    environment: str
    started: str
    started_tag: str
    stopped: str | None = None
    stopped_tag: str | None = None
    stopped_why: str | None = None


@dataclass(frozen=True)
class MonitorEvidence:
    environment: str
    report: str  # its id
    time: str
    breach: bool
    reasons: tuple[str, ...]
    drift: str  # ``1 of 4 features drifted (psi)`` or ``not checked``
    performance: str  # ``accuracy 0.91 (min 0.85)`` or ``no labels``
    where: str  # the file or commit it was read from


@dataclass(frozen=True)
class Verification:
    state: str  # verified | failed | unverified | pending
    text: str
    checked_at: str | None = None
    summary: str | None = None
    mllc_version: str | None = None


@dataclass(frozen=True)
class LineageFacts:
    spec_sha256: str | None
    commit: str | None
    model_md5: str | None
    model_sha256: str | None
    data_sha256: str | None
    params_sha256: str | None
    libraries: tuple[tuple[str, str], ...]
    registered_by: str | None  # the mllc version that wrote the tag
    trained_on: str | None = None  # where the spec had training run (compute), when recorded


@dataclass(frozen=True)
class Card:
    name: str
    version: str
    at_apply: bool  # written by apply into the commit it tags (no history yet)
    commit: str | None
    registered: str | None  # when the tag was made
    model_md5: str | None
    description: str
    owner: str | None
    labels: tuple[tuple[str, str], ...]
    # metadata the checkout's lifecycle record has changed since the version: (field, now)
    metadata_now: tuple[tuple[str, str], ...]
    intended_use: str | None
    limitations: str | None
    data: DataEvidence | None
    candidates: tuple[CandidateEvidence, ...]
    evaluation: Evaluation | None
    deployments: tuple[Period, ...]
    environments: tuple[str, ...]  # the environments the version's record names
    monitoring: tuple[MonitorEvidence, ...]
    verification: Verification
    lineage: LineageFacts
    graph: Graph
    missing: tuple[Missing, ...] = field(default_factory=tuple)
