"""``mllc preview``: the command (kept out of ``app.py`` to keep that module short).

Imports inside the command for start-up, as in ``app.py``: ``mllc validate`` must not
load the preview's models and renderers.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mllc.cli.base import PlanFormat, SpecPaths
from mllc.errors import EXIT_CHANGES, EXIT_ERROR, MllcError

WARNING = (
    "mllc preview RUNS the specs' training code (like apply), in an isolated worktree: "
    "nothing is committed, registered or deployed."
)


def preview(
    paths: SpecPaths = None,
    fmt: Annotated[
        PlanFormat,
        typer.Option(
            "--format",
            help="text for people, json for machines, markdown for a pull-request comment.",
        ),
    ] = PlanFormat.text,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Stop the preview (and every stage) after SECONDS."),
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 2 when a new version would be registered (and nothing fails).",
        ),
    ] = False,
) -> None:
    """Run what the plan would retrain, in an isolated worktree, and show the metrics, gates
    and where the new version would be deployed. Exit 1 when a gate would fail."""
    from mllc import api
    from mllc.preview.render import markdown, text, to_json

    if timeout is not None and timeout <= 0:
        raise MllcError("--timeout must be a positive number of seconds")
    print(WARNING, file=sys.stderr)
    result = api.preview(
        paths or ["specs"], timeout=timeout, progress=lambda line: print(line, file=sys.stderr)
    )
    if fmt is PlanFormat.json:
        sys.stdout.write(to_json(result))
    elif fmt is PlanFormat.markdown:
        sys.stdout.write(markdown(result))
    else:
        sys.stdout.write(text(result))
    sys.stdout.flush()
    if result.failed:
        for p in result.failed:
            failed = "; ".join(g.text for g in p.gates if not g.passed)
            print(
                f"error: {p.name}: the retrained model fails its gates: {failed}", file=sys.stderr
            )
        raise typer.Exit(EXIT_ERROR)
    if detailed_exitcode and result.registers:
        raise typer.Exit(EXIT_CHANGES)
