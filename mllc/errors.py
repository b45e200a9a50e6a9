"""Errors and diagnostics: one base class, values that carry their location.

The core never prints and never exits: it raises :class:`MllcError` (or returns
:class:`Diagnostic` values) and the CLI renders them. A diagnostic renders as
``file:line:col: field.path: message`` so editors and CI annotations can jump
to it.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

# Exit codes shared by every command (see README, "Exit codes").
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130


# Every C0/C1 control character and the Unicode line/paragraph separators, escaped.
_ESCAPES = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]
}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def escape_control(text: str) -> str:
    """``text`` on one line: control characters (from data or user input) escaped."""
    return text.translate(_ESCAPES)


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a user's input, with where it is."""

    file: str
    line: int  # 1-based; 0 when the whole file is meant
    column: int  # 1-based; 0 when the whole file is meant
    path: str  # field path into the spec, e.g. ``data.split.test``; "" for the document
    message: str
    code: str = "invalid"
    hint: str | None = field(default=None, compare=False)

    def render(self) -> str:
        """One line, always: control characters from user text are escaped."""
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text.translate(_ESCAPES)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


class MllcError(Exception):
    """A user-facing error: the CLI prints it in one line (or its diagnostics) and exits 1."""

    message = "mllc error"

    def __init__(
        self,
        message: str | None = None,
        diagnostics: Sequence[Diagnostic] = (),
        lines: Sequence[str] = (),
    ) -> None:
        self.detail = message or self.message
        self.diagnostics = tuple(diagnostics)
        self.lines = tuple(lines)  # detail lines printed under the message
        super().__init__(self.detail)

    def render(self) -> list[str]:
        if self.diagnostics:
            return [d.render() for d in self.diagnostics]
        return [self.detail, *self.lines]


class SpecError(MllcError, ValueError):
    """One or more specs are invalid; ``diagnostics`` lists every problem found."""

    message = "invalid spec"


class UsageError(MllcError):
    """A command was called with arguments that cannot work (missing file, bad flag value)."""

    message = "usage error"


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Stable reading order: by file, then position, then path; duplicates removed."""
    seen: set[tuple[str, int, int, str, str]] = set()
    out: list[Diagnostic] = []
    for d in sorted(diags, key=lambda d: (d.file, d.line, d.column, d.path, d.message)):
        key = (d.file, d.line, d.column, d.path, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def use_color(stream: IO[str]) -> bool:
    """Colour only on a terminal, never with ``NO_COLOR`` set or ``TERM=dumb``."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def error(line: str) -> None:
    """One error line on stderr (the CLI's and the stage program's)."""
    prefix = "\x1b[31merror\x1b[0m: " if use_color(sys.stderr) else "error: "
    print(prefix + line, file=sys.stderr)


def unexpected(exc: BaseException, show_traceback: bool) -> int:
    """An exception nobody expected: one line (or the traceback when asked); exit 3."""
    if show_traceback:
        traceback.print_exception(exc)
    else:
        error(f"unexpected error: {type(exc).__name__}: {exc}")
        print("run again with 'mllc --traceback ...' to see where", file=sys.stderr)
    return EXIT_UNEXPECTED
