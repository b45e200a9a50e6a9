"""Plan: compile the specs, observe the world, diff, and bind the plan to what it saw.

``make_plan`` runs no spec code and loads no model: it reads specs, generated
files, DVC locks, file hashes and Git tags. Safe on any pull request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mllc import __version__
from mllc.errors import MllcError
from mllc.observe.types import RegisteredVersion
from mllc.plan.diff import Desired, Orphan, diff_lifecycle, diff_orphan
from mllc.plan.model import Binding, Change, Plan, summarize
from mllc.targets import Resolution, promotion_rules, resolve


@dataclass(frozen=True)
class Planned:
    """A plan with what apply needs to carry it out (not part of the JSON contract)."""

    plan: Plan
    desired: tuple[Desired, ...]
    orphans: tuple[Orphan, ...]


def _desired(root: Path, paths: Sequence[str]) -> tuple[list[Desired], dict[str, str]]:
    from mllc.api import load_specs, relative_path
    from mllc.compile import compile_spec, lifecycle_document
    from mllc.spec.load import discover

    desired, texts = [], {}
    folders = [p for p in paths if Path(p).is_dir()]
    if folders == list(paths) and not any(discover(paths)[0]):
        return [], {}  # every spec removed: plan the deletions, not an error
    if list(paths) == ["specs"] and not Path("specs").exists() and (root / "pipelines").is_dir():
        return [], {}  # the default folder went with its last spec (git rm)
    for file, spec in load_specs(paths):
        source = relative_path(file, root)
        texts[source] = (root / source).read_text(encoding="utf-8")
        bundle = compile_spec(spec, source)
        desired.append(
            Desired(
                name=spec.metadata.name,
                spec_file=source,
                files=dict(bundle.items()),
                lifecycle=lifecycle_document(spec),
                spec=spec,
            )
        )
    return desired, texts


def resolve_all(
    root: Path, want: Desired, versions: Sequence[RegisteredVersion]
) -> dict[str, Resolution]:
    """The version each environment of ``want`` should run, given the registry now."""
    gates = list(want.lifecycle.get("gates") or [])
    envs = want.lifecycle.get("environments") or {}
    metric = want.spec.problem.metric if want.spec is not None else ""
    return {
        env: resolve(
            env,
            str(cfg.get("model", "latest")),
            versions,
            gates,
            promotion_rules(root, want.name, cfg, env, versions, metric),
        )
        for env, cfg in envs.items()
    }


def with_manifests(want: Desired, resolutions: dict[str, Resolution]) -> Desired:
    """Add the Kubernetes manifests of each resolved kubernetes environment to the files."""
    envs = want.lifecycle.get("environments") or {}
    kube = [e for e, cfg in envs.items() if cfg.get("target") == "kubernetes"]
    if want.spec is None or not kube:
        return want
    from mllc.targets.kubernetes import render

    files = dict(want.files)
    for env in kube:
        res = resolutions.get(env)
        if res is not None and res.version is not None and not res.blocked:
            files.update(render(want.spec, env, res.version, want.spec_file))
    return replace(want, files=files)


def _targeted(changes: list[Change], target: str) -> list[Change]:
    return [c for c in changes if c.address == target or c.address.startswith(target + "/")]


def make_plan(root: Path, paths: Sequence[str], target: str | None = None) -> Planned:
    from mllc.observe.world import (
        binding,
        find_orphans,
        new_hasher,
        observe_lifecycle,
        uncommitted_paths,
    )
    from mllc.registry import list_versions, next_version

    desired, spec_texts = _desired(root, paths)
    versions = list_versions(root)
    deployments: dict[str, str | None] = {}
    pending = uncommitted_paths(root)
    hasher = new_hasher(root)
    changes: list[Change] = []
    for i, want in enumerate(desired):
        resolutions = resolve_all(root, want, [v for v in versions if v.name == want.name])
        want = desired[i] = with_manifests(want, resolutions)
        actual = observe_lifecycle(root, want, versions, hasher, pending)
        upcoming = next_version([v.version for v in actual.versions])
        changes += diff_lifecycle(want, actual, upcoming, resolutions)
        deployments.update(
            {f"{d.lifecycle}/{d.environment}": d.version for d in actual.deployments}
        )
    hasher.save()
    orphans = find_orphans(root, {d.name for d in desired})
    for orphan in orphans:
        changes += diff_orphan(orphan)
    warnings: list[str] = []
    if target is not None:
        if not any(c.address.split("/")[0] == target.split("/")[0] for c in changes) and not any(
            d.name == target.split("/")[0] for d in desired
        ):
            raise MllcError(f"--target {target!r} names no lifecycle")
        changes = _targeted(changes, target)
        warnings.append(
            f"resource targeting is in effect (--target {target}): the plan may be "
            "incomplete; use it for exceptional cases only"
        )
    bound: Binding = binding(root, spec_texts, desired, orphans, versions).model_copy(
        update={"deployments": dict(sorted(deployments.items()))}
    )
    plan = Plan(
        mllc_version=__version__,
        lifecycles=tuple(sorted({d.name for d in desired} | {o.name for o in orphans})),
        changes=tuple(changes),
        summary=summarize(changes),
        warnings=tuple(warnings),
        binding=bound,
        target=target,
    )
    return Planned(plan, tuple(desired), tuple(orphans))


def stale_reasons(saved: Binding, now: Binding) -> list[str]:
    """What changed between a saved plan's binding and the world now."""
    reasons = []
    if saved.git_commit != now.git_commit:
        reasons.append(f"Git commit {saved.git_commit} → {now.git_commit}")
    for label, old, new in (
        ("spec", saved.specs, now.specs),
        ("generated file", saved.files, now.files),
        ("dvc.lock", saved.locks, now.locks),
        ("registry tag", saved.registry, now.registry),
        ("deployment", saved.deployments, now.deployments),
    ):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                what = "added" if key not in old else "removed" if key not in new else "changed"
                reasons.append(f"{label} {key} {what}")
    return reasons
