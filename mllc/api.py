"""The Python API: one function per command, the only entry the CLI (and users' scripts)
use into the operations below (:mod:`mllc.ops`).

Functions here return values or raise :class:`~mllc.errors.MllcError`; they never
print and never exit. Each is a thin call into the operation that does the work;
see docs/architecture.md for the layers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mllc.atomic import write_text
from mllc.errors import MllcError, SpecError
from mllc.saferead import read_text
from mllc.spec.load import find_config, load_estimators, load_file
from mllc.spec.models import Lifecycle
from mllc.spec.report import ValidationReport
from mllc.spec.repository import load_specs, relative_path, validate_paths

if TYPE_CHECKING:
    from mllc.apply.run import ApplyResult
    from mllc.compile import Bundle
    from mllc.ops.diff import SemanticDiff
    from mllc.ops.monitor import Outcome
    from mllc.ops.promote import Proposal
    from mllc.ops.score import ScoreResult
    from mllc.plan.model import Plan, Planned
    from mllc.preview.model import Preview
    from mllc.verify.model import VerifyReport

# Start-up: each function imports the operation it calls, so that `mllc validate` loads
# the spec layer only and never pays for apply, monitoring or the registry (the CLI
# imports this module for every command). Hence the PLC0415 exemption of this file.

__all__ = [
    "CompileReport",
    "ValidationReport",
    "apply",
    "check_saved_plan",
    "compile",
    "compile_bundle",
    "diff",
    "dump_yaml",
    "explain",
    "force_unlock",
    "init",
    "load",
    "load_plan",
    "load_specs",
    "monitor",
    "plan",
    "plan_comment",
    "predict",
    "preview",
    "promote",
    "read_rows",
    "relative_path",
    "rollback",
    "schema_text",
    "score",
    "status",
    "validate",
    "verify",
    "version_classes",
    "write_text",
]


def validate(paths: Sequence[str], root: str | os.PathLike[str] = ".") -> ValidationReport:
    """Validate every spec under ``paths`` (relative to ``root``); never raises for a bad
    spec."""
    return validate_paths(paths, root)


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
    "verify": "schemas/verify.v1.json",
}


def schema_text(kind: str = "lifecycle") -> str:
    """The JSON Schema of the spec language (``lifecycle``), of ``plan --json`` (``plan``),
    of the monitoring report (``monitor``: ``monitoring/<name>/<env>/report.json``) or of
    ``mllc verify --json`` (``verify``)."""
    from mllc.observe.monitoring import MonitorReport
    from mllc.plan.model import Plan
    from mllc.spec.reference import json_schema
    from mllc.verify.model import VerifyReport

    if kind == "plan":
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **Plan.model_json_schema(mode="serialization"),
            "title": "mllc plan (format_version 1)",
        }
    elif kind == "monitor":
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **MonitorReport.model_json_schema(mode="serialization"),
            "title": "mllc monitoring report (format_version 1)",
        }
    elif kind == "verify":
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **VerifyReport.model_json_schema(mode="serialization"),
            "title": "mllc verify --json (format_version 1)",
        }
    elif kind == "lifecycle":
        schema = json_schema()
    else:
        raise MllcError(f"no schema {kind!r}: lifecycle, plan, monitor or verify")
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


@dataclass(frozen=True)
class CompileReport:
    written: tuple[str, ...]
    unchanged: tuple[str, ...]


def compile_bundle(paths: Sequence[str], root: str = ".") -> Bundle:
    """The files the specs under ``paths`` generate (pure: nothing is written)."""
    from mllc.compile.repository import compile_repository

    specs = [(relative_path(file, Path(root)), spec) for file, spec in load_specs(paths, root)]
    return compile_repository(specs)


def compile(paths: Sequence[str], root: str = ".", check: bool = False) -> CompileReport:
    """Write (or with ``check``, only compare) every generated file; atomic per file."""
    bundle = compile_bundle(paths, root)
    written: list[str] = []
    unchanged: list[str] = []
    for rel, text in bundle.items():
        target = Path(root) / rel
        # What is there now: inside the repository, regular, capped (refused and named if not).
        current = read_text(target, root, shown=rel)
        changed = current != text and (check or write_text(target, text))
        (written if changed else unchanged).append(rel)
    return CompileReport(tuple(written), tuple(unchanged))


def plan(paths: Sequence[str], root: str = ".", target: str | None = None) -> Planned:
    """What apply would do, and why. Reads only: runs no spec code, loads no model."""
    from mllc.ops.plan import make_plan

    return make_plan(Path(root), paths, target)


def plan_comment(planned: Planned, root: str = ".") -> str:
    """The plan as the pull-request comment (Markdown), with each version's metric deltas
    against the one running (read from the registry and metrics.json)."""
    from mllc.plan.markdown import markdown, metric_deltas

    return markdown(planned.plan, metric_deltas(Path(root), planned.plan))


def explain(field: str = "") -> str:
    """A field of the spec language: its type, default and meaning ("" for the top)."""
    from mllc.spec.reference import explain as explain_field

    return explain_field(field)


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
    from mllc.ops import apply as applying

    return applying.check_saved_plan(saved, Path(root))


def apply(
    planned: Planned,
    root: str = ".",
    progress: Callable[[str], None] = lambda _line: None,
    lock_timeout: float | None = None,
    saved: bool = False,
) -> ApplyResult:
    """Carry out ``planned`` (runs the pipeline: training code runs)."""
    from mllc.ops import apply as applying

    return applying.apply(Path(root), planned, progress, lock_timeout, saved)


def force_unlock(lock_id: str, root: str = ".") -> str:
    from mllc.apply.lock import force_unlock as unlock

    return unlock(Path(root), lock_id).describe()


def status(paths: Sequence[str], root: str = ".", candidates: bool = False) -> dict[str, Any]:
    """Per lifecycle: pipeline freshness, versions with metrics and gates, deployments;
    with ``candidates``, every candidate of every version and where each version runs.
    ``paths`` are spec files or folders, or lifecycle names."""
    from mllc.ops import status as statusing

    return statusing.collect(Path(root), paths, candidates)


def card(ref: str, fmt: str = "md", root: str = ".") -> str:
    """The model card of a registered version (``NAME`` for its newest, or
    ``NAME@vX.Y.Z``) as Markdown (``md``) or HTML, built only from recorded evidence."""
    from mllc.ops import card as cards

    return cards.card(Path(root), ref, fmt)


def lineage(ref: str, fmt: str = "text", root: str = ".") -> str:
    """``NAME@vX.Y.Z``'s lineage (data → stages → model → environments) as ``text``,
    ``mermaid`` or ``json``."""
    from mllc.ops import lineage as lineages

    return lineages.lineage(Path(root), ref, fmt)


def init(directory: str, remote: str | None = None, endpoint_url: str | None = None) -> list[str]:
    """Scaffold a repository (and configure its default DVC remote when ``remote`` is
    given); returns what was done, one line per action."""
    from mllc.ops import init as scaffolding

    done = scaffolding.scaffold(Path(directory))
    if remote is not None or endpoint_url is not None:
        done += scaffolding.configure_remote(Path(directory), remote, endpoint_url)
    return done


def monitor(
    paths: Sequence[str],
    name: str,
    env: str | None = None,
    data: str | None = None,
    captured: bool = False,
    root: str = ".",
) -> Outcome:
    """Check a batch against the training data and the deployed model's gates; writes the
    report under ``monitoring/<name>/<env>/`` (loads the deployed model when labelled)."""
    from mllc.ops import monitor as monitoring

    return monitoring.monitor(Path(root), paths, name, env, data, captured)


def promote(paths: Sequence[str], name: str, version: str, env: str, root: str = ".") -> Proposal:
    """A branch pinning ``version`` in ``env``, checked as apply would check it."""
    from mllc.ops import promote as promoting

    return promoting.promote(promoting.repo_root(Path(root)), paths, name, version, env)


def rollback(paths: Sequence[str], name: str, env: str, root: str = ".") -> Proposal:
    """A branch pinning the version ``env`` ran before the current one."""
    from mllc.ops import promote as promoting

    return promoting.rollback(promoting.repo_root(Path(root)), paths, name, env)


def diff(
    base_ref: str, head_ref: str, paths: Sequence[str] = ("specs",), root: str = "."
) -> SemanticDiff:
    """What changed in meaning between the specs at two Git refs."""
    from mllc.ops import diff as diffing

    return diffing.semantic_diff(Path(root), base_ref, head_ref, paths)


def predict(
    lifecycle: str, environment: str, body: dict[str, Any], root: str = "."
) -> dict[str, Any]:
    """One V2 inference request to the environment's local server."""
    from mllc.ops import predict as predicting

    return predicting.predict(Path(root), lifecycle, environment, body)


def read_rows(source: str) -> dict[str, Any]:
    """Rows for :func:`predict` from a CSV or JSON file, or inline JSON."""
    from mllc.ops import predict as predicting

    return predicting.read_rows(source)


def version_classes(lifecycle: str, version: str, root: str = ".") -> list[str] | None:
    """The class labels ``version`` was trained on (its committed metrics), if any."""
    from mllc.ops import predict as predicting

    return predicting.version_classes(Path(root), lifecycle, version)


def preview(
    paths: Sequence[str],
    root: str = ".",
    timeout: float | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> Preview:
    """Run the pipelines the plan would retrain in an isolated worktree and compare what
    they produce with what each environment runs (training code runs; nothing is
    committed, registered or deployed)."""
    from mllc.ops import preview as previewing

    return previewing.preview(Path(root), paths, timeout, progress)


def verify(
    versions: Sequence[str],
    every: bool = False,
    root: str = ".",
    timeout: float | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> VerifyReport:
    """Rebuild registered versions (``NAME@vX.Y.Z``, ``NAME`` or ``every``) from their tags,
    every stage recomputed, and compare the outputs, the model's bytes, the DVC cache and
    the registry's records with the rebuild (training code runs; nothing is committed)."""
    from mllc.ops import verify as verifying

    return verifying.verify(Path(root), versions, every, timeout, progress)


def score(
    name: str,
    data: str,
    out: str,
    env: str | None = None,
    version: str | None = None,
    id_column: str | None = None,
    chunk_rows: int | None = None,
    root: str = ".",
    progress: Callable[[str], None] = lambda _line: None,
    backend: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
) -> ScoreResult:
    """Predictions of the version ``env`` runs (or ``version``) for every row of ``data``
    (CSV or Parquet), read in chunks, written to ``out``; loads the hash-checked model.
    ``backend="dask"``: the chunks are scored on the workers of the scheduler whose
    address the ``scheduler`` reference (``env:NAME``) names, or of a local cluster."""
    from mllc.ops import score as scoring

    rows = scoring.CHUNK_ROWS if chunk_rows is None else chunk_rows
    return scoring.score(
        Path(root),
        name,
        data,
        out,
        env,
        version,
        id_column,
        rows,
        progress,
        backend=backend,
        scheduler=scheduler,
        workers=workers,
    )
