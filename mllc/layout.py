"""Where everything lives in a repository mllc manages, in one place.

Paths are relative to the repository root (stages run there; other callers join
them to the root they were given). ``Path`` values; use ``.as_posix()`` for the
repository-relative strings Git, DVC and plans speak.

- ``specs/<name>.yaml``                 the spec (any path the user chooses)
- ``pipelines/<name>/``                 generated files, DVC outputs and records
- ``deploy/<name>/<env>/``              generated Kubernetes manifests
- ``monitoring/<name>/<env>/``          the latest monitoring report
- ``.mllc/``                            local state: lock, journal, servers, caches
- ``.dvc/cache/``                       DVC's cache and run cache (unless ``cache.dir`` moves it)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PIPELINES = Path("pipelines")
DEPLOY = Path("deploy")
MONITORING = Path("monitoring")
STATE = Path(".mllc")
# DVC's cache (objects and run cache) where `dvc init` puts it; mllc.dvcrepo.cache_dir
# reads the repository's own setting.
DVC_CACHE = Path(".dvc") / "cache"


@dataclass(frozen=True)
class Layout:
    """Where lifecycle ``name``'s files live, relative to the repository root (the cwd)."""

    name: str

    @property
    def root(self) -> Path:
        return PIPELINES / self.name

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def dvc_yaml(self) -> Path:
        return self.root / "dvc.yaml"

    @property
    def dvc_lock(self) -> Path:
        return self.root / "dvc.lock"

    @property
    def record(self) -> Path:
        """The lifecycle record (:class:`mllc.compile.desired.LifecycleRecord`)."""
        return self.root / "lifecycle.yaml"

    @property
    def clean(self) -> Path:
        return self.root / "data" / "clean.parquet"

    def split(self, part: str) -> Path:
        """``part`` is train, validation or test."""
        return self.root / "data" / f"{part}.parquet"

    @property
    def data_report(self) -> Path:
        return self.root / "reports" / "data.json"

    def train_report(self, candidate: str) -> Path:
        return self.root / "reports" / "train" / f"{candidate}.json"

    def candidate(self, candidate: str) -> Path:
        return self.root / "candidates" / f"{candidate}.joblib"

    @property
    def candidate_reports(self) -> Path:
        """Evaluate's folder of per-candidate metrics (DVC metrics, one file each)."""
        return self.root / "reports" / "candidates"

    def candidate_report(self, candidate: str) -> Path:
        """``candidate``'s validation and test metrics, written by evaluate."""
        return self.candidate_reports / f"{candidate}.json"

    @property
    def legacy_candidates_report(self) -> Path:
        """Where evaluate wrote every candidate's metrics in one file before
        ``reports/candidates/``; versions registered then still have it at their commit."""
        return self.root / "reports" / "candidates.json"

    @property
    def model(self) -> Path:
        return self.root / "model.joblib"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def lineage(self) -> Path:
        return self.root / "lineage.json"

    @property
    def card(self) -> Path:
        """The model card apply writes with a new version, in the commit it tags."""
        return self.root / "card.md"

    def plot(self, name: str) -> Path:
        """``confusion`` (classification) or ``residuals`` (regression)."""
        return self.root / "plots" / f"{name}.csv"

    @property
    def feedback(self) -> Path:
        """Labelled monitoring batches added to the training data (each DVC-tracked)."""
        return self.root / "feedback"

    @property
    def deploy(self) -> Path:
        """Generated deployment files of every environment."""
        return DEPLOY / self.name

    def deploy_dir(self, env: str) -> Path:
        return DEPLOY / self.name / env

    def monitoring_dir(self, env: str) -> Path:
        """The environment's latest monitoring report (and a batch kept for retraining)."""
        return MONITORING / self.name / env
