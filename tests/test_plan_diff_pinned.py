"""The plan's diff pinned whole (found by mutation testing), without a disk.

Each test compares the complete list of changes, every field of every change, so a
change that is duplicated, missing, reordered, relabelled or reworded fails here; the
tests in ``test_plan_diff`` look changes up by address and would let those pass.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import pytest
import test_plan_diff
from test_plan_diff import IRIS, STAGES, V1, V2, actual, pipeline

from mllc.compile.desired import Orphan
from mllc.observe.types import MonitorState, Reason, SourceState
from mllc.plan.diff import diff_lifecycle, diff_orphan, source_changes, stage_category
from mllc.plan.environments import feedback_file, monitoring_changes
from mllc.plan.model import Change
from mllc.plan.values import change_text, finite_numbers, leaf_diff
from mllc.policy.promotion import Resolution
from mllc.types import DeploymentState, RegisteredVersion

# Compiling a spec is the slow part of these tests, and the same texts come back: compile
# each once (mutation testing runs these tests once per mutant). Nothing mutates a Desired.
desired = functools.cache(test_plan_diff.desired)

PARAM = Reason("param", "models.forest.params.n_estimators", "modified", 200, 300)
MAYBE = ("whether it runs: DVC skips it when its inputs come out unchanged",)
MODEL_AFTER = (
    "model hash",
    "version: v1.1.0 if the hash is new, none if already registered",
    "gate results",
)
LATEST_AFTER = ("the version: the new one if the pipeline registers one that passes the gates",)


def change(address: str, kind: str, action: str, category: str, *reasons: str, **kw: Any) -> Change:
    return Change(
        address=f"iris/{address}",
        lifecycle="iris",
        kind=kind,  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
        category=category,  # type: ignore[arg-type]
        reasons=reasons,
        **kw,
    )


def stage(name: str, category: str, *reasons: str, maybe: bool = False) -> Change:
    after = MAYBE if maybe else ()
    return change(f"stage/{name}", "stage", "run", category, *reasons, known_after_apply=after)


def server(
    version: str | None = "v1.0.0",
    env: str = "staging",
    md5: str | None = "m1",
    healthy: bool = True,
    reachable: bool = True,
    detail: str = "serving",
    target: str = "local",
) -> DeploymentState:
    return DeploymentState(
        "iris", env, target, version, healthy, detail, reachable=reachable, port=8081,
        model_md5=md5,
    )  # fmt: skip


def runs(
    version: RegisteredVersion,
    reason: str = "latest version passing the gates",
    skipped: tuple[str, ...] = (),
) -> Any:
    return {"staging": Resolution("staging", version, reason, skipped=skipped)}


REGISTER = change(
    "model", "model", "create", "retrain",
    "register the model the pipeline selects, if it is new",
    known_after_apply=MODEL_AFTER,
)  # fmt: skip
STAGING_AFTER = change(
    "deployment/staging", "deployment", "update", "redeploy",
    "staging: v1.0.0 → a version known after apply",
    known_after_apply=LATEST_AFTER, before="v1.0.0", after="v1.0.0",
)  # fmt: skip


# ------------------------------------------------------------------ stages and their categories


def test_stages_downstream_of_a_retrain_retrain_too() -> None:
    want = desired()
    now = actual(want, stages=pipeline({"train@forest": (PARAM,)}), versions=(V1,))
    now = replace(now, deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        stage("train@forest", "retrain",
              "params changed: models.forest.params.n_estimators 200 → 300"),
        stage("evaluate", "retrain", "after train@forest, if its outputs change", maybe=True),
        stage("select", "retrain", "after evaluate, if its outputs change", maybe=True),
        REGISTER,
        STAGING_AFTER,
    ]  # fmt: skip


def test_a_stale_prepare_carries_every_stage_after_it() -> None:
    want = desired()
    dep = Reason("dep", "data/x.csv", "modified")
    now = actual(want, stages=pipeline({"prepare": (dep,)}), versions=(V1,))
    now = replace(now, deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        stage("prepare", "retrain", "input modified: data/x.csv"),
        stage("split", "retrain", "after prepare, if its outputs change", maybe=True),
        stage("train@logreg", "retrain", "after split, if its outputs change", maybe=True),
        stage("train@forest", "retrain", "after split, if its outputs change", maybe=True),
        stage("evaluate", "retrain", "after train@forest, train@logreg, if its outputs change",
              maybe=True),
        stage("select", "retrain", "after evaluate, if its outputs change", maybe=True),
        REGISTER,
        STAGING_AFTER,
    ]  # fmt: skip


def test_evaluate_alone_re_evaluates_and_a_stale_stage_without_reasons_says_stale() -> None:
    want = desired()
    stages = pipeline({"evaluate": ()})
    stages = tuple(replace(s, stale=True) if s.name == "evaluate" else s for s in stages)
    now = replace(actual(want, stages=stages, versions=(V1,)), deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        stage("evaluate", "re-evaluate", "stale"),
        stage("select", "re-evaluate", "after evaluate, if its outputs change", maybe=True),
        REGISTER,
        STAGING_AFTER,
    ]


def test_stage_category() -> None:
    assert stage_category("prepare", set()) == "retrain"
    assert stage_category("split", set()) == "retrain"
    assert stage_category("train@forest", set()) == "retrain"
    assert stage_category("train-own", set()) == "retrain"
    assert stage_category("evaluate", set()) == "re-evaluate"
    assert stage_category("select", {"evaluate"}) == "re-evaluate"
    assert stage_category("select", {"evaluate", "train@logreg"}) == "retrain"
    assert stage_category("evaluate", {"split"}) == "retrain"
    assert stage_category("evaluate", {"prepare"}) == "retrain"


# ------------------------------------------------------------------ generated files


PARAMS = "pipelines/iris/params.yaml"
DEPLOY = "deploy/iris/prod/inferenceservice.yaml"


def test_a_generated_file_changed_by_the_spec_is_metadata_retrain_or_redeploy() -> None:
    old, new = desired(), desired(IRIS.replace("C: 1.0", "C: 0.5"))
    header = "# generated by mllc from specs/iris.yaml — do not edit\n"
    want = replace(new, files={**new.files, DEPLOY: header + "replicas: 2\n"})
    on_disk = {**old.files, DEPLOY: header + "replicas: 1\n"}
    record = (
        "lifecycle", "lifecycle", "update", "metadata",
        "metadata.description Classify iris species from flower measurements → x",
    )  # fmt: skip
    now = replace(actual(want, files=on_disk, versions=(V1,)), deployments=(server(),))
    assert [c.model_dump() for c in diff_lifecycle(want, now, "v1.1.0", runs(V1))] == [
        change(f"file/{PARAMS}", "file", "update", "metadata",
               "models.logreg.params.C 1.0 → 0.5").model_dump(),
        change(f"file/{DEPLOY}", "file", "update", "redeploy", "replicas 1 → 2").model_dump(),
    ]  # fmt: skip
    assert record  # the record itself is shown as its semantic changes, never as a file
    # the observer reports the train stage stale: the file change is part of a retrain
    stale = pipeline({"train@logreg": (Reason("param", "models.logreg.params.C", "modified"),)})
    now = replace(now, stages=stale)
    files = [c for c in diff_lifecycle(want, now, "v1.1.0", runs(V1)) if c.kind == "file"]
    assert [(c.address, c.category) for c in files] == [
        (f"iris/file/{PARAMS}", "retrain"),
        (f"iris/file/{DEPLOY}", "redeploy"),
    ]


def test_a_missing_generated_file_is_created() -> None:
    want = desired()
    files: dict[str, str | None] = dict(want.files)
    files[PARAMS] = None
    now = replace(actual(want, files=files, versions=(V1,)), deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change(f"file/{PARAMS}", "file", "create", "metadata", "generated from specs/iris.yaml")
    ]
    del files[PARAMS]
    now = replace(now, files=files)
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change(f"file/{PARAMS}", "file", "create", "metadata", "generated from specs/iris.yaml")
    ]


DRIFT = "drift: edited by hand since mllc wrote it; apply rewrites it"


def test_hand_edits_are_drift_whether_or_not_the_spec_changed() -> None:
    want = desired()
    files = dict(want.files)
    files[PARAMS] = (files[PARAMS] or "").replace("C: 1.0", "C: 5.0")
    now = replace(actual(want, files=files, versions=(V1,)), deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change(f"file/{PARAMS}", "file", "update", "metadata", DRIFT)
    ]
    # another spec's record on disk, and a file whose header was removed by hand
    new = desired(IRIS.replace("C: 1.0", "C: 0.5"))
    stripped = desired().files[PARAMS].split("\n", 1)[1]
    files = {**desired().files, PARAMS: stripped}
    now = replace(now, files=files)
    assert diff_lifecycle(new, now, "v1.1.0", runs(V1))[0] == change(
        f"file/{PARAMS}", "file", "update", "metadata", DRIFT
    )


def test_a_record_that_is_not_a_mapping_is_drift() -> None:
    """lifecycle.yaml with mllc's header but a hand-broken body (a list): apply must
    rewrite it, so the plan shows it (it used to show nothing)."""
    want = desired()
    record = "pipelines/iris/lifecycle.yaml"
    header = want.files[record].split("\n", 1)[0]
    files = {**want.files, record: header + "\n- a\n- b\n"}
    now = replace(actual(want, files=files, versions=(V1,)), deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change(f"file/{record}", "file", "update", "metadata", DRIFT)
    ]


def test_a_change_of_formatting_only_and_many_changes() -> None:
    old, new = desired(), desired(IRIS.replace("C: 1.0", "C: 0.5"))
    files = dict(old.files)
    files[PARAMS] = new.files[PARAMS] + "\n"  # same data, other text
    now = replace(actual(new, files=files, versions=(V1,)), deployments=(server(),))
    (first, *_) = diff_lifecycle(new, now, "v1.1.0", runs(V1))
    assert first == change(f"file/{PARAMS}", "file", "update", "metadata", "formatting changed")
    header = "# generated by mllc from specs/iris.yaml — do not edit\n"
    many = range(11)
    want = replace(new, files={**new.files, DEPLOY: header + "".join(f"k{i}: 0\n" for i in many)})
    files[DEPLOY] = header + "".join(f"k{i}: 1\n" for i in many)
    now = replace(now, files=files)
    shown = next(
        c for c in diff_lifecycle(want, now, "v1.1.0", runs(V1)) if c.address.endswith(DEPLOY)
    )
    assert shown.reasons == (
        *(f"k{i} 1 → 0" for i in range(8)),
        "... and 3 more",
    )
    files[DEPLOY] = header + "".join(f"k{i}: 1\n" for i in range(8))
    want = replace(
        want, files={**new.files, DEPLOY: header + "".join(f"k{i}: 0\n" for i in range(8))}
    )
    now = replace(now, files=files)
    shown = next(
        c for c in diff_lifecycle(want, now, "v1.1.0", runs(V1)) if c.address.endswith(DEPLOY)
    )
    assert shown.reasons == tuple(f"k{i} 1 → 0" for i in range(8))


# ------------------------------------------------------------------ gates and the record


def _gates_changed(gates: str, **kw: Any) -> list[Change]:
    old = desired()
    want = desired(IRIS.replace("  - accuracy >= 0.9\n  - f1_macro >= 0.85\n", gates))
    now = actual(want, files=dict(old.files), **kw)
    return [c for c in diff_lifecycle(want, now, "v1.1.0", runs(V1)) if c.kind == "gates"]


def gates_change(*reasons: str, after: list[str]) -> Change:
    return change(
        "gates", "gates", "update", "re-evaluate", *reasons,
        before=["accuracy >= 0.9", "f1_macro >= 0.85"], after=after,
    )  # fmt: skip


def test_a_gate_change_the_running_version_passes() -> None:
    assert _gates_changed("  - accuracy >= 0.5\n", versions=(V1,)) == [
        gates_change(
            "gate removed: accuracy >= 0.9",
            "gate removed: f1_macro >= 0.85",
            "gate added: accuracy >= 0.5",
            "v1.0.0 passes: accuracy 0.97 >= 0.5",
            after=["accuracy >= 0.5"],
        )
    ]


def test_a_gate_change_the_running_version_fails() -> None:
    new = "  - accuracy >= 0.9\n  - f1_macro >= 0.99\n"
    assert _gates_changed(new, versions=(V1, V2)) == [
        gates_change(
            "gate removed: f1_macro >= 0.85",
            "gate added: f1_macro >= 0.99",
            "v1.1.0 fails: accuracy 0.97 >= 0.9; f1_macro 0.96 < 0.99 (gate: f1_macro >= 0.99)",
            after=["accuracy >= 0.9", "f1_macro >= 0.99"],
        )
    ]


def test_a_gate_change_before_any_model() -> None:
    assert _gates_changed("  - accuracy >= 0.5\n", metrics={}) == [
        gates_change(
            "gate removed: accuracy >= 0.9",
            "gate removed: f1_macro >= 0.85",
            "gate added: accuracy >= 0.5",
            "no model yet: gates are checked after training",
            after=["accuracy >= 0.5"],
        )
    ]
    assert _gates_changed("  - accuracy >= 0.5\n")[0].reasons[-1] == (
        "the current model passes: accuracy 0.97 >= 0.5"
    )


def test_metadata_and_monitoring_changes_are_listed_leaf_by_leaf() -> None:
    old = desired()
    text = IRIS.replace("labels: {team: botany}", "labels: {team: flora, tier: gold}")
    text = text.replace('schedule: "0 6 * * *"', 'schedule: "0 7 * * *"')
    want = desired(text)
    now = replace(actual(want, files=dict(old.files), versions=(V1,)), deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change("metadata", "lifecycle", "update", "metadata",
               "metadata.labels.team botany → flora", "metadata.labels.tier added: gold"),
        change("monitoring", "lifecycle", "update", "metadata",
               "monitoring.schedule 0 6 * * * → 0 7 * * *"),
    ]  # fmt: skip


# ------------------------------------------------------------------ deployments


def test_a_server_running_another_model_under_the_right_version_label() -> None:
    want = desired()
    now = actual(want, versions=(V1,), deployments=(server(md5="m9999999999999"),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change("deployment/staging", "deployment", "update", "redeploy",
               "serves model m99999999999, not v1.0.0's", before="v1.0.0", after="v1.0.0")
    ]  # fmt: skip
    unknown = actual(want, versions=(V1,), deployments=(server(md5=None),))
    assert diff_lifecycle(want, unknown, "v1.1.0", runs(V1)) == []


def test_a_new_version_for_an_environment_with_nothing_running() -> None:
    want = desired()
    for deployed in ((), (server(version=None, healthy=False, md5=None, detail="no server"),)):
        now = actual(want, versions=(V1, V2), deployments=deployed)
        assert diff_lifecycle(want, now, "v1.2.0", runs(V2)) == [
            change("deployment/staging", "deployment", "create", "redeploy",
                   "staging: nothing running → v1.1.0 (latest version passing the gates)",
                   after="v1.1.0")
        ]  # fmt: skip


def test_a_new_version_replaces_an_unhealthy_one() -> None:
    want = desired()
    now = actual(want, versions=(V1, V2), deployments=(server(healthy=False, detail="500"),))
    assert diff_lifecycle(want, now, "v1.2.0", runs(V2)) == [
        change("deployment/staging", "deployment", "update", "redeploy",
               "staging: nothing running → v1.1.0 (latest version passing the gates)",
               "unhealthy: 500", after="v1.1.0")
    ]  # fmt: skip


def test_an_unreachable_server_is_said_and_redeployed() -> None:
    want = desired()
    gone = server(reachable=False, healthy=False, detail="connection refused on 127.0.0.1:8081")
    now = actual(want, versions=(V1,), deployments=(gone,))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change("deployment/staging", "deployment", "update", "redeploy",
               "staging: nothing running → v1.0.0 (latest version passing the gates)",
               "connection refused on 127.0.0.1:8081", after="v1.0.0")
    ]  # fmt: skip


def test_without_a_resolution_the_version_is_still_moved() -> None:
    """A caller that resolved nothing for the environment: nothing deployable, no change."""
    want = desired()
    now = actual(want, versions=(V1,), deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", {}) == []


def test_a_blocked_environment() -> None:
    want = desired()
    blocked = {"staging": Resolution("staging", None, "", blocked="v9.0.0 is not registered")}
    running = actual(want, versions=(V1,), deployments=(server(),))
    assert diff_lifecycle(want, running, "v1.1.0", blocked) == [
        change("deployment/staging", "deployment", "update", "redeploy",
               "blocked: v9.0.0 is not registered", before="v1.0.0", blocking=True)
    ]  # fmt: skip
    idle = actual(want, versions=(V1,))
    assert diff_lifecycle(want, idle, "v1.1.0", blocked) == [
        change("deployment/staging", "deployment", "create", "redeploy",
               "blocked: v9.0.0 is not registered", blocking=True)
    ]  # fmt: skip


def test_a_version_held_back_by_the_gates_is_a_no_op_that_says_so() -> None:
    want = desired()
    why = "latest version passing the gates (v1.1.0 fail them)"
    now = actual(want, md5="m2", versions=(V1, V2), deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.2.0", runs(V1, why, ("v1.1.0",))) == [
        change("deployment/staging", "deployment", "no-op", "redeploy",
               f"staging stays on v1.0.0: {why}", before="v1.0.0", after="v1.0.0")
    ]  # fmt: skip


def _staging_renamed_qa() -> tuple[Any, Any]:
    old = desired()
    want = desired(IRIS.replace("  staging:\n    target: local", "  qa:\n    target: local"))
    return old, want


QA = change(
    "deployment/qa", "deployment", "create", "redeploy",
    "qa: nothing running → v1.0.0 (latest version passing the gates)", after="v1.0.0",
)  # fmt: skip


def test_a_removed_environment_that_was_never_observed_changes_nothing() -> None:
    old, want = _staging_renamed_qa()
    now = actual(want, files=dict(old.files), versions=(V1,))
    qa = {"qa": Resolution("qa", V1, "latest version passing the gates")}
    assert diff_lifecycle(want, now, "v1.1.0", qa) == [QA]
    # nor one its target reports as running nothing, nor one on another target
    for seen in (server(version=None, healthy=False), server(target="kubernetes")):
        now = replace(now, deployments=(seen,))
        assert diff_lifecycle(want, now, "v1.1.0", qa) == [QA]


def test_a_removed_environment_is_stopped_once() -> None:
    """Removed from the spec, in the last record and observed: one delete, not two."""
    old, want = _staging_renamed_qa()
    now = actual(want, files=dict(old.files), versions=(V1,), deployments=(server(),))
    qa = {"qa": Resolution("qa", V1, "latest version passing the gates")}
    stop = change(
        "deployment/staging", "deployment", "delete", "redeploy",
        "environment staging was removed: stop its server (serving)", before="v1.0.0",
    )  # fmt: skip
    assert diff_lifecycle(want, now, "v1.1.0", qa) == [QA, stop]
    # a server left from an environment no record knows of is stopped too
    stray = actual(want, versions=(V1,), deployments=(server(env="old"),))
    assert diff_lifecycle(want, stray, "v1.1.0", qa)[-1].reasons == (
        "environment old was removed: stop its server (serving)",
    )


# ------------------------------------------------------------------ the model, the commit


def test_the_model_to_register() -> None:
    want = desired()
    built = actual(want, md5="m2abcdefghijklmnop", versions=(V1,), deployments=(server(),))
    assert diff_lifecycle(want, built, "v1.1.0", runs(V1)) == [
        change("model", "model", "create", "retrain",
               "model md5 m2abcdefghij is built but not registered", after="v1.1.0"),
        STAGING_AFTER,
    ]  # fmt: skip
    never = actual(want, md5=None, deployments=(server(),))
    assert diff_lifecycle(want, never, "v1.1.0", runs(V1)) == []


def test_only_the_commit_is_left() -> None:
    want = desired()
    now = actual(want, versions=(V1,), deployments=(server(),))
    some = replace(now, uncommitted=("a", "b", "c", "d"))
    assert diff_lifecycle(want, some, "v1.1.0", runs(V1)) == [
        change("commit", "lifecycle", "update", "metadata", "not committed: a, b, c, d")
    ]
    more = replace(now, uncommitted=("a", "b", "c", "d", "e", "f"))
    assert diff_lifecycle(want, more, "v1.1.0", runs(V1)) == [
        change("commit", "lifecycle", "update", "metadata", "not committed: a, b, c, d and 2 more")
    ]
    # with anything else to do, that change commits them: no separate change
    stale = replace(some, stages=pipeline({"select": (PARAM,)}))
    assert not [c for c in diff_lifecycle(want, stale, "v1.1.0", runs(V1)) if c.kind == "lifecycle"]
    # a held-back version is a no-op: the commit is still the only thing left
    why = "latest version passing the gates (v1.1.0 fail them)"
    held = replace(some, versions=(V1, V2), model_md5="m2")
    assert [c.action for c in diff_lifecycle(want, held, "v1.2.0", runs(V1, why, ("v1.1.0",)))] == [
        "no-op",
        "update",
    ]


def test_a_removed_spec() -> None:
    files = ("pipelines/old/dvc.yaml", "pipelines/old/params.yaml")

    def gone(address: str, kind: str, *reasons: str) -> Change:
        return Change(
            address=f"old/{address}", lifecycle="old", kind=kind,  # type: ignore[arg-type]
            action="delete", category="metadata", reasons=reasons,
        )  # fmt: skip

    assert diff_orphan(Orphan("old", files)) == [
        gone("lifecycle", "lifecycle", "its spec was removed: the pipeline folder is deleted",
             "registry history (tags) is kept"),
        gone(f"file/{files[0]}", "file", "its spec was removed"),
        gone(f"file/{files[1]}", "file", "its spec was removed"),
    ]  # fmt: skip


# ------------------------------------------------------------------ monitoring


def _report(labelled: bool = True, answered_batch: bool = True) -> Any:
    from mllc.observe.monitoring import BatchInfo, MonitorReport, ReferenceInfo

    return MonitorReport(
        mllc_version="0", id="abc123", lifecycle="iris", environment="staging",
        version=None, time="2026-11-27T06:00:00Z",
        batch=BatchInfo(source="b.csv", rows=40, labelled=labelled, sha256="0"),
        reference=ReferenceInfo(path="pipelines/iris/data/train.parquet", rows=120),
        drift=None, performance=None, breach=True,
        reasons=("drift: a psi 0.41 > 0.2", "drift: b psi 0.3 > 0.2"),
        on_breach="retrain",
        retrain_data="monitoring/iris/staging/batch.parquet" if labelled else None,
    )  # fmt: skip


SEEN = "report abc123 of 2026-11-27T06:00:00Z on no version (monitoring/iris/staging/report.md)"


def test_a_labelled_breach_whose_batch_is_gone() -> None:
    want = desired()
    state = MonitorState("staging", _report(), None, False)
    now = replace(actual(want, versions=(V1,), deployments=(server(),)), monitoring=(state,))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change("monitoring/staging", "monitoring", "no-op", "metadata",
               "breach: drift: a psi 0.41 > 0.2", "breach: drift: b psi 0.3 > 0.2",
               "retraining needs the labelled batch monitoring/iris/staging/batch.parquet, "
               "which is missing: run 'mllc monitor' again", SEEN)
    ]  # fmt: skip


def test_a_labelled_breach_retrains_on_its_batch() -> None:
    want = desired()
    state = MonitorState("staging", _report(), "monitoring/iris/staging/batch.parquet", False)
    now = replace(actual(want, versions=(V1,), deployments=(server(),)), monitoring=(state,))
    target = "pipelines/iris/feedback/20261127T060000Z-abc123.parquet"
    feedback = "training data gets the labelled batch of staging (report abc123): "
    feedback += "drift: a psi 0.41 > 0.2; drift: b psi 0.3 > 0.2"
    changes = diff_lifecycle(want, now, "v1.1.0", runs(V1))
    assert changes[0] == change(
        "data/feedback/staging", "data", "create", "retrain",
        "drift: a psi 0.41 > 0.2", "drift: b psi 0.3 > 0.2",
        "adds the 40 labelled rows of staging's batch to the training data as a new "
        f"DVC-tracked version: {target}", SEEN,
        before="monitoring/iris/staging/batch.parquet", after=target,
    )  # fmt: skip
    assert changes[1] == stage("prepare", "retrain", feedback)
    assert [c.address for c in changes[1:7]] == [f"iris/stage/{s}" for s in STAGES]
    assert changes[7:] == [REGISTER, STAGING_AFTER]


def test_feedback_file_name_sorts_by_time() -> None:
    report = _report()
    assert feedback_file("iris", report) == (
        "pipelines/iris/feedback/20261127T060000Z-abc123.parquet"
    )


# ------------------------------------------------------------------ leaves and their text


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, []),
        ({"a": 1}, {"a": 2, "b": 3}, [("p.a", 1, 2), ("p.b", None, 3)]),
        ({"a": {"b": 1}}, {}, [("p.a", {"b": 1}, None)]),
        (None, {"a": 1}, [("p", None, {"a": 1})]),
        (1, 1, []),
        (1, True, [("p", 1, True)]),
        (0, False, [("p", 0, False)]),
        (1.5, 1.5, []),
        ("1", 1, [("p", "1", 1)]),
        (2, 2.0, []),
    ],
)
def test_leaf_diff_with_a_prefix(old: Any, new: Any, expected: list[Any]) -> None:
    assert list(leaf_diff(old, new, "p")) == expected


def test_leaf_diff_paths_without_a_prefix() -> None:
    assert list(leaf_diff({"a": {"b": 1}}, {"a": {"b": 2}})) == [("a.b", 1, 2)]
    assert list(leaf_diff({1: "x"}, {1: "y"})) == [("1", "x", "y")]


def test_change_text() -> None:
    assert change_text("a.b", None, 3) == "a.b added: 3"
    assert change_text("a.b", 3, None) == "a.b removed (was 3)"
    assert change_text("a.b", 1, 2) == "a.b 1 → 2"
    assert change_text("a", [1], {"k": "v"}) == 'a [1] → {"k": "v"}'
    assert change_text("a", "x" * 70, "y") == f"a {'x' * 57}... → y"


def test_change_text_of_nothing_on_either_side() -> None:
    assert change_text("a", None, None) == "a added: (none)"


def test_every_missing_file_is_created_and_nine_changes_show_eight() -> None:
    want = desired()
    files: dict[str, str | None] = {**want.files, "pipelines/iris/dvc.yaml": None}
    files[PARAMS] = None
    now = replace(actual(want, files=files, versions=(V1,)), deployments=(server(),))
    made = "generated from specs/iris.yaml"
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change("file/pipelines/iris/dvc.yaml", "file", "create", "metadata", made),
        change(f"file/{PARAMS}", "file", "create", "metadata", made),
    ]
    header = "# generated by mllc from specs/iris.yaml — do not edit\n"
    new = desired(IRIS.replace("C: 1.0", "C: 0.5"))
    want = replace(
        new, files={**new.files, DEPLOY: header + "".join(f"k{i}: 0\n" for i in range(9))}
    )
    files = {**desired().files, DEPLOY: header + "".join(f"k{i}: 1\n" for i in range(9))}
    now = replace(now, files=files)
    shown = [c for c in diff_lifecycle(want, now, "v1.1.0", runs(V1)) if c.address.endswith(DEPLOY)]
    assert [c.reasons for c in shown] == [(*(f"k{i} 1 → 0" for i in range(8)), "... and 1 more")]


# ------------------------------------------------------------------ source data


def source(**kw: Any) -> SourceState:
    fields: dict[str, Any] = {
        "path": "data/x.csv",
        "tracked": None,
        "md5": "n" * 32,
        "recorded_md5": None,
        "trained_md5": None,
    }
    fields.update(kw)
    return SourceState(**fields)


UNVERSIONED = "data/x.csv is not versioned: apply will track it with DVC (data/x.csv.dvc)"


def data(action: str, category: str, *reasons: str, **kw: Any) -> Change:
    return change("data/source", "data", action, category, *reasons, **kw)


@pytest.mark.parametrize(
    ("state", "want"),
    [
        (source(md5=None), []),  # missing: the prepare stage says so when it runs
        (source(md5=None, tracked="git", trained_md5="t" * 32), []),
        (
            source(md5=None, tracked="dvc", recorded_md5="r" * 32, target="data"),
            [data("update", "metadata",
                  "data/x.csv is not here: apply checks out the version data.dvc records "
                  "(from the DVC cache, or the default remote)",
                  before="r" * 32, after="r" * 32)],
        ),
        (source(), [data("create", "retrain", UNVERSIONED, after="n" * 32)]),
        (source(trained_md5="n" * 32), [data("create", "retrain", UNVERSIONED, after="n" * 32)]),
        (
            source(trained_md5="t" * 32, rows=1200, trained_rows=1000),
            [data("create", "retrain", UNVERSIONED,
                  "data/x.csv changed since the last training: "
                  "md5 tttttttttttt → nnnnnnnnnnnn, rows 1,000 → 1,200", after="n" * 32)],
        ),
        (
            source(trained_md5="t" * 32),
            [data("create", "retrain", UNVERSIONED,
                  "data/x.csv changed since the last training: md5 tttttttttttt → nnnnnnnnnnnn",
                  after="n" * 32)],
        ),
        (
            source(rows=5),
            [data("create", "retrain", UNVERSIONED,
                  "data/x.csv changed since the last training: md5 (none) → nnnnnnnnnnnn, "
                  "rows ? → 5", after="n" * 32)],
        ),
        (
            source(tracked="dvc", recorded_md5="r" * 32, trained_md5="t" * 32, rows=7),
            [data("update", "retrain",
                  "data/x.csv changed: md5 rrrrrrrrrrrr → nnnnnnnnnnnn, rows ? → 7: apply "
                  "records it as a new data version with DVC (data/x.csv.dvc)",
                  before="r" * 32, after="n" * 32)],
        ),
        (source(tracked="dvc", recorded_md5="n" * 32, trained_md5="t" * 32), []),
        (source(tracked="dvc", trained_md5="t" * 32), []),
        (
            source(tracked="dvc", recorded_md5="n" * 32, uncommitted=("data/x.csv.dvc",)),
            [data("update", "metadata", "data/x.csv.dvc is not committed: apply commits it",
                  after="n" * 32)],
        ),
        (
            source(tracked="git", trained_md5="t" * 32, uncommitted=("data/x.csv",)),
            [data("update", "retrain",
                  "data/x.csv changed: md5 tttttttttttt → nnnnnnnnnnnn: apply commits it "
                  "(tracked by Git)", before="t" * 32, after="n" * 32)],
        ),
        (source(tracked="git", trained_md5="t" * 32), []),  # committed: the stages say so
        (source(tracked="git", recorded_md5="n" * 32, trained_md5="n" * 32), []),
        (
            source(tracked="git", recorded_md5="r" * 32, uncommitted=("data/x.csv",)),
            [data("update", "metadata", "data/x.csv is not committed: apply commits it",
                  after="n" * 32)],
        ),
    ],
)  # fmt: skip
def test_source_data(state: SourceState, want: list[Change]) -> None:
    assert list(source_changes("iris", [state])) == want


def test_every_source_is_looked_at_in_order_after_the_files() -> None:
    other = source(path="data/y.csv")
    states = (source(md5=None), source(tracked="dvc", recorded_md5="n" * 32), other)
    want = desired()
    files: dict[str, str | None] = {**want.files, PARAMS: None}
    now = replace(actual(want, files=files, versions=(V1,)), deployments=(server(),))
    now = replace(now, sources=states)
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change(f"file/{PARAMS}", "file", "create", "metadata", "generated from specs/iris.yaml"),
        data("create", "retrain",
             "data/y.csv is not versioned: apply will track it with DVC (data/y.csv.dvc)",
             after="n" * 32),
    ]  # fmt: skip


# ------------------------------------------------------------------ more survivors pinned


def test_a_stage_that_never_ran_is_created() -> None:
    never = Reason("never-run")
    stages = pipeline({"prepare": (never,), "split": (never, Reason("cmd"))})
    want = desired()
    changes = diff_lifecycle(want, actual(want, stages=stages, versions=(V1,)), "v1.1.0")
    assert [(c.address, c.action) for c in changes if c.kind == "stage"] == [
        ("iris/stage/prepare", "create"),
        ("iris/stage/split", "run"),
        *((f"iris/stage/{s}", "run") for s in STAGES[2:]),
    ]


def test_an_unversioned_source_is_described_from_its_last_training() -> None:
    state = source(recorded_md5="r" * 32, trained_md5="t" * 32)
    (only,) = source_changes("iris", [state])
    assert only.reasons[1] == (
        "data/x.csv changed since the last training: md5 tttttttttttt → nnnnnnnnnnnn"
    )


RECORD = "pipelines/iris/lifecycle.yaml"


def test_a_missing_record_is_created_without_semantic_changes() -> None:
    want = desired()
    files: dict[str, str | None] = {**want.files, RECORD: None}
    now = replace(actual(want, files=files, versions=(V1,)), deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change(f"file/{RECORD}", "file", "create", "metadata", "generated from specs/iris.yaml")
    ]


def test_a_record_edited_by_hand_is_drift_not_a_gate_change() -> None:
    want = desired()
    edited = (want.files[RECORD] or "").replace("accuracy >= 0.9", "accuracy >= 0.1")
    assert edited != want.files[RECORD]
    now = actual(want, files={**want.files, RECORD: edited}, versions=(V1,))
    now = replace(now, deployments=(server(),))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change(f"file/{RECORD}", "file", "update", "metadata", DRIFT)
    ]


def test_metrics_that_are_not_a_mapping_mean_no_model_yet() -> None:
    reasons = _gates_changed("  - accuracy >= 0.5\n", metrics={"test": [0.9]})[0].reasons
    assert reasons[-1] == "no model yet: gates are checked after training"
    broken = _gates_changed("  - accuracy >= 0.5\n", metrics=["test"])[0].reasons  # type: ignore[arg-type]
    assert broken[-1] == "no model yet: gates are checked after training"


def _envs(*names: str) -> str:
    extra = "".join(
        f"  {n}:\n    target: local\n    model: latest\n    port: {8090 + i}\n"
        for i, n in enumerate(names)
    )
    return IRIS.replace("    port: 8081\n", "    port: 8081\n" + extra, 1)


def test_each_environment_is_decided_on_its_own() -> None:
    """staging: nothing resolved; b: blocked; c: runs what it should; d: gets v1.0.0."""
    want = desired(_envs("b", "c", "d"))
    resolved = {
        "b": Resolution("b", None, "", blocked="v9.0.0 is not registered"),
        "c": Resolution("c", V1, "latest version passing the gates"),
        "d": Resolution("d", V1, "latest version passing the gates"),
    }
    now = actual(want, versions=(V1,), deployments=(server(env="c"),))
    assert diff_lifecycle(want, now, "v1.1.0", resolved) == [
        change("deployment/b", "deployment", "create", "redeploy",
               "blocked: v9.0.0 is not registered", blocking=True),
        change("deployment/d", "deployment", "create", "redeploy",
               "d: nothing running → v1.0.0 (latest version passing the gates)", after="v1.0.0"),
    ]  # fmt: skip


def test_every_removed_environment_is_looked_at() -> None:
    old = desired(_envs("x"))
    want = desired()
    now = actual(want, files=dict(old.files), versions=(V1,))
    now = replace(now, deployments=(server(), server(env="y")))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change("deployment/y", "deployment", "delete", "redeploy",
               "environment y was removed: stop its server (serving)", before="v1.0.0"),
    ]  # fmt: skip


def test_nothing_deployable_but_the_server_runs_other_settings() -> None:
    want = desired()
    drifted = replace(server(), drift=("token: none → env:T",))
    now = actual(want, versions=(V1,), deployments=(drifted,))
    restart = ", restarted with the spec's settings"
    blocked_by_gates = {"staging": Resolution("staging", None, "no version passes")}
    assert diff_lifecycle(want, now, "v1.1.0", blocked_by_gates) == [
        change("deployment/staging", "deployment", "update", "redeploy",
               f"staging keeps v1.0.0 (no version passes){restart}", "token: none → env:T",
               before="v1.0.0", after="v1.0.0")
    ]  # fmt: skip
    assert diff_lifecycle(want, now, "v1.1.0", {})[0].reasons[0] == (
        f"staging keeps v1.0.0 (nothing to deploy){restart}"
    )


def test_nothing_running_and_a_version_known_after_apply() -> None:
    want = desired()
    now = actual(want, stages=pipeline({"select": (PARAM,)}), versions=(V1,))
    assert diff_lifecycle(want, now, "v1.1.0", {})[-1] == change(
        "deployment/staging", "deployment", "create", "redeploy",
        "staging: nothing running → a version known after apply",
        known_after_apply=LATEST_AFTER,
    )  # fmt: skip


def test_uncommitted_five_shows_four_and_one_more() -> None:
    want = desired()
    now = actual(want, versions=(V1,), deployments=(server(),))
    five = replace(now, uncommitted=("a", "b", "c", "d", "e"))
    assert diff_lifecycle(want, five, "v1.1.0", runs(V1))[0].reasons == (
        "not committed: a, b, c, d and 1 more",
    )


def test_every_monitored_environment_is_looked_at() -> None:
    quiet = _report().model_copy(update={"breach": False, "reasons": ()})
    unlabelled = _report(labelled=False)
    batch = "monitoring/iris/staging/batch.parquet"
    states = (
        MonitorState("production", quiet, None, False),
        MonitorState("staging", _report(), batch, False),
        MonitorState("qa", unlabelled, None, False),
    )
    want = desired()
    now = replace(actual(want, versions=(V1,), deployments=(server(),)), monitoring=states)
    seen_qa = SEEN.replace("staging/report.md", "qa/report.md")
    shown = [c for c in diff_lifecycle(want, now, "v1.1.0", runs(V1)) if c.kind != "stage"]
    assert [c.address for c in shown] == [
        "iris/data/feedback/staging", "iris/model", "iris/deployment/staging",
        "iris/monitoring/qa",
    ]  # fmt: skip
    assert shown[-1] == change(
        "monitoring/qa", "monitoring", "no-op", "metadata",
        "breach: drift: a psi 0.41 > 0.2", "breach: drift: b psi 0.3 > 0.2",
        "retraining needs labelled data: the batch had no labels; run 'mllc monitor' on a "
        "batch with the target column, or update the data source", seen_qa,
    )  # fmt: skip


def test_an_alert_breach_changes_nothing_and_says_so() -> None:
    want = desired(IRIS.replace("on_breach: retrain", "on_breach: alert"))
    state = MonitorState("staging", _report(), "monitoring/iris/staging/batch.parquet", False)
    now = replace(actual(want, versions=(V1,), deployments=(server(),)), monitoring=(state,))
    assert diff_lifecycle(want, now, "v1.1.0", runs(V1)) == [
        change("monitoring/staging", "monitoring", "no-op", "metadata",
               "breach: drift: a psi 0.41 > 0.2", "breach: drift: b psi 0.3 > 0.2",
               "on_breach: alert: nothing changes", SEEN)
    ]  # fmt: skip


def test_a_lifecycle_without_monitoring_has_no_monitoring_changes() -> None:
    import yaml

    data = yaml.safe_load(IRIS)
    del data["monitoring"]
    want = test_plan_diff.desired(yaml.safe_dump(data, sort_keys=False))
    assert want.lifecycle.monitoring is None
    assert monitoring_changes(want, actual(want)) == ([], [])


def test_finite_numbers_keep_only_finite_numbers_of_an_object() -> None:
    data = {"a": 1, "b": True, "c": float("nan"), "d": "0.5", "e": 2.5, "f": None}
    data["g"] = float("inf")
    assert finite_numbers(data) == {"a": 1.0, "e": 2.5}
    assert finite_numbers({3: 0.5}) == {"3": 0.5}
    assert finite_numbers([1, 2]) == {}
    assert finite_numbers(None) == {}
