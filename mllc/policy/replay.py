"""The verdict of ``require: [wins_on_replay]``, from numbers. Pure: no I/O.

:mod:`mllc.replay` replays an environment's captured requests (and its labelled
feedback) against a candidate and the version the environment runs, offline, and
measures; this module judges what it measured against the environment's ``replay``
thresholds (:class:`mllc.spec.rollout.Replay`). The same numbers judged with other
thresholds give another verdict: the record keeps the numbers, not the verdict.

A replay that cannot be judged (fewer captured requests than ``min_requests``, a
metric that cannot be computed on the labelled rows) fails: a gate that cannot be
checked never lets a version through, as :mod:`mllc.policy.gates`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mllc.spec.rollout import Replay
from mllc.types import RegisteredVersion

Status = Literal["passed", "failed", "pending"]
GATE = "wins_on_replay"
EPSILON = 1e-9  # a metric equal to the running version's up to rounding has not dropped
LATENCY_SAMPLE = 200  # requests predicted one at a time by each version for the p95


@dataclass(frozen=True)
class Score:
    """One metric of both versions on the same labelled rows (None: not computable)."""

    name: str  # "f1_macro", "class setosa", "bin [4.2, 5.1)"
    candidate: float | None
    running: float | None
    higher_is_better: bool = True

    def delta(self) -> float | None:
        """The candidate's value minus the running version's (None: either unknown)."""
        if self.candidate is None or self.running is None:
            return None
        return self.candidate - self.running

    def drop(self) -> float | None:
        """How far the candidate falls below the running version (negative: above)."""
        delta = self.delta()
        if delta is None:
            return None
        return -delta if self.higher_is_better else delta


@dataclass(frozen=True)
class ReplayNumbers:
    """What a replay measured: ``requests`` captured requests replayed (``differing``
    of their predictions differ between the versions), ``labelled`` labelled rows with
    the primary ``metric`` and the same metric per class (per bin of the target)."""

    environment: str
    candidate: str
    running: str
    requests: int
    differing: int = 0
    predictions: int = 0  # predictions compared (a request may hold several rows)
    labelled: int = 0
    metric: Score | None = None
    groups: tuple[Score, ...] = ()
    group_kind: str = "class"  # class | bin
    p95_ms: tuple[float, float] | None = None  # (candidate, running)


@dataclass(frozen=True)
class ReplayVerdict:
    status: Status
    text: str

    @property
    def failed(self) -> bool:
        return self.status == "failed"


# (candidate, the version the environment runs) -> the verdict
ReplayCheck = Callable[[RegisteredVersion, RegisteredVersion], ReplayVerdict]


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _limit_percent(value: float) -> str:
    return f"{value * 100:g}%"


def _metric_part(score: Score, limit: float) -> tuple[str, bool]:
    drop = score.drop()
    if drop is None:
        return f"{score.name} unknown on the labelled rows", False
    delta = -drop if score.higher_is_better else drop
    shown = f"{score.name} {score.candidate:.4g} vs {score.running:.4g} ({delta:+.3f}"
    if drop > limit + EPSILON:
        return f"{shown}, a drop of {drop:.3g} > {limit:g})", False
    return f"{shown})", True


def _worst(groups: Sequence[Score], kind: str, limit: float) -> tuple[str, bool] | None:
    known = [(drop, g) for g in groups if (drop := g.drop()) is not None]
    if not known:
        return None
    drop, worst = max(known, key=lambda pair: pair[0])
    shown = f"worst {kind} {worst.name} {-drop if worst.higher_is_better else drop:+.3f}"
    if drop > limit + EPSILON:
        return f"{shown} (a drop of {drop:.3g} > {limit:g})", False
    return shown, True


def _latency_part(p95: tuple[float, float], limit: float) -> tuple[str, bool]:
    mine, theirs = p95
    flat = 1.0 if mine <= 0 else math.inf  # a running version measured at 0 ms
    ratio = mine / theirs if theirs > 0 else flat
    ok = ratio <= limit
    sign = "≤" if ok else ">"
    return f"p95 {mine:.3g} ms vs {theirs:.3g} ms ({ratio:.3g}× {sign} {limit:g}×)", ok


def judge(numbers: ReplayNumbers, limits: Replay) -> ReplayVerdict:
    """Passed when every measure is within its limit; failed with the numbers otherwise."""
    if numbers.requests < limits.min_requests:
        return ReplayVerdict(
            "failed",
            f"{GATE}: {numbers.requests} captured request(s) of {numbers.environment}, "
            f"fewer than min_requests {limits.min_requests}: no verdict, so "
            f"{numbers.candidate} stays out",
        )
    parts: list[tuple[str, bool]] = []
    share = numbers.differing / numbers.predictions if numbers.predictions else 0.0
    agree = share <= limits.max_disagreement
    parts.append(
        (
            f"disagreement {_percent(share)} {'≤' if agree else '>'} "
            f"{_limit_percent(limits.max_disagreement)}",
            agree,
        )
    )
    if numbers.labelled:
        if numbers.metric is None:
            parts.append(("the primary metric unknown on the labelled rows", False))
        else:
            parts.append(_metric_part(numbers.metric, limits.max_metric_drop))
        worst = _worst(numbers.groups, numbers.group_kind, limits.max_metric_drop)
        if worst is not None:
            parts.append(worst)
    if numbers.p95_ms is not None:
        parts.append(_latency_part(numbers.p95_ms, limits.max_p95_ratio))
    labels = (
        f"{numbers.labelled} labelled" if numbers.labelled else "no labelled feedback: no metric"
    )
    against = f"{numbers.candidate} vs {numbers.running}"
    passed = all(ok for _, ok in parts)
    shown = ", ".join(text for text, _ in parts)
    where = f"on {numbers.requests} requests ({labels})"
    if passed:
        return ReplayVerdict("passed", f"{GATE}: {shown} {where}, {against}")
    failing = "; ".join(text for text, ok in parts if not ok)
    return ReplayVerdict("failed", f"{GATE}: {against} fails: {failing} ({shown} {where})")


def nothing_to_replay(environment: str) -> ReplayVerdict:
    """The first version of an environment: there is no running version to compare."""
    return ReplayVerdict("passed", f"{GATE}: {environment} runs no version yet, nothing to replay")


def pending(environment: str, captured: int) -> ReplayVerdict:
    """Plan without a recorded replay for the pair: apply replays before it may enter."""
    return ReplayVerdict(
        "pending",
        f"{GATE}: known after apply ({captured} captured request(s) of {environment})",
    )


def differing(candidate: Sequence[Any], running: Sequence[Any], task: str) -> int:
    """How many predictions differ: labels compared as text (``1`` and ``"1"`` are one
    class); numbers (regression) when they differ by more than a tenth of the running
    version's standard deviation on these requests (a retrained regressor never agrees
    to the last digit). ValueError when the two have not the same length."""
    if task == "classification":
        return sum(str(a) != str(b) for a, b in zip(candidate, running, strict=True))
    values = [float(b) for b in running]
    mean = sum(values) / max(len(values), 1)
    tolerance = math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values), 1)) / 10
    return sum(abs(float(a) - b) > tolerance for a, b in zip(candidate, values, strict=True))


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile by nearest rank (a value that occurred); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(0.95 * len(ordered))
    return ordered[max(rank, 1) - 1]


def quartile_edges(values: Sequence[float]) -> tuple[float, ...]:
    """The three inner edges of the target's quartile bins (nearest rank), deduplicated."""
    ordered = sorted(values)
    if not ordered:
        return ()
    edges = [ordered[(len(ordered) * q) // 4] for q in (1, 2, 3)]
    return tuple(sorted(set(edges)))


def bin_label(value: float, edges: Sequence[float]) -> str:
    """``< 4.2``, ``[4.2, 5.1)``, ``>= 6.3``: the bin of ``value`` among ``edges``."""
    if not edges:
        return "all"
    if value < edges[0]:
        return f"< {edges[0]:.4g}"
    for low, high in itertools.pairwise(edges):
        if value < high:
            return f"[{low:.4g}, {high:.4g})"
    return f">= {edges[-1]:.4g}"
