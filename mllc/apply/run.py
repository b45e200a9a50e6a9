"""Carry out a plan, one lifecycle at a time, under the lock, journaling every step.

Steps per lifecycle (each idempotent, so a rerun after a crash converges):

1. ``files``    write the generated files (each atomically) — or, for a removed
                spec, delete its pipeline folder;
2. ``pipeline`` ``dvc repro pipelines/<name>/dvc.yaml``: DVC reruns exactly the
                stale stages and records each in dvc.lock as it finishes;
3. ``commit``   commit the spec, the generated files, dvc.lock and the small
                uncached outputs (metrics, lineage, plots, .gitignore) — so the
                commit pins the model's hash;
4. ``register`` tag that commit ``<name>@vX.Y.Z`` when its model hash is new.

Nothing here decides *what* to do: the plan did. Dry-run is not calling this.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mllc import gitcmd
from mllc.apply import gitops, sources
from mllc.apply.journal import Journal, last_apply
from mllc.apply.lock import acquire
from mllc.errors import MllcError
from mllc.gitcmd import head
from mllc.observe.pipeline import read_lock
from mllc.observe.types import RegisteredVersion
from mllc.observe.world import model_md5_from_lock, read_json_object
from mllc.plan import REPOSITORY, Planned
from mllc.plan.diff import Desired
from mllc.plan.model import Change
from mllc.procs import WATCH_ENV, cmdline, exited, preexec_die_with_parent

Progress = Callable[[str], None]


class ApplyFailed(MllcError):
    message = "apply failed"


@dataclass
class ApplyResult:
    apply_id: str
    steps: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)


def dvc_env() -> dict[str, str]:
    """DVC runs ``mllc stage ...``: make this installation's mllc the one it finds."""
    env = dict(os.environ)
    scripts = str(Path(sys.executable).parent)
    env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    env[WATCH_ENV] = str(os.getpid())  # its stages end when this apply ends
    return env


def run_dvc(root: Path, args: Sequence[str], progress: Progress) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env=dvc_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec_die_with_parent(),
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = [*tail[-30:], line]
        if line.startswith(("Running stage", "Stage '")) or line.startswith(("ERROR", "error")):
            progress(f"    {line}")
    if proc.wait() != 0:
        detail = "\n".join(t for t in tail if t.strip())
        raise ApplyFailed(f"dvc {' '.join(args)} failed (exit {proc.returncode}):\n{detail}")


def _commit_paths(want: Desired) -> list[str]:
    """The spec, the pipeline folder and the latest monitoring reports (never a batch:
    one committed by a monitoring pull request is committed again only as removed)."""
    folder = f"pipelines/{want.name}"
    reports = []
    if want.lifecycle.get("monitoring"):
        for env in want.lifecycle.get("environments") or {}:
            base = f"monitoring/{want.name}/{env}"
            reports += [f"{base}/report.json", f"{base}/report.md", f"{base}/report.html"]
            reports += [f"{base}/batch.parquet", f"{base}/batch.parquet.dvc"]
    return [want.spec_file, folder, *reports]


class Executor:
    def __init__(self, root: Path, journal: Journal, progress: Progress) -> None:
        self.root, self.journal, self.progress = root, journal, progress
        self._history: dict[str, Any] = {}

    def history(self, name: str) -> Any:
        """``name``'s environment assignments as they were before this apply deployed it:
        ``after: staging`` needs a version that ran in staging before, not one this apply
        has just put there (a retrained version never goes straight to production)."""
        if name not in self._history:
            from mllc.registry import assignments

            self._history[name] = assignments(self.root, name)
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

    def write_files(self, want: Desired, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
        folders = (f"pipelines/{want.name}", f"deploy/{want.name}")
        return self._write({**want.files, **(extra or {})}, *folders)

    def write_repository(self, files: Mapping[str, str]) -> dict[str, Any]:
        return self._write(files)

    def _write(self, files: Mapping[str, str], *folders: str) -> dict[str, Any]:
        """Write ``files`` (each atomically), first removing the temp files a killed write
        or stage left in ``folders`` and .github/workflows (we hold the lock: none is live)."""
        from mllc.api import write_text

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
        from mllc.observe.world import observe_monitoring

        for state in observe_monitoring(self.root, want):
            if state.answered and state.batch is not None:
                (self.root / state.batch).unlink(missing_ok=True)
                (self.root / f"{state.batch}.dvc").unlink(missing_ok=True)

    def deploy(self, want: Desired, env: str, action: str) -> dict[str, Any]:
        """Re-resolve with the registry as it is now (a version may just have been added)."""
        from mllc.registry import assign, list_versions
        from mllc.targets import local, promotion_rules, resolve

        if action == "delete":
            running = local.servers(self.root, want.name, env)
            if running:
                settings = local.Settings(want.name, env, running[-1].host, running[-1].port, None)
                stopped = local.stop(self.root, settings)
                self.progress(f"    {env}: stopped server pid {', '.join(map(str, stopped))}")
            return {"stopped": env}
        cfg = dict((want.lifecycle.get("environments") or {})[env])
        gates = list(want.lifecycle.get("gates") or [])
        versions = list_versions(self.root, want.name)
        metric = want.spec.problem.metric if want.spec is not None else ""
        history = self.history(want.name)
        rules = promotion_rules(self.root, want.name, cfg, env, versions, metric, history)
        res = resolve(env, str(cfg.get("model", "latest")), versions, gates, rules)
        if res.blocked:
            raise ApplyFailed(f"{want.name}/{env}: blocked: {res.blocked}")
        if res.version is None:
            if cfg.get("target") == "local":  # what runs keeps running, with the spec's settings
                settings = local.Settings.from_record(want.name, env, cfg)
                kept = local.keep_with_settings(self.root, settings, versions, self.progress)
                if kept is not None:
                    return {"version": kept, "settings": True}
            self.progress(f"    {env}: nothing to deploy ({res.reason})")
            return {"version": None}
        # Recorded as a GTO stage assignment <name>#<env>#N once it runs: `after` reads it.
        record = {"reason": res.reason, "gates": [g.text() for g in res.gates]}
        if cfg.get("target") == "kubernetes":
            done = self.deploy_kubernetes(want, env, res.version)
            assign(self.root, want.name, res.version.version, env, record)
            return done
        settings = local.Settings.from_record(want.name, env, cfg)
        now = local.observe(self.root, settings)
        if (
            now.healthy
            and now.version == res.version.version
            and now.port == settings.port
            and now.model_md5 in (None, res.version.model_md5)
            and not now.drift  # every setting (host, token, limits...) as the spec asks
        ):
            self.progress(f"    {env}: already serving {now.version}")
            assign(self.root, want.name, res.version.version, env, record)
            return {"version": now.version, "unchanged": True}
        local.deploy(self.root, settings, res.version, self.progress)
        assign(self.root, want.name, res.version.version, env, record)
        return {"version": res.version.version, "port": settings.port}

    def deploy_kubernetes(
        self, want: Desired, env: str, version: RegisteredVersion
    ) -> dict[str, Any]:
        from mllc.api import write_text
        from mllc.targets import kubernetes, local

        assert want.spec is not None
        files = kubernetes.render(want.spec, env, version, want.spec_file)
        for path, text in files.items():
            write_text(self.root / path, text)
        message = f"mllc apply: deploy {want.name} {version.version} to {env}"
        gitops.commit_paths(self.root, sorted(files), message)
        model = local.model_file(self.root, version.model_md5)
        kubernetes.publish_model(self.root, want.spec, env, version, model)
        kubernetes.apply_manifests(want.spec, env, [self.root / p for p in sorted(files)])
        self.progress(f"    {env}: applied {', '.join(sorted(files))}")
        return {"version": version.version, "manifests": sorted(files)}

    def delete_lifecycle(self, name: str) -> dict[str, Any]:
        from mllc.targets import local

        for folder in sorted((self.root / ".mllc" / "serve" / name).glob("*")):
            running = local.servers(self.root, name, folder.name)
            if running:
                s = running[-1]
                local.stop(self.root, local.Settings(name, folder.name, s.host, s.port, None))
                self.progress(f"    {folder.name}: stopped its server")
        folder = self.root / "pipelines" / name
        shutil.rmtree(folder, ignore_errors=True)
        self.progress(f"    removed pipelines/{name}/ (registry history kept)")
        return {"removed": f"pipelines/{name}"}

    def repro(self, name: str, target: str | None) -> dict[str, Any]:
        dvc_yaml = f"pipelines/{name}/dvc.yaml"
        stage = target.split("/stage/", 1)[1] if target and "/stage/" in target else None
        run_dvc(self.root, ["repro", f"{dvc_yaml}:{stage}" if stage else dvc_yaml], self.progress)
        return {}

    def commit(self, paths: list[str], message: str, result: ApplyResult) -> dict[str, Any]:
        commit = gitops.commit_paths(self.root, paths, message)
        if commit:
            result.commits.append(commit)
            self.progress(f"    committed {commit[:10]}: {message}")
        return {"commit": commit}

    def register(self, name: str, result: ApplyResult) -> dict[str, Any]:
        from mllc.registry import find_by_md5, register

        md5 = model_md5_from_lock(read_lock(self.root / f"pipelines/{name}/dvc.lock"), name)
        commit = head(self.root)
        if md5 is None or commit is None:
            return {"registered": None}
        lock_at_head = f"{commit}:pipelines/{name}/dvc.lock"
        committed = gitcmd.run(self.root, "show", lock_at_head).stdout.decode("utf-8", "replace")
        if md5 not in committed:
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
            read_json_object(self.root / f"pipelines/{name}/metrics.json"),
            read_json_object(self.root / f"pipelines/{name}/lineage.json"),
        )
        tag = f"{name}@{version.version}"
        if tag not in result.registered:
            result.registered.append(tag)
        self.progress(f"    registered {tag} (model md5 {md5[:12]}, commit {commit[:10]})")
        return {"version": version.version, "model_md5": md5, "commit": commit}


def _is_running_dvc(pid: int) -> bool:
    """A live (not zombie) process whose command line is DVC's."""
    if exited(pid):
        return False
    return any("dvc" in arg for arg in cmdline(pid) or [])


def clear_dead_dvc_locks(root: Path) -> list[int]:
    """Drop DVC rwlock entries of processes that are gone (a killed apply's DVC).

    DVC itself only checks that the pid exists, so an unreaped zombie or a reused
    pid would block every later run with "is busy". We hold mllc's lock: no DVC of
    ours runs; entries of live DVC processes are kept.
    """
    path = root / ".dvc" / "tmp" / "rwlock"
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(lock, dict) or not sys.platform.startswith("linux"):
        return []
    dropped: list[int] = []
    for mode in ("read", "write"):
        entries = lock.get(mode) or {}
        for key in list(entries):
            infos = entries[key] if isinstance(entries[key], list) else [entries[key]]
            alive = [i for i in infos if isinstance(i, dict) and _is_running_dvc(int(i["pid"]))]
            dropped += [int(i["pid"]) for i in infos if isinstance(i, dict) and i not in alive]
            if not alive:
                del entries[key]
            elif len(alive) != len(infos):
                entries[key] = alive if isinstance(entries[key], list) else alive[0]
    if dropped:
        tmp = path.with_name(path.name + ".mllc.tmp")
        tmp.write_text(json.dumps(lock), encoding="utf-8")
        os.replace(tmp, path)
    return sorted(set(dropped))


def _recover(root: Path, progress: Progress) -> None:
    """Finish what a killed apply left half-done, as its journal says, and repair the
    files a kill inside DVC's own writes left cut short (whatever the journal says)."""
    from mllc.apply import dvcstate

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
            gitops.resync_index(root, [f"pipelines/{name}"])
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
    saved: bool = False,
) -> ApplyResult:
    """Carry out ``planned``; with ``saved``, first check under the lock that it is not stale."""
    plan = planned.plan
    if plan.blocked:
        raise ApplyFailed(
            "apply refused, the plan has blocked changes:\n  "
            + "\n  ".join(f"{c.address}: {c.reasons[0]}" for c in plan.blocked)
        )
    with acquire(root, "mllc apply", timeout=lock_timeout):
        if saved:  # the world may have moved while we waited for the lock
            from mllc.plan import make_plan, stale_reasons

            assert plan.binding is not None
            now = make_plan(root, list(plan.binding.specs) or ["specs"], plan.target).plan
            assert now.binding is not None
            reasons = stale_reasons(plan.binding, now.binding)
            if reasons:
                raise ApplyFailed(
                    "stale plan: the world changed since it was made:\n  " + "\n  ".join(reasons)
                )
        _recover(root, progress)
        journal = Journal(root)
        result = ApplyResult(apply_id=journal.apply_id)
        ex = Executor(root, journal, progress)
        by_name = {d.name: d for d in planned.desired}
        # The repository's own files (the CI workflow) ride along with the first lifecycle
        # applied — written in its files step, committed in its commit — or get steps of
        # their own when no lifecycle changes.
        repo_files: Mapping[str, str] = (
            planned.repository if any(c.lifecycle == REPOSITORY for c in plan.changes) else {}
        )
        for name in [n for n in plan.lifecycles if n != REPOSITORY]:
            changes = [c for c in plan.changes if c.lifecycle == name and c.action != "no-op"]
            if not changes:
                continue
            progress(f"{name}:")
            if any(c.kind == "lifecycle" and c.action == "delete" for c in changes):
                ex.step(f"{name}/files", ex.delete_lifecycle, name)
                message = f"mllc apply: remove lifecycle {name}"
                ex.step(f"{name}/commit", ex.commit, [f"pipelines/{name}"], message, result)
                continue
            want = by_name[name]
            ex.history(name)  # before any deploy of this apply
            ex.clear_answered_batches(want)
            ex.step(f"{name}/files", ex.write_files, want, repo_files)
            if any(c.address == f"{name}/data/source" for c in changes):
                ex.step(f"{name}/data", ex.track_sources, want)
            for change in changes:
                if change.kind == "data" and change.address != f"{name}/data/source":
                    batch, target = str(change.before), str(change.after)
                    ex.step(f"{name}/feedback", ex.add_feedback, name, batch, target)
            if any(c.kind == "stage" for c in changes):
                ex.step(f"{name}/pipeline", ex.repro, name, plan.target)
            message = f"mllc apply: {name} ({_what(changes)})"
            paths = [*_commit_paths(want), *sources.commit_paths(root, want), *sorted(repo_files)]
            ex.step(f"{name}/commit", ex.commit, paths, message, result)
            repo_files = {}
            if any(c.kind == "model" for c in changes):
                ex.step(f"{name}/register", ex.register, name, result)
            for change in changes:
                if change.kind == "deployment":
                    env = change.address.rsplit("/", 1)[1]
                    ex.step(f"{name}/deploy/{env}", ex.deploy, want, env, change.action)
        if repo_files:  # only the CI workflow changed
            progress("repository:")
            ex.step(f"{REPOSITORY}/files", ex.write_repository, repo_files)
            message = "mllc apply: CI workflow"
            ex.step(f"{REPOSITORY}/commit", ex.commit, sorted(repo_files), message, result)
        return result


def _what(changes: list[Change]) -> str:
    categories = sorted({c.category for c in changes})
    return ", ".join(categories)
