"""The local DVC cache: where it is (``cache.dir`` honoured), where an object lives in it,
and whether it holds an object (the "not in cache" status of :mod:`mllc.observe.pipeline`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mllc.observe.hashing import MD5
from mllc.saferead import RefusedRead, read_json, read_text

_OID = re.compile(r"[0-9a-f]{32}(?:\.dir)?")  # what DVC's md5 hashes look like
_LISTING_MAX_BYTES = 64 << 20  # a .dir listing: ~100 bytes per file


class DvcCache:
    """Presence of objects in the local DVC cache (the "not in cache" status)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dir: Path | None = None

    @property
    def dir(self) -> Path:
        if self._dir is None:
            self._dir = cache_dir(self.root)
        return self._dir

    def _object(self, oid: str, algorithm: str) -> Path:
        # dvc/cachemgr.py: DVC 3 objects under files/md5/, DVC 2 ones at the top.
        base = self.dir / "files" / "md5" if algorithm == MD5 else self.dir
        return base / oid[:2] / oid[2:]

    def has(self, oid: str, algorithm: str, size: Any) -> bool:
        """Whether ``dvc status`` finds the object (and, for a directory, every file).

        DVC re-hashes cache files here (with its own state cache) and calls a
        corrupt one missing; we check presence and size only, so that a status
        costs no read of the data (cache files are read-only after DVC adds them).
        """
        if not _OID.fullmatch(oid):
            return False  # a lock hash names no path: never one outside the cache
        path = self._object(oid, algorithm)
        if not oid.endswith(".dir"):
            try:
                st = path.stat()
            except OSError:
                return False
            return not isinstance(size, int) or st.st_size == size
        try:  # a regular file in the cache, bounded, read like any other
            listing = read_json(path, self.root, max_bytes=_LISTING_MAX_BYTES, allowed=[self.dir])
        except (OSError, RefusedRead):
            return False  # Tree.load fails: get_obj() is None, "not in cache"
        if not isinstance(listing, list):
            return False
        for item in listing:
            md5 = item.get("md5") if isinstance(item, dict) else None
            if not isinstance(md5, str) or not self._object(md5, algorithm).exists():
                return False
        return True


def cache_object(root: Path, md5: str) -> Path:
    """Where the DVC 3 cache of ``root`` keeps the file with hash ``md5``
    (``<cache>/files/md5/<md5[:2]>/<md5[2:]>``, dvc/cachemgr.py), ``cache.dir`` honoured."""
    return cache_dir(root) / "files" / "md5" / md5[:2] / md5[2:]


def dvc_config_value(root: Path, section: str, key: str) -> str | None:
    """``[section] key`` from .dvc/config.local or .dvc/config (DVC's own precedence), read
    bounded and inside the repository; global and system DVC configs are not read."""
    for name in ("config.local", "config"):
        try:  # bounded and inside the repository, as every file a checkout holds
            text = read_text(root / ".dvc" / name, root)
        except OSError:
            continue
        if text is None:
            continue
        current = ""
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("["):
                current = line.strip("[]'\" ").lower()
            elif current == section and "=" in line:
                found, value = (s.strip() for s in line.split("=", 1))
                if found == key and value:
                    return value.strip("'\"")
    return None


def cache_dir(root: Path) -> Path:
    """``cache.dir`` (relative to .dvc/) from the repository's DVC config, else .dvc/cache."""
    dvc_dir = root / ".dvc"
    value = dvc_config_value(root, "cache", "dir")
    if value is None:
        return dvc_dir / "cache"
    return (dvc_dir / os.path.expanduser(value)).resolve()
