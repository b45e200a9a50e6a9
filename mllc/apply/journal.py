"""The apply journal: an append-only record of every step, before and after it runs.

``<root>/.mllc/journal.jsonl`` holds one JSON object per line::

    {"apply":"5d0c8e2a91f4","seq":1,"time":"2026-05-04T10:20:30.123Z","step":"iris/stage/train@forest","event":"start","detail":{}}
    {"apply":"5d0c8e2a91f4","seq":2,"time":"2026-05-04T10:21:02.480Z","step":"iris/stage/train@forest","event":"done","detail":{"seconds":32.3}}

``apply`` identifies one run of ``mllc apply``; ``seq`` counts that run's entries
from 1; ``event`` is ``start``, ``done``, ``failed`` or ``skipped``; ``detail`` is
what the caller passed. An entry written right after a torn line (see below) also
has ``"after_torn_line": true``.

Crash safety comes from how lines are written, not from rewriting: each entry is
one ``os.write`` of one whole line to a file opened with ``O_APPEND``, then
``fsync``. A crash or kill can at worst leave the LAST line incomplete. Nothing
ever rewrites or truncates the file: a torn tail stays as it is, and the next
append starts with a newline (and marks its entry ``after_torn_line``) so lines
stay separate and the reader can tell a healed torn line from corruption.

The journal is history and a hint for recovery (:func:`interrupted_steps` tells
what a crash interrupted); it is never the source of truth: the next apply
observes the world again. Entries are appended while the apply lock
(:mod:`mllc.apply.lock`) is held, so one process writes at a time.

Secrets: an entry holds exactly what the caller passes and nothing else, and the
journal is a plain file that may be shared. Callers pass no secret values — refer
to a secret by its reference (``env:NAME``), never by its value. As a last line of
defence, :meth:`Journal.failed` masks ``user:password@`` in URLs of error text.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from mllc.errors import Diagnostic, MllcError

__all__ = [
    "ApplyRun",
    "Entry",
    "Event",
    "Journal",
    "JournalRead",
    "interrupted_steps",
    "journal_path",
    "last_apply",
    "new_apply_id",
    "read_journal",
]

STATE_DIR = ".mllc"
JOURNAL_NAME = "journal.jsonl"

Event = Literal["start", "done", "failed", "skipped"]
EVENTS: frozenset[str] = frozenset(get_args(Event))
_FINISHED: frozenset[str] = frozenset({"done", "failed", "skipped"})

# Diagnostic codes read_journal reports.
TORN_TAIL = "journal-torn-tail"  # the last line is incomplete: a crash cut its write short
TORN_LINE = "journal-torn-line"  # such a line, followed by later entries: harmless
CORRUPT = "journal-corrupt"  # a line mllc cannot have written: someone edited the file

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:]+:[^/@\s]*@")


def journal_path(root: Path) -> Path:
    return root / STATE_DIR / JOURNAL_NAME


def new_apply_id() -> str:
    """A fresh random id for one apply run (12 hex digits)."""
    return secrets.token_hex(6)


def _now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _json_default(value: Any) -> Any:
    # Paths are common in details and carry no secret; anything else that is not
    # plain JSON is refused rather than str()-ed, so an object (a config, a client)
    # cannot leak its contents into the journal by accident.
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"journal detail values must be JSON data, not {type(value).__name__}")


def _mask_credentials(text: str) -> str:
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


@dataclass(frozen=True)
class Entry:
    """One journal line."""

    apply: str
    seq: int
    time: str  # ISO 8601 UTC with milliseconds
    step: str  # a plan address (iris/stage/train@forest) or a step name
    event: Event
    detail: dict[str, Any]
    line: int = 0  # 1-based line in the file; 0 for an entry not read from a file

    def to_json(self) -> dict[str, Any]:
        return {
            "apply": self.apply,
            "seq": self.seq,
            "time": self.time,
            "step": self.step,
            "event": self.event,
            "detail": self.detail,
        }


class Journal:
    """Appends the entries of one apply run (``apply_id``) to the workspace's journal.

    ``apply_id`` must be new for each run (:func:`new_apply_id`, the default):
    ``seq`` counts from 1 in each :class:`Journal`.
    """

    def __init__(self, root: Path, apply_id: str | None = None) -> None:
        self.root = root
        self.apply_id = apply_id or new_apply_id()
        self.path = journal_path(root)
        self._seq = 0
        self._mutex = threading.Lock()  # seq and the newline check stay paired per entry

    def start(self, step: str, /, **detail: Any) -> Entry:
        """Record that ``step`` is about to run (write this BEFORE running it)."""
        return self._append(step, "start", detail)

    def done(self, step: str, /, **detail: Any) -> Entry:
        return self._append(step, "done", detail)

    def skipped(self, step: str, /, **detail: Any) -> Entry:
        return self._append(step, "skipped", detail)

    def failed(self, step: str, /, error: BaseException | str, **detail: Any) -> Entry:
        """Record that ``step`` failed; ``detail.error`` is the error's one-line text."""
        if isinstance(error, MllcError):
            text = error.detail  # already written for users, without a traceback
        elif isinstance(error, BaseException):
            text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        else:
            text = error
        return self._append(step, "failed", {"error": _mask_credentials(text), **detail})

    def _append(self, step: str, event: Event, detail: dict[str, Any]) -> Entry:
        with self._mutex:
            self._seq += 1
            entry = Entry(self.apply_id, self._seq, _now_iso(), step, event, dict(detail))
            record = entry.to_json()
            # Serialise before touching the file, so a bad detail fails with nothing written.
            line = json.dumps(record, allow_nan=False, separators=(",", ":"), default=_json_default)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                size = os.fstat(fd).st_size
                data = (line + "\n").encode("utf-8")
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    # The last write was torn by a crash. Leave it as it is, end it, and
                    # say so in this entry, which tells the reader the bad line before
                    # it is a healed tear and not corruption.
                    record["after_torn_line"] = True
                    line = json.dumps(
                        record, allow_nan=False, separators=(",", ":"), default=_json_default
                    )
                    data = b"\n" + (line + "\n").encode("utf-8")
                written = os.write(fd, data)  # ONE write: the line is whole or it is last
                if written != len(data):
                    # A second write could interleave with nothing (we hold the apply
                    # lock) but would make a torn line that is not last; stop instead.
                    raise MllcError(
                        f"could not append to {self.path}: only {written} of {len(data)} "
                        "bytes were written (is the disk full?)"
                    )
                os.fsync(fd)
            finally:
                os.close(fd)
            if size == 0:
                _fsync_dir(self.path.parent)  # the file's own directory entry, once
            return entry


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # not supported everywhere; durability of the name is best effort
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalRead:
    """Everything :func:`read_journal` could read, and what it could not."""

    entries: tuple[Entry, ...]
    problems: tuple[Diagnostic, ...]  # codes TORN_TAIL, TORN_LINE, CORRUPT
    torn_tail: bool  # the last line is incomplete (a crash mid-write; harmless)

    @property
    def corrupt(self) -> bool:
        """True when a line cannot have been written by mllc (someone edited the file)."""
        return any(p.code == CORRUPT for p in self.problems)


def _parse_line(raw: bytes, line_no: int) -> tuple[Entry | None, bool, str]:
    """(entry, written right after a torn line, problem); entry is None on a problem."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, False, "not a JSON line"
    if not isinstance(data, dict):
        return None, False, "not a JSON object"
    apply, seq, when = data.get("apply"), data.get("seq"), data.get("time")
    step, event, detail = data.get("step"), data.get("event"), data.get("detail")
    after_torn = data.get("after_torn_line", False)
    if not isinstance(apply, str) or not apply:
        return None, False, "no valid 'apply'"
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None, False, "no valid 'seq'"
    if not isinstance(when, str) or not isinstance(step, str) or not step:
        return None, False, "no valid 'time' or 'step'"
    if event not in EVENTS:
        return None, False, f"unknown event {event!r}"
    if not isinstance(detail, dict) or not isinstance(after_torn, bool):
        return None, False, "no valid 'detail'"
    return Entry(apply, seq, when, step, event, detail, line_no), after_torn, ""


def read_journal(root: Path) -> JournalRead:
    """Read the journal, tolerating what a crash can leave; never raises on content.

    A torn LAST line is expected after a crash: it is reported (``torn_tail``, a
    ``journal-torn-tail`` problem) and skipped. A torn line that later appends
    ended (the next entry says ``after_torn_line``) is reported as
    ``journal-torn-line``. Any other unreadable line cannot come from mllc and is
    reported as ``journal-corrupt``. Readable entries are returned in file order.
    """
    path = journal_path(root)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return JournalRead((), (), False)
    lines = data.split(b"\n")
    # The text after the last newline: b"" when the file ends cleanly, else a line
    # whose write did not finish (or finished without its newline).
    tail = lines.pop()
    if tail:
        lines.append(tail)
    parsed = [_parse_line(raw, n) for n, raw in enumerate(lines, 1)]
    entries: list[Entry] = []
    problems: list[Diagnostic] = []
    torn_tail = False
    last = len(parsed) - 1
    for index, (entry, _, problem) in enumerate(parsed):
        if entry is not None:
            entries.append(entry)
            continue
        if index == last and tail:
            torn_tail = True
            code = TORN_TAIL
            message = "last line is incomplete: a crash or kill cut its write short; it is ignored"
        elif index < last and (
            parsed[index + 1][1]  # the next entry says it was appended after a torn line
            # ...or that append was itself torn, so the next line is the torn tail
            or (index + 1 == last and bool(tail) and parsed[last][0] is None)
        ):
            code = TORN_LINE
            message = "incomplete line left by an earlier crash; it is ignored"
        else:
            code = CORRUPT
            message = (
                f"{problem}: this line was not written by mllc (was the journal edited?); "
                "it is ignored"
            )
        problems.append(Diagnostic(str(path), index + 1, 0, "", message, code))
    return JournalRead(tuple(entries), tuple(problems), torn_tail)


# --- what the journal says about applies ---------------------------------------------------


@dataclass(frozen=True)
class ApplyRun:
    """The entries of one apply run, in the order they were written."""

    apply_id: str
    entries: tuple[Entry, ...]

    @property
    def started(self) -> str:
        return self.entries[0].time

    @property
    def last_time(self) -> str:
        return self.entries[-1].time

    def interrupted_steps(self) -> list[str]:
        """Steps whose latest event is ``start``: running when the apply stopped.

        A step that was retried counts by its latest event. The order is that of
        their first start.
        """
        latest: dict[str, str] = {}
        for entry in self.entries:
            latest[entry.step] = entry.event
        return [step for step, event in latest.items() if event not in _FINISHED]


def last_apply(root: Path) -> ApplyRun | None:
    """The most recent apply run in the journal (that of its last readable entry)."""
    entries = read_journal(root).entries
    if not entries:
        return None
    apply_id = entries[-1].apply
    return ApplyRun(apply_id, tuple(e for e in entries if e.apply == apply_id))


def interrupted_steps(root: Path) -> list[str]:
    """The steps of the most recent apply that started and never finished.

    These are what a crash or kill interrupted; the next apply observes them again
    instead of trusting either their start or their absence of a result.
    """
    run = last_apply(root)
    return [] if run is None else run.interrupted_steps()
