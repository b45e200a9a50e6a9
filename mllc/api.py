"""The Python API: plain functions the CLI (and users' scripts) call.

Functions here return values or raise :class:`~mllc.errors.MllcError`; they
never print and never exit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mllc.errors import Diagnostic, MllcError, SpecError
from mllc.spec.load import find_config, load_all, load_estimators, load_file, under_root
from mllc.spec.models import Lifecycle
from mllc.spec.report import ValidationReport

if TYPE_CHECKING:
    from mllc.apply.run import ApplyResult
    from mllc.compile import Bundle
    from mllc.plan import Planned
    from mllc.plan.model import Plan

__all__ = [
    "CompileReport",
    "ValidationReport",
    "apply",
    "check_saved_plan",
    "compile",
    "compile_bundle",
    "dump_yaml",
    "force_unlock",
    "init",
    "load",
    "load_plan",
    "load_specs",
    "plan",
    "relative_path",
    "schema_text",
    "status",
    "validate",
    "write_text",
]


def validate(paths: Sequence[str], root: str | os.PathLike[str] = ".") -> ValidationReport:
    """Validate every spec under ``paths`` (relative to ``root``); never raises for a bad
    spec."""
    paths = under_root(root, paths)
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
    """The spec as YAML that reads back to an equal spec (see ``compile.dump_yaml``)."""
    from mllc.compile import dump_yaml as dump

    return dump(spec.dump(), sort_keys=False)


# Where `mllc schema --kind KIND` writes by default (the files `make docs` keeps current).
SCHEMA_FILES = {
    "lifecycle": "schemas/lifecycle.v1.json",
    "plan": "schemas/plan.v1.json",
    "monitor": "schemas/monitor-report.v1.json",
}


def schema_text(kind: str = "lifecycle") -> str:
    """The JSON Schema of the spec language (``lifecycle``), of ``plan --json`` (``plan``)
    or of the monitoring report (``monitor``: ``monitoring/<name>/<env>/report.json``)."""
    if kind == "plan":
        from mllc.plan.model import Plan

        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **Plan.model_json_schema(mode="serialization"),
            "title": "mllc plan (format_version 1)",
        }
    elif kind == "monitor":
        from mllc.monitor.report import MonitorReport

        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **MonitorReport.model_json_schema(mode="serialization"),
            "title": "mllc monitoring report (format_version 1)",
        }
    elif kind == "lifecycle":
        from mllc.spec.reference import json_schema

        schema = json_schema()
    else:
        raise MllcError(f"no schema {kind!r}: lifecycle, plan or monitor")
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def write_text(path: str | os.PathLike[str], text: str) -> bool:
    """Write ``text`` atomically (temp file + rename); False when it was already there."""
    from mllc.atomic import write_bytes

    target = Path(path)
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return False
    write_bytes(target, text.encode("utf-8"))
    return True


@dataclass(frozen=True)
class CompileReport:
    written: tuple[str, ...]
    unchanged: tuple[str, ...]


def load_specs(
    paths: Sequence[str], root: str | os.PathLike[str] = "."
) -> list[tuple[str, Lifecycle]]:
    """Every spec under ``paths`` (relative to ``root``) as (path, spec); SpecError with
    every diagnostic otherwise."""
    report = validate(paths, root)
    if not report.ok:
        raise SpecError(diagnostics=report.diagnostics)
    return [(r.file, r.spec) for r in report.results if r.spec is not None]


def relative_path(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def compile_bundle(paths: Sequence[str], root: str = ".") -> Bundle:
    """The files the specs under ``paths`` generate (pure: nothing is written)."""
    from mllc.compile import Bundle, compile_spec
    from mllc.compile.workflow import WORKFLOW_PATH, render_workflow

    bundle = Bundle(())
    specs, sources = [], []
    for file, spec in load_specs(paths, root):
        source = relative_path(file, Path(root))
        bundle = bundle + compile_spec(spec, source)
        specs.append(spec)
        sources.append(source)
    # The repository's CI workflow: plan on pull requests, apply on the default branch.
    workflow = render_workflow(specs, sources)
    return bundle + Bundle(((WORKFLOW_PATH, workflow),))


def compile(paths: Sequence[str], root: str = ".", check: bool = False) -> CompileReport:
    """Write (or with ``check``, only compare) every generated file; atomic per file."""
    bundle = compile_bundle(paths, root)
    written: list[str] = []
    unchanged: list[str] = []
    from mllc.saferead import read_text

    for rel, text in bundle.items():
        target = Path(root) / rel
        # What is there now: inside the repository, regular, capped (refused and named if not).
        current = read_text(target, root, shown=rel)
        changed = current != text and (check or write_text(target, text))
        (written if changed else unchanged).append(rel)
    return CompileReport(tuple(written), tuple(unchanged))


def plan(paths: Sequence[str], root: str = ".", target: str | None = None) -> Planned:
    """What apply would do, and why. Reads only: runs no spec code, loads no model."""
    from mllc.plan import make_plan

    return make_plan(Path(root), paths, target)


def load_plan(path: str) -> Plan:
    from pydantic import ValidationError

    from mllc.plan.model import Plan

    try:
        return Plan.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise MllcError(f"{path} is not a saved mllc plan: {first}") from None


def check_saved_plan(saved: Plan, root: str = ".") -> Planned:
    """Plan again; refuse with every difference when the world moved since ``saved``."""
    from mllc.plan import make_plan, stale_reasons

    if saved.binding is None:
        raise MllcError("the saved plan records nothing it saw: save it with 'mllc plan --out'")
    now = make_plan(Path(root), list(saved.binding.specs) or ["specs"], saved.target)
    assert now.plan.binding is not None
    reasons = stale_reasons(saved.binding, now.plan.binding)
    if reasons:
        raise MllcError(
            "stale plan: the world changed since it was made; run 'mllc plan' again\n  "
            + "\n  ".join(reasons)
        )
    return now


def apply(
    planned: Planned,
    root: str = ".",
    progress: Callable[[str], None] = lambda _line: None,
    lock_timeout: float | None = None,
    saved: bool = False,
) -> ApplyResult:
    from mllc.apply.run import apply as run

    return run(Path(root), planned, progress, lock_timeout, saved)


def force_unlock(lock_id: str, root: str = ".") -> str:
    from mllc.apply.lock import force_unlock as unlock

    return unlock(Path(root), lock_id).describe()


def status(paths: Sequence[str], root: str = ".") -> dict[str, Any]:
    """Per lifecycle: pipeline freshness, versions with metrics and gates, deployments."""
    from mllc.status import collect

    return collect(Path(root), paths)


def init(directory: str) -> list[str]:
    """Scaffold a repository; returns what was done, one line per action."""
    from mllc.scaffold import scaffold

    return scaffold(Path(directory))
