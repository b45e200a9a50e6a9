"""A preview as data: typed, frozen, JSON-serialisable (``format_version`` 1).

Built by :mod:`mllc.preview.compare`, rendered by :mod:`mllc.preview.render`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["pass", "fail"]
StageOutcome = Literal["ran", "cached", "unchanged"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Candidate(_Frozen):
    name: str
    validation: dict[str, float] = Field(default_factory=dict)
    test: dict[str, float] = Field(default_factory=dict)
    selected: bool = False


class Delta(_Frozen):
    """One test metric of the previewed model against the version an environment runs."""

    metric: str
    old: float
    new: float
    delta: float
    better: bool | None = Field(description="None when equal")


class Running(_Frozen):
    """What an environment runs now, and what happens to it after merge."""

    environment: str
    version: str | None = Field(description="None: nothing assigned yet")
    deltas: tuple[Delta, ...] = ()
    deploy: bool = Field(description="True when the previewed version would be deployed here")
    reason: str = Field(description="Why it would be deployed, or why it is held out")
    replay: str | None = Field(
        default=None,
        description="require: [wins_on_replay]: the verdict of replaying the environment's "
        "captured requests against the previewed version and the running one",
    )
    replay_passed: bool | None = Field(
        default=None, description="None: no replay (not required, or nothing to replay)"
    )


class Gate(_Frozen):
    gate: str
    metric: str
    value: float | None
    passed: bool
    text: str


class DataChange(_Frozen):
    """The data report against the last registered version's (when it differs)."""

    base_version: str | None
    rows_in: tuple[int | None, int | None]
    rows_out: tuple[int | None, int | None]
    dropped: dict[str, tuple[int | None, int | None]] = Field(
        default_factory=dict, description="reason -> (before, after)"
    )


class StageRun(_Frozen):
    stage: str
    outcome: StageOutcome
    seconds: float


class LifecyclePreview(_Frozen):
    name: str
    verdict: Verdict
    categories: tuple[str, ...] = Field(description="The plan's categories: retrain, re-evaluate")
    metric: str
    selected: str | None
    why_selected: str
    candidates: tuple[Candidate, ...] = ()
    test: dict[str, float] = Field(default_factory=dict)
    gates: tuple[Gate, ...] = ()
    model_md5: str | None = None
    new_version: str | None = Field(
        default=None, description="The version apply would register; None: already registered"
    )
    registered_as: str | None = Field(
        default=None, description="The registered version with the same model, if any"
    )
    environments: tuple[Running, ...] = ()
    data: DataChange | None = None
    stages: tuple[StageRun, ...] = ()
    seconds: float = 0.0


class Preview(_Frozen):
    format_version: Literal["1"] = "1"
    mllc_version: str
    commit: str | None = Field(description="The commit previewed (HEAD)")
    uncommitted_specs: tuple[str, ...] = Field(
        default=(), description="Spec files previewed as they are in the working tree"
    )
    lifecycles: tuple[LifecyclePreview, ...] = ()

    @property
    def failed(self) -> tuple[LifecyclePreview, ...]:
        return tuple(p for p in self.lifecycles if p.verdict == "fail")

    @property
    def registers(self) -> bool:
        return any(p.new_version for p in self.lifecycles)
