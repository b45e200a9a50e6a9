"""The layout of a feature's chart in the HTML monitoring report.

:func:`chart` turns a feature's histogram into a :class:`Chart`: per bin, a
reference bar and a current bar side by side on a percentage axis, with every
coordinate computed here; the ``svg_chart`` macro of ``templates/chart.svg.j2``
draws it as inline SVG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mllc import mdtext
from mllc.monitor import fmt
from mllc.observe.monitoring import FeatureDrift, Histogram

MAX_BINS = 40
"""At most this many bins per chart: the 39 largest and ``(rest)``."""
REST = "(rest)"


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


def coord(x: float) -> str:
    """A coordinate as the SVG shows it: one decimal, no trailing zero."""
    s = f"{x:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _short(label: str) -> str:
    label = mdtext.one_line(label)
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Bin:
    """One bin of a chart: its two bars (left edge ``x``, heights) and its label."""

    tip: str
    x: float
    reference: float
    current: float
    label: str
    label_x: float
    label_y: float
    label_tip: str | None
    """The full label, when the one shown is cut short or stands for merged bins."""


@dataclass(frozen=True)
class Chart:
    """One feature's histogram, laid out: ``templates/chart.svg.j2`` draws it."""

    aria_label: str
    title: str
    width: float
    height: float
    left: float
    right: float
    base: float
    bar: float
    ticks: tuple[Tick, ...]
    bins: tuple[Bin, ...]
    rotate: bool


def chart(feature: FeatureDrift) -> Chart:
    """The feature's histogram laid out: per bin, a reference bar and a current bar
    side by side, on a percentage axis; labels turned by -45 degrees when too wide."""
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
    base = _TOP + _PLOT_H
    peak = max((max(ref, cur) for _, ref, cur, _ in bins), default=0.0)
    top, step = _scale(peak)
    ticks = round(top / step)
    laid_out = []
    for i, (full, ref, cur, merged) in enumerate(bins):
        x = left + i * slot + 3
        what = mdtext.one_line(full) + (f" ({merged} bins)" if merged > 1 else "")
        cx = x + bar
        # a rotated label's anchor (cx, y) is turned by +45 degrees: its group turns -45
        y = base + 12
        label_x, label_y = (
            ((cx - y) * _SQRT_HALF, (cx + y) * _SQRT_HALF) if rotate else (cx, base + 15)
        )
        laid_out.append(
            Bin(
                tip=f"{what}: reference {fmt.pct(ref)}, current {fmt.pct(cur)}",
                x=x,
                reference=_PLOT_H * ref / top,
                current=_PLOT_H * cur / top,
                label=shorts[i],
                label_x=label_x,
                label_y=label_y,
                label_tip=what if shorts[i] != full or merged > 1 else None,
            )
        )
    name = mdtext.one_line(feature.name)
    return Chart(
        aria_label=f"{name}: reference vs current share of rows in {len(bins)} bins; "
        f"{feature.statistic} {fmt.num(feature.value)}, "
        f"{'drift' if feature.breach else 'no drift'}",
        title=f"Distribution of {name}: reference vs current",
        width=width,
        height=_TOP + _PLOT_H + bottom,
        left=left,
        right=width - _RIGHT,
        base=base,
        bar=bar,
        ticks=tuple(Tick(base - _PLOT_H * k / ticks, fmt.pct(k * step)) for k in range(ticks + 1)),
        bins=tuple(laid_out),
        rotate=rotate,
    )
