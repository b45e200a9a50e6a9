"""Every spec the models accept round-trips through dump and load unchanged.

``Lifecycle.dump()`` is what ``mllc`` writes back (``explain``, compiled
pipelines, ``api.dump_yaml``): loading it again must give the same spec, by
YAML, by mllc's own writer and by JSON. The bugs these tests found are fixed;
their smallest inputs are kept as regression tests at the end.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from strategies import (
    BASE_DOCS,
    BASE_TEXTS,
    GENERATED_INPUTS,
    INT64,
    dump,
    mutated_spec_texts,
    replaced,
    valid_spec_docs,
)

from mllc import api
from mllc.spec.load import load_text_as_spec
from mllc.spec.models import Lifecycle

VALID_EXAMPLES = 500


def assert_round_trips(spec: Lifecycle) -> None:
    """YAML, mllc's own writer, Python data and JSON all give the spec back."""
    data = spec.dump()
    # YAML as any careful writer puts it (strings a YAML 1.1 or 1.2 reader could take
    # for a number, bool or null are quoted), in two styles
    for style in (0, 1):
        again = load_text_as_spec("x.yaml", dump(data, style))
        assert again.ok, again.diagnostics
        assert again.spec == spec
        assert again.spec.dump() == data  # so dumping again writes the same text
    # mllc's own writer
    written = api.dump_yaml(spec)
    reread = load_text_as_spec("x.yaml", written)
    assert reread.ok, reread.diagnostics
    assert reread.spec == spec
    assert api.dump_yaml(reread.spec) == written
    # through Python data and JSON
    assert Lifecycle.model_validate(data) == spec
    assert Lifecycle.model_validate_json(spec.model_dump_json()) == spec


# ------------------------------------------------------------------ generated valid specs

RUNS: Counter[str] = Counter()


@settings(
    max_examples=VALID_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(doc=valid_spec_docs(), style=st.integers(0, 4))  # 5, JSON, is not always YAML
@example(doc=BASE_DOCS[0], style=0)
@example(doc=BASE_DOCS[1], style=1)
@example(doc=BASE_DOCS[2], style=2)
@example(doc=BASE_DOCS[3], style=3)
@example(doc=BASE_DOCS[4], style=4)
def _valid_specs_round_trip(doc: dict[str, Any], style: int) -> None:
    RUNS["generated"] += 1
    result = load_text_as_spec("spec.yaml", dump(doc, style))
    if not result.ok:
        RUNS["rejected"] += 1
        RUNS[f"rejected: {result.diagnostics[0].path}: {result.diagnostics[0].message[:80]}"] += 1
    assume(result.ok)  # the generator aims at valid specs: most must pass
    assert result.spec is not None
    assert_round_trips(result.spec)
    RUNS["checked"] += 1


def test_valid_specs_round_trip() -> None:
    """500 generated valid specs: dump -> load gives the same spec (YAML, JSON, dump_yaml)."""
    RUNS.clear()
    _valid_specs_round_trip()
    assert RUNS["checked"] >= VALID_EXAMPLES, RUNS
    # The generator builds valid specs; a rejection is a generator or an mllc bug.
    assert RUNS["rejected"] <= RUNS["generated"] // 10, RUNS.most_common(8)


@pytest.mark.parametrize("text", BASE_TEXTS, ids=["iris", "diabetes", "churn", "command", "k8s"])
def test_base_specs_round_trip(text: str) -> None:
    result = load_text_as_spec("spec.yaml", text)
    assert result.spec is not None, result.diagnostics
    assert_round_trips(result.spec)


# ------------------------------------------------------------------ mutated, still accepted

MUTATED: Counter[str] = Counter()


@settings(
    max_examples=1_500,
    deadline=None,
    database=None,
    suppress_health_check=GENERATED_INPUTS,
)
@given(text=mutated_spec_texts())
def _accepted_mutants_round_trip(text: str) -> None:
    result = load_text_as_spec("spec.yaml", text)  # any exception fails the test
    MUTATED["mutants"] += 1
    if result.spec is None:
        return
    assert_round_trips(result.spec)
    MUTATED["checked"] += 1


def test_accepted_mutated_specs_round_trip() -> None:
    """Odd values that still pass (unicode, big numbers, nulls in params) round-trip too."""
    MUTATED.clear()
    _accepted_mutants_round_trip()
    assert MUTATED["checked"] >= 50, MUTATED


# ------------------------------------------------------------------ regressions


def _spec(old: str, new: str) -> Lifecycle:
    text = BASE_TEXTS[0]
    assert old in text
    result = load_text_as_spec("spec.yaml", text.replace(old, new))
    assert result.spec is not None, result.diagnostics
    return result.spec


def _refusal(old: str, new: str, number: str) -> tuple[int, int, str, str]:
    """The one diagnostic of the iris spec with ``old`` replaced by ``new``."""
    text = BASE_TEXTS[0]
    assert old in text and number in new
    text = text.replace(old, new)
    result = load_text_as_spec("spec.yaml", text)
    [d] = result.diagnostics
    before = text[: text.index(new) + new.index(number)]
    assert (d.line, d.column) == (before.count("\n") + 1, len(before) - before.rfind("\n"))
    return d.line, d.column, d.path, d.message


@pytest.mark.parametrize(
    "old,new,number",
    [
        ("C: 1.0", "C: .nan", ".nan"),
        ("C: 1.0", "C: .NaN", ".NaN"),
        ("C: 1.0", "C: .inf", ".inf"),
        ("C: 1.0", "C: -.Inf", "-.Inf"),
        ("C: 1.0", "C: 1e400", "1e400"),
        ("C: 1.0", "C: -1e400", "-1e400"),
        ("min: 0.85", "min: -.inf", "-.inf"),
        ("min: 0, max: 30", "min: -.inf, max: .inf", "-.inf"),
        ("threshold: 0.2", "threshold: .inf", ".inf"),
        ("test: 0.2", "test: .nan", ".nan"),
        ("max_depth: [3, 5, null]", "max_depth: [3, .inf]", ".inf"),
    ],
)
def test_non_finite_floats_are_refused(old: str, new: str, number: str) -> None:
    """Once accepted, then written as null by model_dump_json(): now refused where written."""
    _, _, path, message = _refusal(old, new, number)
    assert (path, message) == ("", f"{number!r} is not a finite number")


@pytest.mark.parametrize(
    "where,value",
    [
        (("models", "logreg", "params", "C"), float("nan")),
        (("models", "logreg", "params", "C"), [{"a": float("inf")}]),
        (("models", "forest", "search", "space", "max_depth"), [float("-inf")]),
        (("data", "columns", "petal length (cm)", "min"), float("-inf")),
        (("data", "split", "test"), float("nan")),
        (("monitoring", "drift", "threshold"), float("inf")),
        (("monitoring", "performance", "min"), float("nan")),
    ],
)
def test_models_refuse_non_finite_floats(where: tuple[str, ...], value: Any) -> None:
    """Python callers bypass the YAML loader: the models refuse NaN and infinity too."""
    doc = replaced(BASE_DOCS[0], where, value)
    with pytest.raises(pydantic.ValidationError, match="finite number"):
        Lifecycle.model_validate(doc)


@pytest.mark.parametrize(
    "where,value",
    [
        (("models", "logreg", "params", "C"), 2**63),
        (("models", "logreg", "params", "C"), {"a": [-(2**63)]}),
        (("models", "logreg", "params", "C"), 16**4000 - 1),
        (("models", "forest", "search", "space", "max_depth"), [3, 2**63]),
        (("data", "columns", "petal length (cm)"), {"type": "category", "values": [2**63]}),
    ],
    ids=["param", "nested param", "param of 4817 digits", "search space", "category value"],
)
def test_models_refuse_ints_the_loader_refuses(where: tuple[str, ...], value: Any) -> None:
    """As for NaN: a spec the models accept must be one mllc can write and read back."""
    doc = replaced(BASE_DOCS[0], where, value)
    try:
        Lifecycle.model_validate(doc)
    except pydantic.ValidationError:
        return
    raise AssertionError(f"an int of 64 bits or more accepted at {'.'.join(where)}")


@pytest.mark.parametrize(
    "number", ["0x" + "F" * 4000, str(2**63), str(-(2**63))], ids=["4817 digits", "2**63", "-2**63"]
)
def test_huge_int_param_is_refused_at_load(number: str) -> None:
    """Once accepted in params, then api.dump_yaml() raised ValueError: now refused on load."""
    _, _, path, message = _refusal("C: 1.0", f"C: {number}", number)
    short = number if len(number) <= 40 else number[:37] + "..."
    assert (path, message) == ("", f"{short!r} is too large a number")


def test_the_largest_64_bit_int_params_round_trip() -> None:
    spec = _spec("C: 1.0", f"C: {INT64}, tol: {-INT64}, mask: 0x7FFFFFFFFFFFFFFF")
    assert spec.models["logreg"].params == {
        "C": INT64,
        "tol": -INT64,
        "mask": INT64,
        "max_iter": 1000,
    }
    assert_round_trips(spec)


# Written by api.dump_yaml: breaks YAML folds are escaped in double quotes, strings a
# YAML 1.2 reader takes for a number, bool or null are single-quoted.
_DUMPED = [
    ("a\x85b", '"a\\Nb"'),
    ("lbfgs\x85", '"lbfgs\\N"'),
    ("a\u2028b", '"a\\Lb"'),
    ("a\u2029b", '"a\\Pb"'),
    ("1e3", "'1e3'"),
    ("1e-05", "'1e-05'"),
    ("0o17", "'0o17'"),
    ("0x1F", "'0x1F'"),
    (".inf", "'.inf'"),
    ("-.5", "'-.5'"),
    ("true", "'true'"),
    ("null", "'null'"),
    ("~", "'~'"),
]


@pytest.mark.parametrize("value,written", _DUMPED)
@pytest.mark.parametrize("field", ["owner", "param"])
def test_dump_yaml_round_trips_nel_and_yaml12_numbers(field: str, value: str, written: str) -> None:
    """Once NEL was written raw (read back as a space) and '1e3' plain (read back as 1000.0)."""
    if field == "owner":
        spec = _spec("owner: ml-team@example.com", f"owner: {json.dumps(value)}")
        assert spec.metadata.owner == value
        line = f"  owner: {written}\n"
    else:
        spec = _spec("C: 1.0", f"C: 1.0, solver: {json.dumps(value)}")
        assert spec.models["logreg"].params["solver"] == value
        line = f"    solver: {written}\n"
    text = api.dump_yaml(spec)
    assert line in text
    assert not re.search("[\x85\u2028\u2029]", text)
    assert_round_trips(spec)
