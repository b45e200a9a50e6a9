"""Preview: run the pipelines the plan would retrain or re-evaluate, in an isolated
worktree, and compare what they produce with the registry (``mllc preview``).

Runs the specs' training code (as apply does) but changes nothing the user has: no
commit, tag, registration or deployment, no server started or stopped; the checkout's
HEAD, index, working tree, branches and tags stay as they were
(:mod:`mllc.preview.worktree`). Stages with unchanged inputs are restored from the
shared DVC cache instead of run again.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mllc import __version__, gitcmd
from mllc.apply.dvc import TimedOut, stage_runner, stream_dvc
from mllc.atomic import write_text
from mllc.compile.desired import Desired
from mllc.dvcrepo import cache_dir, cache_object
from mllc.layout import Layout
from mllc.observe import dvclock
from mllc.observe.pipeline import cached_outputs, read_lock
from mllc.observe.world import (
    model_md5_from_lock,
    out_md5_from_lock,
    read_json_object,
    uncommitted_paths,
)
from mllc.ops.plan import make_plan
from mllc.plan.model import Change
from mllc.preview.compare import Context, Produced, lifecycle_preview
from mllc.preview.dvcrun import running_stage, stage_runs
from mllc.preview.model import LifecyclePreview, Preview
from mllc.preview.worktree import PreviewError, isolated
from mllc.registry import assignments, list_versions
from mllc.replay import checker
from mllc.saferead import RefusedRead, json_object, read_bytes
from mllc.semver import sort_key
from mllc.spec.yamlsafe import YamlProblem
from mllc.types import RegisteredVersion

Progress = Callable[[str], None]
PREVIEWED = ("retrain", "re-evaluate")  # the plan's categories that run the pipeline


def previewed(changes: Sequence[Change]) -> dict[str, tuple[str, ...]]:
    """Lifecycle -> the plan's categories, for the lifecycles whose pipeline would run."""
    found: dict[str, set[str]] = {}
    for c in changes:
        if c.action != "no-op" and c.category in PREVIEWED:
            found.setdefault(c.lifecycle, set()).add(c.category)
    return {name: tuple(c for c in PREVIEWED if c in cats) for name, cats in found.items()}


def _base_data(root: Path, versions: Sequence[RegisteredVersion], name: str) -> Any:
    """(version, data report) of the last registered version: from its commit when an
    older mllc kept the report in Git, else from the DVC cache by the md5 its commit's
    ``dvc.lock`` records (None when neither has it, e.g. a clone that never pulled)."""
    if not versions:
        return None
    last = max(versions, key=lambda v: sort_key(v.version))
    layout = Layout(name)
    report = json_object(gitcmd.file_at(root, last.commit, layout.data_report.as_posix()))
    if report is None:
        text = gitcmd.file_at(root, last.commit, layout.dvc_lock.as_posix())
        try:  # read as every lock is: a hostile one is refused, a broken one unused
            lock = dvclock.check(text.decode("utf-8", "replace"))[0] if text else None
        except YamlProblem:
            lock = None
        md5 = out_md5_from_lock(lock, "prepare", layout.data_report.as_posix())
        if md5 is not None:
            try:  # bounded, and confined to the cache (its folder may be outside the checkout)
                report = json_object(read_bytes(cache_object(root, md5), cache_dir(root)))
            except (OSError, RefusedRead):
                report = None
    return (last.version, report) if report is not None else None


def _lock_md5(where: Path, name: str) -> str | None:
    try:
        lock = read_lock(where / Layout(name).dvc_lock, where)
    except RefusedRead:
        return None
    return model_md5_from_lock(lock, name)


class _Run:
    """One lifecycle's ``dvc repro`` in the worktree, its lines kept for timings."""

    def __init__(self, where: Path, want: Desired, progress: Progress, env: dict[str, str]) -> None:
        self.where, self.want, self.name, self.progress = where, want, want.name, progress
        self.env = env  # the warm stage runner's
        self.lines: list[tuple[float, str]] = []

    def line(self, at: float, text: str) -> None:
        self.lines.append((at, text))
        if text.startswith(("Running stage", "Stage '", "ERROR")):
            self.progress(f"    {self.name}: {text}")

    def repro(self, deadline: float | None, timeout: float | None) -> Produced:
        started = time.monotonic()
        target = Layout(self.name).dvc_yaml.as_posix()
        try:
            code = stream_dvc(self.where, ["repro", target], self.line, deadline, self.env)
        except TimedOut:
            stage = running_stage(self.lines)
            doing = f"stage {stage!r} was still running" if stage else "DVC was still running"
            raise PreviewError(
                f"preview stopped by --timeout {timeout:g}s: {self.name}: {doing}; it was "
                "killed, with every process it started, and its worktree removed"
            ) from None
        if code != 0:
            tail = "\n".join(t for _, t in self.lines[-20:] if t.strip())
            raise PreviewError(f"{self.name}: dvc repro failed (exit {code}):\n{tail}")
        layout, ended = Layout(self.name), time.monotonic()
        runs = stage_runs(self.lines, ended)
        return Produced(
            candidates={
                m: read_json_object(self.where / layout.candidate_report(m))
                for m in self.want.spec.models
            },
            metrics=read_json_object(self.where / layout.metrics),
            data=read_json_object(self.where / layout.data_report),
            model_md5=_lock_md5(self.where, self.name),
            stages=runs,
            seconds=round(ended - started, 3),
        )


def _prepare(
    where: Path,
    desired: Sequence[Desired],
    progress: Progress,
    deadline: float | None,
    timeout: float | None,
) -> None:
    """Restore the committed outputs from the shared cache, then write the generated files
    of the previewed lifecycles (what apply would write) into the worktree."""
    tracked = gitcmd.git(where, "ls-files", "-z", "--", "*.dvc").split("\0")
    targets = [*(Layout(d.name).dvc_yaml.as_posix() for d in desired), *filter(None, tracked)]
    present = [t for t in targets if (where / t).is_file()]
    if present:  # missing cache entries are not an error: repro rebuilds them
        try:
            stream_dvc(where, ["checkout", "--quiet", *present], lambda _at, _ln: None, deadline)
        except TimedOut:
            raise PreviewError(
                f"preview stopped by --timeout {timeout:g}s while restoring the committed "
                "outputs from the DVC cache; its worktree was removed"
            ) from None
    for want in desired:
        for rel, text in want.files.items():
            write_text(where / rel, text)
        # An older mllc kept some reports in Git that DVC now caches: DVC refuses to
        # cache a file Git tracks, so the worktree's index stops tracking them.
        gitcmd.untrack(where, cached_outputs(want.spec))
    progress(f"    worktree ready: {', '.join(d.name for d in desired)}")


def preview(
    root: Path,
    paths: Sequence[str],
    timeout: float | None = None,
    progress: Progress = lambda _line: None,
) -> Preview:
    deadline = None if timeout is None else time.monotonic() + timeout
    planned = make_plan(root, paths)
    wanted = previewed(planned.plan.changes)
    desired = [d for d in planned.desired if d.name in wanted]
    commit = gitcmd.head(root)
    specs = [d.spec_file for d in planned.desired]
    pending = set(uncommitted_paths(root))
    uncommitted = tuple(s for s in specs if s in pending)
    if not desired:
        return Preview(mllc_version=__version__, commit=commit, uncommitted_specs=uncommitted)
    versions = list_versions(root)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    results: list[LifecyclePreview] = []
    used = [m.estimator for d in desired for m in d.spec.models.values()]
    runner_cm = stage_runner([e for e in used if e is not None])
    with isolated(root, specs) as where, runner_cm as runner:
        _prepare(where, desired, progress, deadline, timeout)
        for want in desired:
            mine = [v for v in versions if v.name == want.name]
            produced = _Run(where, want, progress, runner).repro(deadline, timeout)
            ctx = Context(
                name=want.name,
                categories=wanted[want.name],
                metric=want.spec.problem.metric,
                gates=list(want.lifecycle.gates),
                environments=want.lifecycle.environments,
                versions=mine,
                history=functools.partial(assignments, root, want.name),
                base_data=_base_data(root, mine, want.name),
                now=now,
                # wins_on_replay: the previewed model replays what each environment captured
                replay=functools.partial(checker, root, want.spec, progress=progress),
            )
            results.append(lifecycle_preview(ctx, produced))
    return Preview(
        mllc_version=__version__,
        commit=commit,
        uncommitted_specs=uncommitted,
        lifecycles=tuple(results),
    )
