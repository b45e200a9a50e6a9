"""wins_on_replay through apply, with a real local server: mllc apply trains, registers and
deploys v1.0.0 (the first version: nothing to replay), real V2 requests go to its server,
which captures them; a much worse version registered next is replayed by apply against
v1.0.0 on those requests and kept out (the server still answers with v1.0.0, the
journal says why); a good one replays, enters, and the registry's assignment carries the
verdict. No timing is asserted (max_p95_ratio 1000000); waits poll with a deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mllc.apply.journal import last_apply
from mllc.registry import assignments, register
from mllc.targets import local
from tests.test_deploy import free_port, make_repo, mllc, stop_all
from tests.test_replay import FEATURES, git, iris, store

NAME = "iris"
REQUESTS = 40
PASSING = {"accuracy": 0.95, "f1_macro": 0.95}  # on paper: only the replay tells them apart


def _spec(repo: Path) -> None:
    path = repo / "specs" / "iris.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    staging = data["environments"]["staging"]
    staging["require"] = ["wins_on_replay"]
    staging["replay"] = {"min_requests": 30, "max_disagreement": 0.1, "max_p95_ratio": 1000000}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    git(repo, "commit", "-qam", "staging requires wins_on_replay")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    port = free_port()
    path = make_repo(tmp_path / "repo", port)
    try:
        _spec(path)
        mllc(path, "apply", "--auto-approve")
        yield path
    finally:
        stop_all(path)


def _port(repo: Path) -> int:
    data = yaml.safe_load((repo / "specs" / "iris.yaml").read_text(encoding="utf-8"))
    return int(data["environments"]["staging"]["port"])


def _send(repo: Path, rows: Any) -> list[str]:
    """One V2 request per row; the version that answered each."""
    from mllc.ops.predict import read_rows

    answered = []
    for _, row in rows.iterrows():
        body = read_rows(json.dumps([{c: float(row[c]) for c in FEATURES}]))
        status, reply = local.request(
            "127.0.0.1", _port(repo), "POST", "/v2/models/iris/infer", body
        )
        assert status == 200, reply
        answered.append(reply["model_version"])
    return answered


def _captured(repo: Path) -> int:
    path = repo / ".mllc" / "capture" / NAME / "staging" / "requests.jsonl"
    return len(path.read_text(encoding="utf-8").splitlines()) if path.is_file() else 0


def _wait_captured(repo: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while _captured(repo) < count:
        assert time.monotonic() < deadline, f"{_captured(repo)} captured, not {count}"
        time.sleep(0.05)


def _register(repo: Path, model: Any, version: str) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", f"train {version} elsewhere")
    md5 = store(repo, model)
    got = register(repo, NAME, git(repo, "rev-parse", "HEAD"), md5, {"test": PASSING}, {})
    assert got.version == version


def _deploy_detail(repo: Path) -> dict[str, Any]:
    run = last_apply(repo)
    assert run is not None
    (entry,) = [e for e in run.entries if e.step.endswith("staging") and e.event == "done"]
    return entry.detail


def test_apply_keeps_a_much_worse_version_out_and_lets_a_good_one_in(repo: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    frame = iris()
    X, y = frame[FEATURES], frame["target"]
    assert set(_send(repo, frame.iloc[::3].head(REQUESTS))) == {"v1.0.0"}
    _wait_captured(repo, REQUESTS)

    _register(repo, DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y), "v1.1.0")
    plan = mllc(repo, "plan")
    assert (
        "staging: v1.0.0 → v1.1.0 (latest version passing the gates; wins_on_replay: known "
        f"after apply ({REQUESTS} captured request(s) of staging))"
    ) in plan.stdout, plan.stdout
    proc = mllc(repo, "apply", "--auto-approve")
    assert (
        f"staging: replaying {REQUESTS} captured requests of staging against v1.1.0 and v1.0.0"
    ) in proc.stdout, proc.stdout
    assert "wins_on_replay: v1.1.0 vs v1.0.0 fails: disagreement " in proc.stdout
    assert set(_send(repo, frame.head(3))) == {"v1.0.0"}  # the server still answers with it
    assert [a.version for a in assignments(repo, NAME)["staging"]] == ["v1.0.0"]
    detail = _deploy_detail(repo)
    assert detail["reason"].startswith(
        "latest version passing the gates (v1.1.0 fail them); wins_on_replay: v1.1.0 vs v1.0.0 "
        "fails: disagreement "
    ), detail

    _register(repo, RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y), "v1.2.0")
    proc = mllc(repo, "apply", "--auto-approve")
    assert (
        f"staging: replaying {REQUESTS + 3} captured requests of staging against v1.2.0 and v1.0.0"
    ) in proc.stdout, proc.stdout
    assert set(_send(repo, frame.head(3))) == {"v1.2.0"}
    history = assignments(repo, NAME)["staging"]
    assert [a.version for a in history] == ["v1.0.0", "v1.2.0"]
    payload = history[-1].extra  # the assignment tag's JSON
    assert payload["replay"].startswith("wins_on_replay: disagreement "), payload
    assert payload["replay"].endswith(f" on {REQUESTS + 3} requests (no labelled feedback: no "
                                      "metric), v1.2.0 vs v1.0.0")  # fmt: skip
    assert _deploy_detail(repo)["replay"] == payload["replay"]


def test_preview_replays_the_previewed_model_against_what_the_environment_runs(
    repo: Path,
) -> None:
    from mllc.observe.replay import read_record
    from mllc.policy.replay import judge
    from mllc.registry import list_versions
    from mllc.spec.rollout import Replay

    _send(repo, iris().iloc[::3].head(REQUESTS))
    _wait_captured(repo, REQUESTS)
    path = repo / "specs" / "iris.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["models"]["logreg"]["params"]["C"] = 0.3  # retrained: a model not registered yet
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    git(repo, "commit", "-qam", "another C")
    proc = mllc(repo, "preview", "--format", "json", check=False)
    assert proc.returncode in (0, 2), proc.stderr
    found = json.loads(proc.stdout)
    (lifecycle,) = found["lifecycles"]
    (staging,) = lifecycle["environments"]
    md5 = lifecycle["model_md5"]
    v1 = next(v for v in list_versions(repo, NAME) if v.version == "v1.0.0")
    assert md5 != v1.model_md5
    record = read_record(repo, NAME, "staging", md5, v1.model_md5)
    assert record is not None and record.numbers.requests == REQUESTS
    limits = Replay(min_requests=30, max_disagreement=0.1, max_p95_ratio=1000000)
    verdict = judge(record.numbers, limits)  # the recorded numbers, judged as the spec says
    assert (staging["replay"], staging["replay_passed"]) == (verdict.text, not verdict.failed)
    assert (
        f"staging: replaying {REQUESTS} captured requests of staging against "
        f"{lifecycle['new_version']} and v1.0.0"
    ) in proc.stderr + proc.stdout
