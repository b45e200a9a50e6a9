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
from scipy.stats import ks_2samp

from mllc.monitor.drift import dataset_drift, psi

SPEC = ROOT / "specs" / "churn.yaml"
SPLIT_SEED = 0
NUMERIC_SHIFT = ("monthly_charges", 1.3)
CATEGORY_SHIFTS = (("plan", "standard"), ("plan", "pro"))
FALSE_ALARM_BAR, DETECTION_BAR = 0.05, 0.95


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
) -> tuple[list[float], Counter[str]]:
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
    print(f"   {'method':<6} {'batch':>5}  " + "  ".join(f"{h:>20}" for h in heads))
    notes = []
    for method in ("psi", "ks"):
        for size in (200, 500, 1000):
            rates, culprits = _rates(ref, pool, kinds, method, thresholds[method], size, n)
            cells = [
                _mark(rates[0], rates[0] <= FALSE_ALARM_BAR) + " (<= 5%)",
                _mark(rates[1], rates[1] >= DETECTION_BAR) + " (>= 95%)",
                _mark(rates[2], rates[2] >= DETECTION_BAR) + " (>= 95%)",
                f"{rates[3]:6.0%} (no bar)",
            ]
            print(f"   {method:<6} {size:>5}  " + "  ".join(f"{c:>20}" for c in cells))
            if culprits:
                who = ", ".join(f"{name} {count}" for name, count in culprits.most_common())
                notes.append(f"{method} at {size} rows: {who}")
    if notes:
        print("   false alarms by feature (batches where it breached):")
        for note in notes:
            print(f"     {note}")


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
