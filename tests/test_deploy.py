"""The local target end to end: apply starts real V2 servers, plan sees them, apply heals them.

Real git, DVC, training and server processes on 127.0.0.1 (free ports). Servers
started by apply outlive it; every test stops what it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mllc.targets import local

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
ROWS = [
    {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4,
     "petal width (cm)": 0.2},
    {"sepal length (cm)": 6.7, "sepal width (cm)": 3.0, "petal length (cm)": 5.2,
     "petal width (cm)": 2.3},
    {"sepal length (cm)": 5.9, "sepal width (cm)": 2.8, "petal length (cm)": 4.5,
     "petal width (cm)": 1.5},
]  # fmt: skip
SECRET = "s3cr3t-token-value-0042"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def mllc(
    repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "mllc", *args],
        cwd=repo,
        env=_env(env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"mllc {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def spec_text(port: int, token: bool = False) -> str:
    spec = yaml.safe_load((ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8"))
    spec["models"] = {
        "logreg": {"estimator": "sklearn.linear_model.LogisticRegression",
                   "params": {"C": 1.0, "max_iter": 500}},
        "tree": {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 2}},
    }  # fmt: skip
    spec["environments"] = {"staging": {"target": "local", "model": "latest", "port": port}}
    if token:
        spec["environments"]["staging"]["token"] = "env:MLLC_TEST_TOKEN"
    spec.pop("monitoring", None)
    return yaml.safe_dump(spec, sort_keys=False)


def make_repo(path: Path, port: int, token: bool = False) -> Path:
    (path / "specs").mkdir(parents=True)
    (path / "specs" / "iris.yaml").write_text(spec_text(port, token), encoding="utf-8")
    (path / ".gitignore").write_text("/.mllc/\n", encoding="utf-8")
    for args in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(args, cwd=path, env=_env(), check=True, capture_output=True)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "spec"], cwd=path, check=True, capture_output=True)
    return path


def stop_all(repo: Path) -> None:
    for state in (repo / ".mllc" / "serve").rglob("server-*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)


def running(repo: Path) -> list[local.Server]:
    return [s for s in local.servers(repo, "iris", "staging") if local.alive(s.pid)]


def infer(port: int, token: str | None = None) -> tuple[int, Any]:
    from mllc.predict import read_rows

    return local.request(
        "127.0.0.1", port, "POST", "/v2/models/iris/infer", read_rows(json.dumps(ROWS)), token
    )


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    path = make_repo(tmp_path / "repo", free_port())
    yield path
    stop_all(path)


def port_of(repo: Path) -> int:
    return int(
        yaml.safe_load((repo / "specs/iris.yaml").read_text())["environments"]["staging"]["port"]
    )


def test_apply_serves_predicts_heals_and_moves(repo: Path) -> None:
    port = port_of(repo)
    mllc(repo, "apply", "--auto-approve")
    (server,) = running(repo)
    status, answer = infer(port)
    assert status == 200 and answer["model_version"] == "v1.0.0"
    assert len(answer["outputs"][0]["data"]) == 3
    # the CLI client and status
    out = mllc(repo, "predict", "iris", "--env", "staging", json.dumps(ROWS)).stdout
    assert out.splitlines()[0] == "# iris v1.0.0" and len(out.splitlines()) == 4
    assert "v1.0.0  serving on 127.0.0.1" in mllc(repo, "status").stdout
    assert mllc(repo, "plan", "--detailed-exitcode", check=False).returncode == 0

    # a dead server is a redeploy, and apply restores it
    os.kill(server.pid, signal.SIGKILL)
    time.sleep(0.2)
    plan = mllc(repo, "plan", "--detailed-exitcode", check=False)
    assert plan.returncode == 2 and "iris/deployment/staging" in plan.stdout
    assert "not running" in plan.stdout
    mllc(repo, "apply", "--auto-approve")
    assert infer(port)[0] == 200

    # a changed port moves the server: the new port answers, the old one is closed
    new_port = free_port()
    spec = repo / "specs/iris.yaml"
    spec.write_text(spec.read_text().replace(f"port: {port}", f"port: {new_port}"))
    plan = mllc(repo, "plan", "--detailed-exitcode", check=False)
    assert plan.returncode == 2 and f"environments.staging.port {port} → {new_port}" in plan.stdout
    mllc(repo, "apply", "--auto-approve")
    assert infer(new_port)[0] == 200
    with pytest.raises(OSError):
        infer(port)
    assert len(running(repo)) == 1

    # removing the environment stops its server
    data = yaml.safe_load(spec.read_text())
    data["environments"] = {}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = mllc(repo, "plan").stdout
    assert "- iris/deployment/staging" in plan
    mllc(repo, "apply", "--auto-approve")
    assert running(repo) == []


def _version_predictions(repo: Path, version: str) -> list[Any]:
    """What the registered version's own model predicts for ROWS (from the DVC cache)."""
    import joblib
    import pandas as pd

    from mllc.registry import list_versions

    (v,) = [v for v in list_versions(repo, "iris") if v.version == version]
    model = joblib.load(local.model_file(repo, v.model_md5))
    return [int(x) for x in model.predict(pd.DataFrame(ROWS))]


def test_new_version_switches_without_downtime_or_mixed_answers(repo: Path) -> None:
    """The old server answers until the new one is ready; every answer is its version's own."""
    port = port_of(repo)
    mllc(repo, "apply", "--auto-approve")
    spec = repo / "specs/iris.yaml"
    # a model that predicts differently (and no gates to keep it out): a new version
    data = yaml.safe_load(spec.read_text())
    data["gates"] = []
    data["models"] = {
        "constant": {
            "estimator": "sklearn.dummy.DummyClassifier",
            "params": {"strategy": "constant", "constant": 1},
        }
    }
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    answers: list[tuple[int, str | None, Any]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status, body = infer(port)
            except OSError as exc:
                answers.append((0, None, str(exc)))
                continue
            version = body.get("model_version") if isinstance(body, dict) else None
            answers.append((status, version, body))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        mllc(repo, "apply", "--auto-approve")
        done = len(answers)  # apply has returned: the old server is gone from here on
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(10)
    assert answers, "the load loop sent nothing"
    failures = [a for a in answers if a[0] != 200]
    assert len(failures) <= 1, failures[:3]  # at most one reset in the hand-over instant
    versions = [a[1] for a in answers if a[0] == 200]
    # Until the new server is ready the old one answers (the switch never goes dark);
    # during the hand-over both may answer; after apply returns only the new one does.
    assert versions[0] == "v1.0.0" and set(versions) == {"v1.0.0", "v1.1.0"}
    assert {a[1] for a in answers[done:]} == {"v1.1.0"}
    expected = {v: _version_predictions(repo, v) for v in ("v1.0.0", "v1.1.0")}
    assert expected["v1.0.0"] != expected["v1.1.0"], "the test needs two models that differ"
    for status, version, body in answers:
        if status == 200:
            assert body["outputs"][0]["data"] == expected[version], version

    # A promotion is a pull request: promote pins v1.0.0 on a branch; merged, apply deploys it.
    # (apply committed the edited spec: the tree is clean)
    out = mllc(repo, "promote", "iris", "v1.0.0", "--to", "staging").stdout
    assert "mllc/promote-iris-v1.0.0-staging" in out
    merge = ["git", "merge", "-q", "--ff-only", "mllc/promote-iris-v1.0.0-staging"]
    subprocess.run(merge, cwd=repo, check=True, capture_output=True)
    plan = mllc(repo, "plan").stdout
    assert "staging: v1.1.0 → v1.0.0 (pinned to v1.0.0)" in plan
    mllc(repo, "apply", "--auto-approve")
    assert infer(port)[1]["model_version"] == "v1.0.0"
    # ... and a rollback returns to what ran there before
    out = mllc(repo, "rollback", "iris", "--env", "staging").stdout
    assert "mllc/rollback-iris-v1.1.0-staging" in out


def test_server_killed_mid_load_is_restored_by_apply(repo: Path) -> None:
    port = port_of(repo)
    mllc(repo, "apply", "--auto-approve")
    expected = _version_predictions(repo, "v1.0.0")
    results: list[tuple[int, Any]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set() and len(results) < 5000:
            try:
                results.append(infer(port))
            except OSError:
                results.append((0, None))
                time.sleep(0.01)

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(0.5)
    (server,) = running(repo)
    os.kill(server.pid, signal.SIGKILL)
    time.sleep(0.3)
    mllc(repo, "apply", "--auto-approve")
    time.sleep(0.3)
    stop.set()
    thread.join(10)
    ok = [body for status, body in results if status == 200]
    assert any(status == 0 for status, _ in results), "the kill was not noticed"
    assert results[-1][0] == 200, "apply did not restore the server"
    for body in ok:
        assert body["model_version"] == "v1.0.0"
        assert body["outputs"][0]["data"] == expected


def test_removing_the_lifecycle_stops_its_server(repo: Path) -> None:
    mllc(repo, "apply", "--auto-approve")
    assert running(repo)
    (repo / "specs/iris.yaml").unlink()
    plan = mllc(repo, "plan").stdout
    assert "- iris/lifecycle" in plan
    mllc(repo, "apply", "--auto-approve")
    assert running(repo) == []
    assert not (repo / "pipelines/iris").exists()


def test_secrets_are_never_written_or_printed(tmp_path: Path) -> None:
    """A token given as env:NAME is used, and its value appears in no output and no file."""
    repo = make_repo(tmp_path / "repo", free_port(), token=True)
    port = port_of(repo)
    try:
        missing = mllc(repo, "apply", "--auto-approve", check=False)
        assert missing.returncode == 1 and "MLLC_TEST_TOKEN" in missing.stderr
        secret_env = {"MLLC_TEST_TOKEN": SECRET, "AWS_SECRET_ACCESS_KEY": SECRET + "-aws"}
        outputs = [
            mllc(repo, *args, env=secret_env)
            for args in (
                ("validate",),
                ("compile",),
                ("plan",),
                ("plan", "--json"),
                ("apply", "--auto-approve"),
                ("status", "--json"),
                ("predict", "iris", "--env", "staging", json.dumps(ROWS)),
            )
        ]
        assert infer(port)[0] == 401  # no token: refused
        assert infer(port, SECRET)[0] == 200
        texts = [p.stdout + p.stderr for p in outputs]
        history = subprocess.run(
            ["git", "log", "--all", "-p", "--format=%B"], cwd=repo, capture_output=True, text=True
        ).stdout
        tags = subprocess.run(
            ["git", "tag", "-n999"], cwd=repo, capture_output=True, text=True
        ).stdout
        texts += [history, tags]
        for path in repo.rglob("*"):
            if path.is_file() and ".git" not in path.parts and "cache" not in path.parts:
                texts.append(path.read_bytes().decode("utf-8", "replace"))
        leaked = [t[:200] for t in texts if SECRET in t]
        assert not leaked, leaked
        assert (repo / ".mllc" / "journal.jsonl").is_file()  # was searched too
    finally:
        stop_all(repo)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_predict_reads_csv_and_reports_a_missing_server(repo: Path, tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    cols = list(ROWS[0])
    csv.write_text(
        ",".join(cols) + "\n" + "\n".join(",".join(str(r[c]) for c in cols) for r in ROWS) + "\n"
    )
    none = mllc(repo, "predict", "iris", "--env", "staging", "--input", str(csv), check=False)
    assert none.returncode == 1 and "no server runs iris/staging" in none.stderr
    mllc(repo, "apply", "--auto-approve")
    out = mllc(repo, "predict", "iris", "--env", "staging", "--input", str(csv), "--json").stdout
    assert json.loads(out)["model_version"] == "v1.0.0"


def test_kubernetes_environment_without_a_cluster(tmp_path: Path) -> None:
    """No cluster here: the manifests are written and valid, plan says the cluster is out of
    reach, and apply exits 1 for that environment (the local one is served all the same)."""
    repo = make_repo(tmp_path / "repo", free_port())
    spec = repo / "specs/iris.yaml"
    data = yaml.safe_load(spec.read_text())
    data["environments"]["production"] = {
        "target": "kubernetes",
        "model": "latest",
        "after": "staging",
        "kubernetes": {"namespace": "ml", "replicas": 2, "storage_uri": "s3://models"},
    }
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    outside = {"KUBECONFIG": str(tmp_path / "no-kubeconfig")}  # never a real cluster
    try:
        # v1.0.0 has not run in staging before this apply: production waits for the next.
        first = mllc(repo, "apply", "--auto-approve", check=False, env=outside)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "production: nothing to deploy" in first.stdout + first.stderr
        assert running(repo)
        second = mllc(repo, "apply", "--auto-approve", check=False, env=outside)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "Traceback" not in second.stderr
        assert running(repo), "the local environment is served all the same"
        manifest = repo / "deploy/iris/production/inferenceservice.yaml"
        service = yaml.safe_load(manifest.read_text())
        assert service["kind"] == "InferenceService"
        assert service["spec"]["predictor"]["model"]["storageUri"] == "s3://models/iris/v1.0.0"
        plan = mllc(repo, "plan", "--detailed-exitcode", check=False, env=outside)
        assert plan.returncode == 2
        assert "iris/deployment/production" in plan.stdout
        again = mllc(repo, "apply", "--auto-approve", check=False, env=outside)
        assert again.returncode == 1 and "error:" in again.stderr
    finally:
        stop_all(repo)
