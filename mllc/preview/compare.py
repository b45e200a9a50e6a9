"""What a previewed pipeline produced, against the registry: pure, no I/O.

The decisions are the ones apply makes, from the same homes: the gates
(:func:`mllc.policy.gates.evaluate`) on the selected model's test metrics, and where
the new version would run (:func:`mllc.policy.promotion.resolve_environment`) with
the registry's versions plus a hypothetical registration of the previewed model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mllc.plan.values import finite_numbers
from mllc.policy.gates import evaluate
from mllc.policy.promotion import (
    History,
    held_out_metrics,
    replay_verdict,
    resolve,
    resolve_environment,
    running_version,
)
from mllc.policy.replay import ReplayCheck
from mllc.preview.model import (
    Candidate,
    DataChange,
    Delta,
    Gate,
    LifecyclePreview,
    Running,
    StageRun,
)
from mllc.semver import next_version, sort_key
from mllc.spec.deployment import Environment
from mllc.spec.vocab import higher_is_better
from mllc.types import RegisteredVersion

PREVIEW_COMMIT = "(preview)"  # the hypothetical version's commit: none exists yet


@dataclass(frozen=True)
class Produced:
    """What the pipeline wrote, parsed: each candidate's ``reports/candidates/<m>.json``,
    ``metrics.json``, ``reports/data.json``, and the model's md5 from ``dvc.lock``."""

    candidates: Mapping[str, Any]  # candidate -> its report
    metrics: Mapping[str, Any]
    data: Mapping[str, Any]
    model_md5: str | None
    stages: tuple[StageRun, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class Context:
    """What the spec and the registry say about one lifecycle."""

    name: str
    categories: tuple[str, ...]
    metric: str
    gates: Sequence[str]
    environments: Mapping[str, Environment]
    versions: Sequence[RegisteredVersion]  # this lifecycle's
    history: Callable[[], History]
    base_data: tuple[str, Mapping[str, Any]] | None = None  # (version, its data report)
    now: str = ""
    # environment -> wins_on_replay's replay (None: the environment is not replayed)
    replay: Callable[[str], ReplayCheck | None] = lambda _env: None


def candidates(produced: Produced, selected: str | None) -> tuple[Candidate, ...]:
    report = produced.candidates
    return tuple(
        Candidate(
            name=str(name),
            validation=finite_numbers(scores.get("validation")),
            test=finite_numbers(scores.get("test")),
            selected=name == selected,
        )
        for name, scores in sorted(report.items())
        if isinstance(scores, Mapping)
    )


def why_selected(found: Sequence[Candidate], selected: str | None, metric: str) -> str:
    if selected is None:
        return "no model was selected"
    best = next((c for c in found if c.name == selected), None)
    if best is None or metric not in best.validation:
        return f"{selected}: the selected model"
    way = "highest" if higher_is_better(metric) else "lowest"
    others = [
        f"{c.name} {c.validation[metric]:.4g}"
        for c in found
        if c.name != selected and metric in c.validation
    ]
    against = f" (against {', '.join(others)})" if others else ""
    value = best.validation[metric]
    tie = any(c.validation.get(metric) == value for c in found if c.name != selected)
    return f"{way} validation {metric}: {value:.4g}{against}" + (
        "; a tie goes to the first name" if tie else ""
    )


def deltas(old: Mapping[str, float], new: Mapping[str, float]) -> tuple[Delta, ...]:
    out = []
    for metric, value in new.items():
        if metric not in old:
            continue
        d = round(value - old[metric], 10)
        better = None if d == 0 else (d > 0) == higher_is_better(metric)
        out.append(Delta(metric=metric, old=old[metric], new=value, delta=d, better=better))
    return tuple(out)


def environments(
    ctx: Context, hypo: RegisteredVersion | None, test: Mapping[str, float]
) -> tuple[Running, ...]:
    history = ctx.history() if ctx.environments else {}
    by_version = {v.version: v for v in ctx.versions}
    every = [*ctx.versions, *([hypo] if hypo is not None else [])]
    out = []
    for env, cfg in ctx.environments.items():
        now = running_version(history, env)
        old = finite_numbers(held_out_metrics(by_version[now])) if now in by_version else {}
        res, rules = resolve_environment(
            env, cfg, every, ctx.gates, ctx.metric, lambda: history, None, ctx.replay(env)
        )
        verdict = replay_verdict(hypo, rules) if hypo is not None else None
        if hypo is None:
            deploy, reason = False, "the model is already registered: nothing new to deploy"
        elif res.version is not None and res.version.commit == PREVIEW_COMMIT:
            deploy, reason = True, f"{hypo.version}: {res.reason}"
        elif cfg.model != "latest":
            deploy, reason = False, f"pinned to {cfg.model}"
        else:
            pinned = resolve(env, hypo.version, every, ctx.gates, rules)
            deploy, reason = False, pinned.blocked or res.reason
        out.append(
            Running(
                environment=env,
                version=now,
                deltas=deltas(old, test),
                deploy=deploy,
                reason=reason,
                replay=verdict.text if verdict is not None else None,
                replay_passed=None if verdict is None else verdict.status == "passed",
            )
        )
    return tuple(out)


def _pair(before: Mapping[str, Any], after: Mapping[str, Any], key: str) -> tuple[Any, Any]:
    def one(d: Mapping[str, Any]) -> int | None:
        v = d.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return one(before), one(after)


def data_change(ctx: Context, now: Mapping[str, Any]) -> DataChange | None:
    """Rows in and out and drops by reason, against the last registered version's report;
    None when they are the same (data and cleaning unchanged)."""
    version, before = ctx.base_data if ctx.base_data is not None else (None, {})
    b_drop = before.get("dropped") if isinstance(before.get("dropped"), Mapping) else {}
    a_drop = now.get("dropped") if isinstance(now.get("dropped"), Mapping) else {}
    assert isinstance(b_drop, Mapping) and isinstance(a_drop, Mapping)
    change = DataChange(
        base_version=version,
        rows_in=_pair(before, now, "rows_in"),
        rows_out=_pair(before, now, "rows_out"),
        dropped={str(k): _pair(b_drop, a_drop, k) for k in sorted({*b_drop, *a_drop})},
    )
    same = change.rows_in[0] == change.rows_in[1] and change.rows_out[0] == change.rows_out[1]
    if same and all(a == b for a, b in change.dropped.values()):
        return None
    return change


def lifecycle_preview(ctx: Context, produced: Produced) -> LifecyclePreview:
    selected = produced.metrics.get("model")
    selected = selected if isinstance(selected, str) else None
    found = candidates(produced, selected)
    test = finite_numbers(produced.metrics.get("test"))
    gates = tuple(
        Gate(gate=r.gate, metric=r.metric, value=r.value, passed=r.passed, text=r.text())
        for r in evaluate(ctx.gates, test)
    )
    known = next((v for v in ctx.versions if v.model_md5 == produced.model_md5), None)
    hypo = None
    if known is None and produced.model_md5 is not None:
        ordered = sorted((v.version for v in ctx.versions), key=sort_key)
        hypo = RegisteredVersion(
            name=ctx.name,
            version=next_version(ordered),
            commit=PREVIEW_COMMIT,
            model_md5=produced.model_md5,
            created=ctx.now,
            metrics=dict(produced.metrics),
        )
    return LifecyclePreview(
        name=ctx.name,
        verdict="pass" if all(g.passed for g in gates) else "fail",
        categories=ctx.categories,
        metric=ctx.metric,
        selected=selected,
        why_selected=why_selected(found, selected, ctx.metric),
        candidates=found,
        test=test,
        gates=gates,
        model_md5=produced.model_md5,
        new_version=hypo.version if hypo is not None else None,
        registered_as=known.version if known is not None else None,
        environments=environments(ctx, hypo, test),
        data=data_change(ctx, produced.data) if produced.data else None,
        stages=produced.stages,
        seconds=produced.seconds,
    )
