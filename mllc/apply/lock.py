"""The apply lock: one ``mllc apply`` per workspace at a time, and a dead holder is never ignored.

The lock is the file ``<root>/.mllc/lock``; it exists exactly while an apply holds
it. Its content is one JSON object naming the holder::

    {"id": "9f3c2a1b", "pid": 4242, "host": "build-7", "since": "2026-05-04T10:20:30Z",
     "command": "mllc apply"}

Taking the lock writes that content to a private temp file under ``.mllc/tmp/``
and then hard-links it to ``.mllc/lock``. ``link`` fails if the name exists and
makes a complete file appear in one step, so two racing processes cannot both
win and no reader can ever see an empty or half-written lock file (which is what
``open(O_CREAT|O_EXCL)`` followed by ``write`` would allow).

A second :func:`acquire` fails at once with :class:`LockHeld` naming the holder,
or polls until ``timeout``. When the holder is on this host and its process is
gone (or its pid now belongs to a younger process), :class:`StaleLock` is raised:
the lock is reported, never broken automatically, because a wrong guess would
let two applies run at once. ``mllc force-unlock ID`` (:func:`force_unlock`)
removes it once a person has checked.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from mllc import procs
from mllc.errors import MllcError

__all__ = [
    "CORRUPT_ID",
    "CorruptLock",
    "LockError",
    "LockHandle",
    "LockHeld",
    "LockInfo",
    "StaleLock",
    "acquire",
    "force_unlock",
    "lock_path",
    "read_lock",
]

STATE_DIR = ".mllc"
LOCK_NAME = "lock"
TMP_DIR = "tmp"  # ignored by Git (see mllc.ops.init.GITIGNORE_LINES)
CORRUPT_ID = "corrupt"  # the id force-unlock accepts for a lock file that cannot be read
POLL_INTERVAL = 0.1  # seconds between attempts while waiting for the lock

# The holder's process start time (:func:`mllc.procs.start_time`) is computed with a
# whole-second boot time and clock ticks, and ``since`` is written with whole seconds;
# a process that started up to this long after ``since`` is still taken to be the
# holder, so a live holder is never misreported as stale because of rounding. The
# lock file holds no start time of its own, only ``since``: a lock written by any
# mllc version is judged the same way.
_START_SLACK = 2.0


class LockError(MllcError):
    """The apply lock could not be taken; ``holder`` describes the lock file found."""

    message = "the apply lock is held"

    def __init__(self, message: str, holder: LockInfo) -> None:
        super().__init__(message)
        self.holder = holder


class LockHeld(LockError):
    """Another apply holds the lock (or it cannot be told from here that it is gone)."""


class StaleLock(LockError):
    """The lock's holder ran on this host and is gone: a killed or crashed apply."""


class CorruptLock(LockError):
    """The lock file exists but does not hold a lock record."""


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says about its holder.

    A lock file that cannot be read as a lock record is returned with
    ``id == CORRUPT_ID`` and ``problem`` saying what is wrong with it.
    """

    id: str
    pid: int
    host: str
    since: str  # ISO 8601 UTC, e.g. 2026-05-04T10:20:30Z
    command: str
    problem: str | None = None

    @property
    def corrupt(self) -> bool:
        return self.problem is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pid": self.pid,
            "host": self.host,
            "since": self.since,
            "command": self.command,
        }

    def describe(self) -> str:
        """``pid 1234 on host h since ...Z (mllc apply, lock id abc123)``."""
        return (
            f"pid {self.pid} on host {self.host} since {self.since} "
            f"({self.command}, lock id {self.id})"
        )


def lock_path(root: Path) -> Path:
    return root / STATE_DIR / LOCK_NAME


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> LockInfo:
    """Read a lock record; a file that is not one comes back as a corrupt LockInfo."""

    def corrupt(problem: str) -> LockInfo:
        return LockInfo(CORRUPT_ID, 0, "", "", "", problem=problem)

    try:
        data = json.loads(text)
    except ValueError:
        return corrupt("not JSON" if text.strip() else "empty")
    if not isinstance(data, dict):
        return corrupt("not a JSON object")
    lock_id, pid, host = data.get("id"), data.get("pid"), data.get("host")
    since, command = data.get("since"), data.get("command")
    if not isinstance(lock_id, str) or not lock_id or lock_id == CORRUPT_ID:
        return corrupt("no valid 'id'")
    # bool is an int subclass; a pid of true is as corrupt as a missing one
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return corrupt("no valid 'pid'")
    if not isinstance(host, str) or not isinstance(command, str):
        return corrupt("no valid 'host' or 'command'")
    if not isinstance(since, str) or _since_epoch(since) is None:
        return corrupt("no valid 'since'")
    return LockInfo(lock_id, pid, host, since, command)


def _since_epoch(since: str) -> float | None:
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        return None
    if moment.tzinfo is None:  # we always write UTC; a naive time was not written by us
        return None
    return moment.timestamp()


def read_lock(root: Path) -> LockInfo | None:
    """The current lock's holder, ``None`` when the workspace is not locked.

    A lock file that is not a lock record (edited, or left empty by a power loss
    before its content reached the disk) is returned with ``id == "corrupt"``.
    """
    try:
        text = lock_path(root).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return _parse(text)


# --- is the holder still there? -------------------------------------------------------

HolderState = Literal["running", "gone", "unknown"]


def _holder_state(holder: LockInfo) -> tuple[HolderState, str]:
    """Whether the holder's process still runs, with the reason when it does not."""
    if holder.host != socket.gethostname():
        return (
            "unknown",
            "it is on another host, so whether it still runs cannot be checked from here",
        )
    if os.name != "posix":  # os.kill(pid, 0) is not a harmless probe elsewhere
        return "unknown", "whether it still runs cannot be checked on this platform"
    if not procs.exists(holder.pid):  # another user's process exists: compare start times
        return "gone", f"no process {holder.pid} is running"
    if procs.exited(holder.pid):  # killed but not yet reaped by its parent: it holds nothing
        return "gone", f"process {holder.pid} has exited"
    started = procs.start_time(holder.pid)  # None: a live pid is all we can know
    since = _since_epoch(holder.since)
    # The holder wrote ``since`` after it started; a process that started later only
    # got the same pid after the holder was gone.
    if started is not None and since is not None and started > since + _START_SLACK:
        when = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return "gone", (
            f"pid {holder.pid} now belongs to another process (started {when}, "
            "after the lock was taken)"
        )
    return "running", ""


# --- taking and releasing ---------------------------------------------------------------


def _try_create(root: Path, info: LockInfo) -> bool:
    """Create the lock file with ``info`` in it; False when it already exists."""
    state = root / STATE_DIR
    tmp_dir = state / TMP_DIR
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"lock.{info.id}.{os.getpid()}"
    data = (json.dumps(info.to_json()) + "\n").encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:  # nobody can see the temp file yet, so several writes are fine
            view = view[os.write(fd, view) :]
        # On disk before it becomes visible as the lock: after a power loss the
        # lock then holds its record rather than nothing.
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, lock_path(root))
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            # Without link() the lock cannot be made visible complete and at once;
            # refusing is better than a lock that can be half-read.
            raise MllcError(
                f"cannot create the apply lock {lock_path(root)}: the filesystem does "
                f"not support hard links ({exc.strerror})"
            ) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _held_message(holder: LockInfo, note: str, waited: float | None) -> str:
    lead = f"still locked after waiting {waited:g} s: " if waited else ""
    extra = f"; {note}" if note else ""
    return (
        f"{lead}locked by {holder.describe()}{extra}; wait with --lock-timeout or, if that "
        f"process is gone, run 'mllc force-unlock {holder.id}'"
    )


def _refusal(root: Path, holder: LockInfo) -> tuple[LockError | None, str]:
    """The error for a lock that no wait can free (or None), and a note on the holder."""
    if holder.corrupt:
        return CorruptLock(
            f"the apply lock {lock_path(root)} is corrupt ({holder.problem}); if no mllc "
            f"apply is running, run 'mllc force-unlock {CORRUPT_ID}'",
            holder,
        ), ""
    state, reason = _holder_state(holder)
    if state == "gone":
        return StaleLock(
            f"stale lock: held by {holder.describe()}, but {reason}: that apply was killed "
            f"or crashed; check that no mllc apply is running on {holder.host}, then run "
            f"'mllc force-unlock {holder.id}'",
            holder,
        ), ""
    return None, reason


class LockHandle:
    """A held apply lock; a context manager that releases it on exit."""

    def __init__(self, root: Path, info: LockInfo) -> None:
        self.root = root
        self.info = info
        self._released = False

    @property
    def path(self) -> Path:
        return lock_path(self.root)

    @property
    def held(self) -> bool:
        return not self._released

    def release(self) -> bool:
        """Remove the lock if it is still ours; True when it was removed.

        A lock force-unlocked and taken by another apply meanwhile is left alone,
        and so is one inherited by a forked child: only the acquiring process
        releases.
        """
        if self._released or os.getpid() != self.info.pid:
            return False
        self._released = True
        current = read_lock(self.root)
        if current is None or current.id != self.info.id:
            return False
        # Between the read above and the unlink only a human force-unlock plus a new
        # acquire could replace the file; that window is accepted rather than adding
        # a second locking mechanism around the lock itself.
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def __enter__(self) -> LockHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"LockHandle({self.path}, id={self.info.id}, held={self.held})"


def acquire(root: Path, command: str, timeout: float | None = None) -> LockHandle:
    """Take the apply lock of the workspace at ``root`` for ``command`` (e.g. ``mllc apply``).

    Without ``timeout`` a held lock fails at once with :class:`LockHeld`; with it,
    the lock is polled until it is free or ``timeout`` seconds have passed. A lock
    whose holder is known to be gone raises :class:`StaleLock` and a lock file that
    cannot be read raises :class:`CorruptLock`, both at once: no wait frees them.
    """
    if timeout is not None and timeout < 0:
        raise MllcError(f"lock timeout must be 0 or more seconds, not {timeout:g}")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        info = LockInfo(
            id=secrets.token_hex(4),
            pid=os.getpid(),
            host=socket.gethostname(),
            since=_now_iso(),
            command=command,
        )
        if _try_create(root, info):
            return LockHandle(root, info)
        holder = read_lock(root)
        if holder is None:
            continue  # released between our attempt and the read: try again at once
        refusal, note = _refusal(root, holder)
        if refusal is not None:
            raise refusal
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is None or remaining <= 0:
            raise LockHeld(_held_message(holder, note, timeout), holder)
        time.sleep(min(POLL_INTERVAL, remaining))


def force_unlock(root: Path, lock_id: str) -> LockInfo:
    """Remove the lock whose id is ``lock_id`` (``"corrupt"`` for an unreadable one).

    The id guards against removing a different lock than the one a person
    checked: a mismatch is an error naming the lock actually there. (Between the
    check and the removal a new lock could only appear if the checked one was
    released in that instant; a manual command accepts that window.)
    """
    holder = read_lock(root)
    if holder is None:
        raise MllcError(f"nothing to unlock: {lock_path(root)} does not exist")
    if holder.id != lock_id:
        what = "is corrupt" if holder.corrupt else f"is held by {holder.describe()}"
        raise MllcError(
            f"lock id {lock_id!r} does not match: the lock {what}; its id is {holder.id!r}"
        )
    try:
        lock_path(root).unlink()
    except FileNotFoundError:
        raise MllcError(f"nothing to unlock: {lock_path(root)} was removed meanwhile") from None
    return holder
