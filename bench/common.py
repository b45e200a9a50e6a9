"""Timing helpers shared by the benchmarks: interleaved runs of whole commands."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def time_command(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0,):
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-500:]!r}")
    return elapsed


def interleaved(
    commands: dict[str, Sequence[str]], cwd: Path, repeat: int, warmup: int = 2
) -> dict[str, float]:
    """Median wall time of each command, the commands taking turns each round."""
    env = dict(os.environ)
    for _ in range(warmup):
        for cmd in commands.values():
            time_command(cmd, cwd, env)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, cmd in commands.items():
            samples[name].append(time_command(cmd, cwd, env))
    return {name: statistics.median(xs) for name, xs in samples.items()}


def table(rows: list[tuple[str, float, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    for label, seconds, note in rows:
        print(f"   {label:<{width}}  {seconds * 1000:9.1f} ms  {note}")


def compared(anchor: tuple[str, float, str], *rows: tuple[str, float, str]) -> None:
    """:func:`table` of the anchor, then of each row with its ratio to the anchor before its note:
    ``("mllc plan", 0.3, "dvc status")`` prints ``... 1.50x dvc status``."""
    base = anchor[1]
    table([anchor, *((label, s, f"{s / base:.2f}x {note}") for label, s, note in rows)])


def scripts_env() -> dict[str, str]:
    """This interpreter's scripts first on PATH: DVC runs the generated `mllc stage ...`."""
    env = dict(os.environ)
    env["PATH"] = str(Path(PYTHON).parent) + os.pathsep + env.get("PATH", "")
    return env


def run_quietly(args: list[str], cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, env=scripts_env(), check=True, capture_output=True)


def init_repo(repo: Path) -> None:
    """``git init`` (with an identity), ``dvc init``, and one commit of what ``repo`` holds."""
    (repo / ".gitignore").write_text("/.mllc/\n", encoding="utf-8")
    run_quietly(["git", "init", "-q"], repo)
    run_quietly(["git", "config", "user.email", "bench@example.com"], repo)
    run_quietly(["git", "config", "user.name", "bench"], repo)
    run_quietly([PYTHON, "-m", "dvc", "init", "-q"], repo)
    run_quietly(["git", "add", "-A"], repo)
    run_quietly(["git", "commit", "-qm", "specs"], repo)


def iris_spec(name: str = "iris") -> str:
    """specs/iris.yaml without its environments (no server to start), named ``name``."""
    text = (ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8")
    return text[: text.index("environments:")].replace("name: iris", f"name: {name}", 1)


def applied_iris_repo(repo: Path) -> Path:
    """A repository at ``repo`` with the iris spec (no environments), applied once:
    ``iris@v1.0.0`` registered."""
    (repo / "specs").mkdir(parents=True)
    (repo / "specs" / "iris.yaml").write_text(iris_spec(), encoding="utf-8")
    init_repo(repo)
    run_quietly([str(Path(PYTHON).parent / "mllc"), "apply", "--auto-approve"], repo)
    return repo
