"""Numbers as the monitoring report's Markdown and HTML show them (see ``render``)."""

from __future__ import annotations


def num(value: float | None) -> str:
    """Three decimals; ``—`` for no value."""
    return "—" if value is None else f"{value:.3f}"


def p_value(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.0005 else f"{value:.3f}"


def pct(fraction: float) -> str:
    """A fraction in percent, one decimal: ``12.5%``."""
    return f"{fraction * 100:.1f}%"


def rows(n: int) -> str:
    """``1 row``, ``1,200 rows``."""
    return f"{n:,} row" if n == 1 else f"{n:,} rows"
