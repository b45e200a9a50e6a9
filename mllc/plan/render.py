"""Render a Plan for people (Terraform-style text) and for machines (versioned JSON).

Both read the same :class:`~mllc.plan.model.Plan`; nothing here decides anything.
"""

from __future__ import annotations

import json
from itertools import groupby

from mllc.plan.model import Change, Plan
from mllc.targets.gitops import ARGO_CD

SYMBOLS = {
    "create": "+",
    "update": "~",
    "run": "~",
    "delete": "-",
    "replace": "-/+",
    "no-op": " ",
}
_COLORS = {"+": "32", "~": "33", "-": "31", "-/+": "35", " ": "0"}


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _change_lines(change: Change, color: bool) -> list[str]:
    symbol = SYMBOLS[change.action]
    head = f"  {_paint(symbol.rjust(3), _COLORS[symbol], color)} {change.address}"
    verb = f"{change.action}, " if change.action in ("run", "replace") else ""
    lines = [f"{head}  ({verb}{change.category})"]
    lines += [f"        {reason}" for reason in change.reasons]
    if change.after is not None and change.kind == "model":
        lines.append(f"        version: {change.after}")
    lines += [f"        (known after apply: {k})" for k in change.known_after_apply]
    if change.blocking:
        lines.append("        " + _paint("blocks the apply", "31;1", color))
    return lines


def human(plan: Plan, color: bool = False) -> str:
    changes = [c for c in plan.changes if c.action != "no-op"]
    out: list[str] = []
    for warning in plan.warnings:
        out.append(_paint("Warning: ", "33;1", color) + warning)
    held = [c for c in plan.changes if c.action == "no-op" and c.reasons]
    for change in held:  # e.g. a new version that fails the gates stays out
        if change.kind == "monitoring":  # a breach that changes nothing: every line counts
            out.append(f"Breach: {change.address}: {change.reasons[0]}")
            out += [f"  {reason}" for reason in change.reasons[1:]]
        elif change.rollout is not None:  # waiting for traffic, or held
            out.append(f"Rollout: {change.address}: {change.reasons[0]}")
            out += [f"  {reason}" for reason in change.reasons[1:]]
        elif change.kind == "deployment" and ARGO_CD in change.reasons[0]:  # GitOps, not synced
            out.append(f"Not in sync: {change.address}: {change.reasons[0]}")
            out += [f"  {reason}" for reason in change.reasons[1:]]
        else:
            out.append(f"Held back: {change.address}: {change.reasons[0]}")
    if out:
        out.append("")
    if not changes:
        out.append("No changes. Every lifecycle matches its spec.")
        return "\n".join(out) + "\n"
    out.append("mllc will perform these actions:")
    for lifecycle, group in groupby(changes, key=lambda c: c.lifecycle):
        out += ["", f"  # {lifecycle}"]
        for change in group:
            out += _change_lines(change, color)
    s = plan.summary
    out += ["", f"Plan: {s.add} to add, {s.change} to change, {s.destroy} to destroy."]
    if plan.blocked:
        out.append(_paint(f"{len(plan.blocked)} change(s) block the apply.", "31;1", color))
    return "\n".join(out) + "\n"


def to_json(plan: Plan) -> str:
    return json.dumps(plan.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"
