"""``mllc init``: the command (kept out of ``app.py`` to keep that module short)."""

from __future__ import annotations

from typing import Annotated

import typer

from mllc import api


def init(
    directory: Annotated[str, typer.Argument(help="The repository to scaffold.")] = ".",
    remote: Annotated[
        str | None,
        typer.Option(
            "--remote",
            help="A default DVC remote for data and models, e.g. s3://bucket/prefix "
            "(docs/remote.md); also in an existing repository.",
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            help="The S3 endpoint of a store that is not AWS (MinIO, Ceph, ...), "
            "e.g. https://minio.example:9000.",
        ),
    ] = None,
) -> None:
    """Scaffold a repository: specs/ with a commented example, Git and DVC where missing.

    Existing files are never overwritten. With --remote, configure DVC's default remote
    in .dvc/config (committed with the next apply; credentials never are).
    """
    for line in api.init(directory, remote=remote, endpoint_url=endpoint_url):
        print(line)
