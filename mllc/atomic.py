"""Atomic file writes: a temporary file beside the target, fsynced, then renamed over it.

A reader sees the old file or the whole new one, never a part. The temporary
file is ``.<name>.<random>.tmp`` in the target's folder (the same file system,
so the rename is atomic); a kill can leave one behind, and apply never commits
those. It gets the mode an ordinary new file would (0666 less the umask), not
``mkstemp``'s 0600. Standard library only: cheap to import anywhere.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

Writer = Callable[[IO[bytes]], object]


def file_mode() -> int:
    """0666 less the process's umask: the mode ``open()`` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def stage(path: Path, writer: Writer, mode: int | None = None) -> Path:
    """A temporary file beside ``path`` holding what ``writer`` wrote, fsynced, not yet renamed.

    The caller renames it into place (``os.replace``) or removes it; on failure
    it is removed here.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode() if mode is None else mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    tmp = stage(path, lambda fh: fh.write(data))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> bool:
    """Write ``text`` atomically (temp file + rename); False when it was already there."""
    target = Path(path)
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return False
    write_bytes(target, text.encode("utf-8"))
    return True
