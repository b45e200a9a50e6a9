"""The spec's ``rollout`` and ``replay`` sections: each rule with a failing example, and a
spec without them keeping its document (its hash and lifecycle record)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mllc.spec.deployment import Environment
from mllc.spec.load import load_text_as_spec
from mllc.spec.rollout import Analysis, Replay, Rollout


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"strategy": "canary"}, "strategy: canary needs steps, e.g. [10, 50, 100]"),
        ({"strategy": "canary", "steps": []}, "strategy: canary needs steps, e.g. [10, 50, 100]"),
        ({"strategy": "canary", "steps": [0, 100]}, "steps [0, 100]: each is a percentage"),
        ({"strategy": "canary", "steps": [10, 101]}, "steps [10, 101]: each is a percentage"),
        ({"strategy": "canary", "steps": [50, 10, 100]}, "steps [50, 10, 100] must increase"),
        ({"strategy": "canary", "steps": [10, 10, 100]}, "steps [10, 10, 100] must increase"),
        ({"strategy": "canary", "steps": [10, 50]}, "steps [10, 50] must end at 100"),
        ({"strategy": "canary", "steps": [*range(5, 101, 5), 100]}, "must increase"),
        ({"strategy": "canary", "steps": [*range(1, 22), 100]}, "steps: at most 20, not 22"),
        ({"strategy": "shadow", "steps": [100]}, "steps apply to strategy: canary"),
        ({"strategy": "blue-green"}, "'canary' or 'shadow'"),
        ({"strategy": "canary", "steps": [100], "on_failure": "ignore"}, "'rollback' or 'hold'"),
        ({"strategy": "shadow", "analysis": {"min_requests": 0}}, "greater than or equal to 1"),
        ({"strategy": "shadow", "analysis": {"max_error_rate": 1.5}}, "less than or equal to 1"),
        ({"strategy": "shadow", "analysis": {"max_p99_ms": 0}}, "greater than 0"),
        ({"strategy": "shadow", "analysis": {"max_disagreement": -0.1}}, "greater than or equal"),
        ({"strategy": "shadow", "analysis": {"p99": 3}}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_rollout_is_refused_with_its_reason(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        Rollout.model_validate(section)
    assert message in str(err.value)


def test_a_good_rollout_and_its_steps() -> None:
    canary = Rollout.model_validate({"strategy": "canary", "steps": [10, 50, 100]})
    assert canary.percentages() == [10, 50, 100]
    assert canary.on_failure == "rollback"
    assert canary.analysis == Analysis(min_requests=100)
    shadow = Rollout.model_validate({"strategy": "shadow"})
    assert shadow.percentages() == [0]
    assert shadow.model_dump(mode="json") == {
        "strategy": "shadow",
        "analysis": Analysis().model_dump(mode="json"),
        "on_failure": "rollback",
    }


def test_replay_thresholds() -> None:
    assert Replay().min_requests == 50
    with pytest.raises(ValidationError, match="max_requests 10 is below min_requests 50"):
        Replay(max_requests=10)
    with pytest.raises(ValidationError, match="greater than 0"):
        Replay(max_p95_ratio=0)


def test_an_environment_without_them_dumps_as_before() -> None:
    env = Environment.model_validate({"target": "local", "port": 8081})
    dumped = env.model_dump(mode="json")
    assert "rollout" not in dumped
    assert "replay" not in dumped
    both = Environment.model_validate(
        {
            "target": "local",
            "port": 8081,
            "require": ["wins_on_replay"],
            "replay": {},
            "rollout": {"strategy": "canary", "steps": [25, 100]},
        }
    ).model_dump(mode="json")
    assert both["rollout"]["steps"] == [25, 100]
    assert both["replay"] == Replay().model_dump(mode="json")


def test_every_error_of_a_rollout_and_a_replay_at_once() -> None:
    """The cross-field rules (steps, max_requests) are reported beside field errors, which
    make Pydantic skip a section's own validator."""
    text = """apiVersion: mllc/v1
kind: Lifecycle
metadata: {name: iris}
problem: {task: classification, target: target, metric: accuracy}
data: {source: {sklearn: iris}}
models: {logreg: {estimator: sklearn.linear_model.LogisticRegression}}
environments:
  staging:
    target: local
    port: 8081
    require: [wins_on_replay]
    replay: {max_disagreement: 1.5, max_requests: 10}
    rollout: {strategy: canary, steps: [50, 10], on_failure: retry}
"""
    found = [(d.path, d.message) for d in load_text_as_spec("spec.yaml", text).diagnostics]
    assert found == [
        ("environments.staging.replay", "max_requests 10 is below min_requests 50"),
        ("environments.staging.replay.max_disagreement",
         "input should be less than or equal to 1 (got 1.5)"),
        ("environments.staging.rollout", "steps [50, 10] must increase"),
        ("environments.staging.rollout.on_failure",
         "input should be 'rollback' or 'hold' (got 'retry')"),
    ]  # fmt: skip
