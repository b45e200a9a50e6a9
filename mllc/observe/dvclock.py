"""``dvc.lock`` as a killed DVC can leave it: tell a broken one, and rebuild it honestly.

DVC rewrites ``pipelines/<name>/dvc.lock`` in place after each stage: it opens the
file with truncation, then writes the whole document. A kill in between (apply
killed, DVC dying with it) leaves the file empty or cut at any byte, and DVC then
refuses it on every later run ("dvc.lock validation failed").

:func:`lock_problem` says whether DVC would refuse a lock (mirroring DVC 3's
lock-file schema, ``dvc/schema.py`` ``LOCKFILE_SCHEMA``) or whether it was cut in
the middle of a line. :func:`repair` rebuilds a broken one from two honest sources:

* the stage records DVC had written completely before the kill: DVC writes the
  file front to back, so a stage's block is whole once the next block (or any
  later top-level line) has begun;
* for every other stage, the record committed at HEAD, the last good copy.

Each record is a claim ("this command, with these deps and params, made these
outs") that DVC checks against the workspace's hashes before trusting it: an old
or missing record can only make DVC rerun (or restore from its run cache) that
stage, never skip a stale one. The blocks are kept as DVC wrote them, so a lock
that needs no rerun is byte-for-byte what DVC would have written.

Read-only except for what the caller writes; reads nothing outside the repository
(the committed copy comes from ``git show HEAD:./dvc.lock``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mllc import gitcmd
from mllc.observe.types import Reason, ReasonKind, StageState
from mllc.saferead import RefusedRead, read_bytes
from mllc.spec.yamlsafe import YamlProblem, load_text

HEADER = "schema: '2.0'\nstages:\n"
_STAGE_KEYS = frozenset({"cmd", "deps", "params", "outs"})
_CHECKSUMS = ("md5", "checksum", "etag")
_INTS = ("size", "nfiles")
# What no write of DVC's, however cut short, can produce: a hostile file, refused as such.
HOSTILE = frozenset({"yaml-too-large", "yaml-tag", "duplicate-key"})


def _parse(text: str) -> tuple[Any, str | None]:
    """(data, None), or (None, what is wrong); raises YamlProblem for a hostile file."""
    try:
        loaded = load_text(text)
    except YamlProblem as problem:
        if problem.code in HOSTILE:
            raise
        return None, f"it is not valid YAML (line {problem.line}, column {problem.column})"
    hostile = [p for p in loaded.problems if p.code in HOSTILE]
    if hostile:
        raise hostile[0]
    if loaded.problems:
        first = loaded.problems[0]
        return None, f"it is not valid YAML (line {first.line}, column {first.column})"
    return loaded.data, None


def _checksum_ok(value: Any) -> bool:
    # dvc/output.py CHECKSUM_SCHEMA: None, "", or a string (or int) of 3 characters or more.
    if value is None or value == "":
        return True
    return isinstance(value, str | int) and not isinstance(value, bool) and len(str(value)) >= 3


def _data_problem(where: str, entry: Any) -> str | None:
    """One deps/outs entry against dvc/schema.py DATA_SCHEMA (the parts DVC writes)."""
    if not isinstance(entry, Mapping):
        return f"{where} is not a mapping"
    if not isinstance(entry.get("path"), str):
        return f"{where} has no path"
    for key in _CHECKSUMS:
        if key in entry and not _checksum_ok(entry[key]):
            return f"{where}.{key} is not a hash"
    for key in _INTS:
        if key in entry and (not isinstance(entry[key], int) or isinstance(entry[key], bool)):
            return f"{where}.{key} is not a number"
    if "isexec" in entry and not isinstance(entry["isexec"], bool):
        return f"{where}.isexec is not true or false"
    if "hash" in entry and not isinstance(entry["hash"], str):
        return f"{where}.hash is not a string"
    return None


def _stage_problem(name: Any, entry: Any) -> str | None:
    """One stage record against dvc/schema.py LOCK_FILE_STAGE_SCHEMA."""
    if not isinstance(name, str):
        return f"stage {name!r} is not named by a string"
    if not isinstance(entry, Mapping):
        return f"stages.{name} is not a mapping"
    unknown = sorted(str(k) for k in entry if k not in _STAGE_KEYS)
    if unknown:
        return f"stages.{name} has an unknown key {unknown[0]!r}"
    if not isinstance(entry.get("cmd"), str | list):
        return f"stages.{name} has no cmd"
    for section in ("deps", "outs"):
        if section not in entry:
            continue
        items = entry[section]
        if not isinstance(items, list):
            return f"stages.{name}.{section} is not a list"
        for i, item in enumerate(items):
            problem = _data_problem(f"stages.{name}.{section}[{i}]", item)
            if problem:
                return problem
    if "params" in entry:
        params = entry["params"]
        if not isinstance(params, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Mapping) and all(isinstance(x, str) for x in v)
            for k, v in params.items()
        ):
            return f"stages.{name}.params is not a mapping of files to values"
    return None


def check(text: str) -> tuple[Any, str | None]:
    """(the parsed lock, None), or (None, why DVC would refuse it or it cannot be whole).

    DVC never writes an empty lock (it deletes one with no stages) and always ends
    it with a newline: an empty file or one cut in the middle of a line is a write
    that a kill interrupted, even when what is left happens to parse. Raises
    YamlProblem for a file no write of DVC's can leave (an alias bomb, a tag).
    """
    if not text.strip():
        return None, "it is empty"
    if not text.endswith("\n"):
        _parse(text)  # a hostile file is refused as such, cut short or not
        return None, "it ends in the middle of a line"
    data, problem = _parse(text)
    if problem:
        return None, problem
    if not isinstance(data, Mapping):
        return None, "it is not a YAML mapping"
    if data.get("schema") != "2.0":
        return None, "it has no schema: '2.0' line"
    stages = data.get("stages", {})
    if not isinstance(stages, Mapping):
        return None, "its stages are not a mapping"
    for name, entry in stages.items():
        problem = _stage_problem(name, entry)
        if problem:
            return None, problem
    return data, None


def lock_problem(text: str) -> str | None:
    """Why a lock is broken (see :func:`check`); None when DVC can use it as it is.
    A hostile file counts as broken here: apply replaces it."""
    try:
        return check(text)[1]
    except YamlProblem as problem:
        return problem.message


def stage_blocks(text: str, *, whole: bool) -> list[tuple[str, str]]:
    """(stage name, its block of lines as written) under ``stages:``, in file order.

    DVC's layout: ``stages:`` at column 0, each stage's name at column 2, its record
    indented below. With ``whole`` False (a file cut short) the last block is left
    out unless a later top-level line follows it: it may be incomplete. A block that
    does not read as a valid record on its own is left out too.
    """
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "stages:") + 1
    except StopIteration:
        return []
    heads: list[int] = []
    end = len(lines)
    for i in range(start, len(lines)):
        line = lines[i]
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if indent == 0:
            end = i  # the next top-level key: the stages section is over, and whole
            break
        if indent == 2:
            heads.append(i)
    bounds = list(zip(heads, [*heads[1:], end], strict=False))
    if bounds and not whole and end == len(lines):
        bounds.pop()  # the file was cut inside (or right after) the last block
    blocks: list[tuple[str, str]] = []
    for first, last in bounds:
        block = "".join(lines[first:last])
        name = _block_stage(block)
        if name is not None:
            blocks.append((name, block))
    return blocks


@functools.lru_cache(maxsize=256)
def _block_stage(block: str) -> str | None:
    """The stage a block records, when it reads as one valid record on its own."""
    if not block.endswith("\n"):
        return None
    try:
        data, _ = check(HEADER + block)
    except YamlProblem:
        return None
    stages = data.get("stages") if isinstance(data, Mapping) else None
    if isinstance(stages, Mapping) and len(stages) == 1:
        name = next(iter(stages))
        return name if isinstance(name, str) else None
    return None


@dataclass(frozen=True)
class Repair:
    """What :func:`repair` rebuilt: ``text`` None means remove the file (nothing to keep)."""

    problem: str
    text: str | None
    kept: tuple[str, ...]  # stages whose complete records were still in the broken file
    restored: tuple[str, ...]  # stages whose records came from the committed copy

    def summary(self) -> str:
        kept = ", ".join(self.kept) or "none"
        restored = ", ".join(self.restored) or "none"
        return (
            f"kept the complete records of: {kept}; restored from HEAD: {restored}; "
            "DVC reruns only what its hashes say is stale"
        )


def repair(text: str, committed: str | None) -> Repair | None:
    """The lock to write in place of a broken ``text``; None when ``text`` is fine.

    ``committed``: the copy at HEAD (None when there is none); used only if DVC
    would accept it.
    """
    problem = lock_problem(text)
    if problem is None:
        return None
    salvaged = dict(stage_blocks(text, whole=False))
    base: dict[str, str] = {}
    if committed is not None and lock_problem(committed) is None:
        base = dict(stage_blocks(committed, whole=True))
    order = [*base, *(name for name in salvaged if name not in base)]
    blocks = [salvaged.get(name) or base[name] for name in order]
    kept = tuple(name for name in order if name in salvaged)
    restored = tuple(name for name in order if name not in salvaged)
    # Each block is a valid record on its own and the names are unique: the whole is valid.
    rebuilt = HEADER + "".join(blocks) if blocks else None
    return Repair(problem, rebuilt, kept, restored)


def committed_lock(path: Path) -> str | None:
    """The copy of the lock at ``path`` committed at HEAD; None when there is none."""
    if not path.parent.is_dir():
        return None
    proc = gitcmd.run(path.parent, "show", f"HEAD:./{path.name}")
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace")


_TEXTS = {
    "lost": "its record was lost with it: DVC reruns the stage or restores it from its run cache",
    "kept": "its record survived in the broken file: DVC reruns it only if its hashes changed",
    "restored": "its record is restored from HEAD: DVC reruns it only if its hashes changed",
}


@dataclass(frozen=True)
class BrokenLockReason(Reason):
    """Why a stage is listed when its lock was broken (``path``: "" for the lock itself,
    or where the stage's record comes from: lost, kept, restored)."""

    kind: ReasonKind = "definition"

    def text(self) -> str:
        if self.path in _TEXTS:
            return _TEXTS[self.path]
        return (
            f"dvc.lock was left broken by an interrupted apply ({self.detail}): apply rebuilds it"
        )


class BrokenLock(dict[str, Any]):
    """A ``dvc.lock`` an interrupted write left broken, read as the lock apply rebuilds
    from it (:func:`repair`); ``repaired`` says what is wrong and where each record
    comes from."""

    def __init__(self, data: Mapping[str, Any], repaired: Repair) -> None:
        super().__init__(data)
        self.repaired = repaired


def load(text: str, committed: Callable[[], str | None]) -> dict[str, Any]:
    """The lock's data; for a broken one, a :class:`BrokenLock` of what apply will write
    (``committed`` is asked for the copy at HEAD only then). Raises YamlProblem for a
    file no write of DVC's can leave."""
    data, problem = check(text)
    if problem is None:
        return dict(data)
    fixed = repair(text, committed())
    assert fixed is not None
    rebuilt = check(fixed.text)[0] if fixed.text is not None else None
    return BrokenLock(rebuilt or {}, fixed)


def explain(states: Iterable[StageState], lock: BrokenLock) -> tuple[StageState, ...]:
    """Stage states against a rebuilt lock, each saying first that the lock was broken.

    Every stage is listed (apply runs DVC on the rebuilt lock; DVC decides by its
    hashes): a stale one with its reasons (a lost record instead of "never run"), a
    fresh one with where its record comes from.
    """
    fixed = lock.repaired
    broken = BrokenLockReason(detail=fixed.problem)
    out = []
    for st in states:
        if st.stale:
            reasons = tuple(
                BrokenLockReason(path="lost") if r.kind == "never-run" else r for r in st.reasons
            )
        else:
            source = "kept" if st.name in fixed.kept else "restored"
            reasons = (BrokenLockReason(path=source),)
        out.append(replace(st, stale=True, reasons=(broken, *reasons)))
    return tuple(out)


def whole_pointer(path: Path, root: Path) -> bool:
    """Whether a ``.dvc`` pointer file is one DVC finished writing (it writes it in place:
    a kill inside ``dvc add`` can leave it empty or cut short, and DVC then refuses every
    command). Read bounded and inside the repository; anything unreadable is not whole."""
    try:
        raw = read_bytes(path, root)
    except (OSError, RefusedRead):
        return False
    if raw is None or not raw.endswith(b"\n"):
        return False
    try:
        data, problem = _parse(raw.decode("utf-8", "replace"))
    except YamlProblem:
        return False
    outs = data.get("outs") if isinstance(data, Mapping) and not problem else None
    if not isinstance(outs, list) or not outs:
        return False
    return all(_data_problem("outs", out) is None for out in outs)
