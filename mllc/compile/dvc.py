"""Spec -> ``pipelines/<name>/dvc.yaml`` and ``params.yaml`` (pure).

Layout (repository-root relative; every stage runs with ``wdir: ../..``)::

    pipelines/<name>/params.yaml           values the stages read (never the shell line)
    pipelines/<name>/data/clean.parquet    prepare
    pipelines/<name>/reports/data.json     prepare: rows in/out, dropped and why
    pipelines/<name>/data/{train,validation,test}.parquet    split
    pipelines/<name>/candidates/<m>.joblib train@<m> (or the user's command for train-<m>)
    pipelines/<name>/reports/train/<m>.json
    pipelines/<name>/reports/candidates.json, reports/metrics/<m>.json   evaluate
    pipelines/<name>/model.joblib, metrics.json, lineage.json, plots/   select
    pipelines/<name>/feedback/             labelled monitoring batches (with monitoring):
                                           a dep of prepare, each batch DVC-tracked

DVC ``metrics`` are only what a reviewer compares: each candidate's validation
and test metrics (``reports/metrics/<m>.json``) and the selected model's
(``metrics.json``), the same keys in each, so ``dvc metrics show`` prints one
row per candidate and ``dvc metrics diff`` short names. The other reports (the
data report, the training reports, ``candidates.json`` with how each candidate
was validated) are plain outputs kept in Git (``cache: false``).

Each stage declares exactly the params it reads, so DVC reruns only what a
change touches: one candidate's params make only its ``train@`` stale (and
evaluate/select through their deps). Gates, environments, monitoring and
metadata are not stage params: changing them trains nothing. One dvc.yaml and
one small params.yaml per lifecycle keep ``dvc status`` linear in the number of
lifecycles (docs/pipelines.md; bench/bench_plan.py measures it with 1 and 50).
"""

from __future__ import annotations

import copy
from typing import Any

from mllc.layout import Layout
from mllc.spec.models import Lifecycle

# Bumped when a built-in stage computes something differently: every stage
# tracks it, so the plan shows "code changed" and retrains.
STAGES_VERSION = 1


def pipeline_dir(name: str) -> str:
    return Layout(name).root.as_posix()


def feedback_dir(name: str) -> str:
    return Layout(name).feedback.as_posix()


FEEDBACK_README = """\
Labelled batches that `mllc monitor` found breaching, added to the training data
by `mllc apply` (`on_breach: retrain`). Each `<time>-<report id>.parquet` is
tracked by DVC (its `.dvc` pointer is committed); the prepare stage appends them
to the source, oldest first. Remove a batch (and its `.dvc` file) to train
without it.
"""


def params_document(spec: Lifecycle) -> dict[str, Any]:
    """What ``params.yaml`` holds: the sections the stages read, every default filled in."""
    dumped = spec.model_dump(mode="json")
    return {
        "mllc": {"stages": STAGES_VERSION},
        "problem": dumped["problem"],
        "data": dumped["data"],
        "features": dumped["features"],
        "models": dumped["models"],
    }


def _no_cache(path: str) -> dict[str, dict[str, bool]]:
    return {path: {"cache": False}}


def _params(params_file: str, keys: list[str]) -> list[dict[str, list[str]]]:
    return [{params_file: keys}]


def dvc_document(spec: Lifecycle) -> dict[str, Any]:
    """The ``dvc.yaml`` of one lifecycle, as plain data in stage order."""
    name = spec.metadata.name
    layout = Layout(name)
    root = layout.root.as_posix()
    params_file = f"{root}/params.yaml"
    data = f"{root}/data"
    base = {"wdir": "../.."}
    code = "mllc.stages"

    source = spec.data.source
    source_deps = [p for p in (source.csv, source.parquet) if p is not None]
    splits = [f"{data}/train.parquet", f"{data}/test.parquet"]
    if spec.data.split.validation is not None:
        splits.insert(1, f"{data}/validation.parquet")

    stages: dict[str, Any] = {}
    prepare: dict[str, Any] = {
        **base,
        "cmd": f"mllc stage prepare {name}",
        "params": _params(
            params_file,
            [
                code,
                "data.cleaning",
                "data.columns",
                "data.source",
                "features.exclude",
                "problem.target",
                "problem.task",
            ],
        ),
    }
    if spec.monitoring is not None:
        # Labelled batches mllc monitor found breaching join the training data here
        # (apply adds each with dvc add): a new batch is a new data version.
        source_deps = [*source_deps, feedback_dir(name)]
    if source_deps:
        prepare["deps"] = source_deps
    prepare["outs"] = [f"{data}/clean.parquet", _no_cache(f"{root}/reports/data.json")]
    stages["prepare"] = prepare

    stages["split"] = {
        **base,
        "cmd": f"mllc stage split {name}",
        "params": _params(params_file, [code, "data.split", "problem.target", "problem.task"]),
        "deps": [f"{data}/clean.parquet"],
        "outs": splits,
    }

    estimators = [m for m, c in spec.models.items() if c.estimator is not None]
    commands = [m for m, c in spec.models.items() if c.command is not None]
    train_params = [code, "data.split.seed", "features", "models.${item}", "problem"]
    if estimators:
        stages["train"] = {
            "foreach": estimators,
            "do": {
                **base,
                "cmd": f"mllc stage train {name} ${{item}}",
                "params": _params(params_file, train_params),
                "deps": [f"{data}/train.parquet"],
                "outs": [
                    f"{root}/candidates/${{item}}.joblib",
                    _no_cache(f"{root}/reports/train/${{item}}.json"),
                ],
            },
        }
    for m in commands:
        cand = spec.models[m]
        # The user's own command is their shell line, run as written; its inputs
        # are the training split and the declared deps.
        stages[f"train-{m}"] = {
            **base,
            "cmd": cand.command,
            "params": _params(params_file, [f"models.{m}"]),
            "deps": [f"{data}/train.parquet", *cand.deps],
            "outs": [f"{root}/candidates/{m}.joblib"],
        }

    candidates = [f"{root}/candidates/{m}.joblib" for m in spec.models]
    stages["evaluate"] = {
        **base,
        "cmd": f"mllc stage evaluate {name}",
        "params": _params(
            params_file, [code, "data.split.seed", "data.split.validation", "models", "problem"]
        ),
        "deps": [*candidates, *splits],
        "outs": [_no_cache(f"{root}/reports/candidates.json")],
        "metrics": [_no_cache(layout.candidate_metrics(m).as_posix()) for m in spec.models],
    }

    plot = (
        {"template": "confusion", "x": "actual", "y": "predicted"}
        if spec.problem.task == "classification"
        else {"template": "scatter", "x": "actual", "y": "predicted"}
    )
    plot_file = "confusion.csv" if spec.problem.task == "classification" else "residuals.csv"
    stages["select"] = {
        **base,
        "cmd": f"mllc stage select {name}",
        "params": _params(params_file, [code, "data", "features", "models", "problem"]),
        "deps": [
            f"{root}/reports/candidates.json",
            *candidates,
            f"{data}/clean.parquet",
            f"{data}/test.parquet",
        ],
        "outs": [f"{root}/model.joblib", _no_cache(f"{root}/lineage.json")],
        "metrics": [_no_cache(f"{root}/metrics.json")],
        "plots": [{f"{root}/plots/{plot_file}": {"cache": False, **plot}}],
    }
    return {"stages": stages}


# The reasons a plan gives when a dvc.yaml differs from what its spec compiles to only
# by what earlier_format undoes (the repository was applied by an earlier mllc).
METRICS_NARROWED = (
    "written by an earlier mllc: the DVC metrics are now only reports/metrics/<candidate>.json "
    "and metrics.json",
    "the data, training and candidates reports become plain outputs; apply rewrites the file "
    "and evaluate runs once to write the new ones (no training)",
)


def earlier_format(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (a :func:`dvc_document`) as mllc wrote it before :data:`METRICS_NARROWED`:
    the data, training and candidates reports were the metrics, and no candidate had
    a metrics file of its own."""
    old = copy.deepcopy(doc)
    stages = old.get("stages") or {}
    for key in ("prepare", "train"):  # their last out was their report
        if key in stages:
            body = stages[key].get("do", stages[key])
            body["metrics"] = [body["outs"].pop()]
    if "evaluate" in stages:
        stages["evaluate"]["metrics"] = stages["evaluate"].pop("outs")
    return old
