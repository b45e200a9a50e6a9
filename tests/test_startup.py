"""What each read-only command loads: the layers keep `validate` and `plan` free of the
heavy libraries (DVC, pandas, scikit-learn, ...), which only apply, monitoring and the
stages need. Checked on real runs of the CLI with ``python -X importtime``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers_repo import env, make_fresh_repo

HEAVY = {
    "dvc",
    "pandas",
    "numpy",
    "sklearn",
    "scipy",
    "pyarrow",
    "joblib",
    "jinja2",
    "fsspec",
    "dask",
    "distributed",
}


def imported(repo: Path, *args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mllc", *args],
        cwd=repo,
        env=env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 2), proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "mllc" in names, "no import trace: is -X importtime honoured?"
    return names


@pytest.mark.parametrize("command", [["validate", "specs"], ["plan"]])
def test_read_only_commands_load_no_heavy_library(tmp_path: Path, command: list[str]) -> None:
    repo = make_fresh_repo(tmp_path / "repo")
    loaded = imported(repo, *command)
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
    assert heavy == [], f"mllc {command[0]} loads {heavy[:10]}"


def test_validate_loads_only_the_spec_layer(tmp_path: Path) -> None:
    repo = make_fresh_repo(tmp_path / "repo")
    ours = {n for n in imported(repo, "validate", "specs") if n.startswith("mllc.")}
    layers = {n.split(".")[1] for n in ours}
    # the fast path: the CLI's output module, the API facade, the spec layer and leaves
    assert layers <= {
        "cli", "api", "spec", "errors", "saferead", "yaml12", "names", "atomic",
    }, sorted(ours)  # fmt: skip
    assert "mllc.cli.app" not in ours  # typer is not loaded for validate
