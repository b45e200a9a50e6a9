"""Gates: ``metric op number`` conditions on a version's held-out (test) metrics.

A missing or NaN metric fails its gate: a gate that cannot be checked never
lets a version through.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mllc.spec.fields import parse_gate

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_NEGATED = {">=": "<", "<=": ">", ">": "<=", "<": ">="}


@dataclass(frozen=True)
class GateResult:
    gate: str
    metric: str
    op: str
    bound: float
    value: float | None
    passed: bool

    def text(self) -> str:
        """``accuracy 0.94 < 0.999 (gate: accuracy >= 0.999)`` or ``accuracy 0.97 >= 0.9``."""
        if self.value is None:
            return f"{self.metric} unknown (gate: {self.gate})"
        shown = f"{self.value:.4g}"
        if self.passed:
            return f"{self.metric} {shown} {self.op} {self.bound:g}"
        return f"{self.metric} {shown} {_NEGATED[self.op]} {self.bound:g} (gate: {self.gate})"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def evaluate(gates: Sequence[str], metrics: Mapping[str, Any]) -> list[GateResult]:
    results = []
    for gate in gates:
        metric, op, bound = parse_gate(gate)
        value = _number(metrics.get(metric))
        passed = value is not None and _OPS[op](value, bound)
        results.append(GateResult(gate, metric, op, bound, value, passed))
    return results
