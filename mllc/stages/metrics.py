"""The spec's metrics (``mllc.spec.vocab.METRICS``), computed from a model's predictions.

:func:`predict` asks a fitted model for everything the metrics may need
(labels, class probabilities, a binary decision function) without assuming
more than ``predict``: a user's own model may lack the rest. :func:`score`
then computes every metric of the task; a metric that cannot be computed from
what the model offers (``log_loss`` without probabilities, ``roc_auc`` on a
split holding one class) is ``None``, never an error. Values are rounded to 6
decimals so reports are byte-stable.

:func:`scorer_name` maps a metric to scikit-learn's scorer for the search, and
:func:`folds` gives the cross-validation folds of the search and of ``evaluate``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from mllc.spec import vocab
from mllc.stages.io import round_float

# Metric -> scikit-learn scorer; error metrics are negated there (greater is better).
_SCORERS = {
    "accuracy": "accuracy",
    "precision_macro": "precision_macro",
    "recall_macro": "recall_macro",
    "f1_macro": "f1_macro",
    "precision_weighted": "precision_weighted",
    "recall_weighted": "recall_weighted",
    "f1_weighted": "f1_weighted",
    "log_loss": "neg_log_loss",
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "mape": "neg_mean_absolute_percentage_error",
    "r2": "r2",
}


def scorer_name(metric: str, n_classes: int) -> str:
    if metric == "roc_auc":
        return "roc_auc" if n_classes <= 2 else "roc_auc_ovr"
    return _SCORERS[metric]


def folds(task: str, n_splits: int, seed: int) -> Any:
    """Cross-validation folds: shuffled with ``seed``, stratified for classification."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = StratifiedKFold if task == "classification" else KFold
    return splitter(n_splits=n_splits, shuffle=True, random_state=seed)


def from_scorer(scorer: str, value: float) -> float:
    """A scorer's value back in the metric's own units (``neg_*`` scorers are negated)."""
    return -value if scorer.startswith("neg_") else value


@dataclass(frozen=True)
class Predictions:
    predicted: Any  # numpy array of labels or values
    proba: Any = None  # (n, len(classes)) class probabilities, columns in ``classes`` order
    decision: Any = None  # binary only: one score per row, higher means classes[1]
    classes: Any = None  # the model's classes_, when it has them


def _call(model: Any, method: str, X: Any) -> Any:
    function = getattr(model, method, None)  # getattr also swallows available_if's refusal
    if function is None:
        return None
    try:
        return np.asarray(function(X))
    except (AttributeError, NotImplementedError, ValueError, TypeError):
        return None


def predict(model: Any, X: Any, task: str) -> Predictions:
    predicted = np.asarray(model.predict(X))
    if task != "classification":
        return Predictions(predicted)
    classes = getattr(model, "classes_", None)
    if classes is None:  # without classes, probability columns cannot be matched to labels
        return Predictions(predicted)
    classes = np.asarray(classes)
    proba = _call(model, "predict_proba", X)
    if proba is not None and (proba.ndim != 2 or proba.shape[1] != len(classes)):
        proba = None
    decision = None
    if proba is None and len(classes) == 2:
        decision = _call(model, "decision_function", X)
        if decision is not None and decision.ndim != 1:
            decision = None
    return Predictions(predicted, proba, decision, classes)


def score(task: str, y_true: Any, predictions: Predictions) -> dict[str, float | None]:
    """Every metric of ``task``, rounded; None where it is undefined."""
    with warnings.catch_warnings():
        # Undefined values (r2 of one row, precision of a class never predicted) come
        # back as NaN or 0 and are reported as such; the warnings would only be noise.
        warnings.simplefilter("ignore")
        if task == "classification":
            values = _classification(y_true, predictions)
        else:
            values = _regression(y_true, predictions.predicted)
    return {name: round_float(values.get(name)) for name in sorted(vocab.METRICS[task])}


def _classification(y: Any, p: Predictions) -> dict[str, float | None]:
    from sklearn import metrics

    out: dict[str, float | None] = {"accuracy": metrics.accuracy_score(y, p.predicted)}
    for average in ("macro", "weighted"):
        kwargs = {"average": average, "zero_division": 0}
        out[f"precision_{average}"] = metrics.precision_score(y, p.predicted, **kwargs)
        out[f"recall_{average}"] = metrics.recall_score(y, p.predicted, **kwargs)
        out[f"f1_{average}"] = metrics.f1_score(y, p.predicted, **kwargs)
    out["roc_auc"] = _roc_auc(y, p)
    out["log_loss"] = _log_loss(y, p)
    return out


def _roc_auc(y: Any, p: Predictions) -> float | None:
    from sklearn import metrics

    if p.classes is None or len(p.classes) < 2 or len(np.unique(y)) < 2:
        return None
    try:
        if len(p.classes) == 2:
            scores = p.proba[:, 1] if p.proba is not None else p.decision
            if scores is None:
                return None
            return float(metrics.roc_auc_score(np.asarray(y) == p.classes[1], scores))
        if p.proba is None or not set(np.unique(y)) <= set(p.classes):
            return None
        return float(
            metrics.roc_auc_score(
                y, p.proba, multi_class="ovr", average="macro", labels=list(p.classes)
            )
        )
    except ValueError:  # e.g. a class of the model absent from this split
        return None


def _log_loss(y: Any, p: Predictions) -> float | None:
    from sklearn import metrics

    if p.proba is None or not set(np.unique(y)) <= set(p.classes):
        return None
    try:
        return float(metrics.log_loss(y, p.proba, labels=list(p.classes)))
    except ValueError:
        return None


def _regression(y: Any, predicted: Any) -> dict[str, float | None]:
    from sklearn import metrics

    return {
        "rmse": math.sqrt(metrics.mean_squared_error(y, predicted)),
        "mae": metrics.mean_absolute_error(y, predicted),
        "r2": metrics.r2_score(y, predicted) if len(y) >= 2 else None,
        "mape": metrics.mean_absolute_percentage_error(y, predicted),
    }
