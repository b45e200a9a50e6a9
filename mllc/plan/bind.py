"""What a plan saw (its :class:`~mllc.plan.model.Binding`), and what moved since.

``apply PLANFILE`` plans again and refuses when any of it changed
(:func:`stale_reasons`): the specs, the generated files, the dvc.locks, the
registry's tags or the versions deployed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from mllc.compile.desired import Desired, Orphan
from mllc.gitcmd import head
from mllc.layout import Layout
from mllc.observe.world import read_checkout_file
from mllc.plan.model import Binding


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def binding(
    root: Path,
    spec_texts: Mapping[str, str],
    desired: Sequence[Desired],
    orphans: Sequence[Orphan],
    registry: Mapping[str, str],
    extra_files: Sequence[str] = (),
) -> Binding:
    """What the plan saw; ``registry`` is every tag -> the object it names."""
    files: dict[str, str | None] = {
        path: _sha(read_checkout_file(root / path)) for path in extra_files
    }
    locks: dict[str, str | None] = {}
    for want in desired:
        for path in want.files:
            files[path] = _sha(read_checkout_file(root / path))
        lock = Layout(want.name).dvc_lock.as_posix()
        locks[lock] = _sha(read_checkout_file(root / lock))
    for orphan in orphans:
        for path in orphan.files:
            files[path] = _sha(read_checkout_file(root / path))
    return Binding(
        git_commit=head(root),
        specs={path: _sha(text) or "" for path, text in sorted(spec_texts.items())},
        files=dict(sorted(files.items())),
        locks=dict(sorted(locks.items())),
        registry=dict(registry),
    )


def stale_reasons(saved: Binding, now: Binding) -> list[str]:
    """What changed between a saved plan's binding and the world now."""
    reasons = []
    if saved.git_commit != now.git_commit:
        reasons.append(f"Git commit {saved.git_commit} → {now.git_commit}")
    for label, old, new in (
        ("spec", saved.specs, now.specs),
        ("generated file", saved.files, now.files),
        ("dvc.lock", saved.locks, now.locks),
        ("registry tag", saved.registry, now.registry),
        ("deployment", saved.deployments, now.deployments),
    ):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                what = "added" if key not in old else "removed" if key not in new else "changed"
                reasons.append(f"{label} {key} {what}")
    return reasons
