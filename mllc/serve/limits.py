"""The HTTP transport's bounds in bytes and time, the phases they apply to, its log line.

:mod:`mllc.serve.transport` describes how these bounds hold; the handler
(:mod:`mllc.serve.handler`) and the server (:mod:`mllc.serve.transport`) share them.
"""

from __future__ import annotations

import sys
import threading

from mllc.serve.capture import now_iso

MIB = 1024 * 1024
IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may stay silent between requests
HEADER_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its headers
BODY_TIMEOUT = 10.0  # seconds to receive a body, and to send a response
MAX_HEAD_BYTES = 64 * 1024  # the headers of one request (and a chunked body's trailers)
# Predictions (mllc.serve.app, mllc.serve.batching): threads shared by the versions served,
# and the requests stacked into one predict call while the model is busy (1: no batching).
WORKERS = 2
MAX_BATCH_SIZE = 64
LINGER_SECONDS = 2.0  # reading an unwanted body before closing: at most this long,
LINGER_BYTES = 64 * MIB  # and this much
# What a connection is doing: only "busy" (running a request, answering it) is never closed
# to make room for a new connection; "idle" and "head" are closed when the server drains.
IDLE, HEAD, BODY, BUSY = "idle", "head", "body", "busy"
_log_lock = threading.Lock()


def log(message: str) -> None:
    """One line on stderr; control characters from clients are escaped, never interpreted."""
    text = message.encode("unicode_escape", "backslashreplace").decode("ascii")
    with _log_lock:
        sys.stderr.write(f"{now_iso()} mllc-serve: {text[:1000]}\n")
        sys.stderr.flush()
