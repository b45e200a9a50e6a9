"""No-op `mllc plan` against `dvc status`, up to 200 lifecycles; building lifecycles.

Targets (issue 14): a no-op plan >= 10x faster than `dvc status` at 1,000 stages
(200 lifecycles of 5 stages), with the same answer: both are whole processes, run in
turns on a repository whose pipelines are all up to date, and both must say so.

Repositories of 50 and 200 lifecycles are built by training one lifecycle and copying
its outputs to the others: their pipelines are identical and deterministic, so the
copies are the files a run would write (each lineage names its own lifecycle). DVC
records them (`dvc commit`), `mllc apply` registers them, and `dvc status` must then
call every pipeline up to date. They are kept in .bench/ while the spec and the stages'
code version are the same.

Building from scratch is measured apart: N lifecycles of the iris example through one
`mllc apply` in a fresh repository, per lifecycle against the hand-written script
(target: the same ratio as one retrain, <= 1.5x).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
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

BENCH_DIR = ROOT / ".bench"
LAYOUT = 2  # bumped when what a built repository holds changes
SPEC = {
    "apiVersion": "mllc/v1",
    "kind": "Lifecycle",
    "metadata": {"name": "NAME"},
    "problem": {"task": "classification", "target": "target", "metric": "accuracy"},
    "data": {"source": {"sklearn": "iris"}, "split": {"test": 0.3, "seed": 0}},
    "models": {"logreg": {"estimator": "sklearn.linear_model.LogisticRegression"}},
    "gates": ["accuracy >= 0.5"],
}
GENERATED = {"dvc.yaml", "params.yaml", "lifecycle.yaml", "dvc.lock"}
MLLC = str(Path(PYTHON).parent / "mllc")


def _name(i: int) -> str:
    return f"lc-{i:03d}"


def _write_spec(repo: Path, name: str) -> None:
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    spec["metadata"]["name"] = name
    (repo / "specs" / f"{name}.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")


def _copy_outputs(repo: Path, src: str, dst: str) -> None:
    source, target = repo / "pipelines" / src, repo / "pipelines" / dst
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if path.is_file() and rel.as_posix() not in GENERATED and rel.parts[0] != "feedback":
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / rel)
    lineage = target / "lineage.json"
    data = json.loads(lineage.read_text(encoding="utf-8"))
    data["lifecycle"] = dst
    lineage.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build(count: int) -> Path:
    from mllc.compile.dvc import STAGES_VERSION

    key = hashlib.sha256(repr((SPEC, STAGES_VERSION, count, LAYOUT)).encode()).hexdigest()[:12]
    repo = BENCH_DIR / f"plan-{count}-{key}"
    if (repo / ".ready").exists():
        # A newer mllc may generate other files (the key holds only the spec and the
        # stages' version): bring the cached repo up to date before timing a no-op.
        run_quietly([MLLC, "apply", "--auto-approve"], repo)
        return repo
    print(f"   building {count} lifecycles (one-time, kept in .bench/) ...", flush=True)
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "specs").mkdir(parents=True)
    _write_spec(repo, _name(0))
    init_repo(repo)
    run_quietly([MLLC, "apply", "--auto-approve"], repo)  # the one real training
    for i in range(1, count):
        _write_spec(repo, _name(i))
    run_quietly([MLLC, "compile"], repo)
    copies = [_name(i) for i in range(1, count)]
    for name in copies:
        _copy_outputs(repo, _name(0), name)
    if copies:
        targets = [f"pipelines/{n}/dvc.yaml" for n in copies]
        run_quietly([PYTHON, "-m", "dvc", "commit", "-f", "-q", *targets], repo)
        run_quietly(["git", "add", "-A"], repo)
        run_quietly(["git", "commit", "-qm", f"{len(copies)} more lifecycles"], repo)
        run_quietly([MLLC, "apply", "--auto-approve"], repo)  # registers; trains nothing
    _check_up_to_date(repo)
    (repo / ".ready").touch()
    return repo


def _check_up_to_date(repo: Path) -> None:
    """The same answer from both: nothing to do."""
    dvc = subprocess.run(
        [PYTHON, "-m", "dvc", "status"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert "up to date" in dvc.stdout, dvc.stdout[-2000:]
    plan = subprocess.run(
        [MLLC, "plan", "--detailed-exitcode"], cwd=repo, capture_output=True, text=True
    )
    assert plan.returncode == 0, plan.stdout[-2000:]


def from_scratch(count: int, repeat: int) -> None:
    """``mllc apply`` of ``count`` new lifecycles of the iris example, against the script."""
    base = Path(tempfile.mkdtemp(prefix="mllc-bench-build-"))
    try:
        fresh = base / "fresh"
        (fresh / "specs").mkdir(parents=True)
        for i in range(count):
            name = f"iris-{i:03d}"
            (fresh / "specs" / f"{name}.yaml").write_text(iris_spec(name), encoding="utf-8")
        init_repo(fresh)
        script = [PYTHON, str(ROOT / "bench" / "handwritten_iris.py"), str(base / "hw")]
        scripts = [_timed(script, base) for _ in range(repeat)]
        repo = base / "repo"
        shutil.copytree(fresh, repo)
        build = _timed([MLLC, "apply", "--auto-approve"], repo)
        per = build / count
        compared(
            ("hand-written script (one iris lifecycle)", statistics.median(scripts), "anchor"),
            (f"mllc apply of {count} new lifecycles, each", per, "the script (<= 1.5x)"),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=scripts_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def run(quick: bool = False) -> None:
    repeat = 5 if quick else 11
    for count in (1, 50, 200):
        repo = build(count)
        medians = interleaved(
            {
                "dvc status": [PYTHON, "-m", "dvc", "status"],
                "mllc plan": [MLLC, "plan", "--detailed-exitcode"],
            },
            cwd=repo,
            repeat=repeat,
        )
        stages = 5 * count
        compared(
            (f"dvc status ({count} lifecycles, {stages} stages)", medians["dvc status"], "floor"),
            (
                f"mllc plan  ({count} lifecycles, {stages} stages)",
                medians["mllc plan"],
                "dvc status (target <= 0.1x at 1,000 stages)",
            ),
        )
    from_scratch(10 if quick else 50, 3)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    run()
