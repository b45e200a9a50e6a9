"""The DVC cache, read for ``mllc verify``: restore a version's tracked inputs into its
rebuild, and check that the objects the version's outputs name still hash to their names.

A DVC 3 cache object is named by the MD5 of its bytes (``files/md5/ab/cdef…``); a
directory's object (``….dir``) is the JSON list of its files, named by the MD5 of that
list. A file replaced in the cache keeps its name and loses its hash: only reading it
shows that. Nothing here trusts a name: every byte restored or audited is hashed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mllc import gitcmd
from mllc.dvcrepo import cache_object
from mllc.hashing import MD5, MD5_DOS2UNIX, file_md5
from mllc.saferead import RefusedRead, read_bytes
from mllc.spec.yamlsafe import YamlProblem, read_yaml
from mllc.verify.model import Finding

# The largest directory listing (a ``.dir`` object) read: about 500,000 files.
_MAX_LISTING = 64 << 20

ObjectState = Literal["intact", "absent", "corrupt"]


@dataclass(frozen=True)
class Pointer:
    """One output a ``.dvc`` file tracks: where it goes in the checkout, and its hash."""

    pointer: str  # the .dvc file, repository-relative
    path: str  # the data, repository-relative
    md5: str
    algorithm: str  # md5 (DVC 3) or md5-dos2unix (a DVC 2 pointer: no ``hash:`` key)


def pointers(where: Path) -> tuple[list[Pointer], list[str]]:
    """Every output the ``.dvc`` files Git tracks in checkout ``where`` name, and the
    pointers that cannot be read (problems, each naming the file)."""
    listed = gitcmd.git(where, "ls-files", "-z", "--", "*.dvc").split("\0")
    found: list[Pointer] = []
    problems: list[str] = []
    for rel in filter(None, listed):
        try:
            loaded = read_yaml(where / rel, where, shown=rel)
        except (OSError, YamlProblem, RefusedRead) as exc:
            problems.append(f"{rel}: {getattr(exc, 'message', exc)}")
            continue
        doc = loaded.data if loaded is not None else None
        outs = doc.get("outs") if isinstance(doc, dict) else None
        if not isinstance(outs, list) or not outs:
            problems.append(f"{rel}: no outs")
            continue
        base = Path(rel).parent
        for out in outs:
            md5 = out.get("md5") if isinstance(out, dict) else None
            path = out.get("path") if isinstance(out, dict) else None
            if not isinstance(md5, str) or not isinstance(path, str) or ".." in Path(path).parts:
                problems.append(f"{rel}: an output without a path and an md5")
                continue
            algorithm = MD5 if out.get("hash") == MD5 else MD5_DOS2UNIX
            found.append(Pointer(rel, (base / path).as_posix(), md5, algorithm))
    return found, problems


def _listing(root: Path, md5: str) -> list[tuple[str, str]] | None:
    """A directory object's ``(relpath, md5)`` entries; None when absent or not a listing."""
    path = cache_object(root, md5)
    try:
        raw = read_bytes(path, path.parent, max_bytes=_MAX_LISTING)
    except (OSError, RefusedRead):
        return None
    if raw is None:
        return None
    try:
        entries = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entries, list):
        return None
    pairs = []
    for entry in entries:
        rel = entry.get("relpath") if isinstance(entry, dict) else None
        digest = entry.get("md5") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not isinstance(digest, str) or ".." in Path(rel).parts:
            return None
        pairs.append((rel, digest))
    return pairs


def object_state(root: Path, md5: str, algorithm: str = MD5) -> tuple[ObjectState, str | None]:
    """Whether the cache of ``root`` holds object ``md5`` whole: (state, the hash its
    bytes actually have when corrupt). A directory is whole when its listing and every
    file it lists are."""
    path = cache_object(root, md5)
    if not path.is_file():
        return "absent", None
    actual = file_md5(path, MD5 if md5.endswith(".dir") else algorithm)
    if actual != md5.removesuffix(".dir"):
        return "corrupt", actual
    if md5.endswith(".dir"):
        for rel, digest in _listing(root, md5) or []:
            state, got = object_state(root, digest, algorithm)
            if state != "intact":
                return state, f"{rel}: {got or 'absent'}"
    return "intact", None


def _copy_checked(root: Path, md5: str, algorithm: str, target: Path) -> ObjectState:
    source = cache_object(root, md5)
    if not source.is_file():
        return "absent"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, 0o644)
    return "intact" if file_md5(target, algorithm) == md5 else "corrupt"


def restore(root: Path, where: Path, pointer: Pointer) -> ObjectState:
    """Copy ``pointer``'s data from ``root``'s cache into checkout ``where``, hashing
    every file copied: intact (restored), absent (not in the cache) or corrupt."""
    target = where / pointer.path
    if not pointer.md5.endswith(".dir"):
        return _copy_checked(root, pointer.md5, pointer.algorithm, target)
    state, _ = object_state(root, pointer.md5, pointer.algorithm)
    if state != "intact":
        return state
    for rel, digest in _listing(root, pointer.md5) or []:
        copied = _copy_checked(root, digest, pointer.algorithm, target / rel)
        if copied != "intact":
            return copied
    return "intact"


def audit(root: Path, outs: Iterable[tuple[str, str]]) -> tuple[int, list[str], list[Finding]]:
    """Hash the cache objects of ``outs`` (path, md5): (objects checked, paths whose object
    the cache does not hold, findings for objects that no longer hash to their names)."""
    checked, absent, findings = 0, [], []
    for path, md5 in outs:
        state, actual = object_state(root, md5)
        if state == "absent":
            absent.append(path)
            continue
        checked += 1
        if state == "corrupt":
            findings.append(
                Finding(
                    check="cache",
                    subject=path,
                    detail=f"the DVC cache's copy was replaced: object {md5} now hashes to "
                    f"{actual} (a server or checkout would get other bytes than recorded)",
                )
            )
    return checked, absent, findings


def remote_configured(root: Path) -> bool:
    """Whether the repository's DVC config names any remote (DVC can fetch from it)."""
    for name in ("config", "config.local"):
        path = root / ".dvc" / name
        try:
            raw = read_bytes(path, root)
        except (OSError, RefusedRead):
            continue
        if raw and any(
            line.strip().lower().startswith(("['remote ", '["remote ', "[remote "))
            for line in raw.decode("utf-8", "replace").splitlines()
        ):
            return True
    return False


def local_config_without_cache(root: Path) -> str:
    """``root``'s ``.dvc/config.local`` (remote credentials live there) minus its
    ``[cache]`` section, for a checkout that sets its own cache."""
    try:
        raw = read_bytes(root / ".dvc" / "config.local", root)
    except (OSError, RefusedRead):
        return ""
    kept: list[str] = []
    skipping = False
    for line in (raw or b"").decode("utf-8", "replace").splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            skipping = stripped.strip("[]'\" ").lower() == "cache"
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + ("\n" if kept else "")
