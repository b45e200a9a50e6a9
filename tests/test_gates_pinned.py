"""Gates, both verdicts of every operator, in memory (found by mutation testing).

Each test compares whole results (every field of every ``GateResult``) and the whole
text a user reads, so an operator swapped, a boundary moved or a message changed fails
here. The values sit on each side of the bound and on it.
"""

from __future__ import annotations

import math

import pytest

from mllc.policy.gates import GateResult, evaluate


@pytest.mark.parametrize(
    ("op", "below", "equal", "above"),
    [
        (">=", False, True, True),
        (">", False, False, True),
        ("<=", True, True, False),
        ("<", True, False, False),
    ],
)
def test_each_operator_on_both_sides_of_its_bound_and_on_it(
    op: str, below: bool, equal: bool, above: bool
) -> None:
    gate = f"accuracy {op} 0.9"
    for value, passed in ((0.85, below), (0.9, equal), (0.95, above)):
        assert evaluate([gate], {"accuracy": value}) == [
            GateResult(gate, "accuracy", op, 0.9, value, passed)
        ], (gate, value)


@pytest.mark.parametrize(
    ("gate", "value", "text"),
    [
        # a passing gate shows the value and the gate's own operator
        ("accuracy >= 0.9", 0.97, "accuracy 0.97 >= 0.9"),
        ("accuracy > 0.9", 0.97, "accuracy 0.97 > 0.9"),
        ("rmse <= 50", 42.123456, "rmse 42.12 <= 50"),
        ("rmse < 50", 42, "rmse 42 < 50"),
        # a failing one shows the operator that holds instead, and the gate
        ("accuracy >= 0.999", 0.94, "accuracy 0.94 < 0.999 (gate: accuracy >= 0.999)"),
        ("accuracy > 0.9", 0.9, "accuracy 0.9 <= 0.9 (gate: accuracy > 0.9)"),
        ("rmse <= 50", 50.5, "rmse 50.5 > 50 (gate: rmse <= 50)"),
        ("rmse < 50", 50, "rmse 50 >= 50 (gate: rmse < 50)"),
        # four significant digits of the value, the bound as written
        ("accuracy >= 0.95", 0.949999, "accuracy 0.95 < 0.95 (gate: accuracy >= 0.95)"),
        ("r2 >= 0.123456", 0.1, "r2 0.1 < 0.123456 (gate: r2 >= 0.123456)"),
    ],
)
def test_the_text_of_each_verdict(gate: str, value: float, text: str) -> None:
    (result,) = evaluate([gate], {gate.split()[0]: value})
    assert result.text() == text


@pytest.mark.parametrize(
    "metrics",
    [
        {},
        {"accuracy": None},
        {"accuracy": math.nan},
        {"accuracy": "0.97"},
        {"accuracy": True},  # a boolean is not a score, though Python counts it as 1
        {"accuracy": [0.97]},
        {"other": 0.97},
    ],
)
def test_a_metric_that_cannot_be_read_fails_its_gate(metrics: dict[str, object]) -> None:
    gate = "accuracy >= 0.5"
    (result,) = evaluate([gate], metrics)
    assert result == GateResult(gate, "accuracy", ">=", 0.5, None, False)
    assert result.text() == "accuracy unknown (gate: accuracy >= 0.5)"
    # the same for an operator that a missing value would pass if it were read as 0
    (lower,) = evaluate(["rmse <= 10"], {})
    assert lower == GateResult("rmse <= 10", "rmse", "<=", 10.0, None, False)


def test_integers_and_infinities_are_read_as_numbers() -> None:
    assert evaluate(["rmse < 50"], {"rmse": 42}) == [
        GateResult("rmse < 50", "rmse", "<", 50.0, 42.0, True)
    ]
    assert isinstance(evaluate(["rmse < 50"], {"rmse": 42})[0].value, float)
    assert evaluate(["rmse < 50"], {"rmse": math.inf}) == [
        GateResult("rmse < 50", "rmse", "<", 50.0, math.inf, False)
    ]


def test_every_gate_is_evaluated_in_order_whatever_the_others_give() -> None:
    gates = ["accuracy >= 0.99", "f1_macro >= 0.5", "precision_macro > 0.1"]
    results = evaluate(gates, {"accuracy": 0.9, "f1_macro": 0.6})
    assert results == [
        GateResult("accuracy >= 0.99", "accuracy", ">=", 0.99, 0.9, False),
        GateResult("f1_macro >= 0.5", "f1_macro", ">=", 0.5, 0.6, True),
        GateResult("precision_macro > 0.1", "precision_macro", ">", 0.1, None, False),
    ]
    assert evaluate([], {"accuracy": 0.9}) == []
