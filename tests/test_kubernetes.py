"""The kubernetes target: manifests, their validation, kubectl and publishing.

Rendering is checked against golden files (``tests/golden/kubernetes/<case>/``,
rewritten by ``pytest --regen-golden``), against the strict KServe
InferenceService schema vendored in ``schemas/vendor/`` and, for the CronJob, by the real
``kubernetes-validate --strict`` with the Kubernetes schemas it bundles (offline).

There is no Kubernetes cluster here. The kubectl tests put a stand-in ``kubectl``
first on PATH: a small script written by the test that records its arguments
and prints what a real kubectl prints in that situation (an InferenceService as
JSON, a NotFound error, a refused connection). It replaces kubectl and the
cluster behind it, nothing else: mllc's own code runs as it would. The "kubectl
not found" path is real (an empty PATH directory), and when a real kubectl is
installed it is also run against a cluster address where nothing listens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import assert_generated_header, check_golden_tree

from mllc.errors import MllcError, SpecError
from mllc.spec.load import load_text_as_spec
from mllc.spec.models import Lifecycle
from mllc.targets import kubernetes
from mllc.targets.kubernetes import apply_manifests, observe, publish_model, render
from mllc.targets.manifests import MONITOR_IMAGE, model_file_uri
from mllc.types import RegisteredVersion

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "kubernetes"
KSERVE_SCHEMA = ROOT / "schemas" / "vendor" / "kserve-inferenceservice-v1beta1.strict.json"
SOURCE = "specs/iris.yaml"
ISVC = "deploy/iris/production/inferenceservice.yaml"
CRON = "deploy/iris/production/cronjob.yaml"
MODEL_BYTES = b"not really a joblib file, but bytes with a known hash\n"
SECRET = "sekrit-123"


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


MODEL_MD5 = _md5(MODEL_BYTES)
VERSION = RegisteredVersion(
    name="iris",
    version="v1.0.0",
    commit="0" * 40,
    model_md5=MODEL_MD5,
    created="2026-01-01T00:00:00Z",
)
PRODUCTION: dict[str, Any] = {
    "target": "kubernetes",
    "model": "v1.0.0",
    "after": "staging",
    "kubernetes": {
        "namespace": "ml",
        "replicas": 2,
        "storage_uri": "s3://models",
        "service_account": "models-reader",
        "context": "prod-cluster",
    },
}


def make_spec(
    production: dict[str, Any] | None = None, monitoring: bool = True, **meta: Any
) -> Lifecycle:
    """specs/iris.yaml with a kubernetes ``production`` environment (overridable)."""
    data = yaml.safe_load((ROOT / SOURCE).read_text(encoding="utf-8"))
    env = json.loads(json.dumps(PRODUCTION))
    for key, value in (production or {}).items():
        if key == "kubernetes":
            env["kubernetes"].update(value)
        else:
            env[key] = value
    data["environments"]["production"] = env
    data["metadata"].update(meta)
    if not monitoring:
        del data["monitoring"]
    return Lifecycle.model_validate(data)


def _docs(files: dict[str, str]) -> dict[str, Any]:
    return {path: yaml.safe_load(text) for path, text in files.items()}


def _validate_says(spec: Lifecycle) -> list[str]:
    """What validating the spec as a file reports of the cluster's limits (code kubernetes)."""
    text = yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)
    result = load_text_as_spec(SOURCE, text)
    assert all(d.code == "kubernetes" for d in result.diagnostics), result.diagnostics
    return [d.message for d in result.diagnostics]


# ------------------------------------------------------------------ rendering

GOLDEN_CASES: dict[str, tuple[dict[str, Any], bool]] = {
    # service account, context, monitoring: everything the target renders
    "iris-production": ({}, True),
    # the defaults: no service account, no monitoring, scale to zero
    "minimal": (
        {"kubernetes": {"service_account": None, "context": None, "replicas": 0}},
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden(case: str, regen_golden: bool) -> None:
    production, monitoring = GOLDEN_CASES[case]
    files = render(make_spec(production, monitoring), "production", VERSION, SOURCE)
    check_golden_tree(files, GOLDEN / case, regen_golden)


def test_files_start_with_the_generated_header() -> None:
    files = render(make_spec(), "production", VERSION, SOURCE)
    assert sorted(files) == [CRON, ISVC]
    for text in files.values():
        assert_generated_header(text, SOURCE)


def test_rendering_is_deterministic_and_ignores_label_order() -> None:
    one = render(make_spec(labels={"team": "botany", "tier": "gold"}), "production", VERSION, "s")
    two = render(make_spec(labels={"tier": "gold", "team": "botany"}), "production", VERSION, "s")
    assert one == two
    assert one == render(
        make_spec(labels={"team": "botany", "tier": "gold"}), "production", VERSION, "s"
    )


def test_inferenceservice_says_what_runs_where() -> None:
    isvc = _docs(render(make_spec(), "production", VERSION, SOURCE))[ISVC]
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    meta = isvc["metadata"]
    assert (meta["name"], meta["namespace"]) == ("iris-production", "ml")
    assert meta["labels"] == {
        "app.kubernetes.io/component": "predictor",
        "app.kubernetes.io/managed-by": "mllc",
        "app.kubernetes.io/name": "iris",
        "mllc.dev/environment": "production",
        "mllc.dev/lifecycle": "iris",
        "mllc.dev/version": "v1.0.0",
        "team": "botany",  # the spec's metadata.labels
    }
    assert meta["annotations"] == {
        "mllc.dev/model-md5": MODEL_MD5,
        "mllc.dev/spec-source": SOURCE,
    }
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] == predictor["maxReplicas"] == 2
    assert predictor["serviceAccountName"] == "models-reader"
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "sklearn"}
    assert model["protocolVersion"] == "v2"
    assert "runtime" not in model  # KServe picks its sklearn + v2 runtime
    # <storage_uri>/<name>/<version>: the folder publish_model writes model.joblib to
    assert model["storageUri"] == "s3://models/iris/v1.0.0"
    assert model_file_uri("s3://models/", "iris", "v1.0.0") == model["storageUri"] + "/model.joblib"
    amounts = {"cpu": "500m", "memory": "512Mi"}
    assert model["resources"] == {"requests": amounts, "limits": amounts}


def test_scale_to_zero_and_optional_service_account() -> None:
    spec = make_spec({"kubernetes": {"replicas": 0, "service_account": None}})
    predictor = _docs(render(spec, "production", VERSION, SOURCE))[ISVC]["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 1)
    assert "serviceAccountName" not in predictor


def test_cronjob_runs_mllc_monitor_locked_down() -> None:
    cron = _docs(render(make_spec(), "production", VERSION, SOURCE))[CRON]
    assert (cron["apiVersion"], cron["kind"]) == ("batch/v1", "CronJob")
    assert cron["metadata"]["name"] == "iris-production-monitor"
    assert cron["spec"]["schedule"] == "0 6 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == MONITOR_IMAGE
    assert "/" not in MONITOR_IMAGE  # no registry host: users retag the image
    assert container["command"] + container["args"] == [
        "mllc",
        "monitor",
        "iris",
        "--env",
        "production",
        "--data",
        "$(MLLC_BATCH)",
    ]
    # Kubernetes expands $(MLLC_BATCH) from the container's env: a ConfigMap named like
    # the job holds the batch's path or URL.
    (batch,) = [e for e in container["env"] if e["name"] == "MLLC_BATCH"]
    assert batch["valueFrom"]["configMapKeyRef"] == {
        "name": "iris-production-monitor",
        "key": "batch",
    }
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}


def test_no_monitoring_no_cronjob_and_no_version_no_files() -> None:
    assert sorted(render(make_spec(monitoring=False), "production", VERSION, SOURCE)) == [ISVC]
    # Nothing deployable yet: no InferenceService without a model, and no
    # monitoring job with nothing deployed to monitor.
    assert render(make_spec(), "production", None, SOURCE) == {}


def test_names_kubernetes_or_kserve_would_refuse_fail_clearly() -> None:
    long_env = "e" * 50  # iris-eeee... is 55 characters: a fine object name, but
    spec = make_spec()  # ...the predictor host and the CronJob name are too long
    data = spec.model_dump(mode="json", exclude_none=True)
    data["environments"][long_env] = data["environments"].pop("production")
    spec = Lifecycle.model_validate(data)
    with pytest.raises(SpecError) as caught:
        render(spec, long_env, VERSION, SOURCE)
    messages = caught.value.render()
    assert len(messages) == 2
    assert f"{SOURCE}: environments.{long_env}: KServe's predictor host name" in messages[0]
    assert "over the 63 of a DNS label" in messages[0]
    assert "CronJob name" in messages[1] and "over Kubernetes' 52" in messages[1]
    # validating the spec reports the same (one position, so in message order)
    assert _validate_says(spec) == sorted(d.message for d in caught.value.diagnostics)

    data["environments"]["e" * 63] = data["environments"].pop(long_env)
    spec = Lifecycle.model_validate(data)
    with pytest.raises(SpecError) as caught:
        render(spec, "e" * 63, None, SOURCE)  # refused even before a version exists
    assert "is 68 characters, over Kubernetes' 63" in caught.value.render()[0]


def test_quantities_the_cluster_cannot_read_are_refused_by_the_spec() -> None:
    # 'K' alone is no Kubernetes suffix (only 'k' and 'Ki'): the spec refuses it up front
    with pytest.raises(ValueError, match="'512K' is not a Kubernetes memory quantity"):
        make_spec({"kubernetes": {"memory": "512K"}})


def test_an_environment_of_another_target_is_refused() -> None:
    with pytest.raises(MllcError, match="'staging' of iris does not use the kubernetes target"):
        render(make_spec(), "staging", VERSION, SOURCE)
    assert _validate_says(make_spec()) == []


# ------------------------------------------------------------------ validation

VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    **GOLDEN_CASES,
    "whole-cpus": ({"kubernetes": {"cpu": "2", "memory": "1.5Gi", "replicas": 1000}}, True),
}


@pytest.fixture(scope="module")
def kserve_validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(KSERVE_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)  # the draft the schema declares
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_inferenceservice_validates_against_the_strict_kserve_schema(
    case: str, kserve_validator: Any
) -> None:
    validator = kserve_validator
    production, monitoring = VARIANTS[case]
    isvc = _docs(render(make_spec(production, monitoring), "production", VERSION, SOURCE))[ISVC]
    assert [e.message for e in validator.iter_errors(isvc)] == []
    # The schema is strict indeed: a field KServe does not know is an error.
    isvc["spec"]["predictor"]["model"]["modelFormt"] = {"name": "sklearn"}
    assert [e.message for e in validator.iter_errors(isvc)] != []


def _kubernetes_validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cronjob_validates_with_kubernetes_validate_strict(tmp_path: Path) -> None:
    utils = pytest.importorskip("kubernetes_validate.utils")
    # 1.27: the first release where CronJob.timeZone is generally available.
    versions = ["1.27.0", utils.latest_version()]
    files = render(make_spec(), "production", VERSION, SOURCE)
    cron = tmp_path / "cronjob.yaml"
    cron.write_text(files[CRON], encoding="utf-8")
    for version in versions:
        proc = _kubernetes_validate("--strict", "-k", version, str(cron))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # It only warns on kinds it has no schema for: insist that it checked this one.
        assert "passed for resource cronjob/iris-production-monitor" in proc.stdout
    for case in sorted(VARIANTS):
        production, monitoring = VARIANTS[case]
        if monitoring:
            doc = yaml.safe_load(render(make_spec(production), "production", VERSION, "s")[CRON])
            assert utils.validate(doc, versions[-1], strict=True)
    tampered = tmp_path / "tampered.yaml"
    tampered.write_text(
        files[CRON].replace("concurrencyPolicy: Forbid", "concurrencyPolicy: Forbid\n  retry: 1"),
        encoding="utf-8",
    )
    proc = _kubernetes_validate("--strict", str(tampered))
    assert proc.returncode == 1 and "'retry' was unexpected" in proc.stdout


# ------------------------------------------------------------------ kubectl

READY = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "name": "iris-production",
        "namespace": "ml",
        "labels": {"mllc.dev/version": "v1.0.0", "mllc.dev/lifecycle": "iris"},
    },
    "status": {
        "url": "http://iris-production.ml.example.com",
        "conditions": [
            {"type": "PredictorReady", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
    },
}
REFUSED = (
    'E1126 23:58:53.770871    5533 memcache.go:265] "Unhandled Error" err="couldn\'t get '
    'current server API group list: Get \\"http://localhost:8080/api?timeout=10s\\": dial tcp '
    '127.0.0.1:8080: connect: connection refused"\n'
    "The connection to the server localhost:8080 was refused - did you specify the right "
    "host or port?\n"
)
NOT_FOUND = (
    'Error from server (NotFound): inferenceservices.serving.kserve.io "iris-production" '
    "not found\n"
)


class FakeKubectl:
    """A stand-in ``kubectl`` on PATH: records argv, prints what it is told to."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.calls = bin_dir / "calls.jsonl"
        self.reply_file = bin_dir / "reply.json"
        script = bin_dir / "kubectl"
        script.write_text(
            textwrap.dedent(
                f"""\
                #!{sys.executable}
                import json, os, sys, time
                here = os.path.dirname(os.path.abspath(__file__))
                with open(os.path.join(here, "calls.jsonl"), "a") as f:
                    f.write(json.dumps(sys.argv[1:]) + "\\n")
                with open(os.path.join(here, "reply.json")) as f:
                    reply = json.load(f)
                if reply.get("sleep"):  # hangs, and so does a child (a credential plugin)
                    import subprocess
                    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
                    with open(os.path.join(here, "child.pid"), "w") as f:
                        f.write(str(child.pid))
                    time.sleep(reply["sleep"])
                stderr = reply.get("stderr", "")
                if reply.get("leak"):  # a tool that prints a secret it was given
                    stderr += "auth failed with key " + os.environ[reply["leak"]] + "\\n"
                sys.stdout.write(reply.get("stdout", ""))
                sys.stderr.write(stderr)
                sys.exit(reply.get("rc", 0))
                """
            ),
            encoding="utf-8",
        )
        script.chmod(0o755)
        self.reply()

    def reply(self, **reply: Any) -> None:
        self.reply_file.write_text(json.dumps(reply), encoding="utf-8")

    def argv(self) -> list[list[str]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return FakeKubectl(bin_dir)


def test_observe_reads_the_version_label_and_ready_condition(kubectl: FakeKubectl) -> None:
    kubectl.reply(stdout=json.dumps(READY))
    state = observe(make_spec(), "production")
    assert (state.lifecycle, state.environment, state.target) == (
        "iris",
        "production",
        "kubernetes",
    )
    assert (state.version, state.healthy, state.reachable) == ("v1.0.0", True, True)
    assert state.detail == "ready at http://iris-production.ml.example.com"
    assert kubectl.argv() == [
        [
            "--context=prod-cluster",
            "get",
            "inferenceservice",
            "iris-production",
            "--namespace=ml",
            "--output=json",
            "--request-timeout=10s",
        ]
    ]


def test_observe_without_context_uses_the_current_one(kubectl: FakeKubectl) -> None:
    kubectl.reply(stdout=json.dumps(READY))
    observe(make_spec({"kubernetes": {"context": None}}), "production")
    assert not any(a.startswith("--context") for a in kubectl.argv()[0])


def test_observe_not_ready(kubectl: FakeKubectl) -> None:
    obj = json.loads(json.dumps(READY))
    obj["status"]["conditions"][1] = {
        "type": "Ready",
        "status": "False",
        "reason": "RevisionMissing",
        "message": "Revision iris-production-predictor-00001 failed: model not found",
    }
    kubectl.reply(stdout=json.dumps(obj))
    state = observe(make_spec(), "production")
    assert (state.version, state.healthy, state.reachable) == ("v1.0.0", False, True)
    assert state.detail == (
        "not ready: Revision iris-production-predictor-00001 failed: model not found"
    )
    del obj["status"]
    kubectl.reply(stdout=json.dumps(obj))
    assert observe(make_spec(), "production").detail == "not ready yet (no Ready condition)"


def test_observe_not_deployed(kubectl: FakeKubectl) -> None:
    kubectl.reply(stderr=NOT_FOUND, rc=1)
    state = observe(make_spec(), "production")
    assert (state.version, state.healthy, state.reachable) == (None, False, True)
    assert state.detail == "not deployed"


def test_observe_an_object_mllc_did_not_create(kubectl: FakeKubectl) -> None:
    obj = json.loads(json.dumps(READY))
    del obj["metadata"]["labels"]
    kubectl.reply(stdout=json.dumps(obj))
    state = observe(make_spec(), "production")
    assert (state.version, state.reachable) == (None, True)
    assert "mllc did not create it" in state.detail


def test_observe_unreachable_cluster_never_raises(kubectl: FakeKubectl) -> None:
    kubectl.reply(stderr=REFUSED, rc=1)
    state = observe(make_spec(), "production")
    assert (state.version, state.healthy, state.reachable) == (None, False, False)
    assert state.detail == (
        "no cluster reachable: The connection to the server localhost:8080 was refused - "
        "did you specify the right host or port?"
    )
    kubectl.reply(
        stderr='error: the server doesn\'t have a resource type "inferenceservice"\n', rc=1
    )
    state = observe(make_spec(), "production")
    assert (state.version, state.reachable) == (None, True)
    assert state.detail.startswith("KServe is not installed in the cluster")
    kubectl.reply(stdout="<html>proxy error</html>")
    assert observe(make_spec(), "production").reachable is False


def test_observe_gives_up_on_a_cluster_that_does_not_answer(
    kubectl: FakeKubectl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubernetes, "OBSERVE_TIMEOUT", 0.5)
    kubectl.reply(sleep=10)
    started = time.monotonic()
    state = observe(make_spec(), "production")
    assert time.monotonic() - started < 5
    assert state.reachable is False
    assert state.detail == "no cluster reachable: kubectl did not answer within 0.5s"
    # What kubectl started is gone too, not left running after mllc gave up.
    child = int((kubectl.bin_dir / "child.pid").read_text())
    assert _gone_within(child, 5.0)


def _gone_within(pid: int, seconds: float) -> bool:
    """The process exited (or is a zombie waiting for its reaper) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_kubectl_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    state = observe(make_spec(), "production")
    assert (state.version, state.healthy, state.reachable) == (None, False, False)
    assert state.detail == "no cluster reachable: kubectl not found"
    with pytest.raises(MllcError) as caught:
        apply_manifests(make_spec(), "production", [tmp_path / "x.yaml"])
    assert caught.value.detail == (
        "cannot deploy iris/production (context prod-cluster): kubectl not found "
        "(install it and configure a context)"
    )


def test_apply_is_server_side_as_mllc(kubectl: FakeKubectl, tmp_path: Path) -> None:
    files = render(make_spec(), "production", VERSION, SOURCE)
    paths = []
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
        paths.append(tmp_path / rel)
    kubectl.reply(
        stdout="cronjob.batch/iris-production-monitor serverside-applied\n"
        "inferenceservice.serving.kserve.io/iris-production serverside-applied\n"
    )
    lines = apply_manifests(make_spec(), "production", paths)
    assert lines == [
        "cronjob.batch/iris-production-monitor serverside-applied",
        "inferenceservice.serving.kserve.io/iris-production serverside-applied",
    ]
    assert kubectl.argv() == [
        [
            "--context=prod-cluster",
            "apply",
            "--server-side",
            "--field-manager=mllc",
            "--force-conflicts",
            "--request-timeout=60s",
            f"--filename={paths[0]}",
            f"--filename={paths[1]}",
        ]
    ]
    assert apply_manifests(make_spec(), "production", []) == []
    assert len(kubectl.argv()) == 1  # nothing to apply: kubectl is not run


def test_apply_to_an_unreachable_cluster_raises_one_clear_line(kubectl: FakeKubectl) -> None:
    kubectl.reply(stderr=REFUSED, rc=1)
    with pytest.raises(MllcError) as caught:
        apply_manifests(make_spec(), "production", ["deploy/iris/production/x.yaml"])
    assert caught.value.detail == (
        "kubectl apply failed for iris/production (context prod-cluster): The connection to "
        "the server localhost:8080 was refused - did you specify the right host or port?"
    )


def test_a_context_from_the_spec_is_never_a_flag(kubectl: FakeKubectl) -> None:
    kubectl.reply(stdout=json.dumps(READY))
    observe(make_spec({"kubernetes": {"context": "--kubeconfig=/etc/other"}}), "production")
    assert kubectl.argv()[0][0] == "--context=--kubeconfig=/etc/other"
    state = observe(make_spec({"kubernetes": {"context": "a\nb"}}), "production")
    assert state.reachable is False and "is not a context name" in state.detail


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no real kubectl installed")
def test_real_kubectl_with_no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real kubectl, pointed at a loopback port where nothing listens."""
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "gone", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}"}}
                ],
                # A token, or kubectl would prompt for a user name (see below).
                "users": [{"name": "nobody", "user": {"token": "not-a-real-token"}}],
                "contexts": [
                    {"name": "prod-cluster", "context": {"cluster": "gone", "user": "nobody"}}
                ],
                "current-context": "prod-cluster",
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    state = observe(make_spec(), "production")
    assert (state.reachable, state.version) == (False, None)
    assert state.detail.startswith("no cluster reachable: ")
    assert "refused" in state.detail, state.detail
    state = observe(make_spec({"kubernetes": {"context": "absent"}}), "production")
    assert state.reachable is False
    assert state.detail == 'no cluster reachable: error: context "absent" does not exist'
    # No credentials at all: kubectl prompts, reads the end of an empty stdin.
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["users"][0]["user"] = {}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    state = observe(make_spec(), "production")
    assert state.detail == (
        "no cluster reachable: kubectl asked for credentials the kubeconfig does not have "
        "(error: EOF)"
    )


# ------------------------------------------------------------------ publishing


def _model(tmp_path: Path) -> Path:
    path = tmp_path / "pipelines" / "iris" / "model.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MODEL_BYTES)
    return path


def test_publish_to_a_local_folder(tmp_path: Path) -> None:
    _model(tmp_path)
    store = tmp_path / "store"
    url = publish_model(
        tmp_path,
        make_spec(),
        "production",
        VERSION,
        "pipelines/iris/model.joblib",
        fs_url=f"file://{store}",
    )
    assert url == f"file://{store}/iris/v1.0.0/model.joblib"
    assert (store / "iris" / "v1.0.0" / "model.joblib").read_bytes() == MODEL_BYTES
    # Publishing again is harmless (same bytes, same place), and plain paths work too.
    publish_model(tmp_path, make_spec(), "production", VERSION, _model(tmp_path), fs_url=str(store))
    assert (store / "iris" / "v1.0.0" / "model.joblib").read_bytes() == MODEL_BYTES


def test_publish_to_memory(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    base = f"memory://{tmp_path.name}-bucket/models"
    url = publish_model(tmp_path, make_spec(), "production", VERSION, _model(tmp_path), fs_url=base)
    memory = fsspec.filesystem("memory")
    try:
        assert url == f"{base}/iris/v1.0.0/model.joblib"
        assert memory.cat_file(url) == MODEL_BYTES
    finally:
        memory.rm(f"memory://{tmp_path.name}-bucket", recursive=True)


def test_publish_refuses_another_models_bytes(tmp_path: Path) -> None:
    model = _model(tmp_path)
    model.write_bytes(b"retrained since")
    with pytest.raises(MllcError, match="has MD5 .* the registry says " + MODEL_MD5):
        publish_model(tmp_path, make_spec(), "production", VERSION, model, fs_url=str(tmp_path))
    with pytest.raises(MllcError, match="does not exist"):
        publish_model(tmp_path, make_spec(), "production", VERSION, "nope.joblib")


def test_publish_says_which_storage_it_cannot_write(tmp_path: Path) -> None:
    model = _model(tmp_path)
    pvc = make_spec({"kubernetes": {"storage_uri": "pvc://models-pvc/models"}})
    with pytest.raises(MllcError, match="pvc:// storage: a PersistentVolumeClaim"):
        publish_model(tmp_path, pvc, "production", VERSION, model)
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(MllcError, match=r"pip install 'mllc\[s3\]'"):
            publish_model(tmp_path, make_spec(), "production", VERSION, model)


# ------------------------------------------------------------------ secrets


def test_no_secret_value_reaches_a_file_or_a_message(
    kubectl: FakeKubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsspec = pytest.importorskip("fsspec")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    files = render(make_spec(), "production", VERSION, SOURCE)
    assert files and not any(SECRET in text for text in files.values())

    # kubectl (or an auth plugin) that prints the secret it was given: masked.
    kubectl.reply(stderr="", rc=1, leak="AWS_SECRET_ACCESS_KEY")
    state = observe(make_spec(), "production")
    assert SECRET not in state.detail and "***" in state.detail
    with pytest.raises(MllcError) as caught:
        apply_manifests(make_spec(), "production", ["x.yaml"])
    assert SECRET not in caught.value.detail and "***" in caught.value.detail
    kubectl.reply(stderr="error: https://admin:hunter2hunter2@10.0.0.1/ refused\n", rc=1)
    assert "hunter2" not in observe(make_spec(), "production").detail

    # A storage library whose error quotes the secret: masked too.
    class Leaky(fsspec.AbstractFileSystem):  # type: ignore[misc]
        protocol = "leaky"

        def put_file(self, lpath: str, rpath: str, **kwargs: Any) -> None:
            raise PermissionError(
                f"signature mismatch for key {os.environ['AWS_SECRET_ACCESS_KEY']}"
            )

    fsspec.register_implementation("leaky", Leaky, clobber=True)
    with pytest.raises(MllcError) as caught:
        publish_model(
            tmp_path, make_spec(), "production", VERSION, _model(tmp_path), fs_url="leaky://b"
        )
    assert caught.value.detail.startswith(
        "cannot publish iris v1.0.0 to leaky://b/iris/v1.0.0/model.joblib: PermissionError:"
    )
    assert SECRET not in caught.value.detail and "***" in caught.value.detail


def test_the_kserve_schema_is_vendored_with_its_source() -> None:
    """A user's clone has nothing beside it: the schema lives in this repository, and its
    README names the commit and licence the file's own $comment gives."""
    assert KSERVE_SCHEMA.resolve().is_relative_to(ROOT.resolve())
    comment = json.loads(KSERVE_SCHEMA.read_text(encoding="utf-8"))["$comment"]
    readme = (KSERVE_SCHEMA.parent / "README.md").read_text(encoding="utf-8")
    commit = comment.split("at commit ")[1].split()[0]
    assert KSERVE_SCHEMA.name in readme and commit in readme and "Apache-2.0" in readme
