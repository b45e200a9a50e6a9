"""The local target's side of a rollout: a step's ``mllc serve`` options and what the
server reports of its traffic split.

A step runs ONE server with both versions: the stable one as its main model and the
candidate as its canary (``--canary-*``), answering ``weight`` percent (0 with a
shadow, which sees a copy of every request). The server records the split in its
state file (top-level ``rollout``, never inside ``settings``: the settings drift
ignores it) and writes the step's numbers to the rollout file
``.mllc/serve/<name>/<env>/rollout-<sha1 of rollout_id>.json`` at least every second.
Both are read bounded (:mod:`mllc.saferead`); no model is loaded here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mllc.saferead import RefusedRead, read_json
from mllc.types import RolloutObservation, RolloutStats, RolloutStep


def rollout_file(folder: Path, rollout_id: str) -> Path:
    """Where the server of a step writes its numbers (``folder``: the environment's)."""
    digest = hashlib.sha1(rollout_id.encode("utf-8"), usedforsecurity=False).hexdigest()
    return folder / f"rollout-{digest}.json"


def arguments(step: RolloutStep, model: Path, folder: Path) -> list[str]:
    """The ``mllc serve`` options that add ``step``'s candidate (``model``: its file)."""
    return [
        "--canary-version", step.candidate.version,
        "--canary-model-md5", step.candidate.model_md5,
        "--canary-model-file", str(model),
        "--canary-weight", str(step.weight),
        "--rollout-mode", step.strategy,
        "--rollout-id", step.rollout_id,
        "--rollout-file", str(rollout_file(folder, step.rollout_id)),
    ]  # fmt: skip


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _float(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _counts(value: Any) -> tuple[tuple[str, int], ...]:
    items = value.items() if isinstance(value, dict) else []
    return tuple(sorted((str(k), _int(v)) for k, v in items))


def stats(data: Any) -> RolloutStats | None:
    """The candidate's numbers from a rollout file's document; None when it is not one."""
    if not isinstance(data, dict):
        return None
    cand = data.get("candidate_stats")
    cand = cand if isinstance(cand, dict) else {}
    predictions = data.get("predictions")
    predictions = predictions if isinstance(predictions, dict) else {}
    return RolloutStats(
        requests=_int(cand.get("requests")),
        errors=_int(cand.get("errors")),
        p99_ms=_float(cand.get("p99_ms")),
        compared=_int(data.get("compared")),
        differing=_int(data.get("differing")),
        stable_predictions=_counts(predictions.get("stable")),
        candidate_predictions=_counts(predictions.get("candidate")),
        dropped=_int(data.get("dropped")),
        updated=str(data.get("updated") or ""),
    )


def observation(root: Path, recorded: Any, stable: str) -> RolloutObservation | None:
    """The split a server runs, from its state file's ``rollout`` (``recorded``) and the
    rollout file it names; None without one. The file not written yet: no numbers."""
    if not isinstance(recorded, dict):
        return None
    candidate = recorded.get("candidate")
    candidate = candidate if isinstance(candidate, dict) else {}
    md5 = candidate.get("model_md5")
    mode = str(recorded.get("mode") or "canary")
    numbers, detail = None, ""
    path = recorded.get("file")
    if isinstance(path, str) and path:
        try:
            numbers = stats(read_json(root / path, root))
        except (OSError, ValueError, RefusedRead) as exc:
            detail = f"the rollout file {path} cannot be read: {exc}"
    if numbers is None and not detail:
        detail = "the server has not written its rollout file yet"
    return RolloutObservation(
        strategy=mode,
        stable=stable,
        candidate=str(candidate.get("version") or ""),
        candidate_md5=md5 if isinstance(md5, str) else None,
        weight=_int(recorded.get("weight")),
        rollout_id=str(recorded.get("rollout_id") or ""),
        stats=numbers or RolloutStats(requests=0, errors=0, p99_ms=None, compared=0, differing=0),
        detail=detail,
    )
