"""Small Git facts: the current commit, and an identity for mllc's own commits and tags.

CI runners often have no ``user.name``/``user.email``; without a fallback the
apply's commit or registry tag would fail after the pipeline already ran. A
configured identity always wins: the fallback only fills what Git lacks.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

FALLBACK = {
    "GIT_AUTHOR_NAME": "mllc",
    "GIT_AUTHOR_EMAIL": "mllc@localhost",
    "GIT_COMMITTER_NAME": "mllc",
    "GIT_COMMITTER_EMAIL": "mllc@localhost",
}


@functools.cache
def identity_env(root: Path) -> dict[str, str]:
    """Extra environment for git: empty when Git already knows who commits."""
    proc = subprocess.run(
        ["git", "var", "GIT_COMMITTER_IDENT"], cwd=root, capture_output=True, check=False
    )
    return {} if proc.returncode == 0 else dict(FALLBACK)


def head(root: Path) -> str | None:
    """The commit HEAD points at; None in a repository without commits."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD^{commit}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or None if proc.returncode == 0 else None
