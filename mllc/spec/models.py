"""The lifecycle spec, v1: Pydantic models for every section (DESIGN §3).

Every model forbids unknown keys and is frozen. Checks that need only one
section live here as validators; checks across sections (a gate's metric
against the task, ``after`` cycles, unique ports ...) live in
:mod:`mllc.spec.rules` so they can report alongside structural errors.
Field descriptions are the user documentation: ``docs/spec.md`` and the JSON
Schema are generated from them.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mllc.names import DNS_LABEL_MAX, DNS_LABEL_PATTERN, is_dns_label
from mllc.spec import checks, vocab

API_VERSION = "mllc/v1"

_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$", re.ASCII)
_VERSION = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$", re.ASCII)
_GATE = re.compile(
    r"^\s*([a-z_0-9]+)\s*(>=|<=|>|<)\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$", re.ASCII
)
_SECRET_REF = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$", re.ASCII)
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$", re.ASCII)


def _first(problems: list[str]) -> None:
    """Raise the first problem a section check found (rules report the rest)."""
    if problems:
        raise ValueError(problems[0])


def _dns_label(value: str) -> str:
    if len(value) > DNS_LABEL_MAX:
        raise ValueError(f"{value!r} is longer than {DNS_LABEL_MAX} characters")
    if not is_dns_label(value):
        raise ValueError(
            f"{value!r} is not a lowercase DNS label (a-z, 0-9 and '-', starting with a "
            "letter, not ending with '-'): names become DVC stages, Kubernetes objects "
            "and file names"
        )
    return value


def _repo_path(value: str) -> str:  # messages quote the path as written, not as a repr
    if not value or value.strip() != value:
        raise ValueError("a path must be non-empty, without leading or trailing spaces")
    if "\x00" in value:
        raise ValueError("a path must not contain a NUL character")
    if value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value):
        raise ValueError(f"'{value}' must be relative to the repository root")
    if "\\" in value:
        raise ValueError(f"'{value}': use '/' as the separator")
    if ".." in value.split("/"):
        raise ValueError(f"'{value}' must stay inside the repository (no '..')")
    if any(c in value for c in "\n\r\t"):
        raise ValueError(f"'{value}' must not contain control characters")
    return value


def _secret_ref(value: str) -> str:
    if not _SECRET_REF.fullmatch(value):
        raise ValueError(
            "secrets are given by reference only, as 'env:NAME' (an environment "
            "variable's name), never as a value"
        )
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def parse_gate(text: str) -> tuple[str, str, float]:
    """``"accuracy >= 0.9"`` -> ``("accuracy", ">=", 0.9)``; ValueError when malformed."""
    m = _GATE.fullmatch(text)
    if not m:
        raise ValueError(
            f"{text!r} is not a gate: write 'METRIC OP NUMBER' with OP one of >= <= > <, "
            "e.g. 'accuracy >= 0.9'"
        )
    return m.group(1), m.group(2), float(m.group(3))


def _gate(value: str) -> str:
    parse_gate(value)
    return value


# The validators give the messages; WithJsonSchema tells editors the same rule.
DnsLabel = Annotated[
    str,
    AfterValidator(_dns_label),
    WithJsonSchema({"type": "string", "pattern": DNS_LABEL_PATTERN, "maxLength": DNS_LABEL_MAX}),
]
RepoPath = Annotated[
    str,
    AfterValidator(_repo_path),
    WithJsonSchema({"type": "string", "pattern": r"^(?![/~])(?!.*(^|/)\.\.(/|$))[^\\\x00]+$"}),
]
SecretRef = Annotated[
    str,
    AfterValidator(_secret_ref),
    WithJsonSchema({"type": "string", "pattern": _SECRET_REF.pattern}),
]
Text = Annotated[str, AfterValidator(_no_nul)]
Gate = Annotated[
    str, AfterValidator(_gate), WithJsonSchema({"type": "string", "pattern": _GATE.pattern})
]


class Strict(BaseModel):
    # strict: "8081" is not a port and "yes" not a boolean (the JSON Schema agrees);
    # no NaN or infinity anywhere: they do not survive JSON.
    model_config = ConfigDict(
        extra="forbid", frozen=True, defer_build=True, strict=True, allow_inf_nan=False
    )


# ---------------------------------------------------------------- metadata


class Metadata(Strict):
    """Who the lifecycle is and who owns it; nothing here changes what is trained."""

    name: DnsLabel = Field(
        description="The lifecycle's name: a lowercase DNS label, unique in the repository. "
        "Names pipelines/<name>/, registry tags <name>@vX.Y.Z and deployments."
    )
    description: Text = Field("", description="What the model is for, in one sentence.")
    owner: Text | None = Field(None, description="Who answers for it (a team or an email).")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Free key/value labels, copied onto Kubernetes objects "
        "(keys and values must be valid Kubernetes label values).",
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not key or len(key) > 63 or not _LABEL_VALUE.fullmatch(key):
                raise ValueError(f"label key {key!r} is not a valid Kubernetes label name")
            if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
                raise ValueError(f"label {key}={value!r} is not a valid Kubernetes label value")
        return v


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
        _first(checks.source(self.__dict__))
        return self


class Column(Strict):
    """The expected type and range of one column; rows that break it are invalid."""

    type: Literal["int", "float", "category", "bool", "string"] = Field(
        description="The column's type; values that cannot be read as it are invalid."
    )
    min: float | None = Field(None, description="Smallest valid value (int and float only).")
    max: float | None = Field(None, description="Largest valid value (int and float only).")
    values: Annotated[list[str | int | bool], AfterValidator(_bounded)] | None = Field(
        None, description="The allowed categories (category only)."
    )
    nullable: bool = Field(
        True, description="Whether a missing value is allowed (then cleaning.missing applies)."
    )

    @model_validator(mode="after")
    def _coherent(self) -> Column:
        _first(checks.column(self.__dict__))
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
        _first(checks.split(self.__dict__))
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


def _bounded(value: Any) -> Any:
    """No integer past 64 bits anywhere inside (the YAML loader refuses them too)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63:
            raise ValueError("an integer must fit in 64 bits")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


ParamValue = Annotated[JsonValue, AfterValidator(_bounded)]


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
        _first(checks.search(self.__dict__))
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
        _first(checks.candidate(self.__dict__))
        return self


# ---------------------------------------------------------------- environments


class KubernetesTarget(Strict):
    namespace: DnsLabel = Field("default", description="Namespace of the InferenceService.")
    replicas: int = Field(1, ge=0, le=1000, description="Minimum replicas.")
    storage_uri: str = Field(
        description="Where the model is stored for KServe (s3://, gs://, pvc://), without "
        "credentials."
    )
    service_account: DnsLabel | None = Field(
        None, description="Service account holding the storage credentials."
    )
    context: str | None = Field(None, description="kubectl context to apply with.")
    cpu: str = Field("500m", description="CPU request and limit.")
    memory: str = Field("512Mi", description="Memory request and limit.")

    @field_validator("storage_uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if not re.fullmatch(r"^(s3|gs|pvc|https?|azureblob)://[^\s@]+$", v, re.ASCII):
            raise ValueError(
                f"{v!r} is not a storage URI (s3://, gs://, pvc://, azureblob://, https://) "
                "or it carries credentials"
            )
        return v

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, v: str) -> str:
        if not re.fullmatch(r"^\d+(\.\d+)?m?$", v, re.ASCII):
            raise ValueError(f"{v!r} is not a Kubernetes CPU quantity (e.g. 500m, 2)")
        return v

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str) -> str:
        if not re.fullmatch(r"^\d+(\.\d+)?([EPTGM]i?|Ki|k|m)?$", v, re.ASCII):
            raise ValueError(f"{v!r} is not a Kubernetes memory quantity (e.g. 512Mi, 2Gi)")
        return v


class Environment(Strict):
    """Where a version runs, and what it takes for a version to get there."""

    target: Literal["local", "kubernetes"] = Field(
        description="local: an inference server on this machine; kubernetes: KServe."
    )
    model: str = Field(
        "latest",
        description="'latest' (the newest registered version that passes the gates) or a "
        "pinned version vX.Y.Z.",
    )
    port: int | None = Field(
        None, ge=1024, le=65535, description="Port of the local server (1024-65535; required)."
    )
    host: str = Field(
        "127.0.0.1",
        description="Address the local server binds; anything but loopback needs a token.",
    )
    token: SecretRef | None = Field(
        None, description="Bearer token the server requires, by reference: env:NAME."
    )
    after: DnsLabel | None = Field(
        None, description="The environment a version must have run in before this one."
    )
    require: list[Literal["beats_champion"]] = Field(
        default_factory=list,
        description="Extra promotion requirements. beats_champion: the challenger scores at "
        "least the current version on problem.metric.",
    )
    kubernetes: KubernetesTarget | None = Field(None, description="Settings of KServe.")

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v != "latest" and not _VERSION.fullmatch(v):
            hint = ""
            m = re.fullmatch(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$", v, re.ASCII)
            if m:
                major, minor, patch = (int(m.group(n) or 0) for n in (1, 2, 3))
                hint = f"; did you mean 'v{major}.{minor}.{patch}'?"
            raise ValueError(f"{v!r} is neither 'latest' nor a version vX.Y.Z{hint}")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Environment:
        _first(checks.environment(self.__dict__))
        return self


# ---------------------------------------------------------------- monitoring

_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$", re.ASCII)
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"{value!r} is not a cron schedule: five fields, e.g. '0 6 * * *'")
    for f, (lo, hi), what in zip(
        fields, _CRON_RANGES, ("minute", "hour", "day", "month", "weekday"), strict=True
    ):
        if not _CRON_FIELD.fullmatch(f):
            raise ValueError(f"cron {what} field {f!r} is not valid")
        for part in f.split(","):
            span, _, step = part.partition("/")
            if step and int(step) < 1:
                raise ValueError(f"cron {what} step {step} must be at least 1")
            bounds = [int(n) for n in span.split("-")] if span != "*" else []
            for num in bounds:
                if not lo <= num <= hi:
                    raise ValueError(f"cron {what} {num} is outside {lo}-{hi}")
            if len(bounds) == 2 and bounds[0] > bounds[1]:
                raise ValueError(f"cron {what} range {span} goes backwards")
    return value


class Drift(Strict):
    method: Literal["psi", "ks"] = Field("psi", description="psi or ks.")
    threshold: float = Field(0.2, gt=0, description="Breach above this statistic.")


class Performance(Strict):
    metric: str = Field(description="A metric of the task, measured on labelled feedback.")
    min: float | None = Field(None, description="Breach below this (higher-is-better metrics).")
    max: float | None = Field(None, description="Breach above this (error metrics).")

    @model_validator(mode="after")
    def _coherent(self) -> Performance:
        _first(checks.performance(self.__dict__))
        return self


class Monitoring(Strict):
    """Scheduled checks of the deployed model; a breach shows up in the next plan."""

    schedule: Annotated[str, AfterValidator(_cron)] = Field(
        description="Cron schedule of the monitoring job (CronJob and scheduled CI)."
    )
    drift: Drift | None = Field(None, description="Input drift against the training data.")
    performance: Performance | None = Field(None, description="Live performance on feedback.")
    on_breach: Literal["retrain", "alert"] = Field(
        "alert", description="retrain: the next plan retrains; alert: report only."
    )


# ---------------------------------------------------------------- lifecycle


class Lifecycle(Strict):
    """A model's whole lifecycle: one spec file, ``kind: Lifecycle``."""

    apiVersion: Literal["mllc/v1"] = Field(description="Always mllc/v1.")
    kind: Literal["Lifecycle"] = Field(description="Always Lifecycle.")
    metadata: Metadata
    problem: Problem
    data: Data
    features: Features = Field(default_factory=Features)
    models: dict[DnsLabel, Candidate] = Field(
        min_length=1, description="The candidates, by name; one training stage each."
    )
    gates: list[Gate] = Field(
        default_factory=list,
        description="Conditions on the held-out test split ('METRIC OP NUMBER'); all must "
        "hold for a version to be deployable.",
    )
    environments: dict[DnsLabel, Environment] = Field(
        default_factory=dict, description="Where versions run, in promotion order."
    )
    monitoring: Monitoring | None = Field(None, description="Drift and performance checks.")

    def dump(self) -> dict[str, Any]:
        """Plain data, defaults included, in declaration order (for YAML/JSON output)."""
        return self.model_dump(mode="json", exclude_none=True)
