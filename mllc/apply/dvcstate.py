"""Undo what a kill inside DVC's own file writes leaves, before apply runs DVC again.

DVC writes several files in place (open with truncation or for append, then
write): a kill of apply there (DVC dies with it) leaves them cut short, and DVC
then refuses them on every later run. Apply holds its lock, so no DVC of its own
is running; each repair is idempotent:

* ``pipelines/<name>/dvc.lock``: rebuilt from the stage records DVC finished
  writing and the copy committed at HEAD (:func:`mllc.observe.dvclock.repair`);
  DVC then reruns, by its own hashes, only the stages whose record was lost or
  is out of date (most come back from its run cache without running);
* ``.dvc/tmp/rwlock``: DVC's JSON list of running DVC processes, rewritten in
  place on every stage; a torn one ("JSON structure is corrupted") is emptied,
  under DVC's own guard file;
* ``.gitignore`` files in ``pipelines/<name>/``: DVC appends one line per
  output it caches; a torn last line is dropped (DVC appends it whole again when
  it restores that output, which it does: the stage's record came after);
* the ``.dvc`` pointers ``dvc add`` writes (a labelled batch joining the training
  data in ``pipelines/<name>/feedback/``, source data): DVC adds the data, already
  in place, again and writes the same pointer whole.

DVC's other writes need nothing: cache objects and checked-out outputs are
written to temporary files and renamed (apply removes leftover ``.*.tmp`` files
in its files step), its run cache likewise, and its state databases are SQLite.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable
from pathlib import Path

from mllc import gitcmd
from mllc.apply.dvc import clear_dead_dvc_locks, run_dvc
from mllc.atomic import write_bytes
from mllc.observe import dvclock
from mllc.saferead import RefusedRead, read_bytes

Progress = Callable[[str], None]


def repair_locks(root: Path, progress: Progress) -> list[str]:
    """Rebuild every broken ``pipelines/*/dvc.lock``; the repository paths repaired."""
    repaired = []
    for path in sorted(root.glob("pipelines/*/dvc.lock")):
        raw = _read(path, root)
        if raw is None:
            continue
        text = raw.decode("utf-8", "replace")
        if dvclock.lock_problem(text) is None:
            continue  # whole: DVC decides what is stale (the committed copy is not read)
        fixed = dvclock.repair(text, dvclock.committed_lock(path))
        if fixed is None:
            continue
        rel = path.relative_to(root).as_posix()
        if fixed.text is None:
            path.unlink()
        else:
            write_bytes(path, fixed.text.encode("utf-8"))
        progress(
            f"{rel} was left broken by an interrupted apply ({fixed.problem}); rebuilt it: "
            + fixed.summary()
        )
        repaired.append(rel)
    return repaired


def _read(path: Path, root: Path) -> bytes | None:
    """A regular file inside the repository, bounded (:mod:`mllc.saferead`); None when it
    is missing or refused (a symlink, a FIFO, too large: not what a DVC write leaves)."""
    if path.is_symlink():
        return None
    try:
        return read_bytes(path, root)
    except (OSError, RefusedRead):
        return None


def repair_rwlock(root: Path, progress: Progress) -> bool:
    """Empty DVC's rwlock file when a killed write left it unreadable; True if it did."""
    path = root / ".dvc" / "tmp" / "rwlock"
    if not path.is_file() or _readable_json(path):
        return False
    guard = root / ".dvc" / "tmp" / "rwlock.lock"
    with open(guard, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # what DVC holds while it edits the file
        try:
            if _readable_json(path):  # a live DVC was in the middle of its own write
                return False
            write_bytes(path, b"{}")
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    progress(".dvc/tmp/rwlock was left torn by a killed DVC; emptied it (no DVC of ours runs)")
    return True


def _readable_json(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_bytes()), dict)
    except (OSError, ValueError):
        return False


def repair_gitignores(root: Path, progress: Progress) -> list[str]:
    """Drop the torn last line DVC's interrupted append left in ``pipelines/*/**/.gitignore``.

    Only a last line without its newline that starts like DVC's entries ("/") is
    dropped; anything else in the file is left as it is.
    """
    repaired = []
    for path in sorted(root.glob("pipelines/*/**/.gitignore")):
        data = _read(path, root)
        if not data or data.endswith(b"\n"):
            continue
        head, _, tail = data.rpartition(b"\n")
        if not tail.startswith(b"/"):
            continue
        write_bytes(path, head + b"\n" if head else b"")
        rel = path.relative_to(root).as_posix()
        line = tail.decode("utf-8", "replace")
        progress(f"{rel}: dropped {line!r}, a line a killed DVC left half-written")
        repaired.append(rel)
    return repaired


def _pointers(root: Path) -> list[Path]:
    """Every ``.dvc`` pointer file in the work tree (tracked or not, not Git-ignored)."""
    proc = gitcmd.run(root, "ls-files", "-z", "-c", "-o", "--exclude-standard", "--", "*.dvc")
    if proc.returncode != 0:
        return []
    names = {n for n in proc.stdout.decode("utf-8", "replace").split("\0") if n}
    return [root / n for n in sorted(names) if not n.startswith(".dvc/")]


def repair_pointers(root: Path, progress: Progress) -> list[str]:
    """Rewrite the ``.dvc`` pointers a kill inside ``dvc add`` left cut short (apply adds
    a labelled batch to ``pipelines/<name>/feedback/`` and source data this way): DVC
    refuses every command while one is there. The data was in place before ``dvc add``
    ran, so DVC adds it again and writes the same pointer. Without its data, a batch's
    cut pointer is removed (the batch is added again from monitoring/); any other is
    left for a person to restore (``git checkout`` it, or ``dvc add`` the data)."""
    repaired = []
    for path in _pointers(root):
        if not path.is_file() or path.is_symlink() or dvclock.whole_pointer(path, root):
            continue
        data = path.with_name(path.name.removesuffix(".dvc"))
        rel = path.relative_to(root).as_posix()
        if data.exists() and not data.is_symlink():
            path.unlink()
            clear_dead_dvc_locks(root)  # the killed DVC's entries would block this one
            run_dvc(root, ["add", data.relative_to(root).as_posix()], progress)
            progress(f"{rel} was left cut short by a killed DVC; DVC wrote it again")
        elif rel.startswith("pipelines/") and rel.split("/")[2:3] == ["feedback"]:
            path.unlink()
            progress(f"{rel} was left cut short by a killed DVC, and its data is gone; removed it")
        else:
            progress(f"{rel} is cut short and its data is not here: DVC will refuse to run")
            continue
        repaired.append(rel)
    return repaired


def repair(root: Path, progress: Progress) -> None:
    """Every repair above, in the order DVC needs them (its rwlock before anything runs)."""
    repair_rwlock(root, progress)
    repair_locks(root, progress)
    repair_gitignores(root, progress)
    repair_pointers(root, progress)


__all__ = ["repair", "repair_gitignores", "repair_locks", "repair_pointers", "repair_rwlock"]
