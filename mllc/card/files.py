"""Where a version's files are, and how they are parsed: read bounded, never trusted.

* :class:`AtCommit`: a registered version's commit, read through Git (``git cat-file``,
  the size checked before any blob is read); the outputs DVC caches
  (``reports/data.json``, ``reports/train/<m>.json``, ``lineage.json``) from the DVC
  cache by the md5 the commit's ``dvc.lock`` records, confined to the cache folder, or
  from the commit itself when an older mllc kept them in Git;
* :class:`Workspace`: the checkout after apply ran the pipeline, for the card apply
  writes into the commit it is about to tag.

YAML is parsed as every file of a checkout is (plain tags, aliases, depth and size
bounded), ``dvc.lock`` as :func:`mllc.observe.dvclock.check` reads it. A file that
cannot be read is None (and, when refused, a :class:`~mllc.card.model.Missing`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from mllc import gitcmd, saferead
from mllc.card.model import Missing
from mllc.dvcrepo import cache_dir, cache_object
from mllc.errors import MllcError
from mllc.observe import dvclock
from mllc.registry.tags import is_md5
from mllc.saferead import RefusedRead
from mllc.spec.yamlsafe import YamlProblem, load_text


class CardError(MllcError):
    """No card can be made: an unknown lifecycle or version."""

    message = "model card"


class Files(Protocol):
    where: str  # in words: ``commit 3ec6a63a60``, ``the workspace``
    problems: list[Missing]  # files refused (too large, outside the repository)

    def read(self, path: str, max_bytes: int = saferead.MAX_BYTES) -> bytes | None:
        """The file's bytes at the version; None when absent (or refused: :attr:`problems`)."""
        ...

    def cached(self, path: str, md5: str | None) -> tuple[bytes | None, str | None]:
        """An output DVC caches: (bytes, None) or (None, why not)."""
        ...


class AtCommit:
    """A registered version's files: its commit through Git, its outputs from the cache."""

    def __init__(self, root: Path, commit: str) -> None:
        self.root, self.commit = root, commit
        self.where = f"commit {commit[:10]}"
        self.problems: list[Missing] = []

    def read(self, path: str, max_bytes: int = saferead.MAX_BYTES) -> bytes | None:
        spec = f"{self.commit}:{path}\n".encode()
        check = gitcmd.run(self.root, "cat-file", "--batch-check", stdin=spec)
        parts = check.stdout.decode("utf-8", "replace").split()
        if check.returncode != 0 or len(parts) != 3 or parts[1] != "blob":
            return None
        if int(parts[2]) > max_bytes:
            self.problems.append(Missing(path, f"larger than {max_bytes // 1024} KiB; not read"))
            return None
        blob = gitcmd.run(self.root, "cat-file", "blob", parts[0])
        return blob.stdout if blob.returncode == 0 else None

    def cached(self, path: str, md5: str | None) -> tuple[bytes | None, str | None]:
        kept = self.read(path)  # an older mllc kept it in Git
        if kept is not None:
            return kept, None
        if md5 is None:
            return None, f"dvc.lock at {self.where} records no md5 for it"
        if not is_md5(md5):
            return None, f"dvc.lock at {self.where} records no valid md5 for it"
        try:  # bounded, and confined to the cache (which may be outside the checkout)
            raw = saferead.read_bytes(cache_object(self.root, md5), cache_dir(self.root))
        except (OSError, RefusedRead) as exc:
            return None, f"cannot be read from the DVC cache (md5 {md5}): {exc}"
        if raw is None:
            return None, f"not in the local DVC cache (md5 {md5}); `dvc pull` fetches it"
        return raw, None


class Workspace:
    """The checkout itself: apply's card, written before the commit that holds it."""

    where = "the workspace"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Missing] = []

    def read(self, path: str, max_bytes: int = saferead.MAX_BYTES) -> bytes | None:
        try:
            return saferead.read_bytes(self.root / path, self.root, max_bytes=max_bytes)
        except (OSError, RefusedRead) as exc:
            self.problems.append(Missing(path, str(exc)))
            return None

    def cached(self, path: str, md5: str | None) -> tuple[bytes | None, str | None]:
        raw = self.read(path)
        return (raw, None) if raw is not None else (None, "not in the workspace")


def yaml_data(raw: bytes | None) -> Any:
    """Plain data from YAML read as every file of a checkout is (aliases, tags, depth
    and size bounded); None when absent or unusable."""
    if raw is None:
        return None
    try:
        loaded = load_text(raw.decode("utf-8", "replace"))
    except YamlProblem:
        return None
    return None if loaded.problems else loaded.data


def lock_data(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:  # as every lock is read: a hostile one refused, a broken one unused
        return dvclock.check(raw.decode("utf-8", "replace"))[0]
    except YamlProblem:
        return None


def mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text_of(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def metric_values(value: Any) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, v in mapping(value).items():
        if v is None:
            out[key] = None
        elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out[key] = v
    return out
