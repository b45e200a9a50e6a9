"""Warm stages: ``mllc stage`` run in a process forked from one that has already imported
pandas and scikit-learn, instead of a new interpreter importing them again.

Every built-in stage is a command DVC runs (``mllc stage NAME LIFECYCLE``); started cold,
each pays the libraries' import (about a second) before its first line of work. ``mllc
apply`` and ``mllc preview`` start one *stage runner* for their run
(:func:`mllc.apply.dvc.stage_runner`): it listens on a Unix socket in a private temporary folder,
imports the libraries and the stage modules once (``python -m mllc.stages.warm``), and
forks one child per stage. The starter binds the socket before DVC starts, so no stage
can miss it; its path reaches the stages in ``MLLC_STAGE_RUNNER`` through DVC's
environment.

:func:`run_warm` is the ``mllc stage`` side (it imports nothing heavy): it passes its
arguments, working directory, environment and its standard input, output and error (the
descriptors themselves, ``SCM_RIGHTS``) to the runner, which forks; the child becomes
the stage (those descriptors, that directory and environment) and sends back its exit
status. Each stage still runs in a process of its own, so nothing of one stage reaches
the next, and the model files are the bytes a cold run writes (tested).

When there is no runner (a user's own ``dvc repro``) or it cannot be reached before the
stage started, the stage runs cold, as before. A stage ends when its ``mllc stage``
process ends (the child watches the connection), when the runner ends (death signal)
and when the apply ends (``MLLC_DIE_WITH``): a killed apply leaves nothing running.
"""

from __future__ import annotations

import json
import os
import socket
import sys

RUNNER_ENV = "MLLC_STAGE_RUNNER"
STARTED = b"S"  # the runner forked the stage: from here on it is the stage's status
STATUS_BYTES = 4


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``sock``, or fewer when the other side closed first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def run_warm(args: list[str]) -> int | None:
    """Run ``mllc stage ARGS`` in the runner ``MLLC_STAGE_RUNNER`` names: its exit status,
    or None when there is no runner or it did not start the stage (run it cold then)."""
    path = os.environ.get(RUNNER_ENV)
    if not path:
        return None
    request = json.dumps({"args": args, "cwd": os.getcwd(), "env": dict(os.environ)})
    body = request.encode("utf-8")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
            socket.send_fds(sock, [len(body).to_bytes(8, "big")], [0, 1, 2])
            sock.sendall(body)
            if recv_exact(sock, 1) != STARTED:
                return None  # the runner did not fork: nothing ran
        except OSError:
            return None
        try:
            status = recv_exact(sock, STATUS_BYTES)
        except OSError:
            status = b""
    if len(status) != STATUS_BYTES:
        print("mllc stage: the stage's process ended without an exit status", file=sys.stderr)
        return 1
    return int.from_bytes(status, "big", signed=True)
