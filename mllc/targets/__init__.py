"""Deployment targets, by the name the spec gives them (``environments.<env>.target``).

:data:`TARGETS` is the only place that names them: observation, the plan and apply ask
:func:`target_for` and talk to the :class:`~mllc.targets.base.Target` it returns.
"""

from __future__ import annotations

from mllc.errors import MllcError
from mllc.targets.base import Target
from mllc.targets.kubernetes import KubernetesTarget
from mllc.targets.local import LocalTarget

__all__ = ["TARGETS", "Target", "target_for"]

TARGETS: dict[str, Target] = {"local": LocalTarget(), "kubernetes": KubernetesTarget()}


def target_for(name: str) -> Target:
    """The target called ``name``; MllcError naming the known ones for any other name."""
    target = TARGETS.get(name)
    if target is None:
        raise MllcError(f"no deployment target {name!r} (known: {', '.join(TARGETS)})")
    return target
