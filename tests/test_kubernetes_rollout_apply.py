"""A canary on the kubernetes target through real ``mllc apply`` runs: a real Git
repository in a tmp dir, real DVC, real training on iris, the real CLI.

There is no Kubernetes cluster, no KServe and no Argo CD here. A stand-in ``kubectl``
first on PATH plays the cluster: ``kubectl get`` prints the InferenceService JSON the
test wrote (with the status KServe would report: the Ready condition, the predictor's
revisions and traffic, as tests/test_kubernetes_rollout.py builds it), or NotFound
when the test wrote none; ``kubectl apply`` records the files it was given and prints
what a real one prints. Every call is recorded, so a test can tell that GitOps never
ran ``kubectl apply``. "Argo CD synced the step" is the test writing the committed
manifest, with a status, as what the cluster runs. ``s3://`` is a local folder
(tests/test_gitops.py's ``FAKE_S3`` site hook in the mllc processes): the real
publishing code runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_repo import BIN, applied_repo, copy_repo, edit_spec, env, git, md5_file
from test_gitops import FAKE_S3, KSERVE_SCHEMA, REPO_URL, _no_kubectl_path, validator
from test_kubernetes_rollout import REV1, REV2, live

from mllc import __version__
from mllc.registry import assignments, list_versions
from mllc.targets.kserve_rollout import NOT_OBSERVED

pytestmark = pytest.mark.slow

ENV = "production"
FOLDER = f"deploy/iris/{ENV}"
ISVC = f"{FOLDER}/inferenceservice.yaml"
APP = f"{FOLDER}/application.yaml"
CRON = f"{FOLDER}/cronjob.yaml"
SOURCE = "specs/iris.yaml"
CANARY = {"strategy": "canary", "steps": [10, 50, 100]}
TIMEOUT = 300

FAKE_KUBECTL = """\
#!{python}
# The cluster, as far as mllc can tell: see the module's docstring.
import json, os, sys
import yaml
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
files = [a.split("=", 1)[1] for a in args if a.startswith("--filename=")]
seen = {{}}
for path in files:
    with open(path, encoding="utf-8") as f:
        seen[path] = f.read()
with open(os.path.join(here, "calls.jsonl"), "a", encoding="utf-8") as f:
    f.write(json.dumps({{"argv": args, "files": seen}}) + "\\n")
if "apply" in args:
    for text in seen.values():
        doc = yaml.safe_load(text)
        kind = {{"InferenceService": "inferenceservice.serving.kserve.io",
                 "CronJob": "cronjob.batch"}}.get(doc["kind"], doc["kind"].lower())
        print(f"{{kind}}/{{doc['metadata']['name']}} serverside-applied")
    sys.exit(0)
live = os.path.join(here, "live.json")
if "get" in args and os.path.exists(live):
    with open(live, encoding="utf-8") as f:
        sys.stdout.write(f.read())
    sys.exit(0)
sys.stderr.write('Error from server (NotFound): inferenceservices.serving.kserve.io '
                 '"iris-production" not found\\n')
sys.exit(1)
"""


class Cluster:
    """The stand-in kubectl and the one InferenceService it reports."""

    def __init__(self, bin_dir: Path) -> None:
        bin_dir.mkdir(parents=True, exist_ok=True)
        self.bin_dir = bin_dir
        script = bin_dir / "kubectl"
        script.write_text(FAKE_KUBECTL.format(python=sys.executable), encoding="utf-8")
        script.chmod(0o755)

    def runs(self, obj: dict[str, Any] | None) -> None:
        """What ``kubectl get`` prints from now on (None: NotFound)."""
        path = self.bin_dir / "live.json"
        if obj is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(json.dumps(obj), encoding="utf-8")

    def calls(self) -> list[dict[str, Any]]:
        path = self.bin_dir / "calls.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    def applied(self) -> list[dict[str, str]]:
        """The files of each ``kubectl apply``, by repository path."""
        return [c["files"] for c in self.calls() if "apply" in c["argv"]]


class World:
    """A repository, the cluster beside it and the fake s3 store; the CLI run in it."""

    def __init__(self, repo: Path, work: Path) -> None:
        self.repo = repo
        self.out = ""  # what the last apply printed
        self.cluster = Cluster(work / "kubectl-bin")
        self.site, self.store = work / "site", work / "s3"
        self.site.mkdir(exist_ok=True)
        (self.site / "sitecustomize.py").write_text(FAKE_S3, encoding="utf-8")
        # this interpreter's scripts (DVC runs mllc stages), the fake kubectl, git: no other
        self.path = os.pathsep.join([str(BIN), str(self.cluster.bin_dir), _no_kubectl_path(work)])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        extra = {"PATH": self.path, "PYTHONPATH": str(self.site), "FAKE_S3_DIR": str(self.store)}
        proc = subprocess.run(
            [sys.executable, "-m", "mllc", *args],
            cwd=self.repo,
            env={**env(), **extra},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"mllc {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")  # fmt: skip
        return proc

    def apply(self) -> str:
        self.out = self.cli("apply", "--auto-approve").stdout
        return self.out

    def plan(self) -> list[dict[str, Any]]:
        """The plan's changes, whole, as ``mllc plan --json`` prints them."""
        changes: list[dict[str, Any]] = json.loads(self.cli("plan", "--json").stdout)["changes"]
        return changes

    def head(self, path: str = ISVC) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load(git("show", f"HEAD:{path}", cwd=self.repo))
        return doc

    def synced(self, **status: Any) -> dict[str, Any]:
        """The cluster after Argo CD synced HEAD's InferenceService (KServe's status)."""
        obj = live(self.head(), **status)
        self.cluster.runs(obj)
        return obj


def production(sync: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["environments"] = {
            ENV: {
                "target": "kubernetes",
                "model": "latest",
                "kubernetes": {
                    "namespace": "ml",
                    "replicas": 2,
                    "storage_uri": "s3://models",
                    "sync": sync,
                },
                "rollout": CANARY,
            }
        }

    return change


def new_model(data: dict[str, Any]) -> None:
    """One candidate left, with another C: a model with another hash, so v1.1.0."""
    data["models"] = {
        "logreg": {
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {"C": 0.5, "max_iter": 1000},
        }
    }


def make_world(factory: pytest.TempPathFactory, sync: str) -> World:
    work = factory.mktemp(f"k8s-{sync}")
    repo = copy_repo(applied_repo(factory).repo, work / "repo")
    git("remote", "add", "origin", REPO_URL, cwd=repo)
    edit_spec(repo, production(sync), f"production on kubernetes ({sync}), canary rollouts")
    return World(repo, work)


# ------------------------------------------------------------------ expectations

BASE_LABELS = {
    "app.kubernetes.io/component": "predictor",
    "app.kubernetes.io/managed-by": "mllc",
    "app.kubernetes.io/name": "iris",
    "mllc.dev/environment": ENV,
    "mllc.dev/lifecycle": "iris",
    "team": "botany",
}


def isvc(
    serves: str, labels: dict[str, str], annotations: dict[str, str], weight: int | None
) -> dict[str, Any]:
    """The InferenceService mllc should commit, written out in full."""
    predictor: dict[str, Any] = {"minReplicas": 2, "maxReplicas": 2}
    if weight is not None:
        predictor["canaryTrafficPercent"] = weight
    amounts = {"cpu": "500m", "memory": "512Mi"}
    predictor["model"] = {
        "modelFormat": {"name": "sklearn"},
        "protocolVersion": "v2",
        "storageUri": f"s3://models/iris/{serves}",
        "resources": {"requests": amounts, "limits": amounts},
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "iris-production",
            "namespace": "ml",
            "labels": {**BASE_LABELS, **labels},
            "annotations": {**annotations, "mllc.dev/spec-source": SOURCE},
        },
        "spec": {"predictor": predictor},
    }


def plain(version: str, md5: str) -> dict[str, Any]:
    return isvc(version, {"mllc.dev/version": version}, {"mllc.dev/model-md5": md5}, None)


def canary_step(
    md5: dict[str, str], tag: str, step: int, weight: int | None, serves: str = "v1.1.0"
) -> dict[str, Any]:
    """A step of the canary of v1.1.0 beside v1.0.0 (``md5``: version -> model hash)."""
    labels = {
        "mllc.dev/candidate": "v1.1.0",
        "mllc.dev/rollout": "canary",
        "mllc.dev/version": "v1.0.0",
    }
    annotations = {
        "mllc.dev/candidate-model-md5": md5["v1.1.0"],
        "mllc.dev/model-md5": md5["v1.0.0"],
        "mllc.dev/rollout-id": tag,
        "mllc.dev/rollout-step": f"{step}/3",
    }
    return isvc(serves, labels, annotations, weight)


def deployment(
    action: str,
    reasons: list[str],
    before: str | None,
    after: str | None,
    rollout: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The plan's change of the production deployment, as ``mllc plan --json`` prints it."""
    change: dict[str, Any] = {
        "address": f"iris/deployment/{ENV}",
        "lifecycle": "iris",
        "kind": "deployment",
        "action": action,
        "category": "redeploy",
        "reasons": reasons,
        "known_after_apply": [],
        "before": before,
        "after": after,
        "blocking": False,
    }
    if rollout is not None:
        change["rollout"] = rollout
    return change


def decided(
    decision: str, step: int, weights: tuple[int, int], tag: str, reason: str = ""
) -> dict[str, Any]:
    return {
        "decision": decision,
        "strategy": "canary",
        "stable": "v1.0.0",
        "candidate": "v1.1.0",
        "step": step,
        "of": 3,
        "weight_from": weights[0],
        "weight": weights[1],
        "rollout_id": tag,
        "reason": reason,
        "analysis": None,
    }


def payload(repo: Path, tag: str) -> dict[str, Any]:
    """The JSON document of a registry tag's message (after GTO's first line)."""
    message = git("for-each-ref", "--format=%(contents)", f"refs/tags/{tag}", cwd=repo)
    data: dict[str, Any] = json.loads(message.partition("\n\n")[2])
    return data


def rollout_record(event: str, step: int, weight: int, **more: Any) -> dict[str, Any]:
    record = {"event": event, "strategy": "canary", "step": step, "of": 3, "weight": weight}
    return {"mllc_version": __version__, "version": "v1.1.0",
            "rollout": {**record, "stable": "v1.0.0", **more}}  # fmt: skip


def registry(repo: Path) -> list[tuple[str, str, str | None, bool]]:
    """(tag, stage, version, unassign) of production's stages, by counter."""
    history = assignments(repo, "iris", rollouts=True)
    found = [a for stage in (ENV, f"{ENV}_canary") for a in history.get(stage, [])]
    return [
        (a.tag, a.env, a.version, a.unassign) for a in sorted(found, key=lambda a: a.counter or 0)
    ]


def md5s(repo: Path) -> dict[str, str]:
    return {v.version: v.model_md5 for v in list_versions(repo, "iris")}


# ------------------------------------------------------------------ GitOps

# The step's tags, in the order apply writes them (GTO's counter is one per artifact:
# iris#production#1 is v1.0.0's assignment by the first apply).
STEP1, STEP2, STEP3 = (f"iris#{ENV}_canary#{n}" for n in (2, 3, 4))
WAITS = "production: canary v1.1.0 at {w}%, step {k} of 3: "
READY = "waiting for the candidate to be ready"


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> World:
    """GitOps production on the kubernetes target with a canary rollout: v1.0.0 went
    straight in (the first version an environment runs) and Argo CD synced it; then a
    spec edit trained and registered v1.1.0, and that apply committed the canary's
    first step. Read-only: tests copy it (:func:`copy_world`)."""
    world = make_world(tmp_path_factory, "gitops")
    out = world.apply()
    assert "canary" not in out, out
    assert world.head() == plain("v1.0.0", md5s(world.repo)["v1.0.0"])
    world.synced()  # Argo CD synced v1.0.0: the cluster runs it, Ready
    assert world.plan() == []
    edit_spec(world.repo, new_model, "logreg: C 0.5, no forest")
    world.apply()
    return world


def copy_world(world: World, tmp_path: Path) -> World:
    repo = copy_repo(world.repo, tmp_path / "repo")
    copy = World(repo, tmp_path)
    copy.cluster.runs(json.loads((world.cluster.bin_dir / "live.json").read_text()))
    return copy


def test_gitops_canary_walks_10_50_100_one_commit_per_step(started: World, tmp_path: Path) -> None:
    world = copy_world(started, tmp_path)
    repo, md5 = world.repo, md5s(world.repo)
    assert sorted(md5) == ["v1.0.0", "v1.1.0"]
    kserve = validator(KSERVE_SCHEMA)
    said = started.out
    assert "registered iris@v1.1.0" in said
    assert "production: canary v1.1.0 at 10%, step 1 of 3 (v1.0.0 answers the rest)" in said
    # the candidate's model is published where the step's storageUri points, before the commit
    published = world.store / "models/iris/v1.1.0/model.joblib"
    assert md5_file(started.store / "models/iris/v1.1.0/model.joblib") == md5["v1.1.0"]
    assert not published.exists()  # (this copy's store: nothing published yet)

    # step 1 is a commit: the candidate's model at 10%, the stable still the label
    step1 = world.head()
    assert step1 == canary_step(md5, STEP1, 1, 10)
    assert [e.message for e in kserve.iter_errors(step1)] == []
    assert registry(repo) == [
        (f"iris#{ENV}#1", ENV, "v1.0.0", False),
        (STEP1, f"{ENV}_canary", "v1.1.0", False),
    ]
    assert payload(repo, STEP1) == rollout_record("step", 1, 10)
    assert git("log", "-1", "--format=%s", cwd=repo) == (
        f"mllc apply: deploy iris v1.1.0 to production at 10% beside v1.0.0 (canary step 1/3, "
        f"{STEP1})"
    )
    assert git("status", "--porcelain", cwd=repo) == ""

    # Argo CD has not synced the step: the plan waits, and says for what; apply does nothing
    why = (
        f"{READY} (step 1/3 of {STEP1}; committed, awaiting sync by Argo CD (the cluster "
        f"runs no rollout step); {NOT_OBSERVED})"
    )
    waiting = decided("wait", 1, (10, 10), STEP1, why)
    assert world.plan() == [
        deployment("no-op", [WAITS.format(w=10, k=1) + why], None, None, waiting)
    ]
    head = git("rev-parse", "HEAD", cwd=repo)
    world.apply()
    assert (git("rev-parse", "HEAD", cwd=repo), len(registry(repo))) == (head, 2)

    # synced, but the candidate's revision is still starting: still waiting
    world.synced(ready="Unknown", ready_rev=REV1, traffic=[(REV1, 10, True), (REV1, 90, False)])
    why = (
        f"{READY} (step 1/3 of {STEP1}; revision {REV2} is not Ready yet: KServe routes it "
        f"no traffic until it is; the route gives the candidate 0%, not 10%; {NOT_OBSERVED})"
    )
    waiting = decided("wait", 1, (10, 10), STEP1, why)
    assert world.plan() == [
        deployment("no-op", [WAITS.format(w=10, k=1) + why], None, None, waiting)
    ]

    # Ready: the next apply commits 50%, then (once synced and Ready) 100%
    for w_from, w_to, k, tag, nxt in ((10, 50, 1, STEP1, STEP2), (50, 100, 2, STEP2, STEP3)):
        world.synced()
        moves = (
            f"production: canary v1.1.0 at {w_from}% → {w_to}% (analysis not observable: "
            f"step {k}/3 of {tag}; revision {REV2} is Ready; {NOT_OBSERVED})"
        )
        advance = decided("advance", k + 1, (w_from, w_to), tag)
        assert world.plan() == [deployment("update", [moves], "v1.0.0", "v1.1.0", advance)]
        world.apply()
        doc = world.head()
        assert doc == canary_step(md5, nxt, k + 1, w_to if w_to < 100 else None)
        assert [e.message for e in kserve.iter_errors(doc)] == []
        assert payload(repo, nxt) == rollout_record("step", k + 1, w_to)
        assert git("log", "-1", "--format=%s", cwd=repo) == (
            f"mllc apply: deploy iris v1.1.0 to production at {w_to}% beside v1.0.0 (canary "
            f"step {k + 1}/3, {nxt})"
        )
    assert "canaryTrafficPercent" not in world.head()["spec"]["predictor"]  # 100: no field

    # the last step synced and Ready: the candidate takes over, and the manifest is plain
    world.synced()
    takes_over = (
        "production: canary v1.1.0 at 100% → takes over from v1.0.0 (analysis not "
        f"observable: step 3/3 of {STEP3}; revision {REV2} is Ready; {NOT_OBSERVED})"
    )
    complete = decided("complete", 3, (100, 100), STEP3)
    assert world.plan() == [deployment("update", [takes_over], "v1.0.0", "v1.1.0", complete)]
    world.apply()
    assert world.head() == plain("v1.1.0", md5["v1.1.0"])
    assert registry(repo) == [
        (f"iris#{ENV}#1", ENV, "v1.0.0", False),
        (STEP1, f"{ENV}_canary", "v1.1.0", False),
        (STEP2, f"{ENV}_canary", "v1.1.0", False),
        (STEP3, f"{ENV}_canary", "v1.1.0", False),
        (f"iris#{ENV}#5", ENV, "v1.1.0", False),  # the environment's own assignment
        (f"iris#{ENV}_canary!#6", f"{ENV}_canary", "v1.1.0", True),  # the rollout's end
    ]
    done = rollout_record("complete", 3, 100, rollout_id=STEP3)
    assert payload(repo, f"iris#{ENV}#5") == done
    assert payload(repo, f"iris#{ENV}_canary!#6") == done
    world.synced()
    assert world.plan() == []
    assert git("status", "--porcelain", cwd=repo) == ""
    # GitOps: kubectl only ever read the cluster
    assert {c["argv"][0] for c in world.cluster.calls()} == {"get"}
    assert md5_file(published) == md5["v1.1.0"]


FAILED = f"Revision {REV2} failed with message: model not found at s3://models/iris/v1.1.0"
REV3 = "iris-production-predictor-00003"


def test_gitops_a_failed_candidate_is_rolled_back_pinned_then_plain(
    started: World, tmp_path: Path
) -> None:
    world = copy_world(started, tmp_path)
    repo, md5 = world.repo, md5s(world.repo)
    kserve = validator(KSERVE_SCHEMA)
    # Argo CD synced step 1; KServe could not start the candidate's revision
    world.synced(ready_rev=REV1, ready="False", message=FAILED,
                 traffic=[(REV1, 10, True), (REV1, 90, False)])  # fmt: skip
    reason = (
        f"the candidate is not ready: step 1/3 of {STEP1}; revision {REV2} failed: {FAILED}; "
        f"the route gives the candidate 0%, not 10%; {NOT_OBSERVED}"
    )
    text = f"production: canary v1.1.0 at 10% → rolled back to v1.0.0: {reason}"
    text += " (analysis not observable)"
    rollback = decided("rollback", 1, (10, 0), STEP1, reason)
    assert world.plan() == [deployment("update", [text], None, "v1.0.0", rollback)]
    world.apply()

    # the rollback is a commit: the stable's model, the candidate's share 0 (KServe pins
    # every request to the stable revision it kept), named by the unassign tag
    back = f"iris#{ENV}_canary!#3"
    pin = world.head()
    assert pin == canary_step(md5, back, 1, 0, serves="v1.0.0")
    assert [e.message for e in kserve.iter_errors(pin)] == []
    assert git("log", "-1", "--format=%s", cwd=repo) == (
        f"mllc apply: deploy iris v1.0.0 to production (canary v1.1.0 rolled back, {back})"
    )
    tags = [
        (f"iris#{ENV}#1", ENV, "v1.0.0", False),
        (STEP1, f"{ENV}_canary", "v1.1.0", False),
        (back, f"{ENV}_canary", "v1.1.0", True),
    ]
    assert registry(repo) == tags
    assert payload(repo, back) == rollout_record("rollback", 1, 0, reason=reason, rollout_id=STEP1)

    # until the cluster runs the pin, Ready, the stable's plain manifest waits
    def pinned(seen: str) -> list[dict[str, Any]]:
        why = f"waiting for the pin to be ready before v1.0.0 alone ({seen})"
        text = f"production: canary v1.1.0 rolled back to v1.0.0: {why}"
        wait = decided("wait", 1, (0, 0), back, why)
        return [deployment("no-op", [text], None, None, wait)]

    head = f"step 1/3 of {back}: rolled back, all traffic on the stable revision"
    assert world.plan() == pinned(
        f"{head}; committed, awaiting sync by Argo CD (the cluster runs canary v1.1.0 at 10% "
        f"({STEP1})); {NOT_OBSERVED}"
    )
    world.apply()
    assert world.head() == pin and git("status", "--porcelain", cwd=repo) == ""
    world.synced(created=REV3, ready_rev=REV1, ready="Unknown")  # the stable's new revision
    assert world.plan() == pinned(
        f"{head}; revision {REV3} is not Ready yet: KServe routes it no traffic until it is; "
        f"{NOT_OBSERVED}"
    )

    # pinned and Ready: v1.1.0 is not tried again; the stable's plain manifest
    world.synced(created=REV3, ready_rev=REV3)
    assert world.plan() == [
        {
            "address": f"iris/file/{ISVC}",
            "lifecycle": "iris",
            "kind": "file",
            "action": "update",
            "category": "redeploy",
            "reasons": [  # what mllc wrote for the pin, not a hand edit
                "metadata.labels.mllc.dev/candidate removed (was v1.1.0)",
                "metadata.labels.mllc.dev/rollout removed (was canary)",
                f"metadata.annotations.mllc.dev/candidate-model-md5 removed (was {md5['v1.1.0']})",
                f"metadata.annotations.mllc.dev/rollout-id removed (was {back})",
                "metadata.annotations.mllc.dev/rollout-step removed (was 1/3)",
                "spec.predictor.canaryTrafficPercent removed (was 0)",
            ],
            "known_after_apply": [],
            "before": None,
            "after": None,
            "blocking": False,
        },
        deployment(
            "update",
            [
                f"canary v1.1.0 rolled back ({back}) and v1.0.0 pinned, ready: now v1.0.0 alone",
                f"apply commits {FOLDER}/ and runs no kubectl: Argo CD syncs it",
            ],
            "v1.0.0",
            "v1.0.0",
        ),
    ]
    world.apply()
    assert world.head() == plain("v1.0.0", md5["v1.0.0"])
    assert (
        git("log", "-1", "--format=%s", cwd=repo) == "mllc apply: deploy iris v1.0.0 to production"
    )
    world.synced()
    assert world.plan() == []
    assert registry(repo) == tags  # no step of v1.1.0 again
    assert git("status", "--porcelain", cwd=repo) == ""


# ------------------------------------------------------------------ kubectl


def test_kubectl_mode_applies_each_steps_manifest(tmp_path_factory: pytest.TempPathFactory) -> None:
    """sync: kubectl: apply passes the step's committed manifest to ``kubectl apply``."""
    world = make_world(tmp_path_factory, "kubectl")
    repo = world.repo
    world.apply()  # v1.0.0 straight in
    md5 = md5s(repo)
    assert world.cluster.applied() == [
        {CRON: (repo / CRON).read_text(), ISVC: (repo / ISVC).read_text()}
    ]
    assert yaml.safe_load((repo / ISVC).read_text()) == plain("v1.0.0", md5["v1.0.0"])
    world.synced()
    edit_spec(repo, new_model, "logreg: C 0.5, no forest")
    world.apply()
    md5 = md5s(repo)
    step1 = canary_step(md5, STEP1, 1, 10)
    assert world.head() == step1
    *_, applied = world.cluster.applied()
    assert sorted(applied) == [CRON, ISVC]  # (paths relative to the repository)
    assert yaml.safe_load(applied[ISVC]) == step1  # what kubectl was given
    assert applied[ISVC] == git("show", f"HEAD:{ISVC}", cwd=repo) + "\n"  # and committed
    *_, last = [c["argv"] for c in world.cluster.calls() if "apply" in c["argv"]]
    assert last == [
        "apply", "--server-side", "--field-manager=mllc", "--force-conflicts",
        "--request-timeout=60s", f"--filename={CRON}", f"--filename={ISVC}",
    ]  # fmt: skip
    assert registry(repo)[-1] == (STEP1, f"{ENV}_canary", "v1.1.0", False)

    # kubectl mode observes the live object: Ready, the next apply applies 50%
    world.cluster.runs(live(step1))
    moves = (
        f"production: canary v1.1.0 at 10% → 50% (analysis not observable: step 1/3 of "
        f"{STEP1}; revision {REV2} is Ready; {NOT_OBSERVED})"
    )
    advance = decided("advance", 2, (10, 50), STEP1)
    assert world.plan() == [deployment("update", [moves], "v1.0.0", "v1.1.0", advance)]
    world.apply()
    *_, applied = world.cluster.applied()
    assert yaml.safe_load(applied[ISVC]) == canary_step(md5, STEP2, 2, 50)


# ------------------------------------------------------------------ the pin, as a rule
