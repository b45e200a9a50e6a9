"""Observe every lifecycle: generated files, DVC state, registry, deployments. Read-only.

Staleness is judged against the *desired* dvc.yaml and params.yaml (what apply
would write first), with the lock and the files on disk, by mllc's own check
(:mod:`mllc.observe.pipeline`, proven equal to ``dvc status`` by a differential
test): it parses each lock once with the C loader and hashes a file only when
its size, mtime or inode changed since the last look.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mllc import gitcmd, saferead
from mllc.compile.desired import Desired, Orphan
from mllc.compile.dvc import dvc_document, params_document
from mllc.errors import Diagnostic
from mllc.hashing import Hasher
from mllc.layout import PIPELINES, Layout
from mllc.observe.monitoring import BATCH, feedback_ids, monitoring_dir, read_report
from mllc.observe.pipeline import pipeline_status, read_lock
from mllc.observe.sources import observe_sources, source_paths
from mllc.observe.types import LifecycleActual, MonitorState
from mllc.spec.yamlsafe import YamlProblem, load_text, problem_to_diagnostic
from mllc.targets import TARGETS, target_for
from mllc.types import DeploymentState, RegisteredVersion

HASH_CACHE = ".mllc/cache/md5.json"


def read_checkout_file(path: Path) -> str | None:
    """A file of the checkout: inside the repository, regular, capped on stat
    (:mod:`mllc.saferead`, refused and named otherwise); None when it is missing
    or not UTF-8."""
    try:
        return saferead.read_text(path)
    except saferead.RefusedRead as exc:
        if exc.code == "not-utf8":
            return None
        raise


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from a file (metrics.json, lineage.json); {} when the file is
    missing, unreadable or not a JSON object. One outside the repository, not a
    regular file or over the size cap is refused (named), never read."""
    try:
        data = saferead.read_json(path)
    except OSError:
        return {}
    except saferead.RefusedRead as exc:
        if exc.code in saferead.PLACE_AND_LIMITS:
            raise
        return {}
    return data if isinstance(data, dict) else {}


def _check_yaml(files: Mapping[str, str | None], wanted: Mapping[str, str]) -> list[Diagnostic]:
    """Parse each YAML file read from the checkout with the spec's bounds (aliases,
    depth, plain tags), so that nothing later walks an alias bomb; every problem of
    every file, each naming its file. A file that is exactly what mllc generates
    (``wanted``) is known to be within them and is not parsed again."""
    problems: list[Diagnostic] = []
    for path, text in files.items():
        if text is None or text == wanted.get(path) or not path.endswith((".yaml", ".yml")):
            continue
        try:
            loaded = load_text(text)
        except YamlProblem as problem:
            problems.append(problem_to_diagnostic(path, problem))
            continue
        problems += [problem_to_diagnostic(path, p) for p in loaded.problems]
    return problems


def _read_all(root: Path, paths: Sequence[str]) -> tuple[dict[str, str | None], list[Diagnostic]]:
    """:func:`read_checkout_file` of each path; the refused ones are None, with their
    diagnostics."""
    files: dict[str, str | None] = {}
    refused: list[Diagnostic] = []
    for path in paths:
        try:
            files[path] = read_checkout_file(root / path)
        except saferead.RefusedRead as exc:
            files[path] = None
            refused += exc.diagnostics
    return files, refused


def model_md5_from_lock(lock: Mapping[str, Any] | None, name: str) -> str | None:
    return out_md5_from_lock(lock, "select", Layout(name).model.as_posix())


def out_md5_from_lock(lock: Any, stage: str, path: str) -> str | None:
    """The md5 ``dvc.lock`` records for output ``path`` (repository-relative) of ``stage``."""
    stages = lock.get("stages") if isinstance(lock, Mapping) else None
    entry = stages.get(stage) if isinstance(stages, Mapping) else None
    outs = entry.get("outs") if isinstance(entry, Mapping) else None
    for out in outs if isinstance(outs, list) else []:
        if isinstance(out, Mapping) and out.get("path") == path:
            md5 = out.get("md5")
            return md5 if isinstance(md5, str) else None
    return None


def uncommitted_paths(root: Path) -> list[str]:
    """Paths under specs/, pipelines/ and deploy/ that differ from HEAD, in one git call."""
    proc = gitcmd.run(
        root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--",
        "specs", "pipelines", "deploy", ".github/workflows/mllc.yml",
    )  # fmt: skip
    if proc.returncode != 0:
        return []
    entries = proc.stdout.decode("utf-8", "replace").split("\0")
    out, i = [], 0
    while i < len(entries):
        entry = entries[i]
        if len(entry) > 3:
            out.append(entry[3:])
            if entry[0] in "RC":  # a rename is followed by its source path
                i += 1
        i += 1
    return [p for p in out if not p.endswith(".tmp")]


def _mine(name: str, spec_file: str, paths: Sequence[str]) -> tuple[str, ...]:
    prefixes = (f"{Layout(name).root.as_posix()}/", f"{Layout(name).deploy.as_posix()}/")
    return tuple(sorted(p for p in paths if p == spec_file or p.startswith(prefixes)))


def observe_lifecycle(
    root: Path,
    want: Desired,
    versions: Sequence[RegisteredVersion],
    hasher: Hasher,
    uncommitted: Sequence[str] = (),
) -> LifecycleActual:
    files, refused = _read_all(root, list(want.files))
    refused += _check_yaml(files, want.files)
    layout = Layout(want.name)
    dvc_yaml = layout.dvc_yaml.as_posix()
    params_file = layout.params.as_posix()
    # What DVC reads from the generated texts: the documents they were written from
    # (tests/test_compile.py checks that each text reads back as its document).
    dvc_doc = dvc_document(want.spec)
    params = {params_file: params_document(want.spec)}
    try:
        lock = read_lock(root / layout.dvc_lock, root, hasher)
    except saferead.RefusedRead as exc:
        refused += exc.diagnostics
    if refused:  # every file of this lifecycle that cannot be used, at once
        raise saferead.RefusedRead(refused)
    stages = pipeline_status(root, dvc_yaml, dvc_doc, params, lock, hasher)
    return LifecycleActual(
        name=want.name,
        files=files,
        stages=stages,
        model_md5=model_md5_from_lock(lock, want.name),
        metrics=read_json_object(root / layout.metrics),
        versions=tuple(v for v in versions if v.name == want.name),
        deployments=observe_deployments(root, want),
        uncommitted=_mine(want.name, want.spec_file, uncommitted),
        monitoring=observe_monitoring(root, want),
        sources=observe_sources(
            root,
            source_paths(want.spec),
            lock,
            read_json_object(root / layout.data_report),
            hasher,
        ),
    )


def observe_monitoring(root: Path, want: Desired) -> tuple[MonitorState, ...]:
    """The latest report of each environment the spec monitors."""
    if want.lifecycle.monitoring is None:
        return ()

    answered = feedback_ids(root, want.name)
    found = []
    for env in want.lifecycle.environments:
        report = read_report(root, want.name, env)
        if report is None or report.lifecycle != want.name or report.environment != env:
            continue
        batch = f"{monitoring_dir(want.name, env)}/{BATCH}"
        found.append(
            MonitorState(
                environment=env,
                report=report,
                # the file, or its DVC pointer (a monitoring pull request carries the
                # pointer; the data is in the DVC remote until a pull)
                batch=batch
                if (root / batch).is_file() or (root / f"{batch}.dvc").is_file()
                else None,
                answered=report.id in answered,
            )
        )
    return tuple(found)


def observe_deployments(root: Path, want: Desired) -> tuple[DeploymentState, ...]:
    """Ask each environment's target what it runs, then every target what it still runs
    for environments the spec removed."""
    envs = want.lifecycle.environments
    found = []
    for env, cfg in envs.items():
        found.append(target_for(cfg.target).observe(root, want.spec, env))
    for target in TARGETS.values():
        found += target.orphans(root, want.name, envs)
    return tuple(found)


def find_orphans(root: Path, wanted: set[str]) -> list[Orphan]:
    """Pipeline folders mllc generated whose spec no longer exists."""
    orphans = []
    base = root / PIPELINES
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        if folder.name in wanted or not folder.is_dir():
            continue
        layout = Layout(folder.name)
        deploy = root / layout.deploy  # its manifests go too (docs/deployments.md)
        manifests = sorted(p.relative_to(root) for p in deploy.rglob("*.yaml") if p.is_file())
        generated = tuple(
            path.as_posix()
            for path in (layout.dvc_yaml, layout.params, layout.record, *manifests)
            if (read_checkout_file(root / path) or "").startswith("# generated by mllc")
        )
        if generated:
            orphans.append(Orphan(folder.name, generated))
    return orphans


def new_hasher(root: Path) -> Hasher:
    return Hasher(root, root / HASH_CACHE)
