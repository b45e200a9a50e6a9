"""DVC's output lines, read: which stage ran, came from the run cache, or was skipped,
and how long each took (the time from its line to the next stage's, or to the end).

Pure: the lines arrive with the monotonic time they were read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mllc.preview.model import StageOutcome, StageRun

_RUNNING = re.compile(r"^Running stage '(?:[^']*:)?([^']+)'")
_CACHED = re.compile(r"^Stage '(?:[^']*:)?([^']+)' is cached")
_UNCHANGED = re.compile(r"^Stage '(?:[^']*:)?([^']+)' didn't change")
# the end of the last stage's work: DVC records the lock, then ends
_END = re.compile(r"^(Updating lock file|Use `dvc push`|To track the changes)")


def stage_of(line: str) -> tuple[str, StageOutcome] | None:
    for pattern, outcome in ((_RUNNING, "ran"), (_CACHED, "cached"), (_UNCHANGED, "unchanged")):
        match = pattern.match(line.strip())
        if match:
            return match.group(1), outcome  # type: ignore[return-value]
    return None


def running_stage(lines: Sequence[tuple[float, str]]) -> str | None:
    """The stage DVC was running at the last line (None when none was)."""
    current = None
    for _, line in lines:
        found = stage_of(line)
        if found is not None:
            current = found[0] if found[1] == "ran" else None
    return current


def stage_runs(lines: Sequence[tuple[float, str]], end: float) -> tuple[StageRun, ...]:
    """One :class:`StageRun` per stage DVC named, in its order."""
    marks: list[tuple[float, str, StageOutcome]] = []
    ends: list[float] = []
    for at, line in lines:
        found = stage_of(line)
        if found is not None:
            marks.append((at, *found))
        elif _END.match(line.strip()):
            ends.append(at)
    runs = []
    for i, (at, stage, outcome) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else min([*(e for e in ends if e >= at), end])
        runs.append(StageRun(stage=stage, outcome=outcome, seconds=round(max(stop - at, 0.0), 3)))
    return tuple(runs)
