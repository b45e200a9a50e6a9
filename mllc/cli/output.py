"""Terminal output shared by the CLI's commands, without importing Typer.

Colour only on a terminal, never with ``NO_COLOR`` set or ``TERM=dumb``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import IO

from mllc.errors import EXIT_ERROR, EXIT_OK, EXIT_UNEXPECTED


def use_color(stream: IO[str]) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def error(line: str) -> None:
    prefix = "\x1b[31merror\x1b[0m: " if use_color(sys.stderr) else "error: "
    print(prefix + line, file=sys.stderr)


def unexpected(exc: BaseException, show_traceback: bool) -> int:
    if show_traceback:
        traceback.print_exception(exc)
    else:
        error(f"unexpected error: {type(exc).__name__}: {exc}")
        print("run again with 'mllc --traceback ...' to see where", file=sys.stderr)
    return EXIT_UNEXPECTED


def run_validate(paths: list[str], fmt: str, show_traceback: bool = False) -> int:
    """``mllc validate``: diagnostics on stdout, the summary on stderr; 0 valid, 1 not."""
    try:
        from mllc import api

        report = api.validate(paths)
    except Exception as exc:
        return unexpected(exc, show_traceback)
    if fmt == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines():
            print(line)
        print(report.summary(), file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_ERROR
