"""Rollouts on the local target, end to end: real training on iris, real servers on
127.0.0.1 and real V2 traffic between applies.

Each test drives traffic until the server's rollout file shows the step's
``min_requests`` (polling the file, never a fixed sleep), then plans and applies.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_repo import lock_id_from
from test_deploy import free_port, make_repo, mllc, stop_all

from mllc.ops.predict import read_rows
from mllc.registry import assignments
from mllc.targets import local

pytestmark = pytest.mark.slow
ENV = "production"
MIN = 12  # min_requests of every step: small, the suite runs on 2 cores


def _iris_rows() -> list[dict[str, float]]:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.drop(columns=["target"])
    return [{str(k): float(v) for k, v in row.items()} for row in frame.to_dict("records")]


ROWS = _iris_rows()


def write_spec(
    repo: Path, rollout: dict[str, Any], models: dict[str, Any], gates: list[str]
) -> None:
    path = repo / "specs" / "iris.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["models"] = models
    data["gates"] = gates
    port = data["environments"]["staging"]["port"] if "staging" in data["environments"] else None
    env = data["environments"].get(ENV) or {"target": "local", "model": "latest", "port": port}
    env["rollout"] = rollout
    data["environments"] = {ENV: env}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def logreg(c: float) -> dict[str, Any]:
    return {"logreg": {"estimator": "sklearn.linear_model.LogisticRegression",
                       "params": {"C": c, "max_iter": 500}}}  # fmt: skip


CONSTANT = {"constant": {"estimator": "sklearn.dummy.DummyClassifier",
                         "params": {"strategy": "constant", "constant": 1}}}  # fmt: skip
CANARY = {
    "strategy": "canary",
    "steps": [10, 50, 100],
    "analysis": {"min_requests": MIN, "max_error_rate": 0.01, "max_disagreement": 0.2},
}
SHADOW = {"strategy": "shadow", "analysis": {"min_requests": MIN, "max_disagreement": 0.2}}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    path = make_repo(tmp_path / "repo", free_port())
    yield path
    stop_all(path)


def port_of(repo: Path) -> int:
    data = yaml.safe_load((repo / "specs/iris.yaml").read_text())
    return int(data["environments"][ENV]["port"])


def live(repo: Path) -> list[local.Server]:
    return [s for s in local.servers(repo, "iris", ENV) if local.alive(s.pid)]


def split(repo: Path) -> dict[str, Any] | None:
    """The rollout the one live server runs (its state file's ``rollout``), or None."""
    (server,) = live(repo)
    return server.rollout if isinstance(server.rollout, dict) else None


def numbers(repo: Path) -> dict[str, Any]:
    recorded = split(repo)
    assert recorded is not None
    path = repo / recorded["file"]  # relative to the repository, the server's working dir
    return json.loads(path.read_text()) if path.is_file() else {}


def send(port: int, n: int, start: int = 0) -> list[tuple[int, str | None, Any, int]]:
    """``n`` one-row V2 requests (rows of iris in turn): (status, version, prediction, row)."""
    out = []
    for i in range(start, start + n):
        body = read_rows(json.dumps([ROWS[i % len(ROWS)]]))
        status, answer = local.request("127.0.0.1", port, "POST", "/v2/models/iris/infer", body)
        version = answer.get("model_version") if isinstance(answer, dict) else None
        data = answer["outputs"][0]["data"][0] if status == 200 else None
        out.append((status, version, data, i % len(ROWS)))
    return out


def drive(repo: Path, need: int = MIN) -> list[tuple[int, str | None, Any, int]]:
    """Traffic until the rollout file shows ``need`` requests of the candidate, compared."""
    port, sent = port_of(repo), []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = numbers(repo)
        cand = now.get("candidate_stats") or {}
        if cand.get("requests", 0) >= need and now.get("compared", 0) >= need:
            return sent
        sent += send(port, 20, len(sent))
    raise AssertionError(f"the rollout file never showed {need} requests: {numbers(repo)}")


def canary_tags(repo: Path) -> list[str]:
    history = assignments(repo, "iris", rollouts=True)
    return [a.tag for s in ("production_canary", "production_shadow") for a in history.get(s, [])]


def runs(repo: Path) -> str | None:
    events = [a for a in assignments(repo, "iris").get(ENV, []) if not a.unassign]
    return events[-1].version if events else None


def plan_json(repo: Path) -> dict[str, Any]:
    plan = json.loads(mllc(repo, "plan", "--json").stdout)
    (change,) = [c for c in plan["changes"] if c["address"] == f"iris/deployment/{ENV}"]
    return change


def first_version(repo: Path, rollout: dict[str, Any]) -> None:
    """v1.0.0 goes straight in: the first version an environment runs needs no rollout."""
    write_spec(repo, rollout, logreg(1.0), ["accuracy >= 0.9"])
    out = mllc(repo, "apply", "--auto-approve").stdout
    assert "canary" not in out and "shadow" not in out, out
    assert split(repo) is None and runs(repo) == "v1.0.0"


def test_a_good_canary_walks_its_steps_and_takes_over(repo: Path) -> None:
    first_version(repo, CANARY)
    write_spec(repo, CANARY, logreg(0.5), ["accuracy >= 0.9"])  # a new, similar model
    out = mllc(repo, "apply", "--auto-approve").stdout
    assert "production: canary v1.1.0 at 10%, step 1 of 3 (v1.0.0 answers the rest)" in out
    (tag,) = canary_tags(repo)
    assert split(repo) == {**split(repo), "mode": "canary", "weight": 10, "rollout_id": tag}
    assert runs(repo) == "v1.0.0"  # the environment's own record moves at completion only

    # not enough traffic yet: the plan waits and says for what
    change = plan_json(repo)
    assert change["action"] == "no-op" and change["rollout"]["decision"] == "wait"
    assert "waiting for 0 of 12 requests" in change["reasons"][0]
    status = mllc(repo, "status").stdout
    waiting = "waiting for 0 of 12 requests"
    assert f"rollout: canary v1.1.0 at 10% (step 1 of 3, stable v1.0.0): {waiting}" in status

    for weight, after in ((10, 50), (50, 100)):
        answers = drive(repo)
        assert {a[0] for a in answers} == {200}
        assert {a[1] for a in answers} == {"v1.0.0", "v1.1.0"}
        share = sum(a[1] == "v1.1.0" for a in answers)
        assert abs(share - len(answers) * weight / 100) <= 1  # the deterministic split
        change = plan_json(repo)
        assert change["rollout"]["decision"] == "advance"
        assert (change["rollout"]["weight_from"], change["rollout"]["weight"]) == (weight, after)
        moves = f"production: canary v1.1.0 at {weight}% → {after}% ("
        assert change["reasons"][0].startswith(moves)
        mllc(repo, "apply", "--auto-approve")
        assert split(repo)["weight"] == after
    doc = json.loads(mllc(repo, "status", "--json").stdout)
    (dep,) = doc["lifecycles"][0]["deployments"]
    keys = ("strategy", "candidate", "stable", "weight", "step", "of")
    assert {k: dep["rollout"][k] for k in keys} == {
        "strategy": "canary", "candidate": "v1.1.0", "stable": "v1.0.0", "weight": 100,
        "step": 3, "of": 3,
    }  # fmt: skip

    drive(repo)
    text = mllc(repo, "plan").stdout
    assert "production: canary v1.1.0 at 100% → takes over from v1.0.0 (" in text
    mllc(repo, "apply", "--auto-approve")
    assert split(repo) is None and runs(repo) == "v1.1.0"
    assert {a[1] for a in send(port_of(repo), 10)} == {"v1.1.0"}
    assert len(canary_tags(repo)) == 4  # three steps and the end of the rollout
    assert "No changes" in mllc(repo, "plan").stdout
    journal = [json.loads(line) for line in (repo / ".mllc/journal.jsonl").read_text().splitlines()]
    done = [e["detail"]["rollout"]["action"] for e in journal
            if e["event"] == "done" and "rollout" in e["detail"]]  # fmt: skip
    assert done == ["start", "advance", "advance", "complete"]


def test_a_bad_canary_is_rolled_back_and_not_tried_again(repo: Path) -> None:
    first_version(repo, CANARY)
    write_spec(repo, CANARY, CONSTANT, [])  # always answers class 1
    mllc(repo, "apply", "--auto-approve")
    assert split(repo) is not None
    drive(repo)
    text = mllc(repo, "plan").stdout
    assert "production: canary v1.1.0 at 10% → rolled back to v1.0.0: disagreement" in text
    change = plan_json(repo)
    assert change["rollout"]["decision"] == "rollback"
    assert change["rollout"]["reason"].startswith("disagreement ")
    assert change["rollout"]["reason"].endswith("% > 20%")
    mllc(repo, "apply", "--auto-approve")
    assert split(repo) is None and runs(repo) == "v1.0.0"
    assert {a[1] for a in send(port_of(repo), 10)} == {"v1.0.0"}
    # the next plan and apply pass over v1.1.0 and say why
    text = mllc(repo, "plan").stdout
    assert "v1.1.0 was rolled back in production: disagreement" in text
    (pid,) = [s.pid for s in live(repo)]
    tags = canary_tags(repo)
    mllc(repo, "apply", "--auto-approve")
    assert [s.pid for s in live(repo)] == [pid] and canary_tags(repo) == tags


def test_a_shadow_changes_no_answer_and_records_the_comparison(repo: Path) -> None:
    first_version(repo, SHADOW)
    before = {i: a[2] for a in send(port_of(repo), len(ROWS)) for i in [a[3]]}
    write_spec(repo, SHADOW, CONSTANT, [])  # a candidate that disagrees, seen only in copies
    out = mllc(repo, "apply", "--auto-approve").stdout
    assert "production: shadow v1.1.0, step 1 of 1 (v1.0.0 answers, v1.1.0 sees a copy" in out
    answers = drive(repo)
    assert {(a[0], a[1]) for a in answers} == {(200, "v1.0.0")}
    assert all(a[2] == before[a[3]] for a in answers)  # the running version's own answers
    now = numbers(repo)
    assert now["mode"] == "shadow" and now["compared"] >= MIN and now["differing"] > 0
    assert sum(now["predictions"]["candidate"].values()) == now["compared"]
    change = plan_json(repo)
    assert change["rollout"]["decision"] == "rollback"  # it disagrees: it never takes over
    # a good shadow takes over after its analysis
    write_spec(repo, SHADOW, logreg(0.5), ["accuracy >= 0.9"])
    mllc(repo, "apply", "--auto-approve")  # aborts the constant model's shadow
    mllc(repo, "apply", "--auto-approve")  # starts v1.2.0's
    assert split(repo)["candidate"]["version"] == "v1.2.0"
    drive(repo)
    assert "production: shadow v1.2.0 → takes over from v1.0.0 (" in mllc(repo, "plan").stdout
    mllc(repo, "apply", "--auto-approve")
    assert split(repo) is None and runs(repo) == "v1.2.0"


def proc_pid(message: str) -> str:
    return message.split("held by pid ", 1)[1].split()[0]


HOOK = """#!/bin/sh
# reference-transaction: kill the apply (git's parent) once the step's tag is committed
[ "$1" = committed ] || exit 0
if grep -q "production_canary#" ; then
    rm -f "$0"
    apply=$(awk '{print $4}' /proc/$PPID/stat)
    kill -9 "$apply"
fi
exit 0
"""


def test_a_kill_between_the_tag_and_the_server_switch_converges(repo: Path) -> None:
    first_version(repo, CANARY)
    write_spec(repo, CANARY, logreg(0.5), ["accuracy >= 0.9"])
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(HOOK, encoding="utf-8")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    proc = subprocess.run(
        [sys.executable, "-m", "mllc", "apply", "--auto-approve"],
        cwd=repo, env={**os.environ, "NO_COLOR": "1",
                       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stdout + proc.stderr
    assert not hook.exists()
    (tag,) = canary_tags(repo)  # the registry has the step: the intent
    assert split(repo) is None  # the target never switched
    change = plan_json(repo)
    assert change["rollout"]["decision"] == "converge"
    assert change["reasons"][0] == (
        f"production: canary v1.1.0 at 10%, step 1 of 3: the target runs no rollout, not the "
        f"recorded step {tag}"
    )
    # the killed apply's lock is reported, and released by its id, the way a person would
    stale = mllc(repo, "apply", "--auto-approve", check=False)
    assert (
        stale.returncode == 1 and f"no process {proc_pid(stale.stderr)} is running" in stale.stderr
    )
    mllc(repo, "force-unlock", lock_id_from(stale.stderr))
    out = mllc(repo, "apply", "--auto-approve").stdout
    assert "interrupted during: iris/deploy/production" in out
    assert split(repo)["rollout_id"] == tag and canary_tags(repo) == [tag]  # no advance
    assert plan_json(repo)["rollout"]["decision"] == "wait"


def test_on_failure_hold_keeps_the_step_until_the_spec_changes(repo: Path) -> None:
    hold = {**CANARY, "on_failure": "hold"}
    first_version(repo, hold)
    write_spec(repo, hold, CONSTANT, [])
    mllc(repo, "apply", "--auto-approve")
    (step,) = canary_tags(repo)
    drive(repo)
    change = plan_json(repo)
    assert change["action"] == "update" and change["rollout"]["decision"] == "hold"
    assert change["reasons"][0].startswith("production: canary v1.1.0 at 10% held: disagreement ")
    (pid,) = [s.pid for s in live(repo)]
    mllc(repo, "apply", "--auto-approve")
    assert [s.pid for s in live(repo)] == [pid] and split(repo)["rollout_id"] == step
    (_, held) = canary_tags(repo)  # the hold, recorded once
    text = mllc(repo, "plan").stdout
    assert "(on_failure: hold; edit the spec to go on)" in text and "No changes" in text
    mllc(repo, "apply", "--auto-approve")
    assert canary_tags(repo) == [step, held]
    # a looser limit releases it: judged again, it advances
    loose = {**hold, "analysis": {**CANARY["analysis"], "max_disagreement": 1.0}}
    write_spec(repo, loose, CONSTANT, [])
    assert plan_json(repo)["rollout"]["decision"] == "advance"
