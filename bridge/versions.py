"""Per-device data versions: a counter in the shared registry that every writer bumps once
its data is visible in InfluxDB, and before it acknowledges the data.

A process may then keep an answer it read, together with the version it read *before*
the query, and serve it again while the version is unchanged: every write that completed
since then (through this process or any other API or bridge process, a spool drain
minutes later, a PUT or a DELETE) has moved the version on. Reading the version first is
what makes this safe: a write that lands during the query moves the version past the one
the answer is kept under, so that answer is never served again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from bridge.errors import DeviceDataError
from bridge.registry import Registry

log = logging.getLogger("devicedata.versions")

WARN_EVERY_SECONDS = 60.0
T = TypeVar("T")


class DataVersions:
    def __init__(self, registry: Registry, *,
                 on_bump_failed: Callable[[], None] | None = None) -> None:
        """``on_bump_failed`` runs when a bump could not be recorded: this process then
        drops what it kept (other processes' kept answers live at most their max age)."""
        self._registry = registry
        self._on_bump_failed = on_bump_failed
        self._warned = -WARN_EVERY_SECONDS
        self.bump_failures = 0

    async def bump(self, device_ids: Collection[str]) -> None:
        """Never raises: the data is already stored, so the write must still succeed."""
        if not device_ids:
            return
        try:
            await _without_waiting(self._registry.bump_data_versions, device_ids)
        except DeviceDataError as exc:
            self.bump_failures += 1
            if self._on_bump_failed is not None:
                self._on_bump_failed()
            now = time.monotonic()
            if now - self._warned >= WARN_EVERY_SECONDS:
                self._warned = now
                log.warning("event=data_version_not_bumped devices=%d failures=%d reason=%s",
                            len(device_ids), self.bump_failures, exc)

    async def current(self, device_id: str) -> int | None:
        """The device's version, or None when unknown or unreadable (then keep nothing)."""
        try:
            return await _without_waiting(self._registry.data_version, device_id)
        except DeviceDataError:
            return None


async def _without_waiting(call: Callable[..., T], arg: Any) -> T:
    """``call(arg)`` on the loop when the registry can answer at once (SQLite, lock free:
    tens of µs), else in a thread. A thread hop costs about 0.2 ms of CPU here, more than
    the bump itself, and it would be paid on every write batch."""
    try:
        return call(arg, wait=False)
    except BlockingIOError:
        return await asyncio.to_thread(call, arg)
