"""The small kubectl path of the ``kubernetes`` target: run kubectl bounded, and reduce
what it (or a storage library) prints to one line with no secret in it.

kubectl runs with no stdin, in its own process group killed whole on timeout (credential
plugins included). Messages keep one line, prefer kubectl's own verdict over client-go's
log lines, and mask URL credentials and the values of secret-looking environment
variables.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess

from mllc.errors import MllcError

__all__ = ["context_args", "redact", "run", "summary"]

_KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")  # kubectl's client-go log lines
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:]+:[^/@\s]*@")
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|(^|_)KEY($|_)|API_?KEY", re.I)


def redact(text: str) -> str:
    """Mask what could be a credential: ``user:pass@`` in URLs, secret env values."""
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    for name, value in os.environ.items():
        # Short values would mask ordinary words; a real secret is longer.
        if len(value) >= 6 and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "***")
    return text


def summary(output: str) -> str:
    """The line of kubectl's (or a library's) output that says what went wrong.

    kubectl prints client-go log lines ("E1126 23:58:53 ... memcache.go ...")
    before its own one-line verdict: prefer the first line that is not one.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    plain = [line for line in lines if not _KLOG.match(line)]
    line = (plain or lines or ["no output"])[0]
    if line == "error: EOF":
        # kubectl prompted for a user name (no credentials for that cluster in the
        # kubeconfig) and read the end of our empty stdin.
        line = "kubectl asked for credentials the kubeconfig does not have (error: EOF)"
    if len(line) > 300:
        line = line[:297] + "..."
    return redact(line)


def context_args(context: str | None) -> list[str]:
    if context is None:
        return []
    if not context or any(c in context for c in "\x00\n\r"):
        raise MllcError(f"kubectl context {context!r} is not a context name")
    # One argument, "--context=VALUE": a context read from a spec can never be
    # taken by kubectl as a flag of its own.
    return [f"--context={context}"]


def run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run kubectl with no stdin, in its own process group, killed whole on timeout.

    stdin is empty so a kubectl that prompts for credentials fails at once
    instead of waiting. The process group matters because kubectl may start
    credential plugins (exec auth): killing kubectl alone would leave them
    running after mllc has given up.
    """
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # Bounded: a plugin that left the group could keep the pipes open.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=5)
            raise
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)
