"""Compile: golden files of what every example spec generates, determinism, isolation of values.

Golden files live in tests/golden/compile/<case>/expected/ (one tree per case);
``pytest --regen-golden`` rewrites them, and the diff is reviewed before committing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import assert_generated_header, check_golden_tree

from mllc.compile import Bundle, compile_spec
from mllc.compile.dvc import dvc_document, params_document
from mllc.observe.pipeline import cached_outputs
from mllc.spec.load import load_file
from mllc.spec.models import Lifecycle
from mllc.yaml12 import load_yaml

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "compile"


def _cases() -> list[tuple[str, Path, str]]:
    """(case name, spec file, the source path written in headers)."""
    cases = [(p.stem, p, f"specs/{p.name}") for p in sorted((ROOT / "specs").glob("*.yaml"))]
    for folder in sorted(GOLDEN.iterdir()):
        if (folder / "spec.yaml").is_file():
            cases.append((folder.name, folder / "spec.yaml", "specs/spec.yaml"))
    return cases


def _spec(spec_file: Path) -> Lifecycle:
    result = load_file(spec_file)
    assert result.spec is not None, [d.render() for d in result.diagnostics]
    return result.spec


def _compile(spec_file: Path, source: str) -> Bundle:
    result = load_file(spec_file)
    assert result.spec is not None, [d.render() for d in result.diagnostics]
    return compile_spec(result.spec, source)


@pytest.mark.parametrize(("case", "spec_file", "source"), _cases(), ids=lambda v: str(v))
def test_golden(case: str, spec_file: Path, source: str, regen_golden: bool) -> None:
    check_golden_tree(
        dict(_compile(spec_file, source).items()), GOLDEN / case / "expected", regen_golden
    )


def test_same_spec_gives_byte_identical_files() -> None:
    spec_file = ROOT / "specs" / "iris.yaml"
    first = dict(_compile(spec_file, "specs/iris.yaml").items())
    # A fresh process, so no cache or dict ordering of this one can help.
    code = (
        "import sys, json; from mllc.compile import compile_spec;"
        "from mllc.spec.load import load_file;"
        "b = compile_spec(load_file(sys.argv[1]).spec, 'specs/iris.yaml');"
        "print(json.dumps(dict(b.items())))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(spec_file)], capture_output=True, text=True, check=True
    )
    assert yaml.safe_load(out.stdout) == first


def test_every_file_has_the_generated_header() -> None:
    for _, spec_file, source in _cases():
        for rel, text in _compile(spec_file, source).items():
            assert_generated_header(text, source, rel)


def test_spec_values_never_reach_a_shell_line() -> None:
    """Only DNS-label names appear in built-in commands; other values go through params.yaml."""
    bundle = _compile(GOLDEN / "custom-command" / "spec.yaml", "specs/spec.yaml")
    dvc = yaml.safe_load(bundle["pipelines/prices/dvc.yaml"])
    commands = [s["cmd"] for s in dvc["stages"].values() if "cmd" in s]
    commands += [s["do"]["cmd"] for s in dvc["stages"].values() if "do" in s]
    built_in = [c for c in commands if c.startswith("mllc stage ")]
    assert len(built_in) == 5  # prepare, split, train (foreach), evaluate, select
    for cmd in built_in:
        assert "rm -rf" not in cmd and ";" not in cmd
        assert all(part.replace("-", "").replace("${item}", "x").isalnum() for part in cmd.split())
    params = yaml.safe_load(bundle["pipelines/prices/params.yaml"])
    assert params["problem"]["target"] == "price; rm -rf /"
    # The user's own command is run as they wrote it, with their declared deps.
    own = dvc["stages"]["train-own"]
    assert own["cmd"] == "python src/train.py --out pipelines/prices/candidates/own.joblib"
    assert own["deps"] == ["pipelines/prices/data/train.parquet", "src/train.py", "src/features.py"]


def test_only_the_changed_candidate_declares_the_changed_param() -> None:
    """Each train stage tracks its own candidate's params, never another's."""
    bundle = _compile(ROOT / "specs" / "iris.yaml", "specs/iris.yaml")
    dvc = yaml.safe_load(bundle["pipelines/iris/dvc.yaml"])
    train = dvc["stages"]["train"]["do"]["params"][0]["pipelines/iris/params.yaml"]
    assert "models.${item}" in train and "models" not in train
    for stage in ("prepare", "split"):
        keys = dvc["stages"][stage]["params"][0]["pipelines/iris/params.yaml"]
        # prepare reads features.exclude (an excluded column's gaps are not "missing")
        assert not any(k.startswith("models") for k in keys), stage
        assert not any(k.startswith("features") and k != "features.exclude" for k in keys)
    # gates, environments, monitoring and metadata are never stage params
    params = yaml.safe_load(bundle["pipelines/iris/params.yaml"])
    assert set(params) == {"mllc", "problem", "data", "features", "models"}


@pytest.mark.parametrize(("case", "spec_file", "source"), _cases(), ids=lambda v: str(v))
def test_only_metrics_and_plots_are_uncached(case: str, spec_file: Path, source: str) -> None:
    """DVC run-caches no stage with a ``cache: false`` plain out (only metrics and plots may
    be uncached), so the reports that are not metrics are cached outs: every stage stays
    restorable from the run cache, select included."""
    bundle = _compile(spec_file, source)
    dvc = yaml.safe_load(next(text for path, text in bundle.items() if path.endswith("dvc.yaml")))
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        for out in body.get("outs", []):
            assert not (isinstance(out, dict) and next(iter(out.values())).get("cache") is False), (
                name,
                out,
            )


@pytest.mark.parametrize(("case", "spec_file", "source"), _cases(), ids=lambda v: str(v))
def test_metrics_are_what_a_reviewer_compares(case: str, spec_file: Path, source: str) -> None:
    """Each candidate's validation and test metrics and the selected model's: nothing else
    (the data and training reports would add a column per field to ``dvc metrics show``)."""
    bundle = _compile(spec_file, source)
    dvc = yaml.safe_load(next(text for path, text in bundle.items() if path.endswith("dvc.yaml")))
    name = dvc["stages"]["select"]["cmd"].split()[-1]
    spec = _spec(spec_file)
    metrics = [
        (stage, next(iter(m)))
        for stage, body in dvc["stages"].items()
        for m in body.get("do", body).get("metrics", [])
    ]
    assert metrics == [
        *(("evaluate", f"pipelines/{name}/reports/candidates/{m}.json") for m in spec.models),
        ("select", f"pipelines/{name}/metrics.json"),
    ]


@pytest.mark.parametrize(("case", "spec_file", "source"), _cases(), ids=lambda v: str(v))
def test_cached_outputs_are_every_plain_out(case: str, spec_file: Path, source: str) -> None:
    """What apply and preview stop Git tracking: the expanded plain outs, nothing else."""
    spec = _spec(spec_file)
    name = spec.metadata.name
    root = f"pipelines/{name}"
    estimators = [m for m, c in spec.models.items() if c.estimator is not None]
    commands = [m for m, c in spec.models.items() if c.command is not None]
    splits = ["train", "validation", "test"] if spec.data.split.validation else ["train", "test"]
    assert cached_outputs(spec) == [
        f"{root}/data/clean.parquet",
        f"{root}/reports/data.json",
        *(f"{root}/data/{s}.parquet" for s in splits),
        *(
            p
            for m in estimators
            for p in (f"{root}/candidates/{m}.joblib", f"{root}/reports/train/{m}.json")
        ),
        *(f"{root}/candidates/{m}.joblib" for m in commands),
        f"{root}/model.joblib",
        f"{root}/lineage.json",
    ]


def test_compile_cli_writes_then_reports_unchanged(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    run = [sys.executable, "-m", "mllc", "compile"]
    first = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert "wrote" in first.stdout and (tmp_path / "pipelines/iris/dvc.yaml").is_file()
    second = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert second.returncode == 0 and second.stdout == ""
    assert "0 written" in second.stderr
    check = subprocess.run([*run, "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0
    dvc_yaml = tmp_path / "pipelines/iris/dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text(encoding="utf-8") + "# hand edit\n", encoding="utf-8")
    check = subprocess.run([*run, "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 1 and "pipelines/iris/dvc.yaml" in check.stdout
    assert "Traceback" not in check.stderr


def test_compile_refuses_an_invalid_spec(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    text = (ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8")
    (tmp_path / "specs" / "iris.yaml").write_text(text.replace("task: classification", "task: x"))
    proc = subprocess.run(
        [sys.executable, "-m", "mllc", "compile"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "specs/iris.yaml:" in proc.stderr and "problem.task" in proc.stderr
    assert not (tmp_path / "pipelines").exists()


@pytest.mark.parametrize(("case", "spec_file", "source"), _cases(), ids=lambda v: str(v))
def test_generated_texts_read_back_as_their_documents(case: str, spec_file: Path, source: str):
    """The plan compares the pipeline with dvc.lock using the documents compile wrote
    (mllc.observe.world), not a parse of the texts: they must be what DVC reads."""
    spec = _spec(spec_file)
    bundle = _compile(spec_file, source)
    name = spec.metadata.name
    assert load_yaml(bundle[f"pipelines/{name}/dvc.yaml"]) == dvc_document(spec)
    assert load_yaml(bundle[f"pipelines/{name}/params.yaml"]) == params_document(spec)
