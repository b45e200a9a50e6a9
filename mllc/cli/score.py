"""``mllc score``: the command (kept out of ``app.py`` to keep that module short)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mllc import api


def score(
    name: Annotated[str, typer.Argument(help="The lifecycle.")],
    data: Annotated[str, typer.Option("--data", help="The input: a CSV or Parquet file or URL.")],
    out: Annotated[str, typer.Option("--out", help="Where to write: a .csv or .parquet file.")],
    env: Annotated[
        str | None, typer.Option("--env", help="Score with the version this environment runs.")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Score with this version (vX.Y.Z).")
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id", help="An input column to copy into the output as each row's id."),
    ] = None,
    chunk_rows: Annotated[
        int | None, typer.Option("--chunk-rows", help="Rows read and scored at a time.")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="local: score here; dask: score each chunk on a Dask cluster's workers "
            "(pip install 'mllc[dask]'; docs/compute.md).",
        ),
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="With --backend dask: env:NAME, the environment variable holding the "
            "scheduler's address (as the spec's compute.scheduler); without it, a local "
            "cluster.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="The local cluster's worker processes (default: cores)."),
    ] = None,
) -> None:
    """Predictions (and each class's probability) for every row of a file, read in chunks
    (constant memory); rows the model cannot take are counted and left out. Loads the
    registered model after checking its hash."""
    result = api.score(
        name,
        data,
        out,
        env=env,
        version=version,
        id_column=id_column,
        chunk_rows=chunk_rows,
        progress=lambda line: print(line, file=sys.stderr),
        backend=backend,
        scheduler=scheduler,
        workers=workers,
    )
    lines = [
        f"scored {result.rows_scored:,} of {result.rows_in:,} rows of {result.source} with "
        f"{result.name}@{result.version} (model md5 {result.model_md5[:12]}) into "
        f"{result.out} in {result.seconds:.1f} s"
    ]
    if result.rows_bad:
        lines.append(f"{result.rows_bad:,} bad row(s) left out, e.g.:")
        lines += [f"  {example}" for example in result.bad_examples]
    print("\n".join(lines), file=sys.stderr)
