"""Data and models on an S3 remote, against a real S3-protocol server.

The server is moto's (``python -m moto.server``), started as a subprocess on 127.0.0.1
with a free port: it **stands in for Amazon S3** (and for any S3-protocol store, such as
MinIO or Ceph, that a team reaches with ``--endpoint-url``). It speaks the S3 protocol
over HTTP and, with ``INITIAL_NO_AUTH_ACTION_COUNT``, checks credentials as S3 does: the
test makes an IAM user and its key, and requests signed with any other key are refused.
Everything else runs for real: git, DVC with dvc-s3, training, the local inference
server, s3fs. Credentials are fake ones made for each server, passed in the environment.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mllc.observe.pipeline import cached_outputs
from tests import helpers_repo as h

pytestmark = pytest.mark.slow

BUCKET = "models"
PREFIX = "mllc"
RUNNING = re.compile(rb"Running on http://127\.0\.0\.1:(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    """moto's S3 server in a subprocess; ``env`` holds the credentials it accepts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}

    def start(self) -> None:
        env = {
            **os.environ,
            "INITIAL_NO_AUTH_ACTION_COUNT": "3",  # the IAM bootstrap below, then S3's checks
            "AWS_ACCESS_KEY_ID": "bootstrap",
            "AWS_SECRET_ACCESS_KEY": "bootstrap",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # the event: the server says it listens
            if RUNNING.search(line):
                break
        else:
            raise AssertionError("moto's server ended before it listened")
        # Keep reading its log so that it never blocks on a full pipe.
        os.set_blocking(self.proc.stderr.fileno(), False)
        self._bootstrap()

    def _bootstrap(self) -> None:
        import boto3

        boot = {"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
        iam = boto3.client("iam", endpoint_url=self.url, region_name="us-east-1", **boot)
        iam.create_user(UserName="mllc")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="mllc", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="mllc")["AccessKey"]
        self.env = {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.client().create_bucket(Bucket=BUCKET)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self) -> set[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    def has(self, md5: str) -> bool:
        return f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}" in self.keys()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3Server]:
    server = S3Server(free_port())
    try:
        server.start()
    except BaseException:
        server.stop()  # never leave a server behind, even when its bootstrap failed
        raise
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    empty = tmp_path / "aws-config-empty"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))  # nobody's real profile
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    try:
        yield server
    finally:
        server.stop()


def use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def spec(port: int | None = None) -> str:
    """The fast iris spec (tests/helpers_repo.py) with monitoring and, given a port, a
    local ``staging`` environment."""
    data = h.fast_spec()
    data["monitoring"] = {
        "schedule": "0 6 * * *",
        "drift": {"method": "psi", "threshold": 0.2},
        "performance": {"metric": "accuracy", "min": 0.5},
        "on_breach": "alert",
    }
    if port is not None:
        data["environments"] = {"staging": {"target": "local", "model": "latest", "port": port}}
    return h.dump_spec(data)


def remote_repo(path: Path, server: S3Server, port: int | None = None) -> Path:
    h.make_fresh_repo(path, spec(port))
    done = h.mllc(
        "init", ".", "--remote", f"s3://{BUCKET}/{PREFIX}", "--endpoint-url", server.url, cwd=path
    )
    assert "created  DVC remote 'storage'" in done.stdout
    return path


def lock_outs(repo: Path) -> dict[str, str]:
    """Every output dvc.lock records: path -> md5."""
    lock = h.read_lock_file(repo) or {}
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


def loaded_spec(repo: Path) -> Any:
    from mllc.spec.load import load_text_as_spec

    loaded = load_text_as_spec("specs/iris.yaml", h.spec_path(repo).read_text(encoding="utf-8"))
    assert loaded.spec is not None
    return loaded.spec


def cached(repo: Path, md5: str) -> bool:
    return (repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def batch_csv(path: Path) -> Path:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.sample(60, random_state=1)
    frame.to_csv(path, index=False)
    return path


def stop_servers(repo: Path) -> None:
    for state in (repo / ".mllc" / "serve").rglob("server-*.json"):
        try:
            os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            continue


# ---------------------------------------------------------------------------- tests


def test_init_writes_the_remote_and_never_a_credential(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    env = {**h.env(), "AWS_SECRET_ACCESS_KEY": secret, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE000"}
    run = subprocess.run(
        [sys.executable, "-m", "mllc", "init", ".", "--remote", "s3://bucket/team/models",
         "--endpoint-url", "http://127.0.0.1:9"],
        cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    config = (repo / ".dvc" / "config").read_text(encoding="utf-8")
    assert "remote = storage" in config
    assert "url = s3://bucket/team/models" in config
    assert "endpointurl = http://127.0.0.1:9" in config
    assert secret not in config and "AKIAEXAMPLE000" not in config
    assert not (repo / ".dvc" / "config.local").exists()
    # An existing repository: the same remote again is kept, another one is refused.
    again = h.mllc("init", ".", "--remote", "s3://bucket/team/models", cwd=repo)
    assert "kept     DVC remote 'storage'" in again.stdout
    other = h.mllc("init", ".", "--remote", "s3://elsewhere/x", cwd=repo, check=False)
    assert other.returncode == 1
    assert other.stderr.strip().splitlines() == [
        "error: the default DVC remote 'storage' is s3://bucket/team/models: change it with "
        "'dvc remote modify storage url s3://elsewhere/x'"
    ]
    creds = h.mllc("init", ".", "--remote", "s3://key:pass@bucket/x", cwd=repo, check=False)
    assert creds.returncode == 1 and "must not carry credentials" in creds.stderr
    assert "pass@" not in creds.stderr


def test_apply_pushes_before_it_tags_and_another_clone_fetches_what_it_needs(
    tmp_path: Path, s3: S3Server
) -> None:
    port = free_port()
    repo = remote_repo(tmp_path / "repo", s3, port)
    try:
        applied = h.mllc("apply", "--auto-approve", cwd=repo)
    finally:
        stop_servers(repo)
    assert f"registered {h.NAME}@v1.0.0" in applied.stdout
    assert "pushed pipelines/iris/dvc.yaml to the DVC remote 'storage'" in applied.stdout
    # Pushed before the commit that the tag points at: the journal's order, and the
    # objects are on the remote now that the tag exists.
    steps = [(e["step"], e["event"]) for e in h.journal_entries(repo)]
    assert steps.index((f"{h.NAME}/push", "done")) < steps.index((f"{h.NAME}/commit", "start"))
    outs = lock_outs(repo)
    model = outs[h.MODEL]
    train = outs[f"{h.PIPE}/data/train.parquet"]
    for path in cached_outputs(loaded_spec(repo)):  # not metrics and plots: Git has them
        md5 = outs[path]
        assert s3.has(md5), f"{path} ({md5}) is not on the remote"
    assert "storage" in h.git("show", f"{h.NAME}@v1.0.0:.dvc/config", cwd=repo)

    # Another machine: a clone with an empty DVC cache and nothing but the remote.
    clone = tmp_path / "clone"
    h.git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    h.git("fetch", "-q", "--tags", "origin", cwd=clone)
    assert not (clone / ".dvc" / "cache").exists()

    status = h.mllc("status", cwd=clone)  # reads only: fetches nothing
    assert "v1.0.0" in status.stdout and "(model not in local DVC cache)" in status.stdout
    assert not cached(clone, model)

    batch = batch_csv(tmp_path / "batch.csv")
    # This clone's remote down (its own endpoint in .dvc/config.local): one line, no report.
    local = clone / ".dvc" / "config.local"
    local.write_text(f"['remote \"storage\"']\n    endpointurl = http://127.0.0.1:{free_port()}\n")
    down = h.mllc(
        "monitor", h.NAME, "--env", "staging", "--data", str(batch), cwd=clone, check=False
    )
    assert down.returncode == 1
    (line,) = down.stderr.strip().splitlines()
    assert line.startswith(
        "error: cannot fetch the training reference from the DVC remote 'storage' "
        f"(s3://{BUCKET}/{PREFIX}): the storage endpoint does not answer"
    )
    assert not (clone / "monitoring").exists()
    local.unlink()
    monitored = h.mllc(
        "monitor", h.NAME, "--env", "staging", "--data", str(batch), cwd=clone, check=False
    )
    assert monitored.returncode in (0, 2), monitored.stderr  # 2: a (small batch's) breach
    report = json.loads((clone / "monitoring/iris/staging/report.json").read_text())
    assert report["reference"]["md5"] == train  # the training split, fetched and checked
    assert report["performance"]["value"] > 0.5, monitored.stdout  # the model, fetched
    assert cached(clone, model) and cached(clone, train)
    assert not cached(clone, outs[f"{h.PIPE}/data/test.parquet"])  # only what it needed

    verified = h.mllc("verify", f"{h.NAME}@v1.0.0", cwd=clone, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "fetching" in verified.stdout + verified.stderr

    # Deploy its environment: DVC pulls the stages' outputs instead of training again.
    try:
        deployed = h.mllc("apply", "--auto-approve", cwd=clone)
        # no candidate is trained again: DVC restores them (the remote's outputs)
        ran = set(h.running_stages(deployed.stdout))
        assert ran.isdisjoint({"train@logreg", "train@forest"}), deployed.stdout
        assert f"is already {h.NAME}@v1.0.0" in deployed.stdout
        predicted = h.mllc("predict", h.NAME, "--env", "staging", json.dumps(
            [{c: 5.0 for c in ("sepal length (cm)", "sepal width (cm)",
                               "petal length (cm)", "petal width (cm)")}]
        ), cwd=clone)  # fmt: skip
        assert "v1.0.0" in predicted.stdout + predicted.stderr
    finally:
        stop_servers(clone)


def test_a_remote_that_is_down_or_refuses_the_credentials_stops_apply_before_it_commits(
    tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = remote_repo(tmp_path / "repo", s3)
    h.mllc("apply", "--auto-approve", cwd=repo)
    h.edit_spec(repo, h.set_param("logreg", "C", 0.05), commit=None)
    before = (h.head(repo), h.tags(repo))

    s3.stop()  # down
    down = h.mllc("apply", "--auto-approve", cwd=repo, check=False)
    assert down.returncode == 1
    (line,) = down.stderr.strip().splitlines()
    assert line.startswith(
        "error: iris: cannot push to the DVC remote 'storage' (s3://models/mllc): "
        "the storage endpoint does not answer"
    )
    assert line.endswith(
        "nothing was committed or tagged: run 'mllc apply' again once the remote works"
    )
    assert (h.head(repo), h.tags(repo)) == before

    s3.start()  # back, empty (moto keeps nothing), with new credentials
    use(monkeypatch, {**s3.env, "AWS_SECRET_ACCESS_KEY": "not-the-secret-0000"})
    refused = h.mllc("apply", "--auto-approve", cwd=repo, check=False)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert "the AWS credentials were refused (SignatureDoesNotMatch)" in line
    assert "not-the-secret" not in refused.stdout + refused.stderr
    assert (h.head(repo), h.tags(repo)) == before

    use(monkeypatch, s3.env)
    converged = h.mllc("apply", "--auto-approve", cwd=repo)
    assert f"registered {h.NAME}@v1.1.0" in converged.stdout
    assert s3.has(h.lock_model_md5(repo) or "")
    assert h.plan_json(repo)["changes"] == []


def kserve_spec() -> str:
    """specs/iris.yaml with a KServe ``production`` environment whose storage is on S3."""
    data = yaml.safe_load(h.spec_path(h.ROOT).read_text(encoding="utf-8"))
    data["environments"] = {
        "production": {
            "target": "kubernetes",
            "model": "v1.0.0",
            "kubernetes": {"namespace": "ml", "storage_uri": f"s3://{BUCKET}/kserve"},
        }
    }
    return yaml.safe_dump(data)


def test_kserve_publishes_the_model_to_an_s3_storage_uri(
    tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mllc.spec.load import load_text_as_spec
    from mllc.targets.kubernetes import publish_model
    from mllc.types import RegisteredVersion

    loaded = load_text_as_spec("specs/iris.yaml", kserve_spec())
    assert loaded.spec is not None
    model = tmp_path / "model.joblib"
    model.write_bytes(b"a model's bytes\n")
    version = RegisteredVersion("iris", "v1.0.0", "0" * 40, h.md5_file(model), "2026-01-01")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)  # the store that is not AWS
    url = publish_model(tmp_path, loaded.spec, "production", version, model)
    assert url == f"s3://{BUCKET}/kserve/iris/v1.0.0/model.joblib"
    got = s3.client().get_object(Bucket=BUCKET, Key="kserve/iris/v1.0.0/model.joblib")
    assert got["Body"].read() == b"a model's bytes\n"


BLOCK_S3 = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dvc_s3", "s3fs"):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, Block())
"""
RUN_MLLC = """
from mllc.__main__ import main
sys.argv[0] = "mllc"
sys.exit(main())
"""
PUBLISH = """
from pathlib import Path
from mllc.errors import MllcError
from mllc.spec.load import load_text_as_spec
from mllc.targets.kubernetes import publish_model
from mllc.types import RegisteredVersion
root = Path(sys.argv[1])
spec = load_text_as_spec("specs/iris.yaml", (root / "spec.yaml").read_text()).spec
version = RegisteredVersion("iris", "v1.0.0", "0" * 40, sys.argv[2], "2026-01-01")
try:
    publish_model(root, spec, "production", version, "model.joblib")
except MllcError as exc:
    print(exc.detail)
"""


def test_without_the_extra_every_s3_use_says_which_extra_to_install(tmp_path: Path) -> None:
    """The S3 packages are made unimportable in the child process (not uninstalled)."""

    def mllc_without_s3(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", BLOCK_S3 + RUN_MLLC, *args],
            cwd=cwd, env=h.env(), capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip

    repo = h.make_fresh_repo(tmp_path / "repo")
    init = mllc_without_s3("init", ".", "--remote", "s3://bucket/prefix", cwd=repo)
    assert init.returncode == 1
    assert init.stderr.strip().splitlines() == [
        "error: the DVC remote s3://bucket/prefix is on S3, which needs mllc's S3 support "
        "(the dvc_s3 package): pip install 'mllc[s3]'"
    ]
    # A clone of a repository whose remote is on S3: apply says it before any commit.
    h.dvc("remote", "add", "-d", "storage", "s3://bucket/prefix", cwd=repo)
    head = h.head(repo)
    applied = mllc_without_s3("apply", "--auto-approve", cwd=repo)
    assert applied.returncode == 1
    assert (
        applied.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: iris: the DVC remote s3://bucket/prefix is on S3, which needs mllc's S3 "
            "support (the dvc_s3 package): pip install 'mllc[s3]'"
        )
    )
    assert h.head(repo) == head and not h.tags(repo)
    # A KServe storage_uri on S3: publishing says the same.
    (tmp_path / "spec.yaml").write_text(kserve_spec(), encoding="utf-8")
    model = tmp_path / "model.joblib"
    model.write_bytes(b"a model\n")
    published = subprocess.run(
        [sys.executable, "-c", BLOCK_S3 + PUBLISH, str(tmp_path), h.md5_file(model)],
        cwd=tmp_path, env=h.env(), capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert published.stdout.strip() == (
        f"the storage_uri s3://{BUCKET}/kserve/iris/v1.0.0/model.joblib is on S3, which needs "
        "mllc's S3 support (the s3fs package): pip install 'mllc[s3]'"
    ), published.stderr
