"""Crash safety of ``mllc apply``: SIGKILL it at every journaled step, at Git ref updates
and at points inside DVC's run; each time the repo stays valid and the next apply
converges to the end state of an uninterrupted apply, repeating at most the
interrupted step.

How the kill points are reached:

* ``journal``: the test polls ``.mllc/journal.jsonl`` every 5 ms and kills apply right
  after the step's ``start`` entry appears (``iris/files``, ``iris/pipeline``,
  ``iris/commit``, ``iris/register``).
* ``hook``: a ``reference-transaction`` hook kills apply when Git is about to move
  (``prepared``, then the hook aborts the update) or has just moved (``committed``)
  HEAD or the ``iris@`` tag: exactly before and after the compare-and-swap of the
  commit and the tag, deterministically.
* ``stage``: kill while stage S's own ``mllc stage`` process runs (DVC printed
  ``Running stage`` for S and its command is running); ``output``: kill as soon as a
  stage output file appears (written, not yet recorded by DVC); ``cached``: kill while
  DVC checks a stage's outputs out of its run cache.
* ``DVC's own writes``: DVC runs under a test-only ``sitecustomize`` (``DVC_WRITE_HOOK``)
  that SIGKILLs apply, then DVC, inside DVC's Nth write of a file: right after the open
  truncated it, or with half of its content on disk. Every write of ``dvc.lock`` (one
  per stage), DVC's rwlock, a ``.gitignore`` append, a cache object, a checked-out
  output. Every byte at which a ``dvc.lock`` write can stop is covered without a kill
  (``test_a_lock_cut_at_any_byte_is_rebuilt_from_what_dvc_finished``).

Speed: a cold ``dvc repro`` costs ~20 s here (each stage is a Python start-up that
imports scikit-learn), so scenarios start with a copy of the reference run's DVC cache
(content-addressed, it changes no result). For a ``stage``/``output`` kill point the
run-cache entry of that stage is left out, so DVC restores the stages before it and
really runs it; the entry is put back before the recovering apply. The end state is
compared with the reference (one uninterrupted apply of the same fresh repo): same
HEAD tree, same commit count, same ``iris@v1.0.0`` tag and model hash.

Regression tests near the end cover what once broke: a stage or DVC outliving a killed
apply, a dead DVC's rwlock entries blocking the next apply, and a dvc.lock (or rwlock)
left empty or cut short by a kill inside DVC's own write blocking every later apply.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from helpers_repo import (
    DVC_LOCK,
    GENERATED,
    MODEL,
    NAME,
    PIPE,
    STAGES,
    Applied,
    applied_repo,
    assert_registered,
    copy_repo,
    dvc,
    edit_spec,
    env,
    executed_stages,
    fresh_repo,
    git,
    head,
    journal_entries,
    lock_id_from,
    lock_model_md5,
    lock_stages,
    md5_file,
    mllc,
    mllc_popen,
    processes_in,
    read_lock_file,
    run,
    running_stages,
    set_gate,
    set_param,
    status_porcelain,
    tags,
    wait_until_gone,
)

from mllc.observe import dvclock

pytestmark = pytest.mark.slow

POLL = 0.005  # seconds between looks at the journal, the output and the files
KILL_POINT_TIMEOUT = 120.0


# -------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Applied:
    return applied_repo(tmp_path_factory)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_repo(tmp_path_factory)


def _run_cache_entries(repo: Path) -> dict[Path, str]:
    """Run-cache entry file -> the stage it records (``train@logreg``...)."""
    found = {}
    runs = repo / ".dvc" / "cache" / "runs"
    for entry in runs.rglob("*") if runs.is_dir() else []:
        if not entry.is_file():
            continue
        cmd = str((yaml.safe_load(entry.read_text(encoding="utf-8")) or {}).get("cmd", ""))
        words = cmd.split()  # mllc stage NAME LIFECYCLE [CANDIDATE]
        if words[:2] == ["mllc", "stage"] and len(words) >= 4:
            found[entry] = words[2] + (f"@{words[4]}" if len(words) > 4 else "")
    return found


def warm_copy(fresh: Path, reference: Applied, dst: Path, uncached: tuple[str, ...] = ()) -> Path:
    """A copy of the fresh repo with the reference's DVC cache, minus ``uncached`` stages."""
    copy_repo(fresh, dst)
    shutil.copytree(reference.repo / ".dvc" / "cache", dst / ".dvc" / "cache", dirs_exist_ok=True)
    entries = _run_cache_entries(dst)
    for stage in uncached:
        matching = [e for e, s in entries.items() if s == stage]
        if stage != "select":  # select writes uncached outputs: DVC never run-caches it
            assert matching, f"no run-cache entry for {stage}: {sorted(entries.values())}"
        for entry in matching:
            shutil.rmtree(entry.parent)
    return dst


def restore_cache(repo: Path, reference: Applied) -> None:
    shutil.copytree(reference.repo / ".dvc" / "cache", repo / ".dvc" / "cache", dirs_exist_ok=True)


@pytest.fixture(scope="module")
def built(fresh: Path, reference: Applied, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated files written and the pipeline run, nothing committed or registered:
    the state an apply reaches right before its commit step (read-only)."""
    repo = warm_copy(fresh, reference, tmp_path_factory.mktemp("built") / "repo")
    mllc("compile", cwd=repo)
    dvc("repro", f"{PIPE}/dvc.yaml", cwd=repo)
    assert lock_model_md5(repo) == reference.model_md5
    plan = json.loads(mllc("plan", "--json", cwd=repo).stdout)
    # compile also wrote the CI workflow, which apply commits too
    workflow = "(repository)/file/.github/workflows/mllc.yml"
    assert [c["address"] for c in plan["changes"]] == [f"{NAME}/model", workflow]
    return repo


# --------------------------------------------------------------------- killing apply


class Output:
    """Collects a pipe's lines in a thread."""

    def __init__(self, pipe: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: Any) -> None:
        for line in pipe:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def join(self) -> None:
        self._thread.join(timeout=30)


@dataclass
class Killed:
    repo: Path
    pid: int
    point: str
    stdout: str
    stderr: str
    entries: list[dict[str, Any]]  # the killed apply's journal entries
    survivors: list[tuple[int, str]]  # processes still working in the repo after the kill
    completed: set[str] = field(default_factory=set)  # stages in dvc.lock once all stopped

    @property
    def done_steps(self) -> set[str]:
        return {e["step"] for e in self.entries if e["event"] == "done"}

    def describe(self) -> str:
        steps = [(e["step"], e["event"]) for e in self.entries]
        return f"killed at {self.point}; journal {steps}; survivors {self.survivors}"


Trigger = Callable[[Path, Output, int], bool]  # (repo, stdout, journal lines before) -> kill now


def on_journal_start(step: str) -> Trigger:
    def ready(repo: Path, out: Output, skip: int) -> bool:
        return any(
            e.get("step") == step and e.get("event") == "start"
            for e in journal_entries(repo)[skip:]
        )

    return ready


def _stage_argv(stage: str) -> str:
    name, _, candidate = stage.partition("@")
    return f"mllc stage {name} {NAME}" + (f" {candidate}" if candidate else "")


def inside_stage(stage: str) -> Trigger:
    """DVC announced the stage and its command is running."""

    def ready(repo: Path, out: Output, skip: int) -> bool:
        if f":{stage}'" not in "".join(line for line in out.lines if "Running stage" in line):
            return False
        return any(_stage_argv(stage) in cmd for _, cmd in processes_in(repo))

    return ready


def on_output(path: str) -> Trigger:
    def ready(repo: Path, out: Output, skip: int) -> bool:
        return (repo / path).exists()

    return ready


def on_cached(stage: str) -> Trigger:
    def ready(repo: Path, out: Output, skip: int) -> bool:
        return any(f":{stage}' is cached" in line for line in out.lines)

    return ready


def by_hook(repo: Path, state: str, ref_pattern: str) -> Trigger:
    """Install a reference-transaction hook that SIGKILLs apply at that ref update.

    In the ``prepared`` state the hook also aborts the update (as if apply had been
    killed just before it); in ``committed`` the ref has moved.
    """
    pidfile = repo / ".git" / "kill-apply.pid"
    hook = repo / ".git" / "hooks" / "reference-transaction"
    code = 1 if state == "prepared" else 0
    hook.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = "{state}" ] || {{ cat >/dev/null; exit 0; }}\n'
        f'[ -f "{pidfile}" ] || {{ cat >/dev/null; exit 0; }}\n'
        f"if grep -q -E '{ref_pattern}'; then\n"
        f'  pid=$(cat "{pidfile}"); rm -f "{pidfile}"\n'
        '  kill -9 "$pid"\n'
        f"  exit {code}\n"
        "fi\n"
        "exit 0\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)

    def ready(repo: Path, out: Output, skip: int) -> bool:
        return False  # the hook kills apply; nothing to do but wait

    ready.pidfile = pidfile  # type: ignore[attr-defined]
    ready.hook = hook  # type: ignore[attr-defined]
    return ready


def kill_apply(
    repo: Path, point: str, trigger: Trigger, extra_env: dict[str, str] | None = None
) -> Killed:
    skip = len(journal_entries(repo))
    proc = mllc_popen("apply", "--auto-approve", cwd=repo, extra_env=extra_env)
    out, err = Output(proc.stdout), Output(proc.stderr)
    pidfile = getattr(trigger, "pidfile", None)
    if pidfile is not None:
        pidfile.write_text(str(proc.pid), encoding="utf-8")
    deadline = time.monotonic() + KILL_POINT_TIMEOUT
    try:
        while proc.poll() is None:
            if trigger(repo, out, skip):
                os.kill(proc.pid, signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"kill point {point} not reached in time:\n{out.text}")
            time.sleep(POLL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out.join()
    err.join()
    if proc.returncode != -signal.SIGKILL:
        raise AssertionError(
            f"apply was not killed at {point} (exit {proc.returncode}): the kill point was "
            f"never reached\n{out.text}\n{err.text}"
        )
    hook = getattr(trigger, "hook", None)
    if hook is not None:
        hook.unlink()
        assert not pidfile.exists(), "the hook did not fire"
    survivors = dvc_survivors(repo)
    wait_until_gone(repo)  # orphans (e.g. a stage's own process) finish on their own
    # This machine's PID 1 reaps orphans late; until then the dead DVC is a zombie that
    # DVC's rwlock takes for alive (see test_recovery_is_not_blocked_by_the_dead_dvc).
    # Let the environment settle first.
    deadline = time.monotonic() + 30
    while any(_zombie(pid) for pid in _rwlock_pids(repo)) and time.monotonic() < deadline:
        time.sleep(0.05)
    entries = journal_entries(repo)[skip:]
    completed = lock_stages(repo) if dvclock.lock_problem(_lock_text(repo)) is None else set()
    return Killed(repo, proc.pid, point, out.text, err.text, entries, survivors, completed)


def dvc_survivors(repo: Path, grace: float = 10.0) -> list[tuple[int, str]]:
    """DVC processes still working in ``repo`` once they had ``grace`` seconds to die.

    PR_SET_PDEATHSIG is sent the moment apply dies, but on a loaded machine a killed
    process can take a while to be scheduled and exit: wait for that event (returning as
    soon as DVC is gone) instead of looking once after a fixed sleep. A DVC that really
    outlived apply runs on for the rest of the pipeline, and its writes to dvc.lock are
    caught by the convergence checks as well."""
    deadline = time.monotonic() + grace
    while True:
        alive = [(pid, cmd) for pid, cmd in processes_in(repo) if " dvc " in f" {cmd} "]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(POLL)


def _lock_text(repo: Path) -> str:
    path = repo / DVC_LOCK
    return path.read_bytes().decode("utf-8", "replace") if path.exists() else "schema: '2.0'\n"


# ---------------------------------------------------------------------------- checks


def assert_valid_after_kill(killed: Killed, old: dict[str, str | None], new: dict[str, str]):
    repo = killed.repo
    why = killed.describe()
    assert not (repo / ".git" / "index.lock").exists(), why
    ref_locks = [p for p in (repo / ".git").rglob("*.lock") if p.is_file()]
    assert not ref_locks, f"{why}: Git lock files left: {ref_locks}"
    fsck = run(["git", "fsck", "--no-progress"], repo, check=False)
    assert fsck.returncode == 0, f"{why}: git fsck: {fsck.stdout}{fsck.stderr}"
    assert run(["git", "status", "--porcelain"], repo, check=False).returncode == 0, why
    read_lock_file(repo)  # parses as a YAML mapping when present
    for path in GENERATED:
        file = repo / path
        text = file.read_text(encoding="utf-8") if file.exists() else None
        assert text in (None, old.get(path), new[path]), f"{why}: {path} is half-written"
    for path in (f"{PIPE}/metrics.json", f"{PIPE}/lineage.json"):
        if (repo / path).exists():
            json.loads((repo / path).read_text(encoding="utf-8"))


def _rwlock_pids(repo: Path) -> set[int]:
    rwlock = repo / ".dvc" / "tmp" / "rwlock"
    text = rwlock.read_text(encoding="utf-8") if rwlock.exists() else ""
    return {int(pid) for pid in re.findall(r'"pid": (\d+)', text)}


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _blocked_by_a_dead_dvc(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """Blockers DVC names that are not running DVC processes (zombies, reused pids)."""
    output = proc.stdout + proc.stderr
    if "is being blocked by" not in output:
        return []
    dead = []
    for pid in map(int, re.findall(r"\(PID (\d+)\)", output)):
        try:
            process = psutil.Process(pid)
            cmd = " ".join(process.cmdline())
            if process.status() == psutil.STATUS_ZOMBIE or " dvc " not in f" {cmd} ":
                dead.append(f"{pid}: {process.status()} {cmd}")
        except psutil.Error:
            continue
    return dead


def recover(killed: Killed) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``mllc apply --auto-approve`` again the way a person would: a stale lock is
    reported naming the killed apply, then force-unlocked by its id."""
    repo, notes = killed.repo, []
    proc = mllc("apply", "--auto-approve", cwd=repo, check=False)
    if proc.returncode == 1 and "stale lock" in proc.stderr:
        assert f"pid {killed.pid}" in proc.stderr, proc.stderr
        mllc("force-unlock", lock_id_from(proc.stderr), cwd=repo)
        notes.append("stale lock reported and force-unlocked")
        proc = mllc("apply", "--auto-approve", cwd=repo, check=False)
    assert proc.returncode == 0, f"{killed.describe()}\n{proc.stdout}\n{proc.stderr}"
    lock = repo / ".mllc" / "lock"
    if lock.exists():
        # The recovering apply found nothing to do and so never looked at the lock.
        held = json.loads(lock.read_text(encoding="utf-8"))
        assert held["pid"] == killed.pid, held
        mllc("force-unlock", held["id"], cwd=repo)
        notes.append("lock left by the killed apply, unnoticed by a no-change apply")
    return proc, notes


def assert_repeated_at_most_the_interrupted_step(
    killed: Killed, recovery: subprocess.CompletedProcess[str]
) -> None:
    why = killed.describe()
    again = executed_stages(recovery.stdout)
    assert not again & killed.completed, (
        f"{why}: stages recorded in dvc.lock at the kill ran again: {again & killed.completed}"
    )
    later = [
        e
        for e in journal_entries(killed.repo)
        if e["apply"] not in {x["apply"] for x in killed.entries}
    ]
    later_steps = {e["step"] for e in later}
    latest: dict[str, str] = {}
    for entry in killed.entries:
        latest[entry["step"]] = entry["event"]
    interrupted = [step for step, event in latest.items() if event == "start"]
    if interrupted and later:  # the recovering apply had work, so it read the journal
        assert "was interrupted during: " + ", ".join(interrupted) in recovery.stdout, (
            f"{why}: the recovering apply does not say what was interrupted:\n{recovery.stdout}"
        )
    if f"{NAME}/pipeline" in killed.done_steps:
        assert f"{NAME}/pipeline" not in later_steps and not again, why
    if f"{NAME}/register" in killed.done_steps:
        assert f"{NAME}/register" not in later_steps, why
    first_commit = next(
        (
            e["detail"].get("commit")
            for e in killed.entries
            if e["step"] == f"{NAME}/commit" and e["event"] == "done"
        ),
        None,
    )
    if first_commit:
        recommits = [
            e["detail"].get("commit")
            for e in later
            if e["step"] == f"{NAME}/commit" and e["event"] == "done"
        ]
        assert not any(recommits), f"{why}: committed again: {recommits}"


def assert_converged(repo: Path, reference: Applied, why: str) -> None:
    assert tags(repo) == {"iris@v1.0.0"}, why
    assert reference.model_md5
    assert_registered(repo, "v1.0.0", at=head(repo), md5=reference.model_md5)
    assert lock_model_md5(repo) == reference.model_md5, why
    assert md5_file(repo / MODEL) == reference.model_md5, why
    assert git("rev-parse", "HEAD^{tree}", cwd=repo) == reference.tree, why
    assert int(git("rev-list", "--count", "HEAD", cwd=repo)) == reference.commits, why
    plan = mllc("plan", "--detailed-exitcode", cwd=repo, check=False)
    assert plan.returncode == 0, f"{why}\n{plan.stdout}{plan.stderr}"
    assert status_porcelain(repo) == "", why
    assert not (repo / ".mllc" / "lock").exists(), why


def crash_and_converge(
    repo: Path, point: str, trigger: Trigger, reference: Applied, old: dict[str, str | None]
) -> Killed:
    killed = kill_apply(repo, point, trigger)
    assert_valid_after_kill(killed, old, reference.files)
    dvc_alive = [(pid, cmd) for pid, cmd in killed.survivors if " dvc " in f" {cmd} "]
    assert not dvc_alive, f"{killed.describe()}: DVC outlived apply: {dvc_alive}"
    restore_cache(repo, reference)
    recovery, notes = recover(killed)
    print(f"{killed.describe()}; recovery: {notes or 'plain rerun'}")
    assert not _write_temps(repo), "a killed write's temp file survived the next apply"
    assert_repeated_at_most_the_interrupted_step(killed, recovery)
    assert_converged(repo, reference, killed.describe())
    return killed


# ------------------------------------------------------------------------- scenarios

NO_FILES: dict[str, str | None] = {}


@pytest.mark.parametrize("step", ["files", "pipeline", "commit", "register"])
def test_kill_at_each_journaled_step(
    step: str, fresh: Path, reference: Applied, tmp_path: Path
) -> None:
    repo = warm_copy(fresh, reference, tmp_path / "repo")
    killed = crash_and_converge(
        repo,
        f"journal {NAME}/{step} start",
        on_journal_start(f"{NAME}/{step}"),
        reference,
        NO_FILES,
    )
    started = [e["step"] for e in killed.entries if e["event"] == "start"]
    assert f"{NAME}/{step}" in started, killed.describe()


HEAD_REFS = r" (HEAD|refs/heads/[^ ]+)$"
TAG_REFS = r" refs/tags/iris@v"


@pytest.mark.parametrize(
    ("point", "state", "refs"),
    [
        ("commit: before HEAD moves", "prepared", HEAD_REFS),
        ("commit: HEAD moved, index not yet re-synced", "committed", HEAD_REFS),
        ("register: before the tag exists", "prepared", TAG_REFS),
        ("register: tag created, step not journaled done", "committed", TAG_REFS),
    ],
)
def test_kill_at_git_ref_updates(
    point: str, state: str, refs: str, built: Path, reference: Applied, tmp_path: Path
) -> None:
    repo = copy_repo(built, tmp_path / "repo")
    files = {p: (repo / p).read_text(encoding="utf-8") for p in GENERATED}
    killed = crash_and_converge(repo, point, by_hook(repo, state, refs), reference, files)
    if state == "prepared" and refs == HEAD_REFS:
        assert killed.entries[-1]["step"] == f"{NAME}/commit"


@pytest.mark.parametrize("stage", ["prepare", "split", "train@logreg", "train@forest", "evaluate"])
def test_kill_inside_a_running_stage(
    stage: str, fresh: Path, reference: Applied, tmp_path: Path
) -> None:
    """Stage N of the pipeline is running (stages 1..N-1 are done and recorded)."""
    repo = warm_copy(fresh, reference, tmp_path / "repo", uncached=(stage,))
    killed = crash_and_converge(repo, f"inside {stage}", inside_stage(stage), reference, NO_FILES)
    assert killed.completed == set(STAGES[: STAGES.index(stage)]), killed.describe()


@pytest.mark.parametrize(
    ("path", "stage"),
    [(f"{PIPE}/data/clean.parquet", "prepare"), (MODEL, "select")],
)
def test_kill_when_a_stage_output_appears(
    path: str, stage: str, fresh: Path, reference: Applied, tmp_path: Path
) -> None:
    """The stage wrote an output; DVC has not recorded the stage yet."""
    repo = warm_copy(fresh, reference, tmp_path / "repo", uncached=(stage,))
    killed = crash_and_converge(repo, f"{path} appeared", on_output(path), reference, NO_FILES)
    assert stage not in killed.completed, killed.describe()


def test_kill_while_dvc_checks_out_from_its_run_cache(
    fresh: Path, reference: Applied, tmp_path: Path
) -> None:
    repo = warm_copy(fresh, reference, tmp_path / "repo")
    crash_and_converge(repo, "split restored from cache", on_cached("split"), reference, NO_FILES)


# ------------------------------------------------------------------------ regressions


# DVC runs a stage's command with $SHELL -c. bash execs the command, so the stage is
# DVC's child; dash (often /bin/sh) does not, and the shell in between outlives a
# killed DVC, keeping the stage's parent alive: the stage must watch the apply itself.
SHELLS = list({Path(s).resolve(): s for s in ("/bin/bash", "/bin/sh") if Path(s).exists()}.values())


@pytest.mark.parametrize("shell", SHELLS)
def test_no_stage_process_outlives_a_killed_apply(
    fresh: Path, reference: Applied, tmp_path: Path, shell: str
) -> None:
    repo = warm_copy(fresh, reference, tmp_path / "repo", uncached=("train@forest",))
    skip = len(journal_entries(repo))
    proc = mllc_popen("apply", "--auto-approve", cwd=repo, extra_env={"SHELL": shell})
    out, _err = Output(proc.stdout), Output(proc.stderr)
    trigger = inside_stage("train@forest")
    try:
        deadline = time.monotonic() + KILL_POINT_TIMEOUT
        while not trigger(repo, out, skip):
            assert proc.poll() is None and time.monotonic() < deadline, out.text
            time.sleep(POLL)
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.time()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        wait_until_gone(repo)  # the event: every process working in the repo has ended
    # A stage left running on alone finishes its training and writes its outputs after
    # the kill; a stage that died with apply wrote nothing more. (Judged by what was
    # written, not by a look at the process table after a fixed sleep, so a loaded
    # machine that is slow to end the stage cannot fail the test.)
    late = sorted(
        str(p.relative_to(repo))
        for p in (repo / PIPE).rglob("*")
        if p.is_file() and p.stat().st_mtime >= killed_at
    )
    assert late == [], f"written after apply was killed, by a stage that outlived it: {late}"


def test_dvc_started_just_before_apply_dies_does_not_outlive_it(
    fresh: Path, reference: Applied, tmp_path: Path
) -> None:
    """The fork-to-prctl window, made wide enough to hit every time: the child sleeps
    0.5 s before arming mllc's die-with-parent signal, and its parent is killed meanwhile."""
    repo = warm_copy(fresh, reference, tmp_path / "repo")
    mllc("compile", cwd=repo)  # dvc repro has work to do: it runs for seconds
    code = (
        "import time\n"
        "from pathlib import Path\n"
        "import mllc.apply.dvc as run\n"
        "factory = run.preexec_die_with_parent\n"
        "def slow_factory():\n"
        "    arm = factory()\n"
        "    def slow():\n"
        "        time.sleep(0.5)\n"
        "        arm()\n"
        "    return slow\n"
        "run.preexec_die_with_parent = slow_factory\n"
        f"run.run_dvc(Path('.'), ['repro', '{PIPE}/dvc.yaml'], print)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=repo, env=env())
    try:
        deadline = time.monotonic() + 60
        while not psutil.Process(parent.pid).children():
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(POLL)
        child = psutil.Process(parent.pid).children()[0]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=60)
        # With the parent gone, the child must die (PR_SET_PDEATHSIG) or exit: it may
        # never become a DVC running on alone. (An orphaned DVC was seen to die about a
        # second later, apparently on its first write to apply's closed pipe.)
        survivors: list[str] = []
        deadline = time.monotonic() + 5
        while child.is_running() and time.monotonic() < deadline:
            try:
                cmd = " ".join(child.cmdline())
            except psutil.Error:
                break
            if child.status() != psutil.STATUS_ZOMBIE and " dvc " in f" {cmd} ":
                survivors.append(f"{child.pid}: {cmd}")
                break
            time.sleep(POLL)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        wait_until_gone(repo)
    assert survivors == [], f"DVC runs on after apply was killed: {survivors}"


@pytest.mark.parametrize("dead_dvc", ["zombie", "reused-pid"])
def test_recovery_is_not_blocked_by_the_dead_dvc(
    dead_dvc: str, fresh: Path, reference: Applied, tmp_path: Path
) -> None:
    """Seen in full runs of this suite (zombie case). Made deterministic: the dead DVC's
    rwlock entries get the pid of a zombie this test keeps unreaped, or of a live
    unrelated process (what pid reuse does)."""
    repo = warm_copy(fresh, reference, tmp_path / "repo", uncached=("train@forest",))
    killed = kill_apply(repo, "inside train@forest", inside_stage("train@forest"))
    rwlock = repo / ".dvc" / "tmp" / "rwlock"
    dead = _rwlock_pids(repo)
    assert dead, "no DVC entries in the rwlock after the kill"
    stand_in = subprocess.Popen(["true"] if dead_dvc == "zombie" else ["sleep", "300"])
    try:
        while dead_dvc == "zombie" and not _zombie(stand_in.pid):
            time.sleep(0.01)  # exited; not waited for, so a zombie
        text = rwlock.read_text(encoding="utf-8")
        for pid in dead:
            text = text.replace(f'"pid": {pid}', f'"pid": {stand_in.pid}')
        rwlock.write_text(text, encoding="utf-8")
        restore_cache(repo, reference)
        proc = mllc("apply", "--auto-approve", cwd=repo, check=False)
        if "stale lock" in proc.stderr:
            mllc("force-unlock", lock_id_from(proc.stderr), cwd=repo)
            proc = mllc("apply", "--auto-approve", cwd=repo, check=False)
    finally:
        stand_in.kill()
        stand_in.wait()
    assert proc.returncode == 0, f"{killed.describe()}\n{proc.stdout}\n{proc.stderr}"
    assert_converged(repo, reference, killed.describe())


@pytest.fixture
def gate_changed(reference: Applied, tmp_path: Path) -> Path:
    """The applied repo with a stricter gate committed: apply only writes and commits."""
    repo = copy_repo(reference.repo, tmp_path / "repo")
    edit_spec(repo, set_gate("accuracy >= 0.9", "accuracy >= 0.95"), commit="stricter gate")
    return repo


def _converged_commit_only(repo: Path, gate_commit: str, why: str) -> None:
    assert git("rev-parse", "HEAD~1", cwd=repo) == gate_commit, f"{why}: not committed"
    assert "accuracy >= 0.95" in git("show", f"HEAD:{PIPE}/lifecycle.yaml", cwd=repo), why
    assert status_porcelain(repo) == "", f"{why}: git status:\n{status_porcelain(repo)}"
    assert mllc("plan", "--detailed-exitcode", cwd=repo, check=False).returncode == 0, why


def test_commit_only_apply_killed_before_head_moves_converges(gate_changed: Path) -> None:
    repo = gate_changed
    gate_commit = head(repo)
    killed = kill_apply(repo, "commit: before HEAD moves", by_hook(repo, "prepared", HEAD_REFS))
    assert head(repo) == gate_commit
    recover(killed)
    _converged_commit_only(repo, gate_commit, killed.describe())


def test_commit_only_apply_killed_after_head_moved_converges(gate_changed: Path) -> None:
    repo = gate_changed
    gate_commit = head(repo)
    killed = kill_apply(
        repo, "commit: HEAD moved, index not re-synced", by_hook(repo, "committed", HEAD_REFS)
    )
    assert git("rev-parse", "HEAD~1", cwd=repo) == gate_commit
    recover(killed)
    _converged_commit_only(repo, gate_commit, killed.describe())


def _write_temps(repo: Path) -> list[str]:
    """Temp files of generated files' atomic writes, in the work tree or in HEAD."""
    names = tuple(Path(p).name for p in GENERATED)
    found = {
        f"{PIPE}/{f.name}"
        for f in (repo / PIPE).glob(".*")
        if f.is_file() and f.name.startswith(tuple(f".{n}." for n in names))
    }
    for path in git("ls-tree", "-r", "--name-only", "HEAD", "--", PIPE, cwd=repo).split():
        if Path(path).name.startswith(tuple(f".{n}." for n in names)):
            found.add(f"{path} (committed)")
    return sorted(found)


def test_kill_inside_a_generated_file_write_leaves_nothing_behind(gate_changed: Path) -> None:
    repo = gate_changed
    # SIGKILL exactly between the temp file's fsync and its rename (os.replace), in the
    # function apply's files step writes with
    code = (
        "import os, signal\n"
        "from mllc import api\n"
        "os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        "api.compile(['specs'])\n"
    )
    proc = run([sys.executable, "-c", code], repo, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    mllc("apply", "--auto-approve", cwd=repo)
    assert "accuracy >= 0.95" in git("show", f"HEAD:{PIPE}/lifecycle.yaml", cwd=repo)
    assert _write_temps(repo) == [], "a temp file of a killed write is left or committed"
    assert status_porcelain(repo) == ""


def test_leftover_stage_temp_file_is_never_committed(gate_changed: Path) -> None:
    """The stages' own temp files (``.<name>.<random>.tmp``) are excluded from commits."""
    repo = gate_changed
    leftover = repo / PIPE / "reports" / ".data.json.abc123.tmp"
    leftover.write_text("{", encoding="utf-8")
    mllc("apply", "--auto-approve", cwd=repo)
    committed = git("ls-tree", "-r", "--name-only", "HEAD", "--", PIPE, cwd=repo).split()
    assert not [p for p in committed if p.endswith(".tmp")], committed


def test_reference_is_deterministic(reference: Applied, fresh: Path, tmp_path: Path) -> None:
    """The premise of comparing trees: a second uninterrupted apply gives the same tree."""
    repo = warm_copy(fresh, reference, tmp_path / "repo")
    mllc("apply", "--auto-approve", cwd=repo)
    assert_converged(repo, reference, "uninterrupted apply with a warm cache")
    assert re.search(r"registered iris@v1\.0\.0", reference.proc.stdout)


# ------------------------------------------------------ kills inside DVC's own writes

# DVC rewrites dvc.lock (and its rwlock, and appends to .gitignore files) in place: a
# kill between its truncation and its write leaves the file empty or cut short. To hit
# those points exactly, DVC runs under this sitecustomize (on PYTHONPATH, active only in
# ``python -m dvc``): it counts the files DVC opens for writing and, at the Nth one whose
# path matches, SIGKILLs apply (MLLC_DIE_WITH, set by apply for DVC) and then DVC itself,
# right after the open ("empty") or once half of what DVC wrote to it is on disk ("torn").
DVC_WRITE_HOOK = """
import os, sys
_SPEC = os.environ.get("MLLC_TEST_DVC_WRITE")
if _SPEC and sys.orig_argv[1:3] == ["-m", "dvc"]:
    import builtins, re, signal

    _pattern, _nth, _mode = _SPEC.split("|")
    _open, _seen = builtins.open, [0]

    def _die():
        os.kill(int(os.environ["MLLC_DIE_WITH"]), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    class _Torn:  # holds what DVC writes; on close, writes the first half and dies
        def __init__(self, f):
            self._f, self._held = f, []
        def write(self, data):
            self._held.append(data)
            return len(data)
        def flush(self):
            pass
        def close(self):
            data = self._held[0][:0].join(self._held) if self._held else ""
            if data:
                self._f.write(data[: len(data) // 2])
            self._f.flush()
            _die()
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.close()
        def __getattr__(self, name):
            return getattr(self._f, name)

    def open(file, mode="r", *args, **kwargs):
        f = _open(file, mode, *args, **kwargs)
        if isinstance(file, int) or not any(c in mode for c in "wax+"):
            return f
        if re.search(_pattern, os.path.abspath(os.fsdecode(file))):
            _seen[0] += 1
            if _seen[0] == int(_nth):
                if _mode == "empty":
                    _die()
                return _Torn(f)
        return f

    builtins.open = open
"""

WRITES = {  # what DVC writes during apply's repro, by path
    "dvc.lock": r"/pipelines/iris/dvc\.lock$",
    "rwlock": r"/\.dvc/tmp/rwlock$",
    ".gitignore": r"/pipelines/iris/.*\.gitignore$",
    "cache object": r"/\.dvc/cache/files/.*\.tmp$",
    "checked-out output": r"/pipelines/iris/.*/\.[^/]*\.tmp$",
}


@pytest.fixture(scope="module")
def dvc_write_hook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dvc-write-hook")
    (folder / "sitecustomize.py").write_text(DVC_WRITE_HOOK, encoding="utf-8")
    return folder


def hook_env(hook: Path, write: str, nth: int, mode: str) -> dict[str, str]:
    return {"PYTHONPATH": str(hook), "MLLC_TEST_DVC_WRITE": f"{WRITES[write]}|{nth}|{mode}"}


_KEPT = re.compile(r"kept the complete records of: ([^;]*);")


def kept_records(recovery_stdout: str) -> set[str]:
    """The stages whose records recovery says it kept from the broken lock."""
    match = _KEPT.search(recovery_stdout)
    return set() if match is None or match.group(1) == "none" else set(match.group(1).split(", "))


def kill_inside_dvc_write_and_converge(
    repo: Path, reference: Applied, hook: Path, write: str, nth: int, mode: str
) -> tuple[Killed, subprocess.CompletedProcess[str]]:
    point = f"{mode} {write} write #{nth}"
    killed = kill_apply(repo, point, lambda *_: False, hook_env(hook, write, nth, mode))
    dvc_alive = [(pid, cmd) for pid, cmd in killed.survivors if " dvc " in f" {cmd} "]
    assert not dvc_alive, f"{killed.describe()}: DVC outlived apply: {dvc_alive}"
    broken = dvclock.lock_problem(_lock_text(repo))
    if write == "dvc.lock":
        assert broken, f"{point}: the kill left a whole dvc.lock:\n{_lock_text(repo)}"
        plan = mllc("plan", cwd=repo, check=False)
        assert plan.returncode == 0, f"{point}: plan fails on the broken lock:\n{plan.stderr}"
        assert "dvc.lock was left broken by an interrupted apply" in plan.stdout, plan.stdout
        assert "never run" not in plan.stdout, plan.stdout
    restore_cache(repo, reference)
    recovery, notes = recover(killed)
    print(f"{killed.describe()}; recovery: {notes or 'plain rerun'}")
    if broken:
        assert "was left broken by an interrupted apply" in recovery.stdout, recovery.stdout
    # Only what is really stale runs: every stage but select (whose outputs DVC never
    # run-caches) comes back from DVC's run cache, and a record recovery kept is trusted.
    ran = set(running_stages(recovery.stdout))
    assert ran <= {"select"}, f"{point}: stages ran again: {ran}\n{recovery.stdout}"
    kept = kept_records(recovery.stdout)
    again = executed_stages(recovery.stdout) & kept
    assert not again, f"{point}: stages with a kept record ran again: {again}"
    assert_converged(repo, reference, killed.describe())
    assert not _write_temps(repo)
    return killed, recovery


# Every one of DVC's lock writes (one per stage), alternately left empty and cut short,
# both at the first and the last (each scenario is a full apply twice: ~15 s).
LOCK_WRITES = sorted(
    {(n, ("empty", "torn")[n % 2]) for n in range(1, len(STAGES) + 1)}
    | {(1, "empty"), (1, "torn"), (len(STAGES), "empty"), (len(STAGES), "torn")}
)


@pytest.mark.parametrize(("nth", "mode"), LOCK_WRITES)
def test_kill_inside_dvcs_lock_write_converges(
    nth: int, mode: str, fresh: Path, reference: Applied, dvc_write_hook: Path, tmp_path: Path
) -> None:
    """DVC writes dvc.lock once per stage: a kill inside each write, empty or cut short."""
    repo = warm_copy(fresh, reference, tmp_path / "repo")
    _, recovery = kill_inside_dvc_write_and_converge(
        repo, reference, dvc_write_hook, "dvc.lock", nth, mode
    )
    if mode == "torn" and nth > 2:  # half a lock of several stages holds whole records
        assert kept_records(recovery.stdout), recovery.stdout


@pytest.mark.parametrize(
    ("write", "nth", "mode"),
    [
        ("rwlock", 1, "empty"),
        ("rwlock", 30, "torn"),
        (".gitignore", 1, "torn"),
        ("cache object", 1, "torn"),
        ("checked-out output", 1, "torn"),
    ],
)
def test_kill_inside_dvcs_other_writes_converges(
    write: str,
    nth: int,
    mode: str,
    fresh: Path,
    reference: Applied,
    dvc_write_hook: Path,
    tmp_path: Path,
) -> None:
    repo = warm_copy(fresh, reference, tmp_path / "repo")
    kill_inside_dvc_write_and_converge(repo, reference, dvc_write_hook, write, nth, mode)


def test_a_stage_that_really_ran_is_not_run_again_after_its_lock_write_was_cut(
    fresh: Path, reference: Applied, dvc_write_hook: Path, tmp_path: Path
) -> None:
    """train@forest really trains (no run-cache entry), then DVC's lock write for it is
    cut: its work is in DVC's run cache, so recovery restores it instead of training."""
    repo = warm_copy(fresh, reference, tmp_path / "repo", uncached=("train@forest",))
    nth = STAGES.index("train@forest") + 1
    killed, recovery = kill_inside_dvc_write_and_converge(
        repo, reference, dvc_write_hook, "dvc.lock", nth, "torn"
    )
    assert "train@forest" in running_stages(killed.stdout), killed.stdout
    assert "train@forest" not in running_stages(recovery.stdout), recovery.stdout


def _block_starts(text: str) -> dict[str, int]:
    """Stage -> offset of the first character of its name line in a DVC-written lock."""
    return {m.group(1): m.start(1) for m in re.finditer(r"^  (\S[^\n]*):\n", text, re.M)}


def _dvc_accepts(text: str) -> bool:
    from dvc.schema import COMPILED_LOCKFILE_SCHEMA
    from dvc.utils.serialize import parse_yaml

    try:
        COMPILED_LOCKFILE_SCHEMA(parse_yaml(text, "dvc.lock"))
    except Exception:
        return False
    return True


@pytest.mark.parametrize("with_head", [False, True], ids=["no-commit", "committed-copy"])
def test_a_lock_cut_at_any_byte_is_rebuilt_from_what_dvc_finished(
    with_head: bool, reference: Applied
) -> None:
    """Every prefix of a real dvc.lock (DVC's write cut at that byte) is told broken, and
    rebuilt from exactly the records whose block was whole (the next one had begun), the
    rest from the committed copy; DVC accepts every rebuilt lock."""
    full = (reference.repo / DVC_LOCK).read_text(encoding="utf-8")
    records = yaml.safe_load(full)["stages"]
    starts = _block_starts(full)
    assert list(starts) == list(STAGES)
    committed_text = None
    committed: dict[str, Any] = {}
    if with_head:  # an older commit's lock: every record differs from the new ones
        older = yaml.safe_load(full)
        for entry in older["stages"].values():
            entry["cmd"] = entry["cmd"] + " --older"
        committed_text = yaml.safe_dump(older, sort_keys=False)
        committed = older["stages"]
    step = 1 if not with_head else 7
    for cut in range(0, len(full), step):
        prefix = full[:cut]
        fixed = dvclock.repair(prefix, committed_text)
        if fixed is None:  # cut right after a line, leaving a lock DVC reads: it reruns
            assert prefix.endswith("\n") and _dvc_accepts(prefix), f"cut at {cut}"
            continue  # the stages it lacks or whose outputs it lacks (an older copy)
        whole = [s for s, nxt in itertools.pairwise(STAGES) if cut > starts[nxt]]
        assert list(fixed.kept) == whole, f"cut at {cut}"
        rebuilt = yaml.safe_load(fixed.text or "{}") or {}
        got = rebuilt.get("stages") or {}
        assert {s: got[s] for s in whole} == {s: records[s] for s in whole}, f"cut at {cut}"
        assert {s: got[s] for s in got if s not in whole} == {
            s: v for s, v in committed.items() if s not in whole
        }, f"cut at {cut}"
        if cut % 97 == 0 or any(abs(cut - start) <= 3 for start in starts.values()):
            assert fixed.text is None or _dvc_accepts(fixed.text), f"cut at {cut}"
    assert dvclock.repair(full, committed_text) is None, "the whole lock is not broken"


@pytest.mark.parametrize("state", ["empty", "cut in half", "cut one byte short"])
def test_a_broken_lock_of_an_applied_repo_is_restored_from_head(
    state: str, reference: Applied, tmp_path: Path
) -> None:
    """A lock the last apply committed, then broken (by a killed `dvc repro` run by hand,
    say): the committed copy is the last good one, so nothing reruns or is registered,
    and no commit is made."""
    repo = copy_repo(reference.repo, tmp_path / "repo")
    lock = repo / DVC_LOCK
    text = lock.read_text(encoding="utf-8")
    cut = {"empty": 0, "cut in half": len(text) // 2, "cut one byte short": len(text) - 1}
    lock.write_text(text[: cut[state]], encoding="utf-8")
    plan = mllc("plan", cwd=repo)
    assert "dvc.lock was left broken by an interrupted apply" in plan.stdout, plan.stdout
    assert "never run" not in plan.stdout, plan.stdout
    proc = mllc("apply", "--auto-approve", cwd=repo)
    assert "was left broken by an interrupted apply" in proc.stdout, proc.stdout
    assert not executed_stages(proc.stdout), proc.stdout
    assert lock.read_text(encoding="utf-8") == text
    assert head(repo) == reference.head
    assert tags(repo) == {"iris@v1.0.0"}
    assert mllc("plan", "--detailed-exitcode", cwd=repo, check=False).returncode == 0
    assert status_porcelain(repo) == ""


def test_an_older_lock_converges_without_registering_twice(
    reference: Applied, tmp_path: Path
) -> None:
    """An older copy of the lock (what an earlier write left): DVC decides by its hashes,
    the model it rebuilds is already registered, and the lock ends as committed."""
    repo = copy_repo(reference.repo, tmp_path / "repo")
    edit_spec(repo, set_param("forest", "n_estimators", 12), commit="more trees")
    mllc("apply", "--auto-approve", cwd=repo)
    registered = tags(repo)
    applied = head(repo)
    text = (repo / DVC_LOCK).read_text(encoding="utf-8")
    older = git("show", f"iris@v1.0.0:{DVC_LOCK}", cwd=repo)
    (repo / DVC_LOCK).write_text(older + "\n", encoding="utf-8")
    proc = mllc("apply", "--auto-approve", cwd=repo)
    assert set(running_stages(proc.stdout)) <= {"select"}, proc.stdout
    assert (repo / DVC_LOCK).read_text(encoding="utf-8") == text
    assert head(repo) == applied
    assert tags(repo) == registered
    assert mllc("plan", "--detailed-exitcode", cwd=repo, check=False).returncode == 0
    assert status_porcelain(repo) == ""


def test_a_pointer_cut_short_inside_dvc_add_is_written_again(
    reference: Applied, tmp_path: Path
) -> None:
    """Apply runs `dvc add` (source data, a labelled batch), and DVC writes the `.dvc`
    pointer in place: a kill inside that write leaves it cut short, and DVC then refuses
    every command. The next apply has DVC add the data, still there, again."""
    repo = copy_repo(reference.repo, tmp_path / "repo")
    (repo / "data").mkdir(exist_ok=True)
    (repo / "data" / "extra.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    dvc("add", "-q", "data/extra.csv", cwd=repo)
    git("add", "data/extra.csv.dvc", "data/.gitignore", cwd=repo)
    git("commit", "-qm", "extra data", cwd=repo)
    pointer = repo / "data" / "extra.csv.dvc"
    text = pointer.read_bytes()
    pointer.write_bytes(text[: len(text) // 2])
    assert dvc("status", cwd=repo, check=False).returncode != 0  # what DVC makes of it
    edit_spec(repo, set_param("forest", "n_estimators", 12), commit="more trees")
    proc = mllc("apply", "--auto-approve", cwd=repo)
    assert "data/extra.csv.dvc was left cut short by a killed DVC" in proc.stdout, proc.stdout
    assert pointer.read_bytes() == text
    assert mllc("plan", "--detailed-exitcode", cwd=repo, check=False).returncode == 0
    assert status_porcelain(repo) == ""
