"""The HTTP transport: a threaded HTTP/1.1 server with keep-alive, bounds and a draining stop.

One thread per connection (stdlib ``ThreadingHTTPServer``), and every resource a
client could hold is bounded, in bytes and in time:

- a request's head (request line and headers) must arrive whole within
  ``header_timeout`` of its first byte, and its body within ``body_timeout``
  (default 10 s each): a client dripping a header line every few seconds is
  answered 408 and closed when the deadline passes, however slowly it drips;
- a keep-alive connection silent for ``idle_timeout`` (default 30 s) is closed;
- at most ``max_connections`` connections. When a new one arrives at the cap,
  the connection that has waited longest for a complete request (idle, or still
  sending its head or body) is closed to make room, so clients holding slots
  open cannot lock others out; only when every connection is running a request
  does the newcomer get a 503;
- heads are at most 64 KiB (request line: 64 KiB more), bodies ``max_body_bytes``
  (413), chunked ones too: their memory is the body, whatever the chunk count;
- framing is unambiguous or refused (400): conflicting or malformed
  ``Content-Length``, ``Content-Length`` with ``Transfer-Encoding``, and any
  transfer coding but ``chunked`` (the request smuggling ingredients).

Every answer, http.server's own parse errors included, is JSON; each error is
logged as one line on stderr. The App's prediction threads bound predictions
(:mod:`mllc.serve.app`, :mod:`mllc.serve.batching`).

The listening socket has SO_REUSEADDR and SO_REUSEPORT, so the next version's
server binds the same port while this one still serves. :meth:`Server.drain`
stops it: idle keep-alive connections are closed, connections the kernel
already queued are served, in-flight requests finish (their responses say
``Connection: close``) until a deadline.

Modules: the bounds and the log line are in :mod:`mllc.serve.limits`; reading and
answering one connection's requests, :mod:`mllc.serve.handler`; accepting, bounding
and draining connections, here.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from mllc.serve.limits import (
    BODY,
    BODY_TIMEOUT,
    BUSY,
    HEAD,
    HEADER_TIMEOUT,
    IDLE,
    IDLE_TIMEOUT,
    MIB,
    log,
)

if TYPE_CHECKING:
    from mllc.serve.app import App

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: 43\r\nConnection: close\r\n\r\n"
    b'{"error":"too many connections, try again"}'
)


@dataclass
class _Connection:
    phase: str
    since: float  # when the phase began
    closed: bool = False  # closed by the server (drained or evicted): its thread is ending


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with SO_REUSEPORT, bounded connections, and a draining shutdown."""

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
        *,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.idle_timeout = idle_timeout
        self.draining = False
        self._lock = threading.Condition()
        self._conns: dict[socket.socket, _Connection] = {}
        self._open = 0  # connections not closed by the server
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        # start-up: the handler answers through the App, which loads numpy, and this
        # module is imported by mllc.serve.server at the CLI's start.
        from mllc.serve.handler import Handler  # noqa: PLC0415

        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's FQDN, a DNS query at start.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._admit(request):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            log("503 too many connections, every one running a request: one refused")
            return
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True
        )
        thread.start()

    def _admit(self, conn: socket.socket) -> bool:
        """Count ``conn`` in; at the cap, first close the connection waiting longest."""
        evicted = None
        with self._lock:
            if self._open >= self.max_connections:
                waiting = [
                    (c.since, s) for s, c in self._conns.items() if not c.closed and c.phase != BUSY
                ]
                if not waiting:
                    return False
                since, victim = min(waiting, key=lambda item: item[0])
                self._close(victim)
                evicted = (self._conns[victim].phase, time.monotonic() - since)
            # Accepted while draining (from the backlog): its first request is awaited.
            self._conns[conn] = _Connection(HEAD if self.draining else IDLE, time.monotonic())
            self._open += 1
        if evicted is not None:
            doing = {IDLE: "idle", HEAD: "sending its headers", BODY: "sending its body"}
            log(
                f"closed a connection {doing[evicted[0]]} for {evicted[1]:.1f} s to make room "
                f"(at --max-connections {self.max_connections})"
            )
        return True

    def _close(self, conn: socket.socket) -> None:
        """Close a connection of another thread (its reads end); call with the lock held."""
        state = self._conns[conn]
        if not state.closed:
            state.closed = True
            self._open -= 1
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        self._lock.notify_all()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception as exc:
            log(f"connection from {client_address[0]} failed: {type(exc).__name__}: {exc}")
        finally:
            self.shutdown_request(request)
            with self._lock:
                state = self._conns.pop(request, None)
                if state is not None and not state.closed:
                    self._open -= 1
                self._lock.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        log(f"connection error: {type(exc).__name__}: {exc}")

    # Connection phases: idle ones are closed when draining, waiting ones to make room.

    def set_phase(self, conn: socket.socket, phase: str) -> bool:
        """Record what ``conn`` does now; False if the server closed it (stop serving it)."""
        with self._lock:
            state = self._conns.get(conn)
            if state is None or state.closed:
                return False
            if state.phase != phase:
                state.phase, state.since = phase, time.monotonic()
                self._lock.notify_all()
            return True

    def closed_by_us(self, conn: socket.socket) -> bool:
        with self._lock:
            state = self._conns.get(conn)
            return state is None or state.closed

    def _running(self) -> int:
        return sum(1 for c in self._conns.values() if not c.closed and c.phase != IDLE)

    def drain(self, deadline: float) -> int:
        """Stop serving: answer the backlog, let started requests finish by ``deadline``.

        Returns the number of requests still running at the deadline. Call after
        ``shutdown()`` has stopped the accept loop.
        """
        with self._lock:
            self.draining = True
            for conn, state in self._conns.items():
                if state.phase == IDLE:
                    self._close(conn)
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
            while self._running():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return self._running()
