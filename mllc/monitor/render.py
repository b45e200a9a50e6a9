"""Render a :class:`MonitorReport` as Markdown and as one self-contained HTML page.

:func:`markdown` is for pull requests and issues (GitHub-flavoured): the verdict,
the facts, the breach reasons, a drift table (breaching features first), the
performance on the labelled batch with its gates, warnings, what happens next and a
link to the HTML report. :func:`html` is that report as a single page: inline CSS,
no JavaScript, no external resource, an inline SVG bar chart per feature
(reference vs current fractions per bin). The page is the Jinja2 template
``templates/report.html.j2``, rendered from a :class:`Page` of formatted values.

Both are pure and deterministic (same report, same bytes). Everything that comes
from data (feature names, bin labels, paths, reasons, versions) is escaped: in
Markdown so it can neither break a table row nor inject HTML or @mentions, in HTML
by the template's environment (autoescape, with :func:`html.escape`'s entities),
SVG text and attributes included.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from mllc import mdtext, pages
from mllc.monitor import fmt
from mllc.monitor.chart import MAX_BINS, REST, Chart, chart, coord
from mllc.observe.monitoring import (
    DriftResult,
    FeatureDrift,
    MonitorReport,
    PerformanceResult,
)

# --------------------------------------------------------------------- shared


def ordered_features(drift: DriftResult) -> list[FeatureDrift]:
    """Breaching features first (worst first, as in ``drift.drifted``), then the
    others in the report's order."""
    rank: dict[str, int] = {}
    for i, name in enumerate(drift.drifted):
        rank.setdefault(name, i)
    breaching = sorted(
        (f for f in drift.features if f.breach), key=lambda f: rank.get(f.name, len(rank))
    )
    return breaching + [f for f in drift.features if not f.breach]


def _verdict(report: MonitorReport) -> str:
    return "breach" if report.breach else "no breach"


def _perf_verdict(perf: PerformanceResult) -> str:
    if perf.value is None:
        return "not computed"
    if perf.min is not None and perf.value < perf.min:
        return "below min"
    if perf.max is not None and perf.value > perf.max:
        return "above max"
    return "ok"  # a failing gate is shown on its own line


Segment = mdtext.Segment


def _next_step(report: MonitorReport) -> list[Segment]:
    """What the breach leads to, as marked-up segments (rendered by each format)."""
    if not report.breach:
        return []
    if report.on_breach == "alert":
        return [
            ("text", "On breach: alert. Nothing changes automatically: "),
            ("text", "review this report and act by hand."),
        ]
    if report.retrain_data is not None:
        return [
            ("text", "The next "),
            ("code", "mllc plan"),
            ("text", " retrains "),
            ("strong", report.lifecycle),
            ("text", " with the labelled batch "),
            ("code", report.retrain_data),
            ("text", "."),
        ]
    why = (
        "this batch has no target column"
        if not report.batch.labelled
        else "no labelled batch was saved"
    )
    return [
        ("text", "On breach: retrain, but retraining needs labelled data ("),
        ("text", why),
        ("text", "): monitor a labelled batch so that the next "),
        ("code", "mllc plan"),
        ("text", " retrains "),
        ("strong", report.lifecycle),
        ("text", "."),
    ]


# ------------------------------------------------------------------- Markdown


def _md_facts(report: MonitorReport) -> str:
    version = f"Version **{mdtext.escape(report.version)}**" if report.version else "No version"
    labelled = "labelled" if report.batch.labelled else "no labels"
    return (
        f"{version} · {mdtext.escape(report.time)} · batch {mdtext.code(report.batch.source)} "
        f"({fmt.rows(report.batch.rows)}, {labelled}) · reference "
        f"{mdtext.code(report.reference.path)} ({fmt.rows(report.reference.rows)})"
    )


def _md_drift(drift: DriftResult | None) -> list[str]:
    if drift is None:
        return ["**Drift:** not checked."]
    n = len(drift.features)
    out = [
        f"**Drift** ({drift.method}, threshold {fmt.num(drift.threshold)}): "
        f"{len(drift.drifted)} of {n} feature{'' if n == 1 else 's'} drifted "
        f"({fmt.pct(drift.share)})."
    ]
    if not drift.features:
        return out
    out += [
        "",
        "| Feature | Kind | Statistic | Value | Threshold | p-value | Verdict |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for f in ordered_features(drift):
        verdict = "❌ **drift**" if f.breach else "✅ ok"
        out.append(
            f"| {mdtext.escape(f.name)} | {f.kind} | {f.statistic} | {fmt.num(f.value)} | "
            f"{fmt.num(f.threshold)} | {mdtext.escape(fmt.p_value(f.p_value))} | {verdict} |"
        )
    return out


def _md_performance(perf: PerformanceResult) -> list[str]:
    verdict = _perf_verdict(perf)
    mark = "✅" if verdict == "ok" else "❌"
    out = [
        "**Performance** on the labelled batch:",
        "",
        "| Metric | Value | Min | Max | Verdict |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| {mdtext.escape(perf.metric)} | {fmt.num(perf.value)} | {fmt.num(perf.min)} | "
        f"{fmt.num(perf.max)} | {mark} {verdict} |",
    ]
    if perf.gates:
        out += ["", "Gates checked on the batch:", ""]
        for gate in perf.gates:
            status = "✅ pass" if gate.passed else "❌ **fail**"
            out.append(f"- {status} — {mdtext.escape(gate.gate)}: {mdtext.escape(gate.text)}")
    others = sorted((k, v) for k, v in perf.metrics.items() if k != perf.metric)
    if others:
        listed = " · ".join(f"{mdtext.escape(k)} {fmt.num(v)}" for k, v in others)
        out += ["", f"Other metrics: {listed}"]
    return out


def markdown(report: MonitorReport, html_name: str | None = "report.html") -> str:
    """The report for a pull request or an issue; links ``html_name`` when given."""
    title = f"{mdtext.escape(report.lifecycle)} / {mdtext.escape(report.environment)}"
    out = [f"### mllc monitor: {title} — {_verdict(report)}", "", _md_facts(report), ""]
    if report.breach:
        out += ["❌ **Breach:**", ""]
        out += [f"- {mdtext.escape(reason)}" for reason in report.reasons] or [
            "- (no reason given)"
        ]
    else:
        out.append("✅ **No breach.**")
    out += ["", *_md_drift(report.drift)]
    if report.performance is not None:
        out += ["", *_md_performance(report.performance)]
    for warning in report.warnings:
        out += ["", f"> ⚠️ {mdtext.escape(warning)}"]
    step = _next_step(report)
    if step:
        out += ["", f"**Next:** {mdtext.segments(step)}"]
    if html_name:
        target = quote(mdtext.one_line(html_name), safe="/:#?=&%~+,;")
        out += ["", f"[Full report with per-feature plots: {mdtext.escape(html_name)}]({target})"]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------- HTML
#
# The page is templates/report.html.j2. Here its data is prepared: every value
# already formatted, as plain strings, numbers and booleans; the template holds all
# the markup, the SVG charts included, and the environment escapes whatever it prints.

_ENV = pages.environment("mllc.monitor")
_ENV.filters["coord"] = coord


@dataclass(frozen=True)
class Feature:
    """A row of the drift table and its section with a chart (anchor ``id``)."""

    id: str
    name: str
    kind: str
    statistic: str
    value: str
    compare: str
    threshold: str
    p_value: str
    reference_missing: str
    current_missing: str
    breach: bool
    merged: str
    """How the chart's bins were merged, if they were (else empty)."""
    chart: Chart


@dataclass(frozen=True)
class DriftSummary:
    method: str
    threshold: str
    drifted: int
    of: str
    """``4 features``."""
    share: str


@dataclass(frozen=True)
class Gate:
    gate: str
    text: str
    passed: bool


@dataclass(frozen=True)
class Performance:
    metric: str
    value: str
    min: str
    max: str
    verdict: str
    ok: bool
    """The metric's own verdict; a failing gate has its own row."""
    gates: tuple[Gate, ...]
    others: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Data:
    """A file the report names: path, rows and a digest (if any)."""

    path: str
    rows: str
    digest: str | None


@dataclass(frozen=True)
class Page:
    """Everything the HTML page shows, formatted."""

    where: str
    breach: bool
    headline: str
    lifecycle: str
    environment: str
    version: str
    time: str
    batch: Data
    labelled: bool
    reference: Data
    on_breach: str
    id: str
    mllc_version: str
    format_version: str
    reasons: tuple[str, ...]
    next: tuple[Segment, ...]
    drift: DriftSummary | None
    features: tuple[Feature, ...]
    performance: Performance | None
    warnings: tuple[str, ...]


def _feature(index: int, f: FeatureDrift) -> Feature:
    bins = len(f.histogram.labels)
    return Feature(
        id=f"f{index}",
        name=f.name,
        kind=f.kind,
        statistic=f.statistic,
        value=fmt.num(f.value),
        compare=">" if f.value > f.threshold else "≤",
        threshold=fmt.num(f.threshold),
        p_value=fmt.p_value(f.p_value),
        reference_missing=fmt.pct(f.reference_missing),
        current_missing=fmt.pct(f.current_missing),
        breach=f.breach,
        merged=f"{bins} bins, the smallest merged into {REST}" if bins > MAX_BINS else "",
        chart=chart(f),
    )


def _drift(drift: DriftResult) -> DriftSummary:
    n = len(drift.features)
    return DriftSummary(
        method=drift.method,
        threshold=fmt.num(drift.threshold),
        drifted=len(drift.drifted),
        of=f"{n} feature{'' if n == 1 else 's'}",
        share=fmt.pct(drift.share),
    )


def _performance(perf: PerformanceResult) -> Performance:
    verdict = _perf_verdict(perf)
    return Performance(
        metric=perf.metric,
        value=fmt.num(perf.value),
        min=fmt.num(perf.min),
        max=fmt.num(perf.max),
        verdict=verdict,
        ok=verdict == "ok",
        gates=tuple(Gate(g.gate, g.text, g.passed) for g in perf.gates),
        others=tuple((k, fmt.num(v)) for k, v in sorted(perf.metrics.items()) if k != perf.metric),
    )


def page(report: MonitorReport) -> Page:
    """The page's data: what :func:`html` renders."""
    n = len(report.reasons)
    batch, ref = report.batch, report.reference
    return Page(
        where=f"{report.lifecycle} / {report.environment}",
        breach=report.breach,
        headline=f"✖ Breach ({n} reason{'' if n == 1 else 's'})"
        if report.breach
        else "✔ No breach",
        lifecycle=report.lifecycle,
        environment=report.environment,
        version=report.version or "none",
        time=report.time,
        batch=Data(batch.source, fmt.rows(batch.rows), batch.sha256),
        labelled=batch.labelled,
        reference=Data(ref.path, fmt.rows(ref.rows), ref.md5),
        on_breach=report.on_breach,
        id=report.id,
        mllc_version=report.mllc_version,
        format_version=report.format_version,
        reasons=report.reasons,
        next=tuple(_next_step(report)),
        drift=_drift(report.drift) if report.drift is not None else None,
        features=tuple(
            _feature(i, f)
            for i, f in enumerate(
                ordered_features(report.drift) if report.drift is not None else []
            )
        ),
        performance=(_performance(report.performance) if report.performance is not None else None),
        warnings=report.warnings,
    )


def html(report: MonitorReport) -> str:
    """The report as one self-contained HTML5 page (inline CSS and SVG, no scripts)."""
    return _ENV.get_template("report.html.j2").render(p=page(report))
