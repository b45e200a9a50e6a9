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

from mllc.spec import checks

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
