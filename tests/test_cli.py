"""The command line, run for real: ``python -m mllc`` in a subprocess."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

import mllc.cli.app

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "specs" / "iris.yaml"

BAD = """\
apiVersion: mllc/v1
kind: Lifecycle
metadata:
  name: iris
problem:
  task: classification
  target: target
  metric: rmse
data:
  source:
    sklearn: iris
  splitt: {test: 0.2}
models:
  forest:
    estimator: sklearn.ensemble.RandomForestClassifier
"""
BAD_LINES = [
    "bad.yaml:8:11: problem.metric: 'rmse' is a regression metric, but problem.task is "
    "classification (known: accuracy, precision_macro, recall_macro, f1_macro, "
    "precision_weighted, recall_weighted, f1_weighted, roc_auc, log_loss)",
    "bad.yaml:12:3: data.splitt: unknown key 'splitt' (did you mean 'split'?)",
]


def run_mllc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mllc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A folder with specs/iris.yaml and a bad spec next to it."""
    (tmp_path / "specs").mkdir()
    shutil.copy(IRIS, tmp_path / "specs" / "iris.yaml")
    (tmp_path / "bad.yaml").write_text(BAD, encoding="utf-8")
    return tmp_path


# ------------------------------------------------------------------ version and validate


def test_version() -> None:
    proc = run_mllc("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"mllc {importlib.metadata.version('mllc')}\n"


def test_validate_default_path(repo: Path) -> None:
    proc = run_mllc("validate", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == "1 spec valid\n"


def test_validate_bad_spec(repo: Path) -> None:
    proc = run_mllc("validate", "bad.yaml", cwd=repo)
    assert proc.returncode == 1
    no_traceback(proc)
    assert proc.stdout.splitlines() == BAD_LINES
    assert proc.stderr == "2 errors in 1 of 1 spec\n"


def test_validate_typer_path_gives_the_same_output(repo: Path) -> None:
    fast = run_mllc("validate", "bad.yaml", cwd=repo)
    slow = run_mllc("--traceback", "validate", "bad.yaml", cwd=repo)  # goes through Typer
    assert slow.returncode == 1
    no_traceback(slow)
    assert (slow.stdout, slow.stderr) == (fast.stdout, fast.stderr)


def test_validate_folder_with_good_and_bad(repo: Path) -> None:
    shutil.copy(repo / "bad.yaml", repo / "specs" / "bad.yaml")
    proc = run_mllc("validate", "specs", cwd=repo)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        line.replace("bad.yaml", "specs/bad.yaml") for line in BAD_LINES
    ]
    assert proc.stderr == "2 errors in 1 of 2 specs\n"


@pytest.mark.parametrize("spec", ["specs/iris.yaml", "bad.yaml"])
def test_validate_json(repo: Path, spec: str) -> None:
    proc = run_mllc("validate", "--format", "json", spec, cwd=repo)
    report = json.loads(proc.stdout)
    assert set(report) == {"version", "valid", "specs", "diagnostics"}
    assert report["version"] == 1
    if spec == "bad.yaml":
        assert proc.returncode == 1
        assert report["valid"] is False
        assert report["specs"] == [{"file": "bad.yaml", "name": None, "valid": False}]
        first = report["diagnostics"][0]
        assert first["path"] == "problem.metric"
        assert (first["line"], first["column"], first["code"]) == (8, 11, "invalid")
        assert report["diagnostics"][1]["hint"] == "did you mean 'split'?"
    else:
        assert proc.returncode == 0
        assert report == {
            "version": 1,
            "valid": True,
            "specs": [{"file": "specs/iris.yaml", "name": "iris", "valid": True}],
            "diagnostics": [],
        }


def test_validate_missing_path(tmp_path: Path) -> None:
    proc = run_mllc("validate", "nope.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    no_traceback(proc)
    assert proc.stdout == "nope.yaml: no such file or directory\n"


def test_validate_default_path_without_specs(tmp_path: Path) -> None:
    proc = run_mllc("validate", cwd=tmp_path)
    assert proc.returncode == 1
    no_traceback(proc)
    assert "specs: no such file or directory" in proc.stdout


def test_validate_help() -> None:
    proc = run_mllc("validate", "--help")
    assert proc.returncode == 0
    assert "Usage: mllc validate" in proc.stdout
    assert "--format" in proc.stdout and "every error at once" in proc.stdout


def test_validate_bad_format_is_a_usage_error(repo: Path) -> None:
    proc = run_mllc("validate", "--format", "yaml", "bad.yaml", cwd=repo)
    assert proc.returncode == 2
    no_traceback(proc)
    assert "'yaml' is not one of" in proc.stderr


def test_traceback_flag_keeps_exit_1(repo: Path) -> None:
    proc = run_mllc("--traceback", "validate", "bad.yaml", cwd=repo)
    assert proc.returncode == 1
    no_traceback(proc)


def test_malformed_exclude_is_a_diagnostic_not_a_crash(tmp_path: Path) -> None:
    text = IRIS.read_text(encoding="utf-8").replace(
        "features:  ", "features:\n  exclude: [[a]]\n#", 1
    )
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    proc = run_mllc("validate", "spec.yaml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "features.exclude[0]" in proc.stdout


# ------------------------------------------------------------------ show


def test_show_prints_yaml_that_revalidates(tmp_path: Path) -> None:
    proc = run_mllc("show", "specs/iris.yaml")
    assert proc.returncode == 0, proc.stderr
    shown = yaml.safe_load(proc.stdout)
    assert shown["metadata"]["name"] == "iris"
    assert shown["data"]["split"] == {"test": 0.2, "validation": 0.1, "stratify": True, "seed": 42}
    # Defaults the file does not spell out are filled in.
    assert shown["environments"]["staging"]["host"] == "127.0.0.1"
    assert shown["features"]["exclude"] == []
    (tmp_path / "shown.yaml").write_text(proc.stdout, encoding="utf-8")
    again = run_mllc("validate", "shown.yaml", cwd=tmp_path)
    assert again.returncode == 0, again.stdout
    assert again.stdout == ""


def test_show_json_matches_yaml() -> None:
    as_yaml = run_mllc("show", "specs/iris.yaml")
    as_json = run_mllc("show", "--format", "json", "specs/iris.yaml")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == yaml.safe_load(as_yaml.stdout)


def test_show_bad_spec(repo: Path) -> None:
    proc = run_mllc("show", "bad.yaml", cwd=repo)
    assert proc.returncode == 1
    no_traceback(proc)
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {line}" for line in BAD_LINES]


def test_show_unknown_format(repo: Path) -> None:
    proc = run_mllc("show", "--format", "xml", "specs/iris.yaml", cwd=repo)
    assert proc.returncode == 1
    assert proc.stderr == "error: --format must be yaml or json, not 'xml'\n"


# ------------------------------------------------------------------ explain


def test_explain_field() -> None:
    proc = run_mllc("explain", "data.split.test")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0] == "data.split.test: number"
    assert "Held-out test fraction, in (0, 1)." in proc.stdout
    assert "  default: 0.2" in lines


def test_explain_named_field() -> None:
    proc = run_mllc("explain", "models.forest.params")
    assert proc.returncode == 0
    assert proc.stdout.startswith("models.<name>.params: map of name")
    assert "Constructor parameters of the estimator." in proc.stdout


def test_explain_top_level() -> None:
    proc = run_mllc("explain")
    assert proc.returncode == 0
    for field in ("apiVersion", "metadata", "models", "environments"):
        assert any(line.startswith(field + "  (") for line in proc.stdout.splitlines()), field


def test_explain_unknown_field() -> None:
    proc = run_mllc("explain", "data.splt")
    assert proc.returncode == 1
    no_traceback(proc)
    assert proc.stderr == (
        "error: no field 'data.splt' in the spec language (did you mean 'data.split'?)\n"
    )


# ------------------------------------------------------------------ help texts and imports


def _params() -> list[tuple[str, Any]]:
    """(command, parameter) for the app's options and every command's options and arguments."""
    root: Any = typer.main.get_command(mllc.cli.app.app)
    assert root.commands, "the app has no commands"
    found = [("mllc", p) for p in root.params]
    for name, command in root.commands.items():
        assert (command.help or "").strip(), f"command {name} has no help"
        found += [(name, p) for p in command.params]
    return found


def test_every_option_and_argument_has_help() -> None:
    params = _params()
    assert len(params) >= 8
    missing = [f"{cmd} {p.name}" for cmd, p in params if not (getattr(p, "help", "") or "").strip()]
    assert not missing, f"no help text: {missing}"


def test_plain_validate_imports_nothing_heavy() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        sys.argv = ["mllc", "validate", "specs/iris.yaml"]
        import mllc.__main__
        try:
            mllc.__main__.main()
        except SystemExit as exc:
            code = exc.code
        else:
            code = "no exit"
        print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["code"] == 0, proc.stderr
    top = {name.split(".")[0] for name in out["modules"]}
    assert "mllc" in top and "pydantic" in top  # it did validate
    heavy = {"dvc", "sklearn", "pandas", "git", "jinja2", "typer"} & top
    assert not heavy, f"mllc validate imported {sorted(heavy)}"
