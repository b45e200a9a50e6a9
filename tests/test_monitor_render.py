"""The monitoring report rendered as Markdown (PRs, issues) and as one HTML page."""

from __future__ import annotations

import html as html_lib
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mllc.monitor.chart import MAX_BINS, REST, chart_bins
from mllc.monitor.render import html, markdown
from mllc.observe.monitoring import (
    BatchInfo,
    DriftResult,
    FeatureDrift,
    GateCheck,
    Histogram,
    MonitorReport,
    PerformanceResult,
    ReferenceInfo,
    drift_reason,
)

RETRAIN_DATA = "monitoring/churn/staging/retrain.parquet"
ROOT = Path(__file__).resolve().parent.parent


def _feature(
    name: str,
    value: float = 0.05,
    *,
    breach: bool | None = None,
    labels: tuple[str, ...] = ("< 1", "[1, 2)", ">= 2"),
    reference: tuple[float, ...] = (0.2, 0.5, 0.3),
    current: tuple[float, ...] = (0.1, 0.3, 0.6),
    p_value: float | None = None,
) -> FeatureDrift:
    return FeatureDrift(
        name=name,
        kind="numeric",
        statistic="ks" if p_value is not None else "psi",
        value=value,
        p_value=p_value,
        threshold=0.2,
        breach=value > 0.2 if breach is None else breach,
        histogram=Histogram(labels=labels, reference=reference, current=current),
        reference_missing=0.0,
        current_missing=0.0125,
    )


def _report(
    features: tuple[FeatureDrift, ...] = (),
    *,
    performance: PerformanceResult | None = None,
    on_breach: str = "retrain",
    retrain_data: str | None = None,
    labelled: bool = True,
    warnings: tuple[str, ...] = (),
    lifecycle: str = "churn",
) -> MonitorReport:
    drifted = tuple(f.name for f in sorted(features, key=lambda f: -f.value) if f.breach)
    reasons = [drift_reason(f) for f in features if f.breach]
    if performance is not None and performance.breach:
        reasons.append(f"performance: {performance.metric} {performance.value} < {performance.min}")
    return MonitorReport.model_validate(
        {
            "mllc_version": "0.9.0",
            "id": "mon-0123abcd",
            "lifecycle": lifecycle,
            "environment": "staging",
            "version": "v1.2.0",
            "time": "2025-01-02T03:04:05Z",
            "batch": BatchInfo(
                source="data/batches/2025-01.csv", rows=1200, labelled=labelled, sha256="f" * 64
            ),
            "reference": ReferenceInfo(path="data/prepared/train.parquet", rows=5000),
            "drift": DriftResult(
                method="psi",
                threshold=0.2,
                features=features,
                drifted=drifted,
                share=len(drifted) / len(features) if features else 0.0,
                breach=bool(drifted),
            ),
            "performance": performance,
            "breach": bool(reasons),
            "reasons": tuple(reasons),
            "on_breach": on_breach,
            "retrain_data": retrain_data,
            "warnings": warnings,
        }
    )


BREACH = _report(
    (
        _feature("tenure", 0.05),
        _feature("monthly_charges", 0.41234),
        _feature("contract", 0.12, p_value=0.0001),
        _feature("total_charges", 0.3),
    ),
    retrain_data=RETRAIN_DATA,
)
QUIET = _report((_feature("tenure", 0.05), _feature("contract", 0.1)))
PERFORMANCE = PerformanceResult(
    metric="accuracy",
    value=0.712,
    min=0.8,
    breach=True,
    gates=(
        GateCheck(gate="min_accuracy", text="accuracy 0.712 >= 0.8", passed=False),
        GateCheck(gate="max_latency", text="f1 0.65 >= 0.5", passed=True),
    ),
    metrics={"accuracy": 0.712, "f1": 0.65, "auc": 0.81},
)


# ------------------------------------------------------------------- Markdown


def _cells(row: str) -> list[str]:
    """Split a GFM table row as GitHub does: a backslash escapes the next character,
    any other ``|`` separates cells; the outer pipes are dropped."""
    cells, cell, i = [], "", 0
    while i < len(row):
        if row[i] == "\\" and i + 1 < len(row):
            cell += row[i : i + 2]
            i += 2
            continue
        if row[i] == "|":
            cells.append(cell)
            cell = ""
        else:
            cell += row[i]
        i += 1
    cells.append(cell)
    assert cells[0].strip() == "" and cells[-1].strip() == "", row
    return [c.strip() for c in cells[1:-1]]


def _drift_rows(md: str) -> list[list[str]]:
    lines = md.splitlines()
    start = lines.index("| Feature | Kind | Statistic | Value | Threshold | p-value | Verdict |")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return rows


def test_markdown_title_says_the_verdict() -> None:
    assert markdown(BREACH).splitlines()[0] == "### mllc monitor: churn / staging — breach"
    assert markdown(QUIET).splitlines()[0] == "### mllc monitor: churn / staging — no breach"
    assert "✅ **No breach.**" in markdown(QUIET)
    assert "Breach:" not in markdown(QUIET)


def test_markdown_facts_line() -> None:
    facts = markdown(BREACH).splitlines()[2]
    for part in (
        "v1.2.0",
        "2025-01-02T03:04:05Z",
        "`data/batches/2025-01.csv` (1,200 rows, labelled)",
        "`data/prepared/train.parquet` (5,000 rows)",
    ):
        assert part in facts
    unlabelled = _report((_feature("x", 0.5),), labelled=False)
    assert "(1,200 rows, no labels)" in markdown(unlabelled)


def test_markdown_lists_the_reasons() -> None:
    lines = markdown(BREACH).splitlines()
    assert "- drift: monthly_charges psi 0.41 &gt; 0.2" in lines
    assert "- drift: total_charges psi 0.30 &gt; 0.2" in lines
    assert sum(line.startswith("- drift: ") for line in lines) == 2


def test_markdown_drift_table_breaches_first_then_report_order() -> None:
    report = _report(
        (
            _feature("a", 0.01),
            _feature("b", 0.3),
            _feature("c", 0.02),
            _feature("d", 0.5),
            _feature("e", 0.03),
        )
    )
    rows = _drift_rows(markdown(report))
    assert [r[0] for r in rows] == ["d", "b", "a", "c", "e"]
    assert rows[0] == ["d", "numeric", "psi", "0.500", "0.200", "—", "❌ **drift**"]
    assert rows[2][-1] == "✅ ok"


def test_markdown_numbers_and_p_values() -> None:
    rows = {r[0]: r for r in _drift_rows(markdown(BREACH))}
    assert rows["monthly_charges"][3] == "0.412"
    assert rows["contract"][2:6] == ["ks", "0.120", "0.200", "&lt; 0.001"]
    assert "2 of 4 features drifted (50.0%)" in markdown(BREACH)


@pytest.mark.parametrize(
    "name",
    ["a|b", "x`y`z", "line\nbreak", "crlf\r\nname", "back\\|slash", "pipe at end|", "|", "``"],
)
def test_markdown_data_cannot_break_a_table_row(name: str) -> None:
    report = _report((_feature(name, 0.5), _feature("ok", 0.01)))
    md = markdown(report)
    rows = _drift_rows(md)
    assert len(rows) == 2
    assert all(len(row) == 7 for row in rows)
    assert rows[1][0] == "ok"
    # the name cell has no live backtick (no code span can swallow the row)
    assert re.search(r"(?<!\\)`", rows[0][0]) is None


def test_markdown_escapes_mentions_and_html() -> None:
    report = _report(
        (_feature("@team", 0.5), _feature("<script>alert(1)</script>", 0.6)),
        warnings=("ping @ops <b>now</b>",),
        lifecycle="@owner",
    )
    md = markdown(report)
    assert "@team" not in md and "@ops" not in md and "@owner" not in md
    assert "@&#8203;team" in md and "@&#8203;ops" in md
    assert "<script>" not in md and "<b>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "> ⚠️ ping @&#8203;ops &lt;b&gt;now&lt;/b&gt;" in md.splitlines()


def test_markdown_escapes_block_syntax_in_reasons() -> None:
    md = markdown(_report((_feature("# heading", 0.5), _feature("1. item", 0.4))))
    assert "- drift: # heading psi 0.50 &gt; 0.2" in md.splitlines()
    rows = _drift_rows(md)
    assert rows[0][0] == "\\# heading"
    assert rows[1][0] == "1\\. item"


def test_markdown_performance_section() -> None:
    md = markdown(_report((_feature("x", 0.01),), performance=PERFORMANCE))
    lines = md.splitlines()
    assert "| accuracy | 0.712 | 0.800 | — | ❌ below min |" in lines
    assert "- ❌ **fail** — min_accuracy: accuracy 0.712 &gt;= 0.8" in lines
    assert "- ✅ pass — max_latency: f1 0.65 &gt;= 0.5" in lines
    assert "Other metrics: auc 0.810 · f1 0.650" in lines
    assert "- performance: accuracy 0.712 &lt; 0.8" in lines
    assert "**Performance**" not in markdown(QUIET)


def test_markdown_metric_above_min_is_ok_even_when_a_gate_fails() -> None:
    gate_only = PERFORMANCE.model_copy(update={"value": 0.857, "min": 0.85})
    lines = markdown(_report((_feature("x", 0.01),), performance=gate_only)).splitlines()
    assert "| accuracy | 0.857 | 0.850 | — | ✅ ok |" in lines
    assert "- ❌ **fail** — min_accuracy: accuracy 0.712 &gt;= 0.8" in lines


def test_markdown_next_step_retrain_with_labelled_data() -> None:
    md = markdown(BREACH)
    assert (
        "**Next:** The next `mllc plan` retrains **churn** with the labelled batch "
        f"`{RETRAIN_DATA}`."
    ) in md.splitlines()


def test_markdown_next_step_retrain_without_labels() -> None:
    md = markdown(_report((_feature("x", 0.5),), labelled=False))
    (line,) = [line for line in md.splitlines() if line.startswith("**Next:**")]
    assert "retraining needs labelled data" in line
    assert "this batch has no target column" in line
    assert "with the labelled batch" not in line


def test_markdown_next_step_alert() -> None:
    md = markdown(_report((_feature("x", 0.5),), on_breach="alert", retrain_data=None))
    (line,) = [line for line in md.splitlines() if line.startswith("**Next:**")]
    assert "Nothing changes automatically" in line
    assert "retrains" not in line


def test_markdown_no_next_step_without_breach() -> None:
    assert "**Next:**" not in markdown(QUIET)


def test_markdown_links_the_html_report() -> None:
    assert markdown(BREACH).splitlines()[-1] == (
        "[Full report with per-feature plots: report.html](report.html)"
    )
    assert "](" not in markdown(BREACH, html_name=None)
    assert markdown(BREACH, html_name="a b.html").splitlines()[-1].endswith("(a%20b.html)")


def test_markdown_is_deterministic() -> None:
    again = MonitorReport.model_validate_json(BREACH.model_dump_json())
    assert markdown(BREACH) == markdown(again)
    assert markdown(BREACH).endswith("\n") and not markdown(BREACH).endswith("\n\n")


# ----------------------------------------------------------------------- HTML

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class _Checker(HTMLParser):
    """Balanced tags: a stack of open elements, void elements and ``<x/>`` ignored."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag for void element {tag}")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def _check(page: str) -> None:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    assert checker.doctype
    assert page.startswith('<!doctype html>\n<html lang="en">')
    assert '<meta charset="utf-8">' in page
    assert '<meta name="viewport"' in page


class _Svg(HTMLParser):
    """One chart: its attributes, title, texts and the bar heights per bin."""

    def __init__(self, svg: str) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: dict[str, str | None] = {}
        self.titles: list[str] = []
        self.texts: list[str] = []
        self.bins: list[list[float]] = []
        self._open: list[str] = []
        self._bars_depth: int | None = None
        self.feed(svg)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.attrs = dict(attrs)
        if tag == "g" and ("class", "bars") in attrs:
            self._bars_depth = len(self._open)
        elif tag == "g" and self._bars_depth is not None:
            self.bins.append([])
        self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "rect" and self._bars_depth is not None:
            self.bins[-1].append(float(dict(attrs)["height"] or "nan"))

    def handle_endtag(self, tag: str) -> None:
        self._open.pop()
        if tag == "g" and self._bars_depth == len(self._open):
            self._bars_depth = None

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1] == "title":
            self.titles.append(data)
        elif self._open and self._open[-1] == "text":
            self.texts.append(data)


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, re.S)


def _chart(page: str, name: str) -> tuple[str, _Svg]:
    found = [
        (svg, parsed)
        for svg in _svgs(page)
        if (parsed := _Svg(svg)).attrs["aria-label"] is not None
        and str(parsed.attrs["aria-label"]).startswith(f"{name}: ")
    ]
    assert len(found) == 1, name
    return found[0]


def test_html_is_balanced_valid_html5() -> None:
    for report in (
        BREACH,
        QUIET,
        _report((_feature("x", 0.5),), performance=PERFORMANCE, warnings=("w <1>",)),
        _report((_feature("x", 0.5),), on_breach="alert"),
        _report(()),
        _report(
            (
                _feature(
                    "many",
                    0.5,
                    labels=tuple(f"bin {i}" for i in range(60)),
                    reference=(1 / 60,) * 60,
                    current=(1 / 60,) * 60,
                ),
            )
        ),
    ):
        _check(html(report))


def test_html_is_self_contained() -> None:
    page = html(_report((_feature("x", 0.5),), performance=PERFORMANCE, warnings=("w",)))
    lowered = page.lower()
    for needle in ("http://", "https://", "src=", "<script", "<link", "url(", "@import"):
        assert needle not in lowered, needle
    assert "<style>" in page and "<svg" in page


def test_html_verdict_in_words_and_colour() -> None:
    breach, quiet = html(BREACH), html(QUIET)
    assert '<header class="bad">' in breach and "✖ Breach (2 reasons)" in breach
    assert '<header class="ok">' in quiet and "✔ No breach" in quiet
    assert "Breach reasons" not in quiet
    assert "<title>mllc monitor: churn / staging — breach</title>" in breach


def test_html_facts_reasons_performance_warnings() -> None:
    page = html(
        _report(
            (_feature("monthly_charges", 0.41),),
            performance=PERFORMANCE,
            retrain_data=RETRAIN_DATA,
            warnings=("3 rows with unknown categories",),
        )
    )
    for fact in (
        "churn",
        "staging",
        "v1.2.0",
        "2025-01-02T03:04:05Z",
        "data/batches/2025-01.csv",
        "data/prepared/train.parquet",
        "mon-0123abcd",
        "0.9.0",
        "f" * 64,
    ):
        assert fact in page, fact
    assert "<li>drift: monthly_charges psi 0.41 &gt; 0.2</li>" in page
    assert "<li>performance: accuracy 0.712 &lt; 0.8</li>" in page
    assert "✖ below min" in page and "✖ fail" in page and "✔ pass" in page
    assert "<td>auc</td>" in page
    assert "⚠ 3 rows with unknown categories" in page
    assert f"<code>{RETRAIN_DATA}</code>" in page


def test_html_one_chart_per_feature_breaching_first() -> None:
    page = html(BREACH)
    assert BREACH.drift is not None
    assert page.count("<svg") == len(BREACH.drift.features)
    charts = [_Svg(svg) for svg in _svgs(page)]
    names = [str(c.attrs["aria-label"]).split(":")[0] for c in charts]
    assert names == ["monthly_charges", "total_charges", "tenure", "contract"]
    for chart in charts:
        assert chart.attrs["role"] == "img"
        assert chart.titles and chart.titles[0].startswith("Distribution of ")
        assert "reference" in chart.texts and "current" in chart.texts
    # the summary table follows the same order, linked to the charts
    table = page[page.index("<table>") : page.index("</table>")]
    assert [table.index(f">{n}</a>") for n in names] == sorted(
        table.index(f">{n}</a>") for n in names
    )
    heading = page[page.index('id="f0"') :].split("</h3>")[0]
    assert "monthly_charges — psi 0.412 &gt; 0.200" in heading and "✖ drift" in heading


def test_html_escapes_data_everywhere() -> None:
    evil = "<script>alert(1)</script>"
    quote = "q\"uote' & <b>"
    report = _report(
        (
            _feature(
                evil,
                0.5,
                labels=(evil, quote, "ok"),
                reference=(0.2, 0.3, 0.5),
                current=(0.5, 0.3, 0.2),
            ),
        ),
        warnings=(evil,),
        retrain_data=evil,
        lifecycle=quote,
    )
    page = html(report)
    _check(page)
    assert "<script" not in page.lower() and "<b>" not in page
    assert html_lib.escape(evil) in page
    svg, chart = _chart(page, evil)
    # attributes hold the data intact once unescaped, nothing leaks into markup
    assert str(chart.attrs["aria-label"]).startswith(f"{evil}: reference vs current")
    assert html_lib.escape(quote, quote=True) in svg
    assert quote in chart.texts and "<script>alert(1)<…" in chart.texts
    assert evil in chart.titles


def test_html_chart_shows_every_bin_label() -> None:
    labels = ("< 4.3", "[4.3, 5.1)", "[5.1, 5.8)", "a rather long category label here", ">= 7.2")
    fractions = (0.1, 0.2, 0.3, 0.25, 0.15)
    page = html(
        _report(
            (_feature("sepal", 0.5, labels=labels, reference=fractions, current=fractions[::-1]),)
        )
    )
    svg, chart = _chart(page, "sepal")
    for label in labels:
        assert html_lib.escape(label) in svg, label
    assert len(chart.bins) == len(labels)
    # the long label is truncated under the bars, its full text in a tooltip
    assert "a rather long cat…" in chart.texts
    assert "a rather long category label here" in chart.titles
    assert any(t.startswith("[4.3, 5.1): reference 20.0%, current 25.0%") for t in chart.titles)


def test_html_bar_heights_are_proportional() -> None:
    page = html(
        _report(
            (
                _feature(
                    "split",
                    0.5,
                    labels=("low", "high"),
                    reference=(0.25, 0.75),
                    current=(0.75, 0.25),
                ),
            )
        )
    )
    _, chart = _chart(page, "split")
    (ref_low, cur_low), (ref_high, cur_high) = chart.bins
    assert ref_high / ref_low == pytest.approx(3, rel=0.01)
    assert cur_low / cur_high == pytest.approx(3, rel=0.01)
    assert ref_low == pytest.approx(cur_high) and ref_high == pytest.approx(cur_low)
    # the axis reaches the largest fraction, in percent with one decimal
    ticks = [t for t in chart.texts if t.endswith("%")]
    assert ticks[0] == "0.0%"
    assert all(re.fullmatch(r"\d+\.\d%", t) for t in ticks)
    assert float(ticks[-1].rstrip("%")) >= 75.0


def test_html_merges_bins_beyond_forty_into_rest() -> None:
    n = 50
    weights = [i + 1 for i in range(n)]
    total = sum(weights)
    labels = tuple(f"cat{i:02d}" for i in range(n))
    reference = tuple(w / total for w in weights)
    current = tuple(reversed(reference))
    feature = _feature("wide", 0.5, labels=labels, reference=reference, current=current)
    bins = chart_bins(feature.histogram)
    assert len(bins) == MAX_BINS
    assert bins[-1][0] == REST and bins[-1][3] == n - (MAX_BINS - 1)
    assert sum(b[1] for b in bins) == pytest.approx(1.0)
    assert sum(b[2] for b in bins) == pytest.approx(1.0)
    # max(ref, cur) is smallest in the middle: those are merged, the ends are kept
    kept = {b[0] for b in bins[:-1]}
    assert "cat00" in kept and "cat49" in kept
    assert {"cat24", "cat25"}.isdisjoint(kept)
    assert [b[0] for b in bins[:-1]] == sorted(kept)  # in their original order

    svg, chart = _chart(html(_report((feature,))), "wide")
    assert len(chart.bins) == MAX_BINS
    assert REST in chart.texts
    assert "cat24" not in svg and "cat00" in svg
    assert any(t.startswith(f"{REST} (11 bins): ") for t in chart.titles)


def test_html_size_is_modest_for_fifty_features() -> None:
    middle = (f"[{i * 12.5:.1f}, {(i + 1) * 12.5:.1f})" for i in range(1, 11))
    labels = ("< 12.5", *middle, ">= 137.5")
    fractions = tuple(1 / 12 for _ in range(12))
    features = tuple(
        _feature(
            f"feature_{i:02d}_with_a_name",
            0.1 + i / 100,
            labels=labels,
            reference=fractions,
            current=fractions,
        )
        for i in range(50)
    )
    page = html(_report(features))
    assert page.count("<svg") == 50
    assert len(page.encode("utf-8")) < 200_000
    _check(page)


def test_html_is_deterministic() -> None:
    again = MonitorReport.model_validate_json(BREACH.model_dump_json())
    assert html(BREACH) == html(again)


class _Text(HTMLParser):
    """Every piece of text and every attribute value of a page, unescaped."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts += [value for _, value in attrs if value is not None]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def test_html_drops_control_characters_and_escapes_the_same_way_everywhere() -> None:
    hostile = "c\x00t\x07l\x1b\x7f <i>\"q\" 'a' & {{ 7*7 }} {% raw %}"
    shown = "ctl <i>\"q\" 'a' & {{ 7*7 }} {% raw %}"
    escaped = "ctl &lt;i&gt;&quot;q&quot; &#x27;a&#x27; &amp; {{ 7*7 }} {% raw %}"
    gate = GateCheck(gate=hostile, text=hostile, passed=False)
    performance = PERFORMANCE.model_copy(
        update={"metric": hostile, "gates": (gate,), "metrics": {hostile: 0.5}}
    )
    report = _report(
        (_feature(hostile, 0.5, labels=(hostile, "b"), reference=(0.5, 0.5), current=(1, 0)),),
        performance=performance,
        warnings=(hostile,),
        retrain_data=hostile,
        lifecycle=hostile,
    ).model_copy(update={"version": hostile, "environment": hostile, "id": hostile})
    page = html(report)
    _check(page)
    assert re.search(r"[\x00-\x08\x0e-\x1f\x7f]", page) is None
    # the one spelling of each entity (html.escape's), in text and attributes alike
    assert "&#34;" not in page and "&#39;" not in page
    # data is text: never markup, never template code
    assert "<i>" not in page and "49" not in page
    # every place the data shows, it shows whole and escaped the same way
    places = sum(part.count(shown) for part in _Text(page).parts)
    assert places >= 20
    assert page.count(escaped) == places


@pytest.mark.parametrize(
    "report",
    [
        BREACH,
        QUIET,
        _report(()),
        _report((_feature("x", 0.5),), performance=PERFORMANCE, warnings=("a", "b")),
        _report(
            (
                _feature(
                    "a rather long feature name",
                    0.5,
                    labels=tuple(f"a long category label {i}" for i in range(45)),
                    reference=(1 / 45,) * 45,
                    current=(1 / 45,) * 45,
                ),
            ),
            on_breach="alert",
        ),
    ],
)
def test_html_layout_one_element_a_line(report: MonitorReport) -> None:
    """The page's lines as the template lays them out: no blank line, no indentation
    or trailing space, one newline at the end; an element that spans lines (the
    page's structure) opens and closes on lines of its own."""
    page = html(report)
    assert page.endswith("</html>\n") and not page.endswith("\n\n")
    lines = page.split("\n")[:-1]
    assert all(line and line == line.strip() for line in lines)
    for alone in ("<head>", "</head>", "<body>", "</body>", "<main>", "</main>", "</section>"):
        assert lines.count(alone) == page.count(alone), alone
    assert lines[lines.index("<style>") + 1].startswith(":root{")
    assert lines.count("</style>") == 1
    # a chart: the svg, its title, the legend (a line with two texts), the grid, then a
    # line for each axis label, each bin's bars and each bin's label; the three groups'
    # tags, the axis, </svg>
    for svg in _svgs(page):
        chart_lines, bins = svg.split("\n"), len(_Svg(svg).bins)
        assert sum(line.startswith("<g><title>") for line in chart_lines) == bins
        assert len(chart_lines) == 4 + (svg.count("<text ") - 2) + bins + 6 + 2


def test_html_template_ships_with_the_package(tmp_path: Path) -> None:
    """The template is package data: a build of the package (setuptools' build_py, as
    a wheel has it) holds it, with every other file under mllc/ that is not Python."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "README.md", tmp_path)
    shutil.copytree(ROOT / "mllc", tmp_path / "mllc", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "build"
    build = ["-q", "build_py", "-d", str(out)]
    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", *build],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )

    def data(root: Path) -> set[str]:
        return {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and p.suffix not in {".py", ".pyc"}
        }

    assert "monitor/templates/report.html.j2" in data(tmp_path / "mllc")
    assert data(out) == {f"mllc/{p}" for p in data(tmp_path / "mllc")}
