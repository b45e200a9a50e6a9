"""Process facts (mllc.procs) on real child processes: running, exited but unreaped
(a zombie), reaped; and the callers that judge a process by them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mllc import procs
from mllc.apply.dvc import clear_dead_dvc_locks
from mllc.targets import local

pytestmark = pytest.mark.skipif(
    not hasattr(os, "waitid"), reason="needs waitid to keep an exited child unreaped"
)

CHILD = "import sys; sys.stdin.read()"  # runs until its stdin is closed


class Children:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, *extra], stdin=subprocess.PIPE)
        self.started.append(proc)
        return proc

    def exit_unreaped(self, proc: subprocess.Popen[bytes]) -> None:
        """End the child and wait until it has exited, without reaping it: a zombie."""
        assert proc.stdin is not None
        proc.stdin.close()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()


@pytest.fixture
def children() -> Iterator[Children]:
    c = Children()
    yield c
    c.cleanup()


def test_a_child_through_its_life(children: Children) -> None:
    before = time.time()
    child = children.start("an argument")
    after = time.time()
    pid = child.pid

    assert procs.exists(pid) and procs.running(pid) and not procs.exited(pid)
    assert procs.cmdline(pid) == [sys.executable, "-c", CHILD, "an argument"]
    started = procs.start_time(pid)
    # whole-second boot time plus clock ticks: within a second or so of the truth
    assert started is not None and before - 2 <= started <= after + 2
    assert local.alive(pid)

    children.exit_unreaped(child)
    assert procs.exists(pid), "a zombie still has its pid"
    assert procs.exited(pid) and not procs.running(pid) and not local.alive(pid)
    assert procs.cmdline(pid) == []  # the kernel dropped it with the process's memory
    assert procs.start_time(pid) == started

    assert child.wait(10) == 0  # reaped: nothing is left of it
    assert not procs.exists(pid) and not procs.running(pid) and not procs.exited(pid)
    assert procs.start_time(pid) is None and procs.cmdline(pid) is None
    assert not local.alive(pid)


def test_an_older_process_started_earlier(children: Children) -> None:
    first = children.start()
    assert procs.cmdline(first.pid) is not None  # running before the second is started
    second = children.start()
    me, one, two = (procs.start_time(p) for p in (os.getpid(), first.pid, second.pid))
    assert me is not None and one is not None and two is not None
    assert me <= one <= two


@pytest.mark.parametrize("pid", [0, -1])
def test_pids_that_name_no_single_process(pid: int) -> None:
    """kill(0) and kill(-1) signal whole process groups: they are no process, and a
    server state file naming one is not a server to stop (stopping it would signal
    mllc's own process group)."""
    assert not procs.exists(pid) and not procs.running(pid) and not procs.exited(pid)
    assert procs.start_time(pid) is None and procs.cmdline(pid) is None
    assert not local.alive(pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="apply clears them on Linux")
def test_dead_dvc_locks_are_cleared_and_live_dvc_ones_kept(
    children: Children, tmp_path: Path
) -> None:
    """DVC's rwlock entries: a live process whose command line is DVC's keeps its entry;
    a zombie, a live process that is not DVC (a reused pid) and a gone pid lose theirs."""
    dvc = children.start("dvc", "repro")
    zombie = children.start("dvc", "repro")
    other = children.start()
    gone = children.start("dvc")
    children.exit_unreaped(zombie)
    assert gone.stdin is not None
    gone.stdin.close()
    gone.wait(10)

    def entry(proc: subprocess.Popen[bytes]) -> dict[str, object]:
        return {"pid": proc.pid, "cmd": "dvc repro"}

    rwlock = tmp_path / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True)
    rwlock.write_text(
        json.dumps(
            {
                "read": {"data/a": [entry(dvc), entry(zombie)], "data/b": [entry(other)]},
                "write": {"out/m": entry(dvc), "out/n": entry(gone)},
            }
        ),
        encoding="utf-8",
    )
    dropped = clear_dead_dvc_locks(tmp_path)
    assert dropped == sorted({zombie.pid, other.pid, gone.pid})
    assert json.loads(rwlock.read_text(encoding="utf-8")) == {
        "read": {"data/a": [entry(dvc)]},
        "write": {"out/m": entry(dvc)},
    }
    assert clear_dead_dvc_locks(tmp_path) == []
