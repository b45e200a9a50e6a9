"""A rollout's records: GTO stage tags ``<name>#<env>_canary#N`` written with real Git and
read back by mllc and by the real ``gto`` CLI; environments never see them."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import isolate_git
from test_registry import MD5_A, MD5_B, at, commit, git, gto, tag_names

from mllc.policy.rollout import current, rolled_back
from mllc.registry import RegistryError, assign, assignments, register, rollouts


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path, monkeypatch)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    at(monkeypatch, 0)
    register(root, "iris", commit(root, "one"), MD5_A, {}, {})
    at(monkeypatch, 1)
    register(root, "iris", commit(root, "two"), MD5_B, {}, {})
    at(monkeypatch, 2)
    assign(root, "iris", "v1.0.0", "production", {})
    return root


def step(n: int, weight: int) -> dict[str, object]:
    return {"event": "step", "strategy": "canary", "step": n, "of": 3, "weight": weight,
            "stable": "v1.0.0"}  # fmt: skip


@pytest.mark.slow  # runs the gto CLI
def test_steps_and_completion_are_gto_stage_tags(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, 10)
    first = rollouts.record(repo, "iris", "v1.1.0", "production", "canary", step(1, 10))
    at(monkeypatch, 11)
    # the same version again is a new step, not an idempotent no-op
    second = rollouts.record(repo, "iris", "v1.1.0", "production", "canary", step(2, 50))
    assert (first.tag, second.tag) == ("iris#production_canary#2", "iris#production_canary#3")
    assert git(repo, "tag", "-l", "-n1", first.tag).split(None, 1)[1] == (
        "Assigning stage production_canary to artifact iris version v1.1.0"
    )
    assert gto(repo, "show", "--json")["iris"]["stage"] == {
        "production": "v1.0.0",
        "production_canary": "v1.1.0",
    }
    # every reader of an environment's assignments: the canary stage is not an environment
    assert list(assignments(repo, "iris")) == ["production"]
    assert list(assignments(repo, "iris", rollouts=True)) == ["production", "production_canary"]
    now = current(rollouts.history(repo, "iris", "production"))
    assert now is not None and (now.step, now.weight, now.rollout_id) == (2, 50, second.tag)

    at(monkeypatch, 12)
    done = {**step(3, 100), "rollout_id": second.tag}
    assigned, ended = rollouts.complete(repo, "iris", "v1.1.0", "production", "canary", done)
    assert (assigned.tag, ended.tag) == ("iris#production#4", "iris#production_canary!#5")
    assert assigned.extra == {"rollout": {**done, "event": "complete"}}
    assert ended.unassign and ended.extra["rollout"]["event"] == "complete"
    assert git(repo, "tag", "-l", "-n1", ended.tag).split(None, 1)[1] == (
        "Unassigning stage 'production_canary' to artifact 'iris' version 'v1.1.0'"
    )
    shown = gto(repo, "show", "--json")["iris"]["stage"]
    assert shown["production"] == "v1.1.0" and shown.get("production_canary") is None
    assert current(rollouts.history(repo, "iris", "production")) is None
    assert [t for t in tag_names(repo) if "#" in t] == [
        "iris#production#1",
        "iris#production#4",
        "iris#production_canary!#5",
        "iris#production_canary#2",
        "iris#production_canary#3",
    ]


def test_a_rollback_is_an_unassignment_with_its_reason(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, 10)
    rollouts.record(repo, "iris", "v1.1.0", "production", "shadow", {**step(1, 0)})
    at(monkeypatch, 11)
    back = {"event": "rollback", "reason": "disagreement 60.0% > 5%"}
    ended = rollouts.record(repo, "iris", "v1.1.0", "production", "shadow", back, unassign=True)
    assert ended.tag == "iris#production_shadow!#3"
    history = assignments(repo, "iris", rollouts=True)
    assert rolled_back(history, "production") == {"v1.1.0": "disagreement 60.0% > 5%"}
    assert [a.version for a in assignments(repo, "iris")["production"]] == ["v1.0.0"]


def test_bad_records_are_refused(repo: Path) -> None:
    with pytest.raises(RegistryError, match="invalid rollout strategy 'blue'"):
        rollouts.record(repo, "iris", "v1.1.0", "production", "blue", {})
    with pytest.raises(RegistryError, match="invalid version 'latest'"):
        rollouts.record(repo, "iris", "latest", "production", "canary", {})
    with pytest.raises(RegistryError, match=r"iris v9\.0\.0 is not registered"):
        rollouts.record(repo, "iris", "v9.0.0", "production", "canary", {})
    with pytest.raises(RegistryError, match="invalid environment 'prod_canary'"):
        rollouts.record(repo, "iris", "v1.1.0", "prod_canary", "canary", {})
    with pytest.raises(RegistryError, match="must be JSON data"):
        rollouts.record(repo, "iris", "v1.1.0", "production", "canary", {"x": float("nan")})
