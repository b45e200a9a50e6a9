"""A canary rollout on KServe as mllc can observe it (docs/deployments.md, on Kubernetes).

:mod:`mllc.targets.manifests` renders each step: the candidate's model with
``spec.predictor.canaryTrafficPercent``, and labels and annotations naming the rollout.
This module reads them back, from a committed manifest or from what
``kubectl get inferenceservice -o json`` prints, into a
:class:`~mllc.types.RolloutObservation`.

What mllc observes on Kubernetes is KServe's own view: the share of traffic the spec asks
for, the share the route gives the candidate (``status.components.predictor.traffic``),
and whether the candidate's revision is Ready. What it does not observe, it says so in
``detail``: error rate, latency and disagreement are exported by KServe and Knative to
Prometheus, which mllc does not read, so ``stats`` stays None.

Pure: no kubectl, no Git.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mllc.targets.manifests import (
    CANDIDATE_LABEL,
    CANDIDATE_MD5,
    LABEL_PREFIX,
    ROLLOUT_ID,
    ROLLOUT_LABEL,
    ROLLOUT_STEP,
)
from mllc.types import RolloutObservation

__all__ = ["NOT_OBSERVED", "candidate_share", "declared_rollout", "live_rollout", "readiness"]

NOT_OBSERVED = (
    "not observed on Kubernetes: the candidate's error rate, latency and disagreement "
    "(KServe and Knative export them to Prometheus, which mllc does not read)"
)
RAW_DEPLOYMENT = "RawDeployment"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _predictor_status(obj: Any) -> dict[str, Any]:
    return _dict(_dict(_dict(_dict(obj).get("status")).get("components")).get("predictor"))


def declared_rollout(doc: Any) -> RolloutObservation | None:
    """The rollout step an InferenceService (committed or live) was rendered for, from
    its labels, annotations and ``canaryTrafficPercent`` (none: 100); None when it is
    not a step mllc rendered. ``ready`` stays None: a manifest says nothing of it."""
    meta = _dict(_dict(doc).get("metadata"))
    labels, notes = _dict(meta.get("labels")), _dict(meta.get("annotations"))
    strategy, rollout_id = _str(labels.get(ROLLOUT_LABEL)), _str(notes.get(ROLLOUT_ID))
    stable = _str(labels.get(LABEL_PREFIX + "version"))
    candidate = _str(labels.get(CANDIDATE_LABEL))
    if strategy is None or rollout_id is None or stable is None or candidate is None:
        return None
    percent = _dict(_dict(_dict(doc).get("spec")).get("predictor")).get("canaryTrafficPercent")
    weight = 100 if percent is None else percent
    if isinstance(weight, bool) or not isinstance(weight, int):
        return None
    step = _str(notes.get(ROLLOUT_STEP))
    where = f"step {step} of {rollout_id}" if step else rollout_id
    detail = f"{where}: rolled back, all traffic on the stable revision" if weight == 0 else where
    return RolloutObservation(
        strategy=strategy,
        stable=stable,
        candidate=candidate,
        candidate_md5=_str(notes.get(CANDIDATE_MD5)),
        weight=weight,
        rollout_id=rollout_id,
        stats=None,
        detail=f"{detail}; {NOT_OBSERVED}",
    )


def _condition(obj: Any, kind: str) -> dict[str, Any] | None:
    for cond in _dict(_dict(obj).get("status")).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def readiness(obj: Any) -> tuple[bool | None, str]:
    """Whether the revision KServe created for the current spec (the candidate's) is
    Ready, and why in words: True ready, False failed (KServe keeps it out of the route:
    a rollback), None not known yet (KServe has not reconciled the spec, or the revision
    is still starting)."""
    meta, status = _dict(_dict(obj).get("metadata")), _dict(_dict(obj).get("status"))
    mode = _str(status.get("deploymentMode")) or _str(
        _dict(meta.get("annotations")).get("serving.kserve.io/deploymentMode")
    )
    if mode == RAW_DEPLOYMENT:
        return False, (
            "KServe runs it in RawDeployment mode, where canaryTrafficPercent splits no "
            "traffic (canary needs Serverless mode)"
        )
    generation, seen = meta.get("generation"), status.get("observedGeneration")
    if isinstance(generation, int) and isinstance(seen, int) and seen < generation:
        return None, f"KServe has not reconciled generation {generation} yet (at {seen})"
    predictor = _predictor_status(obj)
    created = _str(predictor.get("latestCreatedRevision"))
    latest_ready = _str(predictor.get("latestReadyRevision"))
    ready = _condition(obj, "Ready") or {}
    state = ready.get("status")
    name = f"revision {created}" if created else "the latest revision"
    if state == "False":
        why = _str(ready.get("message")) or _str(ready.get("reason")) or "Ready is False"
        why = why if len(why) <= 200 else why[:197] + "..."
        return False, f"{name} failed: {why}"
    if created is not None and created == latest_ready and state == "True":
        return True, f"{name} is Ready"
    if created is not None and created != latest_ready:
        return None, f"{name} is not Ready yet: KServe routes it no traffic until it is"
    if created is None:
        return None, "KServe reports no revision of the predictor yet"
    return None, f"{name} is not Ready yet"


def candidate_share(obj: Any) -> int | None:
    """The percent of traffic the route gives the candidate, from
    ``status.components.predictor.traffic``; None when the status has no traffic.

    KServe routes ``canaryTrafficPercent`` to the latest *ready* revision and the rest to
    the last one rolled out whole (tag ``prev``): while the candidate's revision is not
    Ready, the latest ready one is the stable's, and the candidate gets nothing."""
    traffic = [t for t in _predictor_status(obj).get("traffic") or [] if isinstance(t, dict)]
    if not traffic:
        return None
    # the stable revision: tagged "prev", the one target that is not the latest
    stable = {t.get("revisionName") for t in traffic if not t.get("latestRevision")}
    share = 0
    for target in traffic:
        percent = target.get("percent")
        if target.get("latestRevision") and target.get("revisionName") not in stable:
            share += percent if isinstance(percent, int) and not isinstance(percent, bool) else 0
    return share


def live_rollout(obj: Any) -> RolloutObservation | None:
    """The rollout step a live InferenceService runs, with the candidate's readiness
    and, when the route's split differs from the spec's, that difference in ``detail``."""
    declared = declared_rollout(obj)
    if declared is None:
        return None
    ready, why = readiness(obj)
    share = candidate_share(obj)
    head = declared.detail.removesuffix(f"; {NOT_OBSERVED}")
    parts = [head, why]
    if share is not None and share != declared.weight:
        parts.append(f"the route gives the candidate {share}%, not {declared.weight}%")
    parts.append(NOT_OBSERVED)
    return replace(declared, ready=ready, detail="; ".join(parts))
