"""Start-up and throughput of `mllc validate` against `python -c "import yaml, pydantic"`.

Targets (issues 2 and 14): validate of one spec <= 1.5x the floor; >= 1,000 specs/s
when validating 1,000 specs in one call. Then where a validate's time goes beyond the
floor, phase by phase in one cold interpreter (medians): what Pydantic itself costs
once a model is defined and built is the part no change of ours removes.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
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
    phases(repeat)


PHASES = """
import json, sys, time
t = [time.perf_counter()]
import yaml, pydantic
t.append(time.perf_counter())
from pydantic import BaseModel
t.append(time.perf_counter())
import mllc.spec.models
t.append(time.perf_counter())
import mllc.api, mllc.cli.output
t.append(time.perf_counter())
from mllc.spec.load import load_file
load_file(sys.argv[1])
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
NAMES = (
    "import yaml, pydantic (the floor's imports)",
    "Pydantic's BaseModel machinery",
    "the spec models (classes, schema deferred)",
    "the rest of mllc validate's modules",
    "building the spec schema, validating one spec",
)


def phases(repeat: int) -> None:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [PYTHON, "-c", PHASES, str(ROOT / "specs" / "iris.yaml")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out))
    print("   where validate's time goes, in one cold interpreter (medians):")
    for i, name in enumerate(NAMES):
        print(f"     {name:<48} {statistics.median(r[i] for r in runs) * 1000:7.1f} ms")
