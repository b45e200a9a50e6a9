"""What a rollout does next, and why. Pure: no I/O.

From an environment's ``rollout`` spec, the version it should run (the resolution),
the version it runs (the stable one, by the registry), the registry's rollout events
for the environment (stages ``<env>_canary`` / ``<env>_shadow``, oldest first) and
what the target observes of the traffic split, :func:`decide` says one of:

- ``start``: a new version would replace a running one: step 1;
- ``wait``: the step has not seen ``min_requests`` yet (or no comparison yet);
- ``advance``: the step passed its analysis: the next percentage;
- ``complete``: the last step passed: the candidate takes over;
- ``rollback`` / ``hold``: a limit failed (``on_failure``), or the step is held already;
- ``abort``: the spec no longer asks for that candidate;
- ``converge``: the target does not run the recorded step: redeploy it, no advance;
- ``nothing``: no rollout.

The analysis numbers (requests, error rate, p99, disagreement, PSI of the prediction
distributions) come with each decision, and a one-line text for plan and status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mllc.policy.labels_psi import psi
from mllc.spec.rollout import Rollout
from mllc.types import Assignment, RegisteredVersion, RolloutObservation, RolloutStats

if TYPE_CHECKING:
    from mllc.policy.promotion import Resolution

STRATEGIES = ("canary", "shadow")
METRIC_DROP = "not observed (labelled feedback: see the replay gate)"

Action = Literal[
    "start", "wait", "advance", "complete", "rollback", "hold", "abort", "converge", "nothing"
]


def stage_name(env: str, strategy: str) -> str:
    """The registry stage of ``env``'s rollouts: ``production_canary``."""
    return f"{env}_{strategy}"


def split_stage(stage: str) -> tuple[str, str] | None:
    """(environment, strategy) of a rollout stage; None for an environment's own stage."""
    env, sep, strategy = stage.rpartition("_")
    return (env, strategy) if sep and env and strategy in STRATEGIES else None


def events(history: Mapping[str, Sequence[Assignment]], env: str) -> list[Assignment]:
    """``env``'s rollout events from an assignment history of every stage, oldest first."""
    found = [a for s in STRATEGIES for a in history.get(stage_name(env, s), [])]
    return sorted(found, key=lambda a: a.counter or 0)


def _event(a: Assignment) -> dict[str, Any]:
    found = a.extra.get("rollout")
    return found if isinstance(found, dict) else {}


def rolled_back(history: Mapping[str, Sequence[Assignment]], env: str) -> dict[str, str]:
    """Each version rolled back in ``env`` -> why (the policy does not try it there again)."""
    out: dict[str, str] = {}
    for a in events(history, env):
        event = _event(a)
        if a.unassign and a.version and event.get("event") == "rollback":
            out[a.version] = str(event.get("reason") or "no reason recorded")
    return out


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


@dataclass(frozen=True)
class Current:
    """The step a rollout is at, by the registry."""

    strategy: str
    candidate: str
    stable: str
    step: int
    of: int
    weight: int
    rollout_id: str  # the tag that started the step
    held: str | None = None  # why it is held (on_failure: hold)
    held_spec: Any = None  # the rollout spec the hold was decided under


def current(rollout_events: Sequence[Assignment]) -> Current | None:
    """The step in progress: the last event when it is an assignment (a step or a hold)."""
    last = rollout_events[-1] if rollout_events else None
    if last is None or last.unassign or not last.version:
        return None
    event = _event(last)
    where = split_stage(last.env)
    strategy = event.get("strategy")
    if strategy not in STRATEGIES:
        strategy = where[1] if where else "canary"
    held = event.get("event") == "hold"
    rollout_id = event.get("rollout_id") if held else last.tag
    return Current(
        strategy=str(strategy),
        candidate=last.version,
        stable=str(event.get("stable") or ""),
        step=_int(event.get("step"), 1),
        of=_int(event.get("of"), 1),
        weight=_int(event.get("weight"), 0),
        rollout_id=str(rollout_id or last.tag),
        held=str(event.get("reason") or "held") if held else None,
        held_spec=event.get("spec") if held else None,
    )


@dataclass(frozen=True)
class Check:
    """One limit of the analysis against its number."""

    name: str  # error rate, p99, disagreement, prediction drift
    value: float
    limit: float
    passed: bool
    text: str  # "disagreement 1.9% ≤ 5%"


@dataclass(frozen=True)
class Analysis:
    """The numbers of the current step, and the limits checked against them."""

    requests: int
    errors: int
    error_rate: float | None
    p99_ms: float | None
    compared: int
    differing: int
    disagreement: float | None
    drift: float | None  # PSI
    dropped: int
    checks: tuple[Check, ...] = ()
    metric_drop: str | None = None  # max_metric_drop: what can be said of it

    def record(self) -> dict[str, Any]:
        """As the registry and the journal keep it."""
        out: dict[str, Any] = {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p99_ms": self.p99_ms,
            "compared": self.compared,
            "differing": self.differing,
            "disagreement": self.disagreement,
            "prediction_drift": self.drift,
            "dropped": self.dropped,
            "checks": [c.text for c in self.checks],
        }
        if self.metric_drop is not None:
            out["metric_drop"] = self.metric_drop
        return out

    def text(self) -> str:
        parts = [f"{self.requests} requests"]
        limited = {c.name: c.text for c in self.checks}
        if self.error_rate is not None:
            parts.append(limited.get("error rate", f"error rate {_pct(self.error_rate)}"))
        if self.p99_ms is not None:
            parts.append(limited.get("p99", f"p99 {self.p99_ms:.0f} ms"))
        if self.disagreement is not None:
            parts.append(limited.get("disagreement", f"disagreement {_pct(self.disagreement)}"))
        if "prediction drift" in limited:
            parts.append(limited["prediction drift"])
        if self.metric_drop is not None:
            parts.append(f"metric drop {self.metric_drop}")
        return ", ".join(parts)


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def _limit(name: str, value: float, limit: float, shown: str, bound: str) -> Check:
    passed = value <= limit
    return Check(name, value, limit, passed, f"{name} {shown} {'≤' if passed else '>'} {bound}")


def analyse(spec: Rollout, stats: RolloutStats) -> tuple[Analysis, str | None]:
    """The step's numbers and checks; the second value says what the analysis still waits
    for (None: it can be judged)."""
    limits = spec.analysis
    requests = stats.requests
    rate = stats.errors / requests if requests > 0 else None
    disagreement = stats.differing / stats.compared if stats.compared > 0 else None
    drift = psi(stats.stable_predictions, stats.candidate_predictions)
    checks: list[Check] = []
    waits: list[str] = []
    if requests < limits.min_requests:
        waits.append(f"{requests} of {limits.min_requests} requests")
    if limits.max_error_rate is not None and rate is not None:
        bound = f"{limits.max_error_rate * 100:g}%"
        checks.append(_limit("error rate", rate, limits.max_error_rate, _pct(rate), bound))
    if limits.max_p99_ms is not None:
        if stats.p99_ms is None:
            waits.append("no latency measured yet")
        else:
            shown, bound = f"{stats.p99_ms:.0f} ms", f"{limits.max_p99_ms:g} ms"
            checks.append(_limit("p99", stats.p99_ms, limits.max_p99_ms, shown, bound))
    if limits.max_disagreement is not None:
        if disagreement is None:
            waits.append("no comparison of the two versions yet")
        else:
            bound = f"{limits.max_disagreement * 100:g}%"
            shown = _pct(disagreement)
            checks.append(
                _limit("disagreement", disagreement, limits.max_disagreement, shown, bound)
            )
    if limits.max_prediction_drift is not None:
        if drift is None:
            waits.append("no prediction distribution yet")
        else:
            bound = f"{limits.max_prediction_drift:g}"
            shown = f"PSI {drift:.3f}"
            checks.append(
                _limit("prediction drift", drift, limits.max_prediction_drift, shown, bound)
            )
    analysis = Analysis(
        requests=requests,
        errors=stats.errors,
        error_rate=rate,
        p99_ms=stats.p99_ms,
        compared=stats.compared,
        differing=stats.differing,
        disagreement=disagreement,
        drift=drift,
        dropped=stats.dropped,
        checks=tuple(checks),
        metric_drop=METRIC_DROP if limits.max_metric_drop is not None else None,
    )
    return analysis, ("; ".join(waits) if waits else None)


@dataclass(frozen=True)
class Decision:
    """What apply does next with ``environment``'s rollout. ``step``/``weight``: the step
    running after the decision (the candidate's share); ``weight_from``: the share now."""

    environment: str
    action: Action
    text: str = ""  # one line for plan and status
    reason: str = ""  # wait: what for; rollback/hold: the failed limits; abort: why
    strategy: str = ""
    candidate: str | None = None
    stable: str | None = None
    step: int = 0
    of: int = 0
    weight_from: int | None = None
    weight: int | None = None
    rollout_id: str | None = None  # the recorded step (converge, hold, rollback...)
    analysis: Analysis | None = None
    recorded: bool = False  # hold: already held, the registry says so: nothing to tag
    spec: Any = None  # hold: the rollout spec it was decided under (a change releases it)

    def event(self) -> dict[str, Any]:
        """The registry message's ``rollout`` object for this decision."""
        out: dict[str, Any] = {
            "event": "step" if self.action in ("start", "advance") else self.action,
            "strategy": self.strategy,
            "step": self.step,
            "of": self.of,
            "weight": self.weight,
            "stable": self.stable,
        }
        if self.analysis is not None:
            out["analysis"] = self.analysis.record()
        if self.reason:
            out["reason"] = self.reason
        if self.action in ("hold", "rollback", "abort", "complete") and self.rollout_id:
            out["rollout_id"] = self.rollout_id
        if self.spec is not None:
            out["spec"] = self.spec
        return out


def _at(strategy: str, candidate: str, weight: int) -> str:
    return f"shadow {candidate}" if strategy == "shadow" else f"canary {candidate} at {weight}%"


def decide(
    env: str,
    spec: Rollout | None,
    resolution: Resolution,
    stable: RegisteredVersion | None,
    rollout_events: Sequence[Assignment],
    observed: RolloutObservation | None,
) -> Decision:
    """What ``env``'s rollout does next (see the module's docstring)."""
    wanted = None if resolution.blocked or resolution.version is None else resolution.version
    now = current(rollout_events)
    pinned = _pinned(env, rollout_events, observed) if now is None else None
    if pinned is not None:
        return pinned
    if now is None:
        if spec is None or wanted is None or stable is None or wanted.version == stable.version:
            return Decision(env, "nothing")
        weights = spec.percentages()
        of = len(weights)
        answers = (
            f"{stable.version} answers, {wanted.version} sees a copy of every request"
            if spec.strategy == "shadow"
            else f"{stable.version} answers the rest"
        )
        return Decision(
            env,
            "start",
            f"{env}: {_at(spec.strategy, wanted.version, weights[0])}, step 1 of {of} ({answers})",
            strategy=spec.strategy,
            candidate=wanted.version,
            stable=stable.version,
            step=1,
            of=of,
            weight=weights[0],
        )
    at = _at(now.strategy, now.candidate, now.weight)
    base = Decision(
        env,
        "nothing",
        strategy=now.strategy,
        candidate=now.candidate,
        stable=now.stable,
        step=now.step,
        of=now.of,
        weight_from=now.weight,
        weight=now.weight,
        rollout_id=now.rollout_id,
    )
    if stable is not None and stable.version == now.candidate:  # a completion cut short
        why = f"{now.candidate} already runs in {env} by the registry: finish the completion"
        return _with(base, "complete", f"{env}: {at} → takes over ({why})", why)
    if spec is None and wanted is not None and wanted.version == now.candidate:
        why = "the spec no longer has a rollout"
        return _with(base, "complete", f"{env}: {at} → takes over from {now.stable} ({why})", why)
    if spec is None or wanted is None or wanted.version != now.candidate:
        asks = wanted.version if wanted is not None else "no version"
        why = f"the spec now asks for {asks}" if spec is not None else "the rollout was removed"
        if spec is not None and spec.strategy != now.strategy and wanted is not None:
            why = f"strategy is now {spec.strategy}"
        return _with(base, "abort", f"{env}: {at} aborted, back to {now.stable}: {why}", why)
    if spec.strategy != now.strategy:
        why = f"strategy is now {spec.strategy}"
        return _with(base, "abort", f"{env}: {at} aborted, back to {now.stable}: {why}", why)
    if observed is None or observed.rollout_id != now.rollout_id:
        runs = f"runs {observed.rollout_id}" if observed is not None else "runs no rollout"
        why = f"the target {runs}, not the recorded step {now.rollout_id}"
        return _with(base, "converge", f"{env}: {at}, step {now.step} of {now.of}: {why}", why)
    if now.held is not None and now.held_spec == spec.model_dump(mode="json"):
        why = f"held: {now.held} (on_failure: hold; edit the spec to go on)"
        return _with(base, "hold", f"{env}: {at} {why}", now.held, recorded=True)
    weights = spec.percentages()
    later = [w for w in weights if w > now.weight]
    if observed.stats is None:  # a target that sees only whether the candidate is ready
        seen = observed.detail or "the target reports no numbers"
        if observed.ready is None:
            why = f"waiting for the candidate to be ready ({seen})"
            return _with(base, "wait", f"{env}: {at}, step {now.step} of {now.of}: {why}", why)
        if observed.ready is False:
            why = f"the candidate is not ready: {seen}"
            return _fail(base, spec, env, at, why, "analysis not observable")
        return _move(base, env, at, later, weights, None, f"analysis not observable: {seen}")
    analysis, waiting = analyse(spec, observed.stats)
    if waiting is not None:
        why = f"waiting for {waiting}"
        return _with(
            base, "wait", f"{env}: {at}, step {now.step} of {now.of}: {why}", why, analysis
        )
    failed = [c.text for c in analysis.checks if not c.passed]
    if failed:
        return _fail(base, spec, env, at, "; ".join(failed), analysis.text(), analysis)
    return _move(base, env, at, later, weights, analysis, analysis.text())


def _pinned(
    env: str, rollout_events: Sequence[Assignment], observed: RolloutObservation | None
) -> Decision | None:
    """A canary rolled back (or aborted) by pinning the stable version at the candidate's
    0% (KServe), a pin the target does not run Ready yet: wait. The stable's plain files
    would send every request to the newest ready revision, maybe the candidate's (and with
    GitOps Argo CD could sync them and never the pin)."""
    last = rollout_events[-1] if rollout_events else None
    if last is None or not last.unassign or observed is None or observed.rollout_id != last.tag:
        return None
    event = _event(last)
    if observed.weight != 0 or observed.ready is True or event.get("event") == "complete":
        return None
    stable = str(event.get("stable") or observed.stable)
    why = f"waiting for the pin to be ready before {stable} alone ({observed.detail})"
    text = f"{env}: canary {last.version} rolled back to {stable}: {why}"
    at = _int(event.get("step"), 1), _int(event.get("of"), 1)
    return Decision(
        env, "wait", text, why, observed.strategy, last.version, stable, *at, 0, 0, last.tag
    )


def _fail(
    base: Decision,
    spec: Rollout,
    env: str,
    at: str,
    why: str,
    numbers: str,
    analysis: Analysis | None = None,
) -> Decision:
    """The step failed: ``on_failure`` says rollback or hold."""
    if spec.on_failure == "hold":
        text = f"{env}: {at} held: {why} ({numbers})"
        return _with(base, "hold", text, why, analysis, spec=spec.model_dump(mode="json"))
    text = f"{env}: {at} → rolled back to {base.stable}: {why} ({numbers})"
    return _with(base, "rollback", text, why, analysis)


def decide_environment(
    env: str,
    spec: Rollout | None,
    resolution: Resolution,
    versions: Sequence[RegisteredVersion],
    history: Mapping[str, Sequence[Assignment]],
    observed: RolloutObservation | None,
) -> Decision:
    """:func:`decide` from the assignment history of every stage (the environment's own
    and its rollout stages): the stable version is the environment's last assignment."""
    runs = [a.version for a in history.get(env, []) if a.version and not a.unassign]
    stable = next((v for v in versions if runs and v.version == runs[-1]), None)
    return decide(env, spec, resolution, stable, events(history, env), observed)


def _move(
    base: Decision,
    env: str,
    at: str,
    later: list[int],
    weights: list[int],
    analysis: Analysis | None,
    numbers: str,
) -> Decision:
    """The step passed: the next percentage, or the candidate takes over."""
    if not later:
        text = f"{env}: {at} → takes over from {base.stable} ({numbers})"
        return _with(base, "complete", text, "", analysis)
    step = weights.index(later[0]) + 1
    text = f"{env}: {at} → {later[0]}% ({numbers})"
    return Decision(
        env,
        "advance",
        text,
        strategy=base.strategy,
        candidate=base.candidate,
        stable=base.stable,
        step=step,
        of=len(weights),
        weight_from=base.weight_from,
        weight=later[0],
        rollout_id=base.rollout_id,
        analysis=analysis,
    )


def _with(
    base: Decision,
    action: Action,
    text: str,
    reason: str,
    analysis: Analysis | None = None,
    recorded: bool = False,
    spec: Any = None,
) -> Decision:
    weight = {"complete": 100, "rollback": 0, "abort": 0}.get(action, base.weight)
    return Decision(
        base.environment,
        action,
        text,
        reason,
        base.strategy,
        base.candidate,
        base.stable,
        base.step,
        base.of,
        base.weight_from,
        weight,
        base.rollout_id,
        analysis,
        recorded,
        spec,
    )
