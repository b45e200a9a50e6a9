"""What a plan says about environments and monitoring: each environment's deployment
against what its target reports, and the breaches of the latest monitoring reports.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mllc.compile.desired import Desired
from mllc.layout import Layout
from mllc.observe.types import LifecycleActual
from mllc.plan.model import Change, RolloutChange
from mllc.plan.values import change_text, leaf_diff
from mllc.policy.promotion import Resolution
from mllc.policy.rollout import Decision
from mllc.types import DeploymentState


def deployment_changes(
    want: Desired,
    actual: LifecycleActual,
    old: Any,
    resolutions: Mapping[str, Resolution],
    pipeline_runs: bool,
    rollouts: Mapping[str, Decision] | None = None,
) -> Iterator[Change]:
    """Each environment: the version it should run against what its target reports, or
    the next step of its rollout (``rollouts``: :func:`mllc.policy.rollout.decide`)."""
    old_envs = (old.get("environments") if isinstance(old, dict) else None) or {}
    new_envs = want.lifecycle.document()["environments"]
    observed = {d.environment: d for d in actual.deployments}
    for env in dict.fromkeys([*new_envs, *old_envs, *observed]):  # each environment once
        address = f"{want.name}/deployment/{env}"
        dep = observed.get(env)
        running = dep.version if dep is not None and dep.healthy else None
        if env not in new_envs:
            if dep is None:
                continue
            if dep.gitops:
                folder = Layout(want.name).deploy_dir(env).as_posix()
                why = (
                    f"apply removes {folder}/ in a commit (with its Argo CD Application: "
                    "Argo CD deletes what it synced)"
                )
                before = dep.committed
            elif dep.version is not None and dep.target == "local":
                why, before = f"stop its server ({dep.detail})", dep.version
            else:
                continue
            yield Change(
                address=address,
                lifecycle=want.name,
                kind="deployment",
                action="delete",
                category="redeploy",
                reasons=(f"environment {env} was removed: {why}",),
                before=before,
            )
            continue
        cfg = new_envs[env]
        res = resolutions.get(env)
        reasons = [
            change_text(*d)
            for d in leaf_diff(old_envs.get(env), cfg, f"environments.{env}")
            if env in old_envs
        ]
        if res is not None and res.blocked:
            yield Change(
                address=address,
                lifecycle=want.name,
                kind="deployment",
                action="update" if running else "create",
                category="redeploy",
                reasons=(f"blocked: {res.blocked}", *reasons),
                before=running,
                blocking=True,
            )
            continue
        decision = (rollouts or {}).get(env)
        if decision is not None and decision.action != "nothing":
            yield _rollout_change(want, env, decision, running, reasons)
            continue
        wanted = res.version.version if res is not None and res.version is not None else None
        if dep is not None and dep.rollout is not None and dep.healthy:
            split = dep.rollout
            reasons.append(
                f"canary {split.candidate} rolled back ({split.rollout_id}) and {dep.version} "
                f"pinned, ready: now {wanted or dep.version} alone"
                if split.weight == 0  # a canary's rollback on Kubernetes (policy.rollout)
                else f"runs {split.strategy} {split.candidate} beside {dep.version} "
                f"({split.rollout_id}), which no rollout in the registry records: "
                f"{wanted or dep.version} alone"
            )
        after: tuple[str, ...] = ()
        if pipeline_runs and want.lifecycle.environments[env].model == "latest":
            after = (
                "the version: the new one if the pipeline registers one that passes the gates",
            )
        if dep is not None and dep.gitops:
            yield from _gitops_change(want, env, dep, res, reasons, after)
            continue
        if _gitops(old_envs.get(env)) and not _gitops(cfg):
            reasons.append(
                f"apply removes {Layout(want.name).deploy_dir(env).as_posix()}/application.yaml: "
                "should Argo CD delete that Application with its resources finalizer, it "
                "deletes what it synced too; delete it first without cascading "
                "(argocd app delete --cascade=false)"
            )
        if dep is not None and not dep.reachable:
            reasons.append(dep.detail)
        elif dep is not None and dep.version is not None and not dep.healthy:
            reasons.append(f"unhealthy: {dep.detail}")
        elif (
            dep is not None
            and wanted is not None
            and dep.model_md5
            and res is not None
            and res.version is not None
            and dep.model_md5 != res.version.model_md5
        ):
            reasons.append(f"serves model {dep.model_md5[:12]}, not {wanted}'s")
        if dep is not None and dep.healthy:  # every setting the server runs with, by name
            reasons += [line for line in dep.drift if line not in reasons]
        if wanted is None and not after:
            # Nothing deployable (nothing registered, or no version passes the gates):
            # whatever runs keeps running; `mllc status` says why nothing moves. But it
            # runs with the settings asked for: a token or a host must not wait for a version.
            if dep is not None and dep.healthy and dep.drift:
                yield Change(
                    address=address,
                    lifecycle=want.name,
                    kind="deployment",
                    action="update",
                    category="redeploy",
                    reasons=(f"{env} keeps {running} ({res.reason if res else 'nothing to deploy'})"
                             ", restarted with the spec's settings", *reasons),
                    before=running,
                    after=running,
                )  # fmt: skip
            continue
        if wanted is not None and wanted != running:
            reasons.insert(
                0,
                f"{env}: {running or 'nothing running'} → {wanted} ({res.reason})"
                if res is not None
                else f"{env}: → {wanted}",
            )
        if not reasons and not after:
            if res is not None and res.skipped:  # newer versions held back
                yield Change(
                    address=address,
                    lifecycle=want.name,
                    kind="deployment",
                    action="no-op",
                    category="redeploy",
                    reasons=(f"{env} stays on {running}: {res.reason}",),
                    before=running,
                    after=running,
                )
            continue
        yield Change(
            address=address,
            lifecycle=want.name,
            kind="deployment",
            action="create" if dep is None or dep.version is None else "update",
            category="redeploy",
            reasons=tuple(reasons)
            or (f"{env}: {running or 'nothing running'} → a version known after apply",),
            known_after_apply=after,
            before=running,
            after=wanted,
        )


def _rollout_change(
    want: Desired, env: str, d: Decision, running: str | None, reasons: list[str]
) -> Change:
    """A rollout's next step as a change of the environment (wait, held: a no-op)."""
    quiet = d.action == "wait" or (d.action == "hold" and d.recorded)
    after = d.stable if d.action in ("rollback", "abort") else d.candidate
    return Change(
        address=f"{want.name}/deployment/{env}",
        lifecycle=want.name,
        kind="deployment",
        action="no-op" if quiet else "update",
        category="redeploy",
        reasons=(d.text, *reasons),
        before=running,
        after=running if quiet else after,
        rollout=RolloutChange(
            decision=d.action,
            strategy=d.strategy,
            stable=d.stable,
            candidate=d.candidate,
            step=d.step,
            of=d.of,
            weight_from=d.weight_from,
            weight=d.weight,
            rollout_id=d.rollout_id,
            reason=d.reason,
            analysis=d.analysis.record() if d.analysis is not None else None,
        ),
    )


def _gitops(env: Any) -> bool:
    """An environment of a lifecycle record (a document) that syncs with GitOps."""
    k8s = env.get("kubernetes") if isinstance(env, dict) else None
    return isinstance(k8s, dict) and k8s.get("sync") == "gitops"


def _gitops_change(
    want: Desired,
    env: str,
    dep: DeploymentState,
    res: Resolution | None,
    reasons: list[str],
    after: tuple[str, ...],
) -> Iterator[Change]:
    """A GitOps environment (``kubernetes.sync: gitops``): apply changes only what Git
    commits; what the cluster does with it is Argo CD's to sync, and is shown, never acted
    on. The change: the manifests at HEAD against the desired ones."""
    address = f"{want.name}/deployment/{env}"
    folder = Layout(want.name).deploy_dir(env).as_posix()
    wanted = res.version.version if res is not None and res.version is not None else None
    desired = {p: t for p, t in want.files.items() if p.startswith(folder + "/")}
    committed = dict(dep.manifests)
    if after or (wanted is not None and desired != committed):
        if wanted is not None and wanted != dep.committed:
            why = res.reason if res is not None else ""
            reasons.insert(0, f"{env}: {dep.committed or 'nothing committed'} → {wanted} ({why})")
        elif not reasons and desired != committed:
            changed = sorted(
                p for p in {*desired, *committed} if desired.get(p) != committed.get(p)
            )
            reasons.append(f"HEAD differs from what the spec asks in {', '.join(changed)}")
        yield Change(
            address=address,
            lifecycle=want.name,
            kind="deployment",
            action="create" if dep.committed is None else "update",
            category="redeploy",
            reasons=(
                *(reasons or (f"{env}: → a version known after apply",)),
                f"apply commits {folder}/ and runs no kubectl: Argo CD syncs it",
            ),
            known_after_apply=after,
            before=dep.committed,
            after=wanted,
        )
        return
    if dep.committed is not None and (not dep.healthy or dep.drift):
        # Git holds what the spec asks; the cluster has not caught up, or differs.
        yield Change(
            address=address,
            lifecycle=want.name,
            kind="deployment",
            action="no-op",
            category="redeploy",
            reasons=(dep.detail, *(f"drift: {d}" for d in dep.drift)),
            before=dep.committed,
            after=dep.committed,
        )


def feedback_file(name: str, report: Any) -> str:
    """Where apply puts a breaching labelled batch: oldest first when sorted by name."""
    stamp = str(report.time).replace("-", "").replace(":", "")
    return (Layout(name).feedback / f"{stamp}-{report.id}.parquet").as_posix()


def monitoring_changes(want: Desired, actual: LifecycleActual) -> tuple[list[Change], list[str]]:
    """Breaches in the latest reports: (changes, what the training data gets).

    ``on_breach: retrain`` with a labelled batch adds it to the training data, which
    retrains through the pipeline (and the new version meets the gates and promotion
    rules like any other). Without labels, or with ``alert``, the breach is shown and
    nothing changes: retraining on the same data would give the same model.
    """
    monitoring = want.lifecycle.monitoring
    on_breach = monitoring.on_breach if monitoring is not None else "alert"
    changes: list[Change] = []
    batches: list[str] = []
    for state in actual.monitoring:
        report = state.report
        if not report.breach or state.answered:
            continue
        env = state.environment
        seen = (
            f"report {report.id} of {report.time} on {report.version or 'no version'} "
            f"(monitoring/{want.name}/{env}/report.md)"
        )
        address = f"{want.name}/monitoring/{env}"
        if on_breach == "retrain" and state.batch is not None:
            target = feedback_file(want.name, report)
            changes.append(
                Change(
                    address=f"{want.name}/data/feedback/{env}",
                    lifecycle=want.name,
                    kind="data",
                    action="create",
                    category="retrain",
                    reasons=(
                        *report.reasons,
                        f"adds the {report.batch.rows} labelled rows of {env}'s batch to the "
                        f"training data as a new DVC-tracked version: {target}",
                        seen,
                    ),
                    before=state.batch,
                    after=target,
                )
            )
            batches.append(
                f"the labelled batch of {env} (report {report.id}): " + "; ".join(report.reasons)
            )
            continue
        if on_breach == "retrain":
            why = (
                "retraining needs labelled data: the batch had no labels; run "
                "'mllc monitor' on a batch with the target column, or update the data source"
                if not report.batch.labelled
                else f"retraining needs the labelled batch {report.retrain_data}, which is "
                "missing: run 'mllc monitor' again"
            )
        else:
            why = "on_breach: alert: nothing changes"
        changes.append(
            Change(
                address=address,
                lifecycle=want.name,
                kind="monitoring",
                action="no-op",
                category="metadata",
                reasons=(*(f"breach: {r}" for r in report.reasons), why, seen),
            )
        )
    return changes, batches
