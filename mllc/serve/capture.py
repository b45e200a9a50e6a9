"""Request capture for monitoring: one JSON line per successful inference, rotated, bounded.

``<dir>/requests.jsonl`` gets lines ``{"time", "id", "version", "inputs": {column:
[values]}, "outputs": {"predict": [...]}}``. Before a line would take the file
past ``max_bytes`` the files shift (``requests.jsonl`` -> ``requests.1.jsonl`` ->
... -> ``requests.<files-1>.jsonl``, the oldest dropped), so the capture never
holds more than ``files * max_bytes`` bytes; a single line larger than
``max_bytes`` is dropped, not written.

Request threads only put the record on a bounded queue (never blocking; a full
queue drops the record and counts it); one writer thread serialises and
writes, so disk latency and JSON encoding stay off the request path and
capture failures never fail a request. Files are flushed whenever the queue
runs empty, so a reader sees lines within moments.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

BASE = "requests"
QUEUE_SIZE = 256  # records waiting for the writer; each holds one request's arrays
_STOP = object()


def file_name(index: int) -> str:
    """``requests.jsonl`` for 0, ``requests.<index>.jsonl`` after."""
    return f"{BASE}.jsonl" if index == 0 else f"{BASE}.{index}.jsonl"


class Capture:
    """Appends capture records from any thread; rotation and writes happen in one thread."""

    def __init__(self, directory: Path, max_bytes: int, files: int) -> None:
        if max_bytes < 1 or files < 1:
            raise ValueError("capture needs max_bytes >= 1 and files >= 1")
        self.directory = directory
        self.max_bytes = max_bytes
        self.files = files
        self.dropped = 0  # records lost to a full queue, a write error or their size
        directory.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[object] = queue.Queue(QUEUE_SIZE)
        self._fh: IO[bytes] | None = None
        self._last_error = ""
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def submit(self, record: dict[str, Any]) -> None:
        """Queue one record; values may be numpy arrays (made JSON by the writer). Never blocks."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (within ``timeout``), then close the file."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(_STOP, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    return
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            record = self._queue.get()
            if record is _STOP:
                break
            try:
                self._write(_line(record))
                if self._queue.empty() and self._fh is not None:
                    self._fh.flush()
            except Exception as exc:  # the capture must never take the server down
                self.dropped += 1
                self._report(exc)
                self._close_file()
        self._close_file()

    def _write(self, line: bytes) -> None:
        if len(line) > self.max_bytes:
            self.dropped += 1
            self._report(ValueError(f"a capture line of {len(line)} bytes exceeds max_bytes"))
            return
        fh = self._open()
        size = fh.tell()
        if size and size + len(line) > self.max_bytes:
            self._rotate()
            fh = self._open()
        fh.write(line)

    def _open(self) -> IO[bytes]:
        if self._fh is None:
            self._fh = open(self.directory / file_name(0), "ab")  # noqa: SIM115 - kept open
        return self._fh

    def _rotate(self) -> None:
        self._close_file()
        oldest = self.directory / file_name(self.files - 1)
        if self.files == 1:
            oldest.unlink(missing_ok=True)
            return
        for index in range(self.files - 1, 0, -1):
            src = self.directory / file_name(index - 1)
            if src.exists():
                os.replace(src, self.directory / file_name(index))

    def _close_file(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    def _report(self, exc: BaseException) -> None:
        # One line per distinct problem: a full disk must not flood the log.
        text = f"{type(exc).__name__}: {exc}"
        if text != self._last_error:
            self._last_error = text
            print(f"capture: record dropped: {text}", file=sys.stderr, flush=True)


def _line(record: Any) -> bytes:
    assert isinstance(record, dict)
    out = dict(record)
    # start-up: the protocol module loads numpy; log lines (limits.log) use this module
    from mllc.serve.protocol import plain_values  # noqa: PLC0415

    out["inputs"] = {k: plain_values(v) for k, v in record["inputs"].items()}
    out["outputs"] = {k: plain_values(v) for k, v in record["outputs"].items()}
    text = json.dumps(out, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def now_iso() -> str:
    """UTC time with milliseconds, e.g. ``2025-01-31T12:00:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
