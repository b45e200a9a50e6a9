"""Checks across the fields of one section (a source, a column, an environment ...).

Each check reads a plain mapping and returns messages. The models call them in
their validators (so ``Lifecycle.model_validate`` alone refuses a bad spec) and
:mod:`mllc.spec.rules` calls them on the raw document too: Pydantic skips a
section's validator when any of its fields failed, and a user should still see
every error at once. Both report the same message at the same place, so the
loader's de-duplication keeps one.

Checks tolerate wrong types (they skip what they cannot read): type errors are
the models' to report.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def source(s: Mapping[str, Any]) -> list[str]:
    given = [k for k in ("sklearn", "csv", "parquet") if s.get(k) is not None]
    if len(given) == 1:
        return []
    got = f" (got {', '.join(given)})" if given else ""
    return [f"give exactly one of 'sklearn', 'csv' or 'parquet'{got}"]


def column(c: Mapping[str, Any]) -> list[str]:
    ctype = c.get("type")
    if not isinstance(ctype, str):
        return []
    out = []
    lo, hi = _num(c.get("min")), _num(c.get("max"))
    numeric = ctype in ("int", "float")
    if not numeric and (c.get("min") is not None or c.get("max") is not None):
        out.append(f"min/max apply to int and float columns, not {ctype}")
    if lo is not None and hi is not None and lo > hi:
        out.append(f"min ({lo:g}) is greater than max ({hi:g})")
    if ctype == "int":
        for bound in (lo, hi):
            if bound is not None and not bound.is_integer():
                out.append(f"an int column needs whole bounds (got {bound:g})")
    values = c.get("values")
    if values is not None and isinstance(values, list):
        if ctype != "category":
            out.append(f"values apply to category columns, not {ctype}")
        elif not values:
            out.append("values must list at least one category")
        else:
            # (type, value) pairs: 1 and true are different categories
            counts = Counter(
                (type(v).__name__, v) for v in values if isinstance(v, str | int | bool)
            )
            dupes = sorted({str(v) for (_, v), n in counts.items() if n > 1})
            if dupes:
                out.append(f"values lists {', '.join(dupes)} more than once")
    return out


def split(s: Mapping[str, Any]) -> list[str]:
    test, validation = _num(s.get("test", 0.2)), _num(s.get("validation") or 0.0)
    if test is None or validation is None:
        return []
    held = test + validation
    if held > 0.9 + 1e-9 and 0 < test < 1 and 0 <= validation < 1:
        return [
            f"test + validation = {held:g} leaves {1 - held:.2g} for training; "
            "at least 0.1 must remain"
        ]
    return []


def search(s: Mapping[str, Any]) -> list[str]:
    if s.get("n_iter") is not None and s.get("method", "grid") != "random":
        return ["n_iter applies to method: random only"]
    return []


def candidate(c: Mapping[str, Any]) -> list[str]:
    has_est, has_cmd = c.get("estimator") is not None, c.get("command") is not None
    if has_est == has_cmd:
        return ["give exactly one of 'estimator' or 'command'"]
    out = []
    if has_cmd:
        if isinstance(c.get("command"), str) and not c["command"].strip():
            out.append("command must not be empty")
        if c.get("params") or c.get("search"):
            out.append("params and search apply to an estimator, not a command")
    elif c.get("deps"):
        out.append("deps apply to a command; an estimator's inputs are known")
    return out


def environment(e: Mapping[str, Any]) -> list[str]:
    out = []
    target = e.get("target")
    host = e.get("host", "127.0.0.1")
    if target == "kubernetes":
        if e.get("kubernetes") is None:
            out.append("target kubernetes needs a 'kubernetes' section")
        if e.get("port") is not None or host != "127.0.0.1":
            out.append("port and host apply to target local")
    elif target == "local":
        if e.get("kubernetes") is not None:
            out.append("a 'kubernetes' section applies to target kubernetes only")
        if e.get("port") is None:
            out.append("target local needs a port (1024-65535) for its server")
    rollout = e.get("rollout")
    strategy = rollout.get("strategy") if isinstance(rollout, Mapping) else None
    strategy = getattr(rollout, "strategy", strategy)  # the raw section, or the model
    if strategy == "shadow" and target == "kubernetes":
        out.append(
            "rollout strategy shadow needs target local: KServe does not mirror traffic "
            "(kserve#2978); use strategy: canary"
        )
    require = e.get("require")
    if e.get("replay") is not None and "wins_on_replay" not in (
        require if isinstance(require, list) else []
    ):
        out.append("replay thresholds apply with require: [wins_on_replay]")
    if isinstance(host, str):
        if not re.fullmatch(r"[A-Za-z0-9.:-]+", host, re.ASCII):
            out.append(f"host {host!r} is not an address or host name")
        elif host not in LOOPBACK and e.get("token") is None:
            out.append(
                f"binding {host!r} exposes the server beyond this machine: "
                "give a token (token: env:NAME)"
            )
    return out


def rollout(r: Mapping[str, Any]) -> list[str]:
    """An environment's ``rollout``: canary steps are percentages up to 100, increasing."""
    steps = r.get("steps")
    if r.get("strategy") == "shadow":
        return (
            [] if steps is None else ["steps apply to strategy: canary (a shadow answers nothing)"]
        )
    if r.get("strategy") != "canary" or not (steps is None or isinstance(steps, list)):
        return []  # a wrong strategy or type: the model's to report
    if not steps:
        return ["strategy: canary needs steps, e.g. [10, 50, 100]"]
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
        return []
    if any(not 1 <= s <= 100 for s in steps):
        return [f"steps {steps}: each is a percentage from 1 to 100"]
    if any(b <= a for a, b in itertools.pairwise(steps)):
        return [f"steps {steps} must increase"]
    if steps[-1] != 100:
        return [f"steps {steps} must end at 100 (the new version takes over)"]
    if len(steps) > 20:
        return [f"steps: at most 20, not {len(steps)}"]
    return []


def replay(r: Mapping[str, Any]) -> list[str]:
    """``replay`` thresholds: the newest ``max_requests`` must be able to hold ``min_requests``."""
    low, high = r.get("min_requests", 50), r.get("max_requests", 10_000)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) and high < low:
        return [f"max_requests {high} is below min_requests {low}"]
    return []


def performance(p: Mapping[str, Any]) -> list[str]:
    if (p.get("min") is None) == (p.get("max") is None):
        return ["give exactly one of 'min' or 'max'"]
    return []
