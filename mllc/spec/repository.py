"""The specs of a repository: every spec under some paths, loaded and validated at once.

Every operation starts here: :func:`load_specs` gives (path, spec) pairs or one
:class:`~mllc.errors.SpecError` carrying every diagnostic of every file.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path

from mllc.errors import Diagnostic, MllcError, SpecError
from mllc.spec.load import load_all, under_root
from mllc.spec.models import Lifecycle
from mllc.spec.report import ValidationReport


def validate_paths(paths: Sequence[str], root: str | os.PathLike[str] = ".") -> ValidationReport:
    """Validate every spec under ``paths`` (relative to ``root``); never raises for a bad
    spec."""
    paths = under_root(root, paths)
    results, problems = load_all(paths)
    if not results and not problems:
        problems = [Diagnostic(", ".join(paths), 0, 0, "", "no spec files (*.yaml, *.yml)")]
    return ValidationReport(tuple(results), tuple(problems))


def load_specs(
    paths: Sequence[str], root: str | os.PathLike[str] = "."
) -> list[tuple[str, Lifecycle]]:
    """Every spec under ``paths`` (relative to ``root``) as (path, spec); SpecError with
    every diagnostic otherwise."""
    report = validate_paths(paths, root)
    if not report.ok:
        raise SpecError(diagnostics=report.diagnostics)
    return [(r.file, r.spec) for r in report.results if r.spec is not None]


def relative_path(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def did_you_mean(value: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def find_lifecycle(
    paths: Sequence[str], name: str, root: Path = Path(".")
) -> tuple[str, Lifecycle]:
    specs = load_specs(paths, root)
    for file, spec in specs:
        if spec.metadata.name == name:
            return file, spec
    names = sorted(spec.metadata.name for _, spec in specs)
    raise MllcError(
        f"no lifecycle {name!r} in {', '.join(paths)} (known: {', '.join(names) or 'none'})"
        + did_you_mean(name, names)
    )
