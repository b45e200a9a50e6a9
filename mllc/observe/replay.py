"""What ``require: [wins_on_replay]`` replays, and the replays already recorded.

Reads only (bounded, inside the repository), never loads a model, so ``plan`` may
call it: the captured requests of an environment's local server
(``.mllc/capture/<name>/<env>/requests.jsonl`` and its rotated files, newest last),
the labelled batch ``mllc monitor`` keeps in ``monitoring/<name>/<env>/batch.parquet``,
and the records :mod:`mllc.replay` writes in ``.mllc/replay/<name>/<env>/``, one per
(candidate md5, running md5), holding the numbers measured and the fingerprint of
what was replayed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mllc import saferead
from mllc.layout import STATE, Layout
from mllc.observe.monitoring import BATCH
from mllc.policy.replay import ReplayCheck, ReplayNumbers, ReplayVerdict, Score, judge, pending
from mllc.spec.rollout import Replay
from mllc.targets.local import capture_path
from mllc.types import RegisteredVersion

CAPTURE_MAX_BYTES = 256 << 20  # one capture file: the server rotates at 5 MiB by default
RECORD_MAX_BYTES = 1 << 20
BATCH_MAX_BYTES = 512 << 20
RECORD_FORMAT = 1


def record_folder(name: str, env: str) -> Path:
    return STATE / "replay" / name / env


def record_path(name: str, env: str, candidate_md5: str, running_md5: str) -> Path:
    return record_folder(name, env) / f"{candidate_md5}-{running_md5}.json"


def labelled_batch(name: str, env: str) -> Path:
    """The labelled batch mllc monitor kept for ``env`` (replayed as extra requests)."""
    return Layout(name).monitoring_dir(env) / BATCH


@dataclass(frozen=True)
class Captured:
    """The newest ``max_requests`` captured requests (oldest first), each a record's
    ``inputs`` (column -> values), and a fingerprint of them and of the labelled batch."""

    inputs: tuple[dict[str, list[Any]], ...]
    fingerprint: str
    skipped: int = 0  # lines that are not capture records
    labelled: str | None = None  # the labelled batch's path, when there is one


def _capture_files(folder: Path) -> list[Path]:
    """Oldest first: ``requests.<n>.jsonl`` from the highest n, then ``requests.jsonl``."""
    rotated = []
    for path in folder.glob("requests.*.jsonl") if folder.is_dir() else []:
        middle = path.name.split(".")[1]
        if middle.isdigit():
            rotated.append((int(middle), path))
    files = [p for _, p in sorted(rotated, reverse=True)]
    return [*files, *([folder / "requests.jsonl"] if (folder / "requests.jsonl").is_file() else [])]


def _inputs(line: bytes) -> dict[str, list[Any]] | None:
    try:
        record = json.loads(line)
        inputs = record["inputs"]
        columns = {str(k): list(v) for k, v in inputs.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    sizes = {len(v) for v in columns.values()}
    return columns if columns and len(sizes) == 1 and sizes != {0} else None


def captured_requests(root: Path, name: str, env: str, max_requests: int) -> Captured:
    """What a replay of ``env`` replays now (bounded reads, no model)."""
    lines: list[bytes] = []
    for path in reversed(_capture_files(root / capture_path(name, env))):  # newest first
        raw = saferead.read_bytes(path, root, max_bytes=CAPTURE_MAX_BYTES) or b""
        found = [line for line in raw.split(b"\n") if line.strip()]
        lines = found[-(max_requests - len(lines)) :] + lines
        if len(lines) >= max_requests:
            break
    digest = hashlib.sha256()
    inputs, skipped = [], 0
    for line in lines:
        parsed = _inputs(line)
        if parsed is None:
            skipped += 1
            continue
        inputs.append(parsed)
        digest.update(hashlib.sha256(line).digest())
    batch = labelled_batch(name, env)
    raw_batch = saferead.read_bytes(root / batch, root, max_bytes=BATCH_MAX_BYTES)
    if raw_batch is not None:
        digest.update(b"labelled:" + hashlib.sha256(raw_batch).digest())
    labelled = batch.as_posix() if raw_batch is not None else None
    return Captured(tuple(inputs), digest.hexdigest(), skipped, labelled)


@dataclass(frozen=True)
class Recorded:
    numbers: ReplayNumbers
    fingerprint: str
    time: str


def _score(data: Any) -> Score | None:
    if not isinstance(data, dict):
        return None
    return Score(
        name=str(data["name"]),
        candidate=None if data.get("candidate") is None else float(data["candidate"]),
        running=None if data.get("running") is None else float(data["running"]),
        higher_is_better=bool(data.get("higher_is_better", True)),
    )


def numbers_from_json(data: dict[str, Any]) -> ReplayNumbers:
    """:class:`ReplayNumbers` from its JSON form (``dataclasses.asdict``); KeyError,
    TypeError or ValueError when it is not one."""
    p95 = data.get("p95_ms")
    return ReplayNumbers(
        environment=str(data["environment"]),
        candidate=str(data["candidate"]),
        running=str(data["running"]),
        requests=int(data["requests"]),
        differing=int(data.get("differing", 0)),
        predictions=int(data.get("predictions", 0)),
        labelled=int(data.get("labelled", 0)),
        metric=_score(data.get("metric")),
        groups=tuple(s for s in map(_score, data.get("groups") or []) if s is not None),
        group_kind=str(data.get("group_kind", "class")),
        p95_ms=(float(p95[0]), float(p95[1])) if p95 else None,
    )


def read_record(
    root: Path, name: str, env: str, candidate_md5: str, running_md5: str
) -> Recorded | None:
    """The replay recorded for this pair of models, None when none (or unreadable)."""
    path = root / record_path(name, env, candidate_md5, running_md5)
    try:
        data = saferead.json_object(saferead.read_bytes(path, root, max_bytes=RECORD_MAX_BYTES))
        if data is None or data.get("format") != RECORD_FORMAT:
            return None
        numbers = numbers_from_json(data["numbers"])
        return Recorded(numbers, str(data["fingerprint"]), str(data.get("time", "")))
    except (OSError, saferead.RefusedRead, KeyError, TypeError, ValueError):
        return None


def recorded_check(root: Path, name: str, env: str, limits: Replay | None) -> ReplayCheck:
    """wins_on_replay for ``plan`` and ``status``: failed when fewer requests are captured
    than ``min_requests`` (as apply would find); the replay recorded for the pair, judged
    with the spec's thresholds, when it replayed what is captured now; else pending (apply
    replays it before the candidate may enter). Never loads a model."""
    limits = limits or Replay()
    captured: list[Captured] = []

    def check(candidate: RegisteredVersion, running: RegisteredVersion) -> ReplayVerdict:
        if not captured:
            captured.append(captured_requests(root, name, env, limits.max_requests))
        now = captured[0]
        if len(now.inputs) < limits.min_requests:  # known now: too few to replay
            return judge(
                ReplayNumbers(env, candidate.version, running.version, len(now.inputs)), limits
            )
        found = read_record(root, name, env, candidate.model_md5, running.model_md5)
        if found is None or found.fingerprint != now.fingerprint:
            return pending(env, len(now.inputs))
        verdict = judge(found.numbers, limits)
        return ReplayVerdict(verdict.status, f"{verdict.text} (replayed {found.time})")

    return check
