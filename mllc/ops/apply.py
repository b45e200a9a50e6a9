"""Apply: carry out a plan (made now, or saved with ``mllc plan --out``).

A saved plan is checked twice against the world: before the lock (a clear
refusal, nothing done) and again under it (the world may have moved while
apply waited). Both checks are :func:`replan`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mllc.apply.dvc import ApplyFailed
from mllc.apply.run import ApplyResult
from mllc.apply.run import apply as run
from mllc.errors import MllcError
from mllc.ops.plan import make_plan
from mllc.plan.bind import stale_reasons
from mllc.plan.model import Plan, Planned


def replan(saved: Plan, root: Path) -> tuple[Planned, list[str]]:
    """The plan now, for the same specs and target, and what moved since ``saved``."""
    if saved.binding is None:
        raise MllcError("the saved plan records nothing it saw: save it with 'mllc plan --out'")
    now = make_plan(root, list(saved.binding.specs) or ["specs"], saved.target)
    assert now.plan.binding is not None
    return now, stale_reasons(saved.binding, now.plan.binding)


def check_saved_plan(saved: Plan, root: Path) -> Planned:
    """Plan again; refuse with every difference when the world moved since ``saved``."""
    now, reasons = replan(saved, root)
    if reasons:
        raise MllcError(
            "stale plan: the world changed since it was made; run 'mllc plan' again\n  "
            + "\n  ".join(reasons)
        )
    return now


def apply(
    root: Path,
    planned: Planned,
    progress: Callable[[str], None],
    lock_timeout: float | None = None,
    saved: bool = False,
) -> ApplyResult:
    """Carry out ``planned``; with ``saved``, check again under the lock that it is current."""

    def recheck() -> None:
        _, reasons = replan(planned.plan, root)
        if reasons:
            raise ApplyFailed(
                "stale plan: the world changed since it was made:\n  " + "\n  ".join(reasons)
            )

    return run(root, planned, progress, lock_timeout, recheck if saved else None)
