"""Start-up and throughput of `mllc validate` against `python -c "import yaml, pydantic"`.

Targets (issue 2): validate of one spec <= 1.5x the floor; >= 1,000 specs/s
when validating 1,000 specs in one call.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from common import PYTHON, ROOT, compared, interleaved, time_command

# The console script, as users run it.
MLLC = [str(Path(PYTHON).parent / "mllc")]


def _many_specs(folder: Path, count: int) -> None:
    base = yaml.safe_load((ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8"))
    for i in range(count):
        base["metadata"]["name"] = f"iris-{i:04d}"
        base["data"]["split"]["seed"] = i
        (folder / f"iris-{i:04d}.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")


def run(quick: bool = False) -> None:
    repeat = 7 if quick else 21
    medians = interleaved(
        {
            "floor": [PYTHON, "-c", "import yaml, pydantic"],
            "version": [*MLLC, "--version"],
            "validate": [*MLLC, "validate", "specs/iris.yaml"],
        },
        cwd=ROOT,
        repeat=repeat,
    )
    compared(
        ('python -c "import yaml, pydantic"', medians["floor"], "floor"),
        ("mllc --version", medians["version"], "floor"),
        ("mllc validate specs/iris.yaml", medians["validate"], "floor (target <= 1.5x)"),
    )
    count = 1000
    tmp = Path(tempfile.mkdtemp(prefix="mllc-bench-"))
    try:
        _many_specs(tmp, count)
        best = min(time_command([*MLLC, "validate", str(tmp)], ROOT) for _ in range(3))
        print(
            f"   validate {count} specs in one call: {best:.2f} s, "
            f"{count / best:,.0f} specs/s (target >= 1,000 specs/s)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
