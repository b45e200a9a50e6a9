"""The plan as data: typed, frozen changes. The JSON form is the versioned contract.

Renderers (human text, JSON) read the same :class:`Plan`; ``schemas/plan.v1.json``
is generated from these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from mllc.compile.desired import Desired, Orphan

Action = Literal["create", "update", "replace", "delete", "run", "no-op"]
Category = Literal["retrain", "re-evaluate", "redeploy", "metadata"]
Kind = Literal["file", "stage", "model", "gates", "deployment", "lifecycle", "data", "monitoring"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RolloutChange(_Frozen):
    """A rollout's next step in an environment (spec: ``environments.<env>.rollout``)."""

    decision: Literal[
        "start", "wait", "advance", "complete", "rollback", "hold", "abort", "converge"
    ] = Field(description="What apply does with the rollout (wait and hold: nothing).")
    strategy: str = Field(description="canary or shadow")
    stable: str | None = Field(description="The version the environment runs (answers the rest).")
    candidate: str | None = Field(description="The new version being rolled out.")
    step: int = Field(description="The step after the decision, from 1 (0: none).")
    of: int = Field(description="How many steps the rollout has.")
    weight_from: int | None = Field(description="The candidate's share of answers now, in %.")
    weight: int | None = Field(description="Its share after the decision, in % (0: shadow).")
    rollout_id: str | None = Field(description="The registry tag of the step in progress.")
    reason: str = Field(description="What it waits for, or the limits that failed.")
    analysis: dict[str, Any] | None = Field(
        description="The step's numbers: requests, errors, error_rate, p99_ms, compared, "
        "differing, disagreement, prediction_drift (PSI), dropped, checks."
    )


class Change(_Frozen):
    """One thing apply would do, and why."""

    address: str = Field(description="e.g. iris/stage/train@forest, iris/model")
    lifecycle: str
    kind: Kind
    action: Action
    category: Category
    reasons: tuple[str, ...] = Field(description="Why, in words, most important first.")
    known_after_apply: tuple[str, ...] = Field(
        default=(), description="What cannot be known before apply (a model hash, a version)."
    )
    before: Any = None
    after: Any = None
    blocking: bool = Field(
        default=False, description="True when this change stops the apply (e.g. a failed gate)."
    )
    rollout: RolloutChange | None = Field(
        default=None, description="A rollout's step and its analysis (absent without one)."
    )

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("rollout") is None:
            data.pop("rollout", None)  # plans without rollouts keep their JSON
        return data


class Binding(_Frozen):
    """What the plan saw; ``apply PLANFILE`` refuses the plan when any of it changed."""

    git_commit: str | None
    specs: dict[str, str] = Field(description="spec path -> sha256 of its text")
    files: dict[str, str | None] = Field(description="generated path -> sha256 (None: missing)")
    locks: dict[str, str | None] = Field(description="dvc.lock path -> sha256 (None: missing)")
    registry: dict[str, str] = Field(description="registry tag -> commit")
    deployments: dict[str, str | None] = Field(
        default_factory=dict, description="lifecycle/env -> version running"
    )


class Summary(_Frozen):
    add: int
    change: int
    destroy: int


class Plan(_Frozen):
    format_version: Literal["1"] = "1"
    mllc_version: str
    lifecycles: tuple[str, ...]
    changes: tuple[Change, ...]
    summary: Summary
    warnings: tuple[str, ...] = ()
    binding: Binding | None = None
    target: str | None = None

    @property
    def has_changes(self) -> bool:
        return any(c.action != "no-op" for c in self.changes)

    @property
    def blocked(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.blocking)


def summarize(changes: tuple[Change, ...] | list[Change]) -> Summary:
    """Terraform's counting: a replace is one add and one destroy; runs are changes."""
    add = sum(c.action in ("create", "replace") for c in changes)
    change = sum(c.action in ("update", "run") for c in changes)
    destroy = sum(c.action in ("delete", "replace") for c in changes)
    return Summary(add=add, change=change, destroy=destroy)


REPOSITORY = "(repository)"  # changes to files of no one lifecycle; not a DNS label: no clash


@dataclass(frozen=True)
class Planned:
    """A plan with what apply needs to carry it out (not part of the JSON contract)."""

    plan: Plan
    desired: tuple[Desired, ...]
    orphans: tuple[Orphan, ...]
    repository: Mapping[str, str] = field(default_factory=dict)  # repo-level generated files
