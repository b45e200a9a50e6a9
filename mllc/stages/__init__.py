"""The built-in pipeline stages that the generated dvc.yaml runs: ``mllc stage NAME LIFECYCLE``.

Each stage reads ``pipelines/<lifecycle>/params.yaml`` (written by the
compiler) and files of the stages before it, computes everything, then writes
its outputs atomically (see :mod:`mllc.stages.io`); the current directory is
the repository root. The stages and what they write:

- ``prepare``: ``data/clean.parquet``, ``reports/data.json``
- ``split``: ``data/train.parquet``, ``data/test.parquet`` (+ ``data/validation.parquet``)
- ``train CANDIDATE``: ``candidates/CANDIDATE.joblib``, ``reports/train/CANDIDATE.json``
- ``evaluate``: ``reports/candidates/CANDIDATE.json`` for each candidate
- ``select``: ``model.joblib``, ``metrics.json``, ``lineage.json``,
  ``plots/confusion.csv`` (classification) or ``plots/residuals.csv`` (regression)

Importing this package is cheap: pandas and scikit-learn load only when a
stage runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

from mllc.layout import Layout
from mllc.stages.io import DataError, Params, StageError, params_sha256, progress

__all__ = ["STAGES", "DataError", "Layout", "StageError", "params_sha256", "run_stage"]

STAGES = ("prepare", "split", "train", "evaluate", "select")
MAX_WARNINGS = 5


def command(args: Sequence[str]) -> int:
    """``mllc stage NAME LIFECYCLE [CANDIDATE]`` as DVC runs it: errors on stderr, the exit
    status returned (cold in its own process, or warm in a child of the stage runner)."""
    from mllc.errors import EXIT_ERROR, EXIT_INTERRUPTED, MllcError, error, unexpected

    try:
        run_stage(args[0], args[1], args[2] if len(args) > 2 else None)
    except MllcError as exc:
        for line in exc.render():
            error(line)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        return unexpected(exc, show_traceback=False)
    return 0


def run_stage(name: str, lifecycle: str, candidate: str | None = None) -> None:
    """Run stage ``name`` of ``lifecycle`` from the repository root; StageError on failure."""
    from mllc.stages.io import load_params

    if name not in STAGES:
        raise StageError(f"unknown stage {name!r}: use one of {', '.join(STAGES)}")
    if name == "train" and candidate is None:
        raise StageError("stage train needs a candidate: mllc stage train LIFECYCLE CANDIDATE")
    if name != "train" and candidate is not None:
        raise StageError(f"stage {name} takes no candidate (got {candidate!r})")
    from mllc.procs import die_with_parent

    die_with_parent()  # a killed apply (and its DVC) must not leave this stage writing on
    params = load_params(lifecycle)
    with warnings.catch_warnings(record=True) as caught:
        # Libraries warn once per fit (a search fits dozens of times): collect the
        # warnings and show each distinct one once, after the stage, on one line.
        warnings.simplefilter("always")
        try:
            _dispatch(name, params, candidate)
        finally:
            _report_warnings(name if candidate is None else f"{name} {candidate}", caught)


def _dispatch(name: str, params: Params, candidate: str | None) -> None:
    if name == "prepare":
        from mllc.stages import prepare

        prepare.run(params)
    elif name == "split":
        from mllc.stages import split

        split.run(params)
    elif name == "train":
        assert candidate is not None  # checked above
        _check_candidate(params.models, candidate, params.layout)
        from mllc.stages import train

        train.run(params, candidate)
    elif name == "evaluate":
        from mllc.stages import evaluate

        evaluate.run(params)
    else:
        from mllc.stages import select

        select.run(params)


def _check_candidate(models: Mapping[str, object], candidate: str, layout: Layout) -> None:
    if candidate not in models:
        import difflib

        close = difflib.get_close_matches(candidate, list(models), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise StageError(
            f"no candidate {candidate!r} in {layout.params} "
            f"(candidates: {', '.join(sorted(models))}){hint}"
        )
    if getattr(models[candidate], "estimator", None) is None:
        raise StageError(
            f"candidate {candidate!r} is a command: DVC runs your command, which writes "
            f"{layout.candidate(candidate)}; 'mllc stage train' trains estimator candidates"
        )


def _report_warnings(stage: str, caught: Sequence[warnings.WarningMessage]) -> None:
    counts: dict[tuple[str, str], int] = {}
    for w in caught:
        lines = str(w.message).strip().splitlines()
        key = (w.category.__name__, lines[0] if lines else "")
        counts[key] = counts.get(key, 0) + 1
    for (category, text), n in list(counts.items())[:MAX_WARNINGS]:
        progress(f"{stage}: warning: {category}: {text}" + (f" (x{n})" if n > 1 else ""))
    if len(counts) > MAX_WARNINGS:
        progress(f"{stage}: ... and {len(counts) - MAX_WARNINGS} more distinct warnings")
