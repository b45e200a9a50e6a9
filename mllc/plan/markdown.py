"""Render a Plan as the Markdown of a pull-request comment (``mllc plan --format markdown``).

The first line is a hidden marker (``<!-- mllc-plan -->``) so CI can find and update
its own comment. Then the summary a reviewer reads first (blocked changes first,
one line per lifecycle with its categories), then the details folded per lifecycle,
with the test metrics of the new model against the version each environment runs
now when those are known.

:func:`markdown` is pure; :func:`metric_deltas` gathers its optional metrics from
the registry and ``pipelines/<name>/metrics.json`` (the plan JSON carries none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mllc import mdtext
from mllc.compile.workflow import MARKER
from mllc.errors import MllcError
from mllc.layout import Layout
from mllc.observe.world import read_json_object
from mllc.plan.model import Category, Change, Plan
from mllc.plan.values import finite_numbers
from mllc.registry import list_versions
from mllc.types import RegisteredVersion

_CATEGORIES: tuple[Category, ...] = ("retrain", "re-evaluate", "redeploy", "metadata")

Metrics = Mapping[str, float]


@dataclass(frozen=True)
class MetricDeltas:
    """What to compare: ``running[lifecycle][env] = (version, test metrics)`` and
    ``new[lifecycle] = test metrics`` of the model the pipeline produced."""

    running: Mapping[str, Mapping[str, tuple[str, Metrics]]] = field(default_factory=dict)
    new: Mapping[str, Metrics] = field(default_factory=dict)


def _number(value: float) -> str:
    return f"{value:.4g}"


def _delta(old: float, new: float) -> str:
    d = round(new - old, 10)
    return "±0" if d == 0 else f"{d:+.4g}"


def _categories(changes: list[Change]) -> str:
    present = {c.category for c in changes}
    return ", ".join(c for c in _CATEGORIES if c in present)


def _metric_lines(name: str, deltas: MetricDeltas) -> list[str]:
    new = deltas.new.get(name) or {}
    out: list[str] = []
    for env, (version, old) in (deltas.running.get(name) or {}).items():
        rows = [
            f"  - {mdtext.escape(metric)} {_number(old[metric])} → {_number(value)} "
            f"({_delta(old[metric], value)})"
            for metric, value in new.items()
            if metric in old
        ]
        if rows:
            out += [f"- `{env}` runs {mdtext.escape(version)}:", *rows]
    if out:
        out = ["", "**Test metrics, new model against what each environment runs:**", "", *out]
    return out


def _details(name: str, changes: list[Change], deltas: MetricDeltas) -> list[str]:
    out = [
        f"<details><summary>{mdtext.escape(name)}</summary>",
        "",
        "| Address | Action | Category | Reasons | Known after apply |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in changes:
        action = f"❌ {c.action} (blocked)" if c.blocking else c.action
        reasons = "<br>".join(mdtext.escape(r) for r in c.reasons)
        after = "<br>".join(mdtext.escape(k) for k in c.known_after_apply)
        out.append(f"| {mdtext.code(c.address)} | {action} | {c.category} | {reasons} | {after} |")
    out += _metric_lines(name, deltas)
    out += ["", "</details>"]
    return out


def markdown(plan: Plan, deltas: MetricDeltas | None = None) -> str:
    """The PR comment: marker, summary (blocked first), then details per lifecycle."""
    deltas = deltas or MetricDeltas()
    changes = [c for c in plan.changes if c.action != "no-op"]
    out = [MARKER, "### mllc plan", ""]
    if not changes:
        out.append("**No changes.** Every lifecycle matches its spec.")
    else:
        s = plan.summary
        out += [f"**Plan: {s.add} to add, {s.change} to change, {s.destroy} to destroy.**", ""]
    for change in plan.blocked:
        reason = change.reasons[0] if change.reasons else "blocked"
        reason = reason.removeprefix("blocked: ")
        out += [
            f"❌ **{mdtext.escape(change.address)}** blocks the apply: {mdtext.escape(reason)}",
            "",
        ]
    for change in plan.changes:
        if change.kind == "monitoring" and change.action == "no-op":
            reasons = mdtext.escape("; ".join(change.reasons))
            out += [f"⚠️ **{mdtext.escape(change.address)}**: {reasons}", ""]
        elif change.rollout is not None and change.action == "no-op":  # waiting, or held
            reasons = mdtext.escape("; ".join(change.reasons))
            out += [f"⏳ **{mdtext.escape(change.address)}**: {reasons}", ""]
    by_lifecycle: dict[str, list[Change]] = {}
    for change in changes:
        by_lifecycle.setdefault(change.lifecycle, []).append(change)
    for name, group in by_lifecycle.items():
        mark = "❌ " if any(c.blocking for c in group) else ""
        out.append(f"- {mark}**{mdtext.escape(name)}** — {_categories(group)}")
    unchanged = [n for n in plan.lifecycles if n not in by_lifecycle]
    if changes and unchanged:
        out.append(
            f"- {len(unchanged)} unchanged: {', '.join(mdtext.escape(n) for n in unchanged)}"
        )
    for warning in plan.warnings:
        out += ["", f"> ⚠️ {mdtext.escape(warning)}"]
    for name, group in by_lifecycle.items():
        out += ["", *_details(name, group, deltas)]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- gathering (I/O)


def metric_deltas(root: Path, plan: Plan) -> MetricDeltas:
    """Running versions from the plan's binding, their test metrics from the registry,
    the new ones from ``pipelines/<name>/metrics.json``. Whatever is missing is left out."""
    deployments = plan.binding.deployments if plan.binding is not None else {}
    running: dict[str, dict[str, tuple[str, Metrics]]] = {}
    new: dict[str, Metrics] = {}
    registry: dict[tuple[str, str], RegisteredVersion] | None = None  # read once, if needed
    for name in dict.fromkeys([*plan.lifecycles, *(c.lifecycle for c in plan.changes)]):
        test = finite_numbers(read_json_object(root / Layout(name).metrics).get("test"))
        if test:
            new[name] = test
        envs = {
            key.split("/", 1)[1]: version
            for key, version in deployments.items()
            if key.split("/", 1)[0] == name and "/" in key and version
        }
        if not envs:
            continue
        if registry is None:
            try:
                registry = {(v.name, v.version): v for v in list_versions(root)}
            except MllcError:
                registry = {}
        for env, version in envs.items():
            registered = registry.get((name, version))
            metrics = finite_numbers(registered.metrics.get("test")) if registered else {}
            if metrics:
                running.setdefault(name, {})[env] = (version, metrics)
    return MetricDeltas(running=running, new=new)
