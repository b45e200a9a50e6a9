"""The population stability index of two prediction distributions (label or bin ->
count), for a rollout's analysis (:mod:`mllc.policy.rollout`). Pure: no I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence

EPSILON = 1e-4  # share given to an empty bin, so the PSI stays finite


def psi(stable: Sequence[tuple[str, int]], candidate: Sequence[tuple[str, int]]) -> float | None:
    """Population stability index of the candidate's prediction distribution against the
    stable's (label or bin -> count); an empty bin counts as a share of EPSILON. None
    when either side has no prediction."""
    s, c = dict(stable), dict(candidate)
    ns, nc = sum(s.values()), sum(c.values())
    if ns <= 0 or nc <= 0:
        return None
    total = 0.0
    for label in sorted({*s, *c}):
        p = max(s.get(label, 0) / ns, EPSILON)
        q = max(c.get(label, 0) / nc, EPSILON)
        total += (q - p) * math.log(q / p)
    return total
