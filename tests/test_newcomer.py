"""A newcomer's first hour: what the CLI says when one starts, plans a first build,
asks for predictions and explains a field. Real CLI, real Git and DVC."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from helpers_repo import mllc

from mllc.ops.predict import render
from mllc.spec.reference import walk


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return mllc(*args, cwd=cwd, check=False)  # the real CLI, its exit code left to the test


@pytest.mark.parametrize("command", [["plan"], ["validate"], ["apply", "--auto-approve"]])
def test_a_folder_without_specs_says_how_to_start(tmp_path: Path, command: list[str]) -> None:
    proc = cli(*command, cwd=tmp_path)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "specs: no such file or directory" in out
    assert "run 'mllc init'" in out, out
    assert "Traceback" not in out


@pytest.mark.slow
def test_a_first_build_is_additions_and_nothing_runs_yet(tmp_path: Path) -> None:
    """Stages that never ran are new (``+``, action create) in text, JSON and Markdown,
    and an environment with no server says "nothing running", never Python's None."""
    assert cli("init", ".", cwd=tmp_path).returncode == 0
    text = cli("plan", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "None" not in text.stdout
    assert "staging: nothing running → a version known after apply" in text.stdout
    for stage in ("prepare", "split", "train@logreg", "train@forest", "evaluate", "select"):
        assert f"    + iris/stage/{stage}  (retrain)" in text.stdout
    assert "~" not in text.stdout  # nothing exists yet: nothing changes
    assert re.search(r"Plan: \d+ to add, 0 to change, 0 to destroy\.", text.stdout)

    plan = json.loads(cli("plan", "--format", "json", cwd=tmp_path).stdout)
    stages = [c for c in plan["changes"] if c["kind"] == "stage"]
    assert len(stages) == 6 and {c["action"] for c in stages} == {"create"}
    assert plan["summary"]["change"] == 0

    markdown = cli("plan", "--format", "markdown", cwd=tmp_path).stdout
    rows = [line for line in markdown.splitlines() if "iris/stage/" in line]
    assert len(rows) == 6 and all("| create |" in row for row in rows), rows
    assert "None" not in markdown


def test_predictions_have_a_header_naming_every_column() -> None:
    answer = {
        "model_name": "iris",
        "model_version": "v1.0.0",
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [3], "data": [0, 2, 1]},
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [3, 3],
                "data": [0.97, 0.03, 0.0, 0.0, 0.2, 0.8, 0.1, 0.85, 0.05],
            },
        ],
    }
    lines = render(answer).splitlines()
    assert lines[0] == "# iris v1.0.0"
    assert lines[1].split() == ["row", "prediction", "P(0)", "P(1)", "P(2)"]
    assert [line.split() for line in lines[2:]] == [
        ["0", "0", "0.970", "0.030", "0.000"],
        ["1", "2", "0.000", "0.200", "0.800"],
        ["2", "1", "0.100", "0.850", "0.050"],
    ]
    # Fewer distinct predictions than classes: the columns are still named, by position.
    one = {**answer, "outputs": [{**answer["outputs"][0], "data": [1]}, answer["outputs"][1]]}
    one["outputs"][1] = {**answer["outputs"][1], "shape": [1, 3], "data": [0.1, 0.8, 0.1]}
    header = render(one).splitlines()[1].split("  ")
    assert [h.strip() for h in header if h.strip()] == [
        "row",
        "prediction",
        "P(class #1)",
        "P(class #2)",
        "P(class #3)",
    ]
    regression = {"model_name": "r", "model_version": "v1.0.0", "outputs": [answer["outputs"][0]]}
    assert render(regression).splitlines()[1].split() == ["row", "prediction"]


# The words a type may be shown with: user terms, never a Python repr.
_TYPE_WORD = re.compile(r"^[a-z0-9_/→ |().#-]+$|^Lifecycle$")


def test_every_explained_type_is_in_user_terms() -> None:
    shown = {d.path: d.type_name for d in walk()}
    bad = {p: t for p, t in shown.items() if not _TYPE_WORD.match(t) or "annotated" in t}
    assert not bad, bad
    assert shown["data.columns.<name>.values"] == "list of (string | integer | boolean)"


def test_explain_data_columns_shows_no_python_repr(tmp_path: Path) -> None:
    proc = cli("explain", "data.columns", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "values  (list of (string | integer | boolean); default none)" in proc.stdout
    for python in ("ForwardRef", "Annotated", "AfterValidator", "<class", "typing."):
        assert python not in proc.stdout


def test_probability_columns_are_named_by_the_versions_classes(tmp_path: Path) -> None:
    """The classes come from the confusion plot the version's tagged commit holds,
    ordered as scikit-learn orders ``classes_`` (numbers by value)."""
    from mllc.ops.predict import version_classes

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    plots = tmp_path / "pipelines" / "tiers" / "plots"
    plots.mkdir(parents=True)
    (plots / "confusion.csv").write_text("actual,predicted\n10,9\n9,9\n2,10\n9,2\n")
    git("add", "pipelines")
    git("commit", "-qm", "v1")
    git("tag", "-a", "tiers@v1.0.0", "-m", "v1")
    classes = version_classes(tmp_path, "tiers", "v1.0.0")
    assert classes == ["2", "9", "10"]
    assert version_classes(tmp_path, "tiers", "v2.0.0") is None

    answer = {
        "model_name": "tiers",
        "model_version": "v1.0.0",
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [1], "data": [9]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [1, 3], "data": [0, 1, 0]},
        ],
    }
    assert render(answer, classes).splitlines()[1].split() == [
        "row",
        "prediction",
        "P(2)",
        "P(9)",
        "P(10)",
    ]
