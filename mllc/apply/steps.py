"""What apply does, decided before anything is done: a plan becomes an ordered list of
:class:`Step` values. Pure: no disk, no Git, no DVC (tested without any).

Per lifecycle with changes, in this order (each step idempotent, so a rerun after a
crash converges; each journaled under its ``name``):

1. ``files``     write the generated files (each atomically) — or, for a removed
                 spec, delete its pipeline folder (``delete-lifecycle``);
2. ``data``      version the sources that changed (``dvc add`` or Git);
3. ``feedback``  add each breaching labelled batch to the training data;
4. ``pipeline``  ``dvc repro``: DVC reruns exactly the stale stages;
5. ``push``      ``dvc push`` of the pipeline's outputs and the data pointers to the
                 default DVC remote, BEFORE the commit and the tag, so that no commit
                 or tag names data only this machine has — before every lifecycle
                 commit, since an earlier apply may have stopped after its pipeline
                 (the runner skips it, unjournaled, when no remote is configured;
                 docs/remote.md);
6. ``commit``    commit the spec, the generated files, dvc.lock and the small
                 uncached outputs, so that the commit pins the model's hash; when a
                 ``register`` step follows, the runner first writes the new version's
                 model card (``pipelines/<name>/card.md``, :mod:`mllc.card`) so that
                 it is in the commit the version's tag points at;
7. ``register``  tag that commit ``<name>@vX.Y.Z`` when its model hash is new;
8. ``deploy``    each environment whose deployment changes.

The repository's own files (the CI workflow) ride along with the first lifecycle
applied — written in its files step, committed in its commit — or get steps of their
own when no lifecycle changes. :mod:`mllc.apply.run` carries the steps out under the
lock and the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mllc.compile.desired import Desired
from mllc.layout import Layout
from mllc.plan.model import REPOSITORY, Change, Planned

StepKind = Literal[
    "begin", "delete-lifecycle", "files", "data", "feedback", "pipeline", "push", "commit",
    "register", "deploy",
]  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One thing apply does. ``name`` is its journal entry (``iris/deploy/staging``);
    ``begin`` opens a lifecycle and is not journaled."""

    kind: StepKind
    lifecycle: str
    name: str = ""
    with_repository: bool = False  # files/commit: the repository's files ride along
    # commit: what it commits; the runner adds the sources' pointers (which it finds on
    # disk) and, with ``with_repository``, the repository's files
    paths: tuple[str, ...] = ()
    message: str = ""  # commit: its message
    batch: str = ""  # feedback: the labelled batch under monitoring/
    target: str = ""  # feedback: where it joins the training data
    stage: str | None = None  # pipeline: ``--target`` named one stage
    environment: str = ""  # deploy
    action: str = ""  # deploy: the change's action (create, update, delete)


def commit_paths(want: Desired) -> tuple[str, ...]:
    """The spec, the pipeline folder and the latest monitoring reports (never a batch:
    one committed by a monitoring pull request is committed again only as removed)."""
    layout = Layout(want.name)
    folder = layout.root.as_posix()
    reports: list[str] = []
    if want.lifecycle.monitoring is not None:
        for env in want.lifecycle.environments:
            base = layout.monitoring_dir(env).as_posix()
            reports += [f"{base}/report.json", f"{base}/report.md", f"{base}/report.html"]
            reports += [f"{base}/batch.parquet", f"{base}/batch.parquet.dvc"]
    return (want.spec_file, folder, *reports)


def _categories(changes: Sequence[Change]) -> str:
    return ", ".join(sorted({c.category for c in changes}))


def _stage(target: str | None) -> str | None:
    """The one stage ``--target`` names (``iris/stage/train@forest``), if any."""
    return target.split("/stage/", 1)[1] if target and "/stage/" in target else None


def _lifecycle_steps(
    want: Desired, changes: Sequence[Change], target: str | None, ride: bool
) -> list[Step]:
    name = want.name
    steps = [Step("begin", name), Step("files", name, f"{name}/files", with_repository=ride)]
    if any(c.address == f"{name}/data/source" for c in changes):
        steps.append(Step("data", name, f"{name}/data"))
    steps += [
        Step("feedback", name, f"{name}/feedback", batch=str(c.before), target=str(c.after))
        for c in changes
        if c.kind == "data" and c.address != f"{name}/data/source"
    ]
    if any(c.kind == "stage" for c in changes):
        steps.append(Step("pipeline", name, f"{name}/pipeline", stage=_stage(target)))
    steps.append(Step("push", name, f"{name}/push"))
    steps.append(
        Step(
            "commit",
            name,
            f"{name}/commit",
            with_repository=ride,
            paths=commit_paths(want),
            message=f"mllc apply: {name} ({_categories(changes)})",
        )
    )
    if any(c.kind == "model" for c in changes):
        steps.append(Step("register", name, f"{name}/register"))
    steps += [
        Step(
            "deploy",
            name,
            f"{name}/deploy/{env}",
            environment=env,
            action=c.action,
        )
        for c in changes
        if c.kind == "deployment"
        for env in [c.address.rsplit("/", 1)[1]]
    ]
    return steps


def plan_steps(planned: Planned) -> list[Step]:
    """Every step that carries out ``planned``, in order."""
    plan = planned.plan
    by_name = {d.name: d for d in planned.desired}
    pending = any(c.lifecycle == REPOSITORY for c in plan.changes)  # the workflow changes
    steps: list[Step] = []
    for name in [n for n in plan.lifecycles if n != REPOSITORY]:
        changes = [c for c in plan.changes if c.lifecycle == name and c.action != "no-op"]
        if not changes:
            continue
        if any(c.kind == "lifecycle" and c.action == "delete" for c in changes):
            steps += [
                Step("begin", name),
                Step("delete-lifecycle", name, f"{name}/files"),
                Step(
                    "commit",
                    name,
                    f"{name}/commit",
                    paths=(Layout(name).root.as_posix(), Layout(name).deploy.as_posix()),
                    message=f"mllc apply: remove lifecycle {name}",
                ),
            ]
            continue
        steps += _lifecycle_steps(by_name[name], changes, plan.target, pending)
        pending = False  # written and committed with this lifecycle
    if pending:  # no lifecycle to ride with
        steps += [
            Step("begin", REPOSITORY),
            Step("files", REPOSITORY, f"{REPOSITORY}/files", with_repository=True),
            Step(
                "commit",
                REPOSITORY,
                f"{REPOSITORY}/commit",
                with_repository=True,
                message="mllc apply: CI workflow",
            ),
        ]
    return steps
