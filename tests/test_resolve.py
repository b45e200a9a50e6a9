"""Which version an environment runs: gates, pins, `after` and `beats_champion`. No disk."""

from __future__ import annotations

from mllc.policy.promotion import Promotion, resolve
from mllc.types import RegisteredVersion

GATES = ["accuracy >= 0.9"]


def version(v: str, accuracy: float | None) -> RegisteredVersion:
    test = {} if accuracy is None else {"accuracy": accuracy}
    return RegisteredVersion("iris", v, "c" * 40, v.replace(".", "") * 4, "t", {"test": test})


V1, V2, V3 = version("v1.0.0", 0.95), version("v1.1.0", 0.97), version("v1.2.0", 0.80)


def test_latest_is_the_newest_version_passing_the_gates() -> None:
    res = resolve("staging", "latest", [V3, V1, V2], GATES)
    assert res.version == V2 and res.blocked is None
    assert res.reason == "latest version passing the gates (v1.2.0 fail them)"


def test_latest_with_nothing_passing_deploys_nothing_and_says_why() -> None:
    res = resolve("staging", "latest", [V3], GATES)
    assert res.version is None and res.blocked is None
    assert "accuracy 0.8 < 0.9 (gate: accuracy >= 0.9)" in res.reason


def test_a_missing_metric_fails_its_gate() -> None:
    res = resolve("staging", "v1.0.0", [version("v1.0.0", None)], GATES)
    assert res.blocked == "v1.0.0 fails its gates: accuracy unknown (gate: accuracy >= 0.9)"


def test_a_pinned_version_must_exist_and_pass() -> None:
    assert resolve("prod", "v9.0.0", [V1], GATES).blocked == (
        "v9.0.0 is not registered (registered: v1.0.0)"
    )
    blocked = resolve("prod", "v1.2.0", [V1, V3], GATES).blocked
    assert blocked == "v1.2.0 fails its gates: accuracy 0.8 < 0.9 (gate: accuracy >= 0.9)"
    assert resolve("prod", "v1.0.0", [V1, V2], GATES).version == V1


def test_after_keeps_out_a_version_that_has_not_run_in_the_earlier_environment() -> None:
    rules = Promotion(after="staging", ran_after=frozenset({"v1.0.0"}))
    res = resolve("production", "latest", [V1, V2], GATES, rules)
    assert res.version == V1  # v1.1.0 passes the gates but never ran in staging
    pinned = resolve("production", "v1.1.0", [V1, V2], GATES, rules)
    assert pinned.blocked == "v1.1.0 has not run in staging yet (after: staging)"


def test_beats_champion_compares_the_primary_metric_with_what_runs_now() -> None:
    challenger = version("v1.3.0", 0.93)
    rules = Promotion(beats_champion=True, champion=V2, metric="accuracy")
    res = resolve("production", "latest", [V1, V2, challenger], GATES, rules)
    assert res.version == V2  # v1.3.0 (0.93) does not beat v1.1.0 (0.97)
    pinned = resolve("production", "v1.3.0", [V2, challenger], GATES, rules)
    assert pinned.blocked is not None and "does not beat v1.1.0's 0.97" in pinned.blocked
    lower = Promotion(beats_champion=True, champion=V2, metric="accuracy", higher_is_better=False)
    assert resolve("production", "v1.3.0", [V2, challenger], GATES, lower).blocked is None
