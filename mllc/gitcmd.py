"""Running ``git``: the one place mllc starts a git process, and how its failures read.

:func:`run` never raises for git's exit status (callers that ask a yes/no
question read ``returncode``); :func:`output` and :func:`git` raise
``MllcError("git ARG failed: DETAIL")``. A git that cannot be started raises
``FileNotFoundError``, or with ``missing=`` that error type (the caller's
subclass of MllcError) with :data:`NOT_INSTALLED`.

:func:`output` and :func:`git` (and :func:`run` with ``identity=True``) run with
mllc's fallback identity (:func:`identity_env`): CI runners often have no
``user.name``/``user.email``, and without a fallback the apply's commit or registry
tag would fail after the pipeline already ran. A configured identity always wins:
the fallback only fills what Git lacks.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from mllc.errors import MllcError

NOT_INSTALLED = "git is not installed (or not on PATH)"

FALLBACK = {
    "GIT_AUTHOR_NAME": "mllc",
    "GIT_AUTHOR_EMAIL": "mllc@localhost",
    "GIT_COMMITTER_NAME": "mllc",
    "GIT_COMMITTER_EMAIL": "mllc@localhost",
}


def run(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    identity: bool = False,
    missing: type[MllcError] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """``git ARGS`` in ``cwd``, output captured as bytes, whatever git's exit status.

    ``env`` is added to the environment, after mllc's fallback identity when
    ``identity`` is set (only a write needs one: a read starts no ``git var``).
    A git that cannot be started raises ``missing(NOT_INSTALLED)`` when ``missing``
    is given, else the ``OSError``.
    """
    try:
        extra = {**(identity_env(cwd) if identity else {}), **(env or {})}
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            check=False,
            env=None if not identity and env is None else {**os.environ, **extra},
        )
    except FileNotFoundError as exc:
        if missing is None:
            raise
        raise missing(NOT_INSTALLED) from exc


def _failure(
    args: tuple[str, ...], proc: subprocess.CompletedProcess[bytes], last_line: bool
) -> MllcError:
    """``MllcError("git ARG failed: DETAIL")`` for a failed ``git ARGS``.

    DETAIL is git's stderr (its stdout when stderr is empty), or with ``last_line``
    the last line of its stderr (its exit status when stderr is empty).
    """
    if last_line:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return MllcError(f"git {args[0]} failed: {lines[-1] if lines else proc.returncode}")
    detail = proc.stderr.strip() or proc.stdout.strip()
    return MllcError(f"git {args[0]} failed: {detail.decode('utf-8', 'replace')}")


def output(
    root: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    identity: bool = True,
    missing: type[MllcError] | None = None,
    last_line: bool = False,
) -> bytes:
    """The stdout of ``git ARGS``; MllcError when git fails (see :func:`_failure` for
    ``last_line``). The arguments are :func:`run`'s; ``identity`` is on by default."""
    proc = run(root, *args, env=env, stdin=stdin, identity=identity, missing=missing)
    if proc.returncode != 0:
        raise _failure(args, proc, last_line)
    return proc.stdout


def git(
    root: Path, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> str:
    """:func:`output` as text, stripped."""
    return output(root, *args, env=env, stdin=stdin).decode("utf-8", "replace").strip()


@functools.cache
def identity_env(root: Path) -> dict[str, str]:
    """Extra environment for git: empty when Git already knows who commits."""
    proc = run(root, "var", "GIT_COMMITTER_IDENT")
    return {} if proc.returncode == 0 else dict(FALLBACK)


def file_at(root: Path, commit: str, path: str) -> bytes | None:
    """The bytes of ``path`` (repository-relative, posix) at ``commit``; None when the
    commit does not hold it."""
    proc = run(root, "show", f"{commit}:{path}")
    return proc.stdout if proc.returncode == 0 else None


def head(root: Path) -> str | None:
    """The commit HEAD points at; None in a repository without commits."""
    proc = run(root, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    return proc.stdout.decode("utf-8", "replace").strip() or None if proc.returncode == 0 else None


_OID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$", re.ASCII)


def head_from_files(root: Path) -> str | None:
    """HEAD's commit id read from ``.git``'s files, without a process: for caching what
    is read at HEAD. None whenever it is not plain (a worktree's ``.git`` file, an
    unborn branch, a ref only a process can resolve): callers then ask git."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="ascii").strip()
        if not head.startswith("ref: refs/"):
            return head if _OID.fullmatch(head) else None
        ref = head.removeprefix("ref: ")
        loose = git / ref
        if loose.is_file():
            oid = loose.read_text(encoding="ascii").strip()
        else:
            with (git / "packed-refs").open(encoding="ascii") as packed:
                oid = next((ln.split()[0] for ln in packed if ln.rstrip().endswith(" " + ref)), "")
    except (OSError, UnicodeDecodeError):
        return None
    return oid if _OID.fullmatch(oid) else None


def split_batch(out: bytes, count: int) -> list[bytes | None]:
    """The ``count`` objects of ``git cat-file --batch`` output, in order: each is a header
    line ``<sha> <type> <size>``, the bytes and a newline; a header alone (``<sha> missing``)
    or output cut short gives None."""
    objects: list[bytes | None] = []
    pos = 0
    for _ in range(count):
        header_end = out.find(b"\n", pos)
        if header_end < 0:
            objects.append(None)
            continue
        parts = out[pos:header_end].split()
        if len(parts) != 3:
            objects.append(None)
            pos = header_end + 1
            continue
        size = int(parts[2])
        objects.append(out[header_end + 1 : header_end + 1 + size])
        pos = header_end + 1 + size + 1
    return objects


def tree_entries(data: bytes, hash_bytes: int) -> list[tuple[str, str, str]]:
    """(mode, name, object id) of each entry of a tree object's raw bytes, as ``git cat-file
    --batch`` gives them: ``<mode> <name>\\0`` then the id's ``hash_bytes`` bytes (20 for
    SHA-1, 32 for SHA-256). A cut-short tree gives the entries before the cut."""
    entries: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(data):
        nul = data.find(b"\0", pos)
        if nul < 0 or nul + 1 + hash_bytes > len(data):
            break
        mode, _, name = data[pos:nul].partition(b" ")
        oid = data[nul + 1 : nul + 1 + hash_bytes].hex()
        entries.append((mode.decode("ascii", "replace"), name.decode("utf-8", "replace"), oid))
        pos = nul + 1 + hash_bytes
    return entries


def untrack(root: Path, paths: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    """Stop Git tracking ``paths`` in ``root``'s index (or the one ``GIT_INDEX_FILE`` in
    ``env`` names); the files stay on disk, paths it does not track are skipped. For the
    outputs DVC caches that an older mllc kept in Git."""
    if paths:
        literal = [f":(literal){p}" for p in paths]
        git(root, "rm", "-q", "-f", "--cached", "--ignore-unmatch", "--", *literal, env=env)
