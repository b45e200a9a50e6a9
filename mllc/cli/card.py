"""``mllc card`` and ``mllc lineage``: the commands (kept out of ``app.py`` to keep that
module short). Each calls one function of :mod:`mllc.api` and prints what it returns;
the API loads the operation only when the command runs."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mllc import api


def card(
    ref: Annotated[
        str, typer.Argument(help="NAME (its newest registered version) or NAME@vX.Y.Z.")
    ],
    fmt: Annotated[str, typer.Option("--format", help="md (default) or html.")] = "md",
    out: Annotated[
        str | None, typer.Option("--out", help="Write the card to this file (default: stdout).")
    ] = None,
) -> None:
    """A version's model card from recorded evidence: purpose, data, training, evaluation,
    deployments, monitoring, verification and lineage. Loads no model."""
    text = api.card(ref, fmt)
    if out:
        api.write_text(out, text)
    else:
        sys.stdout.write(text)


def lineage(
    ref: Annotated[str, typer.Argument(help="NAME@vX.Y.Z.")],
    fmt: Annotated[str, typer.Option("--format", help="text (default), mermaid or json.")] = (
        "text"
    ),
) -> None:
    """A version's path from data files through the stages to the model and the
    environments that ran it, with the md5 dvc.lock records for every file."""
    sys.stdout.write(api.lineage(ref, fmt))
