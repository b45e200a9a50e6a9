"""Render a :class:`MonitorReport` as Markdown and as one self-contained HTML page.

:func:`markdown` is for pull requests and issues (GitHub-flavoured): the verdict,
the facts, the breach reasons, a drift table (breaching features first), the
performance on the labelled batch with its gates, warnings, what happens next and a
link to the HTML report. :func:`html` is that report as a single page: inline CSS,
no JavaScript, no external resource, an inline SVG bar chart per feature
(reference vs current fractions per bin).

Both are pure and deterministic (same report, same bytes). Everything that comes
from data (feature names, bin labels, paths, reasons, versions) is escaped: in
Markdown so it can neither break a table row nor inject HTML or @mentions, in HTML
with :func:`html.escape` (``quote=True``), SVG text and attributes included.
"""

from __future__ import annotations

import html as _html
import math
import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import quote

from mllc import mdtext
from mllc.observe.monitoring import (
    DriftResult,
    FeatureDrift,
    Histogram,
    MonitorReport,
    PerformanceResult,
)

MAX_BINS = 40
"""At most this many bins per chart: the 39 largest and ``(rest)``."""
REST = "(rest)"

# --------------------------------------------------------------------- shared

_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


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


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _p_value(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.0005 else f"{value:.3f}"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


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


Segment = tuple[Literal["text", "code", "strong"], str]


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


def _md_segments(segments: Sequence[Segment]) -> str:
    out = []
    for kind, text in segments:
        if kind == "code":
            out.append(mdtext.code(text))
        elif kind == "strong":
            out.append(f"**{mdtext.escape(text)}**")
        else:
            out.append(mdtext.escape(text))
    return "".join(out)


def _md_facts(report: MonitorReport) -> str:
    version = f"Version **{mdtext.escape(report.version)}**" if report.version else "No version"
    labelled = "labelled" if report.batch.labelled else "no labels"
    return (
        f"{version} · {mdtext.escape(report.time)} · batch {mdtext.code(report.batch.source)} "
        f"({_rows(report.batch.rows)}, {labelled}) · reference "
        f"{mdtext.code(report.reference.path)} ({_rows(report.reference.rows)})"
    )


def _md_drift(drift: DriftResult | None) -> list[str]:
    if drift is None:
        return ["**Drift:** not checked."]
    n = len(drift.features)
    out = [
        f"**Drift** ({drift.method}, threshold {_num(drift.threshold)}): "
        f"{len(drift.drifted)} of {n} feature{'' if n == 1 else 's'} drifted "
        f"({_pct(drift.share)})."
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
            f"| {mdtext.escape(f.name)} | {f.kind} | {f.statistic} | {_num(f.value)} | "
            f"{_num(f.threshold)} | {mdtext.escape(_p_value(f.p_value))} | {verdict} |"
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
        f"| {mdtext.escape(perf.metric)} | {_num(perf.value)} | {_num(perf.min)} | "
        f"{_num(perf.max)} | {mark} {verdict} |",
    ]
    if perf.gates:
        out += ["", "Gates checked on the batch:", ""]
        for gate in perf.gates:
            status = "✅ pass" if gate.passed else "❌ **fail**"
            out.append(f"- {status} — {mdtext.escape(gate.gate)}: {mdtext.escape(gate.text)}")
    others = sorted((k, v) for k, v in perf.metrics.items() if k != perf.metric)
    if others:
        listed = " · ".join(f"{mdtext.escape(k)} {_num(v)}" for k, v in others)
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
        out += ["", f"**Next:** {_md_segments(step)}"]
    if html_name:
        target = quote(mdtext.one_line(html_name), safe="/:#?=&%~+,;")
        out += ["", f"[Full report with per-feature plots: {mdtext.escape(html_name)}]({target})"]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------- HTML


def _h(text: str) -> str:
    """Escape data for HTML text and attribute values (control characters dropped)."""
    return _html.escape(_CONTROLS.sub("", text), quote=True)


def _f(x: float) -> str:
    """A coordinate: one decimal, no trailing zero."""
    s = f"{x:.1f}"
    return s[:-2] if s.endswith(".0") else s


def chart_bins(hist: Histogram) -> list[tuple[str, float, float, int]]:
    """``(label, reference, current, bins merged)`` per bin shown: every bin when
    there are at most :data:`MAX_BINS`, else the 39 largest by max(reference,
    current), in their order, then ``(rest)`` with the sum of the others."""
    rows = [
        (label, ref, cur, 1)
        for label, ref, cur in zip(hist.labels, hist.reference, hist.current, strict=False)
    ]
    if len(rows) <= MAX_BINS:
        return rows
    by_size = sorted(range(len(rows)), key=lambda i: (-max(rows[i][1], rows[i][2]), i))
    keep, rest = sorted(by_size[: MAX_BINS - 1]), by_size[MAX_BINS - 1 :]
    merged = (
        REST,
        math.fsum(rows[i][1] for i in rest),
        math.fsum(rows[i][2] for i in rest),
        len(rest),
    )
    return [rows[i] for i in keep] + [merged]


_STEPS = (0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0)


def _scale(peak: float) -> tuple[float, float]:
    """``(top, step)`` of the y axis: at most 5 ticks above zero, top >= peak."""
    peak = max(peak, 1e-9)
    for step in _STEPS:
        ticks = max(1, math.ceil(peak / step - 1e-9))
        if ticks <= 5:
            return ticks * step, step
    return math.ceil(peak), 1.0


_LABEL_CHARS = 18
_PLOT_H = 150.0
_TOP = 30.0
_LEFT = 46.0
_RIGHT = 12.0
_MIN_WIDTH = 300.0
_SQRT_HALF = math.sqrt(0.5)


def _short(label: str) -> str:
    label = mdtext.one_line(label)
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


def svg_chart(feature: FeatureDrift) -> str:
    """The feature's histogram as an inline SVG: per bin, a reference bar (class
    ``r``) and a current bar (class ``c``) side by side, on a percentage axis."""
    bins = chart_bins(feature.histogram)
    n = max(len(bins), 1)
    shorts = [_short(label) for label, *_ in bins]
    longest = max((len(s) for s in shorts), default=0)
    slot = 34.0 if n <= 12 else 26.0 if n <= 24 else 20.0
    slot = min(64.0, max(slot, 2 * math.floor((_MIN_WIDTH - _LEFT - _RIGHT) / n / 2)))
    bar = (slot - 6) / 2
    rotate = longest * 6.5 > slot - 4
    bottom = math.ceil(16 + longest * 4.8) if rotate else 22.0
    left = max(_LEFT, math.ceil(longest * 4.8 - slot / 2 + 6)) if rotate else _LEFT
    width = max(left + n * slot + _RIGHT, _MIN_WIDTH)
    height = _TOP + _PLOT_H + bottom
    base = _TOP + _PLOT_H
    peak = max((max(ref, cur) for _, ref, cur, _ in bins), default=0.0)
    top, step = _scale(peak)

    name = mdtext.one_line(feature.name)
    label = (
        f"{name}: reference vs current share of rows in {len(bins)} bins; "
        f"{feature.statistic} {_num(feature.value)}, "
        f"{'drift' if feature.breach else 'no drift'}"
    )
    out = [
        f'<svg class="chart" role="img" aria-label="{_h(label)}" width="{_f(width)}" '
        f'height="{_f(height)}" viewBox="0 0 {_f(width)} {_f(height)}">',
        f"<title>{_h(f'Distribution of {name}: reference vs current')}</title>",
        f'<rect class="r" x="{_f(left)}" y="6" width="10" height="10"/>'
        f'<text x="{_f(left + 14)}" y="15">reference</text>'
        f'<rect class="c" x="{_f(left + 84)}" y="6" width="10" height="10"/>'
        f'<text x="{_f(left + 98)}" y="15">current</text>',
    ]
    ticks = round(top / step)
    levels = [(base - _PLOT_H * k / ticks, _pct(k * step)) for k in range(ticks + 1)]
    grid = "".join(f"M{_f(left)} {_f(y)}H{_f(width - _RIGHT)}" for y, _ in levels)
    out += [
        f'<path class="g" d="{grid}"/>',
        '<g class="y">',
        *(f'<text x="{_f(left - 5)}" y="{_f(y + 4)}">{tick}</text>' for y, tick in levels),
        "</g>",
    ]
    # the bars grow up from the axis: y flipped, so a rect needs no y; in each bin's
    # group the first rect is the reference, the second the current batch (CSS colours)
    out.append(f'<g class="bars" transform="matrix(1 0 0 -1 0 {_f(base)})">')
    labels = []
    for i, (full, ref, cur, merged) in enumerate(bins):
        x = left + i * slot + 3
        what = mdtext.one_line(full) + (f" ({merged} bins)" if merged > 1 else "")
        out.append(
            f"<g><title>{_h(f'{what}: reference {_pct(ref)}, current {_pct(cur)}')}</title>"
            f'<rect x="{_f(x)}" width="{_f(bar)}" height="{_f(_PLOT_H * ref / top)}"/>'
            f'<rect x="{_f(x + bar)}" width="{_f(bar)}" height="{_f(_PLOT_H * cur / top)}"/></g>'
        )
        tip = f"<title>{_h(what)}</title>" if shorts[i] != full or merged > 1 else ""
        cx = x + bar
        if rotate:
            # placed in a group turned by -45 degrees: the anchor (cx, y) turned by +45
            y = base + 12
            labels.append(
                f'<text x="{_f((cx - y) * _SQRT_HALF)}" y="{_f((cx + y) * _SQRT_HALF)}">'
                f"{_h(shorts[i])}{tip}</text>"
            )
        else:
            labels.append(f'<text x="{_f(cx)}" y="{_f(base + 15)}">{_h(shorts[i])}{tip}</text>')
    turn = ' transform="rotate(-45)"' if rotate else ""
    out += [
        "</g>",
        f'<g class="{"b" if rotate else "b m"}"{turn}>',
        *labels,
        "</g>",
        f'<line class="a" x1="{_f(left)}" y1="{_f(base)}" x2="{_f(width - _RIGHT)}" '
        f'y2="{_f(base)}"/>',
        "</svg>",
    ]
    return "\n".join(out)


_CSS = """\
:root{--bad:#b3261e;--bad-bg:#fdecea;--ok:#1e6b34;--ok-bg:#e7f4ea;--ref:#4c78a8;\
--cur:#e8710a;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;\
background:#fff}
main,header>div{max-width:1100px;margin:0 auto;padding:0 20px}
header{padding:18px 0;border-bottom:4px solid}
header.bad{background:var(--bad-bg);border-color:var(--bad)}
header.ok{background:var(--ok-bg);border-color:var(--ok)}
h1{margin:0;font-size:1.5em}
.verdict{font-size:1.2em;font-weight:700;margin:6px 0 0}
.bad .verdict,.tag.bad{color:var(--bad)}
.ok .verdict,.tag.ok{color:var(--ok)}
.tag{font-weight:700;white-space:nowrap}
h2{margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line);font-size:1.2em}
h3{margin:22px 0 4px;font-size:1.05em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f6f8fa;\
padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
th,td{border:1px solid var(--line);padding:4px 10px;text-align:left}
th{background:#f6f8fa}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:var(--bad-bg)}
.warn{border-left:4px solid #bf8700;background:#fff8c5;padding:6px 12px;margin:6px 0}
.next{font-weight:600}
.meta{color:var(--muted);margin:0 0 6px;font-size:14px}
.feature{margin-bottom:12px}
svg.chart{display:block;max-width:100%;height:auto;font-size:11px}
svg .r,svg .bars rect{fill:var(--ref)}
svg .c,svg .bars rect+rect{fill:var(--cur)}
svg .g{stroke:#eaeef2}
svg .a{stroke:#57606a}
svg text{fill:#1f2328}
svg .y{text-anchor:end;fill:var(--muted)}
svg .b{text-anchor:end}
svg .b.m{text-anchor:middle}
footer{max-width:1100px;margin:32px auto;padding:0 20px;color:var(--muted);font-size:13px}
"""


def _html_segments(segments: Sequence[Segment]) -> str:
    tags = {"code": "code", "strong": "strong"}
    return "".join(
        f"<{tags[kind]}>{_h(text)}</{tags[kind]}>" if kind in tags else _h(text)
        for kind, text in segments
    )


def _html_facts(report: MonitorReport) -> list[str]:
    batch, ref = report.batch, report.reference
    facts: list[tuple[str, str]] = [
        ("Lifecycle", _h(report.lifecycle)),
        ("Environment", _h(report.environment)),
        ("Version", _h(report.version) if report.version else "none"),
        ("Time", _h(report.time)),
        (
            "Batch",
            f"<code>{_h(batch.source)}</code> — {_rows(batch.rows)}, "
            f"{'labelled' if batch.labelled else 'no labels'}, sha256 "
            f"<code>{_h(batch.sha256)}</code>",
        ),
        (
            "Reference",
            f"<code>{_h(ref.path)}</code> — {_rows(ref.rows)}"
            + (f", md5 <code>{_h(ref.md5)}</code>" if ref.md5 else ""),
        ),
        ("On breach", _h(report.on_breach)),
        ("Report id", f"<code>{_h(report.id)}</code>"),
        ("mllc version", _h(report.mllc_version)),
    ]
    return ["<dl>", *(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts), "</dl>"]


_BAD = ' class="bad"'


def _feature_id(index: int) -> str:
    return f"f{index}"


def _html_drift(drift: DriftResult, order: list[FeatureDrift]) -> list[str]:
    n = len(drift.features)
    out = [
        f"<p>Method <strong>{drift.method}</strong>, threshold {_num(drift.threshold)}: "
        f"{len(drift.drifted)} of {n} feature{'' if n == 1 else 's'} drifted "
        f"({_pct(drift.share)}).</p>"
    ]
    if not order:
        return out
    out += [
        "<table><thead><tr><th>Feature</th><th>Kind</th><th>Statistic</th><th>Value</th>"
        "<th>Threshold</th><th>p-value</th><th>Missing (reference → current)</th>"
        "<th>Verdict</th></tr></thead><tbody>"
    ]
    for i, f in enumerate(order):
        verdict = (
            '<span class="tag bad">✖ drift</span>'
            if f.breach
            else '<span class="tag ok">✔ ok</span>'
        )
        out.append(
            f"<tr{_BAD if f.breach else ''}>"
            f'<td><a href="#{_feature_id(i)}">{_h(f.name)}</a></td><td>{f.kind}</td>'
            f'<td>{f.statistic}</td><td class="n">{_num(f.value)}</td>'
            f'<td class="n">{_num(f.threshold)}</td><td class="n">{_h(_p_value(f.p_value))}</td>'
            f'<td class="n">{_pct(f.reference_missing)} → {_pct(f.current_missing)}</td>'
            f"<td>{verdict}</td></tr>"
        )
    out.append("</tbody></table>")
    return out


def _html_performance(perf: PerformanceResult) -> list[str]:
    verdict = _perf_verdict(perf)
    bad = verdict != "ok"  # the metric's own verdict; failing gates have their rows
    tag = (
        f'<span class="tag bad">✖ {verdict}</span>'
        if bad
        else f'<span class="tag ok">✔ {verdict}</span>'
    )
    out = [
        "<table><thead><tr><th>Metric</th><th>Value</th><th>Min</th><th>Max</th>"
        "<th>Verdict</th></tr></thead><tbody>",
        f"<tr{_BAD if bad else ''}><td>{_h(perf.metric)}</td>"
        f'<td class="n">{_num(perf.value)}</td><td class="n">{_num(perf.min)}</td>'
        f'<td class="n">{_num(perf.max)}</td><td>{tag}</td></tr>',
        "</tbody></table>",
    ]
    if perf.gates:
        out += [
            "<h3>Gates checked on the batch</h3>",
            "<table><thead><tr><th>Gate</th><th>Check</th><th>Verdict</th></tr></thead><tbody>",
        ]
        for gate in perf.gates:
            status = (
                '<span class="tag ok">✔ pass</span>'
                if gate.passed
                else '<span class="tag bad">✖ fail</span>'
            )
            out.append(
                f"<tr{'' if gate.passed else _BAD}><td>{_h(gate.gate)}</td>"
                f"<td>{_h(gate.text)}</td><td>{status}</td></tr>"
            )
        out.append("</tbody></table>")
    others = sorted((k, v) for k, v in perf.metrics.items() if k != perf.metric)
    if others:
        out += [
            "<h3>Other metrics</h3>",
            "<table><thead><tr><th>Metric</th><th>Value</th></tr></thead><tbody>",
            *(f'<tr><td>{_h(k)}</td><td class="n">{_num(v)}</td></tr>' for k, v in others),
            "</tbody></table>",
        ]
    return out


def _html_feature(index: int, feature: FeatureDrift) -> list[str]:
    cls, verdict = ("bad", "✖ drift") if feature.breach else ("ok", "✔ ok")
    compare = ">" if feature.value > feature.threshold else "≤"
    merged = len(feature.histogram.labels) > MAX_BINS
    return [
        f'<section class="feature" id="{_feature_id(index)}">',
        f"<h3>{_h(feature.name)} — {feature.statistic} {_num(feature.value)} "
        f"{_h(compare)} {_num(feature.threshold)} "
        f'<span class="tag {cls}">{verdict}</span></h3>',
        f'<p class="meta">{feature.kind}; missing values: reference '
        f"{_pct(feature.reference_missing)}, current {_pct(feature.current_missing)}"
        + (
            f"; {len(feature.histogram.labels)} bins, the smallest merged into {REST}"
            if merged
            else ""
        )
        + "</p>",
        svg_chart(feature),
        "</section>",
    ]


def html(report: MonitorReport) -> str:
    """The report as one self-contained HTML5 page (inline CSS and SVG, no scripts)."""
    where = f"{report.lifecycle} / {report.environment}"
    cls = "bad" if report.breach else "ok"
    verdict = (
        f"✖ Breach ({len(report.reasons)} reason{'' if len(report.reasons) == 1 else 's'})"
        if report.breach
        else "✔ No breach"
    )
    out = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(f'mllc monitor: {where} — {_verdict(report)}')}</title>",
        f"<style>\n{_CSS}</style>",
        "</head>",
        "<body>",
        f'<header class="{cls}"><div><h1>mllc monitor: {_h(where)}</h1>'
        f'<p class="verdict">{verdict}</p></div></header>',
        "<main>",
        "<section><h2>Facts</h2>",
        *_html_facts(report),
        "</section>",
    ]
    if report.breach:
        out += ["<section><h2>Breach reasons</h2><ul>"]
        out += [f"<li>{_h(reason)}</li>" for reason in report.reasons]
        out += ["</ul>"]
        step = _next_step(report)
        if step:
            out.append(f'<p class="next">Next: {_html_segments(step)}</p>')
        out += ["</section>"]
    order = ordered_features(report.drift) if report.drift is not None else []
    out.append("<section><h2>Drift</h2>")
    if report.drift is not None:
        out += _html_drift(report.drift, order)
    else:
        out.append("<p>Not checked.</p>")
    out.append("</section>")
    if report.performance is not None:
        out.append("<section><h2>Performance on the labelled batch</h2>")
        out += _html_performance(report.performance)
        out.append("</section>")
    if report.warnings:
        out.append("<section><h2>Warnings</h2>")
        out += [f'<p class="warn">⚠ {_h(w)}</p>' for w in report.warnings]
        out.append("</section>")
    if order:
        out.append("<section><h2>Features: reference vs current</h2>")
        for i, feature in enumerate(order):
            out += _html_feature(i, feature)
        out.append("</section>")
    out += [
        "</main>",
        f"<footer>mllc {_h(report.mllc_version)} · report <code>{_h(report.id)}</code> · "
        f"format {_h(report.format_version)}</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"
