"""Promotion policy, pinned whole (found by mutation testing): which version an environment
should run, and every reason it gives, compared as complete ``Resolution`` values.

``promotion_rules`` is given the assignment history, so nothing here reads Git.
"""

from __future__ import annotations

from mllc.policy.gates import evaluate
from mllc.policy.promotion import (
    Promotion,
    Resolution,
    held_out_metrics,
    needs_history,
    promotion_rules,
    resolve,
    resolve_environment,
    running_version,
)
from mllc.spec.deployment import Environment
from mllc.types import Assignment, RegisteredVersion

GATES = ["accuracy >= 0.9"]


def version(v: str, accuracy: float | None = None, **metrics: object) -> RegisteredVersion:
    test: dict[str, object] = {} if accuracy is None else {"accuracy": accuracy}
    test.update(metrics)
    return RegisteredVersion("iris", v, "c" * 40, f"md5-{v}", "t", {"test": test})


V1, V2, V3 = version("v1.0.0", 0.95), version("v1.1.0", 0.97), version("v1.2.0", 0.80)


def gates(v: RegisteredVersion, which: list[str] = GATES) -> tuple[object, ...]:
    return tuple(evaluate(which, held_out_metrics(v)))


# ------------------------------------------------------------------ held-out metrics


def test_held_out_metrics_are_the_test_split_only() -> None:
    assert held_out_metrics(V1) == {"accuracy": 0.95}
    both = RegisteredVersion("iris", "v1", "c", "m", "t", {"train": {"a": 1}, "test": {"a": 2}})
    assert held_out_metrics(both) == {"a": 2}
    assert held_out_metrics(RegisteredVersion("iris", "v1", "c", "m", "t", {})) == {}
    odd = RegisteredVersion("iris", "v1", "c", "m", "t", {"test": [0.9]})
    assert held_out_metrics(odd) == {}
    broken = RegisteredVersion("iris", "v1", "c", "m", "t", ["test"])  # type: ignore[arg-type]
    assert held_out_metrics(broken) == {}


# ------------------------------------------------------------------ latest


def test_latest_with_nothing_registered() -> None:
    assert resolve("staging", "latest", [], GATES) == Resolution(
        "staging", None, "no version registered yet"
    )


def test_latest_is_the_newest_passing_and_names_what_it_skips() -> None:
    assert resolve("staging", "latest", [V1, V2], GATES) == Resolution(
        "staging", V2, "latest version passing the gates", gates=gates(V2)
    )
    v4 = version("v1.3.0", 0.5)
    assert resolve("staging", "latest", [v4, V3, V1, V2], GATES) == Resolution(
        "staging",
        V2,
        "latest version passing the gates (v1.2.0, v1.3.0 fail them)",
        gates=gates(V2),
        skipped=("v1.2.0", "v1.3.0"),
    )


def test_versions_are_ordered_as_versions_not_as_text() -> None:
    v9, v10 = version("v1.9.0", 0.95), version("v1.10.0", 0.96)
    assert resolve("staging", "latest", [v10, v9], GATES).version == v10
    assert resolve("staging", "latest", [v9, v10], GATES).version == v10


def test_latest_when_nothing_passes_says_why_for_the_newest() -> None:
    v0 = version("v0.9.0", 0.5)
    res = resolve("staging", "latest", [V3, v0], ["accuracy >= 0.9", "f1_macro >= 0.5"])
    assert res == Resolution(
        "staging",
        None,
        "no registered version passes the gates and promotion rules; v1.2.0: "
        "accuracy 0.8 < 0.9 (gate: accuracy >= 0.9); f1_macro unknown (gate: f1_macro >= 0.5)",
    )


def test_latest_when_the_rules_hold_everything_back_names_the_rule() -> None:
    rules = Promotion(after="staging", ran_after=frozenset())
    assert resolve("production", "latest", [V1, V2], GATES, rules) == Resolution(
        "production",
        None,
        "no registered version passes the gates and promotion rules; v1.1.0: "
        "v1.1.0 has not run in staging yet (after: staging)",
    )
    both = resolve("production", "latest", [V3], GATES, rules)
    assert both.reason == (
        "no registered version passes the gates and promotion rules; v1.2.0: "
        "accuracy 0.8 < 0.9 (gate: accuracy >= 0.9); "
        "v1.2.0 has not run in staging yet (after: staging)"
    )


def production_keeps_v1() -> Resolution:
    """production stays on v1.0.0; the newer v1.1.0 is skipped (and said to fail the gates,
    whatever held it back)."""
    return Resolution(
        "production",
        V1,
        "latest version passing the gates (v1.1.0 fail them)",
        gates=gates(V1),
        skipped=("v1.1.0",),
    )


def test_latest_skips_a_version_the_rules_hold_back() -> None:
    rules = Promotion(after="staging", ran_after=frozenset({"v1.0.0"}))
    assert resolve("production", "latest", [V1, V2], GATES, rules) == production_keeps_v1()


def test_latest_without_gates_is_the_newest() -> None:
    assert resolve("staging", "latest", [V3, V1], []) == Resolution(
        "staging", V3, "latest version passing the gates"
    )


# ------------------------------------------------------------------ pinned


def test_a_pinned_version_that_passes() -> None:
    assert resolve("production", "v1.0.0", [V1, V2], GATES) == Resolution(
        "production", V1, "pinned to v1.0.0", gates=gates(V1)
    )


def test_a_pinned_version_that_is_not_registered() -> None:
    assert resolve("production", "v9.0.0", [V2, V1], GATES) == Resolution(
        "production", None, "", blocked="v9.0.0 is not registered (registered: v1.0.0, v1.1.0)"
    )
    assert resolve("production", "v9.0.0", [], GATES) == Resolution(
        "production", None, "", blocked="v9.0.0 is not registered (registered: none)"
    )


def test_a_pinned_version_failing_gates_and_rules_says_both() -> None:
    rules = Promotion(after="staging", ran_after=frozenset({"v1.0.0"}))
    two = ["accuracy >= 0.9", "accuracy <= 0.5"]
    assert resolve("production", "v1.2.0", [V1, V3], two, rules) == Resolution(
        "production",
        V3,
        "",
        blocked="v1.2.0 fails its gates: accuracy 0.8 < 0.9 (gate: accuracy >= 0.9); "
        "accuracy 0.8 > 0.5 (gate: accuracy <= 0.5); "
        "v1.2.0 has not run in staging yet (after: staging)",
        gates=gates(V3, two),
    )


def test_a_pinned_version_held_back_by_a_rule_only() -> None:
    rules = Promotion(after="staging", ran_after=frozenset({"v1.0.0"}))
    assert resolve("production", "v1.1.0", [V1, V2], GATES, rules) == Resolution(
        "production",
        V2,
        "",
        blocked="v1.1.0 has not run in staging yet (after: staging)",
        gates=gates(V2),
    )


# ------------------------------------------------------------------ beats_champion


def champion_rules(champion: RegisteredVersion | None, higher: bool = True) -> Promotion:
    return Promotion(
        beats_champion=True, champion=champion, metric="accuracy", higher_is_better=higher
    )


def test_beats_champion_when_higher_is_better() -> None:
    better, worse, equal = version("v2.0.0", 0.98), version("v2.0.0", 0.96), version("v2.0.0", 0.97)
    assert resolve("production", "v2.0.0", [V2, better], GATES, champion_rules(V2)).blocked is None
    assert resolve("production", "v2.0.0", [V2, equal], GATES, champion_rules(V2)).blocked is None
    assert resolve("production", "v2.0.0", [V2, worse], GATES, champion_rules(V2)).blocked == (
        "beats_champion: v2.0.0 accuracy 0.96 does not beat v1.1.0's 0.97"
    )


def test_beats_champion_when_lower_is_better() -> None:
    better, worse, equal = version("v2.0.0", 0.96), version("v2.0.0", 0.98), version("v2.0.0", 0.97)
    rules = champion_rules(V2, higher=False)
    assert resolve("production", "v2.0.0", [V2, better], [], rules).blocked is None
    assert resolve("production", "v2.0.0", [V2, equal], [], rules).blocked is None
    assert resolve("production", "v2.0.0", [V2, worse], [], rules).blocked == (
        "beats_champion: v2.0.0 accuracy 0.98 does not beat v1.1.0's 0.97"
    )


def test_beats_champion_with_an_unknown_metric_holds_back() -> None:
    unknown = version("v2.0.0", None)
    assert resolve("production", "v2.0.0", [V2, unknown], [], champion_rules(V2)).blocked == (
        "beats_champion: accuracy is unknown for v2.0.0 or v1.1.0"
    )
    no_champion_metric = version("v1.1.0", None)
    assert resolve(
        "production", "v2.0.0", [no_champion_metric, version("v2.0.0", 0.9)], [],
        champion_rules(no_champion_metric),
    ).blocked == "beats_champion: accuracy is unknown for v2.0.0 or v1.1.0"  # fmt: skip
    text = RegisteredVersion("iris", "v2.0.0", "c", "m", "t", {"test": {"accuracy": "0.99"}})
    assert resolve("production", "v2.0.0", [V2, text], [], champion_rules(V2)).blocked == (
        "beats_champion: accuracy is unknown for v2.0.0 or v1.1.0"
    )


def test_beats_champion_without_a_champion_or_against_itself_passes() -> None:
    assert resolve("production", "v1.2.0", [V3], [], champion_rules(None)).blocked is None
    assert resolve("production", "v1.1.0", [V2], [], champion_rules(V2)).blocked is None
    off = Promotion(beats_champion=False, champion=V2, metric="accuracy")
    assert resolve("production", "v1.2.0", [V2, V3], [], off).blocked is None


# ------------------------------------------------------------------ the rules' facts


def assigned(env: str, v: str | None, n: int, unassign: bool = False) -> Assignment:
    return Assignment("iris", env, v, "c" * 40, f"iris#{env}#{n}", n, "t", unassign=unassign)


def test_no_rules_give_the_empty_promotion() -> None:
    cfg = {"target": "local", "require": []}
    assert (
        promotion_rules(
            cfg.get("after"), cfg.get("require", []), "production", [V1], "accuracy", {}
        )
        == Promotion()
    )


def test_after_collects_every_version_that_ran_in_the_earlier_environment() -> None:
    history = {
        "staging": [assigned("staging", "v1.0.0", 1), assigned("staging", None, 2)],
        "production": [assigned("production", "v1.0.0", 3)],
        "dev": [assigned("dev", "v1.1.0", 4)],
    }
    cfg = {"after": "staging"}
    rules = promotion_rules(
        cfg.get("after"), cfg.get("require", []), "production", [V1, V2], "accuracy", history
    )
    assert rules == Promotion(
        after="staging",
        ran_after=frozenset({"v1.0.0"}),
        beats_champion=False,
        champion=V1,
        metric="accuracy",
        higher_is_better=True,
    )


def test_beats_champion_takes_the_last_assignment_as_champion() -> None:
    history = {
        "production": [
            assigned("production", "v1.0.0", 1),
            assigned("production", "v1.1.0", 2),
            assigned("production", None, 3),
            assigned("production", "v1.0.0", 4, unassign=True),
        ]
    }
    cfg = {"require": ["beats_champion"]}
    rules = promotion_rules(
        cfg.get("after"), cfg.get("require", []), "production", [V1, V2], "rmse", history
    )
    assert rules == Promotion(
        after=None,
        ran_after=frozenset(),
        beats_champion=True,
        champion=V2,
        metric="rmse",
        higher_is_better=False,
    )


def test_a_champion_that_is_no_longer_registered_is_none() -> None:
    history = {"production": [assigned("production", "v0.1.0", 1)]}
    cfg = {"require": ["beats_champion"]}
    rules = promotion_rules(
        cfg.get("after"), cfg.get("require", []), "production", [V1], "accuracy", history
    )
    assert rules.champion is None and rules.beats_champion
    empty = promotion_rules(
        cfg.get("after"), cfg.get("require", []), "production", [V1], "accuracy", {}
    )
    assert empty == Promotion(beats_champion=True, metric="accuracy", higher_is_better=True)


def test_after_an_environment_with_no_assignment_yet() -> None:
    cfg = {"after": "staging"}
    rules = promotion_rules(
        cfg.get("after"), cfg.get("require", []), "production", [V1], "accuracy", {}
    )
    assert rules == Promotion(after="staging", metric="accuracy", higher_is_better=True)


# ------------------------------------------------------------------ the one decision


def env(**fields: object) -> Environment:
    return Environment.model_validate({"target": "local", "port": 8081, **fields})


def no_history() -> dict[str, list[Assignment]]:
    raise AssertionError("the history was read although no rule needs it")


def test_only_after_or_beats_champion_need_the_history() -> None:
    assert needs_history(env()) is False
    assert needs_history(env(after="staging")) is True
    assert needs_history(env(require=["beats_champion"])) is True


def test_resolve_environment_is_resolve_with_the_spec_s_model_and_rules() -> None:
    assert resolve_environment("staging", env(), [V1, V2], GATES, "accuracy", no_history) == (
        Resolution("staging", V2, "latest version passing the gates", gates=gates(V2)),
        Promotion(),
    )
    pinned = env(model="v1.0.0")
    assert resolve_environment("staging", pinned, [V1, V2], GATES, "accuracy", no_history) == (
        Resolution("staging", V1, "pinned to v1.0.0", gates=gates(V1)),
        Promotion(),
    )
    # an explicit model (promote) wins over the spec's
    chosen = resolve_environment(
        "staging", pinned, [V1, V2], GATES, "accuracy", no_history, "v1.1.0"
    )
    assert chosen[0] == Resolution("staging", V2, "pinned to v1.1.0", gates=gates(V2))


def test_resolve_environment_reads_the_history_only_for_the_rules() -> None:
    history = {"staging": [assigned("staging", "v1.0.0", 1)]}
    calls: list[int] = []

    def read() -> dict[str, list[Assignment]]:
        calls.append(1)
        return history

    cfg = env(after="staging")
    res, rules = resolve_environment("production", cfg, [V1, V2], GATES, "accuracy", read)
    assert calls == [1]
    assert rules == Promotion(after="staging", ran_after=frozenset({"v1.0.0"}), metric="accuracy")
    assert res == production_keeps_v1()


def test_resolve_environment_finds_the_champion_of_its_own_environment() -> None:
    weaker = version("v1.1.0", 0.92)  # passes the gate, does not beat v1.0.0's 0.95
    history = {
        "production": [assigned("production", "v1.0.0", 1)],
        "staging": [assigned("staging", "v1.1.0", 2)],
    }
    cfg = env(require=["beats_champion"])
    res, rules = resolve_environment(
        "production", cfg, [V1, weaker], GATES, "accuracy", lambda: history
    )
    assert rules.champion == V1
    assert res == production_keeps_v1()


def test_the_running_version_is_the_last_assignment_of_a_version() -> None:
    history = {
        "staging": [
            assigned("staging", "v1.0.0", 1),
            assigned("staging", "v1.1.0", 2),
            assigned("staging", "v1.1.0", 3, unassign=True),
            assigned("staging", None, 4),
        ],
        "production": [],
    }
    # unassign events and assignments without a version are passed over
    assert running_version(history, "staging") == "v1.1.0"
    history["staging"] = history["staging"][:1] + history["staging"][2:]
    assert running_version(history, "staging") == "v1.0.0"
    assert running_version(history, "production") is None
    assert running_version(history, "qa") is None
