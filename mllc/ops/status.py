"""``mllc status``: per lifecycle, how fresh the pipeline is, the versions, gates and deployments.

Built from the same observation as a plan; read-only. With ``candidates``, the
experiments view: every candidate of every registered version side by side (its
validation and test metrics, read from the version's own commit by
:mod:`mllc.observe.history`), the selected one marked, with the environments each
version runs in. No model is loaded.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mllc.errors import MllcError
from mllc.names import is_dns_label
from mllc.observe.history import candidates_at
from mllc.observe.types import LifecycleActual
from mllc.observe.world import new_hasher, observe_lifecycle
from mllc.ops.plan import desired_lifecycles
from mllc.policy.gates import evaluate
from mllc.policy.promotion import held_out_metrics
from mllc.policy.rollout import analyse, current, events
from mllc.registry import assignments, list_versions
from mllc.spec import vocab
from mllc.spec.compute import describe as describe_compute
from mllc.spec.fields import parse_gate
from mllc.spec.rollout import Rollout
from mllc.types import DeploymentState

STATUS_VERSION = 1


def collect(root: Path, paths: Sequence[str], candidates: bool = False) -> dict[str, Any]:
    """``paths``: spec files or folders, or lifecycle names (of the specs under specs/)."""
    paths, names = _paths_and_names(root, paths)
    desired, _ = desired_lifecycles(root, paths)
    if names:
        known = {want.name for want in desired}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise MllcError(
                f"no lifecycle named {', '.join(unknown)} in {', '.join(paths)} "
                f"(there: {', '.join(sorted(known)) or 'none'})"
            )
        desired = [want for want in desired if want.name in names]
    versions = list_versions(root)
    hasher = new_hasher(root)
    lifecycles = []
    for want in desired:
        actual = observe_lifecycle(root, want, versions, hasher)
        stale = [s.name for s in actual.stages if s.stale]
        gates = list(want.lifecycle.gates)
        rows = []
        for v in actual.versions:
            test = held_out_metrics(v)
            results = evaluate(gates, test)
            rows.append(
                {
                    "version": v.version,
                    "commit": v.commit,
                    "created": v.created,
                    "model_md5": v.model_md5,
                    "in_cache": v.in_cache,
                    "trained_on": v.trained_on or "local",
                    "test": test,
                    "gates_pass": all(r.passed for r in results),
                    "gates": [r.text() for r in results],
                }
            )
        lifecycle: dict[str, Any] = {}
        splits = [d for d in actual.deployments if d.rollout is not None]
        history = assignments(root, want.name, rollouts=True) if splits else {}
        envs = want.lifecycle.environments
        if candidates:
            problem = want.spec.problem
            lifecycle["candidate_metrics"] = list(
                dict.fromkeys(
                    [
                        problem.metric,
                        *(parse_gate(g)[0] for g in gates),
                        *vocab.METRICS[problem.task],
                    ]
                )
            )
            _add_candidates(root, want.name, actual, rows)
        lifecycles.append(
            {
                "name": want.name,
                "spec": want.spec_file,
                "pipeline": {
                    "fresh": not stale and actual.model_md5 is not None,
                    "stale_stages": stale,
                    "built": actual.model_md5 is not None,
                    "trains_on": describe_compute(want.spec.compute),
                },
                "metric": (actual.metrics or {}).get("metric"),
                "versions": rows,
                "deployments": [
                    {
                        "environment": d.environment,
                        "target": d.target,
                        "version": d.version,
                        "healthy": d.healthy,
                        "detail": d.detail,
                        **_rollout(
                            d,
                            history,
                            envs[d.environment].rollout if d.environment in envs else None,
                        ),
                    }
                    for d in actual.deployments
                ]
                or [
                    {
                        "environment": env,
                        "target": cfg.target,
                        "version": None,
                        "healthy": None,
                        "detail": "not observed yet",
                    }
                    for env, cfg in want.lifecycle.environments.items()
                ],
                "monitoring": [
                    {
                        "environment": m.environment,
                        "report": m.report.id,
                        "time": m.report.time,
                        "version": m.report.version,
                        "breach": m.report.breach,
                        "reasons": list(m.report.reasons),
                        "retrained": m.answered,
                    }
                    for m in actual.monitoring
                ],
                **lifecycle,
            }
        )
    hasher.save()
    return {"version": STATUS_VERSION, "lifecycles": lifecycles}


def _rollout(d: DeploymentState, history: Any, spec: Rollout | None) -> dict[str, Any]:
    """A rollout in progress: {"rollout": {...}}, or {} without one."""
    split = d.rollout
    if split is None:
        return {}
    now = current(events(history, d.environment))
    same = now is not None and now.rollout_id == split.rollout_id
    out: dict[str, Any] = {
        "strategy": split.strategy,
        "stable": split.stable,
        "candidate": split.candidate,
        "weight": split.weight,
        "step": now.step if now is not None and same else None,
        "of": now.of if now is not None and same else None,
        "rollout_id": split.rollout_id,
        "held": now.held if now is not None and same else None,
        "numbers": None,
        "summary": split.detail or "not observable",
    }
    if split.stats is not None:
        judged = spec or Rollout(strategy="shadow" if split.strategy == "shadow" else "canary",
                                 steps=None if split.strategy == "shadow" else [100])  # fmt: skip
        analysis, waiting = analyse(judged, split.stats)
        out["numbers"] = analysis.record()
        out["summary"] = f"waiting for {waiting}" if waiting else analysis.text()
    return {"rollout": out}


def _paths_and_names(root: Path, args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split arguments into spec paths and lifecycle names: a name is a DNS label that
    is no file or folder of the repository (``specs``, the default, is always a path)."""
    paths: list[str] = []
    names: list[str] = []
    for arg in args:
        if arg != "specs" and is_dns_label(arg) and not (root / arg).exists():
            names.append(arg)
        else:
            paths.append(arg)
    return paths or ["specs"], names


def _add_candidates(
    root: Path, name: str, actual: LifecycleActual, rows: list[dict[str, Any]]
) -> None:
    """Each version row gets its candidates (from its commit) and where it runs."""
    reports = candidates_at(root, name, [v.commit for v in actual.versions])
    runs: dict[str, list[str]] = {}
    for d in actual.deployments:
        if d.version is not None:
            runs.setdefault(d.version, []).append(d.environment)
    for row, v in zip(rows, actual.versions, strict=True):
        report = reports[v.commit]
        selected = v.metrics.get("model")
        row["environments"] = runs.get(v.version, [])
        row["selected"] = selected if isinstance(selected, str) else None
        row["candidates_problem"] = report.problem
        row["candidates"] = (
            None
            if report.problem
            else [
                {
                    "name": c.name,
                    "selected": c.name == row["selected"],
                    "validated_on": c.validated_on,
                    "validation": c.validation,
                    "test": c.test,
                    **({"note": c.note} if c.note else {}),
                }
                for c in report.candidates
            ]
        )


def render(report: dict[str, Any]) -> str:
    out: list[str] = []
    for lc in report["lifecycles"]:
        pipe = lc["pipeline"]
        if pipe["fresh"]:
            freshness = "up to date"
        elif not pipe["built"]:
            freshness = "never built"
        else:
            freshness = f"stale: {', '.join(pipe['stale_stages'])}"
        out.append(f"{lc['name']}  ({lc['spec']})")
        trains_on = pipe.get("trains_on", "local")
        out.append(
            f"  pipeline: {freshness}"
            + ("" if trains_on == "local" else f" (trains on {trains_on})")
        )
        if not lc["versions"]:
            out.append("  versions: none registered")
        for v in lc["versions"]:
            metric = lc["metric"]
            value = v["test"].get(metric) if metric else None
            shown = f"{metric} {value:.4g}" if isinstance(value, int | float) else ""
            gates = "gates pass" if v["gates_pass"] else "gates FAIL: " + "; ".join(v["gates"])
            out.append(
                f"  {v['version']:<9} {v['commit'][:10]}  {shown:<18} {gates}"
                + ("" if v["in_cache"] else "  (model not in local DVC cache)")
                + (
                    f"  (trained on {v['trained_on']})"
                    if v.get("trained_on", "local") != "local"
                    else ""
                )
            )
        for d in lc["deployments"]:
            version = d["version"] or "-"
            out.append(f"  {d['environment']:<12} {d['target'] or '':<11} {version}  {d['detail']}")
            split = d.get("rollout")
            if split:
                at = "" if split["strategy"] == "shadow" else f" at {split['weight']}%"
                where = f"step {split['step']} of {split['of']}, " if split["step"] else ""
                held = f", held: {split['held']}" if split["held"] else ""
                out.append(
                    f"    rollout: {split['strategy']} {split['candidate']}{at} ({where}stable "
                    f"{split['stable']}{held}): {split['summary']}"
                )
        for m in lc.get("monitoring") or []:
            verdict = "breach: " + "; ".join(m["reasons"]) if m["breach"] else "no breach"
            done = " (retrained with its batch)" if m["retrained"] else ""
            out.append(
                f"  monitor {m['environment']}: {m['time']} on {m['version']}: {verdict}{done}"
            )
        out.append("")
    return "\n".join(out) if out else "no lifecycles\n"


_NAME_WIDTH = 22  # a longer candidate name is cut, with "…"
_ENVS_WIDTH = 20
_ON = {
    "cv5": "by 5-fold cross-validation on the training split",
    "train": "on the training split, which is optimistic",
}


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _value(scores: dict[str, Any], metric: str) -> str:
    if metric not in scores:
        return "-"
    value = scores[metric]
    return "n/a" if value is None else f"{value:.4g}"


def render_candidates(report: dict[str, Any], width: int | None = None) -> str:
    """The experiments view as text: per lifecycle, a row per (version, candidate), newest
    version first; per metric a validation and a test column. Metrics are taken in
    order (the primary one, those of the gates, the rest) while they fit ``width``
    (default: the terminal's, 100 when not a terminal); the others are named below."""
    if width is None:
        width = shutil.get_terminal_size((100, 24)).columns
    out: list[str] = []
    for lc in report["lifecycles"]:
        versions = list(reversed(lc["versions"]))
        out.append(f"{lc['name']}  ({lc['spec']})")
        if not versions:
            out += ["  no registered version", ""]
            continue
        out += _candidates_table(versions, lc.get("candidate_metrics") or [], width)
        out.append("")
    return "\n".join(out) if out else "no lifecycles\n"


def _candidates_table(versions: list[dict[str, Any]], metrics: list[str], width: int) -> list[str]:
    rows: list[tuple[str, str, str, dict[str, Any] | None]] = []
    notes: list[str] = []
    for v in versions:
        envs = _cut(", ".join(v.get("environments") or []) or "-", _ENVS_WIDTH)
        cands = v.get("candidates")
        if not cands:
            rows.append((v["version"], "  ?", envs, None))
            notes.append(f"{v['version']}: {v.get('candidates_problem') or 'no candidates'}")
            continue
        for i, c in enumerate(cands):
            mark = "* " if c["selected"] else "  "
            rows.append(
                (v["version"] if i == 0 else "", mark + c["name"], envs if i == 0 else "", c)
            )
            on = c.get("validated_on")
            if on in _ON:
                notes.append(f"{v['version']} {c['name']}: validated {_ON[on]}")
    shown = [m for m in metrics if any(c and m in c["validation"] for *_, c in rows)]
    version_w = max(len("version"), *(len(r[0]) for r in rows))
    name_w = max(len("candidate"), *(len(r[1]) for r in rows))
    name_w = min(name_w, _NAME_WIDTH + 2)
    envs_w = max(len("runs in"), *(len(r[2]) for r in rows))
    fixed = 2 + version_w + 2 + name_w + 2 + envs_w
    groups: list[tuple[str, int]] = []
    used = fixed
    for metric in shown:
        cells = [
            _value(c[split], metric) for *_, c in rows if c for split in ("validation", "test")
        ]
        cell = max(len("test"), *(len(x) for x in cells))
        group = max(len(metric), 2 * cell + 2)
        if groups and used + 3 + group > width:
            break
        groups.append((metric, cell))
        used += 3 + group
    left = f"  {'':<{version_w}}  {'':<{name_w}}  {'':<{envs_w}}"
    top, sub = left, f"  {'version':<{version_w}}  {'candidate':<{name_w}}  {'runs in':<{envs_w}}"
    for metric, cell in groups:
        group = max(len(metric), 2 * cell + 2)
        top += f"   {metric:<{group}}"
        sub += f"   {'val':>{cell}}  {'test':>{cell}}" + " " * (group - 2 * cell - 2)
    lines = [top.rstrip(), sub.rstrip()]
    for version, name, envs, c in rows:
        line = f"  {version:<{version_w}}  {_cut(name, name_w):<{name_w}}  {envs:<{envs_w}}"
        for metric, cell in groups:
            group = max(len(metric), 2 * cell + 2)
            if c is None:
                line += " " * (3 + group)
                continue
            val, test = _value(c["validation"], metric), _value(c["test"], metric)
            line += f"   {val:>{cell}}  {test:>{cell}}" + " " * (group - 2 * cell - 2)
        lines.append(line.rstrip())
    hidden = [m for m in shown if m not in {g for g, _ in groups}]
    if hidden:
        notes.insert(0, f"+ {len(hidden)} more metrics (--format json): {', '.join(hidden)}")
    for note in notes:
        lines += textwrap.wrap(note, width, initial_indent="  ", subsequent_indent="    ")
    return ["  * selected; val: validation, test: held-out test split", *lines]
