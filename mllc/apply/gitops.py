"""The Git side of apply: commit mllc's own outputs so a registry tag can pin them.

The commit is built with a private index (``.mllc/tmp/index``) and moved into
place with one compare-and-swap ``git update-ref``: a kill at any point leaves
either the old HEAD or the new one, never a half-made commit or a stale
``.git/index.lock`` in the user's index. The user's index is then re-synced for
just the committed paths (``git reset -- PATHS``); an apply interrupted before
that re-syncs at its next start (the journal says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mllc import gitcmd
from mllc.gitcmd import head

# Stage outputs are staged as ".<name>.<random>.tmp" next to their target; a kill
# can leave one behind, and it must never be committed.
TEMP_FILES = ":(glob)**/.*.tmp"


def commit_paths(
    root: Path, paths: Sequence[str], message: str, untracked: Sequence[str] = ()
) -> str | None:
    """Commit the current content of ``paths`` (added, changed or deleted) on top of HEAD,
    without ``untracked`` (outputs DVC caches: removed from Git if HEAD still has them).

    Returns the new commit, or None when nothing in ``paths`` differs from HEAD.
    """
    tmp = root / ".mllc" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    index = tmp / "index"
    index.unlink(missing_ok=True)
    env = {"GIT_INDEX_FILE": str(index)}
    parent = head(root)
    if parent:
        gitcmd.git(root, "read-tree", parent, env=env)
    existing = [p for p in paths if (root / p).exists() or _tracked(root, p)]
    if existing:
        gitcmd.git(root, "add", "-A", "--", *existing, env=env)
        # Then drop stage temp files; an exclude pathspec in the add itself makes git
        # skip untracked dot-folders (.github/) altogether.
        gitcmd.git(
            root, "rm", "-q", "-r", "--cached", "--ignore-unmatch", "--", TEMP_FILES, env=env
        )
        gitcmd.untrack(root, untracked, env=env)
    tree = gitcmd.git(root, "write-tree", env=env)
    index.unlink(missing_ok=True)
    if parent and tree == gitcmd.git(root, "rev-parse", f"{parent}^{{tree}}"):
        # Nothing to commit: HEAD already holds it (maybe a killed apply moved HEAD but
        # never re-synced the user's index): re-sync, so `git status` agrees.
        resync_index(root, [*existing, *untracked])
        return None
    args = ["commit-tree", tree, "-m", message]
    if parent:
        args[2:2] = ["-p", parent]
    commit = gitcmd.git(root, *args)
    # Compare-and-swap: refuses if HEAD moved since we read it.
    gitcmd.git(root, "update-ref", "-m", "mllc apply", "HEAD", commit, parent or "0" * 40)
    resync_index(root, [*existing, *untracked])
    return commit


def _tracked(root: Path, path: str) -> bool:
    return gitcmd.run(root, "ls-files", "--error-unmatch", "--", path).returncode == 0


def resync_index(root: Path, paths: Sequence[str]) -> None:
    """Make the user's index match HEAD for ``paths`` (after a commit made elsewhere)."""
    if paths and head(root):
        gitcmd.git(root, "reset", "-q", "HEAD", "--", *paths)
