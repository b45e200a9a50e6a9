"""The lifecycle spec, v1: the top-level :class:`Lifecycle` model and its metadata.

The sections are Pydantic models too: what is trained (problem, data, features,
models) in :mod:`mllc.spec.training`; where versions run and how they are
watched (environments, monitoring) in :mod:`mllc.spec.deployment`; the field
types they share (names, paths, gates, secret references) and their base model
in :mod:`mllc.spec.fields`.

Every model forbids unknown keys and is frozen. Checks that need only one
section live with it as validators; checks across sections (a gate's metric
against the task, ``after`` cycles, unique ports ...) live in
:mod:`mllc.spec.rules` so they can report alongside structural errors.
Field descriptions are the user documentation: ``docs/spec.md`` and the JSON
Schema are generated from them (:mod:`mllc.spec.reference`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer

from mllc.spec.compute import Compute
from mllc.spec.deployment import Environment, Monitoring
from mllc.spec.fields import DnsLabel, Gate, Strict, Text
from mllc.spec.training import Candidate, Data, Features, Problem

API_VERSION = "mllc/v1"

_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$", re.ASCII)


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
    intended_use: Text | None = Field(
        None,
        description="What the model is for and who may use it, in a few sentences; shown "
        "in every version's model card (mllc card). Changes nothing that is trained.",
    )
    limitations: Text | None = Field(
        None,
        description="What it must not be used for, and what its data does not cover; shown "
        "in every version's model card (mllc card). Changes nothing that is trained.",
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

    @model_serializer(mode="wrap")
    def _without_unset_card_text(self, handler: SerializerFunctionWrapHandler) -> Any:
        """``intended_use`` and ``limitations`` appear in the dump (the lifecycle record,
        the spec hash) only when given: a spec without them means what it meant before
        they existed, so its hash and record do not change and no plan shows a change."""
        data = handler(self)
        if isinstance(data, dict):
            for key in ("intended_use", "limitations"):
                if data.get(key) is None:
                    data.pop(key, None)
        return data


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
    compute: Compute | None = Field(
        None,
        description="Where training's searches and cross-validation run (local or a Dask "
        "cluster). Not a stage param: changing it retrains nothing.",
    )

    @model_serializer(mode="wrap")
    def _without_unset_compute(self, handler: SerializerFunctionWrapHandler) -> Any:
        """``compute`` appears in the dump (the spec hash, params.yaml) only when given: a
        spec without it means what it meant before it existed, so nothing changes."""
        data = handler(self)
        if isinstance(data, dict) and data.get("compute") is None:
            data.pop("compute", None)
        return data

    def dump(self) -> dict[str, Any]:
        """Plain data, defaults included, in declaration order (for YAML/JSON output)."""
        return self.model_dump(mode="json", exclude_none=True)
