"""What observation returns: frozen values, no behaviour beyond rendering a reason.

Observation reads the world (working tree, DVC lock and cache, Git tags,
deployment targets) and never changes it. The planner diffs these values
against what the specs ask for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from mllc.observe.monitoring import MonitorReport
from mllc.types import DeploymentState, RegisteredVersion

ReasonKind = Literal["never-run", "cmd", "param", "dep", "out", "definition", "code", "feedback"]


def short_value(value: Any) -> str:
    """A value in a reason, at most 60 characters: strings as they are, the rest as JSON."""
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Reason:
    """Why one stage is stale, e.g. a param whose value changed."""

    kind: ReasonKind
    path: str = ""  # param key (models.forest.params.n_estimators) or file path
    detail: str = (
        ""  # "modified", "deleted", "new", "added", "removed", "declared, not produced yet"
    )
    old: Any = None
    new: Any = None

    def text(self) -> str:
        if self.kind == "never-run":
            return "never run"
        if self.kind == "cmd":
            return "command changed"
        if self.kind == "definition":
            return f"stage definition changed: {self.path} {self.detail}".strip()
        if self.kind in ("param", "code"):
            label = "code changed" if self.kind == "code" else "params changed"
            if self.detail == "modified":
                return f"{label}: {self.path} {short_value(self.old)} → {short_value(self.new)}"
            return f"{label}: {self.path} {self.detail}"
        if self.kind == "dep":
            return f"input {self.detail}: {self.path}"
        if self.kind == "feedback":
            return f"training data gets {self.detail}"
        return f"output {self.detail}: {self.path}"


@dataclass(frozen=True)
class StageState:
    """One (foreach-expanded) stage of a lifecycle's dvc.yaml against its dvc.lock."""

    name: str  # "prepare", "train@forest", "train-own"
    stale: bool
    reasons: tuple[Reason, ...] = ()
    deps: tuple[str, ...] = ()  # paths, to propagate staleness downstream
    outs: tuple[str, ...] = ()


@dataclass(frozen=True)
class MonitorState:
    """An environment's latest monitoring report (``monitoring/<name>/<env>/report.json``)."""

    environment: str
    report: MonitorReport
    batch: str | None  # the labelled batch kept for retraining, if it is still there
    answered: bool  # that batch is already in the training data (pipelines/<name>/feedback/)


Tracking = Literal["dvc", "git"]


@dataclass(frozen=True)
class SourceState:
    """One source file of a lifecycle against its versioning and its last training."""

    path: str  # repository-relative, as the spec writes it
    tracked: Tracking | None  # None: neither a DVC pointer nor a Git-tracked file
    md5: str | None  # the file now (None: missing)
    recorded_md5: str | None  # what its .dvc pointer records (DVC-tracked only)
    trained_md5: str | None  # what the last training read (the prepare dep in dvc.lock)
    rows: int | None = None  # rows now, counted only when the file changed
    trained_rows: int | None = None  # rows the last training read from it
    uncommitted: tuple[str, ...] = ()  # its pointer (or the Git-tracked file) differs from HEAD
    target: str | None = None  # what DVC tracks: the file, or a folder above it

    @property
    def pointer(self) -> str:
        return f"{self.target or self.path}.dvc"


@dataclass(frozen=True)
class LifecycleActual:
    """Everything observed about one lifecycle."""

    name: str
    files: dict[str, str | None]  # generated path -> current text (None: missing)
    stages: tuple[StageState, ...]
    model_md5: str | None  # select's output hash recorded in dvc.lock (None: never built)
    metrics: dict[str, Any]  # pipelines/<name>/metrics.json, {} when absent
    versions: tuple[RegisteredVersion, ...]
    deployments: tuple[DeploymentState, ...] = ()
    uncommitted: tuple[str, ...] = ()  # its spec or outputs differ from HEAD (git status)
    monitoring: tuple[MonitorState, ...] = ()
    sources: tuple[SourceState, ...] = ()  # the csv:/parquet: files of data.source
