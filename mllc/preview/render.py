"""Render a :class:`~mllc.preview.model.Preview`: text for people, JSON for machines,
Markdown for the pull-request comment. Pure.

The Markdown starts with :data:`mllc.compile.workflow.PREVIEW_MARKER` so CI keeps one
sticky preview comment beside the plan's; then one line per lifecycle with its verdict,
then the details folded per lifecycle. Every value that comes from a spec or from data
goes through :mod:`mllc.mdtext`. It fits GitHub's comment limit: details that would
not fit are left out, and the comment says so.
"""

from __future__ import annotations

from mllc import mdtext
from mllc.compile.workflow import PREVIEW_MARKER
from mllc.preview.model import Delta, LifecyclePreview, Preview

LIMIT = 65_536  # characters GitHub accepts in one comment
_ROOM = 600  # kept free for the truncation note and the end


def to_json(preview: Preview) -> str:
    return preview.model_dump_json(indent=2) + "\n"


def _n(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4g}"


def _delta(d: Delta) -> str:
    mark = "" if d.better is None else (" better" if d.better else " worse")
    sign = "±0" if d.delta == 0 else f"{d.delta:+.4g}"
    return f"{_n(d.old)} → {_n(d.new)} ({sign}{mark})"


def _headline(p: LifecyclePreview) -> str:
    if p.verdict == "fail":
        failed = "; ".join(g.text for g in p.gates if not g.passed)
        return f"fails its gates: {failed}"
    if p.new_version is None:
        return f"passes its gates; the model is already registered as {p.registered_as}"
    return f"passes its gates; apply would register {p.new_version}"


def _where(p: LifecyclePreview) -> list[str]:
    return [
        f"{r.environment}: {'would deploy' if r.deploy else 'held out'}: {r.reason}"
        for r in p.environments
    ]


# ----------------------------------------------------------------------------- text


def text(preview: Preview) -> str:
    out = []
    if preview.uncommitted_specs:
        shown = ", ".join(preview.uncommitted_specs)
        out.append(f"(previewing uncommitted spec edits: {shown})")
    if not preview.lifecycles:
        out.append("Nothing to preview: the plan retrains and re-evaluates nothing.")
        return "\n".join(out) + "\n"
    for p in preview.lifecycles:
        mark = "FAIL" if p.verdict == "fail" else "ok"
        out += ["", f"{p.name}  [{mark}]  {_headline(p)}"]
        out.append(f"  selected: {p.selected} ({p.why_selected})")
        for c in p.candidates:
            val, test = c.validation.get(p.metric), c.test.get(p.metric)
            star = "*" if c.selected else " "
            out.append(f"   {star} {c.name}: validation {_n(val)}, test {_n(test)} ({p.metric})")
        out.append("  gates:")
        out += [f"    {'pass' if g.passed else 'FAIL'}  {g.text}" for g in p.gates]
        for r in p.environments:
            now = r.version or "nothing"
            out.append(f"  {r.environment} (runs {now}):")
            out += [f"    {d.metric} {_delta(d)}" for d in r.deltas]
            out.append(f"    {'would deploy' if r.deploy else 'held out'}: {r.reason}")
            if r.replay is not None:
                out.append(f"    {'pass' if r.replay_passed else 'FAIL'}  {r.replay}")
        if p.data is not None:
            out += ["  data (against " + (p.data.base_version or "nothing") + "):", *_data(p)]
        ran = ", ".join(f"{s.stage} {s.outcome} {s.seconds:.1f}s" for s in p.stages)
        out.append(f"  stages ({p.seconds:.1f}s): {ran or 'none'}")
    failed = preview.failed
    out += ["", f"Preview: {len(preview.lifecycles)} lifecycle(s), {len(failed)} failing."]
    return "\n".join(out) + "\n"


def _data(p: LifecyclePreview) -> list[str]:
    assert p.data is not None
    d = p.data
    rows = [f"    rows in {d.rows_in[0]} → {d.rows_in[1]}, out {d.rows_out[0]} → {d.rows_out[1]}"]
    rows += [f"    dropped ({why}): {a} → {b}" for why, (a, b) in d.dropped.items() if a != b]
    return rows


# ------------------------------------------------------------------------- markdown


def _details(p: LifecyclePreview) -> list[str]:
    e = mdtext.escape
    out = [f"<details><summary>{e(p.name)}: details</summary>", ""]
    out.append(f"**Selected:** {e(p.selected or 'none')}, {e(p.why_selected)}")
    out += [
        "",
        f"| Candidate | Validation {e(p.metric)} | Test {e(p.metric)} |",
        "| --- | --- | --- |",
    ]
    for c in p.candidates:
        name = f"**{e(c.name)}**" if c.selected else e(c.name)
        out.append(f"| {name} | {_n(c.validation.get(p.metric))} | {_n(c.test.get(p.metric))} |")
    out += ["", "**Gates** (test metrics of the selected model):", ""]
    out += [f"- {'✅' if g.passed else '❌'} {e(g.text)}" for g in p.gates] or ["- none"]
    for r in p.environments:
        runs = e(r.version) if r.version else "nothing yet"
        verdict = "🚀 would deploy" if r.deploy else "⏸️ held out"
        out += ["", f"**{e(r.environment)}** runs {runs}: {verdict}: {e(r.reason)}"]
        if r.replay is not None:
            out += ["", f"- {'✅' if r.replay_passed else '❌'} {e(r.replay)}"]
        if r.deltas:
            out += ["", "| Metric | Now → preview |", "| --- | --- |"]
            out += [f"| {e(d.metric)} | {_delta(d)} |" for d in r.deltas]
    if p.data is not None:
        out += ["", f"**Data** against {e(p.data.base_version or 'nothing')}:", ""]
        out += [f"- {e(line.strip())}" for line in _data(p)]
    ran = ", ".join(f"{e(s.stage)} {s.outcome} {s.seconds:.1f}s" for s in p.stages)
    out += ["", f"**Stages** ({p.seconds:.1f}s): {ran or 'none'}", "", "</details>"]
    return out


def markdown(preview: Preview, limit: int = LIMIT) -> str:
    e = mdtext.escape
    out = [PREVIEW_MARKER, "### mllc preview", ""]
    if not preview.lifecycles:
        out.append("**Nothing to preview:** the plan retrains and re-evaluates nothing.")
        return "\n".join(out) + "\n"
    failed = preview.failed
    if failed:
        out.append(f"❌ **{len(failed)} of {len(preview.lifecycles)} would fail their gates.**")
    else:
        out.append(f"✅ **{len(preview.lifecycles)} previewed, every one passes its gates.**")
    out.append("")
    for p in preview.lifecycles:
        mark = "❌" if p.verdict == "fail" else "✅"
        where = "; ".join(e(w) for w in _where(p))
        line = f"- {mark} **{e(p.name)}** ({', '.join(p.categories)}): {e(_headline(p))}"
        out.append(line + (f". {where}" if where else ""))
    if preview.uncommitted_specs:
        shown = ", ".join(e(s) for s in preview.uncommitted_specs)
        out += ["", f"> ⚠️ previewing uncommitted spec edits: {shown}"]
    size = sum(len(line) + 1 for line in out)
    left_out = 0
    for p in preview.lifecycles:
        block = ["", *_details(p)]
        cost = sum(len(line) + 1 for line in block)
        if size + cost > limit - _ROOM:
            left_out += 1
            continue
        out += block
        size += cost
    if left_out:
        out += [
            "",
            f"_Details of {left_out} lifecycle(s) left out to fit GitHub's comment limit: "
            "run `mllc preview` for all of them._",
        ]
    return "\n".join(out) + "\n"
