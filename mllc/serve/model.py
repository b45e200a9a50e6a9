"""The served model: hash-checked loading, its feature schema, and predict.

Loading unpickles the file, which runs whatever code the file names: only the
exact bytes whose md5 the registry holds are loaded. The file is read once,
hashed, and those same bytes are unpickled, so a file swapped between the
check and the load cannot slip through.

The schema is read off the fitted model: ``feature_names_in_`` gives the
columns in order (scikit-learn refuses any other order), and the fitted
``ColumnTransformer`` (``mllc.stages.features``) tells numeric columns (FP64)
from categorical ones, whose type is that of the encoder's categories (BYTES
for text). A model without feature names is served with columns ``input-0``,
``input-1``, ... taken as a plain matrix.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from mllc.errors import MllcError
from mllc.serve.protocol import Schema, Tensor, datatype_of

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"


class ModelLoadError(MllcError):
    """The model file is missing, is not the registered one, or cannot be served."""

    message = "cannot load the model"


class PredictError(Exception):
    """The model refused the data (bad values for it, not a protocol mistake): a 422."""


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def load(path: Path, expected_md5: str) -> ServedModel:
    """The model in ``path``, only if its bytes have md5 ``expected_md5``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    actual = md5_bytes(data)
    if actual != expected_md5.strip().lower():
        raise ModelLoadError(
            f"model file {path} has md5 {actual}, the registry says {expected_md5}: "
            "refusing to load a model that is not the registered version"
        )
    import joblib

    try:
        estimator = joblib.load(io.BytesIO(data))
    except Exception as exc:  # unpickling raises anything: report it, never a traceback
        raise ModelLoadError(
            f"cannot load model file {path}: {type(exc).__name__}: {exc}"
        ) from None
    return ServedModel(estimator)


class ServedModel:
    """A fitted estimator with the schema it is served under. Thread-safe: predict only reads."""

    def __init__(self, estimator: Any) -> None:
        if not callable(getattr(estimator, PREDICT, None)):
            raise ModelLoadError(f"the model ({type(estimator).__name__}) has no predict method")
        self.estimator = estimator
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None:
            self.feature_names = [str(n) for n in names]
            self.frame = True
        else:
            count = getattr(estimator, "n_features_in_", None)
            if not isinstance(count, int | np.integer):
                raise ModelLoadError(
                    f"the model ({type(estimator).__name__}) has neither feature_names_in_ nor "
                    "n_features_in_: its inputs cannot be described"
                )
            self.feature_names = [f"input-{i}" for i in range(int(count))]
            self.frame = False
        self.final, self.head = _split(estimator)
        self.has_proba = callable(getattr(self.final, PREDICT_PROBA, None))
        classes = getattr(estimator, "classes_", None)
        self.classes = None if classes is None else np.asarray(classes)
        self.schema = self._schema()

    def _schema(self) -> Schema:
        types = _column_types(self.estimator) if self.frame else {}
        features = tuple(Tensor(n, types.get(n, "FP64")) for n in self.feature_names)
        predict_type = "FP64"
        if self.classes is not None:
            predict_type = _category_type(self.classes)
        outputs = [Tensor(PREDICT, predict_type)]
        if self.has_proba:
            width = -1 if self.classes is None else len(self.classes)
            outputs.append(Tensor(PREDICT_PROBA, "FP64", (-1, width)))
        return Schema(features, tuple(outputs), frozenset(types))

    def predict(self, columns: dict[str, np.ndarray], outputs: tuple[str, ...]) -> dict[str, Any]:
        """The requested outputs for these feature columns (given in the schema's order)."""
        X = self._frame(columns)
        try:
            # A Pipeline's predict and predict_proba each run the preprocessing: running it
            # once and calling the final step is what Pipeline does, at half the cost.
            Xt = X if self.head is None else self.head.transform(X)
            result: dict[str, Any] = {}
            for name in outputs:
                method = PREDICT if name == PREDICT else PREDICT_PROBA
                result[name] = np.asarray(getattr(self.final, method)(Xt))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            # What scikit-learn raises for data it cannot take: the client's to fix.
            raise PredictError(f"{type(exc).__name__}: {exc}") from None
        return result

    def _frame(self, columns: dict[str, np.ndarray]) -> Any:
        if not self.frame:
            return np.column_stack([columns[n] for n in self.feature_names])
        import pandas as pd

        return pd.DataFrame(columns, columns=self.feature_names, copy=False)


def _split(estimator: Any) -> tuple[Any, Any]:
    """(final step, the pipeline before it or None) for a Pipeline whose steps allow it."""
    try:
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - sklearn is a dependency
        return estimator, None
    if not isinstance(estimator, Pipeline) or len(estimator.steps) < 2:
        return estimator, None
    final = estimator.steps[-1][1]
    if final is None or final == "passthrough" or not callable(getattr(final, PREDICT, None)):
        return estimator, None
    return final, estimator[:-1]


def _column_types(estimator: Any) -> dict[str, str]:
    """Datatypes of the columns a fitted ColumnTransformer inside ``estimator`` consumes."""
    from sklearn.compose import ColumnTransformer

    steps = getattr(estimator, "steps", [(None, estimator)])
    transformer = next((s for _, s in steps if isinstance(s, ColumnTransformer)), None)
    if transformer is None or not hasattr(transformer, "transformers_"):
        return {}
    types: dict[str, str] = {}
    for name, part, cols in transformer.transformers_:
        if name == "remainder" or part == "drop" or not _names(cols):
            continue
        encoder = _encoder(part)
        for i, column in enumerate(_names(cols)):
            if encoder is None:
                types[column] = "FP64"
            else:
                types[column] = _category_type(np.asarray(encoder.categories_[i]))
    return types


def _names(cols: Any) -> list[str]:
    if isinstance(cols, str):
        return [cols]
    try:
        values = list(cols)
    except TypeError:
        return []
    return [c for c in values if isinstance(c, str)]


def _encoder(part: Any) -> Any:
    """The fitted category encoder in a ColumnTransformer part (a step of a Pipeline too)."""
    for step in [part, *(s for _, s in getattr(part, "steps", []))]:
        if hasattr(step, "categories_"):
            return step
    return None


def _category_type(values: np.ndarray) -> str:
    kind = values.dtype.kind
    if kind == "O":
        present = [v for v in values.tolist() if not (isinstance(v, float) and np.isnan(v))]
        if present and all(isinstance(v, bool) for v in present):
            return "BOOL"
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            return "INT64"
        return "BYTES"
    return datatype_of(values)
