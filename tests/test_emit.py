"""The fast YAML writer (mllc.compile.emit) writes what PyYAML writes, or steps aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mllc.compile import _SCALAR, _Dumper, _pyyaml, compile_spec
from mllc.compile.dvc import dvc_document, params_document
from mllc.compile.emit import emit
from mllc.spec.load import load_file

ROOT = Path(__file__).resolve().parent.parent
SPECS = [
    *sorted((ROOT / "specs").glob("*.yaml")),
    *sorted(ROOT.glob("tests/golden/compile/*/spec.yaml")),
]

HOSTILE = [
    "", " ", "plain", "yes", "no", "on", "off", "y", "n", "true", "False", "NULL", "~", "null",
    "1e3", "1E3", "0x10", "0o10", "010", "1_000", "12:30", "1:2:3", "2001-12-14", ".inf",
    "-.inf", ".nan", "+1", "-1", "1.", ".5", "0", "a: b", "a:b", "#x", "x #y", "- x", "-x",
    "@x", "`x", "!tag", "&a", "*a", "%x", "'q'", '"q"', "[x]", "{x}", "a,b", "?x", "? x",
    "|", ">", "a\tb", " lead", "trail ", "é", "日本語", "petal length (cm)", "${item}",
    "pipelines/iris/candidates/${item}.joblib", "python src/train.py --out x.joblib",
    "x" * 150, "k=v", "a=b=c", "=", "/", "./x", "../x", "a/b@c", "<<", "=x", "a\u00a0b",
    "\x7f", "a\x85b", "line\nbreak", "a\u2028b", "\ufeffbom", "a b", "a  b", "a b ", "a - b",
    "mllc stage train iris forest", "x -y", "a b: c", "a #b", "yes please", "1 2", "a b=c",
]  # fmt: skip
NUMBERS: list[Any] = [0, 1, -1, 10**30, 0.0, -0.0, 1.0, 0.1, 1e-05, 1e20, 3.14159, 1e300,
                      float("inf"), float("nan"), True, False, None]  # fmt: skip


def _both(data: Any, sort_keys: bool) -> tuple[str | None, str]:
    return emit(data, sort_keys=sort_keys, scalar=_SCALAR), _pyyaml(data, sort_keys=sort_keys)


def _check(data: Any, sort_keys: bool = False) -> str | None:
    fast, slow = _both(data, sort_keys)
    assert fast is None or fast == slow, (data, fast, slow)
    return fast


@pytest.mark.parametrize("spec_file", SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_generated_documents_are_written_fast_and_identically(spec_file: Path) -> None:
    result = load_file(spec_file)
    assert result.spec is not None
    for sort_keys, data in (
        (False, dvc_document(result.spec)),
        (True, params_document(result.spec)),
    ):
        assert _check(data, sort_keys) is not None  # the fast path is taken, not skipped
    bundle = compile_spec(result.spec, "specs/x.yaml")
    for path in bundle:
        if path.endswith(".yaml") and not path.startswith(".github"):
            text = bundle[path]
            body = yaml.safe_load(text)
            if isinstance(body, dict):
                _check(body, sort_keys=False)
                _check(body, sort_keys=True)


@pytest.mark.parametrize("value", HOSTILE + NUMBERS, ids=repr)
def test_every_scalar_as_a_value_a_key_and_a_list_item(value: Any) -> None:
    _check({"key": value})
    _check({"key": [value, "x"]})
    _check({"key": [{"a": value, "b": [value]}]})
    if isinstance(value, str):
        _check({value: 1})
        _check({"outer": {value: {value: value}}}, sort_keys=True)


def test_shapes() -> None:
    assert _check({"a": {}, "b": [], "c": [{}, []]}) == "a: {}\nb: []\nc:\n  - {}\n  - []\n"
    assert _check({"a": [{"x": 1, "y": [1, 2]}, 3]}) == (
        "a:\n  - x: 1\n    y:\n      - 1\n      - 2\n  - 3\n"
    )
    assert _check({"b": 1, "a": 2}, sort_keys=True) == "a: 2\nb: 1\n"
    # what it leaves to PyYAML: lists in lists, keys that are not strings, multi-line text
    assert _check({"a": [[1, 2]]}) is None
    assert _check({1: "x"}) is None
    assert _check({"a": "line\nbreak"}) is None
    assert emit([1], sort_keys=False, scalar=_SCALAR) is None


def test_a_subclass_is_left_to_pyyaml_which_refuses_it() -> None:
    class Name(str):
        pass

    assert emit({"a": Name("x")}, sort_keys=False, scalar=_SCALAR) is None
    with pytest.raises(yaml.representer.RepresenterError):
        yaml.dump({"a": Name("x")}, Dumper=_Dumper)
