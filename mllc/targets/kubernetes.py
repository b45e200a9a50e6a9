"""The ``kubernetes`` target: KServe manifests applied and observed with kubectl.

What users see of it: docs/deployments.md, "The `kubernetes` target".

Rendering is pure and lives in :mod:`mllc.targets.manifests` (re-exported here as
:func:`render`). This module holds the three edges that touch the world:

- :func:`observe` runs ``kubectl get inferenceservice <name>-<env> -o json`` and
  reads the ``mllc.dev/version`` label, the ``Ready`` condition and, during a canary,
  the rollout (:mod:`mllc.targets.kserve_rollout`). It never raises: a missing kubectl
  or an unreachable cluster gives a :class:`DeploymentState` with ``reachable=False``
  and a plain ``detail``, so ``plan`` can say so and go on.
- :func:`apply_manifests` runs ``kubectl apply --server-side`` as field manager
  ``mllc``, and raises :class:`MllcError` when that fails.
- :func:`publish_model` copies a registered model file to ``<storage_uri>/<name>/
  <version>/model.joblib`` with fsspec (``s3://``: the ``mllc[s3]`` extra, docs/remote.md).

With ``kubernetes.sync: gitops`` apply never runs kubectl: the manifests and an Argo CD
``Application`` are committed (by apply) and Argo CD syncs them. :func:`observe_gitops`
reads what HEAD commits under ``deploy/<name>/<env>/`` and, only when a cluster answers,
compares the live InferenceService with it (drift: the fields Git sets that differ).

kubectl runs with the spec's ``context`` (else the current one) and the caller's
environment, so the usual kubeconfig, KUBECONFIG and cloud login plugins apply.
Secrets stay out of every message: the spec only names a service account, and
what kubectl or a storage library prints is reduced to one line with URL
credentials and the values of secret-looking environment variables masked
(:mod:`mllc.targets.kubectl`, which also runs kubectl bounded).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mllc.dvcremote import require_extra
from mllc.errors import MllcError
from mllc.hashing import file_md5
from mllc.spec.cluster import object_name, settings
from mllc.spec.models import Lifecycle
from mllc.targets.base import Progress, model_file
from mllc.targets.gitops import gitops_folders, gitops_state, repo_url
from mllc.targets.kserve_rollout import live_rollout
from mllc.targets.kubectl import context_args, redact, run, summary
from mllc.targets.manifests import LABEL_PREFIX, deploy_dir, model_file_uri, render
from mllc.types import DeploymentState, RegisteredVersion, RolloutStep

__all__ = [
    "TARGET",
    "KubernetesTarget",
    "apply_manifests",
    "observe",
    "observe_gitops",
    "publish_model",
    "render",
]

TARGET = "kubernetes"
# A plan must not hang on a cluster that does not answer: kubectl gives up after
# REQUEST_TIMEOUT per request, the process is killed after the second bound.
OBSERVE_REQUEST_TIMEOUT = "10s"
OBSERVE_TIMEOUT = 30.0
APPLY_REQUEST_TIMEOUT = "60s"
APPLY_TIMEOUT = 180.0

# Storage KServe can read but mllc cannot write to, and why.
_UNPUBLISHABLE = {
    "pvc": "a PersistentVolumeClaim is only reachable from inside the cluster: copy the "
    "file into the volume there",
    "http": "KServe downloads http(s):// models but mllc has no standard way to upload them",
    "https": "KServe downloads http(s):// models but mllc has no standard way to upload them",
    "azureblob": "fsspec has no azureblob:// file system (adlfs reads az:// and abfs://)",
}


def _where(spec: Lifecycle, env: str) -> str:
    context = settings(spec, env).context
    return f"{spec.metadata.name}/{env} (context {context or 'current'})"


# ------------------------------------------------------------------ observe


def _state(
    spec: Lifecycle,
    env: str,
    *,
    version: str | None = None,
    healthy: bool = False,
    detail: str = "",
    reachable: bool = True,
) -> DeploymentState:
    return DeploymentState(
        lifecycle=spec.metadata.name,
        environment=env,
        target=TARGET,
        version=version,
        healthy=healthy,
        detail=detail,
        reachable=reachable,
    )


def _unobserved(name: str, env: str) -> DeploymentState:
    """An environment the spec no longer names: its cluster (context) is unknown."""
    return DeploymentState(name, env, TARGET, None, False, "not observed", False)


def _from_object(spec: Lifecycle, env: str, obj: Any) -> DeploymentState:
    """The state of a live InferenceService, with the rollout step it runs if any."""
    state = _plain_state(spec, env, obj)
    return replace(state, rollout=live_rollout(obj)) if state.version is not None else state


def _plain_state(spec: Lifecycle, env: str, obj: Any) -> DeploymentState:
    if not isinstance(obj, dict):
        return _state(spec, env, reachable=False, detail="kubectl printed no InferenceService")
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    version = labels.get(LABEL_PREFIX + "version")
    if not isinstance(version, str):
        return _state(
            spec,
            env,
            detail="an InferenceService of that name exists but mllc did not create it "
            f"(no {LABEL_PREFIX}version label)",
        )
    status = obj.get("status") or {}
    ready = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, dict) and c.get("type") == "Ready"
        ),
        None,
    )
    if ready is not None and ready.get("status") == "True":
        url = status.get("url")
        return _state(
            spec, env, version=version, healthy=True, detail=f"ready at {url}" if url else "ready"
        )
    if ready is None:
        return _state(spec, env, version=version, detail="not ready yet (no Ready condition)")
    why = ready.get("message") or ready.get("reason") or "Ready is " + str(ready.get("status"))
    return _state(spec, env, version=version, detail=f"not ready: {summary(str(why))}")


def _fetch(spec: Lifecycle, env: str, kubectl: str) -> tuple[Any, DeploymentState | None]:
    """``kubectl get`` the InferenceService: (the object, None), or (None, the state that
    says why there is none)."""
    k8s = settings(spec, env)
    exe = shutil.which(kubectl)
    if exe is None:
        return None, _state(
            spec, env, reachable=False, detail="no cluster reachable: kubectl not found"
        )
    try:
        context = context_args(k8s.context)
    except MllcError as exc:
        return None, _state(spec, env, reachable=False, detail=exc.detail)
    argv = [
        exe,
        *context,
        "get",
        "inferenceservice",
        object_name(spec.metadata.name, env),
        f"--namespace={k8s.namespace}",
        "--output=json",
        f"--request-timeout={OBSERVE_REQUEST_TIMEOUT}",
    ]
    try:
        proc = run(argv, OBSERVE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, _state(
            spec,
            env,
            reachable=False,
            detail=f"no cluster reachable: kubectl did not answer within {OBSERVE_TIMEOUT:g}s",
        )
    except OSError as exc:
        return None, _state(
            spec, env, reachable=False, detail=f"no cluster reachable: {exc.strerror}"
        )
    if proc.returncode != 0:
        line = summary(proc.stderr or proc.stdout)
        if "(NotFound)" in line:
            return None, _state(spec, env, detail="not deployed")
        if "doesn't have a resource type" in line:
            # The cluster answered: nothing of ours can run there until KServe is.
            return None, _state(spec, env, detail="KServe is not installed in the cluster: " + line)
        if line.startswith("Error from server"):
            return None, _state(spec, env, reachable=False, detail="the cluster refused: " + line)
        return None, _state(spec, env, reachable=False, detail="no cluster reachable: " + line)
    try:
        return json.loads(proc.stdout), None
    except ValueError:
        return None, _state(spec, env, reachable=False, detail="kubectl printed something not JSON")


def observe(spec: Lifecycle, env: str, kubectl: str = "kubectl") -> DeploymentState:
    """What the cluster runs for ``env``: the version label and the Ready condition.

    Never raises for the world's sake: kubectl missing, a cluster that does not
    answer or refuses us give ``reachable=False`` and a ``detail`` saying so. An
    InferenceService that does not exist gives ``version=None`` (nothing deployed).
    """
    obj, failed = _fetch(spec, env, kubectl)
    return failed if failed is not None else _from_object(spec, env, obj)


# ------------------------------------------------------------------ gitops


def observe_gitops(
    root: Path, spec: Lifecycle, env: str, kubectl: str = "kubectl"
) -> DeploymentState:
    """A GitOps environment: what HEAD commits and, when a cluster answers, what it runs
    (:func:`mllc.targets.gitops.gitops_state`). Never raises for the world's sake."""
    obj, failed = _fetch(spec, env, kubectl)
    live = failed if failed is not None else _from_object(spec, env, obj)
    return gitops_state(root, spec.metadata.name, env, live, obj)


# ------------------------------------------------------------------ apply


def apply_manifests(
    spec: Lifecycle,
    env: str,
    paths: Sequence[str | os.PathLike[str]],
    kubectl: str = "kubectl",
) -> list[str]:
    """``kubectl apply --server-side`` the given manifest files; kubectl's report lines.

    Raises MllcError with one clear line when kubectl is missing, the cluster
    cannot be reached or it refuses the objects.
    """
    k8s = settings(spec, env)
    where = _where(spec, env)
    if not paths:
        return []
    exe = shutil.which(kubectl)
    if exe is None:
        raise MllcError(
            f"cannot deploy {where}: kubectl not found (install it and configure a context)"
        )
    argv = [
        exe,
        *context_args(k8s.context),
        "apply",
        "--server-side",
        "--field-manager=mllc",
        # GitOps: the spec is the truth. A field someone changed by hand (kubectl
        # edit, scale) would otherwise make every later apply stop on a conflict.
        "--force-conflicts",
        f"--request-timeout={APPLY_REQUEST_TIMEOUT}",
    ]
    for path in paths:
        argv.append(f"--filename={os.fspath(path)}")
    try:
        proc = run(argv, APPLY_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise MllcError(
            f"cannot deploy {where}: kubectl did not finish within {APPLY_TIMEOUT:g}s"
        ) from None
    except OSError as exc:
        raise MllcError(f"cannot deploy {where}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise MllcError(f"kubectl apply failed for {where}: {summary(proc.stderr or proc.stdout)}")
    return [redact(line.strip()) for line in proc.stdout.splitlines() if line.strip()]


# ------------------------------------------------------------------ publish


def _protocol(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "file"


def _filesystem(url: str) -> Any:
    """The fsspec file system of ``url``; MllcError naming the package it needs."""
    protocol = _protocol(url)
    if protocol in _UNPUBLISHABLE:
        raise MllcError(f"cannot publish to {protocol}:// storage: {_UNPUBLISHABLE[protocol]}")
    try:
        # Imported here: fsspec comes with DVC but only publishing needs it.
        fsspec = importlib.import_module("fsspec")
    except ImportError:
        raise MllcError(
            "publishing a model needs the fsspec package (pip install fsspec)"
        ) from None
    options: dict[str, Any] = {}
    if protocol in ("s3", "s3a"):
        require_extra(url, "the storage_uri", ("s3fs",))
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:  # a store that is not AWS (MinIO, Ceph, ...): docs/remote.md
            options["client_kwargs"] = {"endpoint_url": endpoint}
    try:
        return fsspec.filesystem(protocol, **options)
    except ImportError as exc:
        # fsspec's own message names the package: "Install s3fs to access S3".
        raise MllcError(f"cannot publish to {protocol}:// storage: {summary(str(exc))}") from None
    except ValueError:
        raise MllcError(
            f"cannot publish to {protocol}:// storage: fsspec does not know it"
        ) from None


def publish_model(
    root: Path,
    spec: Lifecycle,
    env: str,
    version: RegisteredVersion,
    model_file: str | os.PathLike[str],
    *,
    fs_url: str | None = None,
) -> str:
    """Copy ``model_file`` to ``<storage_uri>/<name>/<version>/model.joblib``; that URL.

    ``model_file`` is relative to ``root`` unless absolute; its MD5 must be the
    version's registered ``model_md5``, so a version never publishes another
    model's bytes. ``fs_url`` replaces the spec's ``storage_uri`` as the base:
    tests (and dry runs) pass a ``memory://`` or ``file://`` URL, which the spec
    does not accept. Credentials come from the storage library's usual sources
    (environment, config files, instance roles) and appear in no message.
    """
    k8s = settings(spec, env)
    name = spec.metadata.name
    source = Path(model_file) if Path(model_file).is_absolute() else root / model_file
    if not source.is_file():
        raise MllcError(f"cannot publish {name} {version.version}: {source} does not exist")
    md5 = file_md5(source)
    if md5 != version.model_md5:
        raise MllcError(
            f"cannot publish {name} {version.version}: {source} has MD5 {md5}, the registry "
            f"says {version.model_md5}"
        )
    url = model_file_uri(fs_url or k8s.storage_uri, name, version.version)
    fs = _filesystem(url)
    try:
        if _protocol(url) in ("file", "local"):
            # Only a local disk needs the folders first. Object stores have none,
            # and s3fs's makedirs would even create a missing bucket.
            fs.makedirs(url.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(source), url)
    except Exception as exc:  # storage libraries raise anything: report one safe line
        raise MllcError(
            f"cannot publish {name} {version.version} to {redact(url)}: "
            f"{type(exc).__name__}: {summary(str(exc))}"
        ) from None
    return redact(url)


# ------------------------------------------------------------------ the target


class KubernetesTarget:
    """The ``kubernetes`` target as a :class:`mllc.targets.base.Target`.

    mllc only reads the InferenceService of each environment the spec names: it does not
    list the cluster, and it deletes nothing it applied with kubectl (an environment
    removed from the spec keeps its objects until removed with kubectl). Its orphans are
    GitOps folders (``deploy/<name>/<env>/`` with an Argo CD Application) of environments
    the spec no longer names: apply removes them in a commit, and Argo CD prunes.
    """

    def observe(self, root: Path, spec: Lifecycle, env: str) -> DeploymentState:
        if settings(spec, env).sync == "gitops":
            return observe_gitops(root, spec, env)
        return observe(spec, env)

    def orphans(self, root: Path, name: str, known: Collection[str]) -> tuple[DeploymentState, ...]:
        found = []
        for env in gitops_folders(root, name):
            if env not in known:
                state = gitops_state(root, name, env, _unobserved(name, env), None)
                folder = deploy_dir(name, env) + "/"
                detail = f"removed from the spec; {folder} is still in Git: apply removes it"
                found.append(replace(state, detail=detail))
        return tuple(found)

    def running(self, root: Path, name: str) -> list[str]:
        return []

    def render(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        version: RegisteredVersion,
        source: str,
        step: RolloutStep | None = None,
    ) -> dict[str, str]:
        gitops = settings(spec, env).sync == "gitops"
        url = repo_url(root, spec, env) if gitops else None
        return render(spec, env, version, source, url, step)

    def publish(
        self, root: Path, spec: Lifecycle, env: str, version: RegisteredVersion, progress: Progress
    ) -> None:
        url = publish_model(root, spec, env, version, model_file(root, version.model_md5))
        progress(f"    {env}: published {url}")

    def deploy(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        version: RegisteredVersion,
        files: Sequence[str],
        progress: Progress,
        step: RolloutStep | None = None,
    ) -> dict[str, Any]:
        """``kubectl apply`` the committed manifests (the model is published already);
        with ``sync: gitops`` nothing: the manifests are committed, Argo CD syncs them.
        A rollout ``step`` is deployed the same way: its manifest is that step."""
        done: dict[str, Any] = {"version": version.version, "manifests": list(files)}
        what = ""
        if step is not None:
            done["rollout"] = {"rollout_id": step.rollout_id, "step": step.step, "of": step.of}
            done["rollout"] |= {"weight": step.weight, "stable": step.stable.version}
            what = f" (canary {step.candidate.version} at {step.weight}%)"
            if step.weight == 0:
                what = f" (canary {step.candidate.version} rolled back to {step.stable.version})"
        if settings(spec, env).sync == "gitops":
            progress(f"    {env}: committed {', '.join(files)}{what}: Argo CD syncs them")
            return {**done, "sync": "gitops"}
        apply_manifests(spec, env, [root / p for p in files])
        progress(f"    {env}: applied {', '.join(files)}{what}")
        return done

    def keep(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        versions: Sequence[RegisteredVersion],
        progress: Progress,
    ) -> str | None:
        return None  # manifests are rendered, and applied, only with a deployable version

    def stop(self, root: Path, name: str, env: str) -> list[str] | None:
        return None
