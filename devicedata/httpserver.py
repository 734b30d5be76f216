"""The API's HTTP server: uvicorn with h11, plus what uvicorn lacks against slow clients.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but any byte cancels
that timer, and it has no deadline for a request's head or body: a client sending half a
header, or a byte every few seconds, held its connection forever. ``GuardedH11Protocol``
gives every request a deadline for its head (from the connection's start or the previous
response) and one for its body (from the end of the head), answers 408 past either, and
refuses connections past a cap with 503, in TagoIO's JSON envelope.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import orjson
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from bridge.settings import Settings


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = orjson.dumps({"status": False, "message": message})
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """``H11Protocol`` with head and body deadlines and a connection cap; the limits are
    class attributes, set on a subclass made per server by ``protocol_for``."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str = ""  # "head", "body" or "" (the app has the request)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_raw_response(503, "Service Unavailable",
                                          "Too many connections: try again later"))
            transport.close()
            return
        self._expect("head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._expect("")
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def _follow(self) -> None:
        """Arm the deadline that fits the request's state; a running one is kept, so
        trickling bytes does not extend it."""
        state = self.conn.their_state
        if state is h11.IDLE:
            want = "head"
        elif state is h11.SEND_BODY:
            want = "body"
        else:
            want = ""
        if want != self._waiting_for:
            self._expect(want)

    def _expect(self, what: str) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = what
        if what and not self.transport.is_closing():
            seconds = self.header_timeout if what == "head" else self.body_timeout
            self._deadline = self.loop.call_later(seconds, self._expired, what)

    def _expired(self, what: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if what == "head":
            unanswered = bool(self.conn.trailing_data[0])  # part of a head, or just idle
            seconds = self.header_timeout
        else:
            unanswered = self.cycle is not None and not self.cycle.response_started
            seconds = self.body_timeout
        if unanswered:  # say why the request ends, unless the app already answered it
            self.transport.write(_raw_response(
                408, "Request Timeout", f"Request {what} not received within {seconds:g} s"))
        self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedH11Protocol]:
    return type("ApiProtocol", (GuardedH11Protocol,), {
        "header_timeout": settings.http_header_timeout,
        "body_timeout": settings.http_body_timeout,
        "max_connections": settings.http_max_connections,
    })


def api_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration of the API, for ``devicedata api`` and the tests alike."""
    return uvicorn.Config(app, host=settings.http_host, port=settings.http_port,
                          http=protocol_for(settings), access_log=False, **options)
