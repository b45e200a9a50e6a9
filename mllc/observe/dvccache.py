"""Whether the local DVC cache holds an object (the "not in cache" status of
:mod:`mllc.observe.pipeline`). Where the cache is: :mod:`mllc.dvcrepo`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mllc.dvcrepo import cache_dir
from mllc.hashing import MD5
from mllc.saferead import RefusedRead, read_json

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
