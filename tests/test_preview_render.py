"""The preview's pure parts on synthetic data: the comparison (deltas by the metric's
direction, where a new version would go and why), DVC's lines to stage timings, and
the renderers (Markdown escaped as GitHub renders it, within GitHub's comment limit)."""

from __future__ import annotations

import json

from mllc.compile.workflow import PREVIEW_MARKER
from mllc.preview.compare import Context, Produced, deltas, lifecycle_preview
from mllc.preview.dvcrun import running_stage, stage_runs
from mllc.preview.model import (
    Candidate,
    DataChange,
    Delta,
    Gate,
    LifecyclePreview,
    Preview,
    Running,
    StageRun,
)
from mllc.preview.render import LIMIT, markdown, text, to_json
from mllc.spec.deployment import Environment
from mllc.types import Assignment, RegisteredVersion
from tests.test_markdown_escape import HOSTILE, _squash, assert_inert_data, render

METRICS = ("accuracy", "f1_macro", "f1_weighted", "log_loss", "precision_macro", "roc_auc")


def _metrics(base: float) -> dict[str, float]:
    return {m: round(base - i / 100, 6) for i, m in enumerate(METRICS)}


def _version(version: str, accuracy: float, f1: float) -> RegisteredVersion:
    test = {"accuracy": accuracy, "f1_macro": f1, "log_loss": 0.2}
    return RegisteredVersion(
        "iris", version, "c" * 40, version * 4, "2026-01-01T00:00:00Z", {"test": test}
    )


def _assigned(env: str, version: str, n: int) -> Assignment:
    return Assignment("iris", env, version, "c" * 40, f"iris#{env}#{n}", n, "2026-01-02T00:00:00Z")


def _produced(accuracy: float, f1: float, md5: str = "f" * 32) -> Produced:
    scores = {
        "forest": {"validation": {"f1_macro": 0.8}, "test": {"f1_macro": f1}},
        "logreg": {"validation": {"f1_macro": 0.9}, "test": {"f1_macro": f1}},
    }
    test = {"accuracy": accuracy, "f1_macro": f1, "log_loss": 0.1}
    return Produced(
        candidates=scores,
        metrics={
            "model": "logreg",
            "metric": "f1_macro",
            "validation": {"f1_macro": 0.9},
            "test": test,
        },
        data={"rows_in": 150, "rows_out": 150, "dropped": {"duplicates": 0}},
        model_md5=md5,
    )


def _context(envs: dict[str, Environment], gates: list[str]) -> Context:
    v1 = _version("v1.0.0", 0.95, 0.95)
    history = {
        "staging": [_assigned("staging", "v1.0.0", 1)],
        "production": [_assigned("production", "v1.0.0", 1)],
    }
    return Context(
        name="iris",
        categories=("retrain",),
        metric="f1_macro",
        gates=gates,
        environments=envs,
        versions=[v1],
        history=lambda: history,
        base_data=("v1.0.0", {"rows_in": 150, "rows_out": 149, "dropped": {"duplicates": 1}}),
        now="2026-01-03T00:00:00Z",
    )


def test_deltas_are_marked_by_the_metrics_direction() -> None:
    old = {"f1_macro": 0.9, "log_loss": 0.3, "accuracy": 0.9}
    new = {"f1_macro": 0.8, "log_loss": 0.2, "accuracy": 0.9}
    found = {d.metric: d for d in deltas(old, new)}
    assert found["f1_macro"].better is False and found["f1_macro"].delta == -0.1
    assert found["log_loss"].better is True  # lower is better
    assert found["accuracy"].better is None and found["accuracy"].delta == 0


def test_where_the_new_version_goes_follows_gates_and_promotion_rules() -> None:
    envs = {
        "staging": Environment(target="local", model="latest", port=8081),
        "production": Environment(
            target="local", model="latest", port=8082, after="staging", require=["beats_champion"]
        ),
        "pinned": Environment(target="local", model="v1.0.0", port=8083),
    }
    p = lifecycle_preview(_context(envs, ["accuracy >= 0.9"]), _produced(0.97, 0.96))
    assert p.verdict == "pass" and p.new_version == "v1.1.0" and p.selected == "logreg"
    assert "highest validation f1_macro: 0.9" in p.why_selected
    by_env = {r.environment: r for r in p.environments}
    assert by_env["staging"].deploy and by_env["staging"].version == "v1.0.0"
    assert not by_env["production"].deploy
    assert "has not run in staging yet (after: staging)" in by_env["production"].reason
    assert not by_env["pinned"].deploy and by_env["pinned"].reason == "pinned to v1.0.0"
    f1 = {d.metric: d for d in by_env["staging"].deltas}["f1_macro"]
    assert (f1.old, f1.new, f1.better) == (0.95, 0.96, True)
    assert p.data is not None and p.data.rows_out == (149, 150)
    assert p.data.dropped == {"duplicates": (1, 0)}

    # a model worse than the gate: fails, with the number, and is held out everywhere
    bad = lifecycle_preview(_context(envs, ["accuracy >= 0.99"]), _produced(0.97, 0.96))
    assert bad.verdict == "fail"
    assert [g.text for g in bad.gates] == ["accuracy 0.97 < 0.99 (gate: accuracy >= 0.99)"]
    assert not any(r.deploy for r in bad.environments)
    assert (
        "fails its gates: accuracy 0.97 < 0.99"
        in {r.environment: r for r in bad.environments}["staging"].reason
    )

    # the same model as a registered version: nothing new to register
    same = lifecycle_preview(_context(envs, []), _produced(0.97, 0.96, md5="v1.0.0" * 4))
    assert same.new_version is None and same.registered_as == "v1.0.0"


def test_stage_timings_and_the_running_stage_come_from_dvcs_lines() -> None:
    lines = [
        (0.0, "Stage 'pipelines/iris/dvc.yaml:prepare' didn't change, skipping"),
        (0.5, "Stage 'pipelines/iris/dvc.yaml:train@logreg' is cached - skipping run"),
        (1.0, "Running stage 'pipelines/iris/dvc.yaml:train@forest':"),
        (1.1, "> mllc stage train iris forest"),
        (4.0, "Running stage 'pipelines/iris/dvc.yaml:select':"),
    ]
    assert running_stage(lines) == "select"
    assert running_stage(lines[:2]) is None
    runs = stage_runs([*lines, (6.5, "Updating lock file 'pipelines/iris/dvc.lock'")], end=9.0)
    assert [(r.stage, r.outcome, r.seconds) for r in runs] == [
        ("prepare", "unchanged", 0.5),
        ("train@logreg", "cached", 0.5),
        ("train@forest", "ran", 3.0),
        ("select", "ran", 2.5),
    ]


def _lifecycle(name: str, hostile: str = "", verdict: str = "pass") -> LifecyclePreview:
    envs = tuple(
        Running(
            environment=f"{env}{hostile}",
            version="v1.0.0",
            deltas=tuple(
                Delta(metric=m, old=v, new=v + 0.01, delta=0.01, better=True)
                for m, v in _metrics(0.9).items()
            ),
            deploy=env == "staging",
            reason=f"v1.1.0: latest version passing the gates{hostile}",
        )
        for env in ("staging", "production", "canary")
    )
    return LifecyclePreview(
        name=name,
        verdict=verdict,  # type: ignore[arg-type]
        categories=("retrain",),
        metric="f1_macro",
        selected=f"forest{hostile}",
        why_selected=f"highest validation f1_macro: 0.9{hostile}",
        candidates=tuple(
            Candidate(
                name=f"{c}{hostile}",
                validation=_metrics(0.9),
                test=_metrics(0.91),
                selected=c == "forest",
            )
            for c in ("forest", "logreg", "boost")
        ),
        test=_metrics(0.91),
        gates=(
            Gate(
                gate="accuracy >= 0.9",
                metric="accuracy",
                value=0.91,
                passed=verdict == "pass",
                text=f"accuracy 0.91 >= 0.9{hostile}",
            ),
        ),
        model_md5="f" * 32,
        new_version="v1.1.0",
        environments=envs,
        data=DataChange(
            base_version="v1.0.0",
            rows_in=(150, 160),
            rows_out=(149, 158),
            dropped={"duplicates": (1, 2)},
        ),
        stages=tuple(
            StageRun(stage=f"train@{c}{hostile}", outcome="ran", seconds=1.5)
            for c in ("forest", "logreg")
        ),
        seconds=3.0,
    )


def test_markdown_renders_hostile_values_as_text() -> None:
    preview = Preview(
        mllc_version="0.0.0",
        commit="c" * 40,
        uncommitted_specs=(f"specs/x{HOSTILE}.yaml",),
        lifecycles=(_lifecycle("iris", hostile=HOSTILE, verdict="fail"),),
    )
    md = markdown(preview)
    assert md.splitlines()[:2] == [PREVIEW_MARKER, "### mllc preview"]
    shown = assert_inert_data(render(md))
    # candidates (3), environments (3 in the summary, 3 in details, 3 reasons each place),
    # gates, why selected, stages, the spec path: every one shows as the text it is
    assert shown.count(_squash(HOSTILE)) >= 20
    assert "1 of 1 would fail their gates" in shown


def test_twenty_lifecycles_fit_githubs_limit_short_first() -> None:
    many = tuple(
        _lifecycle(f"model{i:02d}", verdict="fail" if i == 7 else "pass") for i in range(20)
    )
    md = markdown(Preview(mllc_version="0.0.0", commit=None, lifecycles=many))
    assert len(md) <= LIMIT
    assert md.count("<details>") == 20 and "left out" not in md
    summary = md.split("<details>")[0]
    assert all(f"**model{i:02d}**" in summary for i in range(20))  # one line each, first
    assert "❌ **model07**" in summary and "1 of 20 would fail their gates" in summary

    # details too big for one comment: some are left out, and the comment says so
    huge = tuple(p.model_copy(update={"why_selected": "x " * 3000}) for p in many)
    md = markdown(Preview(mllc_version="0.0.0", commit=None, lifecycles=huge))
    assert len(md) <= LIMIT
    folded = md.count("<details>")
    assert 0 < folded < 20
    assert f"Details of {20 - folded} lifecycle(s) left out to fit GitHub's comment limit" in md
    assert all(f"**model{i:02d}**" in md.split("<details>")[0] for i in range(20))


def test_json_is_versioned_and_round_trips_and_text_names_every_verdict() -> None:
    preview = Preview(
        mllc_version="0.0.0", commit="c" * 40, lifecycles=(_lifecycle("iris", verdict="fail"),)
    )
    data = json.loads(to_json(preview))
    assert data["format_version"] == "1"
    assert Preview.model_validate(data) == preview
    shown = text(preview)
    assert "iris  [FAIL]  fails its gates: accuracy 0.91 >= 0.9" in shown
    assert "f1_macro 0.89 → 0.9 (+0.01 better)" in shown
    assert "rows in 150 → 160, out 149 → 158" in shown
    empty = Preview(mllc_version="0.0.0", commit=None)
    assert markdown(empty).splitlines()[3].startswith("**Nothing to preview:**")
