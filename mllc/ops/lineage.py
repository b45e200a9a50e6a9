"""``mllc lineage``: the path from a version's data through its stages to the model and
the environments that ran it, from its commit's ``dvc.yaml``/``dvc.lock`` and the
registry. Read-only."""

from __future__ import annotations

import json
from pathlib import Path

from mllc.card import CardError, graph_of
from mllc.card.lineage import mermaid, text, to_json


def lineage(root: Path, ref: str, fmt: str = "text") -> str:
    """``ref`` is ``NAME@vX.Y.Z``; ``fmt`` text, mermaid or json."""
    if fmt not in ("text", "mermaid", "json"):
        raise CardError(f"--format must be text, mermaid or json, not {fmt!r}")
    graph = graph_of(root, ref)
    if fmt == "mermaid":
        return mermaid(graph)
    if fmt == "json":
        return json.dumps(to_json(graph), indent=2) + "\n"
    return text(graph)
