"""What the specs ask for, per lifecycle: the compiler's output that every later layer reads.

Observation reads the world for a :class:`Desired`, the plan diffs the two, and
apply writes its files; an :class:`Orphan` is a lifecycle whose generated files
remain after its spec was removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mllc.spec.models import Lifecycle


@dataclass(frozen=True)
class Desired:
    """What one spec asks for: its generated files and the documents behind them."""

    name: str
    spec_file: str
    files: Mapping[str, str]  # generated path -> text
    lifecycle: Mapping[str, Any]  # the lifecycle record (gates, metadata, environments, ...)
    spec: Lifecycle | None = None  # for the targets' own rendering (Kubernetes manifests)


@dataclass(frozen=True)
class Orphan:
    """A lifecycle whose generated files exist but whose spec is gone."""

    name: str
    files: tuple[str, ...]
