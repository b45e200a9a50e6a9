"""Each registered version's candidates, as its own commit records them. Read-only.

The evaluate stage's ``reports/candidates.json`` is committed with every version
(``mllc.apply.steps.commit_paths``), so ``<commit>:pipelines/<name>/reports/candidates.json``
holds the validation and test metrics of every candidate that version was chosen
from. Read with two ``git cat-file`` calls for all versions at once (sizes first:
a blob over :data:`MAX_BYTES` is refused unread); no model is loaded, nothing is
written. A version whose report cannot be used says why instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mllc import gitcmd
from mllc.layout import Layout

MAX_BYTES = 256 * 1024  # the report is well under 1 KiB per candidate
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class CandidateScores:
    """One candidate of one version: its metrics on validation and on test."""

    name: str
    validation: dict[str, float | None]
    test: dict[str, float | None]
    validated_on: str | None = None  # validation | cv5 | train (evaluate's report)
    note: str | None = None


@dataclass(frozen=True)
class CandidatesAt:
    """What the report at one commit says, or why it cannot be read (``problem``)."""

    commit: str
    metric: str | None = None
    candidates: tuple[CandidateScores, ...] = field(default_factory=tuple)
    problem: str | None = None


def candidates_at(root: Path, name: str, commits: Sequence[str]) -> dict[str, CandidatesAt]:
    """commit -> the candidates report of lifecycle ``name`` there, for every commit given."""
    path = Layout(name).candidates_report.as_posix()
    found: dict[str, CandidatesAt] = {}
    wanted = []
    for commit in dict.fromkeys(commits):
        if _COMMIT.fullmatch(commit):
            wanted.append(commit)
        else:
            found[commit] = CandidatesAt(commit, problem="not a commit id")
    if not wanted:
        return found
    check = _cat_file(root, "--batch-check", [f"{c}:{path}" for c in wanted])
    if check is None:
        return {**found, **{c: CandidatesAt(c, problem="git cat-file failed") for c in wanted}}
    blobs: list[tuple[str, str]] = []
    for commit, line in zip(wanted, check.decode("utf-8", "replace").splitlines(), strict=False):
        parts = line.split()
        if len(parts) != 3 or parts[1] != "blob":
            # the commit lacks the file, or this clone lacks the commit (a shallow one)
            found[commit] = CandidatesAt(commit, problem=f"{path} not found at {commit[:10]}")
        elif int(parts[2]) > MAX_BYTES:
            found[commit] = CandidatesAt(
                commit, problem=f"{path} is larger than {MAX_BYTES // 1024} KiB; refused"
            )
        else:
            blobs.append((commit, parts[0]))
    if blobs:
        out = _cat_file(root, "--batch", [sha for _, sha in blobs])
        texts = gitcmd.split_batch(out, len(blobs)) if out is not None else [None] * len(blobs)
        for (commit, _), data in zip(blobs, texts, strict=True):
            found[commit] = _parse(commit, path, data)
    return {c: found.get(c, CandidatesAt(c, problem="git cat-file failed")) for c in commits}


def _cat_file(root: Path, mode: str, objects: list[str]) -> bytes | None:
    stdin = "".join(f"{o}\n" for o in objects).encode()
    proc = gitcmd.run(root, "cat-file", mode, stdin=stdin)
    return proc.stdout if proc.returncode == 0 else None


def _parse(commit: str, path: str, data: bytes | None) -> CandidatesAt:
    if data is None:
        return CandidatesAt(commit, problem="git cat-file failed")
    try:
        report = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return CandidatesAt(commit, problem=f"{path} is not JSON")
    entries = report.get("candidates") if isinstance(report, dict) else None
    if not isinstance(entries, dict):
        return CandidatesAt(commit, problem=f"{path} has no 'candidates' mapping")
    metric = report.get("metric")
    scores = tuple(
        CandidateScores(
            name=_printable(str(name)),
            validation=_numbers(entry.get("validation")),
            test=_numbers(entry.get("test")),
            validated_on=_text(entry.get("validated_on")),
            note=_text(entry.get("note")),
        )
        for name, entry in sorted(entries.items())
        if isinstance(entry, dict)
    )
    return CandidatesAt(commit, metric if isinstance(metric, str) else None, scores)


def _numbers(value: Any) -> dict[str, float | None]:
    """Metric -> value; None where the report says null (not computable); others dropped."""
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, float | None] = {}
    for key, v in value.items():
        if v is None:
            out[str(key)] = None
        elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out[str(key)] = float(v)
    return out


def _text(value: Any) -> str | None:
    return _printable(value) if isinstance(value, str) else None


def _printable(text: str) -> str:
    """A commit may hold anything: no control character (a terminal escape) gets through."""
    return "".join(c if c.isprintable() else "?" for c in text)
