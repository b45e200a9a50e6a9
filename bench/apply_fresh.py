"""``python bench/apply_fresh.py FRESH RUNS``: copy the never-applied repository FRESH into a
new folder under RUNS, then run ``mllc apply --auto-approve`` there (every stage runs).

bench_repro times this whole command; the copy (a few hundred kilobytes) is in the time,
on the side of mllc.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main(fresh: Path, runs: Path) -> int:
    runs.mkdir(parents=True, exist_ok=True)
    repo = Path(tempfile.mkdtemp(dir=runs)) / "repo"
    shutil.copytree(fresh, repo)
    mllc = str(Path(sys.executable).parent / "mllc")
    done = subprocess.run([mllc, "apply", "--auto-approve"], cwd=repo, check=False)
    shutil.rmtree(repo.parent, ignore_errors=True)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
