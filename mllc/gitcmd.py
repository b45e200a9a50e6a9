"""Running ``git``: one subprocess call, and one way to turn its failure into an MllcError.

:func:`run` never raises for git's exit status (callers that ask a yes/no
question read ``returncode``); :func:`output` and :func:`git` raise
``MllcError("git ARG failed: DETAIL")`` and run with mllc's fallback identity
(:func:`mllc.gitenv.identity_env`), so commits and tags work on a runner
without ``user.name``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from mllc.errors import MllcError
from mllc.gitenv import identity_env


def run(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """``git ARGS`` in ``cwd``, output captured as bytes; ``env`` replaces the environment."""
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        check=False,
        env=None if env is None else dict(env),
    )


def output(
    root: Path, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> bytes:
    """The stdout of ``git ARGS`` (``env`` added to the environment); MllcError if it fails."""
    proc = run(root, *args, env={**os.environ, **identity_env(root), **(env or {})}, stdin=stdin)
    if proc.returncode != 0:
        detail = proc.stderr.strip() or proc.stdout.strip()
        raise MllcError(f"git {args[0]} failed: {detail.decode('utf-8', 'replace')}")
    return proc.stdout


def git(
    root: Path, *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> str:
    """:func:`output` as text, stripped."""
    return output(root, *args, env=env, stdin=stdin).decode("utf-8", "replace").strip()
