"""Per-device data versions in the shared registry: how a process that keeps an answer
learns that another process (an API, a bridge, a spool drain minutes later, a PUT or a
DELETE) has changed the device's data since.

- A reader that is about to keep an answer first *watches* the device (a flag in the
  registry) and reads its version, then queries InfluxDB, and keeps the answer under
  that version. It serves it again while the version is unchanged.
- A writer, once InfluxDB has answered its write and before it acknowledges it, bumps
  the versions of those of its devices that are watched and unwatches them, in the
  registry transaction that records its current values (``bridge/readcache/current.py``,
  ``Registry.record_writes``).

Why this is safe: a write that completes after the reader's watch sees the flag and
bumps, so the kept answer is never served again; a write that saw no flag completed
before the watch, so the reader's query, which starts after the watch, includes it. The
bump costs one more indexed UPDATE in a transaction every write makes anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from bridge.errors import DeviceDataError
from bridge.registry import Registry

log = logging.getLogger("devicedata.versions")

T = TypeVar("T")


class DataVersions:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def current(self, device_id: str) -> int | None:
        """The device's version, or None when unknown or unreadable."""
        try:
            return await without_waiting(self._registry.data_version, device_id)
        except DeviceDataError:
            return None

    async def watch(self, device_id: str) -> int | None:
        """Watch the device and return its version; None when unknown or when the
        registry cannot be written (then keep nothing)."""
        try:
            return await asyncio.to_thread(self._registry.watch_data_version, device_id)
        except DeviceDataError:
            return None


async def without_waiting(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` on the loop when the registry can answer at once (SQLite, lock
    free), else in a thread: a thread hop costs about 0.2 ms of CPU here, more than the
    read."""
    try:
        return call(*args, wait=False)
    except BlockingIOError:
        return await asyncio.to_thread(call, *args)
