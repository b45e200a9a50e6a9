"""GitOps environments (``kubernetes.sync: gitops``): apply commits the manifests and an
Argo CD Application and never runs kubectl; plan and status read what HEAD commits and,
only when a cluster answers, what it runs.

There is no Kubernetes cluster and no Argo CD here. "No cluster" is real: kubectl is
left off PATH (this machine has one in /usr/bin, so PATH is rebuilt to hold only git
and the interpreter's folder). "A cluster answers" is the stand-in ``kubectl`` of
tests/test_kubernetes.py: a script that prints a given InferenceService as JSON and
records its arguments, so a test can also tell that ``kubectl apply`` never ran. The
Application is checked against Argo CD's strict CRD schema (vendored), the
InferenceService against KServe's. Publishing the model goes to fsspec's in-memory file
system standing in for ``s3://`` (s3fs is not installed; the real copy code runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_repo import (
    applied_repo,
    copy_repo,
    edit_spec,
    git,
    lock_id_from,
    lock_model_md5,
    mllc,
    mllc_popen,
)
from test_kubernetes import READY, VERSION, FakeKubectl, make_spec

from mllc import api
from mllc.compile import lifecycle_document, spec_sha256
from mllc.errors import SpecError
from mllc.plan.model import Change, Plan, summarize
from mllc.plan.render import human
from mllc.spec.load import load_text_as_spec
from mllc.spec.models import Lifecycle
from mllc.targets import kubernetes
from mllc.targets.gitops import drift, origin_url, repo_url
from mllc.targets.kubernetes import observe_gitops, render

ROOT = Path(__file__).resolve().parent.parent
ARGOCD_SCHEMA = ROOT / "schemas" / "vendor" / "argocd-application-v1alpha1.strict.json"
KSERVE_SCHEMA = ROOT / "schemas" / "vendor" / "kserve-inferenceservice-v1beta1.strict.json"
SOURCE = "specs/iris.yaml"
FOLDER = "deploy/iris/production"
APP = f"{FOLDER}/application.yaml"
ISVC = f"{FOLDER}/inferenceservice.yaml"
CRON = f"{FOLDER}/cronjob.yaml"
REPO_URL = "https://git.example.com/team/models.git"
GITOPS: dict[str, Any] = {"kubernetes": {"sync": "gitops"}}


def gitops_spec(argocd: dict[str, Any] | None = None, **k8s: Any) -> Lifecycle:
    settings: dict[str, Any] = {"sync": "gitops", **k8s}
    if argocd is not None:
        settings["argocd"] = argocd
    return make_spec({"kubernetes": settings})


def validator(path: Path) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


# ------------------------------------------------------------------ the spec


def test_a_spec_without_sync_means_what_it_meant_before() -> None:
    """No ``sync`` (or ``sync: kubectl``): the same dump, hash and lifecycle record as
    before the field existed, so no plan of an existing repository changes."""
    plain = make_spec()
    explicit = make_spec({"kubernetes": {"sync": "kubectl"}})
    dumped = plain.model_dump(mode="json")["environments"]["production"]["kubernetes"]
    assert "sync" not in dumped and "argocd" not in dumped
    assert spec_sha256(plain) == spec_sha256(explicit)
    assert lifecycle_document(plain) == lifecycle_document(explicit)
    assert spec_sha256(gitops_spec()) != spec_sha256(plain)
    assert gitops_spec().model_dump(mode="json")["environments"]["production"]["kubernetes"][
        "sync"
    ] == ("gitops")


@pytest.mark.parametrize(
    ("settings", "path", "message"),
    [
        (
            {"argocd": {"project": "ml"}},
            "environments.production.kubernetes",
            "an 'argocd' section applies to sync: gitops only",
        ),
        (
            {"sync": "gitops", "argocd": {"repo_url": "https://bot:hunter2@git.example.com/a/b"}},
            "environments.production.kubernetes.argocd.repo_url",
            "is not a Git URL Argo CD can clone without credentials",
        ),
        (
            {"sync": "gitops", "argocd": {"revision": "main..evil"}},
            "environments.production.kubernetes.argocd.revision",
            "is not a Git branch, tag or commit",
        ),
        (
            {"sync": "argo"},
            "environments.production.kubernetes.sync",
            "",
        ),
    ],
)
def test_spec_errors_name_file_line_and_field(
    settings: dict[str, Any], path: str, message: str
) -> None:
    data = make_spec().model_dump(mode="json", exclude_none=True)
    data["environments"]["production"]["kubernetes"].update(settings)
    result = load_text_as_spec(SOURCE, yaml.safe_dump(data, sort_keys=False))
    (diagnostic,) = result.diagnostics
    assert diagnostic.path == path
    assert diagnostic.line > 0 and message in diagnostic.message
    assert diagnostic.render().startswith(f"{SOURCE}:{diagnostic.line}:{diagnostic.column}: ")
    assert "hunter2" not in diagnostic.render()  # the credentials are not echoed


def test_accepted_repository_urls() -> None:
    for url in (REPO_URL, "git@git.example.com:team/models.git", "ssh://git@git.example.com/x/y"):
        assert gitops_spec({"repo_url": url}).environments["production"].kubernetes
    for url in ("http://git.example.com/x", "file:///srv/repo", "https://tok@git.example.com/x"):
        with pytest.raises(ValueError, match="is not a Git URL"):
            gitops_spec({"repo_url": url})


# ------------------------------------------------------------------ rendering

EXPECTED_APPLICATION = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {
        "name": "iris-production",
        "namespace": "argocd",
        "labels": {
            "app.kubernetes.io/component": "application",
            "app.kubernetes.io/managed-by": "mllc",
            "app.kubernetes.io/name": "iris",
            "mllc.dev/environment": "production",
            "mllc.dev/lifecycle": "iris",
            "team": "botany",
        },
        "annotations": {"mllc.dev/spec-source": SOURCE},
        "finalizers": ["resources-finalizer.argocd.argoproj.io"],
    },
    "spec": {
        "project": "default",
        "source": {
            "repoURL": REPO_URL,
            "targetRevision": "HEAD",
            "path": FOLDER,
            "directory": {"exclude": "application.yaml"},
        },
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "ml"},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
    },
}


def test_gitops_renders_an_application_beside_the_same_manifests() -> None:
    files = render(gitops_spec(), "production", VERSION, SOURCE, REPO_URL)
    assert sorted(files) == [APP, CRON, ISVC]
    kubectl_mode = render(make_spec(), "production", VERSION, SOURCE)
    assert {p: files[p] for p in kubectl_mode} == kubectl_mode  # the very same manifests
    assert yaml.safe_load(files[APP]) == EXPECTED_APPLICATION
    assert files[APP].startswith("# generated by mllc from specs/iris.yaml")


def test_the_application_follows_the_argocd_section() -> None:
    spec = gitops_spec(
        {
            "repo_url": "git@git.example.com:team/models.git",
            "revision": "release/1.x",
            "project": "ml-models",
            "namespace": "gitops",
        }
    )
    app = yaml.safe_load(render(spec, "production", VERSION, SOURCE, "ignored")[APP])
    assert app["metadata"]["namespace"] == "gitops"
    assert app["spec"]["project"] == "ml-models"
    # render takes the URL its caller resolved: the target passes the spec's first
    assert app["spec"]["source"]["repoURL"] == "ignored"
    assert app["spec"]["source"]["targetRevision"] == "release/1.x"


@pytest.mark.parametrize(
    "argocd",
    [None, {"repo_url": "git@git.example.com:a/b.git", "project": "p", "namespace": "n"}],
)
def test_generated_manifests_validate_against_the_strict_schemas(
    argocd: dict[str, Any] | None,
) -> None:
    files = render(gitops_spec(argocd), "production", VERSION, SOURCE, REPO_URL)
    app, isvc = yaml.safe_load(files[APP]), yaml.safe_load(files[ISVC])
    argo = validator(ARGOCD_SCHEMA)
    assert [e.message for e in argo.iter_errors(app)] == []
    assert [e.message for e in validator(KSERVE_SCHEMA).iter_errors(isvc)] == []
    # strict indeed: a field Argo CD does not know is an error
    app["spec"]["syncPolicy"]["automated"]["pruneAll"] = True
    assert [e.message for e in argo.iter_errors(app)] == [
        "Additional properties are not allowed ('pruneAll' was unexpected)"
    ]


def test_without_a_repository_url_render_names_the_field() -> None:
    with pytest.raises(SpecError) as caught:
        render(gitops_spec(), "production", VERSION, SOURCE, None)
    assert caught.value.render() == [
        f"{SOURCE}: environments.production.kubernetes.argocd.repo_url: sync: gitops needs "
        "the URL Argo CD clones this repository from: set argocd.repo_url, or add a Git "
        "remote named origin"
    ]
    assert render(gitops_spec(), "production", None, SOURCE, None) == {}  # nothing to deploy


def test_the_argocd_schema_is_vendored_with_its_source() -> None:
    comment = json.loads(ARGOCD_SCHEMA.read_text(encoding="utf-8"))["$comment"]
    readme = (ARGOCD_SCHEMA.parent / "README.md").read_text(encoding="utf-8")
    commit = comment.split("at commit ")[1].split()[0]
    assert ARGOCD_SCHEMA.name in readme and commit in readme
    assert "argoproj/argo-cd" in readme and "Apache-2.0 (Argo CD)" in readme


# ------------------------------------------------------------------ the Git side


def test_the_repository_url_is_the_specs_else_origins_without_credentials(
    tmp_path: Path,
) -> None:
    git("init", "-q", cwd=tmp_path)
    assert origin_url(tmp_path) is None
    assert repo_url(tmp_path, gitops_spec(), "production") is None
    git(
        "remote",
        "add",
        "origin",
        "https://x-access-token:ghs_0123456789@" + REPO_URL[8:],
        cwd=tmp_path,
    )
    assert origin_url(tmp_path) == REPO_URL
    assert repo_url(tmp_path, gitops_spec(), "production") == REPO_URL
    spec = gitops_spec({"repo_url": "git@git.example.com:team/models.git"})
    assert repo_url(tmp_path, spec, "production") == "git@git.example.com:team/models.git"
    files = kubernetes.KubernetesTarget().render(tmp_path, spec, "production", VERSION, SOURCE)
    assert "ghs_0123456789" not in "".join(files.values())


def test_drift_names_the_fields_git_sets_that_the_cluster_differs_in() -> None:
    committed = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "metadata": {"name": "iris-production", "labels": {"mllc.dev/version": "v1.0.0"}},
        "spec": {"predictor": {"minReplicas": 2, "model": {"storageUri": "s3://m/iris/v1"}}},
    }
    live = json.loads(json.dumps(committed))
    live["apiVersion"] = "serving.kserve.io/v1beta2"  # how it was found: not drift
    live["metadata"]["labels"]["argocd.argoproj.io/instance"] = "iris-production"
    live["metadata"]["resourceVersion"] = "42"  # only the cluster has these: not drift
    live["status"] = {"url": "http://x"}
    assert drift(committed, live) == []
    live["spec"]["predictor"]["minReplicas"] = 5
    del live["spec"]["predictor"]["model"]["storageUri"]
    assert drift(committed, live) == [
        "spec.predictor.minReplicas: 2 in Git, 5 in the cluster",
        "spec.predictor.model.storageUri: s3://m/iris/v1 in Git, missing in the cluster",
    ]


# ------------------------------------------------------------------ observing


def _no_kubectl_path(tmp_path: Path) -> str:
    """A PATH with git and the interpreter's folder, and certainly no kubectl."""
    bin_dir = tmp_path / "no-kubectl-bin"
    bin_dir.mkdir(exist_ok=True)
    git_exe = shutil.which("git")
    assert git_exe is not None
    if not (bin_dir / "git").exists():
        (bin_dir / "git").symlink_to(git_exe)
    path = f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}"
    assert shutil.which("kubectl", path=path) is None
    return path


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    """A repository whose HEAD commits the production manifests of v1.0.0."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    for path, text in render(gitops_spec(), "production", VERSION, SOURCE, REPO_URL).items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text, encoding="utf-8")
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "manifests", cwd=repo)
    return repo


def live_service(repo: Path, **predictor: Any) -> dict[str, Any]:
    """What a cluster that synced HEAD's InferenceService would print (with its status)."""
    obj: dict[str, Any] = yaml.safe_load((repo / ISVC).read_text(encoding="utf-8"))
    obj["metadata"]["labels"]["argocd.argoproj.io/instance"] = "iris-production"
    obj["spec"]["predictor"].update(predictor)
    obj["status"] = READY["status"]
    return obj


def test_observe_without_a_cluster_says_committed_awaiting_sync(
    committed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", _no_kubectl_path(tmp_path))
    state = observe_gitops(committed, gitops_spec(), "production")
    assert (state.version, state.healthy, state.reachable) == (None, False, False)
    assert (state.gitops, state.committed) == (True, "v1.0.0")
    assert state.detail == (
        f"v1.0.0 committed in {FOLDER}/, awaiting sync by Argo CD (not observed: no cluster "
        "reachable: kubectl not found)"
    )
    assert [p for p, _ in state.manifests] == [APP, CRON, ISVC]


def test_observe_a_cluster_synced_not_yet_synced_or_drifted(
    committed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    kubectl = FakeKubectl(bin_dir)
    spec = gitops_spec()

    kubectl.reply(stderr='Error from server (NotFound): "iris-production" not found\n', rc=1)
    state = observe_gitops(committed, spec, "production")
    assert (state.version, state.healthy, state.reachable) == (None, False, True)
    assert state.detail.endswith("awaiting sync by Argo CD (the cluster: not deployed)")

    kubectl.reply(stdout=json.dumps(live_service(committed)))
    state = observe_gitops(committed, spec, "production")
    assert (state.version, state.healthy, state.drift) == ("v1.0.0", True, ())
    assert state.detail == (
        f"v1.0.0 committed in {FOLDER}/, synced: ready at http://iris-production.ml.example.com"
    )

    kubectl.reply(stdout=json.dumps(live_service(committed, minReplicas=5)))
    state = observe_gitops(committed, spec, "production")
    assert (state.version, state.healthy) == ("v1.0.0", False)
    assert state.drift == ("spec.predictor.minReplicas: 2 in Git, 5 in the cluster",)
    assert "the cluster differs from Git (drift): spec.predictor.minReplicas" in state.detail
    assert all(argv[argv.index("--context=prod-cluster") + 1] == "get" for argv in kubectl.argv())


# ------------------------------------------------------------------ plan, apply, status


@pytest.fixture
def gitops_repo(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The applied reference repository (v1.0.0 registered), an origin remote with a token
    in its URL, production added as a GitOps environment pinned to v1.0.0, no kubectl
    on PATH, and s3:// served from memory."""
    fsspec = pytest.importorskip("fsspec")
    repo = copy_repo(applied_repo(tmp_path_factory).repo, tmp_path / "repo")
    token_url = "https://x-access-token:ghs_0123456789@" + REPO_URL[len("https://") :]
    git("remote", "add", "origin", token_url, cwd=repo)

    def add(data: dict[str, Any]) -> None:
        data["environments"] = {
            "production": {
                "target": "kubernetes",
                "model": "v1.0.0",
                "kubernetes": {
                    "namespace": "ml",
                    "replicas": 2,
                    "storage_uri": "s3://models",
                    "sync": "gitops",
                },
            }
        }

    edit_spec(repo, add, "production runs on Argo CD")
    monkeypatch.setenv("PATH", _no_kubectl_path(tmp_path))
    memory = fsspec.filesystem("memory")
    monkeypatch.setattr(kubernetes, "_filesystem", lambda url: memory)
    monkeypatch.chdir(repo)
    try:
        yield repo
    finally:
        if memory.exists("s3://models"):
            memory.rm("s3://models", recursive=True)


def changes(repo: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    plan = api.plan(["specs"], str(repo)).plan
    return [(c.address, c.action, c.reasons) for c in plan.changes]


AWAITING = (
    f"v1.0.0 committed in {FOLDER}/, awaiting sync by Argo CD (not observed: no cluster "
    "reachable: kubectl not found)"
)


def test_apply_commits_the_manifests_and_application_without_any_cluster(
    gitops_repo: Path,
) -> None:
    repo = gitops_repo
    planned = api.plan(["specs"], str(repo))
    assert [(c.address, c.action, c.reasons) for c in planned.plan.changes] == [
        (f"iris/file/{APP}", "create", ("generated from specs/iris.yaml",)),
        (f"iris/file/{CRON}", "create", ("generated from specs/iris.yaml",)),
        (f"iris/file/{ISVC}", "create", ("generated from specs/iris.yaml",)),
        (
            "iris/deployment/production",
            "create",
            (
                "production: nothing committed → v1.0.0 (pinned to v1.0.0)",
                f"apply commits {FOLDER}/ and runs no kubectl: Argo CD syncs it",
            ),
        ),
        (
            "(repository)/file/.github/workflows/mllc.yml",
            "update",
            ("the specs changed what it runs",),
        ),
    ]
    said: list[str] = []
    api.apply(planned, str(repo), said.append)
    assert f"    production: committed {APP}, {CRON}, {ISVC}: Argo CD syncs them" in said
    assert (
        git("log", "-1", "--format=%s", cwd=repo) == "mllc apply: deploy iris v1.0.0 to production"
    )
    assert git("status", "--porcelain", cwd=repo) == ""
    app = yaml.safe_load(git("show", f"HEAD:{APP}", cwd=repo))
    assert app["spec"]["source"]["repoURL"] == REPO_URL  # origin's, without its token
    assert "ghs_0123456789" not in git("log", "-p", "--all", cwd=repo)  # nowhere in history
    assert [e.message for e in validator(ARGOCD_SCHEMA).iter_errors(app)] == []
    isvc = yaml.safe_load(git("show", f"HEAD:{ISVC}", cwd=repo))
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/iris/v1.0.0"
    memory = kubernetes._filesystem("s3://models")
    published = memory.cat_file("s3://models/iris/v1.0.0/model.joblib")
    assert hashlib.md5(published).hexdigest() == lock_model_md5(repo)  # the registered model
    # the assignment is recorded as for any deployment: Git now says production runs it
    assert "iris#production#1" in git("tag", "--list", "iris#*", cwd=repo).split()

    # nothing left for apply; the plan says what it cannot know, honestly
    assert changes(repo) == [("iris/deployment/production", "no-op", (AWAITING,))]
    status = api.status(["specs"], str(repo))["lifecycles"][0]["deployments"]
    assert status == [
        {
            "environment": "production",
            "target": "kubernetes",
            "version": None,
            "healthy": False,
            "detail": AWAITING,
        }
    ]


def _edit_production(repo: Path, **changes: Any) -> None:
    def change(data: dict[str, Any]) -> None:
        data["environments"]["production"]["kubernetes"].update(changes)

    edit_spec(repo, change, "production: " + ", ".join(f"{k}={v}" for k, v in changes.items()))


def test_a_reachable_cluster_is_compared_with_git_and_apply_never_runs_kubectl_apply(
    gitops_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = gitops_repo
    api.apply(api.plan(["specs"], str(repo)), str(repo))
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    kubectl = FakeKubectl(bin_dir)  # "a cluster answers": prints what it is told to

    kubectl.reply(stdout=json.dumps(live_service(repo)))  # Argo CD synced HEAD
    assert changes(repo) == []
    (row,) = api.status(["specs"], str(repo))["lifecycles"][0]["deployments"]
    assert (row["version"], row["healthy"]) == ("v1.0.0", True)
    assert row["detail"] == (
        f"v1.0.0 committed in {FOLDER}/, synced: ready at http://iris-production.ml.example.com"
    )

    kubectl.reply(stdout=json.dumps(live_service(repo, minReplicas=5)))  # scaled by hand
    detail = (
        f"v1.0.0 committed in {FOLDER}/, synced by Argo CD, but the cluster differs from Git "
        "(drift): spec.predictor.minReplicas: 2 in Git, 5 in the cluster"
    )
    assert changes(repo) == [
        (
            "iris/deployment/production",
            "no-op",
            (detail, "drift: spec.predictor.minReplicas: 2 in Git, 5 in the cluster"),
        )
    ]

    # a settings change: apply commits it, and leaves the cluster to Argo CD
    _edit_production(repo, replicas=3)
    kubectl.reply(stdout=json.dumps(live_service(repo)))
    assert changes(repo) == [
        (
            f"iris/file/{ISVC}",
            "update",
            ("spec.predictor.minReplicas 2 → 3", "spec.predictor.maxReplicas 2 → 3"),
        ),
        (
            "iris/deployment/production",
            "update",
            (
                "environments.production.kubernetes.replicas 2 → 3",
                f"apply commits {FOLDER}/ and runs no kubectl: Argo CD syncs it",
            ),
        ),
    ]
    api.apply(api.plan(["specs"], str(repo)), str(repo))
    isvc = yaml.safe_load(git("show", f"HEAD:{ISVC}", cwd=repo))
    assert isvc["spec"]["predictor"]["minReplicas"] == 3
    # the cluster has not synced it yet: awaiting sync, shown as drift from Git
    assert changes(repo) == [
        (
            "iris/deployment/production",
            "no-op",
            (
                f"v1.0.0 committed in {FOLDER}/, synced by Argo CD, but the cluster differs from "
                "Git (drift): spec.predictor.minReplicas: 3 in Git, 2 in the cluster and 1 more",
                "drift: spec.predictor.minReplicas: 3 in Git, 2 in the cluster",
                "drift: spec.predictor.maxReplicas: 3 in Git, 2 in the cluster",
            ),
        )
    ]
    calls = kubectl.argv()
    assert calls and all("get" in argv and "apply" not in argv for argv in calls)


def test_removing_the_environment_or_the_lifecycle_removes_its_manifests(
    gitops_repo: Path,
) -> None:
    repo = gitops_repo
    api.apply(api.plan(["specs"], str(repo)), str(repo))
    edit_spec(repo, lambda data: data.pop("environments"), "no production")
    assert changes(repo)[0] == (
        "iris/deployment/production",
        "delete",
        (
            f"environment production was removed: apply removes {FOLDER}/ in a commit (with "
            "its Argo CD Application: Argo CD deletes what it synced)",
        ),
    )
    said: list[str] = []
    api.apply(api.plan(["specs"], str(repo)), str(repo), said.append)
    assert git("ls-tree", "-r", "--name-only", "HEAD", "deploy", cwd=repo) == ""
    assert not (repo / "deploy").exists()
    assert git("log", "-1", "--format=%s", cwd=repo) == (
        f"mllc apply: remove environment production of iris ({FOLDER}/)"
    )
    assert git("status", "--porcelain", cwd=repo) == ""
    assert [c for c in changes(repo) if c[1] != "no-op"] == []


def test_removing_the_lifecycle_removes_its_deploy_folder(gitops_repo: Path) -> None:
    repo = gitops_repo
    api.apply(api.plan(["specs"], str(repo)), str(repo))
    git("rm", "-q", "specs/iris.yaml", cwd=repo)
    git("commit", "-qm", "retire iris", cwd=repo)
    deleted = [c[0] for c in changes(repo) if c[1] == "delete"]
    assert [f"iris/file/{p}" for p in (APP, CRON, ISVC)] == [a for a in deleted if "deploy/" in a]
    api.apply(api.plan(["specs"], str(repo)), str(repo))
    assert git("ls-tree", "-r", "--name-only", "HEAD", "deploy", "pipelines", cwd=repo) == ""
    assert git("log", "-1", "--format=%s", cwd=repo) == "mllc apply: remove lifecycle iris"


# ------------------------------------------------------------------ crash safety

FAKE_S3 = """\
import os
if os.environ.get("FAKE_S3_DIR"):  # s3:// as a local folder, for mllc apply under test
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    class FakeS3(LocalFileSystem):
        protocol = ("s3",)

        def put_file(self, lpath, rpath, **kwargs):
            dest = os.path.join(os.environ["FAKE_S3_DIR"], rpath.split("://", 1)[1])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(lpath, "rb") as src, open(dest + ".part", "wb") as out:
                out.write(src.read())
            os.replace(dest + ".part", dest)

    fsspec.register_implementation("s3", FakeS3, clobber=True)
"""

# Kills apply (git's parent) as Git is about to move HEAD to the deploy commit, and
# aborts that update: as if apply died just before it. Once (the marker file).
KILL_AT_DEPLOY_COMMIT = """\
#!/bin/sh
# shell builtins and git only: the test's PATH has no coreutils
drain() { while read -r _; do :; done; }
marker="$(git rev-parse --absolute-git-dir)/killed-apply"
[ "$1" = "prepared" ] || { drain; exit 0; }
[ -f "$marker" ] && { drain; exit 0; }
while read -r old new ref; do
  case "$ref" in HEAD|refs/heads/*) ;; *) continue ;; esac
  case "$(git log -1 --format=%s "$new")" in
    "mllc apply: deploy "*)
      : > "$marker"
      read -r _pid _comm _state parent _rest < "/proc/$PPID/stat"
      kill -9 "$parent"
      exit 1 ;;
  esac
done
exit 0
"""


def test_apply_killed_before_the_deploy_commit_converges(gitops_repo: Path, tmp_path: Path) -> None:
    """SIGKILL apply just before Git moves HEAD to the deploy commit: the model is
    already published, nothing half-made is committed, the next plan shows the
    deployment again and the next apply commits it."""
    repo = gitops_repo
    site, store = tmp_path / "site", tmp_path / "s3"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAKE_S3, encoding="utf-8")
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(KILL_AT_DEPLOY_COMMIT, encoding="utf-8")
    hook.chmod(0o755)
    extra = {"PYTHONPATH": str(site), "FAKE_S3_DIR": str(store)}
    before = git("rev-parse", "HEAD", cwd=repo)

    proc = mllc_popen("apply", "--auto-approve", cwd=repo, extra_env=extra)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == -9, out + err
    assert (repo / ".git" / "killed-apply").exists()
    published = store / "models" / "iris" / "v1.0.0" / "model.joblib"
    assert hashlib.md5(published.read_bytes()).hexdigest() == lock_model_md5(repo)
    assert git("log", "--format=%s", f"{before}..HEAD", cwd=repo) == "mllc apply: iris (redeploy)"
    assert git("ls-tree", "-r", "--name-only", "HEAD", "deploy", cwd=repo) == ""
    assert (
        "iris/deployment/production",
        "create",
        (
            "production: nothing committed → v1.0.0 (pinned to v1.0.0)",
            f"apply commits {FOLDER}/ and runs no kubectl: Argo CD syncs it",
        ),
    ) in changes(repo)

    # as a person would: the stale lock names the killed apply; force-unlock it by its id
    again = mllc_popen("apply", "--auto-approve", cwd=repo, extra_env=extra)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 1 and f"pid {proc.pid}" in err, out + err
    mllc("force-unlock", lock_id_from(err), cwd=repo)
    again = mllc_popen("apply", "--auto-approve", cwd=repo, extra_env=extra)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, out + err
    assert "was interrupted during: iris/deploy/production" in out + err
    assert git("log", "-1", "--format=%s", cwd=repo) == (
        "mllc apply: deploy iris v1.0.0 to production"
    )
    assert git("ls-tree", "-r", "--name-only", "HEAD", FOLDER, cwd=repo).split() == [
        APP,
        CRON,
        ISVC,
    ]
    assert git("status", "--porcelain", cwd=repo) == ""
    assert changes(repo) == [("iris/deployment/production", "no-op", (AWAITING,))]


def test_switching_back_to_kubectl_removes_the_application(
    gitops_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = gitops_repo
    api.apply(api.plan(["specs"], str(repo)), str(repo))
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    kubectl = FakeKubectl(bin_dir)
    kubectl.reply(stdout=json.dumps(live_service(repo)))
    _edit_production(repo, sync="kubectl")
    assert changes(repo) == [
        (
            "iris/deployment/production",
            "update",
            (
                "environments.production.kubernetes.sync removed (was gitops)",
                f"apply removes {APP}: should Argo CD delete that Application with its "
                "resources finalizer, it deletes what it synced too; delete it first without "
                "cascading (argocd app delete --cascade=false)",
            ),
        )
    ]
    kubectl.reply(stdout="inferenceservice.serving.kserve.io/iris-production serverside-applied\n")
    api.apply(api.plan(["specs"], str(repo)), str(repo))
    assert git("ls-tree", "-r", "--name-only", "HEAD", FOLDER, cwd=repo).split() == [CRON, ISVC]
    assert git("status", "--porcelain", cwd=repo) == ""
    (applied,) = [argv for argv in kubectl.argv() if "apply" in argv]  # kubectl mode again
    assert [a for a in applied if a.startswith("--filename=")] == [
        f"--filename={repo / CRON}",
        f"--filename={repo / ISVC}",
    ]


def test_committed_files_are_read_bounded(
    committed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A pull request may commit anything under deploy/: a file over 1 MiB is not read."""
    monkeypatch.setenv("PATH", _no_kubectl_path(tmp_path))
    (committed / ISVC).write_text("x: " + "y" * (1 << 20) + "\n", encoding="utf-8")
    git("commit", "-qam", "huge", cwd=committed)
    state = observe_gitops(committed, gitops_spec(), "production")
    assert dict(state.manifests)[ISVC] == "(over 1048576 bytes: not read)"
    assert state.committed is None  # no InferenceService could be read
    assert state.detail.startswith(f"nothing committed in {FOLDER}/ yet")


def test_the_text_plan_shows_a_gitops_environment_not_in_sync_apart() -> None:
    """Not "Held back" (a version the gates keep out): Git has it, the cluster not yet."""
    change = Change(
        address="iris/deployment/production",
        lifecycle="iris",
        kind="deployment",
        action="no-op",
        category="redeploy",
        reasons=(AWAITING, "drift: spec.predictor.minReplicas: 2 in Git, 5 in the cluster"),
    )
    plan = Plan(mllc_version="0", lifecycles=("iris",), changes=(change,), summary=summarize([]))
    assert human(plan).splitlines() == [
        f"Not in sync: iris/deployment/production: {AWAITING}",
        "  drift: spec.predictor.minReplicas: 2 in Git, 5 in the cluster",
        "",
        "No changes. Every lifecycle matches its spec.",
    ]


def test_status_names_a_removed_environment_until_apply_removes_it(gitops_repo: Path) -> None:
    repo = gitops_repo
    api.apply(api.plan(["specs"], str(repo)), str(repo))
    edit_spec(repo, lambda data: data.pop("environments"), "no production")
    (row,) = api.status(["specs"], str(repo))["lifecycles"][0]["deployments"]
    assert (row["environment"], row["version"]) == ("production", None)
    assert row["detail"] == f"removed from the spec; {FOLDER}/ is still in Git: apply removes it"
