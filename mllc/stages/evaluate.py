"""Stage ``evaluate``: score every candidate on validation and test, by every metric of the task.

Validation scores come from the validation split when ``data.split.validation``
is set. Otherwise they come from 5-fold cross-validation on the training split:
each fold fits a ``sklearn.base.clone`` of the candidate (with the parameters
its search chose) and predicts the held-out fold, and the metrics are computed
once over the assembled out-of-fold predictions. An estimator candidate's five
fits run where the spec's ``compute`` says (:mod:`mllc.stages.compute`; in order,
in this process, by default); a command candidate's always run here, since its
model's code need not exist on a cluster's workers. A command candidate whose
model cannot be cloned or refitted is scored on the training split instead,
and its entry says so (``validated_on: train`` and a ``note``): such a score
is optimistic.

Models are given the split's columns without the target; estimator
candidates pick their feature columns by name, a command candidate's model
gets every other column.

Writes ``reports/candidates/<name>.json`` for every candidate (DVC metrics, so
``dvc metrics show`` prints one row per candidate): ``{"validation": {...},
"test": {...}, "validated_on": "validation" | "cv5" | "train"[, "note": ...]}``,
and removes the ``reports/candidates.json`` an older mllc wrote instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mllc.layout import Layout
from mllc.stages import compute, metrics
from mllc.stages.io import Outputs, Params, StageError, brief, progress, read_frame, require

CV_FOLDS = 5


def run(params: Params) -> None:
    layout = params.layout
    task = params.problem.task
    target = params.problem.target
    train = _xy(read_frame(layout.split("train"), "stage split"), target)
    test = _xy(read_frame(layout.split("test"), "stage split"), target)
    validation = None
    if params.data.split.validation is not None:
        validation = _xy(read_frame(layout.split("validation"), "stage split"), target)

    if validation is None and any(m.command is None for m in params.models.values()):
        compute.check(params, "evaluate")
    results: dict[str, Any] = {}
    for name in sorted(params.models):
        is_command = params.models[name].command is not None
        model = load_model(layout, name, is_command)
        entry: dict[str, Any] = {}
        if validation is not None:
            entry["validation"] = _score(model, validation, task, name)
            entry["validated_on"] = "validation"
        else:
            entry.update(_cross_validate(model, train, task, params, name, is_command))
        entry["test"] = _score(model, test, task, name)
        results[name] = entry
        metric = params.problem.metric
        progress(
            f"evaluate {name}: {metric} {_shown(entry['validation'][metric])} on "
            f"{_ON[entry['validated_on']]}, {_shown(entry['test'][metric])} on test"
        )

    outputs = Outputs()
    for name, entry in results.items():
        outputs.write_json(layout.candidate_report(name), entry)
    outputs.remove(layout.legacy_candidates_report)
    for left in sorted(layout.candidate_reports.glob("*.json")):
        if left.stem not in results:  # a candidate the spec no longer has
            outputs.remove(left)
    outputs.commit()


_ON = {"validation": "validation", "cv5": "5-fold cv", "train": "the training split"}


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def _xy(frame: Any, target: str) -> tuple[Any, Any]:
    if target not in frame.columns:
        raise StageError(f"evaluate: a split has no target column {target!r}")
    return frame.drop(columns=[target]), frame[target].to_numpy()


def load_model(layout: Layout, name: str, is_command: bool) -> Any:
    """Candidate ``name``'s fitted model; StageError when absent or not a model."""
    import joblib

    path = layout.candidate(name)
    producer = (
        f"the command of candidate {name!r} (models.{name}.command must write it)"
        if is_command
        else f"stage train {name}"
    )
    require(path, producer)
    try:
        model = joblib.load(path)
    except Exception as exc:  # unpickling can fail in any way: report, don't crash
        what = f"{type(exc).__name__}: {brief(exc)}"
        raise StageError(f"{path}: cannot load the model: {what}") from None
    if not callable(getattr(model, "predict", None)):
        raise StageError(f"{path}: {type(model).__name__} is not a model (it has no predict)")
    return model


def _score(model: Any, data: tuple[Any, Any], task: str, name: str) -> dict[str, float | None]:
    X, y = data
    try:
        predictions = metrics.predict(model, X, task)
    except (ValueError, TypeError, KeyError) as exc:
        what = type(model).__name__
        raise StageError(f"evaluate {name}: {what} cannot predict: {brief(exc)}") from None
    return metrics.score(task, y, predictions)


def _cross_validate(
    model: Any, train: tuple[Any, Any], task: str, params: Params, name: str, is_command: bool
) -> dict[str, Any]:
    X, y = train
    try:
        if is_command:
            predictions = _out_of_fold(model, X, y, task, params.data.split.seed)
        else:
            with compute.parallel(params, f"evaluate {name}") as n_jobs:
                predictions = _out_of_fold(model, X, y, task, params.data.split.seed, n_jobs)
    except Exception as exc:
        if not is_command:
            if not isinstance(exc, ValueError | TypeError):
                raise
            raise StageError(
                f"evaluate {name}: {CV_FOLDS}-fold cross-validation failed: {brief(exc)} "
                "(set data.split.validation to validate on a held-out split instead)"
            ) from None
        # A user's model may be no scikit-learn estimator (clone raises) or refuse to
        # refit in any way of its own: score the model as it is.
        return {
            "validation": _score(model, train, task, name),
            "validated_on": "train",
            "note": f"cannot refit the model for cross-validation ({type(exc).__name__}: "
            f"{brief(exc)}); scored on the training split, which is optimistic",
        }
    return {"validation": metrics.score(task, y, predictions), "validated_on": "cv5"}


def _out_of_fold(
    model: Any, X: Any, y: Any, task: str, seed: int, n_jobs: int = 1
) -> metrics.Predictions:
    """Predictions for every training row by a clone fitted on the other folds.

    The fits go through joblib (``n_jobs`` at once, on the backend in force); each is a
    clone's own ``fit``, so a worker needs scikit-learn, not mllc. Predictions are made
    here, fold by fold, in order."""
    from joblib import Parallel, delayed
    from sklearn.base import clone

    if len(y) < CV_FOLDS:
        raise ValueError(f"{len(y)} training rows are too few for {CV_FOLDS} folds")
    splitter = metrics.folds(task, CV_FOLDS, seed)
    fitted_classes = getattr(model, "classes_", None)
    classes = np.asarray(fitted_classes) if fitted_classes is not None else None
    column = {c: i for i, c in enumerate(classes.tolist())} if classes is not None else {}
    order: list[Any] = []
    predicted: list[Any] = []
    proba = np.zeros((len(y), len(column))) if classes is not None else None
    decision = np.zeros(len(y)) if classes is not None and len(classes) == 2 else None
    splits = list(splitter.split(X, y))
    fitted = Parallel(n_jobs=n_jobs)(
        delayed(clone(model).fit)(X.iloc[fit_rows], y[fit_rows]) for fit_rows, _ in splits
    )
    for fold, (_, held_rows) in zip(fitted, splits, strict=True):
        part = metrics.predict(fold, X.iloc[held_rows], task)
        order.append(held_rows)
        predicted.append(part.predicted)
        if proba is not None:
            if part.proba is None or part.classes is None:
                proba = None
            else:
                # A fold may miss a rare class: place its columns by class label.
                cols = [column[c] for c in part.classes.tolist()]
                proba[np.ix_(held_rows, cols)] = part.proba
        if decision is not None:
            same = part.classes is not None and part.classes.tolist() == list(column)
            if part.decision is None or not same:
                decision = None
            else:
                decision[held_rows] = part.decision
    assembled = np.concatenate(predicted)
    result = np.empty_like(assembled)
    result[np.concatenate(order)] = assembled
    if proba is not None:
        decision = None  # probabilities take precedence, as in metrics.predict
    return metrics.Predictions(result, proba, decision, classes)
