"""``mllc init``: make a folder an mllc repository without touching what is there.

Creates ``specs/`` with a commented example, runs ``git init`` when the folder
is not inside a Git work tree and ``dvc init`` when it has no ``.dvc/``.
Existing files are kept as they are, and said to be kept. With ``--remote`` (here or
in an existing repository) it also configures DVC's default remote in ``.dvc/config``:
its location only, never credentials (docs/remote.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from mllc import dvcremote, gitcmd
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


REMOTE_NAME = "storage"


def _dvc(root: Path, *args: str) -> None:
    proc = _run([sys.executable, "-m", "dvc", *args], root)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        line = detail[-1].removeprefix("ERROR:").strip() if detail else str(proc.returncode)
        raise MllcError(f"dvc {args[0]} {args[1]} failed: {dvcremote.redact(line)}")


def configure_remote(root: Path, url: str | None, endpoint_url: str | None) -> list[str]:
    """Make ``url`` the default DVC remote (``storage``) in .dvc/config, with its S3
    ``endpoint_url`` when given (a store that is not AWS). Only the location is written:
    credentials come from the AWS environment or profile and are never in the repository.
    An existing default remote with another URL is left as it is (an error says how to
    change it); ``url`` None sets only the endpoint of the existing default remote."""
    if not (root / ".dvc").is_dir():
        raise MllcError(f"{root} has no DVC project: run 'mllc init' there first")
    current = dvcremote.default_remote(root)
    done: list[str] = []
    if url is not None:
        url = url.strip()
        if "://" not in url or not url.split("://", 1)[1].strip("/"):
            raise MllcError(f"--remote {url!r} is not a remote URL (e.g. s3://bucket/prefix)")
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:
            raise MllcError(
                "--remote must not carry credentials: they come from the AWS environment "
                "or profile (docs/remote.md)"
            )
        dvcremote.require_extra(url)
        if current is not None and current.url.rstrip("/") != url.rstrip("/"):
            raise MllcError(
                f"the default DVC remote {current.name!r} is {dvcremote.redact(current.url)}: "
                f"change it with 'dvc remote modify {current.name} url {url}'"
            )
        if current is None:
            _dvc(root, "remote", "add", "--default", REMOTE_NAME, url)
            current = dvcremote.Remote(REMOTE_NAME, url)
            done.append(f"created  DVC remote {REMOTE_NAME!r} {url} (default, in .dvc/config)")
        else:
            done.append(f"kept     DVC remote {current.name!r} {current.url} (exists)")
    if endpoint_url is not None:
        if current is None:
            raise MllcError("--endpoint-url needs a remote: give --remote s3://bucket/prefix")
        if dvcremote.scheme(current.url) != "s3":
            raise MllcError(f"--endpoint-url is for an s3:// remote, not {current.url}")
        if not endpoint_url.startswith(("http://", "https://")):
            raise MllcError(f"--endpoint-url {endpoint_url!r} is not an http(s) URL")
        _dvc(root, "remote", "modify", current.name, "endpointurl", endpoint_url)
        done.append(f"set      DVC remote {current.name!r} endpoint {endpoint_url}")
    return done
