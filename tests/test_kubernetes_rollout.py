"""A canary on the kubernetes target: each step's InferenceService (KServe's
``canaryTrafficPercent``), its deployment with kubectl or as a GitOps commit, and what
observe reads back of it.

Every step's manifest is checked against the strict KServe InferenceService schema
vendored in ``schemas/vendor/`` (and the Argo CD Application against Argo CD's), for
several weights and both sync modes.

There is no Kubernetes cluster here. As in tests/test_kubernetes.py, a stand-in
``kubectl`` first on PATH prints a given InferenceService as JSON (with the status KServe
would write: conditions, ``components.predictor`` revisions and traffic) and records its
arguments; mllc's own code runs as it would. The statuses are themselves validated
against KServe's schema, so they only use fields KServe has. "No cluster" is real
(kubectl left off PATH), and GitOps reads real Git repositories in tmp dirs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_repo import git
from test_gitops import ARGOCD_SCHEMA, REPO_URL, _no_kubectl_path, gitops_spec
from test_kubernetes import KSERVE_SCHEMA, READY, VERSION, FakeKubectl, make_spec

from mllc.errors import MllcError
from mllc.spec.models import Lifecycle
from mllc.targets.kserve_rollout import NOT_OBSERVED, candidate_share, readiness
from mllc.targets.kubernetes import KubernetesTarget, observe, observe_gitops, render
from mllc.types import RolloutObservation, RolloutStep

SOURCE = "specs/iris.yaml"
FOLDER = "deploy/iris/production"
ISVC = f"{FOLDER}/inferenceservice.yaml"
APP = f"{FOLDER}/application.yaml"
CANDIDATE = replace(VERSION, version="v1.1.0", commit="1" * 40, model_md5="b" * 32)
ROLLOUT_ID = "iris#production_canary#7"
CANARY: dict[str, Any] = {"rollout": {"strategy": "canary", "steps": [10, 50, 100]}}


def step(weight: int, number: int = 1, of: int = 3, rollout_id: str = ROLLOUT_ID) -> RolloutStep:
    return RolloutStep("canary", VERSION, CANDIDATE, weight, rollout_id, number, of)


def isvc_of(files: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(files[ISVC])
    return doc


@pytest.fixture(scope="module")
def kserve() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(KSERVE_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


# ------------------------------------------------------------------ rendering


def test_a_step_runs_the_candidate_at_its_weight_and_says_which_step() -> None:
    files = render(make_spec(CANARY), "production", CANDIDATE, SOURCE, step=step(10))
    plain = render(make_spec(CANARY), "production", CANDIDATE, SOURCE)
    assert sorted(files) == sorted(plain)  # the same files; only the InferenceService differs
    assert {p: t for p, t in files.items() if p != ISVC} == {
        p: t for p, t in plain.items() if p != ISVC
    }
    assert isvc_of(files) == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "iris-production",
            "namespace": "ml",
            "labels": {
                "app.kubernetes.io/component": "predictor",
                "app.kubernetes.io/managed-by": "mllc",
                "app.kubernetes.io/name": "iris",
                "mllc.dev/candidate": "v1.1.0",
                "mllc.dev/environment": "production",
                "mllc.dev/lifecycle": "iris",
                "mllc.dev/rollout": "canary",
                "mllc.dev/version": "v1.0.0",  # the stable: the registry's assignment
                "team": "botany",
            },
            "annotations": {
                "mllc.dev/candidate-model-md5": "b" * 32,
                "mllc.dev/model-md5": VERSION.model_md5,
                "mllc.dev/rollout-id": ROLLOUT_ID,
                "mllc.dev/rollout-step": "1/3",
                "mllc.dev/spec-source": SOURCE,
            },
        },
        "spec": {
            "predictor": {
                "minReplicas": 2,
                "maxReplicas": 2,
                "serviceAccountName": "models-reader",
                "canaryTrafficPercent": 10,
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "protocolVersion": "v2",
                    "storageUri": "s3://models/iris/v1.1.0",  # the candidate's model
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "512Mi"},
                        "limits": {"cpu": "500m", "memory": "512Mi"},
                    },
                },
            }
        },
    }


def test_without_a_step_the_manifest_is_what_it_always_was() -> None:
    """Completion (the candidate alone) and a spec without rollout: no canary field, no
    rollout metadata, byte for byte the plain render (the golden files hold it)."""
    spec = make_spec(CANARY)
    done = isvc_of(render(spec, "production", CANDIDATE, SOURCE))
    assert "canaryTrafficPercent" not in done["spec"]["predictor"]
    assert done["metadata"]["labels"]["mllc.dev/version"] == "v1.1.0"
    assert not [k for k in done["metadata"]["labels"] if "rollout" in k or "candidate" in k]
    assert sorted(done["metadata"]["annotations"]) == ["mllc.dev/model-md5", "mllc.dev/spec-source"]
    assert render(make_spec(), "production", VERSION, SOURCE) == render(
        make_spec(), "production", VERSION, SOURCE, step=None
    )


def test_the_last_step_gives_the_candidate_everything_without_the_field() -> None:
    """At 100 KServe needs no canaryTrafficPercent; the step still says it is one."""
    last = isvc_of(render(make_spec(CANARY), "production", CANDIDATE, SOURCE, step=step(100, 3)))
    assert "canaryTrafficPercent" not in last["spec"]["predictor"]
    assert last["spec"]["predictor"]["model"]["storageUri"] == "s3://models/iris/v1.1.0"
    assert last["metadata"]["annotations"]["mllc.dev/rollout-step"] == "3/3"


def test_a_rollback_pins_all_traffic_to_the_stable_revision() -> None:
    """Weight 0: the stable's model with canaryTrafficPercent 0. KServe sends 100% to the
    last revision rolled out whole (the stable's, still running) at once; a manifest
    without the field would send it to the latest *ready* revision, the candidate's,
    until the new one is up."""
    pinned = isvc_of(render(make_spec(CANARY), "production", VERSION, SOURCE, step=step(0, 2)))
    predictor = pinned["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 0
    assert predictor["model"]["storageUri"] == "s3://models/iris/v1.0.0"
    assert pinned["metadata"]["labels"]["mllc.dev/version"] == "v1.0.0"
    assert pinned["metadata"]["labels"]["mllc.dev/candidate"] == "v1.1.0"


@pytest.mark.parametrize("weight", [0, 1, 10, 50, 99, 100])
@pytest.mark.parametrize("sync", ["kubectl", "gitops"])
def test_every_step_validates_against_the_strict_kserve_schema(
    weight: int, sync: str, kserve: Any
) -> None:
    spec = make_spec({**CANARY, "kubernetes": {"sync": sync}})
    url = REPO_URL if sync == "gitops" else None
    files = render(spec, "production", CANDIDATE, SOURCE, url, step(weight))
    doc = isvc_of(files)
    assert [e.message for e in kserve.iter_errors(doc)] == []
    assert doc["spec"]["predictor"].get("canaryTrafficPercent") == (
        weight if weight < 100 else None
    )
    plain = render(spec, "production", CANDIDATE, SOURCE, url)
    if sync == "gitops":  # the Argo CD Application is the same for every step
        assert files[APP] == plain[APP]
        jsonschema = pytest.importorskip("jsonschema")
        schema = json.loads(ARGOCD_SCHEMA.read_text(encoding="utf-8"))
        app = yaml.safe_load(files[APP])
        assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(app)) == []
    # strict indeed: a misspelt canary field is refused
    doc["spec"]["predictor"]["canaryTraficPercent"] = weight
    assert [e.message for e in kserve.iter_errors(doc)] == [
        "Additional properties are not allowed ('canaryTraficPercent' was unexpected)"
    ]


def test_shadow_and_impossible_weights_are_refused_clearly() -> None:
    shadow = replace(step(0), strategy="shadow")
    with pytest.raises(MllcError) as caught:
        render(make_spec(), "production", CANDIDATE, SOURCE, step=shadow)
    assert caught.value.detail == (
        "iris/production: KServe cannot mirror traffic to a shadow (kserve#2978); the "
        "kubernetes target runs strategy: canary only"
    )
    with pytest.raises(MllcError) as caught:
        render(make_spec(), "production", CANDIDATE, SOURCE, step=step(101))
    assert caught.value.detail == "iris/production: a canary weight is 0..100, not 101"


def test_the_target_renders_the_step_in_both_sync_modes(tmp_path: Path) -> None:
    git("init", "-q", cwd=tmp_path)
    git("remote", "add", "origin", REPO_URL, cwd=tmp_path)
    target = KubernetesTarget()
    for spec in (make_spec(CANARY), gitops_spec()):
        files = target.render(tmp_path, spec, "production", CANDIDATE, SOURCE, step(50, 2))
        assert isvc_of(files)["spec"]["predictor"]["canaryTrafficPercent"] == 50
    assert APP in files  # gitops: the Application beside it


# ------------------------------------------------------------------ deploying


def test_kubectl_mode_applies_the_steps_manifest(kubectl: FakeKubectl, tmp_path: Path) -> None:
    files = render(make_spec(CANARY), "production", CANDIDATE, SOURCE, step=step(10))
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    kubectl.reply(stdout="inferenceservice.serving.kserve.io/iris-production serverside-applied\n")
    said: list[str] = []
    done = KubernetesTarget().deploy(
        tmp_path, make_spec(CANARY), "production", CANDIDATE, sorted(files), said.append, step(10)
    )
    assert done == {
        "version": "v1.1.0",
        "manifests": sorted(files),
        "rollout": {
            "rollout_id": ROLLOUT_ID,
            "step": 1,
            "of": 3,
            "weight": 10,
            "stable": "v1.0.0",
        },
    }
    paths = ", ".join(sorted(files))
    assert said == [f"    production: applied {paths} (canary v1.1.0 at 10%)"]
    (applied,) = kubectl.argv()
    assert [a for a in applied if a.startswith("--filename=")] == [
        f"--filename={tmp_path / p}" for p in sorted(files)
    ]


def test_gitops_mode_the_commit_is_the_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", _no_kubectl_path(tmp_path))  # kubectl could not even run
    said: list[str] = []
    done = KubernetesTarget().deploy(
        tmp_path, gitops_spec(), "production", CANDIDATE, [ISVC], said.append, step(50, 2)
    )
    assert done["sync"] == "gitops" and done["rollout"]["weight"] == 50
    assert said == [f"    production: committed {ISVC} (canary v1.1.0 at 50%): Argo CD syncs them"]


# ------------------------------------------------------------------ observing


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return FakeKubectl(bin_dir)


REV1, REV2 = "iris-production-predictor-00001", "iris-production-predictor-00002"


def live(
    doc: dict[str, Any],
    *,
    created: str = REV2,
    ready_rev: str = REV2,
    traffic: list[tuple[str, int, bool]] | None = None,
    ready: str = "True",
    message: str | None = None,
    generation: int = 2,
    observed: int = 2,
) -> dict[str, Any]:
    """What KServe (Serverless mode) would report for ``doc`` applied over a stable v1.0.0
    that runs as revision 1: ``traffic`` as (revision, percent, latestRevision)."""
    obj = json.loads(json.dumps(doc))
    obj["metadata"] |= {"generation": generation, "uid": "4f0c", "resourceVersion": "42"}
    weight = doc["spec"]["predictor"].get("canaryTrafficPercent", 100)
    if traffic is None:
        traffic = [(ready_rev, weight, True)] + (
            [(REV1, 100 - weight, False)] if weight < 100 else []
        )
    condition: dict[str, Any] = {"type": "Ready", "status": ready}
    if message:
        condition |= {"reason": "RevisionFailed", "message": message}
    routes: list[dict[str, Any]] = []
    for rev, percent, latest in traffic:
        route: dict[str, Any] = {"revisionName": rev, "percent": percent, "latestRevision": latest}
        routes.append(route if latest else route | {"tag": "prev"})
    obj["status"] = {
        "observedGeneration": observed,
        "url": "http://iris-production.ml.example.com",
        "deploymentMode": "Serverless",
        "conditions": [{"type": "PredictorReady", "status": ready}, condition],
        "components": {
            "predictor": {
                "latestCreatedRevision": created,
                "latestReadyRevision": ready_rev,
                "latestRolledoutRevision": REV1,
                "traffic": routes,
            }
        },
    }
    return obj


def step_doc(weight: int, number: int = 1) -> dict[str, Any]:
    return isvc_of(
        render(make_spec(CANARY), "production", CANDIDATE, SOURCE, step=step(weight, number))
    )


def test_observe_a_canary_whose_revision_is_ready(kubectl: FakeKubectl, kserve: Any) -> None:
    obj = live(step_doc(10))
    assert [e.message for e in kserve.iter_errors(obj)] == []  # a status KServe could write
    kubectl.reply(stdout=json.dumps(obj))
    state = observe(make_spec(CANARY), "production")
    assert (state.version, state.healthy, state.reachable) == ("v1.0.0", True, True)
    assert state.rollout == RolloutObservation(
        strategy="canary",
        stable="v1.0.0",
        candidate="v1.1.0",
        candidate_md5="b" * 32,
        weight=10,
        rollout_id=ROLLOUT_ID,
        stats=None,
        detail=f"step 1/3 of {ROLLOUT_ID}; revision {REV2} is Ready; {NOT_OBSERVED}",
        ready=True,
    )
    assert "Prometheus, which mllc does not read" in NOT_OBSERVED


def test_observe_a_canary_whose_revision_is_still_starting(kubectl: FakeKubectl) -> None:
    """Until the candidate's revision is Ready, KServe's latest ready revision is the
    stable's: the route gives the candidate nothing, and observe says so."""
    obj = live(
        step_doc(10), ready_rev=REV1, ready="Unknown", traffic=[(REV1, 10, True), (REV1, 90, False)]
    )
    kubectl.reply(stdout=json.dumps(obj))
    rollout = observe(make_spec(CANARY), "production").rollout
    assert rollout is not None and rollout.ready is None
    assert rollout.detail == (
        f"step 1/3 of {ROLLOUT_ID}; revision {REV2} is not Ready yet: KServe routes it no "
        f"traffic until it is; the route gives the candidate 0%, not 10%; {NOT_OBSERVED}"
    )


def test_observe_a_canary_whose_revision_failed(kubectl: FakeKubectl) -> None:
    failed = f"Revision {REV2} failed with message: model not found at s3://models/iris/v1.1.0"
    obj = live(step_doc(10), ready_rev=REV1, ready="False", message=failed,
               traffic=[(REV1, 10, True), (REV1, 90, False)])  # fmt: skip
    kubectl.reply(stdout=json.dumps(obj))
    state = observe(make_spec(CANARY), "production")
    assert (state.version, state.healthy) == ("v1.0.0", False)
    assert state.rollout is not None and state.rollout.ready is False  # a reason to roll back
    assert f"revision {REV2} failed: {failed}" in state.rollout.detail


def test_readiness_waits_for_kserve_to_reconcile_and_refuses_raw_deployment() -> None:
    obj = live(step_doc(50, 2), generation=3, observed=2)
    assert readiness(obj) == (None, "KServe has not reconciled generation 3 yet (at 2)")
    raw = live(step_doc(50, 2))
    raw["status"]["deploymentMode"] = "RawDeployment"
    ready, why = readiness(raw)
    assert ready is False and "canaryTrafficPercent splits no traffic" in why
    assert readiness({}) == (None, "KServe reports no revision of the predictor yet")
    assert readiness(live(step_doc(50, 2), ready="Unknown")) == (
        None,
        f"revision {REV2} is not Ready yet",
    )
    assert readiness(live(step_doc(50, 2), ready_rev=REV1, ready="True"))[0] is None


def test_the_candidates_share_comes_from_the_route() -> None:
    assert candidate_share(live(step_doc(10))) == 10
    assert candidate_share(live(step_doc(100, 3))) == 100
    assert candidate_share(live(step_doc(0, 2))) == 0
    assert candidate_share({"status": {}}) is None


def test_a_plain_inferenceservice_has_no_rollout(kubectl: FakeKubectl) -> None:
    kubectl.reply(stdout=json.dumps(READY))
    assert observe(make_spec(), "production").rollout is None


def test_observe_a_rollback(kubectl: FakeKubectl) -> None:
    kubectl.reply(stdout=json.dumps(live(step_doc(0, 2))))
    rollout = observe(make_spec(CANARY), "production").rollout
    assert rollout is not None and (rollout.weight, rollout.ready) == (0, True)
    assert rollout.detail.startswith(
        f"step 2/3 of {ROLLOUT_ID}: rolled back, all traffic on the stable revision; "
    )


# ------------------------------------------------------------------ GitOps


def _commit(repo: Path, files: dict[str, str], message: str) -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text, encoding="utf-8")
    git("add", "-A", cwd=repo)
    git("commit", "-qm", message, cwd=repo)


def test_gitops_observes_the_committed_step_and_the_cluster_once_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    spec = gitops_spec()
    one = render(spec, "production", CANDIDATE, SOURCE, REPO_URL, step(10))
    _commit(repo, one, "step 1")
    two = render(
        spec,
        "production",
        CANDIDATE,
        SOURCE,
        REPO_URL,
        step(50, 2, rollout_id="iris#production_canary#8"),
    )
    _commit(repo, two, "step 2")

    monkeypatch.setenv("PATH", _no_kubectl_path(tmp_path))  # no cluster at all
    state = observe_gitops(repo, spec, "production")
    assert (state.committed, state.version, state.reachable) == ("v1.0.0", None, False)
    assert state.rollout is not None
    assert (state.rollout.weight, state.rollout.rollout_id, state.rollout.ready) == (
        50,
        "iris#production_canary#8",
        None,
    )
    assert state.rollout.detail == (
        "step 2/3 of iris#production_canary#8; committed, awaiting sync by Argo CD (no "
        f"cluster reachable: kubectl not found); {NOT_OBSERVED}"
    )

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    kubectl = FakeKubectl(bin_dir)
    kubectl.reply(stdout=json.dumps(live(isvc_of(one))))  # Argo CD is still at step 1
    state = observe_gitops(repo, spec, "production")
    assert state.healthy is False
    assert state.detail == (
        f"v1.0.0 with canary v1.1.0 at 50% committed in {FOLDER}/, awaiting sync by Argo CD: "
        f"the cluster runs canary v1.1.0 at 10% ({ROLLOUT_ID})"
    )
    assert state.rollout is not None and state.rollout.ready is None
    assert "the cluster runs canary v1.1.0 at 10%" in state.rollout.detail

    kubectl.reply(stdout=json.dumps(live(isvc_of(two))))  # synced
    state = observe_gitops(repo, spec, "production")
    assert (state.version, state.healthy, state.drift) == ("v1.0.0", True, ())
    assert state.rollout is not None
    assert (state.rollout.weight, state.rollout.ready) == (50, True)
    assert state.detail.startswith(
        f"v1.0.0 with canary v1.1.0 at 50% committed in {FOLDER}/, synced"
    )


def test_a_rollback_is_deployed_and_said_as_one(kubectl: FakeKubectl, tmp_path: Path) -> None:
    kubectl.reply(stdout="inferenceservice.serving.kserve.io/iris-production serverside-applied\n")
    said: list[str] = []
    done = KubernetesTarget().deploy(
        tmp_path, make_spec(CANARY), "production", VERSION, [ISVC], said.append, step(0, 2)
    )
    assert done["rollout"] == {
        "rollout_id": ROLLOUT_ID,
        "step": 2,
        "of": 3,
        "weight": 0,
        "stable": "v1.0.0",
    }
    assert said == [f"    production: applied {ISVC} (canary v1.1.0 rolled back to v1.0.0)"]


# ------------------------------------------------------------------ the docs


def _rollout_docs() -> str:
    """The section on rollouts, wherever docs/ keeps it (its own file, or merged)."""
    heading = "## Rollouts on Kubernetes (KServe)"
    for name in ("deployments.md",):
        path = Path(__file__).resolve().parent.parent / "docs" / name
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if heading in text:
            return text[text.index(heading) :]
    raise AssertionError(f"no {heading!r} in docs/")


def test_the_docs_show_the_manifest_mllc_writes_for_their_example() -> None:
    text = _rollout_docs()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    example, manifest = yaml.safe_load(blocks[0]), blocks[1]
    data = yaml.safe_load((Path(__file__).resolve().parent.parent / SOURCE).read_text())
    data["environments"]["production"] = example["environments"]["production"]
    data["metadata"]["labels"] = {}
    del data["monitoring"]
    spec = Lifecycle.model_validate(data)
    stable = replace(VERSION, version="v1.2.0", model_md5=hashlib.md5(b"v1.2.0").hexdigest())
    new = replace(VERSION, version="v1.3.0", model_md5=hashlib.md5(b"v1.3.0").hexdigest())
    docs_step = RolloutStep("canary", stable, new, 10, "iris#production_canary#4", 1, 3)
    assert render(spec, "production", new, SOURCE, step=docs_step)[ISVC] == manifest


def test_gitops_says_a_committed_rollback_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    spec = gitops_spec()
    step_one = render(spec, "production", CANDIDATE, SOURCE, REPO_URL, step(10))
    rollback = step(0, 2, rollout_id="iris#production_canary#8")  # the unassign tag
    _commit(repo, render(spec, "production", VERSION, SOURCE, REPO_URL, rollback), "rollback")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    FakeKubectl(bin_dir).reply(stdout=json.dumps(live(isvc_of(step_one))))
    state = observe_gitops(repo, spec, "production")
    assert state.detail == (
        f"v1.0.0 with canary v1.1.0 rolled back committed in {FOLDER}/, awaiting sync by "
        f"Argo CD: the cluster runs canary v1.1.0 at 10% ({ROLLOUT_ID})"
    )
