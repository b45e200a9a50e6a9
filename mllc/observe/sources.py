"""Is a lifecycle's source data versioned, and did it change since the last training?

A version must rebuild from its tag on another machine, so the file a ``csv:`` or
``parquet:`` source reads must be versioned at the commit the tag points at: tracked
by DVC (a committed ``<path>.dvc`` pointer, the content in the cache and on the
remote) or, for small files, committed to Git. Read-only, like all observation: a
few ``git`` calls, the pointer, the file's hash (cached by the plan's hasher) and,
only when the file changed, its row count.
"""

from __future__ import annotations

import csv
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mllc import gitcmd, saferead
from mllc.hashing import MD5, Hasher, check_path
from mllc.observe.types import SourceState, Tracking
from mllc.spec.models import Lifecycle
from mllc.spec.yamlsafe import read_yaml


def pointer_path(path: str) -> str:
    return f"{path}.dvc"


def gitignore_path(path: str) -> str:
    """The .gitignore ``dvc add`` writes next to the file it tracks."""
    folder = posixpath.dirname(path)
    return f"{folder}/.gitignore" if folder else ".gitignore"


def source_paths(spec: Lifecycle) -> list[str]:
    """The files a spec's ``data.source`` reads (``csv:`` or ``parquet:``), none for sklearn."""
    source = spec.data.source
    return [p for p in (source.csv, source.parquet) if p is not None]


def pointer_md5(root: Path, path: str) -> str | None:
    """The hash a ``.dvc`` pointer records for ``path``; None when there is none."""
    try:  # bounded like a spec (aliases, depth, size on stat), inside the repository
        loaded = read_yaml(root / pointer_path(path), root)
    except OSError:
        return None
    doc = loaded.data if loaded is not None else None
    outs = doc.get("outs") if isinstance(doc, dict) else None
    first = outs[0] if isinstance(outs, list) and outs else None
    md5 = first.get("md5") if isinstance(first, dict) else None
    return md5 if isinstance(md5, str) else None


def count_rows(root: Path, path: str) -> int | None:
    """Data rows of a CSV (records after the header, quoted newlines honoured) or a
    Parquet file (from its footer); None when it cannot be parsed. Only a regular
    file inside the repository is opened (:mod:`mllc.saferead`), never a symlink's
    target outside it or a device."""
    found = check_path(root, str(root / path), path)  # as hashing it: inside, or a cache object
    if found is None:
        return None
    real, st = found
    fd = saferead.open_checked(real, st, path)
    try:
        if path.lower().endswith(".parquet"):
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            with open(fd, "rb", closefd=False) as raw:
                return int(pq.ParquetFile(raw).metadata.num_rows)
        with open(fd, encoding="utf-8", newline="", closefd=False) as fh:
            return max(sum(1 for _ in csv.reader(fh)) - 1, 0)
    except (OSError, ValueError, csv.Error):
        return None
    finally:
        os.close(fd)


def _trained(lock: Mapping[str, Any] | None, path: str) -> str | None:
    prepare = ((lock or {}).get("stages") or {}).get("prepare") or {}
    for dep in prepare.get("deps") or []:
        if isinstance(dep, dict) and dep.get("path") == path and isinstance(dep.get("md5"), str):
            return str(dep["md5"])
    return None


def _trained_rows(report: Mapping[str, Any], path: str) -> int | None:
    """Rows the last prepare read from ``path``: its rows in, less the feedback batches'."""
    source = report.get("source")
    rows = report.get("rows_in")
    if not isinstance(source, dict) or source.get("path") != path or not isinstance(rows, int):
        return None
    feedback = source.get("feedback") or []
    extra = sum(f.get("rows", 0) for f in feedback if isinstance(f, dict))
    return rows - extra if isinstance(extra, int) else None


def _git_tracked(root: Path, paths: list[str]) -> set[str]:
    proc = gitcmd.run(root, "ls-files", "-z", "--", *paths)
    if proc.returncode != 0:
        return set()
    return {p for p in proc.stdout.decode("utf-8", "replace").split("\0") if p}


def _git_changed(root: Path, paths: list[str]) -> set[str]:
    """Paths (of ``paths``) that are untracked or differ from HEAD."""
    proc = gitcmd.run(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths)
    if proc.returncode != 0:
        return set()
    return {e[3:] for e in proc.stdout.decode("utf-8", "replace").split("\0") if len(e) > 3}


def dvc_target(root: Path, path: str) -> str | None:
    """What DVC tracks ``path`` as: the file itself (``<path>.dvc``) or the nearest
    folder above it with a pointer (``dvc add data`` tracks ``data/`` whole); None."""
    parts = path.split("/")
    for i in range(len(parts), 0, -1):
        target = "/".join(parts[:i])
        if (root / pointer_path(target)).is_file():
            return target
    return None


def observe_sources(
    root: Path,
    paths: list[str],
    lock: Mapping[str, Any] | None,
    report: Mapping[str, Any],
    hasher: Hasher,
) -> tuple[SourceState, ...]:
    """The state of each source file in ``paths`` (``report``: the last prepare's data.json)."""
    if not paths:
        return ()
    targets = {p: dvc_target(root, p) for p in paths}
    pointers = [pointer_path(t) for t in targets.values() if t is not None]
    in_git = _git_tracked(root, paths)
    changed = _git_changed(root, [*paths, *pointers])
    states = []
    for path in paths:
        tracked: Tracking | None = None
        target = targets[path]
        recorded = pointer_md5(root, target) if target is not None else None
        if target is not None:
            tracked = "dvc"
        elif path in in_git:
            tracked = "git"
        # What DVC records is the hash of what it tracks: the file, or its folder.
        hashed = target if target is not None else path
        md5 = hasher.md5(hashed, MD5) if (root / path).is_file() else None
        trained = _trained(lock, path)
        before = recorded if tracked == "dvc" and recorded is not None else trained
        differs = md5 is not None and before is not None and md5 != before
        # The rows the last training read are the "before" when the file changed since.
        now = md5 if hashed == path else hasher.md5(path, MD5) if differs else None
        retrained = differs and trained is not None and trained != now
        mine = pointer_path(hashed) if tracked == "dvc" else path if tracked == "git" else None
        states.append(
            SourceState(
                path=path,
                tracked=tracked,
                md5=md5,
                recorded_md5=recorded,
                trained_md5=trained,
                rows=count_rows(root, path) if differs else None,
                trained_rows=_trained_rows(report, path) if retrained else None,
                uncommitted=(mine,) if mine is not None and mine in changed else (),
                target=target,
            )
        )
    return tuple(states)
