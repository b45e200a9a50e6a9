"""What a Kubernetes cluster would refuse that the spec's own rules let through.

Names the cluster derives from a lifecycle and an environment (the
InferenceService, KServe's predictor host, the monitoring CronJob) have length
limits the spec's own rules cannot see. ``mllc validate`` reports these
for every ``target: kubernetes`` environment; the ``kubernetes`` target
(:mod:`mllc.targets.manifests`) uses the same names when it renders.
"""

from __future__ import annotations

from mllc.errors import MllcError
from mllc.names import DNS_LABEL_MAX as _DNS_LABEL_MAX
from mllc.spec.deployment import KubernetesTarget
from mllc.spec.models import Lifecycle

# The Job controller appends an 11-character suffix to a CronJob's name, so the
# API server refuses CronJob names longer than 52.
_CRONJOB_NAME_MAX = 52
# KServe names the predictor's host "<isvc>-predictor-<namespace>" (its default
# domain template), and that must be one DNS label: longer and the controller
# fails to reconcile (kserve/kserve#4807), long after kubectl apply succeeded.
_PREDICTOR_SUFFIX = "-predictor-"


def object_name(name: str, env: str) -> str:
    """The InferenceService's name: one per lifecycle and environment."""
    return f"{name}-{env}"


def monitor_name(name: str, env: str) -> str:
    return f"{name}-{env}-monitor"


def settings(spec: Lifecycle, env: str) -> KubernetesTarget:
    """The ``kubernetes`` section of environment ``env``; MllcError if it has none."""
    environment = spec.environments.get(env)
    if environment is None:
        raise MllcError(f"{spec.metadata.name} has no environment {env!r}")
    if environment.target != "kubernetes" or environment.kubernetes is None:
        raise MllcError(
            f"environment {env!r} of {spec.metadata.name} does not use the kubernetes target"
        )
    return environment.kubernetes


def problems(spec: Lifecycle, env: str) -> list[str]:
    """What the cluster would refuse that the spec's own validation lets through."""
    k8s = settings(spec, env)
    name = spec.metadata.name
    out = []
    isvc = object_name(name, env)
    if len(isvc) > _DNS_LABEL_MAX:
        out.append(
            f"InferenceService name {isvc!r} is {len(isvc)} characters, over Kubernetes' "
            f"{_DNS_LABEL_MAX}: shorten the lifecycle or environment name"
        )
    else:
        host = isvc + _PREDICTOR_SUFFIX + k8s.namespace
        if len(host) > _DNS_LABEL_MAX:
            out.append(
                f"KServe's predictor host name {host!r} is {len(host)} characters, over the "
                f"{_DNS_LABEL_MAX} of a DNS label: shorten the lifecycle, environment or "
                "namespace name"
            )
    if spec.monitoring is not None:
        cron = monitor_name(name, env)
        if len(cron) > _CRONJOB_NAME_MAX:
            out.append(
                f"CronJob name {cron!r} is {len(cron)} characters, over Kubernetes' "
                f"{_CRONJOB_NAME_MAX} for CronJobs: shorten the lifecycle or environment name"
            )
    # cpu and memory: the spec's own validators (spec.deployment) accept only quantities
    # the API server does, so nothing is left to check here
    return out
