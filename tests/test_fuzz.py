"""Fuzz the spec loader with mutated and malformed specs: never a traceback.

The main property runs 10,000 mutated specs in-process through
``load_text_as_spec``: it never raises; a rejected spec has diagnostics that
each carry a location inside the file, a message and one rendered line; an
accepted spec is a ``Lifecycle`` valid under the published JSON schema. A
smaller property runs the real CLI as a subprocess. Any exception, or any
diagnostic that breaks this contract, fails the test. The bugs these fuzzers
found are fixed; their smallest inputs are kept as regression tests at the end.
"""

from __future__ import annotations

import ast
import copy
import gc
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from strategies import (
    BASE_DOCS,
    BASE_TEXTS,
    GENERATED_INPUTS,
    IRIS_TEXT,
    LAUGHS,
    ROOT,
    dump,
    mutated_spec_texts,
    replaced,
)

from mllc import api
from mllc.errors import Diagnostic
from mllc.spec import rules, vocab
from mllc.spec.load import LoadResult, load_text_as_spec
from mllc.spec.models import Lifecycle
from mllc.spec.reference import json_schema
from mllc.spec.yamlsafe import load_text

FILE = "spec.yaml"
MAIN_EXAMPLES = 10_000
FUZZ_SETTINGS = settings(
    max_examples=MAIN_EXAMPLES,
    deadline=None,
    derandomize=False,
    database=None,  # every run explores afresh
    suppress_health_check=GENERATED_INPUTS,
)
# What YAML counts as a line break; mllc reports lines as libyaml counts them.
YAML_BREAKS = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
SCHEMA = jsonschema.Draft202012Validator(json_schema())

# ------------------------------------------------------------------ the checks


def one_line(rendered: str) -> bool:
    """No control character, no Unicode line or paragraph separator: one line everywhere."""
    return not any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in rendered)


def check_result(result: Any, text: str, file: str = FILE) -> None:
    """Assert the loader's contract on one result."""
    assert isinstance(result, LoadResult)
    if result.ok:
        assert isinstance(result.spec, Lifecycle)
        assert result.diagnostics == ()
        # Whatever the models accept, editors validating with the schema accept too.
        errors = [f"{e.json_path}: {e.message}" for e in SCHEMA.iter_errors(load_text(text).data)]
        assert not errors, f"accepted, yet not valid under the schema: {errors}"
        return
    assert result.spec is None
    assert result.diagnostics, "not ok, yet no diagnostic says why"
    lines = YAML_BREAKS.split(text.removeprefix("\ufeff"))
    for d in result.diagnostics:
        assert isinstance(d, Diagnostic)
        assert d.file == file
        assert d.line >= 1 and d.column >= 1, f"no location: {d}"
        assert d.line <= len(lines) + 1, f"line past the end ({len(lines)} lines): {d}"
        assert d.message.strip(), f"empty message: {d}"
        rendered = d.render()
        assert rendered.startswith(f"{file}:{d.line}:{d.column}: "), rendered
        assert one_line(rendered), f"a diagnostic must render as one line: {rendered!r}"
        report = json.loads(json.dumps(d.to_json()))  # the JSON report keeps the raw text
        assert (report["path"], report["message"]) == (d.path, d.message)
        _check_points_at_key(d, lines)


def _check_points_at_key(d: Diagnostic, lines: list[str]) -> None:
    """An unknown or duplicate key is reported where the key is written."""
    if d.code == "unknown-key":
        m = re.fullmatch(r"unknown key (.+)", d.message)
        assert m, d
        key = ast.literal_eval(m.group(1))
    elif d.code == "duplicate-key":
        m = re.fullmatch(r"duplicate key (.+) \(first defined at line (\d+)\)", d.message)
        assert m, d
        key = ast.literal_eval(m.group(1))
        assert 1 <= int(m.group(2)) <= d.line, d
    else:
        return
    if not re.fullmatch(r"[A-Za-z0-9_]+", key) or d.line > len(lines):
        return
    rest = lines[d.line - 1][d.column - 1 :]
    # the key, maybe quoted, or the tag/anchor/'?' written before it
    assert rest.startswith((key, f"'{key}", f'"{key}', "?", "!", "&")), (d, rest[:40])


# ------------------------------------------------------------------ the main fuzz

RUNS: Counter[str] = Counter()


@FUZZ_SETTINGS
@given(text=mutated_spec_texts())
def _fuzz_load_text(text: str) -> None:
    result = load_text_as_spec(FILE, text)  # any exception fails the test
    check_result(result, text)
    RUNS["ok" if result.ok else "invalid"] += 1
    RUNS["checked"] += 1


def test_mutated_specs_never_raise_and_are_located() -> None:
    """10,000 mutated specs: no exception; located diagnostics or a valid Lifecycle."""
    RUNS.clear()
    _fuzz_load_text()
    # Counted here rather than in a later test, so neither test order nor -k nor
    # xdist can make the count vacuous. Nothing is rejected and this test has no
    # explicit @example: every example Hypothesis runs is generated and checked.
    assert RUNS["checked"] >= MAIN_EXAMPLES, RUNS
    assert RUNS["invalid"] >= MAIN_EXAMPLES // 2, RUNS  # mutations do break specs
    assert RUNS["ok"] >= 50, RUNS  # and some mutated specs remain valid


EDGE_CASES = {
    "iris": IRIS_TEXT,
    "empty": "",
    "nul": "\x00",
    "open brackets": "[" * 2000,
    "deep": "a: " + "[" * 70 + "]" * 70,
    "duplicate key": IRIS_TEXT.replace("  name: iris", "  name: iris\n  name: again"),
    "python tag": IRIS_TEXT.replace("port: 8081", "port: !!python/object/apply:os.system [ls]"),
    "billion laughs": LAUGHS,
    "many aliases": "a: &a [x, x]\nb: &b [*a, *a]\nc: [" + ", ".join(["*b"] * 30_000) + "]\n",
    "bad bytes": b"\xff\xfeapi\x80Version: \xc3".decode("utf-8", errors="replace"),
}


@pytest.mark.parametrize("text", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_malformed_edge_cases(text: str) -> None:
    """Hand-written extremes; kept out of the fuzz test so its count is generated examples."""
    check_result(load_text_as_spec(FILE, text), text)


def test_base_specs_are_valid() -> None:
    for text, doc in zip(BASE_TEXTS, BASE_DOCS, strict=True):
        for variant in (text, dump(doc, 0), dump(doc, 1), dump(doc, 5)):
            result = load_text_as_spec(FILE, variant)
            assert result.ok, result.diagnostics


# ------------------------------------------------------------------ the real CLI

LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): \S")


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mllc", "validate", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=GENERATED_INPUTS,
)
@given(text=mutated_spec_texts())
def test_cli_reports_invalid_specs(cli_dir: Path, text: str) -> None:
    """``mllc validate`` on a broken spec: exit 1, ``path:LINE:COL: ...``, no traceback."""
    result = load_text_as_spec(FILE, text)
    assume(not result.ok)
    path = cli_dir / "spec.yaml"
    path.write_bytes(text.encode("utf-8"))
    expected = api.validate([str(path)])

    proc = _run_cli(str(path))
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout.split("\n")
    assert out[-1] == "" and len(out) > 1, proc.stdout
    for line in out[:-1]:
        m = LINE.match(line)
        assert m and m["file"] == str(path), line
        assert int(m["line"]) >= 1 and int(m["col"]) >= 1, line
    assert out[:-1] == expected.lines()
    assert re.search(r"\d+ errors? in 1 of 1 spec", proc.stderr), proc.stderr

    proc = _run_cli("--format", "json", str(path))
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["valid"] is False
    assert report["diagnostics"]
    for d in report["diagnostics"]:
        assert d["file"] == str(path)
        assert isinstance(d["line"], int) and d["line"] >= 1, d
        assert isinstance(d["column"], int) and d["column"] >= 1, d
        assert d["message"], d
    assert report == json.loads(json.dumps(expected.to_json()))


# ------------------------------------------------------------------ documented patterns

# The identifier rules, as docs/spec.md and the JSON schema state them, in ASCII
# and with whole-string matching: a value is accepted exactly when it matches.
DNS = r"[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
LABEL = rf"({LABEL_KEY})?"
NUMBERS = r"(0|[1-9][0-9]*)"
Setter = Callable[[dict[str, Any], str], None]


def _rename(*path: str) -> Setter:
    def apply(doc: dict[str, Any], value: str) -> None:
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        items = [(value if k == path[-1] else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)

    return apply


def _set(*path: str) -> Setter:
    def apply(doc: dict[str, Any], value: str) -> None:
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value

    return apply


K8S = ("environments", "production", "kubernetes")
FIELDS: dict[str, tuple[Setter, str, int]] = {
    "metadata.name": (_set("metadata", "name"), DNS, 63),
    "models.<name>": (_rename("models", "svc"), DNS, 63),
    "environments.<name>": (_rename("environments", "production"), DNS, 63),
    "kubernetes.namespace": (_set(*K8S, "namespace"), DNS, 63),
    "kubernetes.service_account": (_set(*K8S, "service_account"), DNS, 63),
    "kubernetes.cpu": (_set(*K8S, "cpu"), r"[0-9]+(\.[0-9]+)?m?", 10**6),
    "kubernetes.memory": (_set(*K8S, "memory"), r"[0-9]+(\.[0-9]+)?([EPTGM]i?|Ki|k|m)?", 10**6),
    "kubernetes.storage_uri": (
        _set(*K8S, "storage_uri"),
        r"(s3|gs|pvc|https?|azureblob)://[^\s@]+",
        10**6,
    ),
    "environments.model": (
        _set("environments", "production", "model"),
        rf"latest|v{NUMBERS}\.{NUMBERS}\.{NUMBERS}",
        10**6,
    ),
    "environments.token": (
        _set("environments", "canary", "token"),
        r"env:[A-Za-z_][A-Za-z0-9_]*",
        10**6,
    ),
    "environments.host": (_set("environments", "canary", "host"), r"[A-Za-z0-9.:-]+", 10**6),
    "metadata.labels.<key>": (_rename("metadata", "labels", "team"), LABEL_KEY, 63),
    "metadata.labels.<value>": (_set("metadata", "labels", "team"), LABEL, 63),
    "params.<name>": (_rename("models", "svc", "params", "C"), r"[A-Za-z_][A-Za-z0-9_]*", 10**6),
}
_K8S_DOC = copy.deepcopy(BASE_DOCS[4])
_K8S_DOC["metadata"]["labels"] = {"team": "ml"}
_JUNK = ("", "", "\n", "\r", " ", "\t", "-", "_", ".", "A", "@", "/", "é", "٣", "５", "𝟡", "\x00")


@st.composite
def near_misses(draw: st.DrawFn, pattern: str) -> str:
    """A value matching ``pattern``, or a near miss: one character added somewhere."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.text(max_size=12))
    value = draw(st.from_regex(rf"\A({pattern})\Z", fullmatch=True).filter(lambda s: len(s) < 80))
    junk = draw(st.sampled_from(_JUNK))
    where = draw(st.integers(0, len(value)))
    return value[:where] + junk + value[where:]


@settings(max_examples=400, deadline=None, database=None)
@given(data=st.data(), field=st.sampled_from(sorted(FIELDS)))
@example(data=None, field="metadata.name").via("a trailing newline")
def test_identifiers_follow_their_documented_pattern(data: st.DataObject, field: str) -> None:
    setter, pattern, max_len = FIELDS[field]
    value = data.draw(near_misses(pattern), label="value") if data is not None else "wine\n"
    if field == "environments.<name>":
        assume(value not in _K8S_DOC["environments"])  # a sibling's name: another error
    doc = copy.deepcopy(_K8S_DOC)
    setter(doc, value)
    result = load_text_as_spec(FILE, dump(doc))
    matches = re.fullmatch(pattern, value) is not None
    if result.ok:
        assert matches and len(value) <= max_len, f"{field}: {value!r} accepted; {pattern}"
    # A short valid value must pass (long names may break KServe's derived names).
    if matches and len(value) <= 20:
        assert result.ok, (field, value, result.diagnostics)


# ------------------------------------------------------------------ regressions
# Bugs these fuzzers found, now fixed; each keeps the smallest input found.

SPEC = IRIS_TEXT
Found = tuple[int, int, str, str]  # line, column, path, message


def _where(text: str, needle: str) -> tuple[int, int]:
    """The 1-based line and column of the first ``needle`` in ``text``."""
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def _refused(text: str) -> list[Found]:
    """The diagnostics of a spec that must be refused, once the loader's contract holds."""
    result = load_text_as_spec(FILE, text)
    check_result(result, text)
    assert not result.ok
    return [(d.line, d.column, d.path, d.message) for d in result.diagnostics]


def _refused_doc(doc: dict[str, Any]) -> list[Found]:
    return _refused(dump(doc))


@pytest.mark.parametrize(
    "tagged,scalar",
    [
        ("!!bool maybe", "maybe"),
        ("!!bool ''", ""),
        ("!!bool 2", "2"),
        ("!!int ''", ""),
        ("!!int x", "x"),
        ("!!float ''", ""),
        ("!!float x", "x"),
    ],
)
def test_explicit_scalar_tags_that_cannot_be_read_are_located_diagnostics(
    tagged: str, scalar: str
) -> None:
    """Once KeyError/IndexError from PyYAML's constructors: now one diagnostic at the value."""
    text = SPEC.replace("seed: 42", f"seed: {tagged}")
    [(line, column, path, message)] = _refused(text)
    assert (line, column, path) == (*_where(text, tagged), "")
    assert message.startswith(f"cannot read {scalar!r}: "), message
    assert message.removeprefix(f"cannot read {scalar!r}: ").strip(), message


def test_cli_reports_an_unreadable_tag_and_exits_1(tmp_path: Path) -> None:
    """Once exit 3 ('unexpected error'): now exit 1 and one located line."""
    path = tmp_path / "spec.yaml"
    text = SPEC.replace("stratify: true", "stratify: !!bool maybe")
    path.write_text(text, encoding="utf-8")
    proc = _run_cli(str(path))
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 1, proc.stderr
    line, column = _where(text, "!!bool maybe")
    [out] = proc.stdout.splitlines()
    assert out.startswith(f"{path}:{line}:{column}: cannot read 'maybe': "), out


HUGE = "0x" + "F" * 4000  # 4817 decimal digits: once a ValueError from repr()
BIG = "1" + "0" * 310  # over 1.8e308: once an OverflowError from float()


@pytest.mark.parametrize(
    "old,number",
    [
        ("port: 8081", HUGE),
        ("name: iris", HUGE),
        ("threshold: 0.2", HUGE),
        ("port: 8081", "0o" + "7" * 5000),
        ("port: 8081", "0b" + "1" * 15000),
        ("min: 0", BIG),
        ("test: 0.2", BIG),
        ("seed: 42", str(2**63)),
        ("seed: 42", str(-(2**63))),
        ("seed: 42", "0x8000000000000000"),
        ("C: 1.0", str(2**64)),
    ],
    ids=lambda v: v if len(v) < 30 else f"{v[:12]}...({len(v)})",
)
def test_huge_ints_are_refused(old: str, number: str) -> None:
    """An int of 64 bits or more is refused where it is written, by the YAML loader."""
    assert old in SPEC
    key = old.partition(":")[0]
    text = SPEC.replace(old, f"{key}: {number}", 1)
    short = number if len(number) <= 40 else number[:37] + "..."
    assert _refused(text) == [(*_where(text, number), "", f"{short!r} is too large a number")]


def test_the_largest_64_bit_ints_are_read() -> None:
    text = f"a: {2**63 - 1}\nb: {-(2**63) + 1}\nc: 0x7FFFFFFFFFFFFFFF\nd: 0o777\n"
    assert load_text(text).data == {"a": 2**63 - 1, "b": -(2**63) + 1, "c": 2**63 - 1, "d": 511}


def test_rules_tolerate_data_no_loader_checked() -> None:
    """Rules also run on data mllc's loader did not read (stages read params.yaml with
    PyYAML): an int beyond float range or an unhashable task is skipped, not a crash."""
    doc = load_text(SPEC).data
    doc["data"]["columns"]["petal length (cm)"] = {"type": "float", "min": 10**310, "max": 1}
    doc["data"]["split"]["test"] = 10**310
    doc["problem"]["task"] = ["classification"]
    rules.check(doc, dict(vocab.ESTIMATORS))  # no OverflowError, no TypeError
    doc["problem"]["task"] = {"a": 1}
    rules.check(doc, dict(vocab.ESTIMATORS))


@pytest.mark.parametrize(
    "value,got",
    [("[classification]", "['classification']"), ("{a: 1}", "{'a': 1}")],
)
def test_unhashable_values_are_type_diagnostics(value: str, got: str) -> None:
    """Once a TypeError (unhashable) from the rules: now the models' type error."""
    text = SPEC.replace("task: classification", f"task: {value}")
    assert _refused(text) == [
        (
            *_where(text, value),
            "problem.task",
            f"input should be 'classification' or 'regression' (got {got})",
        )
    ]


@pytest.mark.parametrize(
    "old,new,raw,escaped",
    [
        ("  owner: ml-team@example.com", '  "a\\nb": 1', "a\nb", "a\\nb"),
        (
            '"petal length (cm)": {type: float, min: 0, max: 30}',
            '"a\\rb": {type: float, x: 1}',
            "a\rb",
            "a\\rb",
        ),
        ("labels: {team: botany}", 'labels: {"team\\n": "bo tany"}', None, "team\\n"),
        ("space: {max_depth: [3, 5, null]}", 'space: {"max_depth\\n": []}', None, "depth\\n"),
        (
            "    port: 8081",
            '    after: "x\\ny"\n  "x\\ny": {target: local, after: staging}',
            "x\ny",
            "x\\ny",
        ),
        ("  owner: ml-team@example.com", '  "a\\Nb": 1', "a\x85b", "a\\x85b"),
        ("  owner: ml-team@example.com", '  "a\\Lb": 1', "a\u2028b", "a\\u2028b"),
        ("  owner: ml-team@example.com", '  "a\\Pb": 1', "a\u2029b", "a\\u2029b"),
        ("  owner: ml-team@example.com", '  "a\\vb\\fc": 1', "a\vb\fc", "a\\x0bb\\x0cc"),
        ("  owner: ml-team@example.com", '  "\\e[2J": 1', "\x1b[2J", "\\x1b[2J"),
        ("name: iris", 'name: "ir\\nis"', None, "ir\\nis"),  # quoted by repr()
    ],
)
def test_diagnostics_render_on_one_line(old: str, new: str, raw: str | None, escaped: str) -> None:
    """User text with line breaks or control characters: escaped when rendered, raw in JSON."""
    assert old in SPEC
    text = SPEC.replace(old, new)
    result = load_text_as_spec(FILE, text)
    check_result(result, text)  # every rendered diagnostic is one line
    assert not result.ok
    if raw is not None:  # path and message (as in the JSON report) hold the raw text
        assert any(raw in d.path or raw in d.message for d in result.diagnostics)
    assert any(escaped in d.render() for d in result.diagnostics)


def test_render_escapes_every_control_character() -> None:
    controls = "".join(map(chr, [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]))
    d = Diagnostic(FILE, 2, 3, "a\nb", f"x{controls}y é日本🙂", hint="h\r")
    rendered = d.render()
    assert one_line(rendered)
    assert rendered.startswith(f"{FILE}:2:3: a\\nb: x\\x00\\x01")
    assert rendered.endswith("\\x9f\\u2028\\u2029y é日本🙂 (h\\r)")
    assert "\\t\\n\\x0b\\x0c\\r\\x0e" in rendered and "\\x1f\\x7f\\x80\\x81" in rendered
    assert d.to_json()["path"] == "a\nb" and d.to_json()["message"] == f"x{controls}y é日本🙂"


@settings(max_examples=300, deadline=None, database=None)
@given(path=st.text(max_size=20), message=st.text(min_size=1, max_size=40))
def test_any_diagnostic_renders_on_one_line(path: str, message: str) -> None:
    rendered = Diagnostic(FILE, 1, 1, path, message).render()
    assert one_line(rendered), rendered
    if one_line(path + message):  # nothing to escape: written as is
        assert rendered == (f"{FILE}:1:1: {path}: {message}" if path else f"{FILE}:1:1: {message}")


_TRAILING_NEWLINE = {  # field: the value it is given, the diagnostic's path and message
    "environments.<name>": ("wine", 'environments["wine\n"]', "'wine\\n' is not a lowercase"),
    "environments.host": ("0.0.0.0", "environments.canary", "host '0.0.0.0\\n' is not"),
    "environments.model": ("v1.0.0", "environments.production.model", "'v1.0.0\\n' is neither"),
    "environments.token": ("env:T", "environments.canary.token", "as 'env:NAME'"),
    "kubernetes.cpu": ("2", "environments.production.kubernetes.cpu", "'2\\n' is not"),
    "kubernetes.memory": ("1Gi", "environments.production.kubernetes.memory", "'1Gi\\n' is"),
    "kubernetes.namespace": (
        "wine",
        "environments.production.kubernetes.namespace",
        "'wine\\n' is not a lowercase",
    ),
    "kubernetes.service_account": (
        "wine",
        "environments.production.kubernetes.service_account",
        "'wine\\n' is not a lowercase",
    ),
    "kubernetes.storage_uri": (
        "s3://m/w",
        "environments.production.kubernetes.storage_uri",
        "'s3://m/w\\n' is not a storage URI",
    ),
    "metadata.labels.<key>": ("wine", "metadata.labels", "label key 'wine\\n' is not"),
    "metadata.labels.<value>": ("wine", "metadata.labels", "label team='wine\\n' is not"),
    "metadata.name": ("wine", "metadata.name", "'wine\\n' is not a lowercase"),
    "models.<name>": ("wine", 'models["wine\n"]', "'wine\\n' is not a lowercase"),
    "params.<name>": ("C", "models.svc.params", "'C\\n' is not a parameter name"),
}


def test_trailing_newline_cases_cover_every_field() -> None:
    assert sorted(_TRAILING_NEWLINE) == sorted(FIELDS)


@pytest.mark.parametrize("field", sorted(_TRAILING_NEWLINE))
def test_trailing_newline_is_refused(field: str) -> None:
    """Once accepted ('$' matches before a final newline): now refused, at the field."""
    setter, pattern, _ = FIELDS[field]
    valid, path, message = _TRAILING_NEWLINE[field]
    assert re.fullmatch(pattern, valid)
    doc = copy.deepcopy(_K8S_DOC)
    setter(doc, valid + "\n")
    [(_, _, got_path, got_message)] = _refused_doc(doc)
    assert got_path == path
    assert message in got_message, got_message


@pytest.mark.parametrize(
    "path,value,where,message",
    [
        (
            ("environments", "production", "model"),
            "v1٠.0.0",
            "environments.production.model",
            "'v1٠.0.0' is neither 'latest' nor a version vX.Y.Z",
        ),
        (
            ("monitoring", "schedule"),
            "٥ * * * *",
            "monitoring.schedule",
            "cron minute field '٥' is not valid",
        ),
        (("gates",), ["accuracy >= ٠.٩"], "gates[0]", "'accuracy >= ٠.٩' is not a gate: "),
        (
            (*K8S, "cpu"),
            "٢",
            "environments.production.kubernetes.cpu",
            "'٢' is not a Kubernetes CPU quantity",
        ),
        (
            (*K8S, "memory"),
            "１Gi",
            "environments.production.kubernetes.memory",
            "'１Gi' is not a Kubernetes memory quantity",
        ),
        (
            ("environments", "canary", "token"),
            "env:T٣",
            "environments.canary.token",
            "as 'env:NAME'",
        ),
    ],
)
def test_unicode_digits_are_refused(
    path: tuple[str, ...], value: Any, where: str, message: str
) -> None:
    """Once accepted (\\d is any Unicode digit): patterns are ASCII now."""
    [(_, _, got_path, got_message)] = _refused_doc(replaced(_K8S_DOC, path, value))
    assert got_path == where
    assert message in got_message, got_message


@pytest.mark.parametrize(
    "path,value,message",
    [
        (
            ("environments", "staging", "port"),
            "8081",
            "input should be a valid integer (got '8081')",
        ),
        ((*K8S, "replicas"), True, "input should be a valid integer (got True)"),
        ((*K8S, "replicas"), "3", "input should be a valid integer (got '3')"),
        (("data", "split", "stratify"), "yes", "input should be a valid boolean (got 'yes')"),
        (("data", "split", "stratify"), 1, "input should be a valid boolean (got 1)"),
        (("data", "split", "seed"), "7", "input should be a valid integer (got '7')"),
        (("metadata", "name"), 5, "input should be a valid string (got 5)"),
    ],
)
def test_lax_coercion_is_refused(path: tuple[str, ...], value: Any, message: str) -> None:
    """Once coerced ('8081' -> 8081, 'yes' -> True): refused, as the JSON schema does."""
    doc = copy.deepcopy(_K8S_DOC)
    doc["data"]["split"] = {"test": 0.2}
    _set(*path)(doc, value)
    text = dump(doc)
    assert not SCHEMA.is_valid(load_text(text).data)
    [(line, column, got_path, got_message)] = _refused(text)
    assert (got_path, got_message) == (".".join(path), message)
    assert text.splitlines()[line - 1][column - 1 :].startswith(
        "'" + value if isinstance(value, str) else str(value).lower()
    )


@pytest.mark.parametrize(
    "schedule,message",
    [
        ("*/0 * * * *", "cron minute step 0 must be at least 1"),
        ("0-59/0 * * * *", "cron minute step 0 must be at least 1"),
        ("0 5-1 * * *", "cron hour range 5-1 goes backwards"),
        ("59-0 * * * *", "cron minute range 59-0 goes backwards"),
        ("0 6 * 1/0 *", "cron month step 0 must be at least 1"),
        ("0 6 1,9-3 * *", "cron day range 9-3 goes backwards"),
    ],
)
def test_cron_steps_and_ranges_are_checked(schedule: str, message: str) -> None:
    text = dump(replaced(_K8S_DOC, ("monitoring", "schedule"), schedule))
    line, column = _where(text, "schedule: ")
    assert _refused(text) == [(line, column + 10, "monitoring.schedule", message)]


@pytest.mark.parametrize("schedule", ["*/1 * * * *", "0 1-1 * * *", "0 0-23/2 * * 0-7"])
def test_cron_edge_schedules_are_accepted(schedule: str) -> None:
    doc = replaced(_K8S_DOC, ("monitoring", "schedule"), schedule)
    assert load_text_as_spec(FILE, dump(doc)).ok


def test_lone_surrogate_is_a_diagnostic() -> None:
    """Once a UnicodeEncodeError (API callers may pass any str; files are decoded strictly)."""
    text = SPEC + "# \ud800\n"
    assert _refused(text) == [(1, 1, "", "text is not valid Unicode: surrogates not allowed")]


def _best_times(*texts: str, repeat: int = 7) -> list[float]:
    """The best time to load each text; interleaved and without GC pauses, to resist noise."""
    best = [float("inf")] * len(texts)
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            for i, text in enumerate(texts):
                start = time.perf_counter()
                load_text_as_spec(FILE, text)
                best[i] = min(best[i], time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return best


# Linear checks cost about the same as the baseline (measured: 1.2-1.6x); the
# cubic and quadratic ones these replace cost 50x and more at these sizes.
SLACK = 4


def test_after_chain_is_linear() -> None:
    """Once cubic: 1000 chained environments took ~1 s, a 1 MiB spec hours."""
    n = 800
    doc = copy.deepcopy(BASE_DOCS[0])
    doc["environments"] = {f"e{i}": {"target": "local", "port": 2000 + i} for i in range(n)}
    flat = dump(doc)
    for i in range(1, n):
        doc["environments"][f"e{i}"]["after"] = f"e{i - 1}"
    chained = dump(doc)
    doc["environments"]["e0"]["after"] = f"e{n - 1}"
    cycle = dump(doc)
    assert load_text_as_spec(FILE, flat).ok and load_text_as_spec(FILE, chained).ok
    [(_, _, path, message)] = _refused(cycle)
    assert path == "environments.e0.after"
    loop = ["e0", *(f"e{i}" for i in range(n - 1, 0, -1)), "e0"]  # e0 -> e799 -> ... -> e0
    assert message == "promotion order has a cycle: " + " -> ".join(loop)
    baseline, chained_time, cycle_time = _best_times(flat, chained, cycle)
    assert chained_time < SLACK * baseline, (chained_time, baseline)
    assert cycle_time < SLACK * baseline, (cycle_time, baseline)


def test_category_values_are_linear() -> None:
    """Once quadratic: ``keys.count()`` for every category value."""
    doc = copy.deepcopy(BASE_DOCS[0])
    names = [f"v{i}" for i in range(3_000)]
    doc["data"]["columns"] = {"c": {"type": "category", "values": names}}
    values = dump(doc)
    doc["data"]["columns"] = {"c": {"type": "category", "values": [*names, "v7", 3, "v7", 3]}}
    duplicates = dump(doc)
    doc["data"]["columns"] = {"c": {"type": "category"}}
    doc["features"]["exclude"] = names  # the same list, checked in linear time
    exclude = dump(doc)
    assert load_text_as_spec(FILE, values).ok
    assert _refused(duplicates) == [
        (
            *_where(duplicates, "type: category"),
            "data.columns.c",
            "values lists 3, v7 more than once",
        )
    ]
    values_time, baseline = _best_times(values, exclude)
    assert values_time < SLACK * baseline, (values_time, baseline)
