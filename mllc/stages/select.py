"""Stage ``select``: pick the best candidate, publish it as the lifecycle's model, record lineage.

The best candidate has the best validation score by ``problem.metric``
(higher or lower is better as ``mllc.spec.vocab.higher_is_better`` says); a
candidate without that score (``null``: the metric was not computable for
it) cannot win, and ties go to the first name in sorted order. Its joblib
file is copied byte for byte, so ``model_sha256`` identifies the candidate's
file too.

Writes ``model.joblib``, ``metrics.json`` (for ``dvc metrics show``),
``lineage.json`` and ``plots/confusion.csv`` (classification: ``actual,predicted``
per test row) or ``plots/residuals.csv`` (regression:
``actual,predicted,residual`` with residual = actual - predicted).
"""

from __future__ import annotations

import csv
import hashlib
import io
import platform
from typing import Any

import numpy

import mllc
from mllc.spec import vocab
from mllc.stages.evaluate import load_model
from mllc.stages.io import (
    Outputs,
    Params,
    StageError,
    brief,
    file_sha256,
    params_sha256,
    progress,
    read_frame,
    read_json,
    round_float,
)


def choose(scores: dict[str, Any], metric: str) -> str:
    """The best candidate by validation ``metric``; ties go to the first name."""
    higher = vocab.higher_is_better(metric)
    ranked: list[tuple[float, str]] = []
    for name in sorted(scores):
        value = (scores[name].get("validation") or {}).get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            ranked.append((-value if higher else value, name))
    if not ranked:
        raise StageError(
            f"select: no candidate has a validation {metric} (every value is null in "
            "reports/candidates/): choose a metric the candidates can be scored by"
        )
    return min(ranked)[1]


def run(params: Params) -> None:
    layout = params.layout
    task = params.problem.task
    metric = params.problem.metric
    scores: dict[str, Any] = {}
    for name in sorted(params.models):
        report = read_json(layout.candidate_report(name), "stage evaluate")
        if not isinstance(report, dict) or not isinstance(report.get("validation"), dict):
            raise StageError(
                f"{layout.candidate_report(name)}: no 'validation' metrics; rerun stage evaluate"
            )
        scores[name] = report
    best = choose(scores, metric)
    is_command = params.models[best].command is not None
    model = load_model(layout, best, is_command)
    model_bytes = layout.candidate(best).read_bytes()

    test = read_frame(layout.split("test"), "stage split")
    target = params.problem.target
    actual = test[target].to_numpy()
    try:
        predicted = model.predict(test.drop(columns=[target]))
    except (ValueError, TypeError, KeyError) as exc:
        raise StageError(f"select: {best} cannot predict the test split: {brief(exc)}") from None
    kinds = ("confusion", "residuals")
    plot, other = kinds if task == "classification" else kinds[::-1]

    outputs = Outputs()
    outputs.write_bytes(layout.model, model_bytes)
    outputs.write_json(
        layout.metrics,
        {
            "model": best,
            "metric": metric,
            "validation": scores[best]["validation"],
            "test": scores[best]["test"],
        },
    )
    outputs.write_json(
        layout.lineage,
        {
            "lifecycle": params.lifecycle,
            "selected": best,
            "metric": metric,
            "validated_on": scores[best].get("validated_on"),
            "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
            "data_sha256": file_sha256(layout.clean),
            "params_sha256": params_sha256(params.raw, best),
            "candidates": {
                name: {
                    "validation": (scores[name].get("validation") or {}).get(metric),
                    "test": (scores[name].get("test") or {}).get(metric),
                }
                for name in sorted(scores)
            },
            "versions": _versions(),
        },
    )
    outputs.write_text(layout.plot(plot), _plot_csv(task, actual, predicted))
    outputs.remove(layout.plot(other))
    outputs.commit()
    value = scores[best]["validation"][metric]
    progress(f"select: {best} (validation {metric} {value}, test {scores[best]['test'][metric]})")


def _plot_csv(task: str, actual: Any, predicted: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if task == "classification":
        writer.writerow(["actual", "predicted"])
        for a, p in zip(actual.tolist(), list(predicted), strict=True):
            writer.writerow([_label(a), _label(p)])
    else:
        writer.writerow(["actual", "predicted", "residual"])
        for a, p in zip(actual.tolist(), list(predicted), strict=True):
            writer.writerow([_number(a), _number(p), _number(float(a) - float(p))])
    return out.getvalue()


def _label(value: Any) -> str:
    return str(value.item() if hasattr(value, "item") else value)


def _number(value: Any) -> str:
    rounded = round_float(value)
    return "" if rounded is None else repr(rounded)


def _versions() -> dict[str, str]:
    import pandas
    import sklearn

    return {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "mllc": mllc.__version__,
    }
