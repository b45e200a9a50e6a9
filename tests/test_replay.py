"""require: [wins_on_replay] end to end: real Git repositories, real scikit-learn models
trained here and stored in the DVC cache by their md5, registered with the registry's
own functions, and captured requests in the local server's capture format. Promote
(which replays, as apply does) refuses a much worse candidate with its numbers and lets
a good one in with the verdict in its branch's message; plan shows the recorded verdict
without loading a model; too few captured requests block with their count.

No timing is asserted: the spec allows any latency ratio (max_p95_ratio 1000000).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mllc.observe.replay import read_record, record_path
from mllc.registry import assign, assignments, register

ROOT = Path(__file__).resolve().parent.parent
NAME = "iris"
ENVIRONMENTS = """\
environments:
  production:
    target: local
    model: "v1.0.0"
    port: 8192
    require: [wins_on_replay]
    replay: {min_requests: 30, max_disagreement: 0.1, max_metric_drop: 0.02, max_p95_ratio: 1000000}
"""
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
METRICS = {"accuracy": 0.95, "f1_macro": 0.95}  # every version passes the gates on paper
LABELLED = 40  # rows of the labelled batch mllc monitor kept


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def mllc(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mllc", *args],
        cwd=repo,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=300,
    )


def iris() -> Any:
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame


def models() -> dict[str, Any]:
    """v1.0.0 runs; v1.1.0 agrees with it; v1.2.0 is a one-split stump (two classes)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    frame = iris()
    X, y = frame[FEATURES], frame["target"]
    return {
        "v1.0.0": LogisticRegression(max_iter=1000).fit(X, y),
        "v1.1.0": RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y),
        "v1.2.0": DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y),
    }


def store(repo: Path, model: Any) -> str:
    """The model's bytes in the DVC cache under their md5, as dvc repro leaves them."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()
    md5 = hashlib.md5(data).hexdigest()
    path = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return md5


def spec_text() -> str:
    text = (ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8")
    return text[: text.index("environments:")] + ENVIRONMENTS


def capture(repo: Path, rows: Any, running: Any) -> None:
    """One capture line per request, as the server writes them (mllc.serve.capture)."""
    folder = repo / ".mllc" / "capture" / NAME / "production"
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (_, row) in enumerate(rows.iterrows()):
        inputs = {c: [float(row[c])] for c in FEATURES}
        predicted = running.predict(rows[FEATURES].iloc[i : i + 1]).tolist()
        record = {
            "time": "2025-01-01T00:00:00.000Z",
            "id": f"r{i}",
            "version": "v1.0.0",
            "inputs": inputs,
            "outputs": {"predict": predicted},
        }
        lines.append(json.dumps(record, separators=(",", ":")) + "\n")
    half = len(lines) // 2  # rotated: the older half in requests.1.jsonl
    (folder / "requests.1.jsonl").write_text("".join(lines[:half]), encoding="utf-8")
    (folder / "requests.jsonl").write_text("".join(lines[half:]), encoding="utf-8")


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    return models()


@pytest.fixture
def repo(tmp_path: Path, trained: dict[str, Any]) -> Path:
    path = tmp_path / "repo"
    (path / "specs").mkdir(parents=True)
    (path / "specs" / "iris.yaml").write_text(spec_text(), encoding="utf-8")
    (path / ".gitignore").write_text("/.mllc/\n/.dvc/cache/\n", encoding="utf-8")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "spec")
    for version, model in trained.items():
        git(path, "commit", "-q", "--allow-empty", "-m", f"train {version}")
        md5 = store(path, model)
        got = register(path, NAME, git(path, "rev-parse", "HEAD"), md5, {"test": METRICS}, {})
        assert got.version == version
    assign(path, NAME, "v1.0.0", "production")
    frame = iris()
    capture(path, frame, trained["v1.0.0"])
    batch = path / "monitoring" / NAME / "production" / "batch.parquet"
    batch.parent.mkdir(parents=True)
    frame.iloc[::3].head(LABELLED).to_parquet(batch)
    return path


def expected(trained: dict[str, Any], candidate: str) -> dict[str, Any]:
    """The numbers a replay must measure, computed here from the models directly."""
    from sklearn.metrics import f1_score

    frame = iris()
    batch = frame.iloc[::3].head(LABELLED)
    mine = trained[candidate]
    theirs = trained["v1.0.0"]
    every = [frame[FEATURES], batch[FEATURES]]
    differ = sum(int((mine.predict(X) != theirs.predict(X)).sum()) for X in every)
    y = batch["target"]

    def f1(model: Any) -> float:
        return round(float(f1_score(y, model.predict(batch[FEATURES]), average="macro")), 6)

    def recall(model: Any, label: int) -> float:
        rows = batch[y == label]
        return float((model.predict(rows[FEATURES]) == label).mean())

    return {
        "environment": "production",
        "candidate": candidate,
        "running": "v1.0.0",
        "requests": len(frame),
        "differing": differ,
        "predictions": len(frame) + LABELLED,
        "labelled": LABELLED,
        "metric": {"name": "f1_macro", "candidate": f1(mine), "running": f1(theirs),
                   "higher_is_better": True},
        "groups": [
            {"name": str(c), "candidate": recall(mine, c), "running": recall(theirs, c),
             "higher_is_better": True}
            for c in (0, 1, 2)
        ],
        "group_kind": "class",
    }  # fmt: skip


def recorded(repo: Path, candidate: str) -> dict[str, Any]:
    versions = {v: a for v, a in _md5s(repo).items()}
    path = repo / record_path(NAME, "production", versions[candidate], versions["v1.0.0"])
    data = json.loads(path.read_text(encoding="utf-8"))
    numbers: dict[str, Any] = data["numbers"]
    p95 = numbers.pop("p95_ms")
    assert len(p95) == 2 and all(isinstance(v, float) for v in p95)
    return numbers


def _md5s(repo: Path) -> dict[str, str]:
    from mllc.registry import list_versions

    return {v.version: v.model_md5 for v in list_versions(repo, NAME)}


def test_a_much_worse_candidate_is_refused_with_its_numbers(
    repo: Path, trained: dict[str, Any]
) -> None:
    proc = mllc(repo, "promote", NAME, "v1.2.0", "--to", "production")
    assert proc.returncode == 1, proc.stdout
    want = expected(trained, "v1.2.0")
    assert recorded(repo, "v1.2.0") == want
    share = want["differing"] / want["predictions"]
    assert share > 0.1  # the stump never predicts one of the three classes
    m = want["metric"]
    worst = min(want["groups"], key=lambda g: g["candidate"] - g["running"])
    assert proc.stderr.startswith(
        "error: iris v1.2.0 cannot go to production: wins_on_replay: v1.2.0 vs v1.0.0 fails: "
        f"disagreement {share * 100:.1f}% > 10%; f1_macro {m['candidate']:.4g} vs "
        f"{m['running']:.4g} ({m['candidate'] - m['running']:+.3f}, a drop of "
        f"{m['running'] - m['candidate']:.3g} > 0.02); worst class {worst['name']} "
        f"{worst['candidate'] - worst['running']:+.3f} (a drop of "
        f"{worst['running'] - worst['candidate']:.3g} > 0.02) ("
    ), proc.stderr
    assert "on 150 requests (40 labelled))" in proc.stderr
    assert git(repo, "branch", "--list", "mllc/*") == ""


def test_a_good_candidate_gets_its_branch_with_the_verdict_and_plan_shows_it(
    repo: Path, trained: dict[str, Any]
) -> None:
    proc = mllc(repo, "promote", NAME, "v1.1.0", "--to", "production")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(
        "production: replaying 150 captured requests of production against v1.1.0 and v1.0.0\n"
        "Created branch mllc/promote-iris-v1.1.0-production"
    ), proc.stdout
    want = expected(trained, "v1.1.0")
    assert recorded(repo, "v1.1.0") == want
    share = want["differing"] / want["predictions"]
    assert share <= 0.1
    branch = "mllc/promote-iris-v1.1.0-production"
    message = git(repo, "log", "-1", "--format=%B", branch).splitlines()
    rules = message[message.index("Promotion rules:") + 1 :]
    assert len(rules) == 1 and rules[0].startswith(
        f"  wins_on_replay: disagreement {share * 100:.1f}% ≤ 10%, f1_macro "
    ), message
    assert rules[0].endswith(" on 150 requests (40 labelled), v1.1.0 vs v1.0.0")
    # plan, on the promoted spec: the recorded verdict, the same text, never a model load
    git(repo, "checkout", "-q", branch)
    after = mllc(repo, "plan")
    # (no server runs here: the plan would start one)
    assert (
        f"production: nothing running → v1.1.0 (pinned to v1.1.0; {rules[0].strip()} (replayed "
        in (after.stdout)
    ), after.stdout + after.stderr


def test_plan_without_a_recorded_replay_says_apply_replays_it(repo: Path) -> None:
    spec = repo / "specs" / "iris.yaml"
    spec.write_text(spec.read_text().replace('model: "v1.0.0"', 'model: "v1.1.0"'))
    proc = mllc(repo, "plan")
    assert (
        "production: nothing running → v1.1.0 (pinned to v1.1.0; wins_on_replay: known after apply "
        "(150 captured request(s) of production))"
    ) in proc.stdout, proc.stdout + proc.stderr
    assert not (repo / ".mllc" / "replay").exists()  # plan replays nothing


def test_fewer_captured_requests_than_min_requests_block_with_the_count(repo: Path) -> None:
    folder = repo / ".mllc" / "capture" / NAME / "production"
    (folder / "requests.1.jsonl").unlink()
    lines = (folder / "requests.jsonl").read_text().splitlines(keepends=True)
    (folder / "requests.jsonl").write_text("".join(lines[:29]) + "not a capture record\n")
    proc = mllc(repo, "promote", NAME, "v1.1.0", "--to", "production")
    assert proc.returncode == 1
    assert proc.stderr == (
        "error: iris v1.1.0 cannot go to production: wins_on_replay: 29 captured request(s) "
        "of production, fewer than min_requests 30: no verdict, so v1.1.0 stays out\n"
    )
    assert not (repo / ".mllc" / "replay").exists()  # no model was loaded for it
    # plan knows it already, from the count alone: the pinned version is blocked
    spec = repo / "specs" / "iris.yaml"
    spec.write_text(spec.read_text().replace('model: "v1.0.0"', 'model: "v1.1.0"'))
    plan = mllc(repo, "plan")
    assert plan.returncode == 1
    assert (
        "blocked: wins_on_replay: 29 captured request(s) of production, fewer than "
        "min_requests 30: no verdict, so v1.1.0 stays out"
    ) in plan.stdout, plan.stdout + plan.stderr


def test_the_first_version_of_an_environment_has_nothing_to_replay(repo: Path) -> None:
    spec = repo / "specs" / "iris.yaml"
    spec.write_text(spec.read_text().replace("  production:", "  canary:", 1))
    git(repo, "commit", "-qam", "a new environment")
    proc = mllc(repo, "promote", NAME, "v1.2.0", "--to", "canary")
    assert proc.returncode == 0, proc.stderr
    message = git(repo, "log", "-1", "--format=%B", "mllc/promote-iris-v1.2.0-canary")
    assert "Promotion rules:\n  wins_on_replay: canary runs no version yet, nothing to replay" in (
        message
    )
    assert assignments(repo, NAME).get("canary") is None


def test_a_record_is_read_back_as_the_numbers_it_holds(repo: Path) -> None:
    assert mllc(repo, "promote", NAME, "v1.1.0", "--to", "production").returncode == 0
    md5 = _md5s(repo)
    found = read_record(repo, NAME, "production", md5["v1.1.0"], md5["v1.0.0"])
    assert found is not None and found.numbers.requests == 150
    assert read_record(repo, NAME, "production", md5["v1.2.0"], md5["v1.0.0"]) is None
