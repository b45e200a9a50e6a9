"""Deployment targets, and which version each environment should run.

``resolve`` turns an environment's ``model`` (``latest`` or a pinned
``vX.Y.Z``) into a registered version, or says what blocks it. The targets
(:mod:`mllc.targets.local`, :mod:`mllc.targets.kubernetes`) report what they run
and change it; they know nothing about specs beyond their own settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mllc.gates import GateResult, evaluate
from mllc.observe.types import RegisteredVersion
from mllc.registry.semver import sort_key


@dataclass(frozen=True)
class Resolution:
    """The version an environment should run, or why none can."""

    environment: str
    version: RegisteredVersion | None
    reason: str
    blocked: str | None = None  # set when the spec asks for something that cannot run
    gates: tuple[GateResult, ...] = ()


def _test_metrics(version: RegisteredVersion) -> Mapping[str, Any]:
    test = version.metrics.get("test") if isinstance(version.metrics, dict) else None
    return test if isinstance(test, dict) else {}


def resolve(
    environment: str,
    model: str,
    versions: Sequence[RegisteredVersion],
    gates: Sequence[str],
) -> Resolution:
    """``latest``: the newest version that passes every gate; else the pinned version."""
    ordered = sorted(versions, key=lambda v: sort_key(v.version))
    if model == "latest":
        if not ordered:
            return Resolution(environment, None, "no version registered yet")
        for version in reversed(ordered):
            results = tuple(evaluate(gates, _test_metrics(version)))
            if all(r.passed for r in results):
                skipped = [v.version for v in ordered[ordered.index(version) + 1 :]]
                why = "latest version passing the gates"
                if skipped:
                    why += f" ({', '.join(skipped)} fail them)"
                return Resolution(environment, version, why, gates=results)
        newest = ordered[-1]
        failing = [r.text() for r in evaluate(gates, _test_metrics(newest)) if not r.passed]
        return Resolution(
            environment,
            None,
            f"no registered version passes the gates; {newest.version}: {'; '.join(failing)}",
        )
    pinned = next((v for v in ordered if v.version == model), None)
    if pinned is None:
        known = ", ".join(v.version for v in ordered) or "none"
        return Resolution(
            environment, None, "", blocked=f"{model} is not registered (registered: {known})"
        )
    results = tuple(evaluate(gates, _test_metrics(pinned)))
    failed = [r.text() for r in results if not r.passed]
    if failed:
        return Resolution(
            environment,
            pinned,
            "",
            blocked=f"{model} fails its gates: {'; '.join(failed)}",
            gates=results,
        )
    return Resolution(environment, pinned, f"pinned to {model}", gates=results)
