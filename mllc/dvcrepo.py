"""Facts about a repository's DVC setup, read without DVC: config values and the cache.

Bounded reads inside the repository (:mod:`mllc.saferead`); the global and system
DVC configs are not read. Observation, the registry and the targets all need the
cache's location, so it lives here, below all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from mllc.saferead import read_text


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
