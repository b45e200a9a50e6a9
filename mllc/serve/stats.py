"""The numbers a rollout keeps per version: latency percentiles and prediction distributions.

Both are bounded whatever the traffic: latencies go into a fixed log-spaced
histogram (:class:`Latency`, 1% wide buckets from 1 µs to about 3 hours, so a
percentile is within 1% of the true one), predictions into per-label counts
(:class:`Predictions`). Float predictions (a regressor's) are counted in 10
bins whose edges are the deciles of the first :data:`BIN_SAMPLE` stable
predictions, fixed from then on, so that both versions' counts over a whole
step share the same bins (a PSI needs that); until that many are seen, the
bins are computed from those seen so far. Not thread-safe: the caller locks.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

BIN_SAMPLE = 200  # stable predictions that fix the float bins
BINS = 10
_LOW_MS = 0.001  # the first bucket's lower edge
_RATIO = 1.01  # each bucket is 1% wider than the one before
_BUCKETS = int(math.log(1e7 / _LOW_MS) / math.log(_RATIO)) + 1  # up to 10^7 ms


class Latency:
    """Latencies in ms: a count per 1%-wide bucket; percentiles are bucket upper edges."""

    def __init__(self) -> None:
        self.counts = [0] * (_BUCKETS + 1)  # the last one: beyond the range
        self.total = 0

    def add(self, ms: float) -> None:
        if ms <= _LOW_MS:
            index = 0
        else:
            index = min(_BUCKETS, int(math.log(ms / _LOW_MS) / math.log(_RATIO)) + 1)
        self.counts[index] += 1
        self.total += 1

    def percentile(self, share: float) -> float | None:
        """The ``share`` (0..1) percentile in ms, rounded to 0.01 ms; None before any sample."""
        if not self.total:
            return None
        rank = max(1, math.ceil(share * self.total))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return round(_LOW_MS * _RATIO**index, 2)
        return None  # pragma: no cover - the counts add up to the total


def is_float(values: np.ndarray) -> bool:
    return values.dtype.kind == "f"


def label(value: Any) -> str:
    """A class label as text: what the V2 response shows, as a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _edge(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


class Predictions:
    """Per-label prediction counts of both versions on the compared requests."""

    def __init__(self, regression: bool) -> None:
        self.regression = regression
        self.counts: dict[str, dict[str, int]] = {"stable": {}, "candidate": {}}
        self.edges: list[float] | None = None  # fixed float bin edges, once known
        self._pending: dict[str, list[np.ndarray]] = {"stable": [], "candidate": []}
        self._pending_stable = 0

    def add(self, stable: np.ndarray, candidate: np.ndarray) -> None:
        if not self.regression:
            for side, values in (("stable", stable), ("candidate", candidate)):
                counts = self.counts[side]
                for value in values.reshape(-1).tolist():
                    key = label(value)
                    counts[key] = counts.get(key, 0) + 1
            return
        if self.edges is None:
            self._pending["stable"].append(np.asarray(stable, dtype=np.float64).reshape(-1))
            self._pending["candidate"].append(np.asarray(candidate, dtype=np.float64).reshape(-1))
            self._pending_stable += stable.size
            if self._pending_stable >= BIN_SAMPLE:
                first = np.concatenate(self._pending["stable"])[:BIN_SAMPLE]
                self.edges = _deciles(first)
                for side in ("stable", "candidate"):
                    for values in self._pending[side]:
                        _count(self.counts[side], self.edges, values)
                self._pending = {"stable": [], "candidate": []}
            return
        _count(self.counts["stable"], self.edges, np.asarray(stable, dtype=np.float64))
        _count(self.counts["candidate"], self.edges, np.asarray(candidate, dtype=np.float64))

    def snapshot(self) -> dict[str, dict[str, int]]:
        if not self.regression or self.edges is not None or not self._pending_stable:
            if self.regression:  # bins in their order
                return {side: dict(c) for side, c in self.counts.items()}
            return {side: dict(sorted(c.items())) for side, c in self.counts.items()}
        # fewer than BIN_SAMPLE so far: bins from what was seen, recomputed until then
        edges = _deciles(np.concatenate(self._pending["stable"]))
        out: dict[str, dict[str, int]] = {}
        for side in ("stable", "candidate"):
            counts: dict[str, int] = {}
            for values in self._pending[side]:
                _count(counts, edges, values)
            out[side] = counts
        return out


def _deciles(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return []
    inner = np.quantile(finite, [i / BINS for i in range(1, BINS)])
    return sorted({float(v) for v in inner})


def _count(counts: dict[str, int], edges: list[float], values: np.ndarray) -> None:
    """Counts per bin "[a, b)" of ``edges`` extended by -inf and inf (every bin appears)."""
    bounds = [-math.inf, *edges, math.inf]
    names = [f"[{_edge(a)}, {_edge(b)})" for a, b in itertools.pairwise(bounds)]
    flat = values.reshape(-1)
    flat = flat[~np.isnan(flat)]
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), flat, side="right")
    found = np.bincount(index, minlength=len(names))
    for name, count in zip(names, found.tolist(), strict=True):
        counts[name] = counts.get(name, 0) + int(count)
