"""`dvc repro` of the iris example against a hand-written script doing the same work.

Also the start-up of one built-in stage against `python -c "import sklearn, pandas"`
(target <= 1.3x): the pipeline's overhead should be DVC's per-stage cost, nothing
of ours on top.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from common import PYTHON, ROOT, compared, interleaved, run_quietly, scripts_env


def _repo(base: Path) -> Path:
    repo = base / "repo"
    (repo / "specs").mkdir(parents=True)
    shutil.copy(ROOT / "specs" / "iris.yaml", repo / "specs")
    run_quietly(["git", "init", "-q"], repo)
    run_quietly([PYTHON, "-m", "dvc", "init", "-q"], repo)
    run_quietly([PYTHON, "-m", "mllc", "compile"], repo)
    run_quietly([PYTHON, "-m", "dvc", "repro", "pipelines/iris/dvc.yaml"], repo)
    return repo


def run(quick: bool = False) -> None:
    base = Path(tempfile.mkdtemp(prefix="mllc-bench-repro-"))
    try:
        repo = _repo(base)
        os.environ["PATH"] = scripts_env()["PATH"]
        medians = interleaved(
            {
                "dvc repro": [PYTHON, "-m", "dvc", "repro", "-f", "pipelines/iris/dvc.yaml"],
                "script": [PYTHON, str(ROOT / "bench" / "handwritten_iris.py"), str(base / "hw")],
            },
            cwd=repo,
            repeat=3 if quick else 5,
            warmup=1,
        )
        compared(
            ("hand-written script (iris)", medians["script"], "anchor"),
            ("dvc repro -f (iris, 6 stages)", medians["dvc repro"], "the script"),
        )
        startup = interleaved(
            {
                "imports": [PYTHON, "-c", "import sklearn, pandas"],
                "stage": [str(Path(PYTHON).parent / "mllc"), "stage", "split", "iris"],
            },
            cwd=repo,
            repeat=5 if quick else 11,
        )
        compared(
            ('python -c "import sklearn, pandas"', startup["imports"], "floor"),
            ("mllc stage split iris", startup["stage"], "floor (target <= 1.3x)"),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
