"""The building blocks of a rendered card: sections of paragraphs, ``label: value``
facts, tables and the lineage diagram, with every value already formatted as text. Both
renderers (Markdown and HTML, :mod:`mllc.card.render`) draw the same blocks."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from mllc import mdtext

Segment = mdtext.Segment
NOTHING = "Nothing is recorded."


@dataclass(frozen=True)
class Para:
    segments: tuple[Segment, ...]
    kind: str = "para"


@dataclass(frozen=True)
class Facts:
    """``label: value`` lines."""

    items: tuple[tuple[str, tuple[Segment, ...]], ...]
    kind: str = "facts"


@dataclass(frozen=True)
class Table:
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: tuple[bool, ...] = ()  # right-aligned (numeric) columns
    kind: str = "table"


@dataclass(frozen=True)
class Diagram:
    mermaid: str
    text: str
    kind: str = "diagram"


Block = Para | Facts | Table | Diagram


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------------- values


def num(value: Any) -> str:
    """A recorded number as it is recorded (shortest exact form), ``n/a`` for null."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "n/a"
    return str(value)


def derived(value: float) -> str:
    """A number computed from recorded rows (a residual summary): 6 significant digits."""
    return f"{value:.6g}"


def txt(text: str) -> Segment:
    return ("text", text)


def code(text: str) -> Segment:
    return ("code", text)


def strong(text: str) -> Segment:
    return ("strong", text)


def short(md5: str | None, n: int = 12) -> str:
    return md5[:n] if md5 else "not recorded"


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)
