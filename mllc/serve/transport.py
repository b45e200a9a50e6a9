"""The HTTP transport: a threaded HTTP/1.1 server with keep-alive, bounds and a draining stop.

One thread per connection (stdlib ``ThreadingHTTPServer``), with three bounds:
at most ``max_connections`` connections (more get a 503 and are closed), an
idle timeout that closes silent keep-alive connections, and the App's pool of
prediction workers (:mod:`mllc.serve.app`). Every answer, http.server's own
parse errors included, is JSON; each error is logged as one line on stderr.

The listening socket has SO_REUSEADDR and SO_REUSEPORT, so the next version's
server binds the same port while this one still serves. :meth:`Server.drain`
stops it: idle keep-alive connections are closed, connections the kernel
already queued are served, in-flight requests finish (their responses say
``Connection: close``) until a deadline.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mllc.serve.app import App, Reply

MIB = 1024 * 1024
IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may stay silent
LINGER_SECONDS = 2.0  # reading an unwanted body before closing: at most this long,
LINGER_BYTES = 64 * MIB  # and this much
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: 43\r\nConnection: close\r\n\r\n"
    b'{"error":"too many connections, try again"}'
)
_log_lock = threading.Lock()


def log(message: str) -> None:
    """One line on stderr; control characters from clients are escaped, never interpreted."""
    text = message.encode("unicode_escape", "backslashreplace").decode("ascii")
    from mllc.serve.capture import now_iso

    with _log_lock:
        sys.stderr.write(f"{now_iso()} mllc-serve: {text[:1000]}\n")
        sys.stderr.flush()


class Handler(BaseHTTPRequestHandler):
    """Reads one request at a time off a keep-alive connection and answers from the App."""

    protocol_version = "HTTP/1.1"
    server_version = "mllc"
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True  # a response is one write: send it now, not after 40 ms
    server: Server

    def handle(self) -> None:
        self.server.track(self.connection)
        try:
            super().handle()
        finally:
            self.server.untrack(self.connection)

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.server.begin(self.connection):
                self.close_connection = True
                return
            try:
                if len(self.raw_requestline) > 65536:
                    self.requestline = self.request_version = self.command = ""
                    self.send_error(414)
                elif self.parse_request():
                    self._dispatch()
                self.wfile.flush()
            finally:
                self.server.end(self.connection)
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # idle past the timeout, or the client went away

    def _dispatch(self) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0]
        state = {"read": False}

        def read_body() -> bytes:
            body = self._read_body()
            state["read"] = True
            return body

        reply = app.dispatch(self.command, path, self.headers.get("Authorization"), read_body)
        unread = not state["read"] and self._has_body()
        if unread:
            self.close_connection = True  # the unread body would be taken for the next request
        self._send(reply, path)
        if unread:
            self._linger()

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
        length = self.headers.get("Content-Length")
        return bool(self.headers.get("Transfer-Encoding")) or (
            length is not None and length.strip() != "0"
        )

    def _read_body(self) -> bytes:
        """The body, within the size limit; ProtocolError (answered, then the connection
        closes) when it is too large or malformed."""
        from mllc.serve.protocol import BINARY_UNSUPPORTED, ProtocolError

        limit = self.server.max_body_bytes
        if self.headers.get("Inference-Header-Content-Length") is not None:
            raise ProtocolError(422, BINARY_UNSUPPORTED)
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding != "identity":
            raise ProtocolError(415, f"Content-Encoding {encoding!r} is not supported")
        transfer = self.headers.get("Transfer-Encoding")
        if transfer is not None:
            if transfer.strip().lower() != "chunked":
                raise ProtocolError(501, f"Transfer-Encoding {transfer!r} is not supported")
            return self._read_chunked(limit)
        length = _content_length(self.headers.get("Content-Length"))
        if length is None:
            raise ProtocolError(411, "a body needs Content-Length (or chunked Transfer-Encoding)")
        if length > limit:
            raise ProtocolError(
                413, f"request body of {length} bytes exceeds the {limit}-byte limit"
            )
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("the client closed the connection mid-body")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        from mllc.serve.protocol import ProtocolError

        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1026)
            if not line.endswith(b"\n"):
                raise ProtocolError(400, "malformed chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError(400, "malformed chunk size in chunked body") from None
            if size == 0:
                while self.rfile.readline(8194).strip():  # trailers, ignored
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                raise ProtocolError(413, f"chunked request body exceeds the {limit}-byte limit")
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ConnectionError("the client closed the connection mid-body")
            parts.append(chunk)
            self.rfile.readline(3)  # the CRLF after the chunk

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it, rather than after.
        from mllc.serve.protocol import ProtocolError

        try:
            length = _content_length(self.headers.get("Content-Length"))
        except ProtocolError:
            length = None  # reported when the body is read
        limit = self.server.max_body_bytes
        if length is not None and length > limit:
            from mllc.serve.app import error_reply

            self.close_connection = True
            message = f"request body of {length} bytes exceeds the {limit}-byte limit"
            self._send(error_reply(413, message), self.path)
            return False
        return super().handle_expect_100()

    def _send(self, reply: Reply, path: str) -> None:
        server = self.server
        if server.draining or reply.status == 413:
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
        self.wfile.write(data)  # one write: headers and body leave in one segment

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, headers too large) as JSON too."""
        from mllc.serve.app import error_reply

        self.close_connection = True
        text = message or self.responses.get(code, ("error",))[0]
        self._send(error_reply(code, text), getattr(self, "path", "") or "-")

    def log_message(self, format: str, *args: Any) -> None:
        # Errors are logged once, by _send; http.server's access log would be a line per request.
        pass


def _content_length(value: str | None) -> int | None:
    from mllc.serve.protocol import ProtocolError

    if value is None:
        return None
    try:
        length = int(value.strip())
    except ValueError:
        raise ProtocolError(400, f"invalid Content-Length {value!r}") from None
    if length < 0:
        raise ProtocolError(400, f"invalid Content-Length {value!r}")
    return length


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with SO_REUSEPORT, a connection cap, and a draining shutdown."""

    daemon_threads = True
    allow_reuse_address = True
    allow_reuse_port = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        app: App,
        max_body_bytes: int = MIB,
        max_connections: int = 256,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.draining = False
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Condition()
        self._busy: dict[socket.socket, bool] = {}  # connection -> a request is in progress
        self._shut: set[socket.socket] = set()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's FQDN, a DNS query at start.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            log("503 too many connections: one refused")
            return
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True
        )
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception as exc:
            log(f"connection from {client_address[0]} failed: {type(exc).__name__}: {exc}")
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        log(f"connection error: {type(exc).__name__}: {exc}")

    # Connection states, for draining: idle connections are closed, busy ones finish.

    def track(self, conn: socket.socket) -> None:
        with self._lock:
            # Accepted while draining (from the backlog): its first request is awaited.
            self._busy[conn] = self.draining

    def begin(self, conn: socket.socket) -> bool:
        with self._lock:
            if conn in self._shut:
                return False
            self._busy[conn] = True
            return True

    def end(self, conn: socket.socket) -> None:
        with self._lock:
            self._busy[conn] = False
            self._lock.notify_all()

    def untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._busy.pop(conn, None)
            self._shut.discard(conn)
            self._lock.notify_all()

    def drain(self, deadline: float) -> int:
        """Stop serving: answer the backlog, let busy requests finish by ``deadline``.

        Returns the number of requests still running at the deadline. Call after
        ``shutdown()`` has stopped the accept loop.
        """
        with self._lock:
            self.draining = True
            for conn, busy in self._busy.items():
                if not busy:
                    self._shut.add(conn)
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
        # Connections the kernel already queued for us would be reset by close(): serve them.
        self.socket.setblocking(False)
        while True:
            try:
                request, client_address = self.socket.accept()
            except OSError:
                break
            request.setblocking(True)
            self.process_request(request, client_address)
        self.socket.close()
        with self._lock:
            while any(self._busy.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return sum(self._busy.values())
