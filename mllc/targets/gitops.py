"""The Git side of GitOps environments (``kubernetes.sync: gitops``), for the
``kubernetes`` target: what HEAD commits under ``deploy/<name>/<env>/``, where Argo CD
clones the repository from, and how a live object differs from its committed manifest.

Read-only: apply writes and commits the files (docs/deployments.md, "GitOps with Argo CD").
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from mllc import gitcmd, saferead
from mllc.layout import DEPLOY, Layout
from mllc.spec.cluster import settings
from mllc.spec.deployment import ArgoCD
from mllc.spec.models import Lifecycle
from mllc.spec.yamlsafe import YamlProblem, load_text
from mllc.targets.kserve_rollout import NOT_OBSERVED, declared_rollout
from mllc.targets.manifests import APPLICATION_FILE, INFERENCESERVICE_FILE, LABEL_PREFIX
from mllc.types import DeploymentState, RolloutObservation

__all__ = [
    "ARGO_CD",
    "committed_manifests",
    "document",
    "drift",
    "gitops_folders",
    "gitops_state",
    "origin_url",
    "repo_url",
    "version_of",
]

# Named in every state of a GitOps environment that is not in sync: the plan's text
# output shows those apart from versions held back.
ARGO_CD = "Argo CD"


def committed_manifests(root: Path, name: str, env: str) -> dict[str, str]:
    """The files under ``deploy/<name>/<env>/`` at HEAD: path -> text ({} if none).

    Bounded: a pull request may commit anything there. A file over the cap of every file
    mllc reads from a checkout is not read; it stands as a note that differs from any
    manifest (the plan then rewrites it), and a blob that is no file is left out."""
    folder = Layout(name).deploy_dir(env).as_posix()
    proc = gitcmd.run(root, "ls-tree", "-r", "-l", "-z", "HEAD", "--", folder + "/")
    if proc.returncode != 0:  # no commit yet
        return {}
    files = {}
    entries = (e.partition("\t") for e in proc.stdout.decode("utf-8", "replace").split("\0"))
    for meta, _, path in sorted(entries, key=lambda e: e[2]):
        parts = meta.split()
        if len(parts) != 4 or parts[1] != "blob" or not parts[3].isdigit():
            continue
        if int(parts[3]) > saferead.MAX_BYTES:
            files[path] = f"(over {saferead.MAX_BYTES} bytes: not read)"
            continue
        data = gitcmd.file_at(root, "HEAD", path)
        if data is not None:
            files[path] = data.decode("utf-8", "replace")
    return files


def document(text: str | None) -> Any:
    """A committed manifest as data, read with the spec's bounds; None if unreadable."""
    if text is None:
        return None
    try:
        loaded = load_text(text)
    except YamlProblem:
        return None
    return loaded.data if not loaded.problems else None


def version_of(doc: Any) -> str | None:
    labels = ((doc.get("metadata") or {}).get("labels") or {}) if isinstance(doc, dict) else {}
    version = labels.get(LABEL_PREFIX + "version") if isinstance(labels, dict) else None
    return version if isinstance(version, str) else None


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


_MISSING = object()


def drift(committed: Any, live: Any, path: str = "") -> list[str]:
    """Where the live object differs from the committed manifest, field by field: every
    leaf Git sets (``metadata`` and ``spec``), compared with the cluster's value. Fields
    only the cluster has (defaults, status, controllers' annotations) are not drift."""
    if isinstance(committed, dict):
        if not isinstance(live, dict):
            return [f"{path}: {_short(committed)} in Git, {_short(live)} in the cluster"]
        out: list[str] = []
        for key, value in committed.items():
            if not path and key not in ("metadata", "spec"):
                continue  # apiVersion and kind: the object was found by them
            here = f"{path}.{key}" if path else str(key)
            got = live.get(key, _MISSING)
            if got is _MISSING:
                out.append(f"{here}: {_short(value)} in Git, missing in the cluster")
            else:
                out += drift(value, got, here)
        return out
    if committed != live:
        return [f"{path}: {_short(committed)} in Git, {_short(live)} in the cluster"]
    return []


def origin_url(root: Path) -> str | None:
    """The ``origin`` remote's URL as Argo CD may see it: http(s) user information
    (a token, user:password) dropped; None without such a remote."""
    proc = gitcmd.run(root, "config", "--get", "remote.origin.url")
    url = proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else ""
    if not url:
        return None
    return re.sub(r"^(https?://)[^/@]*@", r"\1", url)


def repo_url(root: Path, spec: Lifecycle, env: str) -> str | None:
    """The repository URL of ``env``'s Argo CD Application: the spec's, else origin's."""
    argocd = settings(spec, env).argocd or ArgoCD()
    return argocd.repo_url or origin_url(root)


# HEAD's Argo CD Applications by (repository, HEAD's commit id): a commit's tree never
# changes, so a plan of many lifecycles lists HEAD's deploy/ once, not once per lifecycle.
_HEAD_APPLICATIONS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}


def _head_applications(root: Path) -> tuple[tuple[str, str], ...]:
    """(lifecycle, environment) of every Application at HEAD; none without commits."""
    oid = gitcmd.head_from_files(root)
    key = (str(root), oid or "")
    if oid is not None and key in _HEAD_APPLICATIONS:
        return _HEAD_APPLICATIONS[key]
    base = DEPLOY.as_posix()
    proc = gitcmd.run(root, "ls-tree", "-r", "-z", "--name-only", "HEAD", "--", f"{base}/")
    found = []
    for path in proc.stdout.decode("utf-8", "replace").split("\0") if proc.returncode == 0 else []:
        parts = path.split("/")
        if len(parts) == 4 and parts[3] == APPLICATION_FILE:
            found.append((parts[1], parts[2]))
    if oid is not None:
        _HEAD_APPLICATIONS[key] = tuple(found)
    return tuple(found)


def gitops_folders(root: Path, name: str) -> list[str]:
    """Environments of ``name`` with an Argo CD Application, on disk or at HEAD."""
    envs = {p.parent.name for p in (root / Layout(name).deploy).glob(f"*/{APPLICATION_FILE}")}
    envs.update(env for lifecycle, env in _head_applications(root) if lifecycle == name)
    return sorted(envs)


def _step(rollout: RolloutObservation | None, *, tag: bool = True) -> str:
    if rollout is None:
        return "no rollout step"
    where = f" ({rollout.rollout_id})" if tag else ""
    if rollout.weight == 0:
        return f"canary {rollout.candidate} rolled back{where}"
    return f"canary {rollout.candidate} at {rollout.weight}%{where}"


def _rollout(
    committed: RolloutObservation | None, live: DeploymentState
) -> RolloutObservation | None:
    """The rollout step of a GitOps environment: the one HEAD commits (apply's commit is
    the step), observed in the cluster only once Argo CD has synced that very step."""
    if committed is None:
        return None
    if live.reachable and live.rollout and live.rollout.rollout_id == committed.rollout_id:
        return live.rollout
    head = committed.detail.removesuffix(f"; {NOT_OBSERVED}")
    seen = f"the cluster runs {_step(live.rollout)}" if live.reachable else live.detail
    detail = f"{head}; committed, awaiting sync by {ARGO_CD} ({seen}); {NOT_OBSERVED}"
    return replace(committed, ready=None, detail=detail)


def gitops_state(
    root: Path, name: str, env: str, live: DeploymentState, obj: Any
) -> DeploymentState:
    """``live`` (what kubectl saw of the InferenceService ``obj``, None if nothing) made a
    GitOps state: ``committed`` is the version the InferenceService at HEAD names, and
    ``version`` only ever what a reachable cluster was seen running. Unreachable, or not
    synced yet: "committed, awaiting sync", never running; synced but different from
    Git: ``drift`` names the fields. ``rollout`` is the step HEAD commits, with what the
    cluster shows of it once synced (a cluster on another step is awaiting sync)."""
    folder = Layout(name).deploy_dir(env).as_posix()
    manifests = committed_manifests(root, name, env)
    committed_doc = document(manifests.get(f"{folder}/{INFERENCESERVICE_FILE}"))
    committed = version_of(committed_doc)
    declared = declared_rollout(committed_doc)
    behind = (declared.rollout_id if declared else None) != (
        live.rollout.rollout_id if live.rollout else None
    )
    live_step = _step(live.rollout)
    live = replace(
        live,
        gitops=True,
        committed=committed,
        manifests=tuple(manifests.items()),
        rollout=_rollout(declared, live),
    )
    if committed is None:
        detail = f"nothing committed in {folder}/ yet; the cluster: {live.detail}"
        return replace(live, detail=detail)
    canary = f" with {_step(declared, tag=False)}" if declared else ""
    where = f"{committed}{canary} committed in {folder}/"
    if not live.reachable:
        detail = f"{where}, awaiting sync by {ARGO_CD} (not observed: {live.detail})"
        return replace(live, version=None, healthy=False, detail=detail)
    if live.version is None:
        detail = f"{where}, awaiting sync by {ARGO_CD} (the cluster: {live.detail})"
        return replace(live, healthy=False, detail=detail)
    found = tuple(drift(committed_doc, obj))
    if live.version != committed:
        detail = f"{where}, awaiting sync by {ARGO_CD}: the cluster runs {live.version}"
        return replace(live, healthy=False, detail=detail, drift=found)
    if behind:  # the same stable version, another step of a rollout (or none)
        detail = f"{where}, awaiting sync by {ARGO_CD}: the cluster runs {live_step}"
        return replace(live, healthy=False, detail=detail, drift=found)
    if found:
        detail = (
            f"{where}, synced by {ARGO_CD}, but the cluster differs from Git (drift): {found[0]}"
        )
        if len(found) > 1:
            detail += f" and {len(found) - 1} more"
        return replace(live, healthy=False, detail=detail, drift=found)
    return replace(live, detail=f"{where}, synced: {live.detail}")
