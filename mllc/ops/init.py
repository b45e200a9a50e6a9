"""``mllc init``: make a folder an mllc repository without touching what is there.

Creates ``specs/`` with a commented example, runs ``git init`` when the folder
is not inside a Git work tree and ``dvc init`` when it has no ``.dvc/``.
Existing files are kept as they are, and said to be kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from mllc import gitcmd
from mllc.errors import MllcError

GITIGNORE_LINES = ("/.mllc/",)  # lock, journal, caches: local state, never committed


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A program other than git (which runs through :mod:`mllc.gitcmd`)."""
    try:
        return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise MllcError(f"cannot run {args[0]!r}: {exc.strerror}") from None


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return gitcmd.run(root, *args)
    except FileNotFoundError as exc:  # as _run says it for any program
        raise MllcError(f"cannot run 'git': {exc.strerror}") from None


def _git_top(root: Path) -> Path | None:
    """The top of the Git work tree holding ``root``, or None."""
    proc = _git(root, "rev-parse", "--show-toplevel")
    return Path(os.fsdecode(proc.stdout.strip())).resolve() if proc.returncode == 0 else None


def _create(path: Path, text: str, root: Path, done: list[str]) -> None:
    rel = path.relative_to(root).as_posix()
    if path.exists():
        done.append(f"kept     {rel} (exists)")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as fh:  # "x": never overwrite, even in a race
        fh.write(text)
    done.append(f"created  {rel}")


def scaffold(root: Path) -> list[str]:
    done: list[str] = []
    if root.exists() and not root.is_dir():
        raise MllcError(f"{root} is not a directory")
    root.mkdir(parents=True, exist_ok=True)

    top = _git_top(root)
    if top is not None:
        done.append("kept     Git repository (exists)")
    else:
        init = _git(root, "init", "-q")
        if init.returncode != 0:
            raise MllcError(f"git init failed: {init.stderr.decode('utf-8', 'replace').strip()}")
        done.append("created  Git repository (git init)")

    if (root / ".dvc").is_dir():
        done.append("kept     DVC project (exists)")
    else:
        # In a subfolder of a repository (a monorepo), DVC needs --subdir.
        subdir = ["--subdir"] if top is not None and top != root.resolve() else []
        proc = _run([sys.executable, "-m", "dvc", "init", *subdir], root)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise MllcError(f"dvc init failed: {detail[-1] if detail else proc.returncode}")
        done.append("created  DVC project (dvc init)")

    example = resources.files("mllc.templates").joinpath("example.yaml").read_text("utf-8")
    specs = root / "specs"
    if specs.is_dir() and any(specs.glob("*.y*ml")):
        done.append("kept     specs/ (already holds specs)")
    else:
        _create(specs / "iris.yaml", example, root, done)

    gitignore = root / ".gitignore"
    current = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    existing = current.splitlines()
    missing = [line for line in GITIGNORE_LINES if line not in existing]
    if missing:
        with open(gitignore, "a", encoding="utf-8") as fh:
            if current and not current.endswith("\n"):
                fh.write("\n")
            fh.write("\n".join(missing) + "\n")
        done.append(f"{'updated ' if existing else 'created '} .gitignore")
    return done
