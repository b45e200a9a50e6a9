"""The committed JSON Schema and field reference match the models, and say something."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

import mllc.api
import mllc.spec.reference

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "lifecycle.v1.json"
DOCS = ROOT / "docs" / "spec.md"
IRIS = ROOT / "specs" / "iris.yaml"


def schema_check(cwd: Path, out: str, *kind: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mllc", "schema", "--check", "--out", out, *kind],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_committed_schema_is_current() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == mllc.api.schema_text(), (
        "schemas/lifecycle.v1.json is stale: run `make docs`"
    )


def test_committed_reference_is_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == mllc.spec.reference.markdown(), (
        "docs/spec.md is stale: run `make docs`"
    )


def test_schema_check_exit_codes(tmp_path: Path) -> None:
    current = schema_check(ROOT, "schemas/lifecycle.v1.json")
    assert current.returncode == 0, current.stderr
    assert current.stderr == "schemas/lifecycle.v1.json is up to date\n"

    missing = schema_check(tmp_path, "schema.json")
    assert missing.returncode == 1
    assert "schema.json is stale" in missing.stderr
    assert not (tmp_path / "schema.json").exists(), "--check must write nothing"

    stale = tmp_path / "stale.json"
    shutil.copy(SCHEMA, stale)
    with stale.open("a", encoding="utf-8") as fh:
        fh.write(" ")
    proc = schema_check(tmp_path, "stale.json")
    assert proc.returncode == 1
    assert proc.stderr == "error: stale.json is stale: run 'mllc schema --out stale.json'\n"
    assert "Traceback" not in proc.stderr
    # the hint names the kind, or following it would write the lifecycle schema there
    plan = schema_check(tmp_path, "stale.json", "--kind", "plan")
    assert plan.stderr == (
        "error: stale.json is stale: run 'mllc schema --kind plan --out stale.json'\n"
    )


@pytest.mark.parametrize("kind", ["lifecycle", "plan", "monitor", "verify"])
def test_each_schema_checks_against_the_file_make_docs_writes(kind: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mllc", "schema", "--check", "--kind", kind],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_schema_accepts_the_example(validator: Draft202012Validator) -> None:
    spec = yaml.safe_load(IRIS.read_text(encoding="utf-8"))
    errors = [e.message for e in validator.iter_errors(spec)]
    assert not errors


def test_schema_rejects_an_unknown_top_level_key(validator: Draft202012Validator) -> None:
    spec = yaml.safe_load(IRIS.read_text(encoding="utf-8"))
    spec["modles"] = {}
    errors = [e.message for e in validator.iter_errors(spec)]
    assert len(errors) == 1 and "'modles' was unexpected" in errors[0]


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("metadata", "name", "Iris"),
        ("problem", "task", "clasification"),
        ("data", "source", {"csv": "../x.csv"}),
    ],
)
def test_schema_rejects_what_validate_rejects(
    validator: Draft202012Validator, section: str, key: str, value: object
) -> None:
    spec = yaml.safe_load(IRIS.read_text(encoding="utf-8"))
    spec[section][key] = value
    assert list(validator.iter_errors(spec)), f"{section}.{key}={value!r} was accepted"


def test_every_field_is_documented() -> None:
    docs = list(mllc.spec.reference.walk())
    assert len(docs) > 50
    undocumented = [d.path for d in docs if not d.description.strip()]
    assert not undocumented, f"fields without a description: {undocumented}"


def test_every_field_is_in_the_reference() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [d.path for d in mllc.spec.reference.walk() if f"| `{d.path}` |" not in text]
    assert not missing


def test_committed_plan_schema_is_current() -> None:
    from mllc.api import schema_text

    committed = (ROOT / "schemas" / "plan.v1.json").read_text(encoding="utf-8")
    assert committed == schema_text("plan"), "schemas/plan.v1.json is stale: run make docs"


def test_committed_monitor_report_schema_is_current_and_validates_a_report() -> None:
    import jsonschema

    from mllc.api import schema_text
    from mllc.observe.monitoring import MonitorReport

    committed = (ROOT / "schemas" / "monitor-report.v1.json").read_text(encoding="utf-8")
    assert committed == schema_text("monitor"), "schemas/monitor-report.v1.json is stale"
    schema = json.loads(committed)
    report = {
        "mllc_version": "0", "id": "abc", "lifecycle": "iris", "environment": "staging",
        "version": "v1.0.0", "time": "2026-01-01T00:00:00Z",
        "batch": {"source": "b.csv", "rows": 3, "labelled": False, "sha256": "0"},
        "reference": {"path": "pipelines/iris/data/train.parquet", "rows": 9},
        "drift": None, "performance": None, "breach": False, "reasons": [],
        "on_breach": "alert",
    }  # fmt: skip
    dumped = json.loads(MonitorReport.model_validate(report).model_dump_json())
    jsonschema.validate(dumped, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**dumped, "format_version": "2"}, schema)
