"""Each registered version's candidates, as its own commit records them. Read-only.

The evaluate stage's per-candidate reports (``reports/candidates/<m>.json``, DVC
metrics kept in Git) and select's ``metrics.json`` are committed with every version
(``mllc.apply.steps.commit_paths``), so a version's commit holds the validation and
test metrics of every candidate it was chosen from. Versions registered by an
older mllc hold them in one ``reports/candidates.json`` instead; it is read when
the folder is absent. Everything is read with a few ``git cat-file`` calls for all
versions at once (sizes first: a blob over :data:`MAX_BYTES` is refused unread);
no model is loaded, nothing is written. A version whose reports cannot be used
says why instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mllc import gitcmd
from mllc.layout import Layout
from mllc.saferead import json_object

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
    layout = Layout(name)
    folder = layout.candidate_reports.as_posix()
    legacy = layout.legacy_candidates_report.as_posix()
    found: dict[str, CandidatesAt] = {}
    wanted = []
    for commit in dict.fromkeys(commits):
        if _COMMIT.fullmatch(commit):
            wanted.append(commit)
        else:
            found[commit] = CandidatesAt(commit, problem="not a commit id")
    if not wanted:
        return found
    paths = (folder, layout.metrics.as_posix(), legacy)
    objects = _read(root, [f"{c}:{p}" for c in wanted for p in paths])
    if objects is None:
        return {**found, **{c: CandidatesAt(c, problem="git cat-file failed") for c in wanted}}
    files: list[tuple[str, str, str]] = []  # (commit, candidate, blob id)
    for i, commit in enumerate(wanted):
        tree, metrics, old = objects[3 * i : 3 * i + 3]
        if isinstance(tree, Tree):
            for mode, file, oid in tree.entries:
                if mode != "40000" and file.endswith(".json"):
                    files.append((commit, file.removesuffix(".json"), oid))
            found[commit] = CandidatesAt(commit, metric=_metric(metrics))
        elif isinstance(old, bytes):
            found[commit] = _parse_legacy(commit, legacy, old)
        else:
            # the commit lacks both, or this clone lacks the commit (a shallow one)
            problem = old if isinstance(old, str) else f"{folder}/ not found at {commit[:10]}"
            found[commit] = CandidatesAt(commit, problem=problem)
    blobs = _read(root, [oid for _, _, oid in files]) if files else []
    if blobs is None:
        return {**found, **{c: CandidatesAt(c, problem="git cat-file failed") for c, _, _ in files}}
    scores: dict[str, list[CandidateScores]] = {}
    for (commit, candidate, _), data in zip(files, blobs, strict=True):
        if found[commit].problem is not None:
            continue
        entry = json_object(data) if isinstance(data, bytes) else None
        if entry is None:
            path = f"{folder}/{_printable(candidate)}.json"
            why = data if isinstance(data, str) else f"{path} is not a JSON object"
            found[commit] = CandidatesAt(commit, problem=why)
        else:
            scores.setdefault(commit, []).append(_scores(candidate, entry))
    for commit, got in scores.items():
        if found[commit].problem is None:
            ordered = tuple(sorted(got, key=lambda c: c.name))
            found[commit] = CandidatesAt(commit, found[commit].metric, ordered)
    return {c: found.get(c, CandidatesAt(c, problem="git cat-file failed")) for c in commits}


@dataclass(frozen=True)
class Tree:
    """A folder at a commit: its entries (mode, name, object id)."""

    entries: tuple[tuple[str, str, str], ...]


def _read(root: Path, specs: list[str]) -> list[bytes | Tree | str | None] | None:
    """Each object (``<commit>:<path>`` or an id): its bytes (a blob), its entries (a
    tree), None (not there) or why it is refused (a string); None when git failed."""
    check = _cat_file(root, "--batch-check", specs)
    if check is None:
        return None
    lines = check.decode("utf-8", "replace").splitlines()
    result: list[bytes | Tree | str | None] = [None] * len(specs)
    fetch: list[tuple[int, str, str]] = []
    for i, (spec, line) in enumerate(zip(specs, lines, strict=False)):
        parts = line.split()
        if len(parts) != 3 or parts[1] not in ("blob", "tree"):
            continue
        if int(parts[2]) > MAX_BYTES:
            what = spec.partition(":")[2] or "a candidate report"
            result[i] = f"{what} is larger than {MAX_BYTES // 1024} KiB; refused"
        else:
            fetch.append((i, parts[0], parts[1]))
    if fetch:
        out = _cat_file(root, "--batch", [sha for _, sha, _ in fetch])
        if out is None:
            return None
        for (i, sha, kind), data in zip(fetch, gitcmd.split_batch(out, len(fetch)), strict=True):
            if data is not None:
                tree = kind == "tree"
                result[i] = Tree(tuple(gitcmd.tree_entries(data, len(sha) // 2))) if tree else data
    return result


def _cat_file(root: Path, mode: str, objects: list[str]) -> bytes | None:
    stdin = "".join(f"{o}\n" for o in objects).encode()
    proc = gitcmd.run(root, "cat-file", mode, stdin=stdin)
    return proc.stdout if proc.returncode == 0 else None


def _metric(data: bytes | Tree | str | None) -> str | None:
    """The selection metric ``metrics.json`` names."""
    report = json_object(data) if isinstance(data, bytes) else None
    metric = report.get("metric") if report is not None else None
    return _printable(metric) if isinstance(metric, str) else None


def _scores(name: str, entry: Mapping[str, Any]) -> CandidateScores:
    return CandidateScores(
        name=_printable(name),
        validation=_numbers(entry.get("validation")),
        test=_numbers(entry.get("test")),
        validated_on=_text(entry.get("validated_on")),
        note=_text(entry.get("note")),
    )


def _parse_legacy(commit: str, path: str, data: bytes) -> CandidatesAt:
    """``reports/candidates.json``: ``{"metric": M, "candidates": {name: entry}}``."""
    report = json_object(data)
    if report is None:
        return CandidatesAt(commit, problem=f"{path} is not JSON")
    entries = report.get("candidates")
    if not isinstance(entries, dict):
        return CandidatesAt(commit, problem=f"{path} has no 'candidates' mapping")
    metric = report.get("metric")
    found = sorted(entries.items())
    scores = tuple(_scores(str(name), entry) for name, entry in found if isinstance(entry, dict))
    return CandidatesAt(commit, _printable(metric) if isinstance(metric, str) else None, scores)


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
