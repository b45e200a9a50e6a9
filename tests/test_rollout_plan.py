"""A rollout in the plan, pinned whole: the environment's change carries the decision, its
numbers and its text. No disk."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import test_plan_diff
from test_plan_diff import V1, V2, actual

from mllc.plan.diff import diff_lifecycle
from mllc.plan.markdown import markdown
from mllc.plan.model import Change, Plan, RolloutChange, summarize
from mllc.plan.render import human, to_json
from mllc.policy.promotion import Resolution
from mllc.policy.rollout import Decision, decide
from mllc.types import Assignment, DeploymentState, RolloutObservation, RolloutStats

ROLLOUT = (
    "    port: 8081\n    rollout: {strategy: canary, steps: [10, 50, 100], "
    "analysis: {min_requests: 100, max_disagreement: 0.05}}\n"
)
IRIS = test_plan_diff.IRIS.replace("    port: 8081\n", ROLLOUT)
desired = functools.cache(test_plan_diff.desired)
STEP = "iris#staging_canary#7"
WANTS = {"staging": Resolution("staging", V2, "latest version passing the gates")}


def step(n: int = 1, weight: int = 10) -> Assignment:
    payload = {"event": "step", "strategy": "canary", "step": n, "of": 3, "weight": weight,
               "stable": "v1.0.0"}  # fmt: skip
    return Assignment("iris", "staging_canary", "v1.1.0", "d" * 40, STEP, 7, "t", False,
                      {"rollout": payload})  # fmt: skip


def serving(requests: int, differing: int = 2, rollout_id: str | None = STEP) -> DeploymentState:
    numbers = RolloutStats(requests, 0, 21.0, requests, differing)
    split = (
        RolloutObservation("canary", "v1.0.0", "v1.1.0", "m2", 10, rollout_id, numbers)
        if rollout_id
        else None
    )
    return DeploymentState(
        "iris", "staging", "local", "v1.0.0", True, "serving on 127.0.0.1:8081", port=8081,
        model_md5="m1", rollout=split,
    )  # fmt: skip


def plan(dep: DeploymentState, history: list[Assignment]) -> tuple[Decision, list[Change]]:
    want = desired(IRIS)
    spec = want.lifecycle.environments["staging"].rollout
    d = decide("staging", spec, WANTS["staging"], V1, history, dep.rollout)
    now = actual(want, versions=(V1, V2), deployments=(dep,))
    return d, diff_lifecycle(want, now, "v1.2.0", WANTS, {"staging": d})


def change(action: str, text: str, after: str, **rollout: Any) -> Change:
    fields: dict[str, Any] = {
        "strategy": "canary", "stable": "v1.0.0", "candidate": "v1.1.0", "step": 1, "of": 3,
        "weight_from": 10, "weight": 10, "rollout_id": STEP, "reason": "", "analysis": None,
    }  # fmt: skip
    fields.update(rollout)
    return Change(
        address="iris/deployment/staging",
        lifecycle="iris",
        kind="deployment",
        action=action,  # type: ignore[arg-type]
        category="redeploy",
        reasons=(text,),
        before="v1.0.0",
        after=after,
        rollout=RolloutChange(**fields),
    )


def test_a_step_that_passes_is_an_update_with_its_numbers() -> None:
    d, changes = plan(serving(412, 8), [step()])
    assert d.analysis is not None
    assert changes == [
        change(
            "update",
            "staging: canary v1.1.0 at 10% → 50% (412 requests, error rate 0.0%, p99 21 ms, "
            "disagreement 1.9% ≤ 5%)",
            "v1.1.0",
            decision="advance",
            step=2,
            weight=50,
            analysis=d.analysis.record(),
        )
    ]
    text = human(Plan(mllc_version="0", lifecycles=("iris",), changes=tuple(changes),
                      summary=summarize(changes)))  # fmt: skip
    assert text.splitlines()[:4] == [
        "mllc will perform these actions:",
        "",
        "  # iris",
        "    ~ iris/deployment/staging  (redeploy)",
    ]
    assert '"decision": "advance"' in to_json(Plan(mllc_version="0", lifecycles=("iris",),
                                                   changes=tuple(changes),
                                                   summary=summarize(changes)))  # fmt: skip


def test_waiting_for_traffic_is_a_no_op_saying_what_for() -> None:
    d, changes = plan(serving(12, 0), [step()])
    why = "waiting for 12 of 100 requests"
    assert d.analysis is not None
    assert changes == [
        change(
            "no-op",
            f"staging: canary v1.1.0 at 10%, step 1 of 3: {why}",
            "v1.0.0",
            decision="wait",
            reason=why,
            analysis=d.analysis.record(),
        )
    ]
    text = human(Plan(mllc_version="0", lifecycles=("iris",), changes=tuple(changes),
                      summary=summarize(changes)))  # fmt: skip
    assert text == (
        f"Rollout: iris/deployment/staging: staging: canary v1.1.0 at 10%, step 1 of 3: {why}\n"
        "\nNo changes. Every lifecycle matches its spec.\n"
    )
    comment = markdown(Plan(mllc_version="0", lifecycles=("iris",), changes=tuple(changes),
                            summary=summarize(changes)))  # fmt: skip
    assert comment.splitlines()[1:6] == [
        "### mllc plan",
        "",
        "**No changes.** Every lifecycle matches its spec.",
        f"⏳ **iris/deployment/staging**: staging: canary v1.1.0 at 10%, step 1 of 3: {why}",
        "",
    ]


def test_a_failed_analysis_is_a_rollback_saying_why() -> None:
    d, changes = plan(serving(200, 120), [step()])
    why = "disagreement 60.0% > 5%"
    assert d.analysis is not None
    assert changes == [
        change(
            "update",
            f"staging: canary v1.1.0 at 10% → rolled back to v1.0.0: {why} (200 requests, "
            f"error rate 0.0%, p99 21 ms, {why})",
            "v1.0.0",
            decision="rollback",
            weight=0,
            reason=why,
            analysis=d.analysis.record(),
        )
    ]


def test_a_target_behind_the_registry_is_converged() -> None:
    _, changes = plan(serving(0, rollout_id=None), [step()])
    why = f"the target runs no rollout, not the recorded step {STEP}"
    assert changes == [
        change(
            "update",
            f"staging: canary v1.1.0 at 10%, step 1 of 3: {why}",
            "v1.1.0",
            decision="converge",
            reason=why,
        )
    ]


def test_a_split_no_rollout_records_is_replaced_by_the_version_alone() -> None:
    want = desired(IRIS)
    res = {"staging": Resolution("staging", V1, "latest version passing the gates")}
    now = actual(want, versions=(V1, V2), deployments=(serving(30),))
    assert diff_lifecycle(
        want, now, "v1.2.0", res, {"staging": Decision("staging", "nothing")}
    ) == [
        Change(
            address="iris/deployment/staging",
            lifecycle="iris",
            kind="deployment",
            action="update",
            category="redeploy",
            reasons=(
                f"runs canary v1.1.0 beside v1.0.0 ({STEP}), which no rollout in the registry "
                "records: v1.0.0 alone",
            ),
            before="v1.0.0",
            after="v1.0.0",
        )
    ]


def test_a_hold_an_abort_and_a_held_step() -> None:
    hold = Decision("staging", "hold", "held", "r", "canary", "v1.1.0", "v1.0.0", 1, 3, 10, 10,
                    STEP)  # fmt: skip
    held = replace(hold, recorded=True)
    abort = replace(hold, action="abort", text="aborted", weight=0)
    want = desired(IRIS)
    now = actual(want, versions=(V1, V2), deployments=(serving(30),))
    got = [diff_lifecycle(want, now, "v1.2.0", WANTS, {"staging": d}) for d in (hold, held, abort)]
    assert [[(c.action, c.reasons, c.after, c.rollout and c.rollout.decision) for c in changes]
            for changes in got] == [
        [("update", ("held",), "v1.1.0", "hold")],
        [("no-op", ("held",), "v1.0.0", "hold")],
        [("update", ("aborted",), "v1.0.0", "abort")],
    ]  # fmt: skip


TWO = IRIS.replace(
    ROLLOUT, ROLLOUT + "  production:\n    target: local\n    model: latest\n    port: 8082\n"
)


def test_a_rollout_in_one_environment_leaves_the_next_one_planned() -> None:
    want = desired(TWO)
    prod = replace(serving(0, rollout_id=None), environment="production", port=8082)
    now = actual(want, versions=(V1, V2), deployments=(serving(412, 8), prod))
    res = {**WANTS, "production": Resolution("production", V2, "latest passing")}
    d = decide("staging", want.lifecycle.environments["staging"].rollout, res["staging"], V1,
               [step()], serving(412, 8).rollout)  # fmt: skip
    changes = diff_lifecycle(want, now, "v1.2.0", res, {"staging": d})
    assert [(c.address, c.action, c.reasons[0]) for c in changes] == [
        ("iris/deployment/staging", "update", d.text),
        ("iris/deployment/production", "update", "production: v1.0.0 → v1.1.0 (latest passing)"),
    ]


def test_a_split_nothing_deployable_keeps_names_what_runs_alone() -> None:
    want = desired(IRIS)
    dep = replace(serving(30), drift=("workers: 2 → 4",))
    none = {"staging": Resolution("staging", None, "no version passes the gates")}
    (only,) = diff_lifecycle(want, actual(want, versions=(V1,), deployments=(dep,)), "v1.2.0",
                             none)  # fmt: skip
    assert only.reasons == (
        "staging keeps v1.0.0 (no version passes the gates), restarted with the spec's settings",
        f"runs canary v1.1.0 beside v1.0.0 ({STEP}), which no rollout in the registry records: "
        "v1.0.0 alone",
        "workers: 2 → 4",
    )
