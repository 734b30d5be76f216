"""Per-device "last input" times, kept in memory and written to the registry at most once
per interval per device: a registry write per request would cost more than the request."""

from __future__ import annotations

import asyncio
import logging

from bridge.errors import DeviceDataError
from bridge.registry.interface import Registry

log = logging.getLogger("devicedata.activity")


class LastInput:
    def __init__(self) -> None:
        self._latest: dict[str, int] = {}
        self._unsaved: dict[str, int] = {}

    def note(self, device_id: str, at_ns: int) -> None:
        if at_ns > self._latest.get(device_id, 0):
            self._latest[device_id] = at_ns
            self._unsaved[device_id] = at_ns

    def latest(self, device_id: str, stored_ns: int | None) -> int | None:
        mine = self._latest.get(device_id)
        if mine is None:
            return stored_ns
        return max(mine, stored_ns or 0)

    def snapshot(self) -> dict[str, int]:
        return dict(self._latest)

    def save(self, registry: Registry) -> None:
        """Write what changed since the last save; called from a worker thread."""
        unsaved, self._unsaved = self._unsaved, {}
        for device_id, at_ns in unsaved.items():
            try:
                registry.touch(device_id, at_ns)
            except DeviceDataError as exc:
                log.warning("event=last_input_not_saved device=%s reason=%s", device_id, exc)


async def save_periodically(last_input: LastInput, registry: Registry,
                            interval: float = 5.0) -> None:
    """Run until cancelled; the caller saves once more on shutdown."""
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(last_input.save, registry)
