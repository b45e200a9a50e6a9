"""Child processes that die with their parent (Linux ``PR_SET_PDEATHSIG``).

A killed ``mllc apply`` must not leave DVC, or the stage DVC started, running on
alone and writing outputs behind the next apply's back. ``prctl`` is resolved in
the parent, so the forked child does no imports or library loading before it
arms the signal; right after arming, the child checks its parent is still the
one that forked it (the parent may have died in between).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

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
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


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
