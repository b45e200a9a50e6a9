"""The local target end to end: apply starts real V2 servers, plan sees them, apply heals them.

Real git, DVC, training and server processes on 127.0.0.1 (free ports). Servers
started by apply outlive it; every test stops what it started.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
    from mllc.ops.predict import read_rows

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
    assert out.splitlines()[0] == "# iris v1.0.0" and len(out.splitlines()) == 5
    # a header: the classes come from the version's tagged commit (3 rows may not show all)
    assert out.splitlines()[1].split() == ["row", "prediction", "P(0)", "P(1)", "P(2)"]
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


# ---------------------------------------------------------------- settings of a running server


def _serve_options(*extra: str) -> dict[str, Any]:
    """What a server started with these arguments records in its state file as its settings."""
    from mllc.serve.server import _parser, _settings

    argv = ["--name", "iris", "--env", "staging", "--version", "v1.0.0",
            "--model-md5", "0" * 32, "--model-file", "model.joblib", *extra]  # fmt: skip
    args = _parser().parse_args(argv)
    return _settings(args, args.port)


def test_every_server_option_is_a_deployed_and_compared_setting() -> None:
    """A new ``mllc serve`` option (a limit, a deadline) must be a Settings field, passed by
    deploy and compared by observe; its default must be the server's."""
    settings = local.Settings.from_record("iris", "staging", {"port": 8081})
    server_defaults = _serve_options()
    assert set(settings.options()) == set(server_defaults)
    for name, value in local.Settings("iris", "staging", "127.0.0.1", 8081, None).options().items():
        if name not in ("host", "port", "token_env", "capture_dir"):
            assert value == server_defaults[name], name
    # what deploy passes is what the server parses
    assert _serve_options(*settings.arguments()) == settings.options()


def _state(settings: dict[str, Any] | None) -> local.Server:
    return local.Server(Path("server-x.json"), 1, "v1.0.0", "0" * 32, "127.0.0.1", 8081, settings)


def test_any_setting_that_differs_is_named() -> None:
    """Each option, changed alone, is reported by name, old → new; tokens by reference only."""
    want = local.Settings.from_record("iris", "staging", {"port": 8081, "token": "env:TOK"})
    assert local.settings_drift(want, _state(want.options())) == []
    for name, value in want.options().items():
        other = "10.0.0.1" if name == "host" else "OTHER" if isinstance(value, str) else 7
        changed = {**want.options(), name: other}
        (line,) = local.settings_drift(want, _state(changed))
        assert line.split(":", 1)[0] in (name, "token", "capture"), line
        assert " → " in line, line
    no_token = {**want.options(), "token_env": None}
    assert local.settings_drift(want, _state(no_token)) == ["token: none → env:TOK"]
    host = {**want.options(), "host": "0.0.0.0"}
    assert local.settings_drift(want, _state(host)) == ["host: 0.0.0.0 → 127.0.0.1"]
    # a server that does not say what it runs with (an older mllc) is restarted
    assert local.settings_drift(want, _state(None))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "ml.example.com"])
def test_serve_refuses_a_non_loopback_host_without_a_token(tmp_path: Path, host: str) -> None:
    args = ["--name", "iris", "--env", "staging", "--version", "v1.0.0", "--model-md5", "0" * 32,
            "--model-file", str(tmp_path / "none.joblib"), "--port", str(free_port()),
            "--host", host]  # fmt: skip
    proc = mllc(tmp_path, "serve", *args, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"--host {host}" in proc.stderr and "--token-env" in proc.stderr, proc.stderr
    # loopback needs no token: it gets past the check (and stops at the missing model)
    loop = mllc(tmp_path, "serve", *args[:-1], "127.0.0.1", check=False)
    assert loop.returncode == 1 and "--token-env" not in loop.stderr, loop.stderr


def _apply_under_load(
    repo: Path, port: int, token: str | None, env: dict[str, str], status: int = 200
) -> None:
    """apply while a client sends requests: every one is answered with ``status`` (at most
    one reset in the hand-over instant), by the old server until the new one is ready."""
    answers: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                answers.append(infer(port, token)[0])
            except OSError:
                answers.append(0)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        out = mllc(repo, "apply", "--auto-approve", env=env)
    finally:
        stop.set()
        thread.join(10)
    assert "already serving" not in out.stdout + out.stderr
    assert answers and answers.count(status) >= len(answers) - 1, answers


def _edit_env(repo: Path, **changes: Any) -> None:
    spec = repo / "specs/iris.yaml"
    data = yaml.safe_load(spec.read_text())
    staging = data["environments"]["staging"]
    for key, value in changes.items():
        if value is None:
            staging.pop(key, None)
        else:
            staging[key] = value
    spec.write_text(yaml.safe_dump(data, sort_keys=False))


def _redeploy_plan(repo: Path, env: dict[str, str], *named: str) -> str:
    plan = mllc(repo, "plan", "--detailed-exitcode", check=False, env=env)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "iris/deployment/staging" in plan.stdout
    for text in named:
        assert text in plan.stdout, plan.stdout
    return plan.stdout


def _no_changes(repo: Path, env: dict[str, str]) -> None:
    plan = mllc(repo, "plan", "--detailed-exitcode", check=False, env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_server_settings_reach_the_running_server(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Token, its value, host and a limit: what runs differs from what is asked → a redeploy
    naming the setting → apply switches servers without downtime → the next plan is empty."""
    port = port_of(repo)
    mllc(repo, "apply", "--auto-approve")
    assert infer(port)[0] == 200

    # a token added to a running environment
    tok = {"MLLC_TEST_TOKEN": SECRET}
    _edit_env(repo, token="env:MLLC_TEST_TOKEN")
    plan = _redeploy_plan(repo, tok, "token: none → env:MLLC_TEST_TOKEN")
    assert SECRET not in plan
    (old,) = running(repo)
    _apply_under_load(repo, port, SECRET, tok)
    (new,) = running(repo)
    assert new.pid != old.pid
    assert infer(port)[0] == 401 and infer(port, SECRET)[0] == 200
    _no_changes(repo, tok)

    # the token's value rotated: the server must take the new one (the plan names no value)
    rotated = {"MLLC_TEST_TOKEN": SECRET + "-rotated"}
    plan = _redeploy_plan(repo, rotated, "token: env:MLLC_TEST_TOKEN")
    assert SECRET not in plan
    _apply_under_load(repo, port, None, rotated, status=401)
    assert infer(port, SECRET)[0] == 401 and infer(port, SECRET + "-rotated")[0] == 200
    _no_changes(repo, rotated)

    # host: beyond loopback (127.0.0.2 reaches 0.0.0.0, never 127.0.0.1) and back
    def exposed() -> bool:
        try:
            socket.create_connection(("127.0.0.2", port), timeout=2).close()
        except OSError:
            return False
        return True

    assert not exposed()
    _edit_env(repo, host="0.0.0.0")
    _redeploy_plan(repo, rotated, "host: 127.0.0.1 → 0.0.0.0")
    _apply_under_load(repo, port, SECRET + "-rotated", rotated)
    assert exposed()
    _no_changes(repo, rotated)
    _edit_env(repo, host=None)
    _redeploy_plan(repo, rotated, "host: 0.0.0.0 → 127.0.0.1")
    _apply_under_load(repo, port, SECRET + "-rotated", rotated)
    assert not exposed()
    assert infer(port, SECRET + "-rotated")[0] == 200
    _no_changes(repo, rotated)

    # a limit: a server started with a smaller body limit (by hand, or an older mllc)
    from mllc.registry import list_versions

    monkeypatch.setenv("MLLC_TEST_TOKEN", SECRET + "-rotated")
    (version,) = list_versions(repo, "iris")
    record = {"port": port, "token": "env:MLLC_TEST_TOKEN"}
    small = dataclasses.replace(
        local.Settings.from_record("iris", "staging", record), max_body_bytes=4096
    )
    local.deploy(repo, small, version, lambda line: None)
    many = json.dumps(ROWS * 200)  # about 15 KiB of V2 JSON

    def big() -> int:
        from mllc.ops.predict import read_rows

        path = "/v2/models/iris/infer"
        body = read_rows(many)
        return local.request("127.0.0.1", port, "POST", path, body, SECRET + "-rotated")[0]

    assert big() == 413
    _redeploy_plan(repo, rotated, "max_body_bytes: 4096 → 1048576")
    _apply_under_load(repo, port, SECRET + "-rotated", rotated)
    assert big() == 200
    assert len(running(repo)) == 1
    _no_changes(repo, rotated)

    # an interrupted switch left a second server on the port (both answer): one is kept
    wanted = local.Settings.from_record("iris", "staging", record)
    extra = local.serve_dir(repo, "iris", "staging") / "server-extra.json"
    model = local.model_file(repo, version.model_md5)
    argv = [sys.executable, "-m", "mllc.serve", "--name", "iris", "--env", "staging",
            "--version", version.version, "--model-md5", version.model_md5,
            "--model-file", str(model), "--state-file", str(extra),
            *wanted.arguments()]  # fmt: skip
    with subprocess.Popen(argv, cwd=repo, env=_env(rotated), stderr=subprocess.DEVNULL) as proc:
        deadline = time.monotonic() + 60
        while not extra.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert extra.is_file() and len(running(repo)) == 2
        _redeploy_plan(repo, rotated, "2 servers share the port")
        _apply_under_load(repo, port, SECRET + "-rotated", rotated)
        assert proc.wait(30) == 0  # stopped by the apply
    assert len(running(repo)) == 1
    _no_changes(repo, rotated)


def test_settings_reach_a_server_whose_version_no_longer_passes_the_gates(repo: Path) -> None:
    """Nothing is deployable, so what runs keeps running — with the token asked for."""
    port = port_of(repo)
    mllc(repo, "apply", "--auto-approve")
    spec = repo / "specs/iris.yaml"
    data = yaml.safe_load(spec.read_text())
    data["gates"] = ["accuracy < 0"]  # no version can pass
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    _edit_env(repo, token="env:MLLC_TEST_TOKEN")
    tok = {"MLLC_TEST_TOKEN": SECRET}
    _redeploy_plan(repo, tok, "staging keeps v1.0.0", "token: none → env:MLLC_TEST_TOKEN")
    _apply_under_load(repo, port, SECRET, tok)
    assert infer(port)[0] == 401
    status, answer = infer(port, SECRET)
    assert status == 200 and answer["model_version"] == "v1.0.0"
    assert len(running(repo)) == 1
    _no_changes(repo, tok)
