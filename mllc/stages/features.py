"""Building a candidate's scikit-learn pipeline: feature columns, preprocessing, estimator.

The fitted model is ``Pipeline([("preprocess", ColumnTransformer), ("estimator",
Est)])``, made of scikit-learn classes only, so loading it needs scikit-learn
(and the allow-listed estimator's package), never mllc. It is fitted on the
feature columns alone, so it is served with exactly those columns; extra
columns (ids, the target) are ignored at prediction time.

Estimator classes are imported by dotted path only when allow-listed
(``mllc.spec.vocab.ESTIMATORS`` or ``[estimators]`` in mllc.toml): the spec
names a class, it never supplies code.
"""

from __future__ import annotations

import importlib
from typing import Any

from mllc.spec.training import Candidate, Features
from mllc.stages.io import StageError, brief


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    return bool(pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def feature_columns(frame: Any, target: str, features: Features) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns of ``frame``, each in the data's column order.

    Numeric: ``features.numeric.columns``, or every numeric/bool column; categorical:
    ``features.categorical.columns``, or every remaining non-numeric column. The
    target and ``features.exclude`` are never features.
    """
    names = [str(c) for c in frame.columns]
    named = {
        "features.exclude": features.exclude,
        "features.numeric.columns": features.numeric.columns or [],
        "features.categorical.columns": features.categorical.columns or [],
    }
    for where, listed in named.items():
        absent = [c for c in listed if c not in names]
        if absent:
            raise StageError(
                f"{where} names {', '.join(repr(c) for c in absent)}, not a column of the "
                f"training data (columns: {', '.join(names)})"
            )
    pool = [c for c in names if c != target and c not in set(features.exclude)]
    given_numeric = features.numeric.columns
    given_categorical = features.categorical.columns
    if given_numeric is not None:
        wrong = [c for c in given_numeric if not _is_numeric(frame[c])]
        if wrong:
            kinds = ", ".join(f"{c!r} ({frame[c].dtype})" for c in wrong)
            raise StageError(
                f"features.numeric.columns: {kinds} not numeric in the data; declare the "
                "column's type in data.columns or list it under features.categorical.columns"
            )
        numeric = [c for c in pool if c in set(given_numeric)]
    else:
        taken = set(given_categorical or [])
        numeric = [c for c in pool if _is_numeric(frame[c]) and c not in taken]
    if given_categorical is not None:
        categorical = [c for c in pool if c in set(given_categorical)]
    else:
        categorical = [c for c in pool if c not in set(numeric) and not _is_numeric(frame[c])]
    if not numeric and not categorical:
        raise StageError(
            f"no feature columns: every column is the target ({target!r}) or excluded "
            f"(columns: {', '.join(names)})"
        )
    return numeric, categorical


def preprocessor(numeric: list[str], categorical: list[str], features: Features) -> Any:
    """The ColumnTransformer: impute and scale numbers, impute and encode categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        MinMaxScaler,
        OneHotEncoder,
        OrdinalEncoder,
        RobustScaler,
        StandardScaler,
    )

    scalers = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = []
        if features.numeric.impute != "none":
            steps.append(("impute", SimpleImputer(strategy=features.numeric.impute)))
        if features.numeric.scale != "none":
            steps.append(("scale", scalers[features.numeric.scale]()))
        parts.append(("numeric", Pipeline(steps) if steps else "passthrough", numeric))
    if categorical:
        steps = []
        if features.categorical.impute != "none":
            # constant fills "missing_value" in text columns (0 in numeric-coded ones).
            steps.append(("impute", SimpleImputer(strategy=features.categorical.impute)))
        if features.categorical.encode == "onehot":
            # Dense output: several allow-listed estimators refuse sparse input.
            encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        else:
            encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        steps.append(("encode", encoder))
        parts.append(("categorical", Pipeline(steps), categorical))
    return ColumnTransformer(parts, remainder="drop")


def estimator_class(path: str, allowed: dict[str, str], task: str) -> type:
    """The class at dotted ``path``, imported only if it is on the allow-list."""
    if path not in allowed:
        raise StageError(
            f"{path!r} is not an allowed estimator: name a class of the allow-list "
            "(docs/spec.md) or extend it under [estimators] in mllc.toml"
        )
    if allowed[path] != task:
        raise StageError(f"{path} is a {allowed[path]} estimator, but problem.task is {task}")
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StageError(f"cannot import {module_name} (for {path}): {brief(exc)}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise StageError(f"{module_name} has no class {class_name!r} (for {path})")
    return cls


def estimator(
    name: str, candidate: Candidate, allowed: dict[str, str], task: str, seed: int
) -> tuple[Any, dict[str, Any]]:
    """The unfitted estimator and the parameters it was given.

    An estimator that takes ``random_state`` gets the split's seed unless the
    params set one: the same inputs must give the same model, byte for byte.
    """
    assert candidate.estimator is not None  # run_stage admits estimator candidates only
    cls = estimator_class(candidate.estimator, allowed, task)
    given: dict[str, Any] = dict(candidate.params)
    try:
        est = cls(**given)
        accepted = est.get_params(deep=False)
    except TypeError as exc:
        raise StageError(f"models.{name}.params: {brief(exc)}") from None
    if "random_state" in accepted and "random_state" not in given:
        est.set_params(random_state=seed)
        given["random_state"] = seed
    if candidate.search is not None:
        unknown = [p for p in candidate.search.space if p.split("__")[0] not in accepted]
        if unknown:
            raise StageError(
                f"models.{name}.search.space: {', '.join(repr(p) for p in unknown)} not a "
                f"parameter of {cls.__name__} (parameters: {', '.join(sorted(accepted))})"
            )
    return est, given
