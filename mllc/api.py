"""The Python API: plain functions the CLI (and users' scripts) call.

Functions here return values or raise :class:`~mllc.errors.MllcError`; they
never print and never exit.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mllc.errors import Diagnostic, SpecError
from mllc.spec.load import find_config, load_all, load_estimators, load_file
from mllc.spec.models import Lifecycle
from mllc.spec.report import ValidationReport

__all__ = ["ValidationReport", "dump_yaml", "init", "load", "schema_text", "validate", "write_text"]


def validate(paths: Sequence[str]) -> ValidationReport:
    """Validate every spec under ``paths``; never raises for a bad spec."""
    results, problems = load_all(paths)
    if not results and not problems:
        problems = [Diagnostic(", ".join(paths), 0, 0, "", "no spec files (*.yaml, *.yml)")]
    return ValidationReport(tuple(results), tuple(problems))


def load(path: str) -> Lifecycle:
    """One valid spec, or SpecError carrying every diagnostic."""
    config = find_config(Path(path).resolve().parent)
    estimators, problems = load_estimators(config)
    result = load_file(path, estimators)
    if result.spec is None or problems:
        raise SpecError(diagnostics=[*problems, *result.diagnostics])
    return result.spec


def dump_yaml(spec: Lifecycle) -> str:
    import yaml

    return yaml.safe_dump(spec.dump(), sort_keys=False, allow_unicode=True, width=100)


def schema_text() -> str:
    from mllc.spec.reference import json_schema

    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def write_text(path: str | os.PathLike[str], text: str) -> bool:
    """Write ``text`` atomically (temp file + rename); False when it was already there."""
    target = Path(path)
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def init(directory: str) -> list[str]:
    """Scaffold a repository; returns what was done, one line per action."""
    from mllc.scaffold import scaffold

    return scaffold(Path(directory))
