"""Reading requests off one keep-alive connection, within deadlines, and answering them.

How the bounds hold (heads, bodies, framing, deadlines) is described in
:mod:`mllc.serve.transport`; the numbers are in :mod:`mllc.serve.limits`. The
answers come from the App (:mod:`mllc.serve.app`).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import re
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, cast

from mllc.serve.app import Reply, error_reply
from mllc.serve.limits import (
    BODY,
    BUSY,
    HEAD,
    IDLE,
    IDLE_TIMEOUT,
    LINGER_BYTES,
    LINGER_SECONDS,
    MAX_HEAD_BYTES,
    log,
)
from mllc.serve.protocol import BINARY_UNSUPPORTED, ProtocolError

if TYPE_CHECKING:
    from mllc.serve.transport import Server

CHUNKED = -1  # the body length of a chunked request
_DIGITS = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")


class _DeadlineReader(io.RawIOBase):
    """The connection's input, read within the handler's current deadline (not per receive)."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self._handler = handler
        self._sock: socket.socket = handler.connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        handler = self._handler
        timeout = handler.read_timeout()
        if timeout <= 0:
            raise TimeoutError("deadline passed")
        self._sock.settimeout(timeout)
        count = self._sock.recv_into(buffer)
        if count:
            handler.received()
        elif handler.server.closed_by_us(self._sock):
            raise ConnectionAbortedError("closed by the server")
        return count


class _HeadLimit:
    """``rfile`` as http.server reads headers from it, cut off after MAX_HEAD_BYTES."""

    def __init__(self, rfile: Any) -> None:
        self._rfile = rfile
        self._left = MAX_HEAD_BYTES

    def readline(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise http.client.LineTooLong(f"request headers over {MAX_HEAD_BYTES} bytes")
        line: bytes = self._rfile.readline(self._left if size < 0 else min(size, self._left))
        if not line:  # http.server would take the headers so far for the whole request
            raise ConnectionAbortedError("the client closed the connection mid-headers")
        self._left -= len(line)
        return line


class Handler(BaseHTTPRequestHandler):
    """Reads one request at a time off a keep-alive connection and answers from the App."""

    protocol_version = "HTTP/1.1"
    server_version = "mllc"
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True  # a response is one write: send it now, not after 40 ms
    server: Server
    _phase = IDLE
    _deadline: float | None = None
    _length: int | None = None  # the body's: bytes, CHUNKED, or None (no body)

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_DeadlineReader(self), 65536)

    # Phases and deadlines: the reader asks for the time left, and reports the first byte.

    def read_timeout(self) -> float:
        if self._deadline is None:
            return self.server.idle_timeout
        return self._deadline - time.monotonic()

    def received(self) -> None:
        if self._phase == IDLE:
            self._enter(HEAD, self.server.header_timeout)

    def _enter(self, phase: str, seconds: float | None) -> None:
        self._phase = phase
        self._deadline = None if seconds is None else time.monotonic() + seconds
        if not self.server.set_phase(self.connection, phase):
            raise ConnectionAbortedError("closed by the server")

    def handle_one_request(self) -> None:
        self.command = ""  # until the request line is parsed: a 408 may come before it
        try:  # in phase IDLE: the last request left it so, and a new connection starts so
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if self._phase == IDLE:  # the request line was read ahead with the last request
                self._enter(HEAD, self.server.header_timeout)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
            elif self._parse_request():
                self._dispatch()
            self.wfile.flush()
            self._enter(IDLE, None)
        except TimeoutError:
            self.close_connection = True
            if self._phase in (HEAD, BODY):  # a deadline passed (not the idle timeout)
                self._timed_out()
        except ConnectionError:
            self.close_connection = True  # the client went away, or we closed the connection

    def _parse_request(self) -> bool:
        rfile, self.rfile = self.rfile, cast(io.BufferedIOBase, _HeadLimit(self.rfile))
        try:
            return self.parse_request()
        finally:
            self.rfile = rfile

    def _timed_out(self) -> None:
        if self._phase == HEAD:
            what, seconds = "request headers", self.server.header_timeout
        else:
            what, seconds = "request body", self.server.body_timeout
        with contextlib.suppress(OSError):
            self._send(error_reply(408, f"{what} not received within {seconds:g} s"), "-")

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            self._length = self._framing()
        except ProtocolError as exc:  # the body cannot be delimited: answer, then close
            self._length = None
            self.close_connection = True
            self._send(error_reply(exc.status, exc.message), path)
            self._linger()
            return
        self._enter(BUSY, None)
        state = {"read": False}

        def read_body() -> bytes:
            body = self._read_body()
            state["read"] = True
            return body

        reply = self.server.app.dispatch(
            self.command, path, self.headers.get("Authorization"), read_body
        )
        if self._phase == BODY:  # the body was refused part way (too large, malformed)
            self._enter(BUSY, None)
        unread = not state["read"] and self._has_body()
        if unread:
            self.close_connection = True  # the unread body would be taken for the next request
        self._send(reply, path)
        if unread:
            self._linger()

    def _framing(self) -> int | None:
        """The body's length (CHUNKED, None: no body); ProtocolError 400 when ambiguous.

        Two different lengths, a length with a transfer coding, a coding other than
        chunked: a proxy in front could delimit the body otherwise (request smuggling).
        """
        transfer = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if transfer:
            if lengths:
                raise ProtocolError(400, "both Content-Length and Transfer-Encoding are given")
            codings = [c.strip().lower() for value in transfer for c in value.split(",")]
            if codings != ["chunked"]:
                coding = ", ".join(transfer)
                raise ProtocolError(
                    400, f"Transfer-Encoding {_cut(coding)!r} is not supported (only chunked)"
                )
            return CHUNKED
        if not lengths:
            return None
        values = {value.strip() for value in lengths}
        if len(values) > 1:
            given = ", ".join(sorted(_cut(v) for v in values))
            raise ProtocolError(400, f"conflicting Content-Length headers: {given}")
        value = values.pop()
        if not _DIGITS.fullmatch(value):
            raise ProtocolError(400, f"invalid Content-Length {_cut(value)!r}")
        return int(value)

    def _linger(self) -> None:
        """Close after an unread body without resetting the connection under the client.

        Closing a socket with unread input sends a reset, and a client still sending its
        body (most do not read before they finish writing) then loses our answer (a 413,
        401, ...). So: end our side, then read and discard for a bounded while, as web
        servers' "lingering close" does.
        """
        deadline = time.monotonic() + LINGER_SECONDS
        discarded = 0
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            while discarded < LINGER_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.connection.settimeout(left)
                data = self.connection.recv(65536)
                if not data:
                    break
                discarded += len(data)
        except OSError:
            pass

    def _has_body(self) -> bool:
        return self._length is not None and self._length != 0

    def _read_body(self) -> bytes:
        """The body, within the size limit and the body deadline; ProtocolError (answered,
        then the connection closes) when it is too large or malformed."""
        limit = self.server.max_body_bytes
        if self.headers.get("Inference-Header-Content-Length") is not None:
            raise ProtocolError(422, BINARY_UNSUPPORTED)
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding != "identity":
            raise ProtocolError(415, f"Content-Encoding {_cut(encoding)!r} is not supported")
        length = self._length
        if length is None:
            raise ProtocolError(411, "a body needs Content-Length (or chunked Transfer-Encoding)")
        if length > limit:
            raise ProtocolError(
                413, f"request body of {length} bytes exceeds the {limit}-byte limit"
            )
        self._enter(BODY, self.server.body_timeout)
        if length == CHUNKED:
            body = self._read_chunked(limit)
        else:
            body = self.rfile.read(length)
            if len(body) < length:
                raise ConnectionError("the client closed the connection mid-body")
        self._enter(BUSY, None)
        return body

    def _read_chunked(self, limit: int) -> bytes:
        """A chunked body, in one buffer no larger than ``limit`` however many chunks."""
        body = bytearray()
        while True:
            line = self.rfile.readline(1026)
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                if not line.endswith(b"\n") and len(line) < 1026:
                    raise ConnectionError("the client closed the connection mid-body")
                raise ProtocolError(400, "malformed chunk size line in chunked body")
            size = int(match[1], 16)
            if size == 0:
                break
            if len(body) + size > limit:
                raise ProtocolError(413, f"chunked request body exceeds the {limit}-byte limit")
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ConnectionError("the client closed the connection mid-body")
            body += chunk
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise ProtocolError(400, "malformed chunked body: no CRLF after a chunk")
        trailers = _HeadLimit(self.rfile)  # trailers are read and ignored, within bounds
        try:
            while (line := trailers.readline(8194)) not in (b"\r\n", b"\n"):
                if not line.endswith(b"\n"):
                    raise ProtocolError(400, "malformed trailer in chunked body")
        except http.client.LineTooLong:
            raise ProtocolError(431, f"trailers over {MAX_HEAD_BYTES} bytes") from None
        return bytes(body)

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it, rather than after.
        try:
            length = self._framing()
        except ProtocolError:
            return True  # no 100 Continue: the 400 is answered once the request is routed
        limit = self.server.max_body_bytes
        if length is not None and length > limit:
            self.close_connection = True
            message = f"request body of {length} bytes exceeds the {limit}-byte limit"
            self._send(error_reply(413, message), self.path)
            return False
        return super().handle_expect_100()

    def _send(self, reply: Reply, path: str) -> None:
        server = self.server
        if server.draining or reply.status in (408, 413):
            self.close_connection = True
        if reply.error is not None:
            log(f"{reply.status} {self.command} {path}: {reply.error}")
        phrase = self.responses.get(reply.status, ("Error",))[0]
        head = [
            f"HTTP/1.1 {reply.status} {phrase}",
            "Server: mllc",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json",
            f"Content-Length: {len(reply.body)}",
            "Connection: close" if self.close_connection else "Connection: keep-alive",
        ]
        head.extend(f"{k}: {v}" for k, v in reply.headers)
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            data += reply.body
        self.connection.settimeout(server.body_timeout)  # a client that does not read: bounded
        self.wfile.write(data)  # one write: headers and body leave in one segment

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, headers too large) as JSON too."""
        self.close_connection = True
        text = message or self.responses.get(code, ("error",))[0]
        if explain and code == 431:
            text = f"{text}: {explain}"
        self._send(error_reply(code, text), getattr(self, "path", "") or "-")

    def log_message(self, format: str, *args: Any) -> None:
        # Errors are logged once, by _send; http.server's access log would be a line per request.
        pass


def _cut(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "..."
