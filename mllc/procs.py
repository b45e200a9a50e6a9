"""Processes: facts about one by pid (through psutil), and children that die with their parent.

Facts (:func:`exists`, :func:`exited`, :func:`running`, :func:`start_time`,
:func:`cmdline`) are read through psutil, never by parsing ``/proc`` by hand: the
apply lock asks whether its holder still runs, the local target whether a server
does, and apply whether a DVC lock's owner is still DVC. Each answers "cannot be
told" (``False`` or ``None``, as documented) instead of raising.

Children that die with their parent (Linux ``PR_SET_PDEATHSIG``):

A killed ``mllc apply`` must not leave DVC, or the stage DVC started, running on
alone and writing outputs behind the next apply's back. ``prctl`` is resolved in
the parent, so the forked child does no imports or library loading before it
arms the signal; right after arming, the child checks its parent is still the
one that forked it (the parent may have died in between).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import psutil

PR_SET_PDEATHSIG = 1
# The process whose death ends a stage: set by apply in DVC's environment. DVC starts
# a stage through a shell, and a shell that does not ``exec`` its last command (dash)
# outlives a killed DVC and keeps the stage's parent alive, so the stage's own death
# signal never fires; the stage watches the apply itself.
WATCH_ENV = "MLLC_DIE_WITH"


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


# --- facts about a process -------------------------------------------------------------


def exists(pid: int) -> bool:
    """Whether a process ``pid`` exists: a zombie does, and so does another user's.

    The harmless signal 0 answers this on POSIX; psutil's own check is stricter (it
    refuses a thread id) and would change which reason a stale apply lock reports.
    """
    if pid <= 0:  # 0 and negative pids name process groups to kill(), not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process(pid: int) -> psutil.Process | None:
    if pid <= 0:
        return None
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def exited(pid: int) -> bool:
    """Whether ``pid`` has exited but is not yet reaped by its parent (a zombie):
    it holds, serves and writes nothing. False when it is gone or cannot be told."""
    proc = _process(pid)
    try:
        return proc is not None and proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False


def running(pid: int) -> bool:
    """Whether ``pid`` exists and has not exited (a zombie is not running)."""
    return exists(pid) and not exited(pid)


def start_time(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch; None when it is gone or cannot be told.

    On Linux this is the boot time plus the start time in clock ticks, as ``ps`` has it:
    whole seconds of boot time, so it can be off by up to a second either way.
    """
    proc = _process(pid)
    try:
        return None if proc is None else proc.create_time()
    except psutil.Error:
        return None


def cmdline(pid: int) -> list[str] | None:
    """The command line of ``pid``; None when it is gone or cannot be read
    (empty for a zombie, whose command line the kernel has already dropped)."""
    proc = _process(pid)
    try:
        return None if proc is None else proc.cmdline()
    except psutil.ZombieProcess:
        return []
    except psutil.Error:
        return None


# --- children that die with their parent -------------------------------------------------


def preexec_die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess``: the child gets SIGKILL when this process dies."""
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def arm() -> None:  # pragma: no cover - runs in the forked child
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return arm


def signal_on_parent_death(sig: int) -> None:
    """Have ``sig`` sent to this process when its parent dies (Linux; elsewhere nothing),
    for a process that must clean up before it goes (a handler of ``sig``)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, sig)


def die_with_parent() -> None:
    """Arm the signal in this process (for one started by a tool we do not control: DVC),
    and end it too when the process named in ``MLLC_DIE_WITH`` (the apply) ends."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent is already gone: orphaned before arming
            os._exit(1)
    watched = os.environ.get(WATCH_ENV, "")
    if watched.isdigit() and int(watched) != os.getppid():
        _exit_when_gone(int(watched))


def _exit_when_gone(pid: int) -> None:
    """A daemon thread that ends this process the moment ``pid`` exits (Linux pidfd)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)  # already gone
    except (AttributeError, OSError):
        return  # no pidfd here (not Linux, or too old a kernel): the death signal only

    def wait() -> None:  # pragma: no cover - ends the process
        select.select([fd], [], [])
        os._exit(1)

    threading.Thread(target=wait, name="mllc-die-with", daemon=True).start()
