"""The isolated checkout a preview runs in: ``git worktree add --detach`` of HEAD into
``.mllc/preview/`` (ignored by Git: ``mllc init`` writes ``/.mllc/`` into .gitignore),
removed afterwards (``git worktree remove``, else ``git worktree prune``), also on
error, timeout and Ctrl-C. A process killed outright (SIGKILL) cleans up nothing: its
folder's name carries its pid, and the next preview or verify removes the worktrees
whose maker is gone (:func:`clear_abandoned`).

What is previewed: the commit HEAD points at, with the spec files as they are in the
working tree (a local preview of uncommitted spec edits shows what the plan shows; in
CI the working tree is the pull request's commit). Nothing else of the working tree is
copied. The user's HEAD, index, working tree, branches and tags are not touched: the
worktree is detached, and only its own files change.

DVC in the worktree uses the main repository's cache (``.dvc/config.local``), so
outputs and the run cache are shared: a stage with the same inputs is never run twice.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mllc import gitcmd, procs
from mllc.dvcrepo import cache_dir
from mllc.errors import MllcError
from mllc.layout import STATE

PREVIEWS = STATE / "preview"
# <prefix><pid>-<random>: the process that made it, so that a later run can tell a
# worktree whose maker was killed (SIGKILL runs no cleanup) from one still in use.
_OWNED = re.compile(r"^mllc-[a-z]+-(\d+)-")


class PreviewError(MllcError):
    message = "preview failed"


def _ignored(root: Path) -> bool:
    return gitcmd.run(root, "check-ignore", "-q", (PREVIEWS / "x").as_posix()).returncode == 0


@contextmanager
def isolated(
    root: Path, specs: Sequence[str], commit: str = "HEAD", prefix: str = "mllc-preview-"
) -> Iterator[Path]:
    """A detached worktree of ``commit`` with ``specs`` (repository-relative) copied in
    from the working tree, its DVC pointed at ``root``'s cache; removed on the way out.
    (``mllc verify`` checks a registered version out this way, with no specs copied.)"""
    root = root.resolve()
    if gitcmd.head(root) is None:
        raise PreviewError("preview needs a commit to preview: this repository has none")
    if _ignored(root):
        clear_abandoned(root)  # first: removing the last one removes the folder too
        parent = root / PREVIEWS
        parent.mkdir(parents=True, exist_ok=True)
    else:  # never leave an untracked folder in the user's checkout
        parent = Path(tempfile.gettempdir())
    where = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
    where.rmdir()  # git worktree add makes it
    cache = cache_dir(root).resolve()
    try:
        gitcmd.output(root, "worktree", "add", "--detach", "--quiet", str(where), commit)
        for rel in specs:
            source, target = root / rel, where / rel
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            elif target.exists():
                target.unlink()  # removed in the working tree: preview without it
        if (where / ".dvc").is_dir():
            local = where / ".dvc" / "config.local"
            local.write_text(f"[cache]\n    dir = {cache}\n", encoding="utf-8")
        yield where
    finally:
        remove(root, where)


def clear_abandoned(root: Path) -> list[Path]:
    """Remove the worktrees under ``.mllc/preview/`` whose maker is gone (a killed preview
    or verify), and Git's records of them; the ones removed."""
    cleared = []
    with contextlib.suppress(OSError):
        for folder in sorted((root / PREVIEWS).iterdir()):
            owner = _OWNED.match(folder.name)
            if owner is not None and not procs.running(int(owner.group(1))):
                remove(root, folder)
                cleared.append(folder)
    gitcmd.run(root, "worktree", "prune")
    return cleared


def remove(root: Path, where: Path) -> None:
    """Delete the worktree's folder and Git's record of it (never raises). ``git worktree
    remove`` names ours only; when it cannot (the folder is half gone), the folder is
    deleted and ``git worktree prune`` drops the record."""
    if gitcmd.run(root, "worktree", "remove", "--force", "--force", str(where)).returncode:
        shutil.rmtree(where, ignore_errors=True)
        gitcmd.run(root, "worktree", "prune")
    if where.parent == root / PREVIEWS:
        with contextlib.suppress(OSError):  # another preview's worktree is still there
            os.rmdir(where.parent)
