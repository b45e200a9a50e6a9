"""Carry out a plan's steps (:func:`mllc.apply.steps.plan_steps`) under the lock,
journaling every step, after finishing what a killed apply left half-done.

Each step is idempotent, so a rerun after a crash converges. Nothing here decides
*what* to do: the plan did, and :mod:`mllc.apply.steps` put it in order.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mllc import dvcremote, gitcmd
from mllc.apply import dvcstate, gitops, rollout, sources
from mllc.apply.dvc import ApplyFailed, Progress, clear_dead_dvc_locks, run_dvc, stage_runner
from mllc.apply.journal import Journal, last_apply
from mllc.apply.lock import acquire
from mllc.apply.steps import Step, plan_steps
from mllc.atomic import write_text
from mllc.card import markdown, pending_card
from mllc.compile.desired import Desired
from mllc.dvcrepo import cache_object
from mllc.errors import MllcError
from mllc.gitcmd import head
from mllc.layout import Layout
from mllc.observe.pipeline import cached_outputs, read_lock
from mllc.observe.world import model_md5_from_lock, observe_monitoring, read_json_object
from mllc.plan.model import REPOSITORY, Planned
from mllc.policy.promotion import History, resolve_environment
from mllc.registry import assign, assignments, find_by_md5, list_versions, register
from mllc.replay import checker
from mllc.spec.compute import record as compute_record
from mllc.targets import TARGETS, target_for
from mllc.types import RegisteredVersion, RolloutStep


@dataclass
class ApplyResult:
    apply_id: str
    steps: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)


class Executor:
    def __init__(
        self,
        root: Path,
        journal: Journal,
        progress: Progress,
        resources: contextlib.ExitStack,
        registering: frozenset[str] = frozenset(),
    ) -> None:
        self.root, self.journal, self.progress = root, journal, progress
        # lifecycles with a register step: their commit carries the new version's card
        self.registering = registering
        self._history: dict[str, History] = {}
        self._resources = resources  # what lives as long as this apply: the stage runner
        self._runner: dict[str, str] | None = None

    def runner(self, planned: Planned) -> dict[str, str]:
        """The warm stage runner's environment for DVC, started at the first repro."""
        if self._runner is None:
            used = [m.estimator for d in planned.desired for m in d.spec.models.values()]
            runner = stage_runner([e for e in used if e is not None])
            self._runner = self._resources.enter_context(runner)
        return self._runner

    def history(self, name: str) -> History:
        """``name``'s environment assignments as they were before this apply deployed it:
        ``after: staging`` needs a version that ran in staging before, not one this apply
        has just put there (a retrained version never goes straight to production)."""
        if name not in self._history:
            self._history[name] = assignments(self.root, name, rollouts=True)
        return self._history[name]

    def step(self, name: str, fn: Callable[..., dict[str, Any]], *args: Any) -> None:
        self.journal.start(name)
        started = time.monotonic()
        try:
            detail = fn(*args)
        except BaseException as exc:
            self.journal.failed(name, exc if isinstance(exc, Exception) else repr(exc))
            raise
        self.journal.done(name, seconds=round(time.monotonic() - started, 3), **detail)

    def run(self, step: Step, planned: Planned, result: ApplyResult) -> None:
        """Carry out one step of :func:`mllc.apply.steps.plan_steps`, journaled."""
        name = step.lifecycle
        want = next((d for d in planned.desired if d.name == name), None)
        repository = dict(planned.repository) if step.with_repository else {}
        if step.kind == "begin":
            self.progress("repository:" if name == REPOSITORY else f"{name}:")
            if want is not None:  # (a removed lifecycle has no spec: nothing to deploy)
                self.history(name)  # before any deploy of this apply
                self.clear_answered_batches(want)
        elif step.kind == "delete-lifecycle":
            self.step(step.name, self.delete_lifecycle, name)
        elif step.kind == "files" and want is None:
            self.step(step.name, self.write_repository, repository)
        elif step.kind == "files":
            assert want is not None
            self.step(step.name, self.write_files, want, repository)
        elif step.kind == "data":
            assert want is not None
            self.step(step.name, self.track_sources, want)
        elif step.kind == "feedback":
            self.step(step.name, self.add_feedback, name, step.batch, step.target)
        elif step.kind == "pipeline":
            assert want is not None
            self.step(step.name, self.repro, want, step.stage, self.runner(planned))
        elif step.kind == "push":
            assert want is not None
            if dvcremote.default_remote(self.root) is not None:  # none: as before, no entry
                self.step(step.name, self.push, want)
        elif step.kind == "commit":
            found = sources.commit_paths(self.root, want) if want is not None else []
            paths = [*step.paths, *found, *sorted(repository)]
            cached = cached_outputs(want.spec) if want is not None else []
            if want is not None and name in self.registering:
                self.step(
                    step.name, self.commit_with_card, name, paths, step.message, result, cached
                )
            else:
                self.step(step.name, self.commit, paths, step.message, result, cached)
        elif step.kind == "register":
            self.step(step.name, self.register, name, result, want)
        elif step.kind == "deploy":
            assert want is not None
            self.step(step.name, self.deploy, want, step.environment, step.action)

    def write_files(self, want: Desired, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
        layout = Layout(want.name)
        folders = (layout.root.as_posix(), layout.deploy.as_posix())
        return self._write({**want.files, **(extra or {})}, *folders)

    def write_repository(self, files: Mapping[str, str]) -> dict[str, Any]:
        return self._write(files)

    def _write(self, files: Mapping[str, str], *folders: str) -> dict[str, Any]:
        """Write ``files`` (each atomically), first removing the temp files a killed write
        or stage left in ``folders`` and .github/workflows (we hold the lock: none is live)."""
        for folder in (self.root / f for f in (*folders, ".github/workflows")):
            for leftover in folder.rglob(".*.tmp") if folder.is_dir() else []:
                leftover.unlink(missing_ok=True)
        written = [p for p, text in files.items() if write_text(self.root / p, text)]
        for path in written:
            self.progress(f"    wrote {path}")
        return {"written": written}

    def add_feedback(self, name: str, batch: str, target: str) -> dict[str, Any]:
        """A breaching labelled batch joins the training data as a DVC-tracked file.

        Copied to ``target`` (temp file, then renamed), ``dvc add``-ed (its ``.dvc``
        pointer is committed with the retrained pipeline), then the batch is removed
        from ``monitoring/``. Each part is repeatable: a kill anywhere converges on the
        next apply (a batch counts as added only once its pointer exists).
        """
        source, dest = self.root / batch, self.root / target
        pointer = self.root / f"{batch}.dvc"
        if not (self.root / f"{target}.dvc").is_file():
            if not source.is_file() and pointer.is_file():
                # Tracked by DVC in a monitoring pull request: from the local cache.
                run_dvc(self.root, ["checkout", f"{batch}.dvc"], self.progress)
            if not source.is_file():
                raise ApplyFailed(
                    f"{name}: the labelled batch {batch} is not here: run 'dvc pull' "
                    "(or mllc monitor again)"
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
            run_dvc(self.root, ["add", target], self.progress)
        source.unlink(missing_ok=True)
        pointer.unlink(missing_ok=True)
        self.progress(f"    added {batch} to the training data as {target}")
        return {"batch": batch, "added": target}

    def track_sources(self, want: Desired) -> dict[str, Any]:
        return sources.track_sources(self.root, want, self.progress)

    def clear_answered_batches(self, want: Desired) -> None:
        """Batches already in the training data (an apply killed before removing them)."""
        for state in observe_monitoring(self.root, want):
            if state.answered and state.batch is not None:
                (self.root / state.batch).unlink(missing_ok=True)
                (self.root / f"{state.batch}.dvc").unlink(missing_ok=True)

    def deploy(self, want: Desired, env: str, action: str) -> dict[str, Any]:
        """Re-resolve with the registry as it is now (a version may just have been added)."""
        if action == "delete":  # the environment left the spec: whichever target runs it
            for target in TARGETS.values():
                stopped = target.stop(self.root, want.name, env)
                if stopped is not None:
                    self.progress(f"    {env}: stopped server pid {', '.join(stopped)}")
            # and its files in the repository go (a GitOps controller prunes what they made)
            removed = self.commit_rendered(want, env, None)
            return {"stopped": env, **({"removed": removed} if removed else {})}
        cfg = want.lifecycle.environments[env]
        gates = list(want.lifecycle.gates)
        versions = list_versions(self.root, want.name)
        metric = want.spec.problem.metric
        replay = checker(self.root, want.spec, env, self.progress)  # wins_on_replay: replays
        history = self.history(want.name)  # as the apply began (rollout decisions read it too)
        res, _ = resolve_environment(
            env, cfg, versions, gates, metric, lambda: history, None, replay
        )
        if res.blocked:
            raise ApplyFailed(f"{want.name}/{env}: blocked: {res.blocked}")
        target = target_for(cfg.target)
        step = rollout.decision(self.root, want, env, res, versions, target, history)
        if step.action != "nothing":  # a rollout: one step per apply
            render = self.commit_rendered
            return rollout.carry_out(
                self.root, want, env, step, versions, target, render, self.progress
            )
        if res.version is None:  # what runs keeps running, with the spec's settings
            kept = target.keep(self.root, want.spec, env, versions, self.progress)
            if kept is not None:
                return {"version": kept, "settings": True}
            self.progress(f"    {env}: nothing to deploy ({res.reason})")
            return {"version": None}
        # the model first: a commit (GitOps: the deployment itself) never names a missing one
        target.publish(self.root, want.spec, env, res.version, self.progress)
        files = self.commit_rendered(want, env, res.version)
        done = target.deploy(self.root, want.spec, env, res.version, files, self.progress)
        # Recorded as a GTO stage assignment <name>#<env>#N once it runs: `after` reads it.
        record = {"reason": res.reason, "gates": [g.text() for g in res.gates]}
        replayed = {"replay": res.replay.text} if res.replay is not None else {}
        assign(self.root, want.name, res.version.version, env, {**record, **replayed})
        if "wins_on_replay" in cfg.require:  # the replay's numbers, whether it let one in or not
            self.progress(f"    {env}: {res.reason}")
            replayed["reason"] = res.reason
        return {**done, **replayed}

    def commit_rendered(
        self,
        want: Desired,
        env: str,
        version: RegisteredVersion | None,
        step: RolloutStep | None = None,
    ) -> list[str]:
        """Write and commit the files the target renders for ``env`` (the Kubernetes
        manifests) before it deploys them: the commit says what runs. The files of
        ``deploy/<name>/<env>/`` it no longer renders (another target or sync mode) are
        removed in that commit; ``version`` None (the environment left the spec) removes
        them all; with ``step``, the files of that rollout step. Returns the rendered paths,
        or with None the removed ones."""
        folder = Layout(want.name).deploy_dir(env)
        files: dict[str, str] = {}
        if version is not None:
            cfg = want.lifecycle.environments[env]
            target = target_for(cfg.target)
            step_of = {"step": step} if step is not None else {}  # a target may predate it
            files = target.render(self.root, want.spec, env, version, want.spec_file, **step_of)
        stale = [
            p.relative_to(self.root).as_posix()
            for p in sorted((self.root / folder).rglob("*"))
            if p.is_file() and p.relative_to(self.root).as_posix() not in files
        ]
        for path in stale:
            (self.root / path).unlink()
        for empty in (folder, folder.parent, folder.parent.parent):  # deploy/<name>/<env>, up
            with contextlib.suppress(OSError):  # not there, or not empty
                (self.root / empty).rmdir()
        for path, text in files.items():
            write_text(self.root / path, text)
        if version is None:
            message = f"mllc apply: remove environment {env} of {want.name} ({folder.as_posix()}/)"
        else:  # with a rollout step (GitOps: the commit is the step), which one
            message = f"mllc apply: deploy {want.name} {version.version} to {env}"
            message += rollout.in_message(step) if step is not None else ""
        # the folder: also what a killed apply removed but did not commit
        commit = gitops.commit_paths(self.root, [folder.as_posix(), *sorted(files)], message)
        if version is None:
            if commit:
                self.progress(f"    {env}: removed {folder.as_posix()}/ ({commit[:10]})")
            return stale
        return sorted(files)

    def delete_lifecycle(self, name: str) -> dict[str, Any]:
        for target in TARGETS.values():  # whatever its targets still run
            for env in target.running(self.root, name):
                target.stop(self.root, name, env)
                self.progress(f"    {env}: stopped its server")
        folder = self.root / Layout(name).root
        shutil.rmtree(folder, ignore_errors=True)
        self.progress(f"    removed pipelines/{name}/ (registry history kept)")
        deploy = Layout(name).deploy
        if (self.root / deploy).is_dir():
            shutil.rmtree(self.root / deploy, ignore_errors=True)
            self.progress(f"    removed {deploy.as_posix()}/")
        return {"removed": Layout(name).root.as_posix()}

    def repro(self, want: Desired, stage: str | None, env: dict[str, str]) -> dict[str, Any]:
        # DVC refuses to cache an output Git tracks: an older mllc kept some reports in Git,
        # and one report it wrote no stage writes now (evaluate may be restored, not run).
        gitcmd.untrack(self.root, cached_outputs(want.spec))
        (self.root / Layout(want.name).legacy_candidates_report).unlink(missing_ok=True)
        dvc_yaml = Layout(want.name).dvc_yaml.as_posix()
        target = f"{dvc_yaml}:{stage}" if stage else dvc_yaml
        # Another clone: outputs dvc.lock records but this cache lacks are pulled from the
        # default remote for the stages that are otherwise unchanged, not recomputed.
        pull = ["--pull"] if self.outputs_elsewhere(want) else []
        if pull:
            dvcremote.require_extra(getattr(dvcremote.default_remote(self.root), "url", ""))
        try:
            run_dvc(self.root, ["repro", *pull, target], self.progress, env=env)
        except ApplyFailed as exc:
            if pull and dvcremote.remote_failure(exc.detail):
                raise ApplyFailed(
                    f"{want.name}: {dvcremote.failure(self.root, exc.detail).detail}; nothing "
                    "was committed or tagged: run 'mllc apply' again once the remote works"
                ) from None
            raise
        return {"pulled": True} if pull else {}

    def outputs_elsewhere(self, want: Desired) -> bool:
        """A default remote is configured and the local cache lacks an object of one of
        the pipeline's recorded outputs (a clone made on another machine)."""
        if dvcremote.default_remote(self.root) is None:
            return False
        cached = set(cached_outputs(want.spec))  # not metrics and plots: Git holds them
        lock = read_lock(self.root / Layout(want.name).dvc_lock)
        stages = lock.get("stages") if isinstance(lock, dict) else None
        recorded = [
            (out.get("path"), out.get("md5"))
            for entry in (stages.values() if isinstance(stages, dict) else [])
            if isinstance(entry, dict)
            for out in entry.get("outs") or []
            if isinstance(out, dict)
        ]
        return any(
            path in cached and isinstance(md5, str) and not cache_object(self.root, md5).is_file()
            for path, md5 in recorded
        )

    def push(self, want: Desired) -> dict[str, Any]:
        """Every cached output of the pipeline (dvc.lock's outs: the model, the splits
        monitor compares with) and every data pointer the commit will carry, to the
        default remote before the commit and tag: a failure stops apply here, with
        nothing committed or tagged, and the next apply pushes again (idempotent)."""
        targets = sources.push_targets(self.root, want)
        try:
            remote = dvcremote.push(self.root, targets, self.progress)
        except MllcError as exc:
            raise ApplyFailed(
                f"{want.name}: {exc.detail}; nothing was committed or tagged: "
                "run 'mllc apply' again once the remote works"
            ) from None
        return {"pushed": targets, "remote": remote.name if remote else None}

    def write_card(self, name: str) -> dict[str, Any]:
        """Before the commit that pins a NEW model: its card (``pipelines/<name>/card.md``),
        from the workspace's evidence and named as the registry will name the version, so
        the card travels in the commit the version's tag points at. A model the registry
        already has (a revert) gets the card its own commit holds, or none: never the
        card of the version before."""
        md5 = model_md5_from_lock(read_lock(self.root / Layout(name).dvc_lock), name)
        if md5 is None:
            return {"card": None}
        path = Layout(name).card.as_posix()
        known = find_by_md5(self.root, name, md5)
        if known is not None:
            kept = gitcmd.file_at(self.root, known.commit, path)
            if kept is not None:
                write_text(self.root / path, kept.decode("utf-8", "replace"))
            else:
                (self.root / path).unlink(missing_ok=True)
            return {"card": path if kept is not None else None, "already": known.version}
        card = pending_card(self.root, name)
        if write_text(self.root / path, markdown(card)):
            self.progress(f"    wrote {path} ({name}@{card.version})")
        return {"card": path, "version": card.version}

    def commit_with_card(
        self,
        name: str,
        paths: list[str],
        message: str,
        result: ApplyResult,
        untracked: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The commit of a lifecycle whose model apply registers next, with its card."""
        card = self.write_card(name)
        return {**self.commit(paths, message, result, untracked), **card}

    def commit(
        self, paths: list[str], message: str, result: ApplyResult, untracked: Sequence[str] = ()
    ) -> dict[str, Any]:
        commit = gitops.commit_paths(self.root, paths, message, untracked)
        if commit:
            result.commits.append(commit)
            self.progress(f"    committed {commit[:10]}: {message}")
        return {"commit": commit}

    def register(
        self, name: str, result: ApplyResult, want: Desired | None = None
    ) -> dict[str, Any]:
        md5 = model_md5_from_lock(read_lock(self.root / Layout(name).dvc_lock), name)
        commit = head(self.root)
        if md5 is None or commit is None:
            return {"registered": None}
        committed = gitcmd.file_at(self.root, commit, Layout(name).dvc_lock.as_posix()) or b""
        if md5.encode() not in committed:
            raise ApplyFailed(
                f"{name}: the model's dvc.lock is not committed at HEAD; cannot register "
                "a version that a commit does not pin"
            )
        known = find_by_md5(self.root, name, md5)
        if known is not None:
            self.progress(f"    model md5 {md5[:12]} is already {name}@{known.version}")
            return {"version": known.version, "model_md5": md5, "already": True}
        missing = sources.unversioned_inputs(self.root, name, commit)
        if missing:  # a clone at the tag could not rebuild it
            raise ApplyFailed(
                f"{name}: cannot register: the commit {commit[:10]} neither holds nor tracks "
                f"with DVC what the pipeline reads: {', '.join(missing)}; commit it, or track "
                "it with 'dvc add' and commit the .dvc file, then apply again"
            )
        version = register(
            self.root,
            name,
            commit,
            md5,
            read_json_object(self.root / Layout(name).metrics),
            _with_compute(read_json_object(self.root / Layout(name).lineage), want),
        )
        tag = f"{name}@{version.version}"
        if tag not in result.registered:
            result.registered.append(tag)
        self.progress(f"    registered {tag} (model md5 {md5[:12]}, commit {commit[:10]})")
        return {"version": version.version, "model_md5": md5, "commit": commit}


def _with_compute(lineage: dict[str, Any], want: Desired | None) -> dict[str, Any]:
    """The lineage a registration records: lineage.json (a DVC output, the same bytes on
    every backend), plus where the spec had training run, when it says (``mllc status``
    shows it; ``mllc verify`` does not compare it)."""
    where = compute_record(want.spec.compute) if want is not None else None
    return lineage if where is None else {**lineage, "compute": where}


def _recover(root: Path, progress: Progress) -> None:
    """Finish what a killed apply left half-done, as its journal says, and repair the
    files a kill inside DVC's own writes left cut short (whatever the journal says)."""
    dvcstate.repair(root, progress)
    dead = clear_dead_dvc_locks(root)
    if dead:
        progress(
            f"cleared DVC locks left by processes that are gone (pid {', '.join(map(str, dead))})"
        )
    previous = last_apply(root)
    interrupted = previous.interrupted_steps() if previous is not None else []
    for step in interrupted:
        if step.endswith("/commit"):
            name = step.split("/", 1)[0]
            gitops.resync_index(root, [Layout(name).root.as_posix()])
    if interrupted and previous is not None:
        progress(
            f"an earlier apply ({previous.apply_id}) was interrupted during: "
            f"{', '.join(interrupted)}; this apply converges from the state it left"
        )


def apply(
    root: Path,
    planned: Planned,
    progress: Progress,
    lock_timeout: float | None = None,
    recheck: Callable[[], None] | None = None,
) -> ApplyResult:
    """Carry out ``planned``. ``recheck``, when given, runs first under the lock and raises
    when the world moved since the plan was made (a saved plan)."""
    plan = planned.plan
    if plan.blocked:
        raise ApplyFailed(
            "apply refused, the plan has blocked changes:\n  "
            + "\n  ".join(f"{c.address}: {c.reasons[0]}" for c in plan.blocked)
        )
    with acquire(root, "mllc apply", timeout=lock_timeout):
        if recheck is not None:  # the world may have moved while we waited for the lock
            recheck()
        _recover(root, progress)
        journal = Journal(root)
        result = ApplyResult(apply_id=journal.apply_id)
        with contextlib.ExitStack() as resources:
            steps = plan_steps(planned)
            registering = frozenset(s.lifecycle for s in steps if s.kind == "register")
            ex = Executor(root, journal, progress, resources, registering)
            for step in steps:
                ex.run(step, planned, result)
        return result
