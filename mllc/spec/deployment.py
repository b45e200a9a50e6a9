"""Where versions run and how they are watched: the spec's environments and monitoring.

Checks that need only one section are validators here (the first problem is raised;
:mod:`mllc.spec.rules` reports them all, alongside the checks across sections).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from mllc.spec import checks
from mllc.spec.fields import DnsLabel, SecretRef, Strict, raise_first
from mllc.spec.rollout import Replay, Rollout

_VERSION = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$", re.ASCII)


# ---------------------------------------------------------------- environments

# A Git URL Argo CD can clone: https://host/path, ssh://[user@]host/path or the scp-like
# git@host:path. No user:password@ (credentials live in Argo CD's repository secret).
_REPO_URL = re.compile(
    r"^(https://[^\s@/:]+(:\d+)?/[^\s@]+|ssh://([A-Za-z0-9._-]+@)?[^\s@/]+(:\d+)?/[^\s@]+"
    r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s@]+)$",
    re.ASCII,
)
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$", re.ASCII)


class ArgoCD(Strict):
    """Where Argo CD finds an environment's manifests (``kubernetes.sync: gitops``)."""

    repo_url: str | None = Field(
        None,
        description="URL of this Git repository as Argo CD clones it, without credentials "
        "(https://, ssh:// or git@host:path). Default: the URL of the Git remote 'origin'.",
    )
    revision: str = Field(
        "HEAD",
        description="Branch, tag or commit Argo CD syncs from; HEAD: the repository's "
        "default branch.",
    )
    project: DnsLabel = Field("default", description="Argo CD project of the Application.")
    namespace: DnsLabel = Field(
        "argocd", description="Namespace Argo CD runs in, where the Application lives."
    )

    @field_validator("repo_url")
    @classmethod
    def _repo_url(cls, v: str | None) -> str | None:
        if v is not None and not _REPO_URL.fullmatch(v):
            shown = re.sub(r"//[^/@\s]*@", "//***@", v)  # never echo a token into a CI log
            raise ValueError(
                f"{shown!r} is not a Git URL Argo CD can clone without credentials (https://host/"
                "path, ssh://host/path or git@host:path; no user:password@)"
            )
        return v

    @field_validator("revision")
    @classmethod
    def _revision(cls, v: str) -> str:
        if not _REVISION.fullmatch(v) or ".." in v:
            raise ValueError(f"{v!r} is not a Git branch, tag or commit")
        return v


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
    context: str | None = Field(
        None, description="kubectl context to apply with (with sync: gitops, only to observe)."
    )
    cpu: str = Field("500m", description="CPU request and limit.")
    memory: str = Field("512Mi", description="Memory request and limit.")
    sync: Literal["kubectl", "gitops"] = Field(
        "kubectl",
        description="kubectl: apply runs kubectl apply; gitops: apply only commits the "
        "manifests and an Argo CD Application, and Argo CD syncs them (no cluster needed).",
    )
    argocd: ArgoCD | None = Field(
        None, description="The Argo CD Application's source and place (sync: gitops only)."
    )

    @model_validator(mode="after")
    def _argocd_with_gitops(self) -> KubernetesTarget:
        if self.argocd is not None and self.sync != "gitops":
            raise ValueError("an 'argocd' section applies to sync: gitops only")
        return self

    @model_serializer(mode="wrap")
    def _without_default_sync(self, handler: SerializerFunctionWrapHandler) -> Any:
        """``sync`` and ``argocd`` appear in the dump (the lifecycle record, the spec hash)
        only when they ask for GitOps: a spec without them means what it meant before they
        existed, so its hash and record do not change and no plan shows a change."""
        data = handler(self)
        if isinstance(data, dict) and data.get("sync") == "kubectl":
            data.pop("sync", None)
            data.pop("argocd", None)
        if isinstance(data, dict) and data.get("argocd") is None:
            data.pop("argocd", None)
        return data

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
    require: list[Literal["beats_champion", "wins_on_replay"]] = Field(
        default_factory=list,
        description="Extra promotion requirements. beats_champion: the challenger scores at "
        "least the current version on problem.metric; wins_on_replay: replayed offline on "
        "this environment's captured requests (and labelled feedback) against the version "
        "it runs, the challenger stays within the 'replay' thresholds.",
    )
    kubernetes: KubernetesTarget | None = Field(None, description="Settings of KServe.")
    rollout: Rollout | None = Field(
        None,
        description="How a new version replaces the running one: canary steps or a shadow, "
        "with an analysis and rollback (docs/deployments.md). Without it, at once.",
    )
    replay: Replay | None = Field(
        None,
        description="Thresholds of require: [wins_on_replay] (defaults when left out).",
    )

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
        raise_first(checks.environment(self.__dict__))
        return self

    @model_serializer(mode="wrap")
    def _without_unset_rollout(self, handler: SerializerFunctionWrapHandler) -> Any:
        """``rollout`` and ``replay`` appear in the dump (the lifecycle record, the spec
        hash) only when given: a spec without them keeps its hash and record."""
        data = handler(self)
        if isinstance(data, dict):
            for key in ("rollout", "replay"):
                if data.get(key) is None:
                    data.pop(key, None)
        return data


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
        raise_first(checks.performance(self.__dict__))
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
