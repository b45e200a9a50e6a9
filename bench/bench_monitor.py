"""False alarms and detection of `mllc monitor`'s drift check; its speed against scipy's ks_2samp.

Target (the monitoring issue): over 100 seeded same-distribution batches the
false-alarm rate is <= 5%, and over 100 seeded batches with a known shift the
detection rate is >= 95%.

Data: data/churn.csv with the feature columns of specs/churn.yaml (not the
target, not features.exclude; numeric = numeric dtype, categorical = the rest),
read raw as the CSV has it (missing cells and messy values included). A seeded
60% random split is the reference (the training data); the other 40% is the
pool of same-distribution rows. A batch is drawn from the pool with replacement.
The verdict counted is the dataset's: a batch alarms when any feature breaches.

Known shifts, applied to the same-distribution batch of the same seed:
* numeric: monthly_charges multiplied by 1.3;
* categorical: each row's plan is redrawn so that one plan's share is twice its
  share in the reference (the other rows take the pool's other plan values,
  missing included), once for "standard" (a clear shift) and once for "pro",
  the smallest plan, whose doubling is a shift below the 0.2 thresholds (its
  size is printed): it shows where the threshold stops seeing a shift.

Thresholds: the spec's monitoring.drift for its method, 0.2 (the default) otherwise.

Churn is small (492 rows): its 197-row pool differs from its reference by chance
(the "same distribution" is one finite sample against another), which small
batches magnify. So the same table is also printed for a synthetic population
where every batch is a fresh draw (tests/drift_population.py: the tests hold the
bar on it):

* features: age ~ normal(40, 10); charges ~ lognormal, median 50 and log-sd 0.5
  (skewed; churn's monthly_charges has log-sd 0.53); calls ~ poisson(3) (integer
  counts); flag, a bool True with probability 0.1 (numeric, as a bool column is);
  plan, categorical with levels basic/standard/pro at shares 0.5/0.3/0.2; region,
  categorical with 6 levels at shares 0.3/0.25/0.15/0.12/0.1/0.08.
* reference: 5,000 draws (seed (0, 0)); same-distribution batch i: fresh draws
  (seed (1, i)); shifted batch i, fresh draws with one change: (a) charges
  multiplied by 1.5 (seed (2, i)), (b) plan's shares 0.25/0.3/0.45 (seed (3, i)).
* both methods at threshold 0.2. The size of each shift in the population is
  printed (psi over the population's deciles and KS's D; psi and tvd for plan):
  a statistic that concentrates near the threshold detects only part of the time,
  which the detection curve of charges x1.1 … x1.5 at 500 rows shows.

Speed: one dataset_drift call per batch against calling scipy.stats.ks_2samp
alone on each numeric feature's values (prepared arrays), medians of
interleaved runs; once on churn, once on 100k reference rows x 50 features.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import yaml
from common import ROOT, table
from scipy.stats import ks_2samp, norm

from mllc.monitor.drift import dataset_drift, psi
from tests.drift_population import (
    CHARGES,
    CHARGES_LOG_SD,
    CHARGES_SHIFT,
    PLAN,
    PLAN_SHARES,
    PLAN_SHIFT,
    POPULATION_KINDS,
    SAME,
    alarm_rate,
    draw_population,
    reference_population,
)

SPEC = ROOT / "specs" / "churn.yaml"
SPLIT_SEED = 0
NUMERIC_SHIFT = ("monthly_charges", 1.3)
CATEGORY_SHIFTS = (("plan", "standard"), ("plan", "pro"))
FALSE_ALARM_BAR, DETECTION_BAR = 0.05, 0.95

POWER_FACTORS = (1.1, 1.2, 1.3, 1.5)  # the detection curve of charges' shift

Rates = tuple[list[float], Counter[str]]  # alarm rates (false alarms first), who alarmed


def _load() -> tuple[Any, dict[str, Any], dict[str, float], dict[str, str]]:
    """The churn data, its features by kind, the threshold of each method and its source."""
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    data = pd.read_csv(ROOT / spec["data"]["source"]["csv"])
    skip = {spec["problem"]["target"], *spec.get("features", {}).get("exclude", [])}
    kinds: dict[str, Any] = {
        c: "numeric" if pd.api.types.is_numeric_dtype(data[c]) else "categorical"
        for c in data.columns
        if c not in skip
    }
    drift = (spec.get("monitoring") or {}).get("drift") or {}
    thresholds = {"psi": 0.2, "ks": 0.2}
    source = {"psi": "default", "ks": "default"}
    if drift:
        method = drift.get("method", "psi")
        thresholds[method] = float(drift.get("threshold", 0.2))
        source[method] = "specs/churn.yaml monitoring.drift"
    return data, kinds, thresholds, source


def _redraw_category(
    batch: Any, pool: Any, column: str, value: str, share: float, seed: int
) -> Any:
    """``batch`` with ``column`` redrawn: ``value`` with probability ``share``, else the pool's
    other values of the column (missing included), at random."""
    rng = np.random.default_rng(seed)
    others = pool[column][pool[column] != value].to_numpy(dtype=object)
    out = batch.copy()
    out[column] = np.where(rng.random(len(batch)) < share, value, rng.choice(others, len(batch)))
    return out


def _shift_size(ref: Any, column: str, value: str) -> tuple[float, float]:
    """psi and tvd between the reference's mix of ``column`` and the mix with ``value``'s
    share doubled (the other values scaled down in proportion)."""
    r = ref[column].astype(object).fillna("(missing)").value_counts(normalize=True)
    s = r * (1 - 2 * r[value]) / (1 - r[value])
    s[value] = 2 * r[value]
    return psi(r.to_numpy(), s.to_numpy()), float(0.5 * np.abs(s - r).sum())


def _rates(
    ref: Any, pool: Any, kinds: dict[str, Any], method: Any, threshold: float, size: int, n: int
) -> Rates:
    """Alarm rates over n seeded batches: same distribution, then each known shift."""
    column, factor = NUMERIC_SHIFT
    alarms = [0] * (2 + len(CATEGORY_SHIFTS))
    culprits: Counter[str] = Counter()
    for seed in range(n):
        batch = pool.sample(size, replace=True, random_state=seed).reset_index(drop=True)
        same = dataset_drift(ref, batch, kinds, method, threshold)
        alarms[0] += same.breach
        culprits.update(same.drifted)
        shifted = batch.copy()
        shifted[column] = shifted[column] * factor
        alarms[1] += dataset_drift(ref, shifted, kinds, method, threshold).breach
        for i, (col, value) in enumerate(CATEGORY_SHIFTS):
            share = 2 * float((ref[col] == value).mean())
            moved = _redraw_category(batch, pool, col, value, share, seed)
            alarms[2 + i] += dataset_drift(ref, moved, kinds, method, threshold).breach
    return [a / n for a in alarms], culprits


def _mark(rate: float, ok: bool) -> str:
    return f"{rate:6.0%} {'ok' if ok else 'NO'}"


def _rate_table(heads: list[str], rates_at: Callable[[str, int], Rates], no_bar: int = 0) -> None:
    """A row per method and batch size: the false-alarm rate, then the detection rate of
    each shift (the last ``no_bar`` without a bar); then the features that alarmed."""
    print(f"   {'method':<6} {'batch':>5}  " + "  ".join(f"{h:>20}" for h in heads))
    notes = []
    for method in ("psi", "ks"):
        for size in (200, 500, 1000):
            rates, culprits = rates_at(method, size)
            barred = len(rates) - no_bar
            cells = [
                _mark(rates[0], rates[0] <= FALSE_ALARM_BAR) + " (<= 5%)",
                *(_mark(r, r >= DETECTION_BAR) + " (>= 95%)" for r in rates[1:barred]),
                *(f"{r:6.0%} (no bar)" for r in rates[barred:]),
            ]
            print(f"   {method:<6} {size:>5}  " + "  ".join(f"{c:>20}" for c in cells))
            if culprits:
                who = ", ".join(f"{name} {count}" for name, count in culprits.most_common())
                notes.append(f"{method} at {size} rows: {who}")
    if notes:
        print("   false alarms by feature (batches where it breached):")
        for note in notes:
            print(f"     {note}")


def _quality(
    data: Any, kinds: dict[str, Any], thresholds: dict[str, float], source: dict[str, str], n: int
) -> None:
    ref = data.sample(frac=0.6, random_state=SPLIT_SEED)
    pool = data.drop(ref.index)
    column, factor = NUMERIC_SHIFT
    print(
        f"   reference: {len(ref)} rows of data/churn.csv (60%, seed {SPLIT_SEED}); pool "
        f"{len(pool)} rows; features {', '.join(f'{c} ({k})' for c, k in kinds.items())}"
    )
    print(
        "   thresholds: " + ", ".join(f"{m} {thresholds[m]:g} ({source[m]})" for m in ("psi", "ks"))
    )
    sizes = [
        f"{c} {v} x2: psi {p:.2f}, tvd {t:.2f}"
        for c, v in CATEGORY_SHIFTS
        for p, t in [_shift_size(ref, c, v)]
    ]
    print(f"   size of the categorical shifts in the population: {'; '.join(sizes)}")
    print(f"   {n} seeded batches per cell; alarm = the dataset verdict breaches\n")
    heads = ["false alarms", f"{column} x{factor:g}", *(f"{v} x2" for _, v in CATEGORY_SHIFTS)]
    _rate_table(
        heads,
        lambda method, size: _rates(ref, pool, kinds, method, thresholds[method], size, n),
        no_bar=1,  # pro x2: below the thresholds
    )


def _population_shift_sizes(
    factor: float = CHARGES_SHIFT,
) -> tuple[float, float, float, float]:
    """psi (over the population's deciles) and KS's D of charges x factor; psi and tvd of
    plan's new shares, all between the populations (no sampling)."""
    delta = np.log(factor) / CHARGES_LOG_SD  # the shift of log(charges) in log-sds
    edges = norm.ppf(np.linspace(0.0, 1.0, 11))
    moved = np.diff(norm.cdf(edges - delta))
    charges_d = float(2 * norm.cdf(delta / 2) - 1)
    plan_tvd = 0.5 * float(np.abs(np.subtract(PLAN_SHIFT, PLAN_SHARES)).sum())
    return psi([0.1] * 10, moved), charges_d, psi(PLAN_SHARES, PLAN_SHIFT), plan_tvd


def _population_rates(ref: Any, method: Any, threshold: float, size: int, n: int) -> Rates:
    """Alarm rates over n seeded fresh batches: same distribution, then each known shift."""
    same = [
        dataset_drift(ref, draw_population(size, (SAME, i)), POPULATION_KINDS, method, threshold)
        for i in range(n)
    ]
    rates = [
        sum(result.breach for result in same) / n,
        alarm_rate(ref, method, threshold, CHARGES, n, size, charges_factor=CHARGES_SHIFT),
        alarm_rate(ref, method, threshold, PLAN, n, size, plan_shares=PLAN_SHIFT),
    ]
    return rates, Counter(name for result in same for name in result.drifted)


def _population_quality(n: int) -> None:
    ref = reference_population()
    charges_psi, charges_d, plan_psi, plan_tvd = _population_shift_sizes()
    shares = "/".join(f"{s:g}" for s in PLAN_SHIFT)
    print(
        f"   reference: {len(ref):,} draws of a synthetic population (seed (0, 0)); "
        f"features {', '.join(f'{c} ({k})' for c, k in POPULATION_KINDS.items())}"
    )
    print(
        "   batches: fresh draws, seeds (1, i) same distribution, (2, i) charges "
        f"x{CHARGES_SHIFT:g}, (3, i) plan shares {shares}; thresholds: psi 0.2, ks 0.2"
    )
    print(
        f"   size of the shifts in the population: charges x{CHARGES_SHIFT:g} "
        f"(log-sd {CHARGES_LOG_SD:g}): psi {charges_psi:.2f}, ks D {charges_d:.2f}; "
        f"plan {shares}: psi {plan_psi:.2f}, tvd {plan_tvd:.2f}"
    )
    print(f"   {n} seeded batches per cell; alarm = the dataset verdict breaches\n")
    heads = ["false alarms", f"charges x{CHARGES_SHIFT:g}", f"plan {shares}"]
    _rate_table(heads, lambda method, size: _population_rates(ref, method, 0.2, size, n))
    _power_curve(ref, n)


def _power_curve(ref: Any, n: int, size: int = 500) -> None:
    """Detection of charges x factor at 500 rows against how far the populations moved:
    a shift whose population statistic is just above the threshold is caught about
    half the time by any method; the >= 95% bar needs a margin above it."""
    print(f"\n   detection of charges x factor, {size}-row batches, threshold 0.2:")
    print(f"   {'factor':>6}  {'population psi':>14}  {'psi detects':>11}  {'population D':>12}  "
          f"{'ks detects':>10}")  # fmt: skip
    for factor in POWER_FACTORS:
        pop_psi, pop_d, _, _ = _population_shift_sizes(factor)
        rates = [
            alarm_rate(ref, method, 0.2, CHARGES, n, size, charges_factor=factor)
            for method in ("psi", "ks")
        ]
        print(
            f"   {factor:>6g}  {pop_psi:>14.2f}  {rates[0]:>10.0%}  {pop_d:>12.2f}  "
            f"{rates[1]:>9.0%}"
        )


def _median_ms(calls: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    for call in calls.values():
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(xs) for name, xs in samples.items()}


def _speed(label: str, ref: Any, batch: Any, kinds: dict[str, Any], repeat: int) -> None:
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    only_numeric: dict[str, Any] = {c: "numeric" for c in numeric}
    arrays = [
        (ref[c].dropna().to_numpy(dtype=float), batch[c].dropna().to_numpy(dtype=float))
        for c in numeric
    ]
    medians = _median_ms(
        {
            "psi": lambda: dataset_drift(ref, batch, kinds, "psi", 0.2),
            "ks": lambda: dataset_drift(ref, batch, kinds, "ks", 0.2),
            "ks numeric": lambda: dataset_drift(ref, batch, only_numeric, "ks", 0.2),
            "anchor": lambda: [ks_2samp(r, b) for r, b in arrays],
        },
        repeat,
    )
    anchor = medians["anchor"]
    print(f"   {label}")
    table(
        [
            (f"scipy ks_2samp alone, {len(numeric)} numeric features", anchor, "anchor"),
            (
                f"dataset_drift psi, {len(kinds)} features",
                medians["psi"],
                f"{medians['psi'] / anchor:.2f}x anchor",
            ),
            (
                f"dataset_drift ks, {len(kinds)} features",
                medians["ks"],
                f"{medians['ks'] / anchor:.2f}x anchor",
            ),
            (
                f"dataset_drift ks, the {len(numeric)} numeric features",
                medians["ks numeric"],
                f"{medians['ks numeric'] / anchor:.2f}x anchor (same tests, plus bins and models)",
            ),
        ]
    )


def _wide(data: Any, kinds: dict[str, Any], rows: int, width: int) -> tuple[Any, dict[str, Any]]:
    """``rows`` resampled churn rows, its features repeated (each copy resampled) to ``width``."""
    names = list(kinds)
    columns: dict[str, Any] = {}
    wide_kinds: dict[str, Any] = {}
    for i in range(width):
        name = names[i % len(names)]
        copy = f"{name}_{i}"
        column = data[name].sample(rows, replace=True, random_state=i).reset_index(drop=True)
        columns[copy], wide_kinds[copy] = column, kinds[name]
    return pd.DataFrame(columns), wide_kinds


def run(quick: bool = False) -> None:
    data, kinds, thresholds, source = _load()
    _quality(data, kinds, thresholds, source, n=20 if quick else 100)
    print()
    _population_quality(n=20 if quick else 100)
    print()
    repeat = 5 if quick else 21
    ref = data.sample(frac=0.6, random_state=SPLIT_SEED)
    batch = data.drop(ref.index).sample(500, replace=True, random_state=1)
    _speed(
        f"per batch: churn, {len(ref)} reference rows, 500 batch rows", ref, batch, kinds, repeat
    )
    big, big_kinds = _wide(data, kinds, 100_000, 50)
    big_batch = big.sample(1000, random_state=1)
    _speed(
        "per batch: 100,000 reference rows x 50 features (churn resampled), 1,000 batch rows",
        big,
        big_batch,
        big_kinds,
        max(3, repeat // 4),
    )
