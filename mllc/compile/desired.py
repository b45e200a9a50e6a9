"""What the specs ask for, per lifecycle: the compiler's output that every later layer reads.

Observation reads the world for a :class:`Desired`, the plan diffs the two, and
apply writes its files; an :class:`Orphan` is a lifecycle whose generated files
remain after its spec was removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from mllc.spec.deployment import Environment, Monitoring
from mllc.spec.models import Lifecycle


class LifecycleRecord(BaseModel):
    """``pipelines/<name>/lifecycle.yaml``: what DVC does not track. It lets a plan tell a
    gate, an environment or a metadata change from a retraining, and a hand edit of the
    generated files from a spec change (same spec hash, different file: drift).

    Typed for the code that reads it; :meth:`document` is the data written to disk
    (and compared, leaf by leaf, with the record an earlier apply wrote)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec_sha256: str
    metadata: dict[str, Any]
    gates: tuple[str, ...]
    environments: dict[str, Environment]
    monitoring: Monitoring | None

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Desired:
    """What one spec asks for: its generated files and the documents behind them."""

    name: str
    spec_file: str
    files: Mapping[str, str]  # generated path -> text
    lifecycle: LifecycleRecord  # gates, metadata, environments, monitoring
    spec: Lifecycle  # what the record and files were compiled from


@dataclass(frozen=True)
class Orphan:
    """A lifecycle whose generated files exist but whose spec is gone."""

    name: str
    files: tuple[str, ...]
