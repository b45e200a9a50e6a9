"""The rollout decision (mllc.policy.rollout), pinned by whole results. No disk, no Git."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from mllc.policy.labels_psi import EPSILON, psi
from mllc.policy.promotion import Promotion, Resolution, promotion_rules, resolve
from mllc.policy.rollout import (
    METRIC_DROP,
    Analysis,
    Check,
    Current,
    Decision,
    analyse,
    current,
    decide,
    decide_environment,
    events,
    rolled_back,
    split_stage,
    stage_name,
)
from mllc.spec.rollout import Analysis as Limits
from mllc.spec.rollout import Rollout
from mllc.types import Assignment, RegisteredVersion, RolloutObservation, RolloutStats

ENV = "production"


def version(v: str, accuracy: float = 0.95) -> RegisteredVersion:
    md5 = (v.replace(".", "").replace("v", "") * 11)[:32]
    return RegisteredVersion("iris", v, "c" * 40, md5, "t", {"test": {"accuracy": accuracy}})


V1, V2, V3 = version("v1.0.0"), version("v1.1.0"), version("v1.2.0")
LIMITS = Limits(min_requests=100, max_error_rate=0.01, max_p99_ms=200, max_disagreement=0.05)
CANARY = Rollout(strategy="canary", steps=[10, 50, 100], analysis=LIMITS)
SHADOW = Rollout(strategy="shadow", analysis=Limits(min_requests=50, max_disagreement=0.05))
WANTS_V2 = Resolution(ENV, V2, "latest version passing the gates")
HOLD = CANARY.model_copy(update={"on_failure": "hold"})


def event(
    counter: int,
    payload: dict[str, Any],
    version: str = "v1.1.0",
    unassign: bool = False,
    strategy: str = "canary",
) -> Assignment:
    stage = f"{ENV}_{strategy}"
    tag = f"iris#{stage}{'!' if unassign else ''}#{counter}"
    return Assignment(
        "iris", stage, version, "c" * 40, tag, counter, "t", unassign, {"rollout": payload}
    )


def step(counter: int, n: int, weight: int, strategy: str = "canary", of: int = 3) -> Assignment:
    payload = {"event": "step", "strategy": strategy, "step": n, "of": of, "weight": weight,
               "stable": "v1.0.0"}  # fmt: skip
    return event(counter, payload, strategy=strategy)


def stats(
    requests: int = 412,
    errors: int = 0,
    p99: float | None = 38.0,
    compared: int = 412,
    differing: int = 8,
    stable: tuple[tuple[str, int], ...] = (("0", 200), ("1", 212)),
    candidate: tuple[tuple[str, int], ...] = (("0", 200), ("1", 212)),
) -> RolloutStats:
    return RolloutStats(requests, errors, p99, compared, differing, stable, candidate, 3, "u")


def seen(rollout_id: str, numbers: RolloutStats | None, weight: int = 10) -> RolloutObservation:
    detail = "" if numbers else "KServe exports them to Prometheus"
    return RolloutObservation(
        "canary", "v1.0.0", "v1.1.0", V2.model_md5, weight, rollout_id, numbers, detail
    )


STEP1 = "iris#production_canary#7"


def analysis(**over: Any) -> Analysis:
    base = Analysis(
        requests=412,
        errors=0,
        error_rate=0.0,
        p99_ms=38.0,
        compared=412,
        differing=8,
        disagreement=8 / 412,
        drift=0.0,
        dropped=3,
        checks=(
            Check("error rate", 0.0, 0.01, True, "error rate 0.0% ≤ 1%"),
            Check("p99", 38.0, 200, True, "p99 38 ms ≤ 200 ms"),
            Check("disagreement", 8 / 412, 0.05, True, "disagreement 1.9% ≤ 5%"),
        ),
    )
    return replace(base, **over)


def at_step1(action: str, text: str, **over: Any) -> Decision:
    base = Decision(ENV, "nothing", "", "", "canary", "v1.1.0", "v1.0.0", 1, 3, 10, 10, STEP1)
    return replace(base, action=action, text=text, **over)


# ---------------------------------------------------------------------- no rollout


@pytest.mark.parametrize(
    ("spec", "res", "stable"),
    [
        (None, WANTS_V2, V1),  # no rollout in the spec: a plain deploy
        (CANARY, WANTS_V2, None),  # the first version an environment runs goes straight in
        (CANARY, Resolution(ENV, V1, "pinned to v1.0.0"), V1),  # already runs it
        (CANARY, Resolution(ENV, None, "no version registered yet"), V1),
        (CANARY, Resolution(ENV, V2, "", blocked="v1.1.0 fails its gates"), V1),
    ],
)
def test_nothing_to_roll_out(spec: Rollout | None, res: Resolution, stable: Any) -> None:
    assert decide(ENV, spec, res, stable, [], None) == Decision(ENV, "nothing")


def test_a_new_version_replacing_a_running_one_starts_at_step_one() -> None:
    assert decide(ENV, CANARY, WANTS_V2, V1, [], None) == Decision(
        ENV,
        "start",
        "production: canary v1.1.0 at 10%, step 1 of 3 (v1.0.0 answers the rest)",
        strategy="canary",
        candidate="v1.1.0",
        stable="v1.0.0",
        step=1,
        of=3,
        weight=10,
    )


def test_a_shadow_starts_with_a_copy_of_every_request() -> None:
    done = [step(3, 1, 10), event(4, {"event": "complete"}, unassign=True)]  # an older rollout
    assert decide(ENV, SHADOW, WANTS_V2, V1, done, None) == Decision(
        ENV,
        "start",
        "production: shadow v1.1.0, step 1 of 1 (v1.0.0 answers, v1.1.0 sees a copy of every "
        "request)",
        strategy="shadow",
        candidate="v1.1.0",
        stable="v1.0.0",
        step=1,
        of=1,
        weight=0,
    )


# ----------------------------------------------------------------- the analysis


def test_a_step_that_passes_advances_to_the_next_percentage() -> None:
    d = decide(ENV, CANARY, WANTS_V2, V1, [step(7, 1, 10)], seen(STEP1, stats()))
    assert d == Decision(
        ENV,
        "advance",
        "production: canary v1.1.0 at 10% → 50% (412 requests, error rate 0.0% ≤ 1%, "
        "p99 38 ms ≤ 200 ms, disagreement 1.9% ≤ 5%)",
        strategy="canary",
        candidate="v1.1.0",
        stable="v1.0.0",
        step=2,
        of=3,
        weight_from=10,
        weight=50,
        rollout_id=STEP1,
        analysis=analysis(),
    )
    assert d.event() == {
        "event": "step",
        "strategy": "canary",
        "step": 2,
        "of": 3,
        "weight": 50,
        "stable": "v1.0.0",
        "analysis": {
            "requests": 412,
            "errors": 0,
            "error_rate": 0.0,
            "p99_ms": 38.0,
            "compared": 412,
            "differing": 8,
            "disagreement": 8 / 412,
            "prediction_drift": 0.0,
            "dropped": 3,
            "checks": ["error rate 0.0% ≤ 1%", "p99 38 ms ≤ 200 ms", "disagreement 1.9% ≤ 5%"],
        },
    }


def test_the_last_step_passing_hands_over_to_the_candidate() -> None:
    history = [step(7, 1, 10), step(9, 2, 50), step(11, 3, 100)]
    d = decide(ENV, CANARY, WANTS_V2, V1, history, seen("iris#production_canary#11", stats()))
    assert d == Decision(
        ENV,
        "complete",
        "production: canary v1.1.0 at 100% → takes over from v1.0.0 (412 requests, error rate "
        "0.0% ≤ 1%, p99 38 ms ≤ 200 ms, disagreement 1.9% ≤ 5%)",
        strategy="canary",
        candidate="v1.1.0",
        stable="v1.0.0",
        step=3,
        of=3,
        weight_from=100,
        weight=100,
        rollout_id="iris#production_canary#11",
        analysis=analysis(),
    )
    assert d.event() == {
        "event": "complete", "strategy": "canary", "step": 3, "of": 3, "weight": 100,
        "stable": "v1.0.0", "analysis": analysis().record(),
        "rollout_id": "iris#production_canary#11",
    }  # fmt: skip


def test_not_enough_requests_waits_and_says_for_what() -> None:
    few = stats(requests=12, compared=12, differing=0)
    d = decide(ENV, CANARY, WANTS_V2, V1, [step(7, 1, 10)], seen(STEP1, few))
    checks = (
        Check("error rate", 0.0, 0.01, True, "error rate 0.0% ≤ 1%"),
        Check("p99", 38.0, 200, True, "p99 38 ms ≤ 200 ms"),
        Check("disagreement", 0.0, 0.05, True, "disagreement 0.0% ≤ 5%"),
    )
    numbers = analysis(requests=12, compared=12, differing=0, disagreement=0.0, checks=checks)
    assert d == at_step1(
        "wait",
        "production: canary v1.1.0 at 10%, step 1 of 3: waiting for 12 of 100 requests",
        reason="waiting for 12 of 100 requests",
        analysis=numbers,
    )


def test_no_traffic_at_all_waits_with_every_missing_number() -> None:
    spec = CANARY.model_copy(update={"analysis": LIMITS.model_copy(
        update={"max_prediction_drift": 0.2})})  # fmt: skip
    empty = RolloutStats(0, 0, None, 0, 0)
    d = decide(ENV, spec, WANTS_V2, V1, [step(7, 1, 10)], seen(STEP1, empty))
    why = (
        "waiting for 0 of 100 requests; no latency measured yet; no comparison of the two "
        "versions yet; no prediction distribution yet"
    )
    assert d == at_step1(
        "wait",
        f"production: canary v1.1.0 at 10%, step 1 of 3: {why}",
        reason=why,
        analysis=Analysis(0, 0, None, None, 0, 0, None, None, 0),
    )
    assert d.analysis is not None and d.analysis.text() == "0 requests"


def test_a_failed_limit_rolls_back_with_its_numbers() -> None:
    bad = stats(errors=41, p99=250.0, differing=300)
    d = decide(ENV, CANARY, WANTS_V2, V1, [step(7, 1, 10)], seen(STEP1, bad))
    why = "error rate 10.0% > 1%; p99 250 ms > 200 ms; disagreement 72.8% > 5%"
    checks = (
        Check("error rate", 41 / 412, 0.01, False, "error rate 10.0% > 1%"),
        Check("p99", 250.0, 200, False, "p99 250 ms > 200 ms"),
        Check("disagreement", 300 / 412, 0.05, False, "disagreement 72.8% > 5%"),
    )
    numbers = analysis(
        errors=41, error_rate=41 / 412, p99_ms=250.0, differing=300, disagreement=300 / 412,
        checks=checks,
    )  # fmt: skip
    assert d == at_step1(
        "rollback",
        f"production: canary v1.1.0 at 10% → rolled back to v1.0.0: {why} "
        f"(412 requests, {why.replace('; ', ', ')})",
        reason=why,
        weight=0,
        analysis=numbers,
    )
    assert d.event() == {
        "event": "rollback", "strategy": "canary", "step": 1, "of": 3, "weight": 0,
        "stable": "v1.0.0", "analysis": numbers.record(), "reason": why, "rollout_id": STEP1,
    }  # fmt: skip


def test_prediction_drift_is_the_psi_of_the_two_distributions() -> None:
    spec = Rollout(strategy="shadow", analysis=Limits(min_requests=10, max_prediction_drift=0.1))
    shifted = stats(candidate=(("0", 100), ("1", 312)))
    history = [step(7, 1, 0, strategy="shadow", of=1)]
    rid = "iris#production_shadow#7"
    d = decide(ENV, spec, WANTS_V2, V1, history, seen(rid, shifted, weight=0))
    drift = psi((("0", 200), ("1", 212)), (("0", 100), ("1", 312)))
    assert drift == pytest.approx(0.2620, abs=1e-4)
    numbers = analysis(
        drift=drift,
        checks=(Check("prediction drift", drift, 0.1, False, "prediction drift PSI 0.262 > 0.1"),),
    )
    assert d == Decision(
        ENV,
        "rollback",
        "production: shadow v1.1.0 → rolled back to v1.0.0: prediction drift PSI 0.262 > 0.1 "
        "(412 requests, error rate 0.0%, p99 38 ms, disagreement 1.9%, prediction drift PSI "
        "0.262 > 0.1)",
        "prediction drift PSI 0.262 > 0.1",
        "shadow",
        "v1.1.0",
        "v1.0.0",
        1,
        1,
        0,
        0,
        rid,
        numbers,
    )


def test_psi() -> None:
    assert psi((("a", 5),), (("a", 7),)) == 0.0
    assert psi((), (("a", 1),)) is None
    assert psi((("a", 1),), ()) is None
    assert psi((("a", 0),), (("a", 3),)) is None
    # an empty bin on one side: EPSILON instead of 0 keeps it finite
    expected = 0.5 * math.log(1 / 0.5) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert psi((("a", 1), ("b", 1)), (("a", 2),)) == pytest.approx(expected, rel=1e-12)
    assert psi((("a", 2),), (("a", 1), ("b", 1))) == pytest.approx(expected, rel=1e-12)


def test_the_metric_drop_is_reported_as_not_observed_and_does_not_block() -> None:
    spec = Rollout(
        strategy="canary", steps=[50, 100], analysis=Limits(min_requests=5, max_metric_drop=0.01)
    )
    d = decide(ENV, spec, WANTS_V2, V1, [step(7, 1, 50, of=2)], seen(STEP1, stats(), weight=50))
    numbers = analysis(checks=(), metric_drop=METRIC_DROP)
    assert d == replace(
        at_step1(
            "advance",
            "production: canary v1.1.0 at 50% → 100% (412 requests, error rate 0.0%, p99 38 ms, "
            "disagreement 1.9%, metric drop not observed (labelled feedback: see the replay gate))",
            analysis=numbers,
        ),
        step=2,
        of=2,
        weight_from=50,
        weight=100,
    )
    assert numbers.record()["metric_drop"] == METRIC_DROP


def test_a_target_that_sees_only_readiness_moves_on_it() -> None:
    ready = replace(seen(STEP1, None), ready=True)
    d = decide(ENV, CANARY, WANTS_V2, V1, [step(7, 1, 10)], ready)
    assert d == at_step1(
        "advance",
        "production: canary v1.1.0 at 10% → 50% (analysis not observable: KServe exports "
        "them to Prometheus)",
        step=2,
        weight=50,
    )
    unknown = decide(ENV, CANARY, WANTS_V2, V1, [step(7, 1, 10)], replace(ready, ready=None))
    why = "waiting for the candidate to be ready (KServe exports them to Prometheus)"
    assert unknown == at_step1(
        "wait", f"production: canary v1.1.0 at 10%, step 1 of 3: {why}", reason=why
    )
    failed = replace(ready, ready=False, detail="")
    why = "the candidate is not ready: the target reports no numbers"
    assert decide(ENV, CANARY, WANTS_V2, V1, [step(7, 1, 10)], failed) == at_step1(
        "rollback",
        f"production: canary v1.1.0 at 10% → rolled back to v1.0.0: {why} (analysis not "
        "observable)",
        reason=why,
        weight=0,
    )
    held = decide(ENV, HOLD, WANTS_V2, V1, [step(7, 1, 10)], failed)
    assert held == at_step1(
        "hold",
        f"production: canary v1.1.0 at 10% held: {why} (analysis not observable)",
        reason=why,
        spec=HOLD.model_dump(mode="json"),
    )


# ------------------------------------------------------------------------- hold


def test_on_failure_hold_keeps_the_step_and_records_why() -> None:
    bad = stats(differing=100)
    d = decide(ENV, HOLD, WANTS_V2, V1, [step(7, 1, 10)], seen(STEP1, bad))
    why = "disagreement 24.3% > 5%"
    checks = (
        Check("error rate", 0.0, 0.01, True, "error rate 0.0% ≤ 1%"),
        Check("p99", 38.0, 200, True, "p99 38 ms ≤ 200 ms"),
        Check("disagreement", 100 / 412, 0.05, False, why),
    )
    numbers = analysis(differing=100, disagreement=100 / 412, checks=checks)
    assert d == at_step1(
        "hold",
        f"production: canary v1.1.0 at 10% held: {why} (412 requests, error rate 0.0% ≤ 1%, "
        f"p99 38 ms ≤ 200 ms, {why})",
        reason=why,
        analysis=numbers,
        spec=HOLD.model_dump(mode="json"),
    )
    held = event(8, d.event())
    assert held.extra["rollout"] == {
        "event": "hold", "strategy": "canary", "step": 1, "of": 3, "weight": 10,
        "stable": "v1.0.0", "analysis": numbers.record(), "reason": why, "rollout_id": STEP1,
        "spec": HOLD.model_dump(mode="json"),
    }  # fmt: skip
    # the next apply: held, nothing to tag, until the spec changes
    again = decide(ENV, HOLD, WANTS_V2, V1, [step(7, 1, 10), held], seen(STEP1, stats()))
    assert again == at_step1(
        "hold",
        f"production: canary v1.1.0 at 10% held: {why} (on_failure: hold; edit the spec to go on)",
        reason=why,
        recorded=True,
    )
    looser = HOLD.model_copy(
        update={"analysis": LIMITS.model_copy(update={"max_disagreement": 0.5})}
    )
    moved = decide(ENV, looser, WANTS_V2, V1, [step(7, 1, 10), held], seen(STEP1, bad))
    assert (moved.action, moved.step, moved.weight) == ("advance", 2, 50)


# ------------------------------------------------------- abort, converge, complete


def test_a_spec_that_asks_for_another_version_aborts_the_rollout() -> None:
    history = [step(7, 1, 10)]
    observed = seen(STEP1, stats())
    v3 = Resolution(ENV, V3, "latest")
    back = Resolution(ENV, V1, "pinned to v1.0.0")
    none = Resolution(ENV, None, "no version passes")
    cases = {
        "the spec now asks for v1.2.0": decide(ENV, CANARY, v3, V1, history, observed),
        "the spec now asks for v1.0.0": decide(ENV, CANARY, back, V1, history, observed),
        "the spec now asks for no version": decide(ENV, CANARY, none, V1, history, observed),
        "strategy is now shadow": decide(ENV, SHADOW, WANTS_V2, V1, history, observed),
    }
    for why, d in cases.items():
        assert d == at_step1(
            "abort",
            f"production: canary v1.1.0 at 10% aborted, back to v1.0.0: {why}",
            reason=why,
            weight=0,
        )
    shadow_v3 = decide(ENV, SHADOW, v3, V1, history, observed)
    assert shadow_v3.reason == "strategy is now shadow"
    assert shadow_v3.event() == {
        "event": "abort", "strategy": "canary", "step": 1, "of": 3, "weight": 0,
        "stable": "v1.0.0", "reason": "strategy is now shadow", "rollout_id": STEP1,
    }  # fmt: skip
    gone = decide(ENV, None, v3, V1, history, observed)
    assert gone == at_step1(
        "abort",
        "production: canary v1.1.0 at 10% aborted, back to v1.0.0: the rollout was removed",
        reason="the rollout was removed",
        weight=0,
    )


def test_a_rollout_removed_from_the_spec_lets_its_candidate_take_over() -> None:
    d = decide(ENV, None, WANTS_V2, V1, [step(7, 1, 10)], seen(STEP1, stats()))
    why = "the spec no longer has a rollout"
    assert d == at_step1(
        "complete",
        f"production: canary v1.1.0 at 10% → takes over from v1.0.0 ({why})",
        reason=why,
        weight=100,
    )


def test_a_target_behind_the_registry_converges_without_advancing() -> None:
    other = replace(seen("iris#production_canary#5", stats()))
    for observed, runs in ((None, "runs no rollout"), (other, "runs iris#production_canary#5")):
        d = decide(ENV, CANARY, WANTS_V2, V1, [step(7, 1, 10)], observed)
        why = f"the target {runs}, not the recorded step {STEP1}"
        assert d == at_step1(
            "converge", f"production: canary v1.1.0 at 10%, step 1 of 3: {why}", reason=why
        )
        assert d.event() == {
            "event": "converge", "strategy": "canary", "step": 1, "of": 3, "weight": 10,
            "stable": "v1.0.0", "reason": why,
        }  # fmt: skip


def test_a_completion_cut_short_between_its_two_tags_is_finished() -> None:
    d = decide(ENV, CANARY, WANTS_V2, V2, [step(7, 1, 10)], seen(STEP1, stats()))
    why = "v1.1.0 already runs in production by the registry: finish the completion"
    assert d == at_step1(
        "complete", f"production: canary v1.1.0 at 10% → takes over ({why})", reason=why, weight=100
    )


# ---------------------------------------------------------------- the records


def test_the_step_in_progress_is_read_from_the_last_event() -> None:
    assert current([]) is None
    assert current([step(7, 1, 10), event(8, {"event": "rollback"}, unassign=True)]) is None
    assert current([replace(step(7, 1, 10), version=None)]) is None
    assert current([step(7, 1, 10)]) == Current("canary", "v1.1.0", "v1.0.0", 1, 3, 10, STEP1)
    hold = event(8, {"event": "hold", "strategy": "canary", "step": 1, "of": 3, "weight": 10,
                     "stable": "v1.0.0", "reason": "r", "rollout_id": STEP1,
                     "spec": {"x": 1}})  # fmt: skip
    assert current([step(7, 1, 10), hold]) == Current(
        "canary", "v1.1.0", "v1.0.0", 1, 3, 10, STEP1, "r", {"x": 1}
    )
    # a record written by hand: defaults, the strategy from the stage's name
    odd = event(9, {"step": True, "of": "3", "weight": None}, strategy="shadow")
    assert current([odd]) == Current("shadow", "v1.1.0", "", 1, 1, 0, "iris#production_shadow#9")
    foreign = Assignment("iris", "weird", "v1.1.0", "c", "iris#weird#3", 3, "t", False, {})
    assert current([foreign]) == Current("canary", "v1.1.0", "", 1, 1, 0, "iris#weird#3")
    bare_hold = event(10, {"event": "hold"})
    assert current([bare_hold]) == Current(
        "canary", "v1.1.0", "", 1, 1, 0, "iris#production_canary#10", "held", None
    )


def test_stage_names() -> None:
    assert stage_name("production", "canary") == "production_canary"
    assert split_stage("production_canary") == ("production", "canary")
    assert split_stage("production_shadow") == ("production", "shadow")
    assert split_stage("production") is None
    assert split_stage("_canary") is None
    assert split_stage("production_blue") is None


def test_events_merge_both_stages_in_counter_order() -> None:
    a, b, c = step(3, 1, 10), step(5, 1, 0, strategy="shadow"), step(4, 2, 50)
    history = {"production_canary": [a, c], "production_shadow": [b], "production": [step(6, 1, 1)]}
    assert events(history, ENV) == [a, c, b]
    assert events(history, "staging") == []


def test_rolled_back_versions_and_why() -> None:
    back = event(8, {"event": "rollback", "reason": "disagreement 72.8% > 5%"}, unassign=True)
    done = event(9, {"event": "complete"}, version="v1.2.0", unassign=True)
    bare = event(10, {"event": "rollback"}, version="v1.3.0", unassign=True)
    not_end = event(11, {"event": "rollback"}, version="v1.4.0")
    history = {"production_canary": [step(7, 1, 10), back, done, bare, not_end]}
    assert rolled_back(history, ENV) == {
        "v1.1.0": "disagreement 72.8% > 5%",
        "v1.3.0": "no reason recorded",
    }
    assert rolled_back(history, "staging") == {}


def test_the_policy_skips_a_version_rolled_back_in_the_environment() -> None:
    back = event(8, {"event": "rollback", "reason": "error rate 50.0% > 1%"}, unassign=True)
    history = {"production": [replace(step(2, 1, 0), env="production", version="v1.0.0")],
               "production_canary": [step(7, 1, 10), back]}  # fmt: skip
    rules = promotion_rules(None, [], ENV, [V1, V2], "accuracy", history)
    assert rules == Promotion(
        rolled_back=(("v1.1.0", "rolled back in production: error rate 50.0% > 1%"),)
    )
    latest = resolve(ENV, "latest", [V1, V2], [], rules)
    assert latest == Resolution(
        ENV,
        V1,
        "latest version passing the gates (v1.1.0 was rolled back in production: error rate "
        "50.0% > 1%)",
        skipped=("v1.1.0",),
    )
    both = resolve(ENV, "latest", [V1, V2, version("v1.2.0", 0.5)], ["accuracy >= 0.9"], rules)
    assert both.reason == (
        "latest version passing the gates (v1.2.0 fail them; v1.1.0 was rolled back in "
        "production: error rate 50.0% > 1%)"
    )
    pinned = resolve(ENV, "v1.1.0", [V1, V2], [], rules)
    assert pinned == Resolution(
        ENV, V2, "", blocked="v1.1.0 was rolled back in production: error rate 50.0% > 1%"
    )
    # a newer version is tried again
    assert resolve(ENV, "latest", [V1, V2, V3], [], rules).version == V3
    # the rules with after/beats_champion keep the rollbacks too
    full = promotion_rules("staging", ["beats_champion"], ENV, [V1, V2], "accuracy", history)
    assert full.rolled_back == rules.rolled_back and full.champion == V1


def test_decide_environment_takes_the_stable_version_from_the_registry() -> None:
    runs = Assignment("iris", ENV, "v1.0.0", "c", "iris#production#2", 2, "t")
    gone = Assignment("iris", ENV, "v1.2.0", "c", "iris#production!#3", 3, "t", True)
    history = {ENV: [runs, gone], "production_canary": [step(7, 1, 10)]}
    observed = seen(STEP1, stats())
    assert decide_environment(ENV, CANARY, WANTS_V2, [V1, V2], history, observed) == decide(
        ENV, CANARY, WANTS_V2, V1, [step(7, 1, 10)], observed
    )
    fresh = decide_environment(ENV, CANARY, WANTS_V2, [V1, V2], {}, None)
    assert fresh == Decision(ENV, "nothing")
    assert decide_environment(ENV, CANARY, WANTS_V2, [V2], {ENV: [runs]}, None).action == "nothing"


def test_decide_environment_starts_from_the_environments_last_version() -> None:
    runs = Assignment("iris", ENV, "v1.0.0", "c", "iris#production#2", 2, "t")
    gone = Assignment("iris", ENV, "v1.1.0", "c", "iris#production!#3", 3, "t", True)
    odd = Assignment("iris", ENV, None, "c", "iris#production#4", 4, "t")
    start = decide(ENV, CANARY, WANTS_V2, V1, [], None)
    assert start.action == "start"
    assert decide_environment(ENV, CANARY, WANTS_V2, [V1, V2], {ENV: [runs]}, None) == start
    history = {ENV: [runs, gone, odd]}  # an unassignment and a versionless tag: passed over
    assert decide_environment(ENV, CANARY, WANTS_V2, [V1, V2], history, None) == start
    assert decide_environment(ENV, CANARY, WANTS_V2, [V1, V2], {"staging": [runs]}, None) == (
        Decision(ENV, "nothing")
    )
    assert start.event() == {
        "event": "step", "strategy": "canary", "step": 1, "of": 3, "weight": 10,
        "stable": "v1.0.0",
    }  # fmt: skip


def test_records_read_defensively() -> None:
    assert split_stage("a_b_canary") == ("a_b", "canary")
    unnumbered = replace(step(7, 1, 10), counter=None)
    history = {"production_canary": [step(1, 1, 10), unnumbered]}
    assert events(history, ENV) == [unnumbered, step(1, 1, 10)]
    # the payload's strategy wins over the stage's; a step's own tag is its rollout_id
    odd = event(9, {"event": "step", "strategy": "shadow", "rollout_id": "x", "spec": {"a": 1}})
    assert current([odd]) == Current("shadow", "v1.1.0", "", 1, 1, 0, "iris#production_canary#9")


def test_limits_and_counts_at_their_bounds() -> None:
    assert psi((("a", 1),), (("a", 1),)) == 0.0
    spec = Rollout(
        strategy="canary",
        steps=[100],
        analysis=Limits(min_requests=1, max_error_rate=1.0, max_disagreement=0.05),
    )
    at_limit = RolloutStats(1, 1, None, 1, 0)
    result, waiting = analyse(spec, at_limit)
    assert waiting is None and result.error_rate == 1.0 and result.disagreement == 0.0
    assert result.checks[0] == Check("error rate", 1.0, 1.0, True, "error rate 100.0% ≤ 100%")
    exact = RolloutStats(100, 0, None, 100, 5)
    result, waiting = analyse(spec, exact)
    assert waiting is None
    assert result.checks[1] == Check("disagreement", 0.05, 0.05, True, "disagreement 5.0% ≤ 5%")


def test_the_pin_of_a_rollback_holds_the_plain_manifest_until_it_is_ready() -> None:
    """The decision tests/test_kubernetes_rollout_apply.py walks through, case by case: after a
    canary's rollback the stable version's plain manifest waits while the target runs
    that very pin (weight 0, the unassign tag's id) and it is not Ready."""
    v1 = RegisteredVersion("iris", "v1.0.0", "c" * 40, "a" * 32, "t")
    stays = Resolution(ENV, v1, "latest version passing the gates")
    stage = f"{ENV}_canary"
    event = {"event": "rollback", "strategy": "canary", "step": 2, "of": 3, "weight": 0,
             "stable": "v1.0.0", "reason": "the candidate is not ready"}  # fmt: skip
    started = Assignment("iris", stage, "v1.1.0", "c" * 40, f"iris#{stage}#7", 7, "t")
    ended = Assignment("iris", stage, "v1.1.0", "c" * 40, f"iris#{stage}!#8", 8, "t", True,
                       {"rollout": event})  # fmt: skip
    spec = Rollout(strategy="canary", steps=[10, 50, 100])

    def pin(ready: bool | None, weight: int = 0, rollout_id: str = ended.tag) -> Any:
        seen = RolloutObservation(
            "canary", "v1.0.0", "v1.1.0", "b" * 32, weight, rollout_id, None, "KServe says", ready
        )
        return decide(ENV, spec, stays, v1, [started, ended], seen)

    why = "waiting for the pin to be ready before v1.0.0 alone (KServe says)"
    waits = Decision(ENV, "wait", f"{ENV}: canary v1.1.0 rolled back to v1.0.0: {why}", why,
                     "canary", "v1.1.0", "v1.0.0", 2, 3, 0, 0, ended.tag)  # fmt: skip
    assert pin(None) == waits
    assert pin(False) == waits  # the stable's new revision failed: the pin keeps routing
    assert pin(True) == Decision(ENV, "nothing")  # ready: the plain manifest may go
    assert pin(None, weight=10) == Decision(ENV, "nothing")  # not a pin
    assert pin(None, rollout_id=started.tag) == Decision(ENV, "nothing")  # another step
    done = replace(ended, extra={"rollout": {**event, "event": "complete"}})
    assert decide(ENV, spec, stays, v1, [started, done], None) == Decision(ENV, "nothing")
