"""How a new version replaces a running one: an environment's ``rollout`` and the
``replay`` thresholds of ``require: [wins_on_replay]``.

A rollout starts when a new version would replace one an environment already runs
(the first version an environment ever runs goes straight in). ``canary`` moves
traffic to the new version step by step (``steps``, percentages ending at 100);
``shadow`` sends it a copy of every request while the running version still answers,
then switches once the analysis passes. Each ``mllc apply`` observes the analysis of
the current step and advances one step, rolls back, or waits for traffic.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from mllc.spec import checks
from mllc.spec.fields import Strict, raise_first


class Analysis(Strict):
    """What a rollout step must show before the next one: limits on what the new
    version did with the step's traffic. A limit left out is not checked."""

    min_requests: int = Field(
        100,
        ge=1,
        le=10_000_000,
        description="Requests the new version must have answered (shadow: seen) in the "
        "current step before it is judged.",
    )
    max_error_rate: float | None = Field(
        None, ge=0, le=1, description="Highest share of the new version's answers that fail."
    )
    max_p99_ms: float | None = Field(
        None, gt=0, le=600_000, description="Highest 99th percentile of its latency, in ms."
    )
    max_disagreement: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Highest share of requests where its prediction differs from the "
        "running version's on the same input.",
    )
    max_prediction_drift: float | None = Field(
        None,
        gt=0,
        description="Highest population stability index (PSI) between the two versions' "
        "prediction distributions on the step's traffic.",
    )
    max_metric_drop: float | None = Field(
        None,
        ge=0,
        description="Where labelled feedback exists: how far the primary metric "
        "(problem.metric) of the new version may fall below the running version's on it.",
    )


class Rollout(Strict):
    """How a new version replaces the one an environment runs."""

    strategy: Literal["canary", "shadow"] = Field(
        description="canary: the new version answers a growing share of the traffic "
        "(steps); shadow: it receives a copy of every request, the running version still "
        "answers, and it takes over once the analysis passes."
    )
    steps: list[int] | None = Field(
        None,
        description="canary only: the new version's share of the traffic at each step, "
        "in percent, increasing and ending at 100 (e.g. [10, 50, 100]).",
    )
    analysis: Analysis = Field(
        default_factory=Analysis, description="What each step must show before the next."
    )
    on_failure: Literal["rollback", "hold"] = Field(
        "rollback",
        description="rollback: the running version takes all traffic back and the new "
        "version is not tried again in this environment; hold: the step stays as it is "
        "until the spec changes.",
    )

    @model_validator(mode="after")
    def _steps(self) -> Rollout:
        raise_first(checks.rollout(self.__dict__))
        return self

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("steps") is None:
            data.pop("steps", None)
        return data

    def percentages(self) -> list[int]:
        """The new version's share of answers at each step: shadow is one step at 0%."""
        return list(self.steps) if self.steps else [0]


class Replay(Strict):
    """Thresholds of ``require: [wins_on_replay]``: the environment's captured requests
    (and its labelled feedback, where present) replayed offline against the candidate and
    the running version before the candidate may enter."""

    min_requests: int = Field(
        50, ge=1, le=10_000_000, description="Captured requests needed for a verdict."
    )
    max_requests: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Replay at most the newest this many captured requests.",
    )
    max_disagreement: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Highest share of replayed requests where the two versions' "
        "predictions differ.",
    )
    max_metric_drop: float = Field(
        0.0,
        ge=0,
        description="On labelled feedback: how far the candidate's primary metric, overall "
        "and per class (per bin of the target for regression), may fall below the running "
        "version's.",
    )
    max_p95_ratio: float = Field(
        2.0,
        gt=0,
        description="Highest ratio of the candidate's 95th percentile prediction latency to "
        "the running version's on the same requests.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Replay:
        raise_first(checks.replay(self.__dict__))
        return self
