"""Apply's side of versioned source data and self-contained tagged commits.

A registered version must rebuild from its tag on another machine
(``git clone``, ``git checkout <name>@vX.Y.Z``, ``dvc pull``, ``dvc repro``). So:

* the ``csv:``/``parquet:`` file a spec reads is tracked by DVC (``dvc add``: its
  ``.dvc`` pointer is committed, the content is in the cache, and pushed by apply's
  ``push`` step to the default remote when one is configured) unless Git already
  tracks it;
* the commit apply makes also carries the DVC project files ``mllc init`` or
  ``dvc init`` created and nobody committed yet (``.dvc/config``, ``.dvcignore``, …);
* registration refuses when a dependency of the pipeline is neither in the commit
  nor tracked by DVC there, and names it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path

from mllc import dvcremote, gitcmd
from mllc.apply.dvc import ApplyFailed, run_dvc
from mllc.compile.desired import Desired
from mllc.hashing import Hasher
from mllc.layout import Layout
from mllc.observe.dvcyaml import expand_stages
from mllc.observe.sources import (
    dvc_target,
    gitignore_path,
    pointer_md5,
    pointer_path,
    source_paths,
)
from mllc.yaml12 import load_yaml

Progress = Callable[[str], None]

# What `dvc init` (and `mllc init`) create; committed with the first version.
DVC_CONFIG = ".dvc/config"  # the remote's location (never credentials: config.local)
PROJECT_FILES = (DVC_CONFIG, ".dvc/.gitignore", ".dvcignore", ".gitignore")


def _in_git(root: Path, paths: list[str], ref: str | None = None) -> set[str]:
    """Which of ``paths`` Git holds: in the index, or with ``ref`` in that commit's tree
    (a folder counts when it holds a file)."""
    if not paths:
        return set()
    if ref is None:
        proc = gitcmd.run(root, "ls-files", "-z", "--", *paths)
    else:
        proc = gitcmd.run(root, "ls-tree", "-r", "-z", "--name-only", ref, "--", *paths)
    if proc.returncode != 0:
        return set()
    listed = [p for p in proc.stdout.decode("utf-8", "replace").split("\0") if p]
    return {p for p in paths if any(f == p or f.startswith(p.rstrip("/") + "/") for f in listed)}


def track_sources(root: Path, want: Desired, progress: Progress) -> dict[str, object]:
    """``dvc add`` each source that is not versioned or changed since its pointer (the
    file, or the folder above it that DVC tracks whole). Repeatable after a kill."""
    paths = source_paths(want.spec)
    tracked_by_git = _in_git(root, paths)
    hasher = Hasher(root)
    added: list[str] = []
    for path in paths:
        target = dvc_target(root, path)
        if target is None and path in tracked_by_git:
            continue  # versioned by Git: committed with the rest
        if not (root / path).is_file() and target is not None:
            _check_out(root, target, progress)
        if not (root / path).is_file():
            raise ApplyFailed(
                f"{want.name}: data.source: {path} is not here: "
                + ("run 'dvc pull'" if target is not None else "add the file")
            )
        target = target or path
        if pointer_md5(root, target) != hasher.md5(target):
            known = (root / pointer_path(target)).is_file()
            run_dvc(root, ["add", target], progress)
            what = "recorded a new version of" if known else "tracked"
            progress(f"    {what} {target} with DVC ({pointer_path(target)})")
        added.append(target)
    # pushed to the default remote, if any, by apply's push step before the commit
    return {"tracked": added}


def push_targets(root: Path, want: Desired) -> list[str]:
    """What ``dvc push`` sends before the commit: the pipeline's dvc.yaml (every cached
    output dvc.lock records) and every ``.dvc`` pointer the commit carries (the sources,
    the labelled batches added to the training data)."""
    layout = Layout(want.name)
    targets = [layout.dvc_yaml.as_posix()] if (root / layout.dvc_yaml).is_file() else []
    targets += [p for p in commit_paths(root, want) if p.endswith(".dvc")]
    folder = root / layout.root
    targets += sorted(p.relative_to(root).as_posix() for p in folder.rglob("*.dvc"))
    return [t for t in dict.fromkeys(targets) if (root / t).is_file()]


def _check_out(root: Path, target: str, progress: Progress) -> None:
    """Bring a DVC-tracked source into the workspace: from the local cache, else from
    the default remote; left missing (for the caller to say so) when neither has it."""
    pointer = pointer_path(target)
    try:
        run_dvc(root, ["checkout", pointer], progress)
    except ApplyFailed:
        if dvcremote.default_remote(root) is None:
            return
        try:
            run_dvc(root, ["pull", pointer], progress)
        except ApplyFailed:
            return
    progress(f"    checked out {target} ({pointer})")


def commit_paths(root: Path, want: Desired) -> list[str]:
    """What the commit needs besides the spec and pipeline folder so that it rebuilds:
    the sources' pointers (and the .gitignore ``dvc add`` wrote) or the Git-tracked
    source itself, the DVC project files not committed yet, and .dvc/config as it is."""
    sources = source_paths(want.spec)
    in_index = _in_git(root, sources)
    paths: list[str] = []
    for path in sources:
        target = dvc_target(root, path)
        if target is not None:
            paths += [pointer_path(target), gitignore_path(target)]
        elif path in in_index:
            paths.append(path)
    committed = _in_git(root, list(PROJECT_FILES), "HEAD")
    paths += [p for p in PROJECT_FILES if p not in committed and (root / p).is_file()]
    if (root / DVC_CONFIG).is_file():  # committed or not: a remote added since (mllc init
        paths.append(DVC_CONFIG)  # --remote) travels with the commit a clone checks out
    return list(dict.fromkeys(paths))


def _pipeline_inputs(root: Path, name: str, commit: str) -> list[str]:
    """The deps of ``name``'s pipeline at ``commit`` that no stage of it produces."""
    dvc_yaml = Layout(name).dvc_yaml.as_posix()
    text = gitcmd.file_at(root, commit, dvc_yaml)
    if text is None:
        return []
    stages = expand_stages(load_yaml(text.decode("utf-8", "replace")) or {})
    deps: list[str] = []
    outs: set[str] = set()
    for stage in stages.values():
        wdir = posixpath.normpath(
            posixpath.join(Layout(name).root.as_posix(), stage.get("wdir") or ".")
        )
        for dep in stage.get("deps") or []:
            deps.append(posixpath.normpath(posixpath.join(wdir, str(dep))))
        for section in ("outs", "metrics", "plots"):
            for out in stage.get(section) or []:
                for path in [out] if isinstance(out, str) else list(out):
                    outs.add(posixpath.normpath(posixpath.join(wdir, str(path))))
    return [d for d in dict.fromkeys(deps) if d not in outs]


def unversioned_inputs(root: Path, name: str, commit: str) -> list[str]:
    """Inputs of the pipeline that ``commit`` neither holds nor tracks with DVC (a
    committed ``<path>.dvc`` for the path or a folder above it)."""
    inputs = _pipeline_inputs(root, name, commit)
    pointers = {
        pointer_path("/".join(parts[:i]))
        for d in inputs
        for parts in [d.split("/")]
        for i in range(1, len(parts) + 1)
    }
    held = _in_git(root, [*inputs, *sorted(pointers)], commit)
    missing = []
    for dep in inputs:
        parts = dep.split("/")
        ancestors = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        outside = dep.startswith("../") or posixpath.isabs(dep)
        if outside or (dep not in held and not any(pointer_path(a) in held for a in ancestors)):
            missing.append(dep)
    return missing
