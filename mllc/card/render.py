"""Render a :class:`~mllc.card.model.Card` as Markdown (for a pull request, or the
``card.md`` apply commits with a version) and as one self-contained HTML page.

Both render the same list of :class:`Section` values built by :func:`sections`, so the
two formats always say the same things. Everything that comes from a spec or from data
(descriptions, names, paths, labels, reasons) is escaped: in Markdown with
:mod:`mllc.mdtext` (no HTML, no table break, no link, mention or block syntax), in HTML
by the template's environment (autoescape, :func:`html.escape`'s entities, control
characters dropped). A section without evidence says plainly that nothing is recorded.
Pure and deterministic: the same card gives the same bytes.
"""

from __future__ import annotations

import re

from mllc import mdtext, pages
from mllc.card.blocks import Block, Facts, Para, Table
from mllc.card.model import Card
from mllc.card.sections import sections

# ----------------------------------------------------------------------- Markdown


_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[+-]?\d+)?|n/a")


def _md_cell(text: str) -> str:
    """A table cell: a number as it is (inline in a cell: no list syntax to guard
    against, and the value stays readable in the raw Markdown), anything else escaped."""
    if _NUMBER.fullmatch(text):
        return text
    return mdtext.escape(text) or " "


def _md_block(block: Block) -> list[str]:
    if isinstance(block, Para):
        return [mdtext.segments(block.segments)]
    if isinstance(block, Facts):
        return [f"- **{mdtext.escape(k)}:** {mdtext.segments(v)}" for k, v in block.items]
    if isinstance(block, Table):
        right = block.right or (False,) * len(block.head)
        return [
            "| " + " | ".join(mdtext.escape(h) for h in block.head) + " |",
            "| " + " | ".join("---:" if r else "---" for r in right) + " |",
            *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows),
        ]
    # the graph's labels are entity-escaped: no backtick can end the fence
    return ["```mermaid", block.mermaid.rstrip("\n"), "```"]


def markdown(card: Card) -> str:
    """The card in GitHub-flavoured Markdown (what apply commits as ``card.md``)."""
    out = [f"# Model card: {mdtext.code(f'{card.name}@{card.version}')}", ""]
    if card.at_apply:
        later = mdtext.code(f"mllc card {card.name}@{card.version}")
        out += [
            f"Written by mllc apply into the commit it tags; {later} shows its later history.",
            "",
        ]
    for section in sections(card):
        out += [f"## {mdtext.escape(section.title)}", ""]
        for block in section.blocks:
            out += [*_md_block(block), ""]
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- HTML

_ENV = pages.environment("mllc.card")


def html(card: Card) -> str:
    """The card as one self-contained HTML5 page (inline CSS, no script, no resource)."""
    return _ENV.get_template("card.html.j2").render(
        title=f"{card.name}@{card.version}",
        at_apply=card.at_apply,
        sections=sections(card),
    )
