"""A retrain of the iris example against a hand-written script doing the same work.

Target (issue 14), medians of interleaved runs in the same process tree:

- a full retrain through ``mllc apply`` (a fresh repository: every stage runs, the
  version is registered; no environments, so no server) <= 1.5x the script;
- ``dvc repro -f`` with mllc's stages <= 1.5x the script when run as apply runs it
  (the warm stage runner, ``MLLC_STAGE_RUNNER``), and no slower than before when a user
  runs it by hand (cold stages);
- one stage's own cost (``mllc stage split iris``: start, the split itself, exit) under
  the runner <= 0.2x ``python -c "import sklearn, pandas"``, the floor of a cold stage.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from common import (
    PYTHON,
    ROOT,
    compared,
    init_repo,
    interleaved,
    iris_spec,
    run_quietly,
    scripts_env,
)

from mllc.apply.dvc import stage_runner

MLLC = str(Path(PYTHON).parent / "mllc")
ESTIMATORS = ["sklearn.linear_model.LogisticRegression", "sklearn.ensemble.RandomForestClassifier"]


def _fresh(base: Path) -> Path:
    """A repository with the iris spec, never applied."""
    repo = base / "fresh"
    (repo / "specs").mkdir(parents=True)
    (repo / "specs" / "iris.yaml").write_text(iris_spec(), encoding="utf-8")
    init_repo(repo)
    return repo


def _apply_command(base: Path, fresh: Path) -> Sequence[str]:
    """A shell line: copy the fresh repository, then time only ``mllc apply`` in it."""
    return [PYTHON, str(ROOT / "bench" / "apply_fresh.py"), str(fresh), str(base / "runs")]


def run(quick: bool = False) -> None:
    base = Path(tempfile.mkdtemp(prefix="mllc-bench-repro-"))
    try:
        fresh = _fresh(base)
        repo = base / "repo"
        shutil.copytree(fresh, repo)
        run_quietly([MLLC, "apply", "--auto-approve"], repo)
        os.environ["PATH"] = scripts_env()["PATH"]
        script = [PYTHON, str(ROOT / "bench" / "handwritten_iris.py"), str(base / "hw")]
        repro = [PYTHON, "-m", "dvc", "repro", "-f", "pipelines/iris/dvc.yaml"]
        with stage_runner(ESTIMATORS) as runner:
            warm = ["env", *(f"{k}={v}" for k, v in runner.items()), *repro]
            medians = interleaved(
                {
                    "script": script,
                    "apply": _apply_command(base, fresh),
                    "repro warm": warm,
                    "repro cold": repro,
                },
                cwd=repo,
                repeat=3 if quick else 5,
                warmup=1,
            )
            compared(
                ("hand-written script (iris)", medians["script"], "anchor"),
                ("mllc apply, fresh repository", medians["apply"], "the script (target <= 1.5x)"),
                ("dvc repro -f, as apply runs it", medians["repro warm"], "the script (<= 1.5x)"),
                ("dvc repro -f, by hand (cold)", medians["repro cold"], "the script (was 3.1x)"),
            )
            stage = [MLLC, "stage", "split", "iris"]
            startup = interleaved(
                {
                    "imports": [PYTHON, "-c", "import sklearn, pandas"],
                    "warm": ["env", *(f"{k}={v}" for k, v in runner.items()), *stage],
                    "cold": stage,
                },
                cwd=repo,
                repeat=5 if quick else 11,
            )
        compared(
            ('python -c "import sklearn, pandas"', startup["imports"], "floor"),
            ("mllc stage split iris, under apply", startup["warm"], "floor (target <= 0.2x)"),
            ("mllc stage split iris, by hand", startup["cold"], "floor"),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
