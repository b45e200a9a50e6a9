"""Spec -> ``pipelines/<name>/dvc.yaml`` and ``params.yaml`` (pure).

Layout (repository-root relative; every stage runs with ``wdir: ../..``)::

    pipelines/<name>/params.yaml           values the stages read (never the shell line)
    pipelines/<name>/data/clean.parquet    prepare
    pipelines/<name>/reports/data.json     prepare: rows in/out, dropped and why
    pipelines/<name>/data/{train,validation,test}.parquet    split
    pipelines/<name>/candidates/<m>.joblib train@<m> (or the user's command for train-<m>)
    pipelines/<name>/reports/train/<m>.json                  train@<m>: what was fitted
    pipelines/<name>/reports/candidates/<m>.json             evaluate: <m>'s metrics
    pipelines/<name>/model.joblib, metrics.json, lineage.json, plots/   select
    pipelines/<name>/feedback/             labelled monitoring batches (with monitoring):
                                           a dep of prepare, each batch DVC-tracked

DVC ``metrics`` are what a reviewer compares: each candidate's validation and test
metrics (``reports/candidates/<m>.json``, one row per candidate in ``dvc metrics
show``, all with the same columns) and the selected model's (``metrics.json``).
They are ``cache: false`` and kept in Git, so a pull request's diff and ``dvc metrics
diff`` show them. The other reports (the data report, the training reports, the
lineage) are plain cached outputs, like the data and the models: DVC saves a stage
to its run cache only when every output it does not cache is a metric or a plot
(``Stage.run``), and the run cache is what restores a stage whose inputs come back
(a reverted param, a preview) instead of running it.
:func:`mllc.observe.pipeline.cached_outputs` lists them, so apply and preview can stop
Git tracking the ones an older mllc kept there.

Each stage declares exactly the params it reads, so DVC reruns only what a
change touches: one candidate's params make only its ``train@`` stale (and
evaluate/select through their deps). Gates, environments, monitoring and
metadata are not stage params: changing them trains nothing; nor is ``compute``,
which params.yaml holds for the stages to read, but no stage declares. One dvc.yaml and
one small params.yaml per lifecycle keep ``dvc status`` linear in the number of
lifecycles (docs/pipelines.md; bench/bench_plan.py measures it with 1 and 50).
"""

from __future__ import annotations

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
    document = {
        "mllc": {"stages": STAGES_VERSION},
        "problem": dumped["problem"],
        "data": dumped["data"],
        "features": dumped["features"],
        "models": dumped["models"],
    }
    if spec.compute is not None:
        # Read by train and evaluate, declared by no stage: where the work runs changes
        # no model, so changing it makes nothing stale (docs/compute.md).
        document["compute"] = dumped["compute"]
    return document


def _no_cache(path: str) -> dict[str, dict[str, bool]]:
    return {path: {"cache": False}}


def _params(params_file: str, keys: list[str]) -> list[dict[str, list[str]]]:
    return [{params_file: keys}]


def dvc_document(spec: Lifecycle) -> dict[str, Any]:
    """The ``dvc.yaml`` of one lifecycle, as plain data in stage order."""
    name = spec.metadata.name
    root = pipeline_dir(name)
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
    prepare["outs"] = [f"{data}/clean.parquet", f"{root}/reports/data.json"]
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
                    f"{root}/reports/train/${{item}}.json",
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
    scores = [f"{root}/reports/candidates/{m}.json" for m in spec.models]
    stages["evaluate"] = {
        **base,
        "cmd": f"mllc stage evaluate {name}",
        "params": _params(
            params_file, [code, "data.split.seed", "data.split.validation", "models", "problem"]
        ),
        "deps": [*candidates, *splits],
        "metrics": [_no_cache(path) for path in scores],
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
            *scores,
            *candidates,
            f"{data}/clean.parquet",
            f"{data}/test.parquet",
        ],
        "outs": [f"{root}/model.joblib", f"{root}/lineage.json"],
        "metrics": [_no_cache(f"{root}/metrics.json")],
        "plots": [{f"{root}/plots/{plot_file}": {"cache": False, **plot}}],
    }
    return {"stages": stages}
