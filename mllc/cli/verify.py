"""``mllc verify``: the command (kept out of ``app.py`` to keep that module short).

Imports inside the command for start-up, as in ``app.py``: ``mllc validate`` must not
load verify's models and renderers.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mllc.errors import EXIT_ERROR, MllcError


def verify(
    versions: Annotated[
        list[str] | None,
        typer.Argument(
            help="NAME@vX.Y.Z (one version) or NAME (each of its versions).", show_default=False
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every registered version of every lifecycle.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Stop (and kill every stage) after SECONDS."),
    ] = None,
) -> None:
    """Rebuild registered versions from their tags (every stage recomputed, in an isolated
    worktree) and compare each output, the model's bytes, the DVC cache and the registry's
    records. Exit 0 when every version is bit-identical and as recorded, else 1."""
    from mllc import api
    from mllc.ops.verify import WARNING
    from mllc.verify.render import text, to_json

    if timeout is not None and timeout <= 0:
        raise MllcError("--timeout must be a positive number of seconds")
    print(WARNING, file=sys.stderr)
    report = api.verify(
        versions or [],
        every=every,
        timeout=timeout,
        progress=lambda line: print(line, file=sys.stderr),
    )
    sys.stdout.write(to_json(report) if as_json else text(report))
    sys.stdout.flush()
    if not report.verified:
        raise typer.Exit(EXIT_ERROR)
