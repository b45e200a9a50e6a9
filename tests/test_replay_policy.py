"""wins_on_replay's verdict from numbers, in memory: every limit on each side and on it,
the whole verdict compared (status and the text a user reads)."""

from __future__ import annotations

import pytest

from mllc.policy.promotion import Promotion, Resolution, resolve, resolve_environment
from mllc.policy.replay import (
    ReplayNumbers,
    ReplayVerdict,
    Score,
    bin_label,
    differing,
    judge,
    nothing_to_replay,
    p95,
    pending,
    quartile_edges,
)
from mllc.spec.deployment import Environment
from mllc.spec.rollout import Replay
from mllc.types import Assignment, RegisteredVersion

LIMITS = Replay(min_requests=10, max_disagreement=0.05, max_metric_drop=0.0, max_p95_ratio=2.0)


def numbers(**changes: object) -> ReplayNumbers:
    base: dict[str, object] = {
        "environment": "production",
        "candidate": "v1.1.0",
        "running": "v1.0.0",
        "requests": 500,
        "differing": 6,
        "predictions": 500,
        "p95_ms": (0.8, 0.7),
    }
    base.update(changes)
    return ReplayNumbers(**base)  # type: ignore[arg-type]


LABELLED = {
    "predictions": 620,
    "labelled": 120,
    "metric": Score("f1_macro", 0.95, 0.94),
    "groups": (Score("setosa", 1.0, 1.0), Score("versicolor", 0.9, 0.88)),
}

PASS_TEXT = (
    "wins_on_replay: disagreement 1.2% ≤ 5%, p95 0.8 ms vs 0.7 ms (1.14× ≤ 2×) on 500 "
    "requests (no labelled feedback: no metric), v1.1.0 vs v1.0.0"
)


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({}, ReplayVerdict("passed", PASS_TEXT)),
        (
            LABELLED,
            ReplayVerdict(
                "passed",
                "wins_on_replay: disagreement 1.0% ≤ 5%, f1_macro 0.95 vs 0.94 (+0.010), "
                "worst class setosa +0.000, p95 0.8 ms vs 0.7 ms (1.14× ≤ 2×) on 500 requests "
                "(120 labelled), v1.1.0 vs v1.0.0",
            ),
        ),
        (
            {"differing": 400},
            ReplayVerdict(
                "failed",
                "wins_on_replay: v1.1.0 vs v1.0.0 fails: disagreement 80.0% > 5% "
                "(disagreement 80.0% > 5%, p95 0.8 ms vs 0.7 ms (1.14× ≤ 2×) on 500 requests "
                "(no labelled feedback: no metric))",
            ),
        ),
        (  # exactly at the limit passes
            {"differing": 25},
            ReplayVerdict(
                "passed",
                PASS_TEXT.replace("1.2% ≤", "5.0% ≤"),
            ),
        ),
        (
            {"differing": 26},
            ReplayVerdict(
                "failed",
                "wins_on_replay: v1.1.0 vs v1.0.0 fails: disagreement 5.2% > 5% "
                "(disagreement 5.2% > 5%, p95 0.8 ms vs 0.7 ms (1.14× ≤ 2×) on 500 requests "
                "(no labelled feedback: no metric))",
            ),
        ),
        (
            {"p95_ms": (1.4, 0.7)},
            ReplayVerdict("passed", PASS_TEXT.replace("0.8 ms", "1.4 ms").replace("1.14×", "2×")),
        ),
        (
            {"p95_ms": (1.5, 0.7)},
            ReplayVerdict(
                "failed",
                "wins_on_replay: v1.1.0 vs v1.0.0 fails: p95 1.5 ms vs 0.7 ms (2.14× > 2×) "
                "(disagreement 1.2% ≤ 5%, p95 1.5 ms vs 0.7 ms (2.14× > 2×) on 500 requests "
                "(no labelled feedback: no metric))",
            ),
        ),
        (  # a running version measured at 0 ms: any time of the candidate is infinitely more
            {"p95_ms": (0.1, 0.0)},
            ReplayVerdict(
                "failed",
                "wins_on_replay: v1.1.0 vs v1.0.0 fails: p95 0.1 ms vs 0 ms (inf× > 2×) "
                "(disagreement 1.2% ≤ 5%, p95 0.1 ms vs 0 ms (inf× > 2×) on 500 requests "
                "(no labelled feedback: no metric))",
            ),
        ),
        (
            {"p95_ms": (0.0, 0.0)},
            ReplayVerdict(
                "passed", PASS_TEXT.replace("0.8 ms vs 0.7 ms (1.14×", "0 ms vs 0 ms (1×")
            ),
        ),
        (  # no latency measured: nothing said about it
            {"p95_ms": None},
            ReplayVerdict(
                "passed",
                "wins_on_replay: disagreement 1.2% ≤ 5% on 500 requests "
                "(no labelled feedback: no metric), v1.1.0 vs v1.0.0",
            ),
        ),
        (  # no predictions compared: nothing disagrees
            {"predictions": 0, "differing": 0, "p95_ms": None},
            ReplayVerdict(
                "passed",
                "wins_on_replay: disagreement 0.0% ≤ 5% on 500 requests "
                "(no labelled feedback: no metric), v1.1.0 vs v1.0.0",
            ),
        ),
    ],
)
def test_each_limit_on_both_sides(changes: dict[str, object], verdict: ReplayVerdict) -> None:
    assert judge(numbers(**changes), LIMITS) == verdict


def test_fewer_captured_requests_than_min_requests_fail_closed_with_the_count() -> None:
    assert judge(numbers(requests=9), LIMITS) == ReplayVerdict(
        "failed",
        "wins_on_replay: 9 captured request(s) of production, fewer than min_requests 10: "
        "no verdict, so v1.1.0 stays out",
    )
    assert judge(numbers(requests=10), LIMITS).status == "passed"


def test_the_metric_drop_overall_and_of_the_worst_class() -> None:
    worse = {**LABELLED, "metric": Score("f1_macro", 0.80, 0.95)}
    assert judge(numbers(**worse), LIMITS) == ReplayVerdict(
        "failed",
        "wins_on_replay: v1.1.0 vs v1.0.0 fails: f1_macro 0.8 vs 0.95 (-0.150, a drop of 0.15 "
        "> 0) (disagreement 1.0% ≤ 5%, f1_macro 0.8 vs 0.95 (-0.150, a drop of 0.15 > 0), "
        "worst class setosa +0.000, p95 0.8 ms vs 0.7 ms (1.14× ≤ 2×) on 500 requests "
        "(120 labelled))",
    )
    one_class = {
        **LABELLED,
        "groups": (Score("setosa", 0.7, 1.0), Score("versicolor", 0.9, 0.88)),
    }
    assert judge(numbers(**one_class), LIMITS) == ReplayVerdict(
        "failed",
        "wins_on_replay: v1.1.0 vs v1.0.0 fails: worst class setosa -0.300 (a drop of 0.3 > 0) "
        "(disagreement 1.0% ≤ 5%, f1_macro 0.95 vs 0.94 (+0.010), worst class setosa -0.300 "
        "(a drop of 0.3 > 0), p95 0.8 ms vs 0.7 ms (1.14× ≤ 2×) on 500 requests (120 labelled))",
    )
    tolerant = Replay(min_requests=10, max_metric_drop=0.3)
    assert judge(numbers(**one_class), tolerant).status == "passed"
    assert judge(numbers(**one_class), Replay(min_requests=10, max_metric_drop=0.29)).failed


def test_a_lower_is_better_metric_drops_when_it_rises() -> None:
    rmse = {
        "labelled": 40,
        "metric": Score("rmse", 0.5, 0.4, higher_is_better=False),
        "groups": (Score("< 1", 0.3, 0.35, False), Score(">= 1", 0.6, 0.5, False)),
        "group_kind": "bin",
    }
    assert judge(numbers(**rmse), Replay(min_requests=10, max_metric_drop=0.1)) == ReplayVerdict(
        "passed",
        "wins_on_replay: disagreement 1.2% ≤ 5%, rmse 0.5 vs 0.4 (+0.100), worst bin >= 1 "
        "+0.100, p95 0.8 ms vs 0.7 ms (1.14× ≤ 2×) on 500 requests (40 labelled), "
        "v1.1.0 vs v1.0.0",
    )
    assert judge(numbers(**rmse), Replay(min_requests=10, max_metric_drop=0.09)).failed
    better = {**rmse, "metric": Score("rmse", 0.3, 0.4, higher_is_better=False), "groups": ()}
    assert judge(numbers(**better), LIMITS).status == "passed"


def test_a_metric_that_cannot_be_computed_fails() -> None:
    unknown = {**LABELLED, "metric": Score("log_loss", None, 0.3, False), "groups": ()}
    assert judge(numbers(**unknown), LIMITS) == ReplayVerdict(
        "failed",
        "wins_on_replay: v1.1.0 vs v1.0.0 fails: log_loss unknown on the labelled rows "
        "(disagreement 1.0% ≤ 5%, log_loss unknown on the labelled rows, p95 0.8 ms vs 0.7 ms "
        "(1.14× ≤ 2×) on 500 requests (120 labelled))",
    )
    missing = {**LABELLED, "metric": None, "groups": (Score("a", None, 1.0),)}
    assert judge(numbers(**missing), LIMITS).text == (
        "wins_on_replay: v1.1.0 vs v1.0.0 fails: the primary metric unknown on the labelled rows "
        "(disagreement 1.0% ≤ 5%, the primary metric unknown on the labelled rows, p95 0.8 ms "
        "vs 0.7 ms (1.14× ≤ 2×) on 500 requests (120 labelled))"
    )


def test_a_drop_within_rounding_is_no_drop_and_the_worst_group_is_the_largest_drop() -> None:
    rounding = {"labelled": 5, "metric": Score("f1_macro", 0.0, 1e-9), "groups": ()}
    assert judge(numbers(**rounding), LIMITS).status == "passed"
    groups = {
        "labelled": 5,
        "metric": Score("f1_macro", 0.9, 0.9),
        "groups": (Score("a", 0.9, 0.9), Score("b", 0.0, 1e-9), Score("c", 0.85, 0.9)),
    }
    assert judge(numbers(**groups), Replay(min_requests=10, max_metric_drop=0.1)).text == (
        "wins_on_replay: disagreement 1.2% ≤ 5%, f1_macro 0.9 vs 0.9 (+0.000), worst class c "
        "-0.050, p95 0.8 ms vs 0.7 ms (1.14× ≤ 2×) on 500 requests (5 labelled), v1.1.0 vs v1.0.0"
    )
    tie = {**groups, "groups": (Score("a", 0.8, 0.9), Score("b", 0.8, 0.9))}
    assert judge(numbers(**tie), LIMITS).text.startswith(
        "wins_on_replay: v1.1.0 vs v1.0.0 fails: worst class a -0.100 (a drop of 0.1 > 0)"
    )  # the first of equal drops
    within = {**groups, "groups": (Score("a", 0.9, 0.9), Score("b", 0.0, 1e-9))}
    assert judge(numbers(**within), LIMITS).status == "passed"


def test_every_failure_is_named() -> None:
    assert judge(numbers(differing=400, p95_ms=(3.0, 1.0)), LIMITS) == ReplayVerdict(
        "failed",
        "wins_on_replay: v1.1.0 vs v1.0.0 fails: disagreement 80.0% > 5%; p95 3 ms vs 1 ms "
        "(3× > 2×) (disagreement 80.0% > 5%, p95 3 ms vs 1 ms (3× > 2×) on 500 requests "
        "(no labelled feedback: no metric))",
    )


def test_score_drop() -> None:
    assert Score("a", 0.9, 1.0).delta() == pytest.approx(-0.1)
    assert Score("a", None, 1.0).delta() is None
    assert Score("a", 1.0, None).delta() is None
    assert Score("a", 0.9, 1.0).drop() == pytest.approx(0.1)
    assert Score("a", 1.0, 0.9).drop() == pytest.approx(-0.1)
    assert Score("a", 0.9, 1.0, higher_is_better=False).drop() == pytest.approx(-0.1)
    assert Score("a", None, 1.0).drop() is None
    assert Score("a", 1.0, None).drop() is None


def test_nothing_to_replay_and_pending() -> None:
    assert nothing_to_replay("production") == ReplayVerdict(
        "passed", "wins_on_replay: production runs no version yet, nothing to replay"
    )
    assert pending("production", 12) == ReplayVerdict(
        "pending", "wins_on_replay: known after apply (12 captured request(s) of production)"
    )
    assert pending("production", 12).failed is False
    assert ReplayVerdict("failed", "x").failed is True


def test_differing_labels_as_text_and_numbers_beyond_a_tenth_of_the_spread() -> None:
    assert differing(["a", "b", 1], ["a", "c", "1"], "classification") == 1
    assert differing([], [], "classification") == 0
    # running values 0, 10: standard deviation 5, tolerance 0.5
    assert differing([0.5, 10.6], [0.0, 10.0], "regression") == 1
    assert differing([0.4, 9.5], [0.0, 10.0], "regression") == 0
    assert differing([1.0, 1.0], [1.0, 1.0], "regression") == 0
    assert differing([1.1, 1.0], [1.0, 1.0], "regression") == 1
    assert differing([], [], "regression") == 0
    assert differing([1.01], [1.0], "regression") == 1  # one value: no spread, no tolerance
    for task in ("classification", "regression"):
        with pytest.raises(ValueError):
            differing([1], [1, 2], task)


def test_p95_by_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([3.0]) == 3.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0
    assert p95([float(i) for i in range(1, 21)]) == 19.0
    assert p95([5.0, 1.0]) == 5.0


def test_quartile_bins() -> None:
    assert quartile_edges([]) == ()
    assert quartile_edges([float(i) for i in range(8)]) == (2.0, 4.0, 6.0)
    assert quartile_edges([1.0, 1.0, 1.0, 1.0]) == (1.0,)
    assert quartile_edges([3.0, 1.0, 2.0]) == (1.0, 2.0, 3.0)
    assert quartile_edges([5.0]) == (5.0,)
    edges = (2.0, 4.0, 6.0)
    assert [bin_label(v, edges) for v in (1.0, 2.0, 3.9, 4.0, 6.0, 9.0)] == [
        "< 2",
        "[2, 4)",
        "[2, 4)",
        "[4, 6)",
        ">= 6",
        ">= 6",
    ]
    assert bin_label(3.0, ()) == "all"
    assert bin_label(0.5, (1.0,)) == "< 1"
    assert bin_label(1.0, (1.0,)) == ">= 1"


# ------------------------------------------------------------ in the promotion policy

V1 = RegisteredVersion("iris", "v1.0.0", "c1", "a" * 32, "2025-01-01T00:00:00Z", {"test": {}})
V2 = RegisteredVersion("iris", "v1.1.0", "c2", "b" * 32, "2025-01-02T00:00:00Z", {"test": {}})
RUNS_V1 = {
    "production": [Assignment("iris", "production", "v1.0.0", "c1", "iris#production#1", 1, "t")]
}
FAIL = ReplayVerdict("failed", "wins_on_replay: v1.1.0 vs v1.0.0 fails: disagreement 80.0% > 5%")
OK = ReplayVerdict("passed", "wins_on_replay: disagreement 1.0% ≤ 5%")


def replaying(verdict: ReplayVerdict, calls: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    def check(candidate: RegisteredVersion, running: RegisteredVersion) -> ReplayVerdict:
        calls.append((candidate.version, running.version))
        return verdict

    return check


def env(**fields: object) -> Environment:
    return Environment.model_validate({"target": "local", "port": 8080, **fields})


def test_a_failed_replay_keeps_the_candidate_out_with_its_numbers() -> None:
    calls: list[tuple[str, str]] = []
    cfg = env(require=["wins_on_replay"])
    res, rules = resolve_environment(
        "production", cfg, [V1, V2], [], "accuracy", lambda: RUNS_V1, None, replaying(FAIL, calls)
    )
    assert res == Resolution(
        "production",
        V1,
        f"latest version passing the gates (v1.1.0 fail them); {FAIL.text}",
        skipped=("v1.1.0",),
    )
    assert calls == [("v1.1.0", "v1.0.0")]  # the champion is not replayed against itself
    assert rules.wins_on_replay is True and rules.champion == V1
    pinned = resolve("production", "v1.1.0", [V1, V2], [], rules)
    assert pinned == Resolution("production", V2, "", blocked=FAIL.text)


def test_a_passing_replay_lets_it_in_and_says_so() -> None:
    calls: list[tuple[str, str]] = []
    cfg = env(require=["wins_on_replay"])
    res, _ = resolve_environment(
        "production", cfg, [V1, V2], [], "accuracy", lambda: RUNS_V1, None, replaying(OK, calls)
    )
    assert res == Resolution(
        "production", V2, f"latest version passing the gates; {OK.text}", replay=OK
    )
    pinned, _ = resolve_environment(
        "production", cfg, [V1, V2], [], "accuracy", lambda: RUNS_V1, "v1.1.0",
        replaying(OK, calls),
    )  # fmt: skip
    assert pinned == Resolution("production", V2, f"pinned to v1.1.0; {OK.text}", replay=OK)


def test_pending_lets_it_through_the_plan_and_without_a_check_it_is_pending() -> None:
    wait = pending("production", 3)
    cfg = env(require=["wins_on_replay"])
    res, _ = resolve_environment(
        "production", cfg, [V1, V2], [], "accuracy", lambda: RUNS_V1, None, replaying(wait, [])
    )
    assert res == Resolution(
        "production", V2, f"latest version passing the gates; {wait.text}", replay=wait
    )
    res, _ = resolve_environment("production", cfg, [V1, V2], [], "accuracy", lambda: RUNS_V1)
    unknown = ReplayVerdict("pending", "wins_on_replay: known after apply")
    assert res == Resolution(
        "production", V2, f"latest version passing the gates; {unknown.text}", replay=unknown
    )


def test_the_first_version_of_an_environment_has_nothing_to_replay_against() -> None:
    calls: list[tuple[str, str]] = []
    cfg = env(require=["wins_on_replay"])
    res, rules = resolve_environment(
        "production", cfg, [V1, V2], [], "accuracy", lambda: {}, None, replaying(FAIL, calls)
    )
    assert res == Resolution("production", V2, "latest version passing the gates")
    assert calls == [] and rules.champion is None


def test_without_wins_on_replay_the_check_is_never_called() -> None:
    calls: list[tuple[str, str]] = []
    res, rules = resolve_environment(
        "production", env(), [V1, V2], [], "accuracy", lambda: RUNS_V1, None,
        replaying(FAIL, calls),
    )  # fmt: skip
    assert res == Resolution("production", V2, "latest version passing the gates")
    assert rules == Promotion() and calls == []


def test_beats_champion_is_checked_before_the_replay() -> None:
    calls: list[tuple[str, str]] = []
    better = RegisteredVersion("iris", "v1.0.0", "c1", "a" * 32, "t", {"test": {"accuracy": 0.9}})
    worse = RegisteredVersion("iris", "v1.1.0", "c2", "b" * 32, "t", {"test": {"accuracy": 0.8}})
    cfg = env(require=["beats_champion", "wins_on_replay"])
    res, _ = resolve_environment(
        "production", cfg, [better, worse], [], "accuracy", lambda: RUNS_V1, "v1.1.0",
        replaying(FAIL, calls),
    )  # fmt: skip
    assert res.blocked == "beats_champion: v1.1.0 accuracy 0.8 does not beat v1.0.0's 0.9"
    assert calls == []
