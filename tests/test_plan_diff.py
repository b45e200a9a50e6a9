"""The diff and its categories, without a disk: desired and actual are built in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from mllc.compile import compile_spec, lifecycle_document
from mllc.compile.desired import Desired, Orphan
from mllc.observe.types import LifecycleActual, Reason, StageState
from mllc.plan.diff import diff_lifecycle, diff_orphan
from mllc.plan.model import Plan, summarize
from mllc.plan.render import human, to_json
from mllc.plan.values import leaf_diff
from mllc.policy.promotion import Resolution
from mllc.spec.load import load_text_as_spec
from mllc.types import DeploymentState, RegisteredVersion

ROOT = Path(__file__).resolve().parent.parent
IRIS = (ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8")
STAGES = ("prepare", "split", "train@logreg", "train@forest", "evaluate", "select")


def desired(text: str = IRIS) -> Desired:
    result = load_text_as_spec("specs/iris.yaml", text)
    assert result.spec is not None, [d.render() for d in result.diagnostics]
    return Desired(
        name="iris",
        spec_file="specs/iris.yaml",
        files=dict(compile_spec(result.spec, "specs/iris.yaml").items()),
        lifecycle=lifecycle_document(result.spec),
        spec=result.spec,
    )


def pipeline(stale: dict[str, tuple[Reason, ...]] | None = None) -> tuple[StageState, ...]:
    """The iris pipeline's stages, with the deps/outs that link them."""
    stale = stale or {}
    d = "pipelines/iris/data"
    c = "pipelines/iris/candidates"
    links = {
        "prepare": ((), (f"{d}/clean.parquet",)),
        "split": ((f"{d}/clean.parquet",), (f"{d}/train.parquet", f"{d}/test.parquet")),
        "train@logreg": ((f"{d}/train.parquet",), (f"{c}/logreg.joblib",)),
        "train@forest": ((f"{d}/train.parquet",), (f"{c}/forest.joblib",)),
        "evaluate": ((f"{c}/logreg.joblib", f"{c}/forest.joblib"), ("r/candidates.json",)),
        "select": (("r/candidates.json",), ("pipelines/iris/model.joblib",)),
    }
    return tuple(
        StageState(s, s in stale, stale.get(s, ()), deps=links[s][0], outs=links[s][1])
        for s in STAGES
    )


def actual(
    want: Desired,
    stages: tuple[StageState, ...] | None = None,
    files: dict[str, str | None] | None = None,
    md5: str | None = "m1",
    versions: tuple[RegisteredVersion, ...] = (),
    metrics: dict[str, object] | None = None,
    deployments: tuple[DeploymentState, ...] = (),
) -> LifecycleActual:
    return LifecycleActual(
        name="iris",
        files=files if files is not None else dict(want.files),
        stages=stages if stages is not None else pipeline(),
        model_md5=md5,
        metrics=metrics if metrics is not None else {"test": {"accuracy": 0.97, "f1_macro": 0.96}},
        versions=versions,
        deployments=deployments,
    )


V1 = RegisteredVersion("iris", "v1.0.0", "c" * 40, "m1", "2026-01-01T00:00:00Z")


def test_nothing_to_do_when_everything_matches() -> None:
    want = desired()
    assert diff_lifecycle(want, actual(want, versions=(V1,)), "v1.1.0") == []


def test_a_built_but_unregistered_model_is_registered() -> None:
    want = desired()
    change, deploy = diff_lifecycle(want, actual(want), "v1.0.0")
    assert (change.address, change.action, change.category) == ("iris/model", "create", "retrain")
    assert change.after == "v1.0.0" and "not registered" in change.reasons[0]
    # staging runs `latest`: which version it gets is only known once v1.0.0 exists
    assert (deploy.address, deploy.action) == ("iris/deployment/staging", "create")
    assert deploy.known_after_apply


def test_param_change_runs_its_train_stage_and_marks_downstream_known_after_apply() -> None:
    want = desired()
    reason = Reason("param", "models.forest.params.n_estimators", "modified", 100, 200)
    stages = pipeline({"train@forest": (reason,)})
    changes = diff_lifecycle(want, actual(want, stages=stages, versions=(V1,)), "v1.1.0")
    by_address = {c.address: c for c in changes}
    train = by_address["iris/stage/train@forest"]
    assert train.action == "run" and train.category == "retrain"
    assert train.reasons == ("params changed: models.forest.params.n_estimators 100 → 200",)
    assert train.known_after_apply == ()
    evaluate = by_address["iris/stage/evaluate"]
    assert evaluate.known_after_apply and "train@forest" in evaluate.reasons[0]
    assert "iris/stage/train@logreg" not in by_address
    assert "iris/stage/prepare" not in by_address
    model = by_address["iris/model"]
    assert "model hash" in model.known_after_apply
    assert any("v1.1.0" in k for k in model.known_after_apply)


def test_only_evaluate_stale_is_a_re_evaluation() -> None:
    want = desired()
    stages = pipeline({"evaluate": (Reason("code", "mllc.stages", "modified", 1, 2),)})
    changes = diff_lifecycle(want, actual(want, stages=stages, versions=(V1,)), "v1.1.0")
    categories = {c.address: c.category for c in changes}
    assert categories["iris/stage/evaluate"] == "re-evaluate"
    assert categories["iris/stage/select"] == "re-evaluate"


def test_gate_change_re_evaluates_and_checks_the_current_metrics() -> None:
    old = desired()
    want = desired(IRIS.replace("accuracy >= 0.9", "accuracy >= 0.99"))
    files = dict(old.files)  # what is on disk: the previous compile
    changes = diff_lifecycle(want, actual(want, files=files, versions=(V1,)), "v1.1.0")
    (gates,) = [c for c in changes if c.kind == "gates"]
    assert gates.category == "re-evaluate" and gates.action == "update"
    assert "gate removed: accuracy >= 0.9" in gates.reasons
    assert "gate added: accuracy >= 0.99" in gates.reasons
    assert any("v1.0.0 fails" in r and "0.97 < 0.99" in r for r in gates.reasons)
    assert not any(c.kind == "stage" for c in changes)
    assert not any(c.category == "retrain" for c in changes)


def test_metadata_change_is_metadata_only() -> None:
    old = desired()
    want = desired(IRIS.replace("owner: ml-team@example.com", "owner: new@example.com"))
    changes = diff_lifecycle(want, actual(want, files=dict(old.files), versions=(V1,)), "v1.1")
    assert [(c.address, c.category) for c in changes] == [("iris/metadata", "metadata")]
    assert changes[0].reasons == ("metadata.owner ml-team@example.com → new@example.com",)


def serving(
    version: str = "v1.0.0", port: int = 8081, healthy: bool = True, drift: tuple[str, ...] = ()
) -> DeploymentState:
    return DeploymentState(
        "iris", "staging", "local", version, healthy, "serving", port=port, model_md5="m1",
        drift=drift,
    )  # fmt: skip


V2 = RegisteredVersion("iris", "v1.1.0", "d" * 40, "m2", "2026-01-02T00:00:00Z")


def staging(version: RegisteredVersion | None, blocked: str | None = None) -> dict[str, Resolution]:
    return {"staging": Resolution("staging", version, "latest passing the gates", blocked)}


def test_environment_port_change_is_a_redeploy() -> None:
    old = desired()
    want = desired(IRIS.replace("port: 8081", "port: 8090"))
    running = serving(drift=("port: 8081 → 8090",))  # as local.observe reports it
    now = actual(want, files=dict(old.files), versions=(V1,), deployments=(running,))
    changes = diff_lifecycle(want, now, "v1.1.0", staging(V1))
    assert [(c.address, c.category, c.action) for c in changes] == [
        ("iris/deployment/staging", "redeploy", "update")
    ]
    assert changes[0].reasons == ("environments.staging.port 8081 → 8090", "port: 8081 → 8090")


def test_a_server_running_other_settings_is_a_redeploy_naming_them() -> None:
    """The spec did not change since the last apply, but the server runs other settings."""
    want = desired()
    drift = ("token: none → env:MLLC_TOKEN", "max_body_bytes: 4096 → 1048576")
    now = actual(want, versions=(V1,), deployments=(serving(drift=drift),))
    (change,) = diff_lifecycle(want, now, "v1.1.0", staging(V1))
    assert (change.category, change.action, change.reasons) == ("redeploy", "update", drift)
    assert (change.before, change.after) == ("v1.0.0", "v1.0.0")


def test_a_new_version_moves_the_environment() -> None:
    want = desired()
    now = actual(want, md5="m2", versions=(V1, V2), deployments=(serving(),))
    (change,) = diff_lifecycle(want, now, "v1.2.0", staging(V2))
    assert change.reasons[0] == "staging: v1.0.0 → v1.1.0 (latest passing the gates)"
    assert (change.before, change.after) == ("v1.0.0", "v1.1.0")


def test_a_dead_server_is_restarted() -> None:
    want = desired()
    now = actual(want, versions=(V1,), deployments=(serving(healthy=False),))
    (change,) = diff_lifecycle(want, now, "v1.1.0", staging(V1))
    assert change.action == "update" and "unhealthy" in " ".join(change.reasons)


def test_nothing_changes_when_the_right_version_runs() -> None:
    want = desired()
    now = actual(want, versions=(V1,), deployments=(serving(),))
    assert diff_lifecycle(want, now, "v1.1.0", staging(V1)) == []


def test_a_blocked_environment_blocks_the_apply() -> None:
    want = desired()
    now = actual(want, versions=(V1,), deployments=(serving(),))
    (change,) = diff_lifecycle(want, now, "v1.1.0", staging(None, "v9.0.0 is not registered"))
    assert change.blocking and change.reasons[0] == "blocked: v9.0.0 is not registered"


def test_a_removed_environment_stops_its_server() -> None:
    old = desired()
    text = IRIS.replace("  staging:\n    target: local", "  qa:\n    target: local")
    want = desired(text)
    now = actual(want, files=dict(old.files), versions=(V1,), deployments=(serving(),))
    changes = diff_lifecycle(want, now, "v1.1.0", {"qa": Resolution("qa", V1, "latest")})
    by_address = {c.address: c for c in changes}
    assert by_address["iris/deployment/staging"].action == "delete"
    assert by_address["iris/deployment/qa"].action == "create"


def test_hand_edit_of_a_generated_file_is_drift() -> None:
    want = desired()
    files = dict(want.files)
    path = "pipelines/iris/params.yaml"
    files[path] = files[path].replace("C: 1.0", "C: 5.0")
    changes = diff_lifecycle(want, actual(want, files=files, versions=(V1,)), "v1.1.0")
    (change,) = changes
    assert change.address == f"iris/file/{path}" and change.action == "update"
    assert change.reasons[0].startswith("drift: edited by hand")


def test_spec_change_explains_the_generated_file_change() -> None:
    old = desired()
    want = desired(IRIS.replace("C: 1.0", "C: 0.5"))
    changes = diff_lifecycle(want, actual(want, files=dict(old.files), versions=(V1,)), "v1.1")
    params = next(c for c in changes if c.address == "iris/file/pipelines/iris/params.yaml")
    assert params.reasons == ("models.logreg.params.C 1.0 → 0.5",)


def test_removed_spec_deletes_files_and_keeps_the_registry() -> None:
    changes = diff_orphan(Orphan("old", ("pipelines/old/dvc.yaml", "pipelines/old/params.yaml")))
    assert [c.action for c in changes] == ["delete"] * 3
    assert any("registry history" in r for r in changes[0].reasons)
    assert summarize(changes).destroy == 3


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"a": 1}, {"a": 1.0}, []),
        ({"a": True}, {"a": 1}, [("a", True, 1)]),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "d": 3}}, [("a.c", 2, None), ("a.d", None, 3)]),
        ([1, 2], [1, 3], [("", [1, 2], [1, 3])]),
    ],
)
def test_leaf_diff(old: object, new: object, expected: list[tuple[str, object, object]]) -> None:
    assert list(leaf_diff(old, new)) == expected


def test_render_and_json_come_from_the_same_plan() -> None:
    want = desired()
    reason = Reason("param", "models.forest.params.n_estimators", "modified", 100, 200)
    stages = pipeline({"train@forest": (reason,)})
    changes = diff_lifecycle(want, actual(want, stages=stages, versions=(V1,)), "v1.1.0")
    plan = Plan(
        mllc_version="test",
        lifecycles=("iris",),
        changes=tuple(changes),
        summary=summarize(changes),
    )
    text = human(plan)
    # + iris/model, + iris/deployment/staging (nothing runs yet); 3 stages run
    assert text.splitlines()[-1] == "Plan: 2 to add, 3 to change, 0 to destroy."
    assert "  ~ iris/stage/train@forest  (run, retrain)" in text
    assert "\x1b[" not in text
    assert "\x1b[" in human(plan, color=True)
    again = Plan.model_validate_json(to_json(plan))
    assert again == plan


def test_a_newer_version_failing_the_gates_is_held_back_and_said() -> None:
    want = desired()
    failing = RegisteredVersion(
        "iris", "v1.1.0", "d" * 40, "m2", "t", {"test": {"accuracy": 0.5, "f1_macro": 0.5}}
    )
    reason = "latest version passing the gates (v1.1.0 fail them)"
    now = actual(want, md5="m2", versions=(V1, failing), deployments=(serving(),))
    changes = diff_lifecycle(
        want, now, "v1.2.0", {"staging": Resolution("staging", V1, reason, skipped=("v1.1.0",))}
    )
    (held,) = [c for c in changes if c.kind == "deployment"]
    assert held.action == "no-op" and held.reasons == (f"staging stays on v1.0.0: {reason}",)
    plan = Plan(mllc_version="t", lifecycles=("iris",), changes=(held,), summary=summarize([held]))
    assert not plan.has_changes
    assert human(plan).startswith("Held back: iris/deployment/staging: staging stays on v1.0.0")


# ------------------------------------------------------------------ monitoring breaches


def _report(breach: bool = True, labelled: bool = True, on_breach: str = "retrain") -> object:
    from mllc.observe.monitoring import BatchInfo, MonitorReport, ReferenceInfo

    return MonitorReport(
        mllc_version="0",
        id="abc123",
        lifecycle="iris",
        environment="staging",
        version="v1.0.0",
        time="2026-11-27T06:00:00Z",
        batch=BatchInfo(source="b.csv", rows=40, labelled=labelled, sha256="0"),
        reference=ReferenceInfo(path="pipelines/iris/data/train.parquet", rows=120),
        drift=None,
        performance=None,
        breach=breach,
        reasons=("drift: petal length (cm) psi 0.41 > 0.2",) if breach else (),
        on_breach="retrain" if on_breach == "retrain" else "alert",
        retrain_data="monitoring/iris/staging/batch.parquet" if labelled else None,
    )


def _monitored(
    want: Desired, report: object, batch: bool = True, answered: bool = False
) -> LifecycleActual:
    from dataclasses import replace

    from mllc.observe.types import MonitorState

    state = MonitorState(
        "staging", report, "monitoring/iris/staging/batch.parquet" if batch else None, answered
    )
    return replace(actual(want, versions=(V1,)), monitoring=(state,))


def _with_on_breach(on_breach: str) -> Desired:
    assert "on_breach: retrain" in IRIS
    return desired(IRIS.replace("on_breach: retrain", f"on_breach: {on_breach}"))


def test_labelled_breach_with_retrain_adds_the_batch_and_reruns_the_pipeline() -> None:
    want = desired()
    changes = diff_lifecycle(want, _monitored(want, _report()), "v1.1.0")
    by = {c.address: c for c in changes}
    data = by["iris/data/feedback/staging"]
    assert (data.kind, data.action, data.category) == ("data", "create", "retrain")
    assert data.reasons[0] == "drift: petal length (cm) psi 0.41 > 0.2"
    assert data.after == "pipelines/iris/feedback/20261127T060000Z-abc123.parquet"
    assert (
        by["iris/stage/prepare"]
        .reasons[0]
        .startswith("training data gets the labelled batch of staging (report abc123): drift:")
    )
    assert all(f"iris/stage/{s}" in by for s in STAGES)  # everything downstream may rerun
    assert by["iris/model"].action == "create"
    assert [c.address for c in changes].index("iris/data/feedback/staging") < [
        c.address for c in changes
    ].index("iris/stage/prepare")


@pytest.mark.parametrize(
    ("on_breach", "labelled", "answered", "shown"),
    [
        ("alert", True, False, "on_breach: alert: nothing changes"),
        ("retrain", False, False, "retraining needs labelled data"),
        ("retrain", True, True, None),  # already trained on: nothing at all
    ],
)
def test_breaches_that_change_nothing(
    on_breach: str, labelled: bool, answered: bool, shown: str | None
) -> None:
    want = _with_on_breach(on_breach)
    report = _report(labelled=labelled, on_breach=on_breach)
    unmonitored = diff_lifecycle(want, actual(want, versions=(V1,)), "v1.1.0")
    changes = diff_lifecycle(want, _monitored(want, report, labelled, answered), "v1.1.0")
    if shown is None:
        assert changes == unmonitored
        return
    *same, change = changes
    assert same == unmonitored  # the breach adds one no-op and nothing else
    assert change.address == "iris/monitoring/staging" and change.kind == "monitoring"
    assert change.reasons[0] == "breach: drift: petal length (cm) psi 0.41 > 0.2"
    assert shown in change.reasons[1]
    plan = Plan(
        mllc_version="0", lifecycles=("iris",), changes=(change,), summary=summarize([change])
    )
    text = human(plan)
    assert "Breach: iris/monitoring/staging: breach: drift: petal length (cm) psi" in text
    assert "No changes." in text


def test_no_breach_no_change() -> None:
    want = desired()
    unmonitored = diff_lifecycle(want, actual(want, versions=(V1,)), "v1.1.0")
    assert diff_lifecycle(want, _monitored(want, _report(breach=False)), "v1.1.0") == unmonitored


def test_settings_change_even_when_no_version_passes_the_gates() -> None:
    """What runs keeps running when nothing is deployable, but with the settings asked for."""
    want = desired()
    drift = ("host: 0.0.0.0 → 127.0.0.1",)
    nothing = {"staging": Resolution("staging", None, "no version passes the gates", None)}
    now = actual(want, versions=(V1,), deployments=(serving(drift=drift),))
    (change,) = diff_lifecycle(want, now, "v1.1.0", nothing)
    assert (change.category, change.action, change.reasons[1:]) == ("redeploy", "update", drift)
    assert "keeps v1.0.0" in change.reasons[0]
    assert diff_lifecycle(want, actual(want, versions=(V1,), deployments=(serving(),)), "v1.1.0",
                          nothing) == []  # fmt: skip
