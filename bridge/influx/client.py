"""InfluxDB's ``/write`` as plain HTTP/1.1 on asyncio streams, over keep-alive connections.

Every batch of the bridge and the API goes through this one request, so its fixed cost is
paid per batch: measured under load, httpx's layers (request and response models, the
connection pool's bookkeeping) took about half of it. This client sends a prebuilt request
head plus the body and reads back the status, the few headers it needs and the body.
Queries, pings and ``https://`` URLs stay on httpx (``bridge.influx.store``).

Failures are returned as ``OSError``/``TimeoutError``/``WireError`` for ``bridge.influx.store``
to convert; a write is idempotent (the same points overwrite themselves), so a request
that fails on a reused connection, which the server may have closed while idle, is sent
once more on a fresh one.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024  # an error message, never data: writes answer 204 when fine


class WireError(Exception):
    """The server's answer was not HTTP we understand."""


@dataclass(slots=True)
class WireResponse:
    status: int
    headers: dict[str, str]  # lower-case names; only the last of repeated headers
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True

    def close(self) -> None:
        self.writer.close()


class WriteClient:
    def __init__(self, url: str, params: dict[str, str], *, timeout: float,
                 headers: dict[str, str] | None = None, max_idle: int = 8) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"WriteClient speaks plain http:// only, not {url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        path = parts.path.rstrip("/") + "/write?" + urlencode(params)
        host = self._host if ":" not in self._host else f"[{self._host}]"  # IPv6 literal
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{self._port}",
                 "Content-Type: text/plain; charset=utf-8", "Connection: keep-alive"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._timeout = timeout
        self._idle: list[_Connection] = []
        self._max_idle = max_idle
        self._closed = False

    async def write(self, body: bytes) -> WireResponse:
        # asyncio.timeout, not wait_for: wait_for runs the request in a Task, and a failed
        # Task, its exception and wait_for's frame form a reference cycle that keeps the
        # body alive until the cyclic GC runs; with InfluxDB down the spool drainer's 8 MiB
        # bodies piled up that way (API RSS +60 MB in a 10-minute outage).
        reused = bool(self._idle)
        try:
            async with asyncio.timeout(self._timeout):
                return await self._exchange(body)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not reused:
                raise
        # The server may close an idle keep-alive connection just as we reuse it.
        async with asyncio.timeout(self._timeout):
            return await self._exchange(body, fresh=True)

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    async def _exchange(self, body: bytes, fresh: bool = False) -> WireResponse:
        conn = None if fresh or not self._idle else self._idle.pop()
        if conn is None:
            reader, writer = await asyncio.open_connection(self._host, self._port)
            conn = _Connection(reader, writer)
        try:
            conn.writer.write(self._head + b"%d\r\n\r\n" % len(body) + body)
            response = await _read_response(conn)
        except BaseException:
            conn.close()  # half a request or half an answer: never reuse it
            raise
        if conn.reusable and not self._closed and len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.close()
        return response


async def _read_response(conn: _Connection) -> WireResponse:
    reader = conn.reader
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise WireError("response head too large") from None
    if len(head) > _MAX_HEAD:
        raise WireError("response head too large")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise WireError(f"not an HTTP response: {status_line[:80]!r}")
    status = int(code)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if version == "HTTP/1.0" or headers.get("connection", "").lower() == "close":
        conn.reusable = False
    if status == 204 or status == 304 or 100 <= status < 200:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif (length := headers.get("content-length", "")).isdigit():
        if int(length) > _MAX_BODY:
            raise WireError(f"response body of {length} bytes")
        body = await reader.readexactly(int(length))
    else:  # delimited by the end of the connection
        conn.reusable = False
        body = await reader.read(_MAX_BODY)
    return WireResponse(status, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise WireError("bad chunk size") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY:
            raise WireError("response body too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
