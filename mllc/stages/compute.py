"""Where a stage's searches and cross-validation run: the spec's ``compute`` section.

``params.yaml`` holds ``compute`` when the spec sets it (no stage declares it as a DVC
param, so changing it makes nothing stale). :func:`parallel` gives the block the
``n_jobs`` to pass to scikit-learn and joblib: locally the spec's ``n_jobs`` (default
1, one process); on Dask every joblib call inside runs through joblib's Dask backend
under a ``distributed.Client`` (:mod:`mllc.daskclient`), closed when the block ends.
Either way the folds, seeds and the order results are gathered in are the same, so the
fitted model's bytes are too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pydantic import ValidationError

from mllc import daskclient
from mllc.spec.compute import Compute, describe
from mllc.stages.io import Params, StageError


def settings(params: Params) -> Compute | None:
    """The params file's ``compute`` section (None when the spec sets none)."""
    raw = params.raw.get("compute")
    if raw is None:
        return None
    try:
        return Compute.model_validate(raw, strict=False)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in ("compute", *first["loc"]))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise StageError(f"{params.layout.params}: {where}: {message}") from None


def where(params: Params) -> str:
    """Where this lifecycle's training runs, as the plan and status say it."""
    return describe(settings(params))


def check(params: Params, what: str) -> None:
    """Fail before any work when the spec asks for Dask and this machine cannot give it:
    the extra not installed, the scheduler's variable not set."""
    compute = settings(params)
    if compute is not None and compute.backend == "dask":
        daskclient.require_dask(what)
        daskclient.address_of(compute.scheduler)


@contextlib.contextmanager
def parallel(params: Params, what: str) -> Iterator[int]:
    """The ``n_jobs`` for the block's joblib work, on the backend the spec names."""
    compute = settings(params)
    if compute is None or compute.backend == "local":
        yield (compute.n_jobs or 1) if compute is not None else 1
        return
    import joblib

    with contextlib.ExitStack() as stack:
        client = stack.enter_context(daskclient.client(compute.scheduler, compute.n_jobs, what))
        stack.enter_context(client.as_current())
        stack.enter_context(joblib.parallel_config(backend="dask", client=client))
        yield compute.n_jobs or -1
