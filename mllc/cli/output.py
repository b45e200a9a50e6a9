"""Terminal output shared by the CLI's commands, without importing Typer.

Colour only on a terminal, never with ``NO_COLOR`` set or ``TERM=dumb``.
"""

from __future__ import annotations

import json
import sys

from mllc.errors import EXIT_ERROR, EXIT_OK, error, unexpected, use_color

__all__ = ["error", "unexpected", "use_color"]


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
