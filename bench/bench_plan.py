"""No-op `mllc plan` against `dvc status` on the same repo, with 1 and with 50 lifecycles.

Target (issue 4): plan <= 1.2x dvc status (DVC is the floor). Both are whole
processes, run in turns on a repo whose pipelines are all up to date. The
50-lifecycle repo takes minutes to build (250 real stage runs), so it is kept
in .bench/ and reused while mllc's stage code version and the spec are the same.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import yaml
from common import PYTHON, ROOT, compared, interleaved, run_quietly

BENCH_DIR = ROOT / ".bench"
SPEC = {
    "apiVersion": "mllc/v1",
    "kind": "Lifecycle",
    "metadata": {"name": "NAME"},
    "problem": {"task": "classification", "target": "target", "metric": "accuracy"},
    "data": {"source": {"sklearn": "iris"}, "split": {"test": 0.3, "seed": 0}},
    "models": {"logreg": {"estimator": "sklearn.linear_model.LogisticRegression"}},
    "gates": ["accuracy >= 0.5"],
}


def build(count: int) -> Path:
    from mllc.compile.dvc import STAGES_VERSION

    key = hashlib.sha256(repr((SPEC, STAGES_VERSION, count)).encode()).hexdigest()[:12]
    repo = BENCH_DIR / f"plan-{count}-{key}"
    if (repo / ".ready").exists():
        # A newer mllc may generate other files (the key holds only the spec and the
        # stages' version): bring the cached repo up to date before timing a no-op.
        run_quietly([PYTHON, "-m", "mllc", "apply", "--auto-approve"], repo)
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "specs").mkdir(parents=True)
    for i in range(count):
        spec = yaml.safe_load(yaml.safe_dump(SPEC))
        spec["metadata"]["name"] = f"lc-{i:03d}"
        (repo / "specs" / f"lc-{i:03d}.yaml").write_text(yaml.safe_dump(spec))
    (repo / ".gitignore").write_text("/.mllc/\n")
    run_quietly(["git", "init", "-q"], repo)
    run_quietly([PYTHON, "-m", "dvc", "init", "-q"], repo)
    run_quietly(["git", "add", "-A"], repo)
    run_quietly(["git", "commit", "-qm", "specs"], repo)
    print(f"   building {count} lifecycles (one-time, cached in .bench/) ...", flush=True)
    run_quietly([PYTHON, "-m", "mllc", "apply", "--auto-approve"], repo)
    (repo / ".ready").touch()
    return repo


def run(quick: bool = False) -> None:
    repeat = 5 if quick else 11
    mllc = str(Path(PYTHON).parent / "mllc")
    for count in (1, 50):
        repo = build(count)
        medians = interleaved(
            {
                "dvc status": [PYTHON, "-m", "dvc", "status"],
                "mllc plan": [mllc, "plan", "--detailed-exitcode"],
            },
            cwd=repo,
            repeat=repeat,
        )
        compared(
            (f"dvc status ({count} lifecycles)", medians["dvc status"], "floor"),
            (
                f"mllc plan  ({count} lifecycles)",
                medians["mllc plan"],
                "dvc status (target <= 1.2x)",
            ),
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    run()
