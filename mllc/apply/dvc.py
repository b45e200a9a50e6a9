"""Running DVC for apply: its environment, its output, and the locks a killed DVC left.

DVC runs as a child process (``python -m dvc``) that dies with apply and whose
stage commands find this installation's ``mllc``, and its stages run warm: forked from
a :func:`stage_runner` that has imported the libraries once (:mod:`mllc.stagerun`).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from mllc.errors import MllcError
from mllc.procs import WATCH_ENV, cmdline, exited, preexec_die_with_parent
from mllc.stagerun import RUNNER_ENV

Progress = Callable[[str], None]


class ApplyFailed(MllcError):
    message = "apply failed"


def dvc_env() -> dict[str, str]:
    """DVC runs ``mllc stage ...``: make this installation's mllc the one it finds."""
    env = dict(os.environ)
    scripts = str(Path(sys.executable).parent)
    env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    env[WATCH_ENV] = str(os.getpid())  # its stages end when this apply ends
    return env


@contextlib.contextmanager
def stage_runner(estimators: Sequence[str] = ()) -> Iterator[dict[str, str]]:
    """A warm runner for the stages of one apply or preview (:mod:`mllc.stagerun`); yields
    the environment DVC passes on to its stages. The socket is bound before the runner
    starts, so a stage that comes early waits for it instead of missing it. Stopped, and
    its folder removed, on the way out; it dies with this process too. ``estimators``: the
    estimator classes the stages will train, whose modules it imports up front."""
    folder = tempfile.mkdtemp(prefix="mllc-stages-")  # mode 0700: this user's stages only
    path = os.path.join(folder, "runner.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    proc: subprocess.Popen[bytes] | None = None
    try:
        try:
            listener.bind(path)  # a TMPDIR too long for a socket path: no runner
            listener.listen(64)
        except OSError:
            listener.close()
            yield {}  # the stages run cold
            return
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mllc.stages.warm",
                str(listener.fileno()),
                *sorted({e.rpartition(".")[0] for e in estimators}),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=[listener.fileno()],
            preexec_fn=preexec_die_with_parent(),
        )
        listener.close()
        yield {RUNNER_ENV: path}
    finally:
        listener.close()
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def run_dvc(
    root: Path, args: Sequence[str], progress: Progress, env: Mapping[str, str] | None = None
) -> None:
    """``dvc ARGS`` in ``root``, its stage lines to ``progress``; ``env`` adds to DVC's."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env={**dvc_env(), **(env or {})},
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


class TimedOut(MllcError):
    message = "dvc timed out"


def stream_dvc(
    root: Path,
    args: Sequence[str],
    on_line: Callable[[float, str], None],
    deadline: float | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """``dvc ARGS`` in ``root`` in a process group of its own; each output line goes to
    ``on_line`` with the monotonic time it was read. At ``deadline`` (monotonic), and when
    the caller is interrupted, the whole group (DVC and its stages) is killed, then
    :class:`TimedOut` is raised (or the interruption goes on). Returns DVC's exit status."""
    # PYTHONUNBUFFERED: lines as they happen, for the stage timings
    full = {**dvc_env(), "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env=full,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # one group: a timeout kills the stages with DVC
        preexec_fn=preexec_die_with_parent(),
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = b""
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimedOut(f"dvc {' '.join(args)} did not end in time")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:  # end of output: DVC is ending
                break
            *lines, pending = (pending + chunk).split(b"\n")
            now = time.monotonic()
            for line in lines:
                on_line(now, line.decode("utf-8", "replace").rstrip())
        if pending:
            on_line(time.monotonic(), pending.decode("utf-8", "replace").rstrip())
        return proc.wait()
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        proc.stdout.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group, SIGKILL after 5 s; reaped."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
