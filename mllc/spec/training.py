"""The spec's sections that decide what is trained: problem, data, features, models.

Checks that need only one section are validators here (the first problem is raised;
:mod:`mllc.spec.rules` reports them all, alongside the checks across sections).
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from mllc.spec import checks, vocab
from mllc.spec.fields import ParamValue, RepoPath, Strict, Text, raise_first, within_64_bits

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$", re.ASCII)


# ---------------------------------------------------------------- problem


class Problem(Strict):
    """What is predicted, and the metric that decides between models."""

    task: vocab.Task = Field(description="classification or regression.")
    target: Text = Field(
        min_length=1,
        description="The label column. Datasets bundled with scikit-learn call it 'target'.",
    )
    metric: str = Field(
        description="The primary metric, used to select among candidates and to compare a "
        "challenger with the champion. Classification: accuracy, precision_macro, "
        "recall_macro, f1_macro, precision_weighted, recall_weighted, f1_weighted, "
        "roc_auc, log_loss. Regression: rmse, mae, r2, mape."
    )


# ---------------------------------------------------------------- data


class Source(Strict):
    """Exactly one of ``sklearn``, ``csv`` or ``parquet``."""

    sklearn: Literal["iris", "wine", "breast_cancer", "diabetes", "digits"] | None = Field(
        None, description="A dataset bundled with scikit-learn (no download)."
    )
    csv: RepoPath | None = Field(
        None,
        description="A CSV file in the repository, with a header. Versioned with every "
        "model: apply tracks it with DVC (a committed .dvc pointer) unless Git tracks it; "
        "to update the data, replace the file, then plan and apply.",
    )
    parquet: RepoPath | None = Field(
        None,
        description="A Parquet file in the repository, versioned like csv (DVC unless Git "
        "tracks it).",
    )

    @model_validator(mode="after")
    def _coherent(self) -> Source:
        raise_first(checks.source(self.__dict__))
        return self


class Column(Strict):
    """The expected type and range of one column; rows that break it are invalid."""

    type: Literal["int", "float", "category", "bool", "string"] = Field(
        description="The column's type; values that cannot be read as it are invalid."
    )
    min: float | None = Field(None, description="Smallest valid value (int and float only).")
    max: float | None = Field(None, description="Largest valid value (int and float only).")
    values: Annotated[list[str | int | bool], AfterValidator(within_64_bits)] | None = Field(
        None, description="The allowed categories (category only)."
    )
    nullable: bool = Field(
        True, description="Whether a missing value is allowed (then cleaning.missing applies)."
    )

    @model_validator(mode="after")
    def _coherent(self) -> Column:
        raise_first(checks.column(self.__dict__))
        return self


class Cleaning(Strict):
    duplicates: Literal["drop", "keep"] = Field("drop", description="Duplicate rows.")
    missing: Literal["drop", "fail", "impute"] = Field(
        "drop",
        description="Rows with a missing value: drop them, fail the stage, or impute "
        "(with the strategies in features).",
    )
    invalid: Literal["drop", "fail"] = Field(
        "drop", description="Rows breaking the declared columns: drop them or fail the stage."
    )


class Split(Strict):
    test: float = Field(0.2, gt=0, lt=1, description="Held-out test fraction, in (0, 1).")
    validation: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Validation fraction, in (0, 1); omit it to validate by cross-validation.",
    )
    stratify: bool = Field(
        False, description="Keep class proportions in every split (classification only)."
    )
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Random seed of the split.")

    @model_validator(mode="after")
    def _coherent(self) -> Split:
        raise_first(checks.split(self.__dict__))
        return self


class Data(Strict):
    """Where the rows come from, what valid rows look like, how they are cleaned and split."""

    source: Source = Field(description="Where the rows come from.")
    columns: dict[str, Column] = Field(
        default_factory=dict,
        description="Expected schema of the source; rows that violate it are invalid. "
        "Columns not listed are kept as they are.",
    )
    cleaning: Cleaning = Field(default_factory=Cleaning, description="The cleaning policy.")
    split: Split = Field(default_factory=Split, description="How rows are split.")

    @field_validator("columns")
    @classmethod
    def _column_names(cls, v: dict[str, Column]) -> dict[str, Column]:
        for name in v:
            if not name.strip() or "\x00" in name:
                raise ValueError(f"column name {name!r} must be non-empty text")
        return v


# ---------------------------------------------------------------- features


class NumericFeatures(Strict):
    impute: Literal["mean", "median", "most_frequent", "none"] = Field(
        "median", description="How a missing numeric value is filled (fitted on training data)."
    )
    scale: Literal["standard", "minmax", "robust", "none"] = Field(
        "standard", description="How numeric columns are scaled."
    )
    columns: list[str] | None = Field(
        None, description="The numeric feature columns; omit to use every numeric column."
    )


class CategoricalFeatures(Strict):
    impute: Literal["most_frequent", "constant", "none"] = Field(
        "most_frequent", description="How a missing category is filled."
    )
    encode: Literal["onehot", "ordinal"] = Field(
        "onehot", description="How categories become numbers (unknown ones are ignored)."
    )
    columns: list[str] | None = Field(
        None, description="The categorical feature columns; omit to use every other column."
    )


class Features(Strict):
    """Preprocessing before every candidate, fitted on the training split only."""

    numeric: NumericFeatures = Field(
        default_factory=NumericFeatures, description="Imputation and scaling of numbers."
    )
    categorical: CategoricalFeatures = Field(
        default_factory=CategoricalFeatures, description="Imputation and encoding of categories."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Columns never used as features (ids, timestamps)."
    )


# ---------------------------------------------------------------- models


class Search(Strict):
    method: Literal["grid", "random"] = Field(description="Grid or random search.")
    cv: int = Field(5, ge=2, le=50, description="Cross-validation folds.")
    space: dict[str, list[ParamValue]] = Field(
        description="Parameter name -> the values to try. Values may be null."
    )
    n_iter: int | None = Field(
        None, ge=1, le=10_000, description="Candidates sampled by random search (random only)."
    )

    @field_validator("space")
    @classmethod
    def _space(cls, v: dict[str, list[ParamValue]]) -> dict[str, list[ParamValue]]:
        if not v:
            raise ValueError("space must name at least one parameter")
        for name, values in v.items():
            if not _PARAM_NAME.fullmatch(name.replace("__", "_")):
                raise ValueError(f"{name!r} is not a parameter name")
            if not values:
                raise ValueError(f"{name}: list at least one value to try")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Search:
        raise_first(checks.search(self.__dict__))
        return self


class Candidate(Strict):
    """A candidate model: a scikit-learn ``estimator`` or the user's own ``command``."""

    estimator: str | None = Field(
        None,
        description="A scikit-learn estimator class from the allow-list, e.g. "
        "sklearn.ensemble.RandomForestClassifier (extend it in mllc.toml).",
    )
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="Constructor parameters of the estimator."
    )
    search: Search | None = Field(None, description="Hyper-parameter search with CV.")
    command: Text | None = Field(
        None,
        description="Your own training command, run by DVC from the repository root with the "
        "declared deps. It reads pipelines/<lifecycle>/data/train.parquet and must write a "
        "fitted model (predict, optionally predict_proba) with joblib to "
        "pipelines/<lifecycle>/candidates/<name>.joblib. Never run by validate, compile or "
        "plan.",
    )
    deps: list[RepoPath] = Field(
        default_factory=list, description="Files your command reads (command only)."
    )

    @field_validator("estimator")
    @classmethod
    def _allowed(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        allowed: dict[str, str] = (info.context or {}).get("estimators", vocab.ESTIMATORS)
        if v not in allowed:
            close = difflib.get_close_matches(v, list(allowed), n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{v!r} is not an allowed estimator: name a scikit-learn estimator class "
                f"(see docs/spec.md) or extend the allow-list in mllc.toml{hint}"
            )
        return v

    @field_validator("params")
    @classmethod
    def _param_names(cls, v: dict[str, ParamValue]) -> dict[str, ParamValue]:
        bad = [k for k in v if not _PARAM_NAME.fullmatch(k)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a parameter name")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Candidate:
        raise_first(checks.candidate(self.__dict__))
        return self
