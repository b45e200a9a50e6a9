"""Stage ``train CANDIDATE``: fit one estimator candidate on the training split.

With ``search``, a grid or random search with cross-validation picks the
estimator's parameters by ``problem.metric`` (folds shuffled with the split's
seed, stratified for classification), and the refitted best pipeline is the model.
The search's fits run where the spec's ``compute`` says (:mod:`mllc.stages.compute`:
one process by default, or a Dask cluster); scikit-learn gathers their scores in
the same order either way, so results do not depend on scheduling. Nothing random is
left unseeded and the report holds no timings, so the same inputs give the
same bytes.

Writes ``candidates/CANDIDATE.joblib`` and ``reports/train/CANDIDATE.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mllc.stages import compute, features, metrics
from mllc.stages.io import Outputs, Params, StageError, brief, progress, read_frame, round_float

RANDOM_SEARCH_ITERATIONS = 10


def run(params: Params, name: str) -> None:
    from sklearn.pipeline import Pipeline

    layout = params.layout
    candidate = params.models[name]
    task = params.problem.task
    target = params.problem.target
    seed = params.data.split.seed
    if candidate.search is not None:
        compute.check(params, f"train {name}")
    frame = read_frame(layout.split("train"), "stage split")
    if target not in frame.columns:
        raise StageError(f"train {name}: {layout.split('train')} has no target column {target!r}")
    numeric, categorical = features.feature_columns(frame, target, params.features)
    chosen = set(numeric) | set(categorical)
    X = frame[[c for c in frame.columns if c in chosen]]
    y = frame[target].to_numpy()

    est, given = features.estimator(name, candidate, params.estimators, task, seed)
    pipeline = Pipeline(
        [
            ("preprocess", features.preprocessor(numeric, categorical, params.features)),
            ("estimator", est),
        ]
    )
    what = type(est).__name__
    _check_metric_support(params.problem.metric, est, name, what)
    search_report: dict[str, Any] | None = None
    if candidate.search is None:
        model = _fit(pipeline, X, y, name, what)
        effective = given
    else:
        n_classes = len(np.unique(y)) if task == "classification" else 0
        scoring = metrics.scorer_name(params.problem.metric, n_classes)
        with compute.parallel(params, f"train {name}") as n_jobs:
            search = _search(params, candidate.search, pipeline, scoring, n_jobs)
            fitted = _fit(search, X, y, name, what)
        model = fitted.best_estimator_
        best = {k.removeprefix("estimator__"): v for k, v in fitted.best_params_.items()}
        effective = {**given, **best}
        search_report = {
            "method": candidate.search.method,
            "cv": candidate.search.cv,
            "scoring": scoring,
            "candidates": len(fitted.cv_results_["params"]),
            "best_params": _plain(best),
            "cv_score": round_float(metrics.from_scorer(scoring, float(fitted.best_score_))),
            "metric": params.problem.metric,
        }

    report = {
        "candidate": name,
        "estimator": candidate.estimator,
        "params": _plain(effective),
        "search": search_report,
        "features": {"numeric": numeric, "categorical": categorical},
        "n_features_in": len(numeric) + len(categorical),
        "n_features_out": _features_out(model),
        "rows": len(frame),
        "classes": _plain(model.classes_.tolist()) if task == "classification" else None,
    }
    outputs = Outputs()
    outputs.write_joblib(layout.candidate(name), model)
    outputs.write_json(layout.train_report(name), report)
    outputs.commit()
    line = f"train {name}: {what} on {len(frame)} rows, {report['n_features_in']} features"
    if search_report is not None:
        line += (
            f"; {search_report['method']} search over "
            f"{search_report['candidates']} settings, cv {params.problem.metric} "
            f"{search_report['cv_score']}, best {search_report['best_params']}"
        )
        if compute.settings(params) is not None:
            line += f", searched on {compute.where(params)}"
    progress(line)


def _check_metric_support(metric: str, est: Any, name: str, what: str) -> None:
    """Fail early, and clearly, when the primary metric cannot score this estimator.

    ``hasattr`` follows scikit-learn's ``available_if``: SVC has ``predict_proba``
    only with ``probability=True``, SGDClassifier only with a probabilistic loss.
    """
    if metric == "log_loss" and not hasattr(est, "predict_proba"):
        raise StageError(
            f"train {name}: problem.metric log_loss needs class probabilities, and {what} "
            "with these params has no predict_proba"
        )
    if metric == "roc_auc" and not (
        hasattr(est, "predict_proba") or hasattr(est, "decision_function")
    ):
        raise StageError(
            f"train {name}: problem.metric roc_auc needs scores, and {what} with these params "
            "has neither predict_proba nor decision_function"
        )


def _search(params: Params, search: Any, pipeline: Any, scoring: str, n_jobs: int) -> Any:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    seed = params.data.split.seed
    splitter = metrics.folds(params.problem.task, search.cv, seed)
    space = {f"estimator__{k}": list(v) for k, v in search.space.items()}
    common: dict[str, Any] = {"scoring": scoring, "cv": splitter, "n_jobs": n_jobs, "refit": True}
    if search.method == "grid":
        return GridSearchCV(pipeline, space, **common)
    return RandomizedSearchCV(
        pipeline,
        space,
        n_iter=search.n_iter or RANDOM_SEARCH_ITERATIONS,
        random_state=seed,
        **common,
    )


def _fit(model: Any, X: Any, y: Any, name: str, what: str) -> Any:
    try:
        return model.fit(X, y)
    except (ValueError, TypeError) as exc:  # bad params, data the estimator cannot take
        raise StageError(f"train {name}: fitting {what} failed: {brief(exc)}") from None


def _features_out(model: Any) -> int | None:
    try:
        return len(model.named_steps["preprocess"].get_feature_names_out())
    except (AttributeError, ValueError, TypeError):
        return None


def _plain(value: Any) -> Any:
    """numpy scalars and tuples as plain JSON values, for the report."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
