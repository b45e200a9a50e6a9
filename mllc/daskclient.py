"""A ``distributed.Client`` for one run: the training stages' and ``mllc score``'s way to Dask.

:func:`client` connects to the scheduler whose address the environment variable of an
``env:NAME`` reference holds, or, without one, starts a ``LocalCluster`` of worker
processes on 127.0.0.1 for the run; either way everything is closed when the block
ends (a killed stage takes its local cluster with it: Dask's worker processes exit
when their parent does). Every failure is a :class:`ComputeError` of one line: Dask
not installed (naming the extra), the variable unset, the scheduler unreachable
within the connect timeout, no worker joining, or workers whose libraries differ
from this machine's (the same model needs the same scikit-learn, NumPy, SciPy,
pandas and joblib). Dask is imported only here, only when a run asks for it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from mllc.errors import MllcError

DASK_EXTRA = "pip install 'mllc[dask]'"
# Seconds to reach the scheduler, and for a first worker to join it.
CONNECT_TIMEOUT = 20.0
TIMEOUT_ENV = "MLLC_DASK_CONNECT_TIMEOUT"
# What decides a fitted model's bytes: a worker must have the versions this machine has.
MODEL_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib")


class ComputeError(MllcError):
    message = "cannot run on Dask"


def connect_timeout() -> float:
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(text) if text else CONNECT_TIMEOUT
    except ValueError:
        raise ComputeError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise ComputeError(f"{TIMEOUT_ENV}={text!r}: give seconds between 0 and 3600")
    return value


def address_of(scheduler: str | None, given_as: str = "compute.scheduler") -> str | None:
    """The address an ``env:NAME`` reference names (None: no reference, a local cluster).
    ``given_as`` names where the reference came from, in the error."""
    if scheduler is None:
        return None
    variable = scheduler.removeprefix("env:")
    address = os.environ.get(variable, "").strip()
    if not address:
        raise ComputeError(
            f"{given_as} is {scheduler}, but ${variable} is not set: export the Dask "
            f"scheduler's address in it (e.g. {variable}=tcp://scheduler:8786), or drop "
            f"{given_as} to use a local cluster"
        )
    return address


def require_dask(what: str) -> None:
    """A ComputeError naming the extra when Dask is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ComputeError(
            f"{what} runs on Dask, which is not installed here: {DASK_EXTRA}"
        ) from None


@contextlib.contextmanager
def client(
    scheduler: str | None,
    workers: int | None,
    what: str,
    packages: Sequence[str] = MODEL_PACKAGES,
    given_as: str = "compute.scheduler",
) -> Iterator[Any]:
    """A connected ``distributed.Client`` for the block, with at least one worker.

    ``scheduler``: an ``env:NAME`` reference, or None for a local cluster of ``workers``
    processes (default: one per core), one thread each, on 127.0.0.1. ``what`` names the
    run in errors. ``packages`` must have this machine's versions on every worker.
    """
    require_dask(what)
    import distributed

    address = address_of(scheduler, given_as)
    timeout = connect_timeout()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet())
        target: Any = address
        if address is None:
            try:
                target = stack.enter_context(
                    distributed.LocalCluster(  # type: ignore[no-untyped-call]
                        host="127.0.0.1",
                        n_workers=workers or os.cpu_count() or 1,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        # its HTTP routes (health, metrics) on a free port of 127.0.0.1,
                        # never a fixed one another cluster may hold
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR,
                    )
                )
            except Exception as exc:  # a cluster that cannot start says why, in one line
                raise ComputeError(
                    f"{what}: cannot start a local Dask cluster: {_brief(exc)}"
                ) from None
        where = "the local Dask cluster" if address is None else f"the Dask scheduler {address}"
        if scheduler is not None:
            where += f" (from ${scheduler.removeprefix('env:')})"
        try:
            connected = distributed.Client(  # type: ignore[no-untyped-call]
                target, timeout=timeout, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            raise ComputeError(
                f"{what}: cannot reach {where} within {timeout:g} s: {_brief(exc)}"
            ) from None
        stack.callback(connected.close)
        try:
            connected.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise ComputeError(
                f"{what}: {where} has no worker (none joined within {timeout:g} s)"
            ) from None
        if address is not None:
            _check_versions(connected, packages, what)
        yield connected


def _check_versions(connected: Any, packages: Sequence[str], what: str) -> None:
    for package in packages:
        here = importlib.metadata.version(package)
        try:
            theirs = connected.run(importlib.metadata.version, package)
        except Exception as exc:  # a worker without the package raises in its own way
            raise ComputeError(
                f"{what}: a Dask worker cannot tell its {package} version ({_brief(exc)}): "
                f"the workers need {package} {here}, as here (docs/compute.md)"
            ) from None
        for worker, version in sorted(theirs.items()):
            if version != here:
                raise ComputeError(
                    f"{what}: the Dask worker {worker} has {package} {version}, this machine "
                    f"{here}: the workers need the same library versions (docs/compute.md)"
                )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Dask's own log lines (a worker joining, a client closing) kept off the stage's output."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _brief(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
