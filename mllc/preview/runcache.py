"""Fill DVC's run cache for stages ``dvc repro`` ran but did not record there.

DVC saves no run-cache entry for a stage with a plain output declared ``cache: false``
(``select``'s ``lineage.json``): such a stage would run again in every new worktree,
so a second preview of the same commit would still run it. After a successful repro,
the preview records those stages itself with DVC's own ``StageCache.save`` (which also
stores the uncached outputs in the cache, so that a later restore can check them out),
in a process of its own started in the worktree (DVC resolves stage paths from the
current directory).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mllc.procs import preexec_die_with_parent


def save_stages(where: Path, dvc_yaml: str, stages: Sequence[str], timeout: float = 120) -> bool:
    """Record ``stages`` of ``dvc_yaml`` in the run cache of the DVC project at ``where``.
    Best effort: False when that failed (the preview is still right, only slower next
    time)."""
    if not stages:
        return True
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mllc.preview.runcache", dvc_yaml, *stages],
            cwd=where,
            capture_output=True,
            timeout=timeout,
            check=False,
            preexec_fn=preexec_die_with_parent(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def main(argv: Sequence[str]) -> int:
    """``python -m mllc.preview.runcache DVC_YAML STAGE...``, in the project's root."""
    dvc_yaml, wanted = argv[0], set(argv[1:])
    # DVC takes seconds to import: only this helper process loads it
    from dvc.repo import Repo
    from dvc.stage.cache import _can_hash

    with Repo(".") as repo:
        for stage in repo.index.stages:
            mine = getattr(stage, "name", None) in wanted and stage.relpath == dvc_yaml
            if mine and _can_hash(stage):
                stage.save()
                repo.stage_cache.save(stage)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
