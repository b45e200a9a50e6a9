"""Load generator for bench_serve: N POST requests over C keep-alive connections, on loopback only.

    python bench/loadgen.py --url http://127.0.0.1:8081/v2/models/iris/infer \
        --body-file request.json [--requests 1000] [--concurrency 50] [--timeout 120]

One asyncio loop, raw HTTP/1.1 over C connections opened up front and kept
alive: a thread per connection in Python would spend the CPU that the server
under test needs (the two share this machine's cores). A request counts as
an error unless it answers 200 with a V2 ``outputs`` body; a connection the
server closes is reopened. Refuses any host outside 127.0.0.0/8 and ::1, and
stops at --timeout whatever is left. Prints one JSON object: count, errors,
seconds, throughput (successful requests per second), p50, p99 and max (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import statistics
import sys
import time
from urllib.parse import urlsplit


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, data: bytes) -> tuple[int, bytes, bool]:
        """(status, body, server keeps the connection) for one raw request."""
        if self.writer is None or self.writer.is_closing():
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        keep = headers.get("connection", "keep-alive").lower() != "close"
        if not keep:
            self.close()
        return status, body, keep

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _run(
    host: str, port: int, raw: bytes, total: int, concurrency: int, warmup: int
) -> tuple[list[float], int, float]:
    """(latencies of successful requests, errors, seconds of the counted phase)."""
    conns = [_Conn(host, port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies: list[float] = []
    errors = 0
    issued = 0

    async def worker(conn: _Conn, counted: bool, limit: int) -> None:
        nonlocal issued, errors
        while issued < limit:
            issued += 1
            start = time.perf_counter()
            try:
                status, body, _ = await conn.request(raw)
                ok = status == 200 and b'"outputs"' in body
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                ok = False
                conn.close()
            if counted:
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1

    if warmup:
        await asyncio.gather(*(worker(c, False, warmup) for c in conns))
        issued = 0
    start = time.perf_counter()
    await asyncio.gather(*(worker(c, True, total) for c in conns))
    seconds = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return latencies, errors, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/PATH to POST to")
    parser.add_argument("--body-file", required=True, help="the JSON request body")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=100, help="requests first, not counted")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole run")
    parser.add_argument("--header", action="append", default=[], help="extra 'Name: value'")
    args = parser.parse_args(argv)
    url = urlsplit(args.url)
    host, port = url.hostname or "", url.port or 80
    if url.scheme != "http" or not _loopback(host):
        print(f"loadgen: only http on loopback is allowed, not {args.url}", file=sys.stderr)
        return 2
    with open(args.body_file, "rb") as fh:
        body = fh.read()
    head = [
        f"POST {url.path or '/'} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *args.header,
    ]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    try:
        latencies, errors, seconds = asyncio.run(
            asyncio.wait_for(
                _run(host, port, raw, args.requests, args.concurrency, args.warmup),
                args.timeout,
            )
        )
    except TimeoutError:
        print(f"loadgen: stopped at --timeout {args.timeout:g} s", file=sys.stderr)
        latencies, errors, seconds = [], args.requests, args.timeout
    except OSError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        latencies, errors, seconds = [], args.requests, 0.0
    ms = sorted(x * 1000 for x in latencies)
    count = len(ms) + errors
    result = {
        "count": count,
        "errors": errors,
        "seconds": round(seconds, 3),
        "throughput": round(len(ms) / seconds, 1) if seconds else 0.0,
        "p50": round(statistics.median(ms), 2) if ms else None,
        "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2) if ms else None,
        "max": round(ms[-1], 2) if ms else None,
        "concurrency": args.concurrency,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
