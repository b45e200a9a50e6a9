"""Apply's side of a rollout: carry out :func:`mllc.policy.rollout.decide` for one
environment, one step per apply.

Order: the registry tag first (the intent), then the target. A kill between the two
leaves the registry ahead of the target: the next apply's decision is ``converge``
(redeploy the recorded step, no advance), or, for a completion or a rollback whose
end tag is written, a plain deploy of the version the registry now says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mllc.apply.dvc import ApplyFailed, Progress
from mllc.compile.desired import Desired
from mllc.policy.promotion import History, Resolution
from mllc.policy.rollout import Decision, decide_environment, events
from mllc.registry import rollouts
from mllc.targets.base import Target
from mllc.types import RegisteredVersion, RolloutStep

# (want, env, version, step) -> the rendered files, written and committed
Render = Callable[[Desired, str, RegisteredVersion, RolloutStep | None], list[str]]


def decision(
    root: Path,
    want: Desired,
    env: str,
    res: Resolution,
    versions: Sequence[RegisteredVersion],
    target: Target,
    history: History,
) -> Decision:
    """``env``'s rollout decision with the registry's ``history`` (the apply's read, rollout
    stages included: only this environment's deploy step writes its rollout's tags) and
    the target as it is now."""
    rollout = want.lifecycle.environments[env].rollout
    if rollout is None and not events(history, env):
        return Decision(env, "nothing")  # never had one: no need to ask the target
    observed = target.observe(root, want.spec, env).rollout
    return decide_environment(env, rollout, res, versions, history, observed)


def _version(by_version: Mapping[str, RegisteredVersion], name: str | None) -> RegisteredVersion:
    found = by_version.get(name or "")
    if found is None:
        raise ApplyFailed(f"the rollout names {name or 'no version'}, which is not registered")
    return found


def in_message(step: RolloutStep) -> str:
    """What a step's commit message adds to "deploy <name> <version> to <env>" (with
    GitOps the commit is the step: Argo CD's history and a revert name it)."""
    if step.weight == 0:
        return f" (canary {step.candidate.version} rolled back, {step.rollout_id})"
    where = f"canary step {step.step}/{step.of}, {step.rollout_id}"
    return f" at {step.weight}% beside {step.stable.version} ({where})"


def carry_out(
    root: Path,
    want: Desired,
    env: str,
    d: Decision,
    versions: Sequence[RegisteredVersion],
    target: Target,
    render: Render,
    progress: Progress,
) -> dict[str, Any]:
    """Do what ``d`` says (not ``nothing``); what the journal records of it."""
    name, spec = want.name, want.spec
    by_version = {v.version: v for v in versions}
    progress(f"    {d.text}")
    record: dict[str, Any] = {"rollout": {"action": d.action, "text": d.text, **d.event()}}
    if d.action == "wait" or (d.action == "hold" and d.recorded):
        return record
    candidate = _version(by_version, d.candidate)
    if d.action == "hold":
        held = rollouts.record(root, name, candidate.version, env, d.strategy, d.event())
        return {**record, "tag": held.tag}
    if d.action in ("start", "advance", "converge"):
        stable = _version(by_version, d.stable)
        tag = d.rollout_id or ""
        if d.action != "converge":  # intent first: the tag names the step
            tag = rollouts.record(root, name, candidate.version, env, d.strategy, d.event()).tag
        step = RolloutStep(d.strategy, stable, candidate, d.weight or 0, tag, d.step, d.of)
        target.publish(root, spec, env, candidate, progress)
        files = render(want, env, candidate, step)
        done = target.deploy(root, spec, env, candidate, files, progress, step=step)
        return {**record, "tag": tag, **done}
    if d.action == "complete":
        assigned, ended = rollouts.complete(
            root, name, candidate.version, env, d.strategy, d.event()
        )
        runs = candidate
        tags = [assigned.tag, ended.tag]
    else:  # rollback, abort: the stable version alone
        ended = rollouts.record(
            root, name, candidate.version, env, d.strategy, d.event(), unassign=True
        )
        runs = _version(by_version, d.stable)
        tags = [ended.tag]
        if d.strategy == "canary" and (d.weight_from or 0) < 100:
            # The candidate's share to 0, not the stable version's plain files: KServe then
            # pins every request to the stable revision it kept, where a plain manifest
            # would send them to the newest ready revision (the candidate's) until the
            # stable one restarts. The local target runs the stable version alone. (At
            # 100% KServe counts the candidate as rolled out: the plain files it is.)
            back = RolloutStep(d.strategy, runs, candidate, 0, ended.tag, d.step, d.of)
            target.publish(root, spec, env, runs, progress)
            files = render(want, env, runs, back)
            done = target.deploy(root, spec, env, runs, files, progress, step=back)
            return {**record, "tags": tags, **done}
    target.publish(root, spec, env, runs, progress)
    files = render(want, env, runs, None)
    done = target.deploy(root, spec, env, runs, files, progress)
    return {**record, "tags": tags, **done}
