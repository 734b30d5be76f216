"""The watching side of the inspector, in API processes: the leases this process holds
for its admins' pages, and the newest events of each watched device in a bounded ring
that pages long-poll.

Memory is bounded: at most ``max_devices`` watched at once, ``capacity`` events each,
and every event is cut to a few KiB where it was made (``events.preview``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from bridge.errors import Overloaded
from bridge.inspector import events
from bridge.inspector.events import Event

LEASE_SECONDS = 60.0  # a lease runs out this long after the page last polled


@dataclass
class _Watch:
    polled: float  # monotonic time of the page's last poll
    lease_until: float = 0.0  # wall-clock end of the lease last published
    ring: deque[tuple[int, Event]] = field(default_factory=deque)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Feed:
    def __init__(self, watcher: str, *, capacity: int = 200, max_devices: int = 50,
                 lease_seconds: float = LEASE_SECONDS,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.watcher = watcher  # this process's name in lease topics
        self.capacity = capacity
        self.max_devices = max_devices
        self.lease_seconds = lease_seconds
        self.publish_retained: Callable[[str, bytes], None] | None = None
        self._clock = clock
        self._monotonic = monotonic
        self._watches: dict[str, _Watch] = {}
        self._seq = 0

    def watch(self, device_id: str) -> None:
        """A page polls: start or prolong the lease (re-published when half used up)."""
        watch = self._watches.get(device_id)
        if watch is None:
            if len(self._watches) >= self.max_devices:
                raise Overloaded(f"This process already shows {self.max_devices} devices "
                                 "live; close one", retry_after=self.lease_seconds)
            watch = self._watches[device_id] = _Watch(self._monotonic())
        watch.polled = self._monotonic()
        if watch.lease_until - self._clock() < self.lease_seconds / 2:
            self._lease(device_id, watch)

    def unwatch(self, device_id: str) -> None:
        """The page closed its live view: clear the lease now rather than when it runs out."""
        watch = self._watches.pop(device_id, None)
        if watch is not None:
            watch.changed.set()  # a poll still waiting answers at once
            self._send(events.watch_topic(device_id, self.watcher), b"")

    def watched(self) -> list[str]:
        return list(self._watches)

    def expire(self) -> None:
        """Drop the devices whose pages stopped polling (called every few seconds)."""
        quiet = self._monotonic() - self.lease_seconds
        for device_id in [d for d, w in self._watches.items() if w.polled < quiet]:
            self.unwatch(device_id)

    def renew(self) -> None:
        """Publish every lease again (after a reconnect: they may not have reached it)."""
        for device_id, watch in self._watches.items():
            self._lease(device_id, watch)

    def add(self, device_id: str, event: Event) -> None:
        watch = self._watches.get(device_id)
        if watch is None:
            return  # another process's watcher; not shown here
        self._seq += 1
        watch.ring.append((self._seq, event))
        if len(watch.ring) > self.capacity:
            watch.ring.popleft()
        watch.changed.set()
        watch.changed = asyncio.Event()

    def since(self, device_id: str, after: int) -> tuple[list[Event], int]:
        """Events newer than ``after`` (each with its ``seq``), and the newest seq."""
        watch = self._watches.get(device_id)
        if watch is None:
            return [], self._seq
        fresh = [{**e, "seq": seq} for seq, e in watch.ring if seq > after]
        return fresh, self._seq

    async def poll(self, device_id: str, after: int, timeout: float
                   ) -> tuple[list[Event], int]:
        """``since``, waiting up to ``timeout`` seconds for something new."""
        self.watch(device_id)
        fresh, last = self.since(device_id, after)
        if fresh or timeout <= 0:
            return fresh, last
        changed = self._watches[device_id].changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)
        return self.since(device_id, after)

    def _lease(self, device_id: str, watch: _Watch) -> None:
        watch.lease_until = self._clock() + self.lease_seconds
        self._send(events.watch_topic(device_id, self.watcher),
                   orjson.dumps({"until": round(watch.lease_until, 3)}))

    def _send(self, topic: str, payload: bytes) -> None:
        if self.publish_retained is not None:
            self.publish_retained(topic, payload)
