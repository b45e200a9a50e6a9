"""The spec's ``compute`` section: where the training stages run their parallel work.

It sits outside the sections the stages declare as DVC params, so changing it never
retrains: the same seeds and folds give the same model on either backend (the model
files are the same bytes). :func:`describe` is the one wording of where training runs,
shared by the plan, the stages and ``mllc status``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from mllc.spec.fields import Strict

_ENV_REF = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$", re.ASCII)
DASK_EXTRA = "pip install 'mllc[dask]'"


def env_ref(value: str) -> str:
    if not _ENV_REF.fullmatch(value):
        raise ValueError(
            f"{value!r}: give the scheduler's address by reference, as 'env:NAME' (the "
            "environment variable that holds it at run time, e.g. env:MLLC_DASK_SCHEDULER)"
        )
    return value


EnvRef = Annotated[
    str,
    AfterValidator(env_ref),
    WithJsonSchema({"type": "string", "pattern": _ENV_REF.pattern}),
]


class Compute(Strict):
    """Where training's searches and cross-validation run. Not a stage param: changing it
    retrains nothing, and either backend gives the same model, byte for byte."""

    backend: Literal["local", "dask"] = Field(
        "local",
        description="local: in the stage's own process (or n_jobs processes of this "
        "machine); dask: on a Dask cluster through joblib's Dask backend (needs "
        f"{DASK_EXTRA}; docs/compute.md).",
    )
    scheduler: EnvRef | None = Field(
        None,
        description="dask only: the Dask scheduler's address by reference, 'env:NAME' (e.g. "
        "env:MLLC_DASK_SCHEDULER holding tcp://scheduler:8786), read when a stage runs. "
        "Without it, each stage starts a local Dask cluster on 127.0.0.1 and closes it.",
    )
    n_jobs: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="How many fits run at once. local: processes of this machine (default "
        "1); dask: tasks on the cluster (default: every worker thread), and the workers of "
        "a local cluster (default: one per core).",
    )

    @model_validator(mode="after")
    def _scheduler_needs_dask(self) -> Compute:
        if self.scheduler is not None and self.backend != "dask":
            raise ValueError("compute.scheduler is only used with backend: dask")
        return self


def describe(compute: Compute | None) -> str:
    """Where training runs, in a few words: ``local``, ``dask, scheduler from
    $MLLC_DASK_SCHEDULER`` or ``dask, a local cluster``."""
    if compute is None or compute.backend == "local":
        jobs = compute.n_jobs if compute is not None and compute.n_jobs else 1
        return "local" if jobs == 1 else f"local, {jobs} processes"
    if compute.scheduler is not None:
        return f"dask, scheduler from ${compute.scheduler.removeprefix('env:')}"
    return "dask, a local cluster"


def record(compute: Compute | None) -> dict[str, Any] | None:
    """What a registration's lineage says about where training ran (None: nothing set)."""
    if compute is None:
        return None
    return {**compute.model_dump(mode="json", exclude_none=True), "where": describe(compute)}
