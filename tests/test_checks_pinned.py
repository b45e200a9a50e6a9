"""The section checks of ``mllc.spec.checks``, called directly and compared whole.

``test_rules`` checks them through a spec and a fragment of each message; here every
check gets plain mappings and its complete list of messages is compared, so a message
reworded, a bound moved by one, a default changed or a condition inverted fails (found
by mutation testing). Each row is one case: the section, and every message it gets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from mllc.spec import checks, rules
from mllc.spec.rollout import Rollout

Check = Callable[[Mapping[str, Any]], list[str]]
ONE_SOURCE = "give exactly one of 'sklearn', 'csv' or 'parquet'"


def cases(check: Check, *rows: tuple[dict[str, Any], list[str]]) -> list[Any]:
    return [pytest.param(check, section, want, id=f"{check.__name__}-{i}") for i, (section, want)
            in enumerate(rows)]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "section", "want"),
    [
        *cases(
            checks.source,
            ({"sklearn": "iris"}, []),
            ({"csv": "d.csv", "sklearn": None}, []),
            ({}, [ONE_SOURCE]),
            ({"csv": None}, [ONE_SOURCE]),
            ({"csv": "d.csv", "parquet": "d.pq"}, [f"{ONE_SOURCE} (got csv, parquet)"]),
            ({"sklearn": "iris", "csv": "a", "parquet": "b"},
             [f"{ONE_SOURCE} (got sklearn, csv, parquet)"]),
        ),
        *cases(
            checks.column,
            ({"type": 3, "min": 5, "max": 1}, []),  # a wrong type is the model's to report
            ({"type": "float", "min": 0, "max": 30}, []),
            ({"type": "float", "min": 2, "max": 2}, []),
            ({"type": "float", "min": 2.5, "max": 1}, ["min (2.5) is greater than max (1)"]),
            ({"type": "string", "max": 3}, ["min/max apply to int and float columns, not string"]),
            ({"type": "bool", "min": 0}, ["min/max apply to int and float columns, not bool"]),
            ({"type": "int", "min": 0.5, "max": 3}, ["an int column needs whole bounds (got 0.5)"]),
            ({"type": "int", "min": 1, "max": 2.5}, ["an int column needs whole bounds (got 2.5)"]),
            ({"type": "int", "min": 1.0, "max": 3.0}, []),
            ({"type": "float", "min": math.inf, "max": 0}, []),  # not a number we can compare
            ({"type": "float", "min": 10**400, "max": 0}, []),  # too large for a float
            ({"type": "float", "min": True, "max": 0}, []),  # a boolean is not a bound
            ({"type": "float", "min": "1", "max": 0}, []),
            ({"type": "category", "values": ["a", "b"]}, []),
            ({"type": "category", "values": "aa"}, []),  # not a list: the model's to report
            ({"type": "int", "values": [1]}, ["values apply to category columns, not int"]),
            ({"type": "category", "values": []}, ["values must list at least one category"]),
            ({"type": "category", "values": ["x", 1, "x", 1, True, 2]},
             ["values lists 1, x more than once"]),
            ({"type": "category", "values": [1, True, 1.5, 1.5]}, []),  # 1 and true differ
        ),
        *cases(
            checks.split,
            ({}, []),
            ({"test": 0.2, "validation": 0.7}, []),
            ({"validation": 0.75},
             ["test + validation = 0.95 leaves 0.05 for training; at least 0.1 must remain"]),
            ({"test": 0.95},
             ["test + validation = 0.95 leaves 0.05 for training; at least 0.1 must remain"]),
            ({"test": 0.5, "validation": None}, []),
            ({"test": 0, "validation": 0.95}, []),  # test 0 is the model's to report
            ({"test": 1, "validation": 0}, []),
            ({"test": 0.5, "validation": 1}, []),
            ({"test": "x", "validation": 0.5}, []),
            ({"test": 0.5, "validation": "x"}, []),
            ({"test": 0.45, "validation": 0.45}, []),  # 0.9 exactly leaves 0.1
            ({"test": 0.9 + 1e-9, "validation": 0}, []),  # within rounding of 0.9
            ({"test": 0.46, "validation": 0.45},
             ["test + validation = 0.91 leaves 0.09 for training; at least 0.1 must remain"]),
        ),
        *cases(
            checks.search,
            ({"method": "random", "n_iter": 5}, []),
            ({"method": "grid"}, []),
            ({"n_iter": 5}, ["n_iter applies to method: random only"]),
            ({"method": "grid", "n_iter": 5}, ["n_iter applies to method: random only"]),
        ),
        *cases(
            checks.candidate,
            ({"estimator": "E", "params": {"a": 1}, "search": {}}, []),
            ({"command": "python t.py", "deps": ["t.py"]}, []),
            ({}, ["give exactly one of 'estimator' or 'command'"]),
            ({"estimator": "E", "command": "c"}, ["give exactly one of 'estimator' or 'command'"]),
            ({"command": "  "}, ["command must not be empty"]),
            ({"command": 5}, []),
            ({"command": "c", "params": {"a": 1}},
             ["params and search apply to an estimator, not a command"]),
            ({"command": "c", "search": {"method": "grid"}},
             ["params and search apply to an estimator, not a command"]),
            ({"command": " ", "search": {"m": 1}},
             ["command must not be empty",
              "params and search apply to an estimator, not a command"]),
            ({"estimator": "E", "deps": ["a"]},
             ["deps apply to a command; an estimator's inputs are known"]),
        ),
        *cases(
            checks.environment,
            ({"target": "local", "port": 8081}, []),
            ({"target": "kubernetes", "kubernetes": {}}, []),
            ({"target": "kubernetes"}, ["target kubernetes needs a 'kubernetes' section"]),
            ({"target": "kubernetes", "kubernetes": {}, "port": 80},
             ["port and host apply to target local"]),
            ({"target": "kubernetes", "kubernetes": {}, "host": "127.0.0.1"}, []),
            ({"target": "local", "port": 1, "kubernetes": {}},
             ["a 'kubernetes' section applies to target kubernetes only"]),
            ({"target": "local"}, ["target local needs a port (1024-65535) for its server"]),
            ({"port": 8081, "host": "a b"}, ["host 'a b' is not an address or host name"]),
            ({"port": 8081, "host": "::1"}, []),
            ({"port": 8081, "host": "localhost"}, []),
            ({"port": 8081, "host": "Model-Server.example.COM", "token": "env:T"}, []),
            ({"port": 8081, "host": "10.0.0.7"},
             ["binding '10.0.0.7' exposes the server beyond this machine: "
              "give a token (token: env:NAME)"]),
            ({"port": 8081, "host": 5}, []),
            ({"target": "kubernetes", "kubernetes": {}, "rollout": {"strategy": "shadow"}},
             ["rollout strategy shadow needs target local: KServe does not mirror traffic "
              "(kserve#2978); use strategy: canary"]),
            ({"target": "kubernetes", "kubernetes": {}, "rollout": {"strategy": "canary"}}, []),
            # the validated model's section, not a mapping: its strategy is read all the same
            ({"target": "kubernetes", "kubernetes": {}, "rollout": Rollout(strategy="shadow")},
             ["rollout strategy shadow needs target local: KServe does not mirror traffic "
              "(kserve#2978); use strategy: canary"]),
            ({"target": "local", "port": 8081, "rollout": {"strategy": "shadow"}}, []),
            ({"port": 8081, "replay": {}},
             ["replay thresholds apply with require: [wins_on_replay]"]),
            ({"port": 8081, "replay": {}, "require": "wins_on_replay"},
             ["replay thresholds apply with require: [wins_on_replay]"]),
            ({"port": 8081, "replay": {}, "require": ["wins_on_replay"]}, []),
            ({"port": 8081, "require": ["wins_on_replay"]}, []),
        ),
        *cases(
            checks.rollout,
            ({"strategy": "canary", "steps": [10, 50, 100]}, []),
            ({"strategy": "canary"}, ["strategy: canary needs steps, e.g. [10, 50, 100]"]),
            ({"strategy": "canary", "steps": []},
             ["strategy: canary needs steps, e.g. [10, 50, 100]"]),
            ({"strategy": "canary", "steps": [0, 100]},
             ["steps [0, 100]: each is a percentage from 1 to 100"]),
            ({"strategy": "canary", "steps": [1, 101]},
             ["steps [1, 101]: each is a percentage from 1 to 100"]),
            ({"strategy": "canary", "steps": [1, 100]}, []),
            ({"strategy": "canary", "steps": [50, 10, 100]}, ["steps [50, 10, 100] must increase"]),
            ({"strategy": "canary", "steps": [10, 10, 100]}, ["steps [10, 10, 100] must increase"]),
            ({"strategy": "canary", "steps": [10, 50]},
             ["steps [10, 50] must end at 100 (the new version takes over)"]),
            ({"strategy": "canary", "steps": [*range(1, 21), 100]}, ["steps: at most 20, not 21"]),
            ({"strategy": "canary", "steps": [*range(1, 20), 100]}, []),
            ({"strategy": "canary", "steps": [True, 100]}, []),  # the model's to report
            ({"strategy": "canary", "steps": [10, 50.5]}, []),  # the model's too
            ({"strategy": "canary", "steps": "10"}, []),
            ({"strategy": "shadow"}, []),
            ({"strategy": "shadow", "steps": [100]},
             ["steps apply to strategy: canary (a shadow answers nothing)"]),
            ({"strategy": "blue", "steps": [5]}, []),
        ),
        *cases(
            checks.replay,
            ({}, []),
            ({"min_requests": 50, "max_requests": 50}, []),
            ({"max_requests": 49}, ["max_requests 49 is below min_requests 50"]),
            ({"min_requests": 10_001}, ["max_requests 10000 is below min_requests 10001"]),
            ({"min_requests": 5, "max_requests": 4}, ["max_requests 4 is below min_requests 5"]),
            ({"min_requests": "5", "max_requests": 4}, []),
            ({"min_requests": 5, "max_requests": True}, []),
        ),
        *cases(
            checks.performance,
            ({"min": 0.8}, []),
            ({"max": 0.8}, []),
            ({}, ["give exactly one of 'min' or 'max'"]),
            ({"min": 0.1, "max": 0.9}, ["give exactly one of 'min' or 'max'"]),
        ),
    ],
)  # fmt: skip
def test_section_check(check: Check, section: dict[str, Any], want: list[str]) -> None:
    assert check(section) == want


# ------------------------------------------------------------------ rules across sections
# ``rules.check`` on raw documents: every finding, with its path, compared whole.

CLF = "sklearn.linear_model.LogisticRegression"


def findings(doc: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    return rules.check(doc, {CLF: "classification"})


def clf(**sections: Any) -> dict[str, Any]:
    return {"problem": {"task": "classification", "target": "y"}, **sections}


def test_gates_that_are_not_a_list_or_not_text_are_the_models_to_report() -> None:
    assert findings(clf(gates={"rmse < 1": 1})) == []
    assert findings(clf(gates=[5, "rmse < 1"])) == [
        (("gates", 1), "'rmse' is a regression metric, but problem.task is classification "
                       "(known: accuracy, precision_macro, recall_macro, f1_macro, "
                       "precision_weighted, recall_weighted, f1_weighted, roc_auc, log_loss)")
    ]  # fmt: skip


def test_an_estimator_of_the_other_task_is_named_by_its_class() -> None:
    doc = {"problem": {"task": "regression", "target": "y"}, "models": {"m": {"estimator": CLF}}}
    assert findings(doc) == [
        (("models", "m", "estimator"),
         "LogisticRegression is a classification estimator, but problem.task is regression")
    ]  # fmt: skip


def test_feature_columns_must_be_text_and_numeric_ones_not_text() -> None:
    doc = clf(
        data={"columns": {"s": {"type": "string"}, "c": {"type": "category"}}},
        features={"exclude": ["x"], "numeric": {"columns": [5, "x", "s", "c"]}},
    )
    path = ("features", "numeric", "columns")
    assert findings(doc) == [
        ((*path, 0), "a column name must be text"),
        ((*path, 1), "'x' is also in features.exclude"),
        ((*path, 2), "'s' is declared string in data.columns, not numeric"),
        ((*path, 3), "'c' is declared category in data.columns, not numeric"),
    ]


def test_a_target_that_is_not_text_is_the_models_to_report() -> None:
    doc = {"problem": {"task": "regression", "target": ["y"]}, "data": {"columns": {}}}
    assert findings(doc) == []


def test_split_and_dataset_messages() -> None:
    doc = {
        "problem": {"task": "regression", "target": "y"},
        "data": {"split": {"stratify": True}, "source": {"sklearn": "not-bundled"}},
    }
    assert findings(doc) == [
        (("data", "split", "stratify"), "a stratified split needs a classification task")
    ]


def test_impute_none_in_either_feature_kind() -> None:
    doc = clf(
        data={"cleaning": {"missing": "impute"}},
        features={"numeric": {"impute": "none"}, "categorical": {"impute": "none"}},
    )
    why = "data.cleaning.missing is 'impute' but this strategy is 'none'"
    assert findings(doc) == [
        (("features", "numeric", "impute"), why),
        (("features", "categorical", "impute"), why),
    ]


def test_after_messages() -> None:
    envs = {
        "a": {"target": "local", "port": 8081, "after": "a"},
        "b": {"target": "local", "port": 8082, "after": "zzz"},
    }
    assert findings(clf(environments=envs)) == [
        (("environments", "a", "after"), "an environment cannot come after itself"),
        (("environments", "b", "after"), "no environment named 'zzz'"),
    ]


def test_a_cycle_reached_again_from_a_later_chain_is_reported_once() -> None:
    """a <-> b is a cycle; c -> d settles apart; e -> a walks into the settled cycle."""
    envs = {
        "a": {"after": "b"},
        "b": {"after": "a"},
        "c": {"after": "d"},
        "d": {},
        "e": {"after": "a"},
    }
    envs = {n: {"target": "local", "port": 8081 + i, **e} for i, (n, e) in enumerate(envs.items())}
    assert findings(clf(environments=envs)) == [
        (("environments", "a", "after"), "promotion order has a cycle: a -> b -> a")
    ]


def test_ports_that_are_not_numbers_are_the_models_to_report() -> None:
    envs = {
        "a": {"target": "local", "port": "8081"},
        "b": {"target": "local", "port": "8081"},
        "c": {"target": "local", "port": True},
        "d": {"target": "local", "port": True},
    }
    assert findings(clf(environments=envs)) == []


def test_section_checks_run_on_a_section_with_every_field() -> None:
    perf = {"metric": "accuracy", "min": 0.1, "max": 0.9}
    assert findings(clf(monitoring={"performance": perf})) == [
        (("monitoring", "performance", "max"),
         "accuracy is better when higher: a breach is set with 'min'"),
        (("monitoring", "performance"), "give exactly one of 'min' or 'max'"),
    ]  # fmt: skip


def test_a_misspelt_section_does_not_stop_the_checks_of_later_sections() -> None:
    doc = clf(
        data={"source": {"sklearn": "iris", "csv": "x.csv", "typo": 1}},
        environments={"a": {"target": "local"}},
    )
    assert findings(doc) == [
        (("environments", "a"), "target local needs a port (1024-65535) for its server")
    ]


def test_an_allowed_estimator_without_a_module_is_named_whole() -> None:
    doc = {"problem": {"task": "regression"}, "models": {"m": {"estimator": "Clf"}}}
    assert list(rules.estimators_fit_task(doc, {"Clf": "classification"})) == [
        (
            ("models", "m", "estimator"),
            "Clf is a classification estimator, but problem.task is regression",
        )
    ]


def test_a_misspelt_environment_does_not_stop_the_checks_of_the_next() -> None:
    envs = {"a": {"target": "local", "port": 8081, "typo": 1}, "b": {"target": "local"}}
    assert findings(clf(environments=envs)) == [
        (("environments", "b"), "target local needs a port (1024-65535) for its server")
    ]
