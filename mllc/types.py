"""Shared value types: what several layers pass between them, frozen and behaviour-free.

The registry produces :class:`RegisteredVersion` and :class:`Assignment`; the
deployment targets produce :class:`DeploymentState`; the promotion policy,
observation, the plan and apply read them. Keeping them here, below all of those,
is what lets each layer import its neighbours' results without importing the
neighbour (see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version in the registry: an annotated Git tag ``<name>@vX.Y.Z`` (GTO format)."""

    name: str
    version: str  # "v1.2.0"
    commit: str
    model_md5: str  # the DVC hash of pipelines/<name>/model.joblib at that commit
    created: str  # ISO 8601
    metrics: dict[str, Any] = field(default_factory=dict, compare=False)
    in_cache: bool = True  # the binary is in the local DVC cache
    # where the spec had training run ("dask, a local cluster"); None: not recorded (local)
    trained_on: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DeploymentState:
    """What a target reports it runs (filled in by deployment targets)."""

    lifecycle: str
    environment: str
    target: str
    version: str | None  # None: nothing deployed
    healthy: bool
    detail: str = ""
    reachable: bool = True
    host: str | None = None
    port: int | None = None
    model_md5: str | None = None
    # how what runs differs from what is asked besides the version ('token: none → env:X'):
    # each line is a reason to redeploy
    drift: tuple[str, ...] = ()
    # GitOps (kubernetes.sync: gitops): apply only commits, a controller syncs. ``version``
    # stays what the cluster was seen running; ``committed`` is the version the manifests
    # at HEAD assign, ``manifests`` their (path, text) at HEAD, and ``drift`` then lists
    # what the cluster differs from them in
    gitops: bool = False
    committed: str | None = None
    manifests: tuple[tuple[str, str], ...] = ()
    # a rollout in progress as the target sees it (spec: environments.<env>.rollout)
    rollout: RolloutObservation | None = None


@dataclass(frozen=True)
class Assignment:
    """One stage tag ``<name>#<env>#<N>``: an environment was assigned (or unassigned) a version."""

    name: str
    env: str
    version: str | None  # the version registered at the tag's commit; None if none is
    commit: str
    tag: str
    counter: int | None  # GTO's per-artifact counter N; None for a GTO "simple" tag
    created: str  # ISO 8601
    unassign: bool = False  # `gto deprecate NAME VERSION STAGE`; mllc never unassigns
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RolloutStats:
    """What the new version did with the current step's traffic (local target: the
    server's rollout file; numbers a target cannot observe stay None)."""

    requests: int  # answered by the candidate (shadow: seen by it) in this step
    errors: int  # of those, how many failed in the candidate's model
    p99_ms: float | None  # the candidate's 99th percentile latency
    compared: int  # requests both versions predicted (for disagreement and drift)
    differing: int  # of those, where the predictions differ
    # prediction distributions on the compared requests: label (or bin) -> count
    stable_predictions: tuple[tuple[str, int], ...] = ()
    candidate_predictions: tuple[tuple[str, int], ...] = ()
    dropped: int = 0  # comparisons skipped because the background queue was full
    updated: str = ""  # ISO 8601, when the numbers were written


@dataclass(frozen=True)
class RolloutObservation:
    """The traffic split a target runs now: ``stable`` answers the rest, ``candidate`` its
    ``weight`` percent (0 with a shadow, which only sees copies)."""

    strategy: str  # "canary" | "shadow"
    stable: str  # version
    candidate: str  # version
    candidate_md5: str | None
    weight: int
    rollout_id: str  # the registry tag that started this step
    stats: RolloutStats | None = None  # None: not observable by this target
    detail: str = ""  # what could not be observed, in words
    # whether the candidate runs as asked, as far as the target sees it (Kubernetes: its
    # revision is Ready): True ready; False failed, a reason to roll back; None not
    # known yet (wait) or not reported (the local target, whose stats say more)
    ready: bool | None = None


@dataclass(frozen=True)
class RolloutStep:
    """What apply asks a target to run: ``stable`` and ``candidate`` side by side, the
    candidate answering ``weight`` percent (0: a shadow seeing a copy of every request).
    ``rollout_id`` is the registry tag recording the step; ``step`` counts from 1 of ``of``."""

    strategy: str  # "canary" | "shadow"
    stable: RegisteredVersion
    candidate: RegisteredVersion
    weight: int
    rollout_id: str
    step: int
    of: int
