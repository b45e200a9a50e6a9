"""The terminal summary of a monitoring report (the Markdown and HTML are in ``render``)."""

from __future__ import annotations

from collections.abc import Sequence

from mllc.errors import escape_control
from mllc.observe.monitoring import MonitorReport


def summary(report: MonitorReport, written: Sequence[str] = ()) -> str:
    r = report
    verdict = "BREACH" if r.breach else "no breach"
    labelled = "labelled" if r.batch.labelled else "no labels"
    lines = [
        f"{r.lifecycle}/{r.environment}: {verdict} "
        f"({r.version or 'no version deployed'}; batch {escape_control(r.batch.source)}, "
        f"{r.batch.rows} rows, {labelled})"
    ]
    lines += [f"  {escape_control(reason)}" for reason in r.reasons]
    if r.drift is not None:
        d = r.drift
        lines.append(
            f"Drift ({d.method}, threshold {d.threshold:g}): {len(d.drifted)} of "
            f"{len(d.features)} feature(s) drifted"
        )
        width = max((len(f.name) for f in d.features), default=0)
        ordered = sorted(d.features, key=lambda f: (not f.breach, -f.value if f.breach else 0))
        for f in ordered:
            mark = "  breach" if f.breach else ""
            lines.append(
                f"  {escape_control(f.name).ljust(width)}  {f.statistic} {f.value:.3f}{mark}"
            )
    if r.performance is not None:
        p = r.performance
        bound = (
            f" (min {p.min:g})"
            if p.min is not None
            else f" (max {p.max:g})"
            if p.max is not None
            else ""
        )
        shown = f"{p.value:.3f}" if p.value is not None else "unknown"
        lines.append(f"Performance: {p.metric} {shown}{bound}")
        lines += [f"  gate {'ok  ' if g.passed else 'FAIL'} {g.text}" for g in p.gates]
    lines += [f"Warning: {escape_control(w)}" for w in r.warnings]
    if r.breach and r.on_breach == "retrain":
        if r.retrain_data:
            lines.append(
                f"Next: the next 'mllc plan' retrains {r.lifecycle} with the labelled batch "
                f"({r.retrain_data})."
            )
        else:
            lines.append(
                "Next: retraining needs labelled data: run mllc monitor on a batch with "
                "the target column."
            )
    elif r.breach:
        lines.append("Next: on_breach is alert: nothing changes; the next plan shows the breach.")
    if written:
        lines.append(f"Report: {', '.join(p for p in written if not p.endswith('.parquet'))}")
    return "\n".join(lines) + "\n"
