"""Talking to a local server over the network: one HTTP request, and whether a port is
free for a new server (used by :mod:`mllc.targets.local`)."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from mllc.errors import MllcError


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 2.0,
) -> tuple[int, Any]:
    """One HTTP request to a server; (status, parsed JSON or None). OSError when unreachable."""
    conn = http.client.HTTPConnection(_connect_host(host), port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        payload = None if body is None else json.dumps(body).encode("utf-8")
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None
    finally:
        conn.close()


def check_port_free(lifecycle: str, environment: str, host: str, port: int) -> None:
    """Servers share a port (SO_REUSEPORT) only for a hand-over between our own versions;
    a port some other process holds must be refused, not silently shared."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: connections of a dead server in TIME_WAIT do not hold the port;
        # a live listener (without our SO_REUSEPORT pairing) still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise MllcError(
                f"{lifecycle}/{environment}: port {port} on "
                f"{host} is in use by another process ({exc.strerror}); "
                "choose another port in the spec"
            ) from None
