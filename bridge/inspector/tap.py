"""The publishing side of the inspector, in every bridge and API process: which devices
are watched (from the leases on the broker), and one event per message or request of a
watched device, rate-limited per device.

``watching`` is on the hot path of every message: with nobody watching it is one look-up
in an empty dict. Everything else runs only for watched devices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import orjson

from bridge.errors import FieldError
from bridge.inspector import events
from bridge.inspector.events import Event

log = logging.getLogger("devicedata.inspector")

Publish = Callable[[str, bytes], None]
MAX_LEASES = 10_000  # watched (device, watcher) pairs one process keeps; more are ignored


class Tap:
    def __init__(self, process: str, *, rate: float = 20.0, burst: float = 40.0,
                 clock: Callable[[], float] = time.time) -> None:
        """``rate`` events a second per device at most (``burst`` at once); ``clock`` is
        wall-clock seconds, since a lease's end is written by another process."""
        self.process = process
        self.publish: Publish | None = None  # set once the broker connection exists
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._leases: dict[str, dict[str, float]] = {}  # device -> watcher -> until
        self._count = 0
        self._budget: dict[str, tuple[float, float, int]] = {}  # tokens, at, dropped
        self.published = 0
        self.dropped = 0

    # -- leases --------------------------------------------------------------------

    def take(self, topic: str, payload: bytes) -> bool:
        """Handle a message if it is a lease (True), else leave it to the caller."""
        lease = events.lease_of(topic)
        if lease is None:
            return topic.startswith(events.PREFIX)  # ours, but nothing to do here
        device, watcher = lease
        until = lease_until(payload)
        watchers = self._leases.get(device, {})
        if until is None:
            if watchers.pop(watcher, None) is not None:
                self._count -= 1
            if not watchers:
                self._leases.pop(device, None)
                self._budget.pop(device, None)
            return True
        if watcher not in watchers:
            if self._count >= MAX_LEASES:
                log.warning("event=inspector_leases_full device=%s", device)
                return True
            self._count += 1
        watchers[watcher] = until
        self._leases[device] = watchers
        return True

    def watching(self, device_id: str) -> bool:
        watchers = self._leases.get(device_id)
        if watchers is None:
            return False
        now = self._clock()
        return any(until > now for until in watchers.values())

    def watched(self) -> list[str]:
        return sorted(d for d in self._leases if self.watching(d))

    # -- events --------------------------------------------------------------------

    def accepted(self, device_id: str, source: str, where: str, payload: bytes,
                 points: int) -> None:
        if self.watching(device_id):
            self._emit(device_id, events.accepted(device_id, source, where, self.process,
                                                  payload, points))

    def rejected(self, device_id: str, source: str, where: str, payload: bytes | None,
                 reason: str, message: str, errors: Sequence[FieldError] = ()) -> None:
        if self.watching(device_id):
            self._emit(device_id, events.rejected(device_id, source, where, self.process,
                                                  payload, reason, message, errors))

    def _emit(self, device_id: str, event: Event) -> None:
        now = time.monotonic()
        tokens, at, dropped = self._budget.get(device_id, (self.burst, now, 0))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1 or self.publish is None:
            self._budget[device_id] = (tokens, now, dropped + 1)
            self.dropped += 1
            return
        event["dropped"] = dropped
        self._budget[device_id] = (tokens - 1, now, 0)
        self.publish(events.events_topic(device_id), events.encode(event))
        self.published += 1


def lease_until(payload: bytes) -> float | None:
    """A lease's end (epoch seconds); None for a cleared (empty) or unreadable lease."""
    if not payload:
        return None
    try:
        until = orjson.loads(payload).get("until")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return float(until) if isinstance(until, int | float) else None
