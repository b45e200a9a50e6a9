"""A rollout's records in the registry: GTO stage tags of its own stage.

A rollout of a new version in environment ``production`` lives in the stage
``production_canary`` (or ``production_shadow``): an underscore never appears in an
environment name (a DNS label), so it cannot clash with one, and GTO's name grammar
accepts it. Each started step is an assignment ``<name>#production_canary#N`` on the
candidate's commit (its tag name is the step's ``rollout_id``); a hold is another
assignment; the end (complete, rollback, abort) is an unassignment
``<name>#production_canary!#N``. Every message carries ``{"rollout": {"event": ...}}``.
Completion also assigns the candidate to the environment itself (:func:`complete`).

Unlike :func:`mllc.registry.store.assign`, these writes are never idempotent: a new step
of the same version is a new tag. The counter follows GTO's rule (one per artifact).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mllc import __version__, semver
from mllc.policy.rollout import STRATEGIES, stage_name
from mllc.registry.store import (
    RegistryError,
    _check_json,
    _check_name,
    assign,
    assignments,
    write_stage_tag,
)
from mllc.types import Assignment


def record(
    root: Path,
    name: str,
    version: str,
    env: str,
    strategy: str,
    event: Mapping[str, Any],
    unassign: bool = False,
) -> Assignment:
    """Tag one event of the rollout of ``version`` in ``env``: an assignment of its stage
    (a step, a hold) or with ``unassign`` its end (complete, rollback, abort). ``event``
    is the message's ``rollout`` object (``event``, ``step``, ``weight``, ``reason``...)."""
    _check_name(name)
    _check_name(env, "environment")
    if strategy not in STRATEGIES:
        raise RegistryError(f"invalid rollout strategy {strategy!r}: canary or shadow")
    if not semver.is_valid(version):
        raise RegistryError(f"invalid version {version!r}: expected vX.Y.Z")
    stage = stage_name(env, strategy)
    payload = {"mllc_version": __version__, "rollout": dict(event), "version": version}
    _check_json(payload, "the rollout record")
    return write_stage_tag(root, name, version, stage, payload, unassign=unassign)


def complete(
    root: Path, name: str, version: str, env: str, strategy: str, event: Mapping[str, Any]
) -> tuple[Assignment, Assignment]:
    """The candidate takes over: the environment's own assignment (idempotent, so a rerun
    after a kill between the two tags does not assign twice), then the rollout's end."""
    done = {**event, "event": "complete"}
    assigned = assign(root, name, version, env, {"rollout": done})
    ended = record(root, name, version, env, strategy, done, unassign=True)
    return assigned, ended


def history(root: Path, name: str, env: str) -> list[Assignment]:
    """The rollout events of ``env`` (both strategies' stages), oldest first."""
    every = assignments(root, name, rollouts=True)
    found = [a for s in STRATEGIES for a in every.get(stage_name(env, s), [])]
    return sorted(found, key=lambda a: a.counter or 0)
