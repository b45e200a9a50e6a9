"""Which stages of a lifecycle's DVC pipeline are stale, and why, without running DVC.

``dvc status`` answers "what would ``dvc repro`` rerun" but costs ~0.45 s plus
~6 ms per stage, mostly pure-Python YAML parsing, and says little about why
(``bench/bench_plan.py`` times ``mllc plan`` against it). This module answers the
same question from the same inputs: the desired ``dvc.yaml`` (as data), the
desired params, ``dvc.lock`` (parsed with the C YAML loader) and DVC-compatible
file hashes (``hashing.Hasher``, cached by size/mtime/inode). It is read-only and
must agree with ``dvc status`` on every stage; ``tests/test_observe_pipeline.py``
checks that against real DVC.

The rules are DVC 3's (``dvc/stage/__init__.py`` ``Stage.status``, line 670):

* a frozen stage's deps and params are not checked; outs and cmd still are;
* params (``dvc/dependency/param.py`` ``workspace_status``): each tracked key's
  current value against the lock's with Python ``!=`` (so ``1.0`` equals ``1``
  and ``true`` equals ``1``); a key missing now is DVC's "deleted" (reported
  here as "removed"), one missing from the lock is "new";
* deps and outs (``dvc/output.py`` ``workspace_status``): missing, or a hash that
  differs from the lock's (no lock entry counts as different);
* cached outs whose object is missing from ``.dvc/cache`` are "not in cache";
  ``cache: false`` outs (metrics, plots) skip only that check;
* a stage with ``always_changed`` or with neither deps nor outs always runs;
* the command is compared only when the stage has a lock entry.

Deps and outs that were removed from ``dvc.yaml`` but are still in the lock do
not make a stage stale: DVC only looks up the lock entries of what ``dvc.yaml``
declares (``dvc/stage/loader.py`` ``fill_from_lock``).

Reading ``dvc.yaml`` (``foreach`` expansion, a stage's params, deps and outs) is
:mod:`mllc.observe.dvcyaml`; the DVC cache, :mod:`mllc.observe.dvccache`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mllc.compile.dvc import dvc_document
from mllc.hashing import MD5, MD5_DOS2UNIX, Hasher
from mllc.layout import Layout
from mllc.observe import dvclock, dvcyaml
from mllc.observe.dvccache import DvcCache
from mllc.observe.dvcyaml import UnsupportedPipelineError, expand_stages
from mllc.observe.types import Reason, ReasonKind, StageState
from mllc.saferead import RefusedRead, find_root, read_bytes, shown_path
from mllc.spec.models import Lifecycle
from mllc.spec.yamlsafe import YamlProblem, problem_to_diagnostic, read_yaml

# Tracked by every built-in stage (mllc.compile.dvc.STAGES_VERSION): a change is
# our stage code changing, not a user's parameter.
CODE_KEY = "mllc.stages"


LOCKS = "dvc.lock"  # the hasher's table of parsed locks


def cached_outputs(spec: Lifecycle) -> list[str]:
    """Every output of the lifecycle's pipeline that DVC caches (and Git must not track),
    repository-relative, in stage order: what apply and preview stop Git tracking where
    an older mllc kept it (DVC refuses to cache a tracked file)."""
    dvc_yaml = Layout(spec.metadata.name).dvc_yaml.as_posix()
    base = posixpath.dirname(dvc_yaml)
    found: list[str] = []
    for stage in expand_stages(dvc_document(spec)).values():
        wdir = posixpath.normpath(posixpath.join(base, stage.get("wdir") or "."))
        for path, cached in dvcyaml.outs(stage):
            if cached:
                found.append(posixpath.normpath(posixpath.join(wdir, path)))
    return found


def read_lock(
    path: Path, root: Path | None = None, hasher: Hasher | None = None
) -> dict[str, Any] | None:
    """The parsed ``dvc.lock``; None when there is none.

    Read like a spec (:func:`mllc.spec.yamlsafe.read_yaml`): a lock over the size,
    alias or depth limits, or that is not a regular file inside the repository,
    is a :class:`~mllc.saferead.RefusedRead` naming it. A lock that a kill inside
    DVC's own write left broken (empty, cut at any byte) reads as the lock apply
    rebuilds from it: a :class:`~mllc.observe.dvclock.BrokenLock` that says so."""
    base = root if root is not None else find_root(path)
    shown = shown_path(path, base or os.path.dirname(path))

    def parse(raw: bytes) -> tuple[dict[str, Any], bool]:
        text = raw.decode("utf-8", "replace")  # a write cut inside a character is still a lock
        try:
            lock = dvclock.load(text, lambda: dvclock.committed_lock(Path(path)))
        except YamlProblem as problem:  # no write of DVC's leaves an alias bomb or a tag
            raise RefusedRead([problem_to_diagnostic(shown, problem)]) from None
        return lock, type(lock) is dict  # a broken lock (BrokenLock) is never kept

    if hasher is not None and base is not None and Path(base) == hasher.root:
        # A lock that did not change since the last plan is not parsed again.
        found: dict[str, Any] | None = hasher.derived(shown, LOCKS, parse)
        return found
    raw = read_bytes(path, base, shown=shown)
    return None if raw is None else parse(raw)[0]


_MISSING = object()


def _lookup(doc: Any, key: str) -> Any:
    """The value at a dotted key path (a subtree or a leaf), ``_MISSING`` when absent.

    dpath.get(doc, key, separator=".") as DVC uses it (read_param_file): list
    items are addressed by index.
    """
    value = doc
    for part in key.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _kind(key: str) -> ReasonKind:
    return "code" if key == CODE_KEY or key.startswith(CODE_KEY + ".") else "param"


def _param_equal(current: Any, locked: Any) -> bool:
    # ParamsDependency.workspace_status: plain `!=`, plus tuples (TOML/Python
    # params) equal to the list stored in the lock.
    if current != locked:
        return isinstance(current, tuple) and list(current) == locked
    return True


def diff_params(key: str, old: Any, new: Any) -> list[Reason]:
    """The leaf paths under ``key`` that differ between the locked and current values.

    Mappings are walked; anything else (lists included) is compared as a whole
    with ``!=``, so ``1.0`` and ``1`` do not differ, as in DVC. Keys under
    ``mllc.stages`` are ``code`` reasons.
    """
    reasons: list[Reason] = []

    def walk(path: str, before: Any, after: Any) -> None:
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            for k, v in before.items():
                sub = f"{path}.{k}"
                if k in after:
                    walk(sub, v, after[k])
                else:
                    reasons.append(Reason(_kind(sub), sub, "removed", old=v))
            for k, v in after.items():
                if k not in before:
                    sub = f"{path}.{k}"
                    reasons.append(Reason(_kind(sub), sub, "added", new=v))
        elif not _param_equal(after, before):
            reasons.append(Reason(_kind(path), path, "modified", old=before, new=after))

    walk(key, old, new)
    return reasons


def _locked_hash(entry: Mapping[str, Any] | None, in_repo: bool) -> tuple[str, str | None]:
    """(algorithm, value) the lock records for a dep/out; value None when not recorded.

    Output._compute_hash_info_from_meta: an entry without ``hash:`` is a DVC 2
    one, hashed md5-dos2unix; paths outside the repository are always md5.
    """
    if not entry:
        return MD5, None
    name = entry.get("hash")
    value = entry.get("md5")
    if not in_repo or name == MD5:
        return MD5, value if isinstance(value, str) and value else None
    if name is None:
        return MD5_DOS2UNIX, value if isinstance(value, str) and value else None
    raise UnsupportedPipelineError(f"hash {name!r} of {entry.get('path')!r}")


# -- status --------------------------------------------------------------------


def _in_repo(path: str) -> bool:
    return not posixpath.isabs(path) and path != ".." and not path.startswith("../")


class _Context:
    """What one pipeline_status call shares across stages."""

    def __init__(self, root: Path, params: Mapping[str, Any], hasher: Hasher) -> None:
        self.root = root
        self.params = {posixpath.normpath(p): doc for p, doc in params.items()}
        self.hasher = hasher
        self.cache = DvcCache(root)
        self._from_disk: dict[str, Any] = {}
        self._hashes: dict[tuple[str, str], str | None] = {}

    def md5(self, path: str, algorithm: str) -> str | None:
        """A path's hash, computed once per call (a directory dep shared by a foreach
        group is walked once, not once per stage)."""
        key = (path, algorithm)
        if key not in self._hashes:
            self._hashes[key] = self.hasher.md5(path, algorithm)
        return self._hashes[key]

    def params_doc(self, path: str) -> Any:
        """The desired params document, or the file on disk when not given; _MISSING if none."""
        if path in self.params:
            doc = self.params[path]
            return {} if doc is None else doc
        if path not in self._from_disk:
            loaded = read_yaml(self.root / path, self.root)  # bounded, inside the repository
            self._from_disk[path] = _MISSING if loaded is None else loaded.data or {}
        return self._from_disk[path]


def _params_reasons(
    ctx: _Context, params: dict[str, list[str]], locked: Mapping[str, Any], wdir: str
) -> list[Reason]:
    reasons: list[Reason] = []
    for def_path, keys in params.items():
        path = posixpath.normpath(posixpath.join(wdir, def_path))
        doc = ctx.params_doc(path)
        if doc is _MISSING:
            reasons.append(Reason("param", path, "deleted"))
            continue
        values = locked.get(def_path)  # the lock keys params files as dvc.yaml spells them
        if keys:
            current = {k: v for k in keys if (v := _lookup(doc, k)) is not _MISSING}
        else:
            current = dict(doc) if isinstance(doc, Mapping) else {}
        if values is None:
            # Never recorded for this stage: ParamsDependency's hash_info is empty, "new".
            new = keys or list(current)
            reasons += [Reason(_kind(k), k, "new", new=current.get(k)) for k in new]
            if not new:
                reasons.append(Reason("param", path, "new"))
            continue
        if not isinstance(values, Mapping):
            values = {}
        info = {k: values[k] for k in keys if k in values} if keys else dict(values)
        for key in keys or list(dict.fromkeys([*current, *info])):
            if key not in current:
                reasons.append(Reason(_kind(key), key, "removed", old=info.get(key)))
            elif key not in info:
                reasons.append(Reason(_kind(key), key, "new", new=current[key]))
            elif not _param_equal(current[key], info[key]):
                leaves = diff_params(key, info[key], current[key])
                reasons += leaves or [
                    Reason(_kind(key), key, "modified", old=info[key], new=current[key])
                ]
    return reasons


def _by_path(entries: Any) -> dict[str, Mapping[str, Any]]:
    return {
        e["path"]: e
        for e in entries or []
        if isinstance(e, Mapping) and isinstance(e.get("path"), str)
    }


def _hash_reasons(
    kind: ReasonKind, path: str, expected: str | None, actual: str | None
) -> list[Reason]:
    """A dep or out against the hash the lock records: deleted, new or modified."""
    if actual is None:
        return [Reason(kind, path, "deleted", old=expected)]
    if expected is None:
        return [Reason(kind, path, "new", new=actual)]  # DVC says "modified"
    if actual != expected:
        return [Reason(kind, path, "modified", old=expected, new=actual)]
    return []


def _stage_state(
    ctx: _Context, name: str, stage: Mapping[str, Any], entry: Mapping[str, Any], base: str
) -> StageState:
    wdir = posixpath.normpath(posixpath.join(base, stage.get("wdir") or "."))

    def repo_path(p: str) -> str:
        return posixpath.normpath(posixpath.join(wdir, p))

    cmd = stage.get("cmd")
    frozen = bool(stage.get("frozen") or stage.get("locked"))
    params = dvcyaml.merge_params(stage.get("params") or [])
    deps = dvcyaml.deps(stage)
    outs = dvcyaml.outs(stage)

    dep_paths = tuple(repo_path(d) for d in deps)
    out_paths = tuple(repo_path(o) for o, _ in outs)
    callback = bool(cmd) and not (params or deps or outs)  # Stage.is_callback
    if not entry:
        # Never run: with no recorded hash every param, dep and out has a status
        # ("new", "modified" or "deleted"), so there is nothing to hash; only a
        # frozen stage with deps alone (and no outs) escapes.
        stale = bool((not frozen and (params or deps)) or outs or callback)
        stale = stale or bool(stage.get("always_changed"))
        never = (Reason("never-run"),) if stale else ()
        return StageState(name, stale, never, deps=dep_paths, outs=out_paths)

    reasons: list[Reason] = []
    # PipelineStage.cmd_changed is set only when the stage has a lock entry.
    if entry.get("cmd") != cmd:
        reasons.append(Reason("cmd", old=entry.get("cmd"), new=cmd))
    if not frozen:  # Stage.status: a frozen stage's deps are not looked at
        reasons += _params_reasons(ctx, params, entry.get("params") or {}, wdir)
        locked_deps = _by_path(entry.get("deps"))
        for dep in deps:
            path = repo_path(dep)
            algorithm, expected = _locked_hash(locked_deps.get(dep), _in_repo(path))
            reasons += _hash_reasons("dep", path, expected, ctx.md5(path, algorithm))
    locked_outs = _by_path(entry.get("outs"))
    for out, cached in outs:
        path = repo_path(out)
        locked = locked_outs.get(out)
        algorithm, expected = _locked_hash(locked, _in_repo(path))
        # Output.status: a cached out whose object is gone is "not in cache"
        # before its workspace copy is even looked at.
        if expected and cached and _in_repo(path):
            size = (locked or {}).get("size")
            if not ctx.cache.has(expected, algorithm, size):
                reasons.append(Reason("out", path, "not in cache", old=expected))
                continue
        found = _hash_reasons("out", path, expected, ctx.md5(path, algorithm))
        if locked is None and found and found[0].detail == "deleted":
            # DVC says "deleted" too, but the lock never had it: a newly declared out
            found = [Reason("out", path, "declared, not produced yet")]
        reasons += found
    if callback:  # nothing to compare, so DVC always reruns it
        reasons.append(Reason("definition", "no deps or outs:", "always runs"))
    elif stage.get("always_changed"):
        reasons.append(Reason("definition", "always_changed:", "true"))
    return StageState(name, bool(reasons), tuple(reasons), deps=dep_paths, outs=out_paths)


def pipeline_status(
    root: Path,
    dvc_yaml: str,
    dvc_doc: Mapping[str, Any],
    params: Mapping[str, Any],
    lock: Mapping[str, Any] | None,
    hasher: Hasher,
) -> tuple[StageState, ...]:
    """One StageState per expanded stage of ``dvc_doc``, in dvc.yaml order.

    ``root``: the repository root. ``dvc_yaml``: repo-relative path of the
    dvc.yaml (stage ``wdir``s are relative to its folder). ``dvc_doc``: the
    desired dvc.yaml as data (it may differ from the file on disk).
    ``params``: repo-relative params file path -> desired parsed content (read
    it with :func:`mllc.yaml12.load_yaml`); files not given are read from disk. ``lock``: the
    parsed dvc.lock (``read_lock``), None when absent.

    ``stale`` is exactly whether ``dvc status`` would list the stage; the
    reasons say why (a stage never run says only that).
    """
    ctx = _Context(Path(root), params, hasher)
    base = posixpath.dirname(posixpath.normpath(dvc_yaml))
    locked: Mapping[str, Any] = (lock or {}).get("stages") or {}
    states = tuple(
        _stage_state(ctx, name, stage, locked.get(name) or {}, base)
        for name, stage in expand_stages(dvc_doc).items()
    )
    return dvclock.explain(states, lock) if isinstance(lock, dvclock.BrokenLock) else states
