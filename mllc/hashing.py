"""File and directory hashes exactly as DVC 3 records them in ``dvc.lock``, read rarely.

A file's hash is the MD5 of its bytes (lock entries ``hash: md5``; DVC 3 no longer
normalises line endings). A directory's hash is the MD5 of the JSON list of its
files' ``{"md5", "relpath"}`` entries sorted by ``relpath``, plus ``.dir``
(``dvc_data/hashfile/tree.py``: ``Tree.as_list``/``as_bytes``/``digest``). Lock
entries written by DVC 2 carry no ``hash:`` key and use ``md5-dos2unix``
(CRLF -> LF in chunks that look like text), also supported here.

Hashes are cached by ``(size, mtime_ns, inode)`` per path, in memory and in a
JSON file, so a file that did not change is never read again: observing a
lifecycle costs one ``stat`` per input, not a pass over the data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mllc import saferead
from mllc.dvcrepo import cache_dir

MD5 = "md5"
MD5_DOS2UNIX = "md5-dos2unix"  # DVC 2.x lock entries (no ``hash:`` key)
ALGORITHMS = (MD5, MD5_DOS2UNIX)

_CHUNK = 2**20  # dvc_data.hashfile.hash.fobj_md5: dos2unix is decided per 1 MiB chunk
_TEXT_BLOCK = 512  # dvc_data.hashfile.istextfile.DEFAULT_CHUNK_SIZE
_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"
_CACHE_VERSION = 1
_CACHE_MAX_BYTES = 64 << 20  # ~600,000 files
# A file whose mtime is this close to the moment we hash it may still be
# rewritten within the same timestamp tick with the same size ("racily clean",
# as Git calls it): hash it, but do not remember the result.
_RACY_NS = 2_000_000_000
# Entries DVC never includes in a directory's hash (dvc/ignore.py:
# DvcIgnoreFilter default patterns ".hg/", ".git/", ".git", ".dvc/").
_IGNORED_DIRS = frozenset({".git", ".hg", ".dvc"})
_IGNORED_FILES = frozenset({".git"})

# Where DVC 3 (files/md5/) and DVC 2 (top level) keep objects under the cache dir.
_OBJECT = re.compile(r"(?:files/md5/)?[0-9a-f]{2}/[0-9a-f]{30}(?:\.dir)?")

_Entry = tuple[int, int, int, str]  # size, mtime_ns, inode, hash


def _is_text_block(block: bytes) -> bool:
    """dvc_data.hashfile.istextfile.istextblock: the heuristic behind md5-dos2unix."""
    if not block:
        return True
    if b"\x00" in block:
        return False
    return len(block.translate(None, _TEXT_CHARS)) / len(block) <= 0.30


def file_md5(path: str | os.PathLike[str], algorithm: str = MD5) -> str:
    """The hash DVC computes for one file (one read, in 1 MiB chunks)."""
    with open(path, "rb") as f:
        return _fd_md5(f.fileno(), algorithm)


def _fd_md5(fd: int, algorithm: str) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    while chunk := os.read(fd, _CHUNK):
        if algorithm == MD5_DOS2UNIX and _is_text_block(chunk[:_TEXT_BLOCK]):
            chunk = chunk.replace(b"\r\n", b"\n")
        md5.update(chunk)
    return md5.hexdigest()


def tree_md5(entries: list[tuple[str, str]]) -> str:
    """The ``.dir`` hash of a directory from its ``(posix relpath, file md5)`` pairs.

    Byte-for-byte what ``Tree.as_bytes`` hashes: ``json.dumps`` with default
    separators and ``sort_keys``, the list sorted by relpath.
    """
    listing = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(entries)]
    data = json.dumps(listing, sort_keys=True).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest() + ".dir"


def _walk_files(top: str) -> Iterator[tuple[str, str]]:
    """``(absolute path, posix path relative to top)`` of every file DVC hashes under top."""
    # os.walk without followlinks, as dvc_objects' LocalFileSystem.walk: a
    # symlink to a directory is listed but neither entered nor hashed.
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in _IGNORED_DIRS]
        rel_dir = os.path.relpath(dirpath, top)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for name in filenames:
            if name not in _IGNORED_FILES:
                yield os.path.join(dirpath, name), prefix + name


class Hasher:
    """DVC-compatible hashes of repository paths, cached by ``(size, mtime_ns, inode)``.

    ``cache_file`` (e.g. ``.mllc/cache/md5.json``) persists the cache between
    runs; a missing or corrupt file just means an empty cache. Call ``save()``
    to write it back (atomically). ``reads`` counts files actually read.
    """

    def __init__(self, root: Path, cache_file: Path | None = None) -> None:
        self.root = Path(root)
        self.cache_file = cache_file
        self.reads = 0
        self._entries: dict[str, dict[str, _Entry]] = {a: {} for a in ALGORITHMS}
        self._dirty = False
        self._cache_dir: tuple[Path, ...] | None = None
        if cache_file is not None:
            self._load(cache_file)

    # -- persistence -------------------------------------------------------------

    def _load(self, cache_file: Path) -> None:
        try:  # through the safe reader: a checkout may hold anything at this path
            data = saferead.read_json(cache_file, self.root, max_bytes=_CACHE_MAX_BYTES)
        except (OSError, saferead.RefusedRead):
            return  # no cache yet, or a torn/corrupt/odd one: start empty (save replaces it)
        if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
            return
        tables = data.get("entries")
        if not isinstance(tables, dict):
            return
        for algorithm, table in tables.items():
            if not isinstance(table, dict):
                continue
            self._entries.setdefault(algorithm, {})
            for path, entry in table.items():
                if _valid_entry(entry):
                    size, mtime_ns, inode, value = entry
                    self._entries[algorithm][path] = (size, mtime_ns, inode, value)

    def save(self) -> None:
        """Write the cache file atomically (temp file + rename), if anything changed."""
        if self.cache_file is None or not self._dirty:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "version": _CACHE_VERSION,
            "entries": {a: {p: list(e) for p, e in t.items()} for a, t in self._entries.items()},
        }
        fd, tmp = tempfile.mkstemp(prefix=".md5-", suffix=".tmp", dir=self.cache_file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f, separators=(",", ":"))
            os.replace(tmp, self.cache_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._dirty = False

    # -- hashing ---------------------------------------------------------------

    def md5(self, rel_path: str, algorithm: str = MD5) -> str | None:
        """The hash DVC would record for ``rel_path`` (relative to root): a file's md5,
        a directory's ``<md5>.dir``; None when the path does not exist.

        Only regular files are read, and a symlink is followed only when it resolves
        inside the repository or the DVC cache: anything else is a
        :class:`~mllc.saferead.RefusedRead` naming the path, with nothing read,
        hashed or cached from it."""
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported hash algorithm {algorithm!r}")
        path = os.path.join(self.root, rel_path)
        key = os.path.normpath(rel_path)
        try:
            found = self._check(path, key, directories=True)
        except saferead.RefusedRead:
            self._forget(key, algorithm)
            raise
        if found is None:
            self._forget(key, algorithm)  # forget files that are gone
            return None
        real, st = found
        if stat.S_ISDIR(st.st_mode):
            entries = []
            for p, rel in _walk_files(path):
                name = os.path.normpath(os.path.join(key, rel))
                inner = self._check(p, name)
                if inner is not None:  # a dangling symlink: not hashed, as in DVC
                    entries.append((rel, self._file(name, *inner, algorithm)))
            return tree_md5(entries)
        return self._file(key, real, st, algorithm)

    # -- values derived from a file ---------------------------------------------

    def derived(
        self, rel_path: str, table: str, derive: Callable[[bytes], tuple[Any, bool]]
    ) -> Any:
        """``derive(bytes)`` of the file ``rel_path``, cached like a hash: by ``(size,
        mtime_ns, inode)``, in table ``table`` of the cache file (e.g. a parsed
        ``dvc.lock``). ``derive`` returns ``(value, cacheable)``; a value is kept only when
        cacheable and it comes back equal through JSON. The file is checked and read by
        :func:`mllc.saferead.read_bytes` (inside the repository, bounded); None when it
        does not exist."""
        path = os.path.join(self.root, rel_path)
        key = os.path.normpath(rel_path)
        entries = self._entries.setdefault(table, {})
        found = self._check(path, key)
        if found is None:
            if entries.pop(key, None) is not None:
                self._dirty = True
            return None
        real, st = found
        cached = entries.get(key)
        if cached is not None and cached[:3] == (st.st_size, st.st_mtime_ns, st.st_ino):
            return json.loads(cached[3])
        raw = saferead.read_bytes(path, self.root, shown=key)
        if raw is None:  # removed since the check
            return None
        value, cacheable = derive(raw)
        text = json.dumps(value, separators=(",", ":")) if cacheable else None
        try:  # the bytes read are the ones the key describes only if nothing moved since
            after = os.stat(real)
        except OSError:
            after = None
        same = after is not None and (after.st_size, after.st_mtime_ns, after.st_ino) == (
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
        )
        if text is not None and same and json.loads(text) == value and self._settled(st):
            entries[key] = (st.st_size, st.st_mtime_ns, st.st_ino, text)
            self._dirty = True
        elif entries.pop(key, None) is not None:
            self._dirty = True
        return value

    @staticmethod
    def _settled(st: os.stat_result) -> bool:
        """Written long enough ago that a later write must change its mtime."""
        return time.time_ns() - st.st_mtime_ns > _RACY_NS

    def _allowed(self) -> tuple[Path, ...]:
        """Where symlinks may lead besides the repository: the DVC cache (link types)."""
        if self._cache_dir is None:
            self._cache_dir = _cache_dir(self.root)
        return self._cache_dir

    def _check(
        self, path: str, shown: str, directories: bool = False
    ) -> tuple[str, os.stat_result] | None:
        return check_path(self.root, path, shown, directories, self._allowed)

    def _forget(self, key: str, algorithm: str) -> None:
        if self._entries[algorithm].pop(key, None) is not None:
            self._dirty = True

    def _file(self, key: str, real: str, st: os.stat_result, algorithm: str) -> str:
        table = self._entries[algorithm]
        cached = table.get(key)
        if cached is not None and cached[:3] == (st.st_size, st.st_mtime_ns, st.st_ino):
            return cached[3]
        fd = saferead.open_checked(real, st, key)
        try:
            value = _fd_md5(fd, algorithm)
        finally:
            os.close(fd)
        self.reads += 1
        if self._settled(st):
            table[key] = (st.st_size, st.st_mtime_ns, st.st_ino, value)
            self._dirty = True
        elif cached is not None:
            del table[key]  # the old entry is wrong now and the new one is not trusted yet
            self._dirty = True
        return value


def check_path(
    root: Path,
    path: str,
    shown: str,
    directories: bool = False,
    cache: Callable[[], tuple[Path, ...]] | None = None,
) -> tuple[str, os.stat_result] | None:
    """:func:`mllc.saferead.check` for data mllc hashes or reads: inside ``root``, or
    a link to an object of the DVC cache (``cache()``: its folder, looked up only
    for a link that leaves the repository). None when the path does not exist."""
    try:  # the common case, a plain file or folder inside: no cache.dir lookup
        return saferead.check(path, root, shown=shown, directories=directories)
    except saferead.RefusedRead as exc:
        if exc.code != saferead.OUTSIDE:
            raise
        outside = exc
    allowed = cache() if cache is not None else _cache_dir(root)
    found = saferead.check(path, root, allowed=allowed, shown=shown, directories=directories)
    # Into the cache, only to an object (a link-type checkout): cache.dir comes from
    # .dvc/config, which a pull request controls, so the folder alone proves nothing.
    if found is not None:
        base = os.path.realpath(allowed[0])
        if not _OBJECT.fullmatch(os.path.relpath(found[0], base).replace(os.sep, "/")):
            raise outside
    return found


def _cache_dir(root: Path) -> tuple[Path, ...]:
    return (cache_dir(root),)


def _valid_entry(entry: Any) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 4
        and all(isinstance(x, int) and not isinstance(x, bool) for x in entry[:3])
        and isinstance(entry[3], str)
    )
