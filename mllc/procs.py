"""Child processes that die with their parent (Linux ``PR_SET_PDEATHSIG``).

A killed ``mllc apply`` must not leave DVC, or the stage DVC started, running on
alone and writing outputs behind the next apply's back. ``prctl`` is resolved in
the parent, so the forked child does no imports or library loading before it
arms the signal; right after arming, the child checks its parent is still the
one that forked it (the parent may have died in between).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1


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
    """Arm the signal in this process (for one started by a tool we do not control: DVC)."""
    if _PRCTL is None:
        return
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent is already gone: we were orphaned before arming
        os._exit(1)
