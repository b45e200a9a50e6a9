"""`dvc repro` of the iris example against a hand-written script doing the same work.

Also the start-up of one built-in stage against `python -c "import sklearn, pandas"`
(target <= 1.3x): the pipeline's overhead should be DVC's per-stage cost, nothing
of ours on top.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import PYTHON, ROOT, interleaved, table


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(PYTHON).parent) + os.pathsep + env.get("PATH", "")
    return env


def _run(args: list[str], cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, env=_env(), check=True, capture_output=True)


def _repo(base: Path) -> Path:
    repo = base / "repo"
    (repo / "specs").mkdir(parents=True)
    shutil.copy(ROOT / "specs" / "iris.yaml", repo / "specs")
    _run(["git", "init", "-q"], repo)
    _run([PYTHON, "-m", "dvc", "init", "-q"], repo)
    _run([PYTHON, "-m", "mllc", "compile"], repo)
    _run([PYTHON, "-m", "dvc", "repro", "pipelines/iris/dvc.yaml"], repo)
    return repo


def run(quick: bool = False) -> None:
    base = Path(tempfile.mkdtemp(prefix="mllc-bench-repro-"))
    try:
        repo = _repo(base)
        os.environ["PATH"] = _env()["PATH"]
        medians = interleaved(
            {
                "dvc repro": [PYTHON, "-m", "dvc", "repro", "-f", "pipelines/iris/dvc.yaml"],
                "script": [PYTHON, str(ROOT / "bench" / "handwritten_iris.py"), str(base / "hw")],
            },
            cwd=repo,
            repeat=3 if quick else 5,
            warmup=1,
        )
        script = medians["script"]
        table(
            [
                ("hand-written script (iris)", script, "anchor"),
                (
                    "dvc repro -f (iris, 6 stages)",
                    medians["dvc repro"],
                    f"{medians['dvc repro'] / script:.2f}x the script",
                ),
            ]
        )
        startup = interleaved(
            {
                "imports": [PYTHON, "-c", "import sklearn, pandas"],
                "stage": [str(Path(PYTHON).parent / "mllc"), "stage", "split", "iris"],
            },
            cwd=repo,
            repeat=5 if quick else 11,
        )
        floor = startup["imports"]
        table(
            [
                ('python -c "import sklearn, pandas"', floor, "floor"),
                (
                    "mllc stage split iris",
                    startup["stage"],
                    f"{startup['stage'] / floor:.2f}x floor (target <= 1.3x)",
                ),
            ]
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
