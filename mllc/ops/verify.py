"""``mllc verify``: rebuild registered versions from their tags and compare every record.

For each version: check its tag (still where it was made, its environment assignments on
the same commit), the commit's ``dvc.lock`` against the registration, and the local DVC
cache's objects against their names; then rebuild the pipeline in an isolated worktree
of the tag's commit with an empty DVC cache of its own (``dvc repro --force``: every
stage recomputed, no run cache, no output reused) from the inputs the commit pins, and
compare each stage's outputs, the model's bytes and the tag's metrics and lineage with
the rebuild. Inputs DVC tracks are restored from the local cache with their hash
checked, or fetched through DVC from a configured remote; when neither has them the
version is reported unverifiable, never skipped.

Runs the specs' training code (as apply and preview do). Changes nothing the user has:
no commit, tag or checkout; the local cache is only read (a fetch adds what was
missing). The verdict is kept in ``.mllc/verify/<name>/<version>.json`` for the card.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mllc import __version__, gitcmd, semver
from mllc.apply.dvc import TimedOut, stage_runner, stream_dvc
from mllc.atomic import write_text
from mllc.dvcremote import default_remote, fetch
from mllc.errors import MllcError
from mllc.layout import STATE, Layout
from mllc.observe import dvclock
from mllc.observe.world import model_md5_from_lock
from mllc.preview.worktree import isolated
from mllc.registry import (
    Registration,
    assignments_elsewhere,
    list_versions,
    registration,
)
from mllc.saferead import RefusedRead, json_object, read_bytes
from mllc.spec.yamlsafe import YamlProblem
from mllc.verify import compare, restore
from mllc.verify.model import Finding, Input, StageCheck, VerifyReport, VersionCheck

Progress = Callable[[str], None]
RECORDS = STATE / "verify"
WARNING = (
    "mllc verify RUNS the specs' training code (every stage, from each version's tag), in an "
    "isolated worktree: nothing is committed, tagged or deployed."
)


class VerifyError(MllcError):
    message = "verify failed"


def record_path(name: str, version: str) -> Path:
    """Where the last verdict on ``name`` ``version`` is kept (repository-relative)."""
    return RECORDS / name / f"{version}.json"


def targets(root: Path, wanted: Sequence[str], every: bool) -> list[Registration]:
    """The registrations ``NAME@vX.Y.Z``, ``NAME`` (each of its versions) or ``--all`` name."""
    if every and wanted:
        raise VerifyError("give versions to verify or --all, not both")
    if every:
        found = [registration(root, v.name, v.version) for v in list_versions(root)]
        regs = [r for r in found if r is not None]
        if not regs:
            raise VerifyError("nothing to verify: the registry has no versions")
        return regs
    if not wanted:
        raise VerifyError("name what to verify: NAME@vX.Y.Z, NAME (every version) or --all")
    regs = []
    for item in wanted:
        name, _, version = item.partition("@")
        known = [v.version for v in list_versions(root, name)]
        if not version:
            if not known:
                raise VerifyError(f"{name} has no registered version")
            chosen = known
        elif version in known:
            chosen = [version]
        else:
            listed = ", ".join(known) if known else "none"
            raise VerifyError(f"{item} is not registered (registered versions of {name}: {listed})")
        for v in chosen:
            reg = registration(root, name, v)
            if reg is not None and reg not in regs:
                regs.append(reg)
    return sorted(regs, key=lambda r: (r.name, semver.sort_key(r.version)))


def _tracked(root: Path, commit: str, folder: str) -> set[str]:
    listed = gitcmd.git(root, "ls-tree", "-r", "-z", "--name-only", commit, "--", folder)
    return set(filter(None, listed.split("\0")))


def _lock(text: bytes | None) -> tuple[Any, str | None]:
    if text is None:
        return None, "the commit has no dvc.lock"
    try:
        return dvclock.check(text.decode("utf-8", "replace"))
    except YamlProblem as problem:
        return None, problem.message


def _read(where: Path, rel: str) -> bytes | None:
    try:
        return read_bytes(where / rel, where)
    except (OSError, RefusedRead):
        return None


class _Check:
    """The evidence gathered on one version, turned into a :class:`VersionCheck`."""

    def __init__(self, reg: Registration) -> None:
        self.reg = reg
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.inputs: list[Input] = []
        self.stages: tuple[StageCheck, ...] = ()
        self.lock_md5: str | None = None
        self.rebuilt_md5: str | None = None
        self.cache_checked = 0
        self.cache_absent: tuple[str, ...] = ()
        self.unverifiable = False

    def result(self, seconds: float) -> VersionCheck:
        reg = self.reg
        findings = [*self.findings, *(f for s in self.stages for f in s.findings)]
        findings += compare.check_model(reg.model_md5 or "", self.lock_md5, self.rebuilt_md5)
        outcome = (
            "failed"
            if findings
            else "unverifiable"
            if self.unverifiable or self.rebuilt_md5 is None
            else "verified"
        )
        return VersionCheck(
            name=reg.name,
            version=reg.version,
            tag=reg.tag,
            commit=reg.commit,
            outcome=outcome,
            registry_md5=reg.model_md5 or "",
            lock_md5=self.lock_md5,
            rebuilt_md5=self.rebuilt_md5,
            inputs=tuple(self.inputs),
            stages=self.stages,
            cache_checked=self.cache_checked,
            cache_absent=self.cache_absent,
            findings=tuple(findings),
            notes=tuple(self.notes),
            seconds=round(seconds, 3),
        )


def _restore_inputs(
    root: Path, where: Path, check: _Check, deadline: float | None, progress: Progress
) -> bool:
    """Put every DVC-tracked input of the commit into the worktree, hash checked; fetch
    what the cache lacks through DVC when a remote is configured. False when one is
    missing or corrupt (the version cannot be rebuilt here)."""
    found, problems = restore.pointers(where)
    for problem in problems:
        check.findings.append(
            Finding(check="input", subject=problem.split(":", 1)[0], detail=problem)
        )
    states = [(p, restore.restore(root, where, p)) for p in found]
    absent = [p for p, state in states if state == "absent"]
    fetched: set[str] = set()
    if absent and restore.remote_configured(root):
        progress(
            f"    fetching {len(absent)} input(s) through DVC: {', '.join(p.path for p in absent)}"
        )
        # The remotes are the checkout's as they are now (the version's commit may predate
        # them), and the worktree's DVC points at the main cache (isolated() set it): the
        # fetch fills the main cache; the copy into the worktree checks every hash.
        config, local = where / ".dvc" / "config", where / ".dvc" / "config.local"
        committed, own = config.read_bytes(), local.read_text(encoding="utf-8")
        config.write_bytes(read_bytes(root / ".dvc" / "config", root) or b"")
        local.write_text(own + restore.local_config_without_cache(root), encoding="utf-8")
        pointer_files = sorted({p.pointer for p in absent})
        lines: list[str] = []
        try:
            stream_dvc(where, ["fetch", *pointer_files], lambda _at, ln: lines.append(ln), deadline)
        except TimedOut:
            raise VerifyError("verify stopped by --timeout while fetching inputs") from None
        finally:
            config.write_bytes(committed)
            local.write_text(own, encoding="utf-8")
        retried = [(p, restore.restore(root, where, p)) for p in absent]
        fetched = {p.path for p, state in retried if state == "intact"}
        states = [(p, s) for p, s in states if s != "absent"] + retried
    ok = True
    for pointer, state in sorted(states, key=lambda item: item[0].path):
        source: Literal["cache", "remote", "missing", "corrupt"] = (
            "remote"
            if pointer.path in fetched
            else "cache"
            if state == "intact"
            else "missing"
            if state == "absent"
            else "corrupt"
        )
        check.inputs.append(Input(path=pointer.path, md5=pointer.md5, source=source))
        if state == "corrupt":
            ok = False
            check.findings.append(
                Finding(
                    check="cache",
                    subject=pointer.path,
                    detail=f"the DVC cache's copy of this input was replaced: it no longer "
                    f"hashes to {pointer.md5} (as {pointer.pointer} records)",
                )
            )
        elif state == "absent":
            ok = False
            check.unverifiable = True
            where_else = (
                "nor on the DVC remote"
                if restore.remote_configured(root)
                else "and no DVC remote is configured (dvc remote add)"
            )
            check.notes.append(
                f"unverifiable: input {pointer.path} (md5 {pointer.md5}, {pointer.pointer}) "
                f"is not in the local DVC cache {where_else}"
            )
    return ok and not problems


def _rebuild(
    root: Path,
    check: _Check,
    recorded: Any,
    tracked: set[str],
    env: dict[str, str],
    deadline: float | None,
    progress: Progress,
) -> None:
    reg = check.reg
    layout = Layout(reg.name)
    with isolated(root, [], commit=reg.commit, prefix="mllc-verify-") as where:
        if not _restore_inputs(root, where, check, deadline, progress):
            return
        # An empty cache of the worktree's own (.dvc/cache, removed with it): no output
        # and no run-cache entry of the main cache can stand in for a recomputation.
        # (Named explicitly: a cache.dir in the commit's own .dvc/config is overridden.)
        (where / ".dvc" / "config.local").write_text(
            "[cache]\n    dir = cache\n" + restore.local_config_without_cache(root),
            encoding="utf-8",
        )
        committed = {path: _read(where, path) for path in tracked}
        lines: list[str] = []

        def line(_at: float, text: str) -> None:
            lines.append(text)
            if text.startswith(("Running stage", "ERROR")):
                progress(f"    {reg.name}@{reg.version}: {text}")

        target = layout.dvc_yaml.as_posix()
        try:
            code = stream_dvc(where, ["repro", "--force", target], line, deadline, env)
        except TimedOut:
            raise VerifyError(
                f"verify stopped by --timeout: {reg.tag} was still rebuilding; it was killed, "
                "with every process it started, and its worktree removed"
            ) from None
        if code != 0:
            tail = "\n".join(t for t in lines[-15:] if t.strip())
            check.findings.append(
                Finding(
                    check="stage",
                    subject=target,
                    detail=f"the pipeline at the commit does not rebuild: dvc repro exited "
                    f"{code}:\n{tail}",
                )
            )
            return
        rebuilt, problem = _lock(_read(where, layout.dvc_lock.as_posix()))
        if rebuilt is None:
            check.findings.append(
                Finding(
                    check="stage",
                    subject=layout.dvc_lock.as_posix(),
                    detail=f"the rebuild's lock: {problem}",
                )
            )
            return
        check.rebuilt_md5 = model_md5_from_lock(rebuilt, reg.name)
        texts = {path: (committed[path], _read(where, path)) for path in tracked}
        lineage = json_object(_read(where, layout.lineage.as_posix()))
        payload = reg.payload or {}
        findings, notes = compare.check_payload(
            payload, json_object(_read(where, layout.metrics.as_posix())), lineage
        )
        check.findings += findings
        check.notes += notes
        # lineage.json records the libraries that built it: when only they differ (a
        # note above), its hash differs for that reason alone.
        tolerated = (
            frozenset({layout.lineage.as_posix()}) if notes and not findings else frozenset()
        )
        check.stages = compare.compare_stages(recorded, rebuilt, texts, tolerated)


def verify_version(
    root: Path, reg: Registration, env: dict[str, str], deadline: float | None, progress: Progress
) -> VersionCheck:
    started = time.monotonic()
    check = _Check(reg)
    layout = Layout(reg.name)
    progress(f"{reg.tag}: rebuilding from commit {reg.commit[:10]}, every stage recomputed")
    check.findings += compare.check_tag(
        reg.tag,
        reg.commit,
        reg.payload or {},
        assignments_elsewhere(root, reg.name, reg.version, reg.commit),
    )
    recorded, problem = _lock(gitcmd.file_at(root, reg.commit, layout.dvc_lock.as_posix()))
    if recorded is None:
        check.findings.append(
            Finding(
                check="lock",
                subject=layout.dvc_lock.as_posix(),
                detail=f"at {reg.commit[:12]}: {problem}",
            )
        )
        return check.result(time.monotonic() - started)
    check.lock_md5 = model_md5_from_lock(recorded, reg.name)
    tracked = _tracked(root, reg.commit, layout.root.as_posix())
    cached = sorted(
        (path, entry.md5)
        for path, (_stage, entry) in compare.outputs(recorded).items()
        if path not in tracked and entry.md5 is not None
    )
    check.cache_checked, absent, findings = restore.audit(root, cached)
    if absent and default_remote(root) is not None:  # another clone: audit the remote's copy
        progress(f"    fetching {len(absent)} output(s) through DVC: {', '.join(absent)}")
        fetch(root, [md5 for path, md5 in cached if path in absent], what="outputs from")
        check.cache_checked, absent, findings = restore.audit(root, cached)
    check.cache_absent = tuple(absent)
    check.findings += findings
    _rebuild(root, check, recorded, tracked, env, deadline, progress)
    return check.result(time.monotonic() - started)


def _record(root: Path, result: VersionCheck) -> None:
    summary = (
        "bit-identical rebuild; every record matches"
        if result.outcome == "verified"
        else "; ".join([f"{f.subject}: {f.detail}" for f in result.findings] + list(result.notes))[
            :2000
        ]
    )
    write_text(
        root / record_path(result.name, result.version),
        json.dumps(
            {
                "name": result.name,
                "version": result.version,
                "commit": result.commit,
                "model_md5": result.registry_md5,
                "verified": result.outcome == "verified",
                "outcome": result.outcome,
                "checked_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "summary": summary,
                "mllc_version": __version__,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n",
    )


def verify(
    root: Path,
    wanted: Sequence[str],
    every: bool = False,
    timeout: float | None = None,
    progress: Progress = lambda _line: None,
) -> VerifyReport:
    deadline = None if timeout is None else time.monotonic() + timeout
    regs = targets(root, wanted, every)
    results = []
    with stage_runner() as env:
        for reg in regs:
            result = verify_version(root, reg, env, deadline, progress)
            _record(root, result)
            results.append(result)
    return VerifyReport(mllc_version=__version__, versions=tuple(results))
