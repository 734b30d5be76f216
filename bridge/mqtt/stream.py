"""The asyncio side of the bridge's socket: bytes in, packets out to the connection, and a
packet over our Maximum Packet Size refused before any of it is buffered."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from bridge.mqtt import wire


class Receiver(Protocol):
    last_heard: float
    last_error: str

    def handle(self, packets: list[wire.Message | wire.Packet]) -> None: ...
    def too_large(self, exc: wire.PacketTooLarge) -> None: ...
    def abort(self) -> None: ...
    def lost(self, transport: asyncio.BaseTransport | None, exc: Exception | None) -> None: ...


class Stream(asyncio.Protocol):
    def __init__(self, conn: Receiver, reader: wire.Reader) -> None:
        self.conn = conn
        self.reader = reader
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.conn.last_heard = time.monotonic()
        try:
            packets = self.reader.feed(data)
        except wire.PacketTooLarge as exc:
            self.conn.too_large(exc)
            return
        except (wire.ProtocolError, IndexError, ValueError) as exc:
            self.conn.last_error = f"unreadable data from the broker: {exc}"
            self.conn.abort()
            return
        self.conn.handle(packets)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.lost(self.transport, exc)


async def first(*aws: Any) -> None:
    """Wait until the first of ``aws`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
