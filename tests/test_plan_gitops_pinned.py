"""The plan of GitOps environments (``kubernetes.sync: gitops``) pinned whole, without a
disk (found by mutation testing).

Apply only commits the manifests of a GitOps environment; Argo CD syncs them. So the
plan compares the manifests at HEAD (``DeploymentState.committed``/``manifests``) with
the desired ones, and shows, never acts on, what the cluster does. Each test compares
the complete list of changes ``deployment_changes`` yields, every field of every change.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import test_plan_diff
from test_plan_diff import IRIS, V2, actual

from mllc.compile.desired import Desired
from mllc.plan.environments import deployment_changes
from mllc.plan.model import Change
from mllc.policy.promotion import Resolution
from mllc.types import DeploymentState

desired = functools.cache(test_plan_diff.desired)

LOCAL = """  staging:
    target: local               # an inference server on this machine
    model: latest               # latest = newest version that passes the gates; or v1.2.0
    port: 8081
"""
assert LOCAL in IRIS


def spec_text(sync: str = "gitops", model: str = "latest") -> str:
    """specs/iris.yaml whose staging runs on Kubernetes, synced by ``sync``."""
    return IRIS.replace(
        LOCAL,
        "  staging:\n"
        "    target: kubernetes\n"
        f"    model: {model}\n"
        f'    kubernetes: {{namespace: ml, storage_uri: "s3://models", sync: {sync}}}\n',
    )


FOLDER = "deploy/iris/staging"
APP = f"{FOLDER}/application.yaml"
ISVC = f"{FOLDER}/inferenceservice.yaml"
CRON = f"{FOLDER}/cronjob.yaml"
# what the spec asks of staging; a sibling folder whose name starts the same is not it
MANIFESTS = {APP: "app v1.1.0\n", ISVC: "isvc v1.1.0\n", CRON: "cron\n"}
SIBLING = {"deploy/iris/staging-eu/application.yaml": "app eu\n"}
COMMITS = f"apply commits {FOLDER}/ and runs no kubectl: Argo CD syncs it"
LATEST_AFTER = ("the version: the new one if the pipeline registers one that passes the gates",)
PASSES = "latest version passing the gates"


def want(sync: str = "gitops", model: str = "latest", files: Any = None) -> Desired:
    base = desired(spec_text(sync, model))
    extra = {**MANIFESTS, **SIBLING} if files is None else files
    return replace(base, files={**base.files, **extra})


def record(sync: str = "gitops", model: str = "latest") -> dict[str, Any]:
    """The lifecycle record an earlier apply wrote for that spec."""
    return desired(spec_text(sync, model)).lifecycle.document()


def cluster(
    committed: str | None = "v1.1.0",
    manifests: dict[str, str] | None = None,
    version: str | None = "v1.0.0",
    healthy: bool = True,
    detail: str = "Argo CD: Synced, Healthy",
    drift: tuple[str, ...] = (),
    env: str = "staging",
    gitops: bool = True,
) -> DeploymentState:
    """What the cluster runs (``version``) and what HEAD commits (``committed``)."""
    head = MANIFESTS if manifests is None else manifests
    return DeploymentState(
        "iris", env, "kubernetes", version, healthy, detail, drift=drift, gitops=gitops,
        committed=committed, manifests=tuple(head.items()),
    )  # fmt: skip


def wants(version: Any = V2, reason: str = PASSES, **kw: Any) -> dict[str, Resolution]:
    return {"staging": Resolution("staging", version, reason, **kw)}


def plan(
    spec: Desired,
    *deployments: DeploymentState,
    old: Any = None,
    resolutions: dict[str, Resolution] | None = None,
    pipeline_runs: bool = False,
) -> list[Change]:
    now = replace(actual(spec), deployments=deployments)
    res = wants() if resolutions is None else resolutions
    return list(deployment_changes(spec, now, old, res, pipeline_runs))


def deployment(action: str, *reasons: str, env: str = "staging", **kw: Any) -> Change:
    return Change(
        address=f"iris/deployment/{env}",
        lifecycle="iris",
        kind="deployment",
        action=action,  # type: ignore[arg-type]
        category="redeploy",
        reasons=reasons,
        **kw,
    )


# ------------------------------------------------------------------ what HEAD commits


def test_a_new_gitops_environment_with_nothing_committed_is_created() -> None:
    spec = want()
    now = cluster(committed=None, manifests={}, version=None, healthy=False)
    assert plan(spec, now, old=None) == [  # no lifecycle record yet
        deployment(
            "create",
            f"staging: nothing committed → v1.1.0 ({PASSES})",
            COMMITS,
            before=None,
            after="v1.1.0",
        )
    ]


def test_a_committed_version_other_than_the_wanted_one_is_updated() -> None:
    spec = want()
    old = {k: v for k, v in MANIFESTS.items() if k != CRON}
    now = cluster(committed="v1.0.0", manifests={**old, APP: "app v1.0.0\n"})
    assert plan(spec, now, old=record(), resolutions=wants(reason="pinned")) == [
        deployment(
            "update", "staging: v1.0.0 → v1.1.0 (pinned)", COMMITS, before="v1.0.0", after="v1.1.0"
        )
    ]


def test_the_same_version_with_other_manifests_at_head_names_the_files_sorted() -> None:
    spec = want()
    head = {
        ISVC: "isvc v1.1.0 edited by hand\n",  # in both, different
        APP: MANIFESTS[APP],  # in both, the same: not named
        f"{FOLDER}/zz-extra.yaml": "left over\n",  # only at HEAD
        f"{FOLDER}/m-old.yaml": "left over\n",
        f"{FOLDER}/00-old.yaml": "left over\n",  # five names: sorted, not in a set's order
        # cronjob.yaml: only desired
    }
    now = cluster(committed="v1.1.0", manifests=head)
    assert plan(spec, now, old=record()) == [
        deployment(
            "update",
            "HEAD differs from what the spec asks in "
            f"{FOLDER}/00-old.yaml, {CRON}, {ISVC}, {FOLDER}/m-old.yaml, {FOLDER}/zz-extra.yaml",
            COMMITS,
            before="v1.1.0",
            after="v1.1.0",
        )
    ]


def test_a_changed_record_is_the_reason_and_no_head_line_is_added() -> None:
    spec = want()
    old = record()
    old["environments"]["staging"]["kubernetes"]["replicas"] = 2
    now = cluster(committed="v1.1.0", manifests={APP: MANIFESTS[APP]})
    assert plan(spec, now, old=old) == [
        deployment(
            "update",
            "environments.staging.kubernetes.replicas 2 → 1",
            COMMITS,
            before="v1.1.0",
            after="v1.1.0",
        )
    ]


def test_a_changed_record_follows_the_version_line() -> None:
    spec = want()
    old = record()
    old["environments"]["staging"]["kubernetes"]["replicas"] = 2
    now = cluster(committed="v1.0.0", manifests={})
    assert plan(spec, now, old=old) == [
        deployment(
            "update",
            f"staging: v1.0.0 → v1.1.0 ({PASSES})",
            "environments.staging.kubernetes.replicas 2 → 1",
            COMMITS,
            before="v1.0.0",
            after="v1.1.0",
        )
    ]


def test_only_the_environments_folder_counts_not_a_sibling_starting_the_same() -> None:
    """``deploy/iris/staging-eu/`` is not ``deploy/iris/staging/``: HEAD matches."""
    spec = want()
    assert plan(spec, cluster(), old=record()) == []
    now = cluster(manifests={**MANIFESTS, **SIBLING})
    assert plan(spec, now, old=record()) == [
        deployment(
            "update",
            f"HEAD differs from what the spec asks in {next(iter(SIBLING))}",
            COMMITS,
            before="v1.1.0",
            after="v1.1.0",
        )
    ]


# ------------------------------------------------------------------ what the cluster does


def test_in_sync_and_healthy_is_no_change() -> None:
    assert plan(want(), cluster(), old=record()) == []
    assert plan(want(), cluster(version="v1.1.0"), old=record()) == []


def test_committed_and_awaiting_sync_is_a_no_op_with_the_detail() -> None:
    now = cluster(healthy=False, detail="Argo CD: OutOfSync, Progressing")
    assert plan(want(), now, old=record()) == [
        deployment("no-op", "Argo CD: OutOfSync, Progressing", before="v1.1.0", after="v1.1.0")
    ]


def test_drift_is_a_no_op_with_a_line_per_difference() -> None:
    now = cluster(drift=("replicas: 1 → 3", "image: a → b"))
    assert plan(want(), now, old=record()) == [
        deployment(
            "no-op",
            "Argo CD: Synced, Healthy",
            "drift: replicas: 1 → 3",
            "drift: image: a → b",
            before="v1.1.0",
            after="v1.1.0",
        )
    ]


def test_nothing_committed_and_nothing_to_deploy_is_no_change() -> None:
    """No version to deploy, nothing at HEAD, nothing running: nothing to show."""
    spec = want(files={})
    now = cluster(committed=None, manifests={}, version=None, healthy=False)
    nothing = wants(version=None, reason="nothing registered")
    assert plan(spec, now, old=record(), resolutions=nothing) == []
    assert plan(spec, now, old=record(), resolutions={}) == []


def test_nothing_to_deploy_keeps_what_head_commits_and_shows_the_cluster() -> None:
    """No version passes: HEAD's manifests stay, even when they differ from none."""
    spec = want(files={})
    nothing = wants(version=None, reason="no version passes the gates")
    assert plan(spec, cluster(), old=record(), resolutions=nothing) == []
    sick = cluster(healthy=False, detail="Argo CD: Degraded")
    assert plan(spec, sick, old=record(), resolutions=nothing) == [
        deployment("no-op", "Argo CD: Degraded", before="v1.1.0", after="v1.1.0")
    ]


def test_a_blocked_gitops_environment_is_blocked_before_anything_is_committed() -> None:
    blocked = wants(version=None, reason="", blocked="v9.9.9 is not registered")
    assert plan(want(), cluster(version="v1.0.0"), old=record(), resolutions=blocked) == [
        deployment("update", "blocked: v9.9.9 is not registered", before="v1.0.0", blocking=True)
    ]


# ------------------------------------------------------------------ known after apply


def test_a_pipeline_run_makes_latest_known_after_apply() -> None:
    spec = want()
    assert plan(spec, cluster(), old=record(), pipeline_runs=True) == [
        deployment(
            "update",
            "staging: → a version known after apply",
            COMMITS,
            known_after_apply=LATEST_AFTER,
            before="v1.1.0",
            after="v1.1.0",
        )
    ]
    nothing = wants(version=None, reason="nothing registered")
    now = cluster(committed=None, manifests={}, version=None, healthy=False)
    assert plan(want(files={}), now, old=record(), resolutions=nothing, pipeline_runs=True) == [
        deployment(
            "create",
            "staging: → a version known after apply",
            COMMITS,
            known_after_apply=LATEST_AFTER,
            before=None,
            after=None,
        )
    ]


def test_a_pipeline_run_with_a_new_version_keeps_the_version_line() -> None:
    spec = want()
    now = cluster(committed="v1.0.0")
    assert plan(spec, now, old=record(), pipeline_runs=True) == [
        deployment(
            "update",
            f"staging: v1.0.0 → v1.1.0 ({PASSES})",
            COMMITS,
            known_after_apply=LATEST_AFTER,
            before="v1.0.0",
            after="v1.1.0",
        )
    ]


def test_a_pinned_version_or_no_pipeline_run_is_not_known_after_apply() -> None:
    pinned = want(model="v1.1.0")
    assert plan(pinned, cluster(), old=record(model="v1.1.0"), pipeline_runs=True) == []
    assert plan(want(), cluster(), old=record(), pipeline_runs=False) == []


# ------------------------------------------------------------------ removed, or no longer GitOps


def test_a_removed_gitops_environment_deletes_its_folder_in_a_commit() -> None:
    gone = cluster(env="production", committed="v1.1.0", version="v1.0.0")
    assert plan(want(), cluster(), gone, old=record()) == [
        deployment(
            "delete",
            "environment production was removed: apply removes deploy/iris/production/ in a "
            "commit (with its Argo CD Application: Argo CD deletes what it synced)",
            env="production",
            before="v1.1.0",
        )
    ]


def test_a_removed_environment_synced_by_kubectl_is_not_deleted_by_a_commit() -> None:
    gone = cluster(env="production", gitops=False)
    assert plan(want(), cluster(), gone, old=record()) == []


def test_a_removed_gitops_environment_on_a_local_target_is_still_a_commit() -> None:
    """The GitOps delete comes first and is the only one (not also "stop its server")."""
    gone = replace(cluster(env="production", committed=None), target="local")
    assert plan(want(), cluster(), gone, old=record()) == [
        deployment(
            "delete",
            "environment production was removed: apply removes deploy/iris/production/ in a "
            "commit (with its Argo CD Application: Argo CD deletes what it synced)",
            env="production",
            before=None,
        )
    ]


UNCASCADE = (
    f"apply removes {APP}: should Argo CD delete that Application with its resources "
    "finalizer, it deletes what it synced too; delete it first without cascading "
    "(argocd app delete --cascade=false)"
)


def test_an_environment_leaving_gitops_warns_about_its_application() -> None:
    spec = want(sync="kubectl", files={})
    now = cluster(gitops=False, committed=None, manifests={}, version="v1.0.0")
    assert plan(spec, now, old=record()) == [
        deployment(
            "update",
            f"staging: v1.0.0 → v1.1.0 ({PASSES})",
            "environments.staging.kubernetes.sync removed (was gitops)",
            UNCASCADE,
            before="v1.0.0",
            after="v1.1.0",
        )
    ]


K8S_SETTINGS = (
    'environments.staging.kubernetes {}"context": null, "cpu": "500m", "memory": "512Mi", '
    '"name...{}'
)


def test_an_environment_leaving_gitops_for_a_local_server_warns_too() -> None:
    now = cluster(gitops=False, committed=None, manifests={}, version="v1.1.0")
    assert plan(desired(), now, old=record()) == [
        deployment(
            "update",
            "environments.staging.target kubernetes → local",
            "environments.staging.port added: 8081",
            K8S_SETTINGS.format("removed (was {", ")"),
            UNCASCADE,
            before="v1.1.0",
            after="v1.1.0",
        )
    ]


def test_no_application_warning_when_the_record_was_not_gitops() -> None:
    spec = want(sync="kubectl", files={})
    now = cluster(gitops=False, committed=None, manifests={}, version="v1.1.0")
    assert plan(spec, now, old=record(sync="kubectl")) == []
    local = desired().lifecycle.document()  # staging was a local server: no kubernetes
    assert plan(spec, now, old=local) == [
        deployment(
            "update",
            "environments.staging.target local → kubernetes",
            "environments.staging.port removed (was 8081)",
            K8S_SETTINGS.format("added: {", ""),
            before="v1.1.0",
            after="v1.1.0",
        )
    ]


def test_no_application_warning_while_the_environment_stays_gitops() -> None:
    """Still GitOps in the spec, though the cluster reports it as kubectl (say, before
    the first commit): no Application is removed."""
    spec = want(files={})
    now = cluster(gitops=False, committed=None, manifests={}, version="v1.1.0")
    assert plan(spec, now, old=record()) == []


def test_every_environment_is_planned_after_a_gitops_one() -> None:
    """A GitOps environment, kept or removed, does not end the plan of the others."""
    gone = cluster(env="production", committed="v1.1.0")
    canary = DeploymentState("iris", "canary", "local", "v1.0.0", True, "serving", port=8082)
    assert plan(want(), cluster(committed="v1.0.0", manifests={}), gone, canary, old=record()) == [
        deployment(
            "update",
            f"staging: v1.0.0 → v1.1.0 ({PASSES})",
            COMMITS,
            before="v1.0.0",
            after="v1.1.0",
        ),
        deployment(
            "delete",
            "environment production was removed: apply removes deploy/iris/production/ in a "
            "commit (with its Argo CD Application: Argo CD deletes what it synced)",
            env="production",
            before="v1.1.0",
        ),
        deployment(
            "delete",
            "environment canary was removed: stop its server (serving)",
            env="canary",
            before="v1.0.0",
        ),
    ]


def test_a_removed_environment_nobody_reports_is_not_deleted() -> None:
    old = record()
    old["environments"]["production"] = old["environments"]["staging"]
    assert plan(want(), cluster(), old=old) == []


def test_a_removed_environment_nobody_reports_does_not_hide_the_next_one() -> None:
    """The record's production, observed by nobody, comes before the observed legacy
    environment: that one is still deleted."""
    old = record()
    old["environments"]["production"] = old["environments"]["staging"]
    legacy = cluster(env="legacy", committed="v1.1.0", version="v1.0.0")
    assert plan(want(), cluster(), legacy, old=old) == [
        deployment(
            "delete",
            "environment legacy was removed: apply removes deploy/iris/legacy/ in a "
            "commit (with its Argo CD Application: Argo CD deletes what it synced)",
            env="legacy",
            before="v1.1.0",
        )
    ]
