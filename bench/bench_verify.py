"""mllc verify of a registered version against a plain ``dvc repro --force`` of its pipeline.

Target (issue 15): ``mllc verify NAME@vX.Y.Z`` costs no more than 1.2x ``dvc repro
--force`` of the same pipeline, run by hand in the same repository, medians of
interleaved runs. Verify does more than the repro: it checks the tag and the lock,
hashes every cached output of the version in the local DVC cache, checks the worktree
out at the tag, restores the inputs with their hashes checked, recomputes every stage
into an empty cache of its own and compares every output and record; it runs the
stages warm (forked from a runner that imported the libraries once), which the plain
repro cannot.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from common import (
    PYTHON,
    applied_iris_repo,
    compared,
    interleaved,
    scripts_env,
)

MLLC = str(Path(PYTHON).parent / "mllc")


def run(quick: bool = False) -> None:
    base = Path(tempfile.mkdtemp(prefix="mllc-bench-verify-"))
    try:
        repo = applied_iris_repo(base / "repo")
        os.environ["PATH"] = scripts_env()["PATH"]  # DVC's stages run this `mllc stage`
        medians = interleaved(
            {
                "repro": [PYTHON, "-m", "dvc", "repro", "--force", "pipelines/iris/dvc.yaml"],
                "verify": [MLLC, "verify", "iris@v1.0.0"],
            },
            cwd=repo,
            repeat=3 if quick else 5,
            warmup=1,
        )
        compared(
            ("dvc repro --force (by hand)", medians["repro"], "anchor"),
            ("mllc verify iris@v1.0.0", medians["verify"], "dvc repro --force (target <= 1.2x)"),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
