"""``mllc card``: a registered version's model card, built only from recorded evidence.

Read-only: the registry's tags, the version commit's files, the outputs the DVC cache
keeps, the monitoring reports and the verification record (:mod:`mllc.card`). No model
is loaded and no code from a spec runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mllc.card import CardError, card_of, html, markdown

CardFormat = Literal["md", "html"]


def card(root: Path, ref: str, fmt: str = "md") -> str:
    """The card of ``ref`` (``NAME`` for its newest version, or ``NAME@vX.Y.Z``)."""
    if fmt not in ("md", "html"):
        raise CardError(f"--format must be md or html, not {fmt!r}")
    found = card_of(root, ref)
    return markdown(found) if fmt == "md" else html(found)
