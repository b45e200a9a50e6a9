"""Values derived from a file, cached by (size, mtime_ns, inode): mllc.hashing.Hasher.derived,
and the parsed dvc.lock a no-op plan reuses (mllc.observe.pipeline.read_lock)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from mllc.hashing import Hasher
from mllc.observe.dvclock import BrokenLock
from mllc.observe.pipeline import LOCKS, read_lock
from mllc.saferead import RefusedRead

OLD = time.time_ns() - 60 * 10**9  # a minute ago: past the racy window


def _write(path: Path, text: str, mtime_ns: int = OLD) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


class Counting:
    def __init__(self, cacheable: bool = True, value: Any = None) -> None:
        self.calls, self.cacheable, self.value = 0, cacheable, value

    def __call__(self, raw: bytes) -> tuple[Any, bool]:
        self.calls += 1
        value = self.value if self.value is not None else {"text": raw.decode()}
        return value, self.cacheable


def test_an_unchanged_file_is_derived_once_across_runs(tmp_path: Path) -> None:
    _write(tmp_path / "f.txt", "one")
    cache = tmp_path / ".mllc" / "cache.json"
    derive = Counting()
    first = Hasher(tmp_path, cache)
    assert first.derived("f.txt", "t", derive) == {"text": "one"}
    assert first.derived("f.txt", "t", derive) == {"text": "one"}
    first.save()
    assert Hasher(tmp_path, cache).derived("f.txt", "t", derive) == {"text": "one"}
    assert derive.calls == 1
    # a change of content (size and mtime) is derived again
    _write(tmp_path / "f.txt", "other", OLD + 10**9)
    assert Hasher(tmp_path, cache).derived("f.txt", "t", derive) == {"text": "other"}
    assert derive.calls == 2


def test_what_is_not_kept(tmp_path: Path) -> None:
    _write(tmp_path / "f.txt", "x")
    hasher = Hasher(tmp_path)
    # not cacheable by the caller's word
    derive = Counting(cacheable=False)
    hasher.derived("f.txt", "t", derive)
    hasher.derived("f.txt", "t", derive)
    assert derive.calls == 2
    # a value JSON would change (an integer key would come back a string)
    derive = Counting(value={1: "a"})
    hasher.derived("f.txt", "u", derive)
    hasher.derived("f.txt", "u", derive)
    assert derive.calls == 2
    # a file written just now: a write in the same clock tick could keep its mtime
    _write(tmp_path / "new.txt", "y", time.time_ns())
    derive = Counting()
    hasher.derived("new.txt", "t", derive)
    hasher.derived("new.txt", "t", derive)
    assert derive.calls == 2
    # a file that is gone is None, and forgotten
    assert hasher.derived("gone.txt", "t", Counting()) is None


def test_a_path_leaving_the_repository_is_refused_unread(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    _write(outside, "secret")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "link.txt").symlink_to(outside)
    derive = Counting()
    with pytest.raises(RefusedRead):
        Hasher(repo).derived("link.txt", "t", derive)
    assert derive.calls == 0


LOCK = """schema: '2.0'
stages:
  prepare:
    cmd: mllc stage prepare iris
    outs:
    - path: pipelines/iris/data/clean.parquet
      hash: md5
      md5: 0123456789abcdef0123456789abcdef
      size: 10
"""


def test_a_parsed_lock_is_reused_and_a_broken_one_never(tmp_path: Path) -> None:
    lock = tmp_path / "pipelines" / "iris" / "dvc.lock"
    _write(lock, LOCK)
    cache = tmp_path / ".mllc" / "cache.json"
    hasher = Hasher(tmp_path, cache)
    parsed = read_lock(lock, tmp_path, hasher)
    assert parsed == read_lock(lock, tmp_path)  # the same answer as without a cache
    hasher.save()
    kept = json.loads(cache.read_text(encoding="utf-8"))["entries"][LOCKS]
    assert json.loads(kept["pipelines/iris/dvc.lock"][3]) == parsed
    # cut short by a kill: read as the lock apply rebuilds, and not kept
    _write(lock, LOCK[:-20], OLD + 10**9)
    hasher = Hasher(tmp_path, cache)
    broken = read_lock(lock, tmp_path, hasher)
    assert isinstance(broken, BrokenLock)
    hasher.save()
    assert "pipelines/iris/dvc.lock" not in json.loads(cache.read_text())["entries"][LOCKS]
