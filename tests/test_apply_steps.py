"""Apply's steps, decided from a plan without a disk: whole lists, in order."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mllc.apply.steps import Step, commit_paths, plan_steps
from mllc.compile.repository import compile_lifecycle
from mllc.plan.model import REPOSITORY, Change, Plan, Planned, summarize
from mllc.spec.load import load_text_as_spec

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ".github/workflows/mllc.yml"
# iris is monitored in staging: its latest report, and its batch only as removed
REPORTS = tuple(
    f"monitoring/iris/staging/{f}"
    for f in ("report.json", "report.md", "report.html", "batch.parquet", "batch.parquet.dvc")
)


def desired(name: str = "iris") -> object:
    text = (ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8")
    text = text.replace("name: iris", f"name: {name}", 1)
    result = load_text_as_spec(f"specs/{name}.yaml", text)
    assert result.spec is not None, [d.render() for d in result.diagnostics]
    want = compile_lifecycle(result.spec, f"specs/{name}.yaml")
    return want


def change(address: str, kind: str, action: str = "update", **extra: object) -> Change:
    lifecycle = address.split("/", 1)[0]
    return Change(
        address=address,
        lifecycle=lifecycle,
        kind=kind,  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
        category="retrain",
        reasons=("why",),
        **extra,  # type: ignore[arg-type]
    )


def planned(changes: list[Change], *wants: object, target: str | None = None) -> Planned:
    names = sorted({c.lifecycle for c in changes} | {w.name for w in wants})  # type: ignore[attr-defined]
    plan = Plan(
        mllc_version="0",
        lifecycles=tuple(names),
        changes=tuple(changes),
        summary=summarize(changes),
        target=target,
    )
    return Planned(plan, tuple(wants), (), {WORKFLOW: "on: push\n"})  # type: ignore[arg-type]


def test_a_retrain_writes_runs_commits_registers_then_deploys() -> None:
    want = desired()
    changes = [
        change("iris/file/pipelines/iris/params.yaml", "file"),
        change("iris/stage/train@forest", "stage", "run"),
        change("iris/model", "model", "create"),
        change("iris/deployment/staging", "deployment", "update"),
        change(f"{REPOSITORY}/file/{WORKFLOW}", "file"),
    ]
    assert plan_steps(planned(changes, want)) == [
        Step("begin", "iris"),
        Step("files", "iris", "iris/files", with_repository=True),
        Step("pipeline", "iris", "iris/pipeline"),
        Step("push", "iris", "iris/push"),
        Step(
            "commit",
            "iris",
            "iris/commit",
            with_repository=True,
            paths=("specs/iris.yaml", "pipelines/iris", *REPORTS),
            message="mllc apply: iris (retrain)",
        ),
        Step("register", "iris", "iris/register"),
        Step("deploy", "iris", "iris/deploy/staging", environment="staging", action="update"),
    ]


def test_the_repository_files_ride_with_the_first_lifecycle_only() -> None:
    a, b = desired("alpha"), desired("beta")
    changes = [
        change("alpha/gates", "gates"),
        change("beta/gates", "gates"),
        change(f"{REPOSITORY}/file/{WORKFLOW}", "file"),
    ]
    steps = plan_steps(planned(changes, a, b))
    assert [(s.name, s.with_repository) for s in steps if s.kind in ("files", "commit")] == [
        ("alpha/files", True),
        ("alpha/commit", True),
        ("beta/files", False),
        ("beta/commit", False),
    ]


def test_only_the_workflow_gets_steps_of_its_own() -> None:
    changes = [change(f"{REPOSITORY}/file/{WORKFLOW}", "file")]
    assert plan_steps(planned(changes, desired())) == [
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


def test_a_removed_lifecycle_is_deleted_and_committed() -> None:
    changes = [
        change("old/lifecycle", "lifecycle", "delete"),
        change("old/file/pipelines/old/dvc.yaml", "file", "delete"),
    ]
    assert plan_steps(planned(changes)) == [
        Step("begin", "old"),
        Step("delete-lifecycle", "old", "old/files"),
        Step(
            "commit",
            "old",
            "old/commit",
            paths=("pipelines/old", "deploy/old"),
            message="mllc apply: remove lifecycle old",
        ),
    ]


def test_sources_then_each_batch_then_the_targeted_stage() -> None:
    want = desired()
    batch = "monitoring/iris/staging/batch.parquet"
    fed = "pipelines/iris/feedback/20261206T000000Z-abc.parquet"
    changes = [
        change("iris/data/source", "data"),
        change("iris/data/feedback", "data", "create", before=batch, after=fed),
        change("iris/stage/train@forest", "stage", "run"),
    ]
    steps = plan_steps(planned(changes, want, target="iris/stage/train@forest"))
    assert steps[:5] == [
        Step("begin", "iris"),
        Step("files", "iris", "iris/files"),
        Step("data", "iris", "iris/data"),
        Step("feedback", "iris", "iris/feedback", batch=batch, target=fed),
        Step("pipeline", "iris", "iris/pipeline", stage="train@forest"),
    ]
    assert [s.kind for s in steps[5:]] == ["push", "commit"]


def test_no_op_changes_and_unchanged_lifecycles_get_no_steps() -> None:
    changes = [change("iris/deployment/staging", "deployment", "no-op")]
    assert plan_steps(planned(changes, desired())) == []


def test_a_deleted_environment_is_a_deploy_step_that_says_delete() -> None:
    changes = [change("iris/deployment/old", "deployment", "delete")]
    steps = plan_steps(planned(changes, desired()))
    assert steps[-1] == Step(
        "deploy", "iris", "iris/deploy/old", environment="old", action="delete"
    )
    assert [s.kind for s in steps] == ["begin", "files", "push", "commit", "deploy"]


def test_a_monitored_lifecycle_commits_its_latest_reports_never_a_bare_batch() -> None:
    text = (ROOT / "specs" / "churn.yaml").read_text(encoding="utf-8")
    result = load_text_as_spec("specs/churn.yaml", text)
    assert result.spec is not None
    want = compile_lifecycle(result.spec, "specs/churn.yaml")
    paths = commit_paths(want)
    assert paths[:2] == ("specs/churn.yaml", "pipelines/churn")
    for env in want.lifecycle.environments:
        base = f"monitoring/churn/{env}"
        assert paths.count(f"{base}/report.json") == 1
        assert f"{base}/batch.parquet" in paths and f"{base}/batch.parquet.dvc" in paths
    assert len(paths) == 2 + 5 * len(want.lifecycle.environments)


def test_an_unchanged_lifecycle_or_a_removed_one_does_not_end_the_list() -> None:
    changes = [
        change("alpha/deployment/staging", "deployment", "no-op"),
        change("beta/lifecycle", "lifecycle", "delete"),
        change("gamma/gates", "gates"),
    ]
    steps = plan_steps(planned(changes, desired("alpha"), desired("gamma")))
    assert [(s.lifecycle, s.kind) for s in steps] == [
        ("beta", "begin"),
        ("beta", "delete-lifecycle"),
        ("beta", "commit"),
        ("gamma", "begin"),
        ("gamma", "files"),
        ("gamma", "push"),
        ("gamma", "commit"),
    ]


def test_a_removal_does_not_carry_the_workflow_it_gets_its_own_steps_after() -> None:
    changes = [
        change("beta/lifecycle", "lifecycle", "delete"),
        change(f"{REPOSITORY}/file/{WORKFLOW}", "file"),
    ]
    steps = plan_steps(planned(changes))
    assert [(s.lifecycle, s.kind, s.with_repository) for s in steps] == [
        ("beta", "begin", False),
        ("beta", "delete-lifecycle", False),
        ("beta", "commit", False),
        (REPOSITORY, "begin", False),
        (REPOSITORY, "files", True),
        (REPOSITORY, "commit", True),
    ]


def test_the_commit_message_names_every_category_in_order() -> None:
    changes = [
        change("iris/gates", "gates"),
        Change(
            address="iris/metadata", lifecycle="iris", kind="lifecycle", action="update",
            category="metadata", reasons=("owner changed",),
        ),
    ]  # fmt: skip
    (commit,) = [s for s in plan_steps(planned(changes, desired())) if s.kind == "commit"]
    assert commit.message == "mllc apply: iris (metadata, retrain)"


def test_only_the_first_stage_marker_of_a_target_is_cut() -> None:
    changes = [change("iris/stage/train@forest", "stage", "run")]
    target = "iris/stage/odd/stage/name"
    (pipeline,) = [
        s for s in plan_steps(planned(changes, desired(), target=target)) if s.kind == "pipeline"
    ]
    assert pipeline.stage == "odd/stage/name"


def test_every_monitored_environment_commits_its_reports() -> None:
    want = desired()
    envs = dict(want.lifecycle.environments)  # type: ignore[attr-defined]
    envs["production"] = envs["staging"].model_copy(update={"port": 18999})
    record = want.lifecycle.model_copy(update={"environments": envs})  # type: ignore[attr-defined]
    paths = commit_paths(replace(want, lifecycle=record))  # type: ignore[type-var]
    for env in ("staging", "production"):
        assert f"monitoring/iris/{env}/report.json" in paths
        assert f"monitoring/iris/{env}/batch.parquet.dvc" in paths
    assert len(paths) == 2 + 5 * 2


def test_a_removal_after_a_changed_lifecycle_keeps_that_lifecycle_s_steps() -> None:
    changes = [change("alpha/gates", "gates"), change("beta/lifecycle", "lifecycle", "delete")]
    steps = plan_steps(planned(changes, desired("alpha")))
    assert [(s.lifecycle, s.kind) for s in steps] == [
        ("alpha", "begin"),
        ("alpha", "files"),
        ("alpha", "push"),
        ("alpha", "commit"),
        ("beta", "begin"),
        ("beta", "delete-lifecycle"),
        ("beta", "commit"),
    ]
