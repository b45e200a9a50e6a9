"""Reading files a pull request controls: inside the repository, regular, bounded.

Every file mllc reads or hashes from a checkout (specs, generated files,
``dvc.lock``, params, metrics, reports, data it hashes) can come from a pull
request, and so can every symlink. :func:`check` is the one gate:

* a path is followed through a symlink only when it resolves inside the
  repository (or another allowed root: the DVC cache); otherwise it is refused
  before anything is read or even ``stat``-ed at the target;
* only regular files are read: a FIFO, a device (``/dev/zero``), a socket or a
  directory is refused, never opened;
* a size cap is checked on ``stat`` before reading, and the read itself stops
  one byte past the cap (a file that grows meanwhile is refused too).

A refusal is a :class:`RefusedRead` (an :class:`~mllc.errors.MllcError`) whose
diagnostic names the path as it is in the repository, never the target
outside it. :func:`read_json` parses what it read; YAML goes through
:func:`mllc.spec.yamlsafe.read_yaml` (aliases and depth bounded too).
Standard library only: cheap to import anywhere.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mllc.errors import Diagnostic, MllcError

MAX_BYTES = 1 << 20  # 1 MiB: a spec, a generated file, a lock or a report is a few KiB
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK | os.O_NOFOLLOW

# Codes of refusals that are about limits and place, not about content.
OUTSIDE = "outside-repository"
NOT_REGULAR = "not-regular-file"
TOO_LARGE = "too-large"
PLACE_AND_LIMITS = frozenset({OUTSIDE, NOT_REGULAR, TOO_LARGE, "unreadable"})


class RefusedRead(MllcError):
    """A file mllc will not read, or read but cannot parse; the diagnostics name it."""

    message = "file refused"

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__(diagnostics[0].render(), diagnostics)

    @property
    def code(self) -> str:
        return self.diagnostics[0].code


def refused(shown: str, message: str, code: str, line: int = 0, column: int = 0) -> RefusedRead:
    return RefusedRead([Diagnostic(shown, line, column, "", message, code)])


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=256)
def _real(path: str) -> str:
    return os.path.realpath(path)


def find_root(path: str | os.PathLike[str]) -> Path | None:
    """The nearest folder above ``path`` (as written, symlinks not followed) holding ``.git``."""
    current = os.path.abspath(path)
    found = _ROOTS.get(os.path.dirname(current))  # a plan reads hundreds of files in a few folders
    if found is not None:
        return found
    for folder in [Path(current), *Path(current).parents]:
        if os.path.lexists(folder / ".git"):
            # Found ones only (a folder may become a repository later), and for the folder
            # holding ``path`` only when the root is that folder or above it.
            if str(folder) != current and len(_ROOTS) < 4096:
                _ROOTS[os.path.dirname(current)] = folder
            return folder
    return None


_ROOTS: dict[str, Path] = {}


def confinement_root(path: str | os.PathLike[str]) -> Path:
    """What ``path`` must stay inside: its Git repository; outside any, the working
    directory when it is under it, else its own folder."""
    found = find_root(path)
    if found is not None:
        return found
    full, cwd = os.path.abspath(path), os.getcwd()
    return Path(cwd) if _inside(full, cwd) else Path(full).parent


def shown_path(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> str:
    """``path`` relative to ``root`` (posix) when it is under it, else as given."""
    full, base = os.path.abspath(path), os.path.abspath(root)
    if _inside(full, base):
        return Path(os.path.relpath(full, base)).as_posix()
    return Path(path).as_posix()


def check(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str],
    *,
    allowed: Sequence[str | os.PathLike[str]] = (),
    shown: str | None = None,
    directories: bool = False,
) -> tuple[str, os.stat_result] | None:
    """The real path of ``path`` and its ``stat``, or None when it does not exist.

    Refused (:class:`RefusedRead`) when it resolves outside ``root`` and every
    ``allowed`` root, or is anything but a regular file (a directory too, when
    ``directories`` is true). Nothing outside the roots is ``stat``-ed.
    """
    name = shown if shown is not None else shown_path(path, root)
    real = os.path.realpath(path)
    roots = [_real(os.fspath(root)), *(_real(os.fspath(a)) for a in allowed)]
    if not any(_inside(real, r) for r in roots):
        raise refused(
            name,
            "resolves (through a symbolic link) outside the repository; not read",
            OUTSIDE,
        )
    try:
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise refused(name, f"cannot read: {exc.strerror}", "unreadable") from None
    if stat.S_ISREG(st.st_mode) or (directories and stat.S_ISDIR(st.st_mode)):
        return real, st
    raise refused(name, f"is {_kind(st.st_mode)}, not a regular file; not read", NOT_REGULAR)


def open_checked(real: str, st: os.stat_result, shown: str) -> int:
    """Open what :func:`check` returned, refusing it if it was swapped meanwhile."""
    try:
        fd = os.open(real, _READ_FLAGS)
    except OSError as exc:
        raise refused(shown, f"cannot read: {exc.strerror}", "unreadable") from None
    now = os.fstat(fd)
    if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise refused(shown, "changed while being read; not read", NOT_REGULAR)
    return fd


def _too_large(shown: str, size: int | None, max_bytes: int) -> RefusedRead:
    limit = f"{max_bytes // 1024} KiB" if max_bytes >= 1024 else f"{max_bytes} bytes"
    what = f" ({size} bytes)" if size is not None else ""
    return refused(shown, f"is larger than {limit}{what}; refused before reading", TOO_LARGE)


def read_bytes(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    max_bytes: int = MAX_BYTES,
    allowed: Sequence[str | os.PathLike[str]] = (),
    shown: str | None = None,
) -> bytes | None:
    """The bytes of a regular file inside ``root`` (found from ``path`` when not given),
    at most ``max_bytes`` of them; None when it does not exist. Refused otherwise."""
    base = root if root is not None else confinement_root(path)
    name = shown if shown is not None else shown_path(path, base)
    found = check(path, base, allowed=allowed, shown=name)
    if found is None:
        return None
    real, st = found
    if st.st_size > max_bytes:
        raise _too_large(name, st.st_size, max_bytes)
    fd = open_checked(real, st, name)
    try:
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(name, None, max_bytes)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    max_bytes: int = MAX_BYTES,
    shown: str | None = None,
) -> str | None:
    """:func:`read_bytes` decoded as UTF-8 (refused, located, when it is not)."""
    base = root if root is not None else confinement_root(path)
    name = shown if shown is not None else shown_path(path, base)
    raw = read_bytes(path, base, max_bytes=max_bytes, shown=name)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise refused(name, "file is not UTF-8", "not-utf8", line, 1) from None


def read_json(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    max_bytes: int = MAX_BYTES,
    allowed: Sequence[str | os.PathLike[str]] = (),
    shown: str | None = None,
) -> Any:
    """A JSON document from a bounded, confined file; None when the file does not exist.

    Size is the only memory bound JSON needs (no aliases); nesting deep enough to
    exhaust the parser's recursion is refused as invalid.
    """
    base = root if root is not None else confinement_root(path)
    name = shown if shown is not None else shown_path(path, base)
    raw = read_bytes(path, base, max_bytes=max_bytes, allowed=allowed, shown=name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except RecursionError:
        raise refused(name, "JSON nested too deeply; refused", "json") from None
    except ValueError as exc:  # JSONDecodeError (with a position) and UnicodeDecodeError
        line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
        reason = getattr(exc, "msg", "not UTF-8")
        raise refused(name, f"invalid JSON: {reason}", "json", line, col) from None


def json_object(raw: bytes | None) -> dict[str, Any] | None:
    """``raw`` (bytes from anywhere: a commit, a cache object) as a JSON object; None when
    it is missing, not UTF-8 JSON, nested too deeply or not an object."""
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
