"""A synthetic population for drift's false-alarm and detection rates, shared by
tests/test_monitor_drift.py (which holds the issue's bar) and bench/bench_monitor.py
(which prints the rates and the detection curve).

Mixed features, drawn fresh for the reference and for every batch, so that a
"same-distribution" batch really is one (unlike a resample of a small dataset).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mllc.monitor.drift import dataset_drift

PLAN_LEVELS = ("basic", "standard", "pro")
PLAN_SHARES, PLAN_SHIFT = (0.5, 0.3, 0.2), (0.25, 0.3, 0.45)
REGION_LEVELS = ("north", "south", "east", "west", "central", "islands")
REGION_SHARES = (0.3, 0.25, 0.15, 0.12, 0.1, 0.08)
CHARGES_MEDIAN, CHARGES_LOG_SD, CHARGES_SHIFT = 50.0, 0.5, 1.5
POPULATION_KINDS: dict[str, Any] = {
    "age": "numeric",
    "charges": "numeric",
    "calls": "numeric",
    "flag": "numeric",
    "plan": "categorical",
    "region": "categorical",
}
REFERENCE_ROWS, BATCH_ROWS, BATCHES = 5000, 500, 100
# seed streams: (0, 0) the reference; (1, i) same-distribution batch i; (2, i) and
# (3, i) batch i of the charges and the plan shifts
SAME, CHARGES, PLAN = 1, 2, 3


def draw_population(
    rows: int,
    seed: tuple[int, int],
    charges_factor: float = 1.0,
    plan_shares: tuple[float, ...] = PLAN_SHARES,
) -> pd.DataFrame:
    """``rows`` fresh draws: age normal, charges lognormal (skewed), calls poisson counts,
    flag a bool True 10% of the time, plan 3 levels, region 6 levels."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40.0, 10.0, rows),
            "charges": rng.lognormal(np.log(CHARGES_MEDIAN), CHARGES_LOG_SD, rows) * charges_factor,
            "calls": rng.poisson(3.0, rows),
            "flag": rng.random(rows) < 0.1,
            "plan": rng.choice(PLAN_LEVELS, rows, p=plan_shares),
            "region": rng.choice(REGION_LEVELS, rows, p=REGION_SHARES),
        }
    )


def reference_population() -> pd.DataFrame:
    return draw_population(REFERENCE_ROWS, (0, 0))


def alarm_rate(
    reference: pd.DataFrame,
    method: Any,
    threshold: float,
    stream: int,
    batches: int = BATCHES,
    rows: int = BATCH_ROWS,
    **shift: Any,
) -> float:
    """The share of ``batches`` seeded fresh batches whose dataset verdict breaches."""
    alarms = sum(
        dataset_drift(
            reference,
            draw_population(rows, (stream, i), **shift),
            POPULATION_KINDS,
            method,
            threshold,
        ).breach
        for i in range(batches)
    )
    return alarms / batches
