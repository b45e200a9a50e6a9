"""The apply lock and the journal, exercised with real processes (no mocks).

Holders, racers and journal writers are separate Python processes; "killed" means
SIGKILL, so nothing in the victim gets to clean up.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mllc.apply.journal import (
    CORRUPT,
    TORN_LINE,
    TORN_TAIL,
    Journal,
    interrupted_steps,
    journal_path,
    last_apply,
    read_journal,
)
from mllc.apply.lock import (
    CorruptLock,
    LockHeld,
    StaleLock,
    acquire,
    force_unlock,
    lock_path,
    read_lock,
)
from mllc.errors import MllcError

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX processes and signals")

# Takes the lock, prints its id, then holds it for argv[2] seconds (or, when that is
# negative, until a line arrives on stdin).
HOLDER = """
import sys, time
from pathlib import Path
from mllc.apply.lock import acquire
with acquire(Path(sys.argv[1]), "mllc apply") as handle:
    print(handle.info.id, flush=True)
    hold = float(sys.argv[2])
    if hold < 0:
        sys.stdin.readline()
    else:
        time.sleep(hold)
print("released", flush=True)
"""

# Waits for "try <monotonic time>", spins until that instant so both racers start
# together, tries once, reports; "release" lets go of a won lock.
RACER = """
import sys, time
from pathlib import Path
from mllc.apply.lock import LockHeld, acquire
root = Path(sys.argv[1])
handle = None
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "try":
        go = float(arg)
        while time.monotonic() < go:
            pass
        try:
            handle = acquire(root, "racer")
            print("won", flush=True)
        except LockHeld as exc:
            print("lost", exc, flush=True)
        except Exception as exc:
            print("error", type(exc).__name__, exc, flush=True)
    elif cmd == "release":
        if handle is not None:
            handle.release()
            handle = None
        print("released", flush=True)
"""

# Takes and releases the lock over and over.
CHURN = """
import sys
from pathlib import Path
from mllc.apply.lock import LockHeld, acquire
for _ in range(int(sys.argv[2])):
    try:
        with acquire(Path(sys.argv[1]), "churn"):
            pass
    except LockHeld:
        pass
"""

# Journals steps as fast as it can until killed; large details make each write
# span many pages, so a kill can land in the middle of one.
WRITER = """
import sys
from pathlib import Path
from mllc.apply.journal import Journal
journal = Journal(Path(sys.argv[1]), sys.argv[2])
pad = "x" * int(sys.argv[3])
i = 0
while True:
    i += 1
    journal.start(f"step-{i}", pad=pad)
    journal.done(f"step-{i}", n=i)
"""


class Procs:
    """Starts helper processes and kills whatever is left of them at teardown."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def run(self, script: str, *args: object) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.started.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.cleanup()


def readline(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    """One line from the process's stdout; fails instead of hanging."""
    assert proc.stdout is not None
    out: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    threading.Thread(target=lambda: out.put(stdout.readline()), daemon=True).start()
    try:
        line = out.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"no output from pid {proc.pid} within {timeout} s")
    assert line, f"pid {proc.pid} exited early (code {proc.poll()})"
    return line.strip()


def send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def write_lock(root: Path, **fields: object) -> None:
    """A lock file as another process would have left it."""
    record = {
        "id": "feed01",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "mllc apply",
    }
    record.update(fields)
    lock_path(root).parent.mkdir(parents=True, exist_ok=True)
    lock_path(root).write_text(json.dumps(record), encoding="utf-8")


# --- the lock ------------------------------------------------------------------------


def test_lock_file_holds_the_holder_and_is_removed_on_exit(tmp_path: Path) -> None:
    with acquire(tmp_path, "mllc apply") as handle:
        data = json.loads(lock_path(tmp_path).read_text(encoding="utf-8"))
        assert data == {
            "id": handle.info.id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": handle.info.since,
            "command": "mllc apply",
        }
        assert data["since"].endswith("Z")
        assert read_lock(tmp_path) == handle.info
        # the temp file the lock was linked from is gone
        assert list((tmp_path / ".mllc" / "tmp").iterdir()) == []
    assert not lock_path(tmp_path).exists()
    assert read_lock(tmp_path) is None


def test_held_lock_fails_at_once_naming_the_holder(tmp_path: Path, procs: Procs) -> None:
    holder = procs.run(HOLDER, tmp_path, -1)
    lock_id = readline(holder)
    began = time.monotonic()
    with pytest.raises(LockHeld) as caught:
        acquire(tmp_path, "mllc apply")
    assert time.monotonic() - began < 1.0
    message = str(caught.value)
    assert message.startswith(f"locked by pid {holder.pid} on host {socket.gethostname()} since ")
    assert f"(mllc apply, lock id {lock_id})" in message
    assert f"run 'mllc force-unlock {lock_id}'" in message
    assert "--lock-timeout" in message
    assert caught.value.holder.pid == holder.pid
    send(holder, "go")
    assert readline(holder) == "released"
    assert holder.wait(10) == 0
    assert read_lock(tmp_path) is None


def test_timeout_waits_until_the_holder_releases(tmp_path: Path, procs: Procs) -> None:
    holder = procs.run(HOLDER, tmp_path, 1.0)
    readline(holder)
    began = time.monotonic()
    with acquire(tmp_path, "mllc apply", timeout=15) as handle:
        waited = time.monotonic() - began
        assert 0.3 < waited < 10
        assert read_lock(tmp_path) == handle.info


def test_timeout_gives_up_naming_the_holder(tmp_path: Path, procs: Procs) -> None:
    holder = procs.run(HOLDER, tmp_path, -1)
    lock_id = readline(holder)
    began = time.monotonic()
    with pytest.raises(LockHeld) as caught:
        acquire(tmp_path, "mllc apply", timeout=0.5)
    assert time.monotonic() - began >= 0.5
    assert str(caught.value).startswith("still locked after waiting 0.5 s: locked by pid ")
    assert f"lock id {lock_id}" in str(caught.value)
    send(holder, "go")
    assert holder.wait(10) == 0


def test_killed_holder_leaves_a_stale_lock_that_is_reported(tmp_path: Path, procs: Procs) -> None:
    holder = procs.run(HOLDER, tmp_path, -1)
    lock_id = readline(holder)
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert read_lock(tmp_path) is not None  # nothing cleaned up: it was SIGKILL

    # reported, not ignored: with or without a timeout, at once
    for timeout in (None, 5.0):
        began = time.monotonic()
        with pytest.raises(StaleLock) as caught:
            acquire(tmp_path, "mllc apply", timeout=timeout)
        assert time.monotonic() - began < 1.0
        message = str(caught.value)
        assert f"pid {holder.pid}" in message and f"no process {holder.pid}" in message
        assert f"run 'mllc force-unlock {lock_id}'" in message
    assert read_lock(tmp_path) is not None  # and not broken automatically

    with pytest.raises(MllcError, match=f"its id is '{lock_id}'"):
        force_unlock(tmp_path, "0000beef")
    assert read_lock(tmp_path) is not None
    removed = force_unlock(tmp_path, lock_id)
    assert (removed.id, removed.pid) == (lock_id, holder.pid)
    with acquire(tmp_path, "mllc apply"):
        pass
    with pytest.raises(MllcError, match="nothing to unlock"):
        force_unlock(tmp_path, lock_id)


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs waitid to keep a child unreaped")
def test_killed_but_unreaped_holder_is_stale(tmp_path: Path, procs: Procs) -> None:
    holder = procs.run(HOLDER, tmp_path, -1)
    readline(holder)
    holder.send_signal(signal.SIGKILL)
    # waited for without reaping it: a zombie still answers kill(pid, 0) but holds nothing
    os.waitid(os.P_PID, holder.pid, os.WEXITED | os.WNOWAIT)
    with pytest.raises(StaleLock, match=f"process {holder.pid} has exited"):
        acquire(tmp_path, "mllc apply")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_pid_reused_by_a_younger_process_is_stale(tmp_path: Path, procs: Procs) -> None:
    younger = procs.run("import sys; sys.stdin.readline()")
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_lock(tmp_path, pid=younger.pid, since=hour_ago)
    with pytest.raises(StaleLock, match=f"pid {younger.pid} now belongs to another process"):
        acquire(tmp_path, "mllc apply")
    # the same pid with a `since` after that process started is the live holder
    write_lock(tmp_path, pid=younger.pid)
    with pytest.raises(LockHeld):
        acquire(tmp_path, "mllc apply")


def test_lock_of_another_host_cannot_be_checked(tmp_path: Path) -> None:
    write_lock(tmp_path, host="elsewhere.invalid", pid=999_999)
    with pytest.raises(LockHeld) as caught:
        acquire(tmp_path, "mllc apply")
    assert "on host elsewhere.invalid" in str(caught.value)
    assert "cannot be checked from here" in str(caught.value)
    assert "'mllc force-unlock feed01'" in str(caught.value)


@pytest.mark.parametrize("content", ["", "{", "[1, 2]", '{"id": "x", "pid": "nope"}'])
def test_corrupt_lock_is_reported_with_force_unlock_corrupt(tmp_path: Path, content: str) -> None:
    lock_path(tmp_path).parent.mkdir(parents=True)
    lock_path(tmp_path).write_text(content, encoding="utf-8")
    info = read_lock(tmp_path)
    assert info is not None and info.corrupt and info.id == "corrupt"
    with pytest.raises(CorruptLock, match=r"is corrupt .*'mllc force-unlock corrupt'"):
        acquire(tmp_path, "mllc apply", timeout=5)
    with pytest.raises(MllcError, match="its id is 'corrupt'"):
        force_unlock(tmp_path, "feed01")
    assert force_unlock(tmp_path, "corrupt").corrupt
    assert read_lock(tmp_path) is None


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path: Path) -> None:
    first = acquire(tmp_path, "mllc apply")
    force_unlock(tmp_path, first.info.id)
    with acquire(tmp_path, "mllc apply") as second:
        assert first.release() is False
        assert read_lock(tmp_path) == second.info
    assert read_lock(tmp_path) is None
    assert first.release() is False  # and twice is harmless


def test_negative_timeout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MllcError, match="0 or more seconds"):
        acquire(tmp_path, "mllc apply", timeout=-1)


def test_two_racing_processes_exactly_one_wins(tmp_path: Path, procs: Procs) -> None:
    racers = [procs.run(RACER, tmp_path), procs.run(RACER, tmp_path)]
    time.sleep(0.3)  # let both import before the first round
    for round_no in range(20):
        go = time.monotonic() + 0.05
        for racer in racers:
            send(racer, f"try {go}")
        answers = [readline(racer) for racer in racers]
        winners = [r for r, a in zip(racers, answers, strict=True) if a == "won"]
        assert len(winners) == 1, f"round {round_no}: {answers}"
        loser = next(a for a in answers if a != "won")
        assert loser.startswith(f"lost locked by pid {winners[0].pid} "), loser
        info = read_lock(tmp_path)
        assert info is not None and info.pid == winners[0].pid
        for racer in racers:
            send(racer, "release")
        assert [readline(racer) for racer in racers] == ["released", "released"]
        assert read_lock(tmp_path) is None


def test_readers_never_see_a_half_written_lock(tmp_path: Path, procs: Procs) -> None:
    churners = [procs.run(CHURN, tmp_path, 300) for _ in range(2)]
    seen = 0
    while any(c.poll() is None for c in churners):
        info = read_lock(tmp_path)
        if info is not None:
            assert not info.corrupt, info.problem
            seen += 1
    assert all(c.returncode == 0 for c in churners)
    assert seen > 0
    assert read_lock(tmp_path) is None


# --- the journal -----------------------------------------------------------------------


def test_journal_lines_and_interrupted_steps(tmp_path: Path) -> None:
    first = Journal(tmp_path, "a1")
    first.start("iris/stage/train@forest")
    first.done("iris/stage/train@forest", seconds=1.5, out=Path("models/forest.pkl"))
    second = Journal(tmp_path, "b2")
    second.start("iris/stage/train@forest")
    second.skipped("iris/stage/train@forest", reason="up to date")
    second.start("iris/model")
    second.failed("iris/model", RuntimeError("push to https://bob:s3cret@dvc.example/x failed"))
    second.start("iris/model")  # retried, then the process died
    second.start("iris/deployment/staging")  # ...or this one was running too

    lines = journal_path(tmp_path).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [list(r) for r in records] == [["apply", "seq", "time", "step", "event", "detail"]] * 8
    assert records[1]["detail"] == {"seconds": 1.5, "out": "models/forest.pkl"}
    assert [r["seq"] for r in records] == [1, 2, 1, 2, 3, 4, 5, 6]
    assert records[5]["detail"] == {
        "error": "RuntimeError: push to https://***@dvc.example/x failed"
    }
    assert "s3cret" not in journal_path(tmp_path).read_text(encoding="utf-8")

    read = read_journal(tmp_path)
    assert read.problems == () and not read.torn_tail
    assert len(read.entries) == 8 and read.entries[-1].line == 8
    run = last_apply(tmp_path)
    assert run is not None and run.apply_id == "b2" and len(run.entries) == 6
    assert interrupted_steps(tmp_path) == ["iris/model", "iris/deployment/staging"]
    second.done("iris/model")
    second.failed("iris/deployment/staging", MllcError("target unreachable"))
    assert interrupted_steps(tmp_path) == []
    assert read_journal(tmp_path).entries[-1].detail == {"error": "target unreachable"}


def test_empty_or_missing_journal(tmp_path: Path) -> None:
    read = read_journal(tmp_path)
    assert (read.entries, read.problems, read.torn_tail) == ((), (), False)
    assert last_apply(tmp_path) is None
    assert interrupted_steps(tmp_path) == []


def test_detail_that_is_not_json_data_is_refused_and_nothing_written(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "a1")
    with pytest.raises(TypeError, match="JSON data"):
        journal.start("step", client=object())
    assert not journal_path(tmp_path).exists()


def test_torn_last_line_is_tolerated_and_later_appends_stay_valid(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "a1")
    journal.start("one")
    journal.done("one")
    journal.start("two")
    path = journal_path(tmp_path)
    whole = json.dumps({"apply": "a1", "seq": 4, "step": "two", "event": "done", "detail": {}})
    with open(path, "ab") as fh:  # a crash in the middle of writing seq 4
        fh.write(whole[: len(whole) // 2].encode())
    before = path.read_bytes()

    read = read_journal(tmp_path)
    assert read.torn_tail and not read.corrupt
    assert [(p.code, p.line) for p in read.problems] == [(TORN_TAIL, 4)]
    assert [e.seq for e in read.entries] == [1, 2, 3]
    assert interrupted_steps(tmp_path) == ["two"]
    assert path.read_bytes() == before  # reading changed nothing

    after = Journal(tmp_path, "b2")
    after.start("two")
    after.done("two")
    data = path.read_bytes()
    assert data.startswith(before)  # the torn bytes are still there, untouched
    assert data.endswith(b"\n")
    lines = data.decode().splitlines()
    assert len(lines) == 6
    assert json.loads(lines[4])["after_torn_line"] is True
    assert "after_torn_line" not in json.loads(lines[5])

    read = read_journal(tmp_path)
    assert not read.torn_tail and not read.corrupt
    assert [(p.code, p.line) for p in read.problems] == [(TORN_LINE, 4)]
    assert [(e.apply, e.seq) for e in read.entries][-2:] == [("b2", 1), ("b2", 2)]
    assert interrupted_steps(tmp_path) == []


def test_a_torn_line_then_a_torn_repair_is_not_corruption(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "a1")
    journal.start("one")
    # seq 2 torn by a crash; then the next apply's repair write ("\n" + line) torn too
    with open(journal_path(tmp_path), "ab") as fh:
        fh.write(b'{"apply":"a1","seq":2,"ti')
        fh.write(b'\n{"apply":"b2","seq":1,"time":"2026-')
    read = read_journal(tmp_path)
    assert read.torn_tail and not read.corrupt
    assert [(p.code, p.line) for p in read.problems] == [(TORN_LINE, 2), (TORN_TAIL, 3)]
    assert interrupted_steps(tmp_path) == ["one"]


def test_a_bad_line_in_the_middle_is_corruption(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "a1")
    journal.start("one")
    with open(journal_path(tmp_path), "a", encoding="utf-8") as fh:
        fh.write('{"apply": "a1", "seq": 2, "time": "t", "step": "one", "event": "exploded"}\n')
        fh.write("hello\n")
    journal.done("one")
    read = read_journal(tmp_path)
    assert read.corrupt and not read.torn_tail
    assert [(p.code, p.line) for p in read.problems] == [(CORRUPT, 2), (CORRUPT, 3)]
    assert "unknown event 'exploded'" in read.problems[0].message
    assert [e.event for e in read.entries] == ["start", "done"]


def test_journal_of_processes_killed_mid_run_stays_readable(tmp_path: Path, procs: Procs) -> None:
    path = journal_path(tmp_path)
    for round_no, pad in enumerate([10, 300_000, 300_000, 300_000]):
        apply_id = f"kill{round_no}"
        writer = procs.run(WRITER, tmp_path, apply_id, pad)
        deadline = time.monotonic() + 15
        # let it write a few entries (it never stops by itself)
        while sum(1 for e in read_journal(tmp_path).entries if e.apply == apply_id) < 6:
            assert time.monotonic() < deadline and writer.poll() is None
            time.sleep(0.01)
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)

        read = read_journal(tmp_path)
        assert not read.corrupt, [p.render() for p in read.problems]
        assert all(p.code in (TORN_TAIL, TORN_LINE) for p in read.problems)
        seqs = [e.seq for e in read.entries if e.apply == apply_id]
        assert seqs == list(range(1, len(seqs) + 1))  # nothing lost before the kill point
        run = last_apply(tmp_path)
        assert run is not None and run.apply_id == apply_id
        last = run.entries[-1]
        expected = [last.step] if last.event == "start" else []
        assert interrupted_steps(tmp_path) == expected

    Journal(tmp_path, "after").start("next")
    assert path.read_bytes().endswith(b"\n")
    read = read_journal(tmp_path)
    assert not read.corrupt and not read.torn_tail
    assert read.entries[-1].apply == "after"
    assert interrupted_steps(tmp_path) == ["next"]
