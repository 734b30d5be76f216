"""Keep-alive: a PINGREQ every half keep-alive, the broker's Server Keep Alive when its
CONNACK set one (it may be shorter than ours); a broker silent for 1.5 keep-alives while we
read is given up on, so the connection is rebuilt rather than left hanging."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from bridge.mqtt import wire
from bridge.mqtt.session import Session


class Pinged(Protocol):
    last_heard: float
    last_error: str

    @property
    def live(self) -> tuple[asyncio.Transport, Session] | None: ...
    @property
    def paused(self) -> bool: ...
    def abort(self) -> None: ...


def tick(session: Session | None) -> float:
    """How long to sleep between checks: often enough to ping in time."""
    every = session.ping_every() if session is not None else 0.0
    return min(1.0, every / 2) if every else 1.0


async def keep_alive(conn: Pinged) -> None:
    sent = 0.0
    while True:
        live = conn.live
        await asyncio.sleep(tick(live[1] if live else None))
        if live is None or conn.live != live:
            continue  # not connected, or a new connection since: look again
        transport, session = live
        every = session.ping_every()
        if not every:
            continue
        now = time.monotonic()
        silent = now - conn.last_heard
        if not conn.paused and silent > session.keepalive * 1.5:
            conn.last_error = f"no answer from the broker for {silent:.0f} s"
            conn.abort()
            continue
        if now - sent >= every:
            sent = now
            transport.write(wire.PINGREQ_PACKET)
